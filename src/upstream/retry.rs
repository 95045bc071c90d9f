//! One upstream request with client-side rate limiting and retries on 429, 5xx and transport errors.
//! Delays come from backon's exponential builder (with jitter); a `Retry-After` header wins when the
//! server sends one (Personio does not, but a proxy might), capped at
//! [`super::MAX_RETRY_AFTER`] so a server cannot park a run for hours.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use governor::DefaultDirectRateLimiter;
use reqwest::{RequestBuilder, Response, StatusCode};

use super::budget::BudgetShare;
use super::observe::{RequestObserver, RequestRecord};
use super::server_limit::ServerLimits;

/// How often and how patiently to retry.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in total, including the first. 1 = never retry (e.g. uploads without idempotency).
    pub max_attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Waits before retrying after `attempt` (exponential from `min_delay`, capped at
    /// `max_delay`), e.g. a response whose body broke off.
    pub async fn pause_before(&self, attempt: usize) {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        let delay = self.min_delay.saturating_mul(factor).min(self.max_delay);
        tokio::time::sleep(delay.max(Duration::from_millis(1))).await;
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that sends once.
    pub fn once() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }
}

/// A request that did not get a usable response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No response: timeout, refused or reset connection.
    #[error("{endpoint}: no response after {attempts} attempt(s): {message}")]
    Transport {
        endpoint: &'static str,
        attempts: usize,
        timeout: bool,
        /// Whether a connection was made at all: `false` when connecting failed, so the request
        /// cannot have reached the server (decides whether an upload may have been applied).
        connected: bool,
        message: String,
    },
    /// The server kept answering 429 or 5xx.
    #[error("{endpoint}: HTTP {status} after {attempts} attempt(s)")]
    Status {
        endpoint: &'static str,
        status: u16,
        attempts: usize,
        response: Box<ResponseDebug>,
    },
}

/// Holder so `SendError` stays `Debug` while keeping the last response for the caller to read.
pub struct ResponseDebug(pub Response);

impl std::fmt::Debug for ResponseDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Response({})", self.0.status())
    }
}

fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    super::retry_after(value.to_str().ok()?, std::time::SystemTime::now())
}

/// The pause before the next attempt: the server's `Retry-After` (already capped) when it asks
/// for more than our own backoff, the backoff otherwise.
fn pause(server_delay: Option<Duration>, backoff: Duration) -> Duration {
    server_delay.unwrap_or(backoff).max(backoff)
}

/// Sends the request built by `make` (called once per attempt), waiting on `limiter` before each
/// attempt. Returns the first response that is not 429/5xx; the caller interprets 4xx.
pub async fn send_with_retry(
    api: &'static str,
    endpoint: &'static str,
    policy: &RetryPolicy,
    observer: &dyn RequestObserver,
    limiter: Option<&DefaultDirectRateLimiter>,
    make: impl FnMut() -> RequestBuilder,
) -> Result<Response, SendError> {
    let pace = Pace {
        limiter,
        ..Pace::default()
    };
    send_paced(api, endpoint, policy, observer, pace, make).await
}

/// What an attempt waits for before it is sent.
#[derive(Clone, Copy, Default)]
pub struct Pace<'a> {
    /// The tenant's own limit for the endpoint (its credential's).
    pub limiter: Option<&'a DefaultDirectRateLimiter>,
    /// The tenant's share of the process-wide budget (Personio's per-IP limit).
    pub budget: Option<&'a BudgetShare>,
    /// What the server announced about its own limits (`x-ratelimit-*`): a spent endpoint waits
    /// for its reset before the next attempt.
    pub server: Option<&'a ServerLimits>,
}

impl Pace<'_> {
    /// Waits until an attempt at `endpoint` may be sent: the server's announced reset, then the
    /// tenant's own limiter, then a turn of the shared budget.
    async fn wait_turn(&self, endpoint: &'static str) {
        if let Some(server) = self.server {
            // The server said the endpoint is spent: wait for its reset (without the run slot).
            server.wait_for(endpoint).await;
        }
        if let Some(limiter) = self.limiter {
            // A token at hand is taken at once; a wait for one is a pause without the run slot.
            if limiter.check().is_err() {
                super::pause::paused(limiter.until_ready()).await;
            }
        }
        if let Some(budget) = self.budget {
            // Not a pause: every tenant waits for the same budget, so giving the run slot away
            // would only start more runs that wait for it too.
            budget.take().await;
        }
    }
}

/// The backoff delays between attempts: exponential with jitter, one fewer than the attempts.
fn backoff(policy: &RetryPolicy) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_attempts.saturating_sub(1))
        .with_jitter()
        .build()
}

/// The error of a request given up after `attempts`, from its last outcome (429/5xx or no
/// response).
fn given_up(
    endpoint: &'static str,
    attempts: usize,
    last: Result<Response, reqwest::Error>,
) -> SendError {
    match last {
        Ok(response) => SendError::Status {
            endpoint,
            status: response.status().as_u16(),
            attempts,
            response: Box::new(ResponseDebug(response)),
        },
        Err(error) => SendError::Transport {
            endpoint,
            attempts,
            timeout: error.is_timeout(),
            connected: !error.is_connect(),
            message: transport_message(&error),
        },
    }
}

/// [`send_with_retry`] that also takes a turn of the shared `budget` before every attempt
/// (after the tenant's own limiter: a tenant throttled by its own limit does not hold a turn).
pub async fn send_paced(
    api: &'static str,
    endpoint: &'static str,
    policy: &RetryPolicy,
    observer: &dyn RequestObserver,
    pace: Pace<'_>,
    mut make: impl FnMut() -> RequestBuilder,
) -> Result<Response, SendError> {
    let mut delays = backoff(policy);
    let mut attempts = 0;
    loop {
        attempts += 1;
        pace.wait_turn(endpoint).await;
        let started = Instant::now();
        let result = make().send().await;
        let status = result.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
        observer.observe(RequestRecord {
            api,
            endpoint,
            status,
            elapsed: started.elapsed(),
        });
        let announced = match (pace.server, &result) {
            (Some(server), Ok(response)) => server.observe(endpoint, status, response.headers()),
            _ => None,
        };
        let result = match result {
            Ok(response) if !is_retryable(response.status()) => return Ok(response),
            other => other,
        };
        // A `429` that names its reset waits for it (the next attempt's `wait_turn`), not for
        // the backoff on top.
        let server_delay = result.as_ref().ok().and_then(retry_after);
        let backoff_needed = announced.is_none();
        let Some(delay) = delays.next() else {
            return Err(given_up(endpoint, attempts, result));
        };
        tracing::debug!(api, endpoint, status, attempts, "retrying upstream request");
        // Up to five minutes per `Retry-After`: sleep without holding the run slot.
        if backoff_needed || server_delay.is_some() {
            super::pause::paused(tokio::time::sleep(pause(server_delay, delay))).await;
        }
    }
}

/// A transport error without the URL (which may carry query values).
fn transport_message(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "response body broken"
    } else {
        "connection error"
    };
    let mut source = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(inner) = source {
        detail = inner.to_string();
        source = inner.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({detail})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::MAX_RETRY_AFTER;

    #[test]
    fn a_longer_retry_after_wins_over_the_backoff() {
        let backoff = Duration::from_secs(2);
        assert_eq!(pause(None, backoff), backoff);
        assert_eq!(pause(Some(Duration::from_secs(1)), backoff), backoff);
        assert_eq!(
            pause(Some(Duration::from_secs(9)), backoff),
            Duration::from_secs(9)
        );
    }

    #[test]
    fn an_absurd_retry_after_header_waits_at_most_five_minutes() {
        let response: Response = axum::http::Response::builder()
            .status(429)
            .header("retry-after", "3000000000")
            .body(Vec::<u8>::new())
            .map(Response::from)
            .unwrap();
        let wait = pause(retry_after(&response), Duration::from_secs(1));
        assert_eq!(wait, MAX_RETRY_AFTER);
    }
}
