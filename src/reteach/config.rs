//! Settings of one [`super::ReteachClient`]: where reteach lives, the app credentials and how
//! politely to call it.

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::SecretString;

use crate::upstream::{ClientCredentials, NoopObserver, RequestObserver, RetryPolicy, TlsOptions};

/// Default client-side request rate (requests per second; the burst is the same number).
/// reteach documents no rate limit, so the client stays well below anything a shared API would
/// tolerate.
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 10;

/// reteach's public API.
pub const DEFAULT_BASE_URL: &str = "https://api.reteach.io";

/// Everything [`super::ReteachClient::new`] needs. `Debug` shows no credential.
#[derive(Clone, Debug)]
pub struct ReteachConfig {
    /// API root, e.g. `https://api.reteach.io` (a path prefix is kept, for proxies).
    pub base_url: String,
    /// The app credential (Client-ID, Client-Secret and Client-Code).
    pub credentials: ReteachCredentials,
    /// TLS policy and per-request timeout.
    pub tls: TlsOptions,
    /// Client-side rate limit, also the burst (requests allowed at once); 0 is treated as 1.
    pub requests_per_second: u32,
    /// Retries on 429, 5xx and transport errors.
    pub retry: RetryPolicy,
    /// Receives one record per HTTP request (metrics, tests).
    pub observer: Arc<dyn RequestObserver>,
    /// Where certificate PDFs may be fetched from, and where they are held in transit.
    pub downloads: DownloadPolicy,
}

/// reteach's app credential, as its Secret holds it. `Debug` shows none of it.
#[derive(Clone)]
pub struct ReteachCredentials {
    /// "Client-ID" and "Client-Secret".
    pub client: ClientCredentials,
    /// "Client-Code", the academy's code (a static credential despite its OAuth name).
    pub client_code: SecretString,
}

impl ReteachCredentials {
    /// The app credential `client_id` and `client_secret` of the academy with `client_code`.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        client_code: impl Into<String>,
    ) -> Self {
        Self {
            client: ClientCredentials::new(client_id, client_secret),
            client_code: SecretString::from(client_code.into()),
        }
    }
}

// Hand-written so that secret values can never reach a log line through `{:?}`.
impl std::fmt::Debug for ReteachCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReteachCredentials(<redacted>)")
    }
}

/// Where certificate PDFs may come from. `certificate.url` is data from reteach and may point at
/// the API itself (sent with the bearer token), at a signed storage URL on another host, or
/// anywhere else; redirects are followed by hand (at most 3) and every hop is checked again.
///
/// - The reteach API origin (scheme, host and port of the base URL) is always allowed and is the
///   only place the bearer token is ever sent.
/// - Other hosts only when listed in `allowed_hosts`; they never receive the token.
/// - Hosts other than the API's must resolve to public addresses: loopback, private (RFC 1918,
///   IPv6 ULA) and link-local addresses are refused unless `allow_private_addresses`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DownloadPolicy {
    /// Hosts besides the API's own that may serve certificate PDFs (operator flag
    /// `--allowed-download-hosts`): `storage.example.com` (any port), `storage.example.com:8443`
    /// (that port only) or `*.example.com` (every subdomain). Matched without case. Default empty:
    /// downloads only from the API origin.
    pub allowed_hosts: Vec<String>,
    /// Let download hosts resolve to loopback, private and link-local addresses (tests and the
    /// demo, whose simulators listen on 127.0.0.1). Off by default.
    pub allow_private_addresses: bool,
    /// Directory for PDFs in transit (operator flag `--scratch-dir`, e.g. an `emptyDir` mount
    /// with a read-only root file system); `None` holds each PDF (at most 30 MB) in memory.
    pub scratch_dir: Option<PathBuf>,
    /// How many bytes of PDFs all runs together may hold in memory (operator flag
    /// `--pdf-memory-mib`); `None`: no shared allowance. Not used with `scratch_dir`.
    pub memory: Option<crate::upstream::PdfMemory>,
}

impl DownloadPolicy {
    /// Checks host patterns as an operator passes them (`--allowed-download-hosts`): a host name
    /// or IP address, optionally with `:port`, or `*.domain`. Names the first bad entry, e.g. a
    /// URL with a scheme or path, so the operator refuses to start rather than allow nothing.
    pub fn check_hosts(patterns: &[String]) -> Result<(), String> {
        for pattern in patterns {
            let trimmed = pattern.trim();
            let bare = trimmed.strip_prefix("*.").unwrap_or(trimmed);
            let parsed = url::Url::parse(&format!("https://{bare}/"));
            let plain = !bare.is_empty()
                && !bare.contains(['/', '@', '?', '#', '*'])
                && parsed.is_ok_and(|url| url.host_str().is_some());
            if !plain {
                return Err(format!(
                    "download host {pattern:?} is not a host name, host:port or *.domain"
                ));
            }
        }
        Ok(())
    }
}

impl ReteachConfig {
    /// A configuration with default TLS, rate limit, retries and no observer.
    pub fn new(base_url: impl Into<String>, credentials: ReteachCredentials) -> Self {
        Self {
            base_url: base_url.into(),
            credentials,
            tls: TlsOptions::default(),
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            retry: RetryPolicy::default(),
            observer: Arc::new(NoopObserver),
            downloads: DownloadPolicy::default(),
        }
    }
}

impl Default for ReteachConfig {
    /// reteach's public API without credentials (fill them in from the Secret).
    fn default() -> Self {
        Self::new(DEFAULT_BASE_URL, ReteachCredentials::new("", "", ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(items: &[&str]) -> Vec<String> {
        items.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn debug_hides_credentials() {
        let credentials = ReteachCredentials::new("id-123", "secret-456", "code-789");
        let config = ReteachConfig::new(DEFAULT_BASE_URL, credentials);
        let printed = format!("{config:?}");
        for credential in ["id-123", "secret-456", "code-789"] {
            assert!(!printed.contains(credential), "{printed}");
        }
    }

    #[test]
    fn accepts_host_names_ports_and_wildcards() {
        let ok = hosts(&[
            "storage.example.com",
            "storage.example.com:8443",
            "*.blob.example.net",
            "10.0.0.7",
            "[fd00::1]:9000",
        ]);
        assert_eq!(DownloadPolicy::check_hosts(&ok), Ok(()));
    }

    #[test]
    fn refuses_urls_paths_and_stray_wildcards() {
        for bad in [
            "https://storage.example.com",
            "storage.example.com/certs",
            "",
            "*",
            "a.*.example.com",
            "user@storage.example.com",
        ] {
            let error = DownloadPolicy::check_hosts(&hosts(&[bad])).unwrap_err();
            assert!(error.contains(&format!("{bad:?}")), "{error}");
        }
    }
}
