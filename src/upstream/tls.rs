//! HTTP client construction: TLS verification always on, optional extra CA bundle, plain `http://`
//! only with an explicit opt-in. Clients come from the process's [`HttpPool`]: tenants with the
//! same settings share one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::pool::{ClientPurpose, HttpPool, TransportKey};

/// TLS and transport options of one upstream.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Extra PEM certificates to trust.
    pub ca_bundle_pem: Option<Vec<u8>>,
    /// Allow `http://` base URLs (tests against simulators only).
    pub allow_insecure_http: bool,
    /// Per-request timeout; default 30 s.
    pub timeout: Option<Duration>,
}

/// A base URL or CA bundle the operator refuses to use.
#[derive(Debug, thiserror::Error)]
pub enum UrlPolicyError {
    #[error("base URL {0:?} is not a valid URL")]
    InvalidUrl(String),
    #[error(
        "base URL {0:?} is not https; set allowInsecureHttp: true only for local test endpoints"
    )]
    InsecureScheme(String),
    #[error("CA bundle is not valid PEM: {0}")]
    InvalidCaBundle(String),
    #[error("cannot build HTTP client: {0}")]
    Client(String),
}

/// The `Debug` of an API client named `name`: its base URL only, never its credentials or token.
pub fn debug_client(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    base: &url::Url,
) -> std::fmt::Result {
    f.debug_struct(name)
        .field("base", &base.as_str())
        .finish_non_exhaustive()
}

/// Checks the base URL and returns the (shared) `reqwest::Client` for it. API clients never
/// follow a redirect: reqwest would re-send a 307/308's body (the token request's client secret)
/// and the `Authorization` header to the same origin, and any origin the allowlist was checked
/// for is the base URL's alone. A redirect comes back to the caller as it is, and each client
/// turns it into an error naming the endpoint (see [`redirect_status`]).
pub fn build_http_client(
    base_url: &str,
    options: &TlsOptions,
) -> Result<(reqwest::Client, url::Url), UrlPolicyError> {
    let url =
        url::Url::parse(base_url).map_err(|_| UrlPolicyError::InvalidUrl(base_url.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if options.allow_insecure_http => {}
        "http" => return Err(UrlPolicyError::InsecureScheme(base_url.to_string())),
        _ => return Err(UrlPolicyError::InvalidUrl(base_url.to_string())),
    }
    let client = HttpPool::shared().client(&transport_key(options, ClientPurpose::Api), || {
        client_builder(options)?
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| UrlPolicyError::Client(e.to_string()))
    })?;
    Ok((client, url))
}

/// A client for certificate downloads: the same TLS settings, but redirects are never followed
/// automatically (each hop is checked by the caller) and names resolve through `resolver`, which
/// keeps non-public addresses away from hosts other than the API.
pub fn build_download_client(
    options: &TlsOptions,
    resolver: super::GuardedResolver,
) -> Result<reqwest::Client, UrlPolicyError> {
    let purpose = ClientPurpose::Download {
        exempt_host: resolver.exempt_host.clone(),
        allow_private: resolver.allow_private,
    };
    HttpPool::shared().client(&transport_key(options, purpose), || {
        client_builder(options)?
            // Each PDF is fetched once, often from a storage host of its own, and the upload to
            // Personio waits for its rate limit anyway: a kept connection would hold its grown
            // read buffer (the size of a PDF) for nothing.
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(resolver))
            .build()
            .map_err(|e| UrlPolicyError::Client(e.to_string()))
    })
}

/// The status of an answer that asks to go elsewhere (3xx but `304 Not Modified`), which an API
/// call never follows; `None` for every other answer.
pub fn redirect_status(status: reqwest::StatusCode) -> Option<u16> {
    (status.is_redirection() && status != reqwest::StatusCode::NOT_MODIFIED)
        .then_some(status.as_u16())
}

fn transport_key(options: &TlsOptions, purpose: ClientPurpose) -> TransportKey {
    TransportKey {
        ca_bundle_pem: options.ca_bundle_pem.as_deref().map(Arc::from),
        allow_insecure_http: options.allow_insecure_http,
        timeout: request_timeout(options),
        purpose,
    }
}

fn request_timeout(options: &TlsOptions) -> Duration {
    options.timeout.unwrap_or(Duration::from_secs(30))
}

/// How long an unused keep-alive connection stays open. A run's requests follow each other within
/// a second or two (rate-limit waits included), and between two runs of an academy lie minutes;
/// tenants on the same API host keep its connections busy. Longer only holds sockets and their
/// buffers for every host that ran recently.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// [`IDLE_CONNECTION_TIMEOUT`] of the clients built from now on, in milliseconds. Only the
/// benchmark changes it: it runs every rate limit and interval `time_scale` times faster, and
/// scales this timeout alike, or a compressed schedule would keep 15 times more connections open.
static IDLE_CONNECTION_TIMEOUT_MS: AtomicU64 = AtomicU64::new(10_000);

/// Runs the idle-connection timeout `time_scale` times faster (benchmark only; see above).
pub fn scale_idle_connection_timeout(time_scale: f64) {
    let ms = (IDLE_CONNECTION_TIMEOUT.as_secs_f64() * 1000.0 / time_scale.max(1.0)).max(1.0);
    IDLE_CONNECTION_TIMEOUT_MS.store(ms as u64, Ordering::SeqCst);
}

/// The idle-connection timeout in force.
pub fn idle_connection_timeout() -> Duration {
    Duration::from_millis(IDLE_CONNECTION_TIMEOUT_MS.load(Ordering::SeqCst))
}

fn client_builder(options: &TlsOptions) -> Result<reqwest::ClientBuilder, UrlPolicyError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .https_only(!options.allow_insecure_http)
        .timeout(request_timeout(options))
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(idle_connection_timeout())
        .user_agent(concat!(
            "reteach-personio-operator/",
            env!("CARGO_PKG_VERSION")
        ));
    if let Some(pem) = &options.ca_bundle_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| UrlPolicyError::InvalidCaBundle(e.to_string()))?;
        if certs.is_empty() {
            return Err(UrlPolicyError::InvalidCaBundle(
                "no certificate found".to_string(),
            ));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_plain_http_without_opt_in() {
        let err = build_http_client("http://api.personio.de", &TlsOptions::default()).unwrap_err();
        assert!(matches!(err, UrlPolicyError::InsecureScheme(_)));
    }

    #[test]
    fn accepts_plain_http_with_opt_in() {
        let options = TlsOptions {
            allow_insecure_http: true,
            ..TlsOptions::default()
        };
        assert!(build_http_client("http://127.0.0.1:8080", &options).is_ok());
    }

    #[test]
    fn every_redirect_but_not_modified_is_one() {
        use reqwest::StatusCode;
        for status in [301, 302, 303, 307, 308] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(redirect_status(status), Some(status.as_u16()));
        }
        assert_eq!(redirect_status(StatusCode::NOT_MODIFIED), None);
        assert_eq!(redirect_status(StatusCode::OK), None);
        assert_eq!(redirect_status(StatusCode::UNAUTHORIZED), None);
    }

    #[test]
    fn rejects_garbage_ca_bundle() {
        let options = TlsOptions {
            ca_bundle_pem: Some(b"not a certificate".to_vec()),
            ..TlsOptions::default()
        };
        assert!(build_http_client("https://api.personio.de", &options).is_err());
    }
}
