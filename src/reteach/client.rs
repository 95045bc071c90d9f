//! [`ReteachClient`]: the HTTP client behind [`super::ReteachApi`]. This file holds construction
//! and the request plumbing (auth, retries, JSON); the endpoints live in `customers.rs`,
//! `participations.rs` and `download.rs`.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;
use url::Url;

use super::auth::{Authorize, TokenCache};
use super::response::{error_for, read_json, unavailable, BodyError};
use super::{ReteachConfig, ReteachError};
use crate::upstream::{
    build_download_client, build_http_client, debug_client, send_with_retry, GuardedResolver,
};

/// Talks to one reteach academy. Cheap to share behind an `Arc`; holds one rate limiter and one
/// token cache for all calls.
pub struct ReteachClient {
    pub(crate) config: ReteachConfig,
    pub(crate) http: reqwest::Client,
    /// Certificate downloads: no automatic redirects, non-public addresses guarded.
    pub(crate) download_http: reqwest::Client,
    pub(crate) base: Url,
    pub(crate) limiter: DefaultDirectRateLimiter,
    pub(crate) tokens: TokenCache,
}

impl std::fmt::Debug for ReteachClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_client(f, "ReteachClient", &self.base)
    }
}

impl ReteachClient {
    /// Checks the base URL and TLS options and builds the client. Does not contact reteach.
    pub fn new(config: ReteachConfig) -> Result<Self, ReteachError> {
        let (http, base) = build_http_client(&config.base_url, &config.tls)
            .map_err(|e| ReteachError::Config(format!("reteach: {e}")))?;
        let resolver = GuardedResolver {
            exempt_host: base.host_str().unwrap_or_default().to_ascii_lowercase(),
            allow_private: config.downloads.allow_private_addresses,
        };
        let download_http = build_download_client(&config.tls, resolver)
            .map_err(|e| ReteachError::Config(format!("reteach: {e}")))?;
        let rate = NonZeroU32::new(config.requests_per_second).unwrap_or(NonZeroU32::MIN);
        let limiter = RateLimiter::direct(Quota::per_second(rate).allow_burst(rate));
        Ok(Self {
            config,
            http,
            download_http,
            base,
            limiter,
            tokens: TokenCache::default(),
        })
    }

    /// The base URL with `segments` appended (each one percent-encoded, so an e-mail address or
    /// id cannot change the path).
    pub(crate) fn url(&self, segments: &[&str]) -> Result<Url, ReteachError> {
        let mut url = self.base.clone();
        url.set_query(None);
        url.path_segments_mut()
            .map_err(|_| ReteachError::Config("reteach: base URL cannot have a path".to_string()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// What the token cache needs to exchange the credentials.
    fn authorize(&self) -> Result<Authorize<'_>, ReteachError> {
        Ok(Authorize {
            config: &self.config,
            http: &self.http,
            limiter: &self.limiter,
            url: self.url(&["oauth", "authorize"])?,
        })
    }

    /// One request (with retries on 429/5xx/transport errors) carrying `token`.
    async fn send_with_token(
        &self,
        endpoint: &'static str,
        make: &impl Fn() -> RequestBuilder,
        token: &str,
    ) -> Result<Response, ReteachError> {
        send_with_retry(
            "reteach",
            endpoint,
            &self.config.retry,
            self.config.observer.as_ref(),
            Some(&self.limiter),
            || make().bearer_auth(token),
        )
        .await
        .map_err(unavailable)
    }

    /// Sends an authenticated request. A 401, or a 403 to a token taken from the cache, drops the
    /// token and the request is sent once more with a fresh one (reteach's spec answers every
    /// operation with `403 Forbidden resource` and never documents 401, so a revoked or expired
    /// token most likely looks like a 403). Only an answer to a freshly issued token is final: a
    /// second 401 means the credentials no longer work, a 403 that the app lacks the right.
    pub(crate) async fn send_authorized(
        &self,
        endpoint: &'static str,
        make: impl Fn() -> RequestBuilder,
    ) -> Result<Response, ReteachError> {
        let token = self.tokens.token(self.authorize()?).await?;
        let response = self.send_with_token(endpoint, &make, &token.value).await?;
        if !may_be_a_dead_token(response.status(), token.cached) {
            return Ok(response);
        }
        tracing::debug!(
            endpoint,
            status = response.status().as_u16(),
            "reteach refused the cached token; exchanging credentials again"
        );
        self.tokens.invalidate(&token.value).await;
        let token = self.tokens.token(self.authorize()?).await?;
        let response = self.send_with_token(endpoint, &make, &token.value).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(error_for(endpoint, response, &[]).await);
        }
        Ok(response)
    }

    /// An authenticated call answered with JSON. Non-success statuses become errors (values in
    /// `submitted` are scrubbed from their messages); a body that breaks off is fetched again.
    pub(crate) async fn call_json(
        &self,
        endpoint: &'static str,
        submitted: &[&str],
        make: impl Fn() -> RequestBuilder,
    ) -> Result<Value, ReteachError> {
        let attempts = self.config.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let response = self.send_authorized(endpoint, &make).await?;
            if !response.status().is_success() {
                return Err(error_for(endpoint, response, submitted).await);
            }
            match read_json(endpoint, response).await {
                Ok(value) => return Ok(value),
                Err(BodyError::Final(error)) => return Err(error),
                Err(BodyError::Broken(message)) if attempt >= attempts => {
                    return Err(ReteachError::Unavailable { message })
                }
                Err(BodyError::Broken(message)) => {
                    tracing::debug!(endpoint, attempt, %message, "retrying after a broken body");
                    self.config.retry.pause_before(attempt).await;
                }
            }
        }
    }

    /// `GET` of the one resource at `segments` ([`Self::call_json`]); `None` when reteach
    /// answers 404.
    pub(crate) async fn get_one(
        &self,
        endpoint: &'static str,
        segments: &[&str],
        submitted: &[&str],
    ) -> Result<Option<Value>, ReteachError> {
        let url = self.url(segments)?;
        found(
            self.call_json(endpoint, submitted, || self.http.get(url.clone()))
                .await,
        )
    }
}

/// Whether `status` may only say that the token died, so that one fresh token deserves a retry: a
/// 401 always, a 403 only when the token came from the cache (to a token issued for this very call
/// it is a real refusal).
fn may_be_a_dead_token(status: StatusCode, cached: bool) -> bool {
    status == StatusCode::UNAUTHORIZED || (status == StatusCode::FORBIDDEN && cached)
}

/// `Ok(None)` for a 404, the value otherwise.
pub(crate) fn found<T>(result: Result<T, ReteachError>) -> Result<Option<T>, ReteachError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(ReteachError::NotFound { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reteach::ReteachCredentials;

    #[test]
    fn url_keeps_a_path_prefix_and_encodes_segments() {
        let credentials = ReteachCredentials::new("id", "secret", "code");
        let config = ReteachConfig::new("https://proxy.example/reteach/", credentials);
        let client = ReteachClient::new(config).unwrap();
        let url = client.url(&["customer", "a/b?c@x.example"]).unwrap();
        assert_eq!(
            url.as_str(),
            "https://proxy.example/reteach/customer/a%2Fb%3Fc@x.example"
        );
    }

    #[test]
    fn only_401_or_403_to_a_cached_token_earns_a_retry() {
        assert!(may_be_a_dead_token(StatusCode::UNAUTHORIZED, true));
        assert!(may_be_a_dead_token(StatusCode::UNAUTHORIZED, false));
        assert!(may_be_a_dead_token(StatusCode::FORBIDDEN, true));
        assert!(!may_be_a_dead_token(StatusCode::FORBIDDEN, false));
        assert!(!may_be_a_dead_token(StatusCode::NOT_FOUND, true));
        assert!(!may_be_a_dead_token(StatusCode::OK, true));
    }

    #[test]
    fn debug_output_hides_credentials() {
        let credentials = ReteachCredentials::new("the-id", "the-secret", "the-code");
        let config = ReteachConfig::new("https://api.reteach.io", credentials);
        let text = format!("{config:?}");
        assert!(
            !text.contains("the-secret") && !text.contains("the-code") && !text.contains("the-id")
        );
    }
}
