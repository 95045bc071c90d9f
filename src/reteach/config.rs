//! Settings of one [`super::ReteachClient`]: where reteach lives, the app credentials and how
//! politely to call it.

use std::sync::Arc;

use crate::upstream::{NoopObserver, RequestObserver, RetryPolicy, TlsOptions};

/// Default client-side request rate (requests per second; the burst is the same number).
/// reteach documents no rate limit, so the client stays well below anything a shared API would
/// tolerate.
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 10;

/// reteach's public API.
pub const DEFAULT_BASE_URL: &str = "https://api.reteach.io";

/// Everything [`super::ReteachClient::new`] needs.
#[derive(Clone)]
pub struct ReteachConfig {
    /// API root, e.g. `https://api.reteach.io` (a path prefix is kept, for proxies).
    pub base_url: String,
    /// App credential "Client-ID".
    pub client_id: String,
    /// App credential "Client-Secret".
    pub client_secret: String,
    /// App credential "Client-Code" (a static credential despite its OAuth name).
    pub client_code: String,
    /// TLS policy and per-request timeout.
    pub tls: TlsOptions,
    /// Client-side rate limit, also the burst (requests allowed at once); 0 is treated as 1.
    pub requests_per_second: u32,
    /// Retries on 429, 5xx and transport errors.
    pub retry: RetryPolicy,
    /// Receives one record per HTTP request (metrics, tests).
    pub observer: Arc<dyn RequestObserver>,
}

impl ReteachConfig {
    /// A configuration with default TLS, rate limit, retries and no observer.
    pub fn new(
        base_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        client_code: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            client_code: client_code.into(),
            tls: TlsOptions::default(),
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            retry: RetryPolicy::default(),
            observer: Arc::new(NoopObserver),
        }
    }
}

impl Default for ReteachConfig {
    /// reteach's public API without credentials (fill them in from the Secret).
    fn default() -> Self {
        Self::new(DEFAULT_BASE_URL, "", "", "")
    }
}

// Hand-written so that secrets never reach a log line through `{:?}`.
impl std::fmt::Debug for ReteachConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReteachConfig")
            .field("base_url", &self.base_url)
            .field("client_id", &"<redacted>")
            .field("client_secret", &"<redacted>")
            .field("client_code", &"<redacted>")
            .field("tls", &self.tls)
            .field("requests_per_second", &self.requests_per_second)
            .field("retry", &self.retry)
            .finish()
    }
}
