//! Access tokens for reteach's API.
//!
//! reteach's token request is an OAuth "authorization_code" exchange, but the "code" is the
//! academy's static Client-Code (README §1.2: clients send the same code on every exchange). So
//! instead of a refresh-token flow whose request shape is undocumented, the client simply redoes
//! the exchange: 5 minutes before the token expires, and once when a request made with a cached
//! token answers 401 or 403 (token revoked or expired early: reteach's published spec declares
//! `403 Forbidden resource` on every operation and never 401, so a dead token most likely looks
//! like a 403). The exchange is single-flight: concurrent callers wait on one mutex and reuse the
//! token the first one fetched.

use std::time::Duration;

use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use governor::DefaultDirectRateLimiter;
use url::Url;

use super::response::{error_for, read_json, unavailable, BodyError};
use super::{ReteachConfig, ReteachError};
use crate::upstream::{send_with_retry, token_lifetime};

/// Token lifetime when reteach does not say (its documentation says one hour).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Fetch a new token this long before the current one expires (at most half its lifetime, so a
/// short-lived token is not re-fetched on every request).
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Endpoint name used in metrics and errors.
pub const AUTHORIZE: &str = "POST /oauth/authorize";

/// The body of `POST /oauth/authorize`.
#[derive(Serialize)]
struct AuthorizeRequest<'a> {
    grant_type: &'static str,
    code: &'a str,
    client_secret: &'a str,
    client_id: &'a str,
}

/// A cached access token.
#[derive(Clone)]
struct CachedToken {
    value: String,
    refresh_at: Instant,
}

/// A token handed to a caller, and whether it was cached from an earlier exchange (then a 401 or
/// 403 may only mean that it died) or was issued for this call (then a 403 is a real refusal).
#[derive(Clone, Debug)]
pub(crate) struct IssuedToken {
    /// The bearer value.
    pub value: String,
    /// Taken from the cache rather than exchanged just now.
    pub cached: bool,
}

/// Caches the bearer token and fetches a new one when needed.
#[derive(Default)]
pub(crate) struct TokenCache {
    current: Mutex<Option<CachedToken>>,
}

impl TokenCache {
    /// A valid token, exchanging the credentials first when there is none or it is about to expire.
    pub(crate) async fn token(
        &self,
        authorize: Authorize<'_>,
    ) -> Result<IssuedToken, ReteachError> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref() {
            if Instant::now() < token.refresh_at {
                return Ok(IssuedToken {
                    value: token.value.clone(),
                    cached: true,
                });
            }
        }
        let fresh = exchange(authorize).await?;
        let value = fresh.value.clone();
        *current = Some(fresh);
        Ok(IssuedToken {
            value,
            cached: false,
        })
    }

    /// Makes the cached token due for renewal (tests only: real time is not moved in tests).
    #[cfg(test)]
    pub(crate) async fn make_due(&self) {
        if let Some(token) = self.current.lock().await.as_mut() {
            token.refresh_at = Instant::now();
        }
    }

    /// Forgets `rejected` (answered 401 or 403) unless another caller already replaced it.
    pub(crate) async fn invalidate(&self, rejected: &str) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|t| t.value == rejected) {
            *current = None;
        }
    }
}

/// What a credential exchange needs of the client.
pub(crate) struct Authorize<'a> {
    /// Credentials and retry policy.
    pub config: &'a ReteachConfig,
    /// The client's HTTP client.
    pub http: &'a reqwest::Client,
    /// The client's rate limiter (an exchange counts against it).
    pub limiter: &'a DefaultDirectRateLimiter,
    /// `…/oauth/authorize` under the client's base URL.
    pub url: Url,
}

/// One credential exchange.
async fn exchange(authorize: Authorize<'_>) -> Result<CachedToken, ReteachError> {
    let Authorize {
        config,
        http,
        limiter,
        url,
    } = authorize;
    let body = AuthorizeRequest {
        grant_type: "authorization_code",
        code: config.credentials.client_code.expose_secret(),
        client_secret: config.credentials.client.secret.expose_secret(),
        client_id: config.credentials.client.id.expose_secret(),
    };
    let secrets = [body.code, body.client_secret, body.client_id];
    let attempts = config.retry.max_attempts.max(1);
    let mut attempt = 0;
    let value = loop {
        attempt += 1;
        let response = send_with_retry(
            "reteach",
            AUTHORIZE,
            &config.retry,
            config.observer.as_ref(),
            Some(limiter),
            || http.post(url.clone()).json(&body),
        )
        .await
        .map_err(unavailable)?;
        let status = response.status();
        if !status.is_success() {
            // reteach answers bad credentials with 401 (or 400/403 in some NestJS guards): all of
            // them need a human to fix the Secret.
            let error = error_for(AUTHORIZE, response, &secrets).await;
            return Err(match (status, error) {
                (
                    StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN,
                    ReteachError::Rejected { message, .. },
                )
                | (StatusCode::FORBIDDEN, ReteachError::Forbidden { message, .. }) => {
                    ReteachError::Unauthorized { message }
                }
                (_, other) => other,
            });
        }
        match read_json(AUTHORIZE, response).await {
            Ok(value) => break value,
            Err(BodyError::Broken(message)) if attempt >= attempts => {
                return Err(ReteachError::Unavailable { message })
            }
            Err(BodyError::Broken(_)) => config.retry.pause_before(attempt).await,
            Err(BodyError::Final(error)) => return Err(error),
        }
    };
    parse_token(&value)
}

/// Reads `access_token` and `expires_in`. A `refresh_token` is ignored on purpose (see module docs).
fn parse_token(value: &Value) -> Result<CachedToken, ReteachError> {
    let token = value
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ReteachError::Malformed {
            endpoint: AUTHORIZE,
            message: "no access_token in the response".to_string(),
        })?;
    // Bounded (30 s … 24 h): an absurd `expires_in` can neither overflow the clock nor keep a
    // token in use for longer than a day.
    let lifetime = token_lifetime(value.get("expires_in"), DEFAULT_TOKEN_LIFETIME);
    let usable = lifetime.saturating_sub(REFRESH_MARGIN.min(lifetime / 2));
    Ok(CachedToken {
        value: token.to_string(),
        refresh_at: Instant::now() + usable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::reteach::{ReteachApi, ReteachClient, ReteachConfig, ReteachCredentials};
    use crate::sim::reteach::ReteachSim;
    use crate::upstream::{RequestLog, TlsOptions};
    use serde_json::json;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_token_due_for_renewal_is_replaced_before_it_is_rejected() {
        let sim = ReteachSim::new(Arc::new(SystemClock));
        let server = sim.start(([127, 0, 0, 1], 0).into()).await.unwrap();
        let credentials = sim.credentials();
        let mut config = ReteachConfig::new(
            server.base_url(),
            ReteachCredentials::new(
                credentials.client_id,
                credentials.client_secret,
                credentials.client_code,
            ),
        );
        config.tls = TlsOptions {
            allow_insecure_http: true,
            ..TlsOptions::default()
        };
        let log = RequestLog::default();
        config.observer = Arc::new(log.clone());
        let client = ReteachClient::new(config).unwrap();
        client.me().await.unwrap();
        client.me().await.unwrap();
        assert_eq!(log.count(AUTHORIZE), 1);
        client.tokens.make_due().await;
        client.me().await.unwrap();
        assert_eq!(log.count(AUTHORIZE), 2);
        assert!(log.records().iter().all(|r| r.status != 401));
    }

    /// Asserts that the token of `response` is due for renewal after more than `after` seconds
    /// and at most `by` seconds from now.
    #[track_caller]
    fn assert_renewed_between(response: Value, after: u64, by: u64) {
        let token = parse_token(&response).unwrap();
        let left = token.refresh_at - Instant::now();
        assert!(left <= Duration::from_secs(by), "{response}");
        assert!(left > Duration::from_secs(after), "{response}");
    }

    #[test]
    fn token_without_lifetime_lasts_an_hour_minus_margin() {
        let response = json!({"access_token": "t", "refresh_token": "r"});
        assert_renewed_between(response, 3200, 3300);
    }

    #[test]
    fn short_lived_token_is_refreshed_at_half_its_lifetime() {
        assert_renewed_between(json!({"access_token": "t", "expires_in": 60}), 20, 30);
    }

    #[test]
    fn absurd_lifetimes_neither_panic_nor_outlive_a_day() {
        let absurd = [
            json!(u64::MAX),
            json!(1e300),
            json!("1e30"),
            json!(i64::MAX),
        ];
        for expires_in in absurd {
            let response = json!({"access_token": "t", "expires_in": expires_in});
            assert_renewed_between(response, 23 * 3600, 24 * 3600);
        }
    }

    #[test]
    fn zero_or_negative_lifetimes_still_leave_a_short_usable_token() {
        for expires_in in [json!(0), json!(-3600), json!(i64::MIN), json!("-1")] {
            let response = json!({"access_token": "t", "expires_in": expires_in});
            assert_renewed_between(response, 5, 15);
        }
    }

    #[test]
    fn missing_token_is_malformed() {
        assert!(matches!(
            parse_token(&json!({"token": "t"})),
            Err(ReteachError::Malformed { .. })
        ));
    }
}
