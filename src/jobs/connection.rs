//! The one way to build the clients of a connection: where an upstream is (the spec's
//! `personio`/`reteach` blocks), the credentials from its Secret, an optional CA bundle, and the
//! options of whoever builds them (who observes the requests, how they retry, how fast they may
//! go). The controller (behind its per-tenant cache), the demo, the preflight and the benchmark
//! all build their clients here, so a client is configured the same way everywhere; connection
//! pooling across tenants belongs in [`ConnectionClients`] too.

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;

use crate::api::{PersonioApiVersion, PersonioConnection, ReteachConnection};
use crate::personio::{
    EmployeeApi, PersonioClient, PersonioConfig, PersonioError, PersonioRateLimits, DEFAULT_APP_ID,
};
use crate::reteach::{
    DownloadPolicy, ReteachClient, ReteachConfig, ReteachError, DEFAULT_REQUESTS_PER_SECOND,
};
use crate::upstream::{NoopObserver, RequestObserver, RetryPolicy, SharedBudget, TlsOptions};

// What a connection's Secret holds (each client's credential type, kept next to that client).
pub use crate::personio::PersonioCredentials;
pub use crate::reteach::ReteachCredentials;

/// Where Personio is: the parts of [`PersonioConnection`] a client needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonioEndpoint {
    /// Base URL of the API.
    pub base_url: String,
    /// `X-Personio-App-ID` header value.
    pub app_id: String,
    /// Whether plain `http://` is allowed.
    pub allow_insecure_http: bool,
    /// Which API employees are read through.
    pub employee_api: EmployeeApi,
}

impl From<&PersonioConnection> for PersonioEndpoint {
    fn from(connection: &PersonioConnection) -> Self {
        Self {
            base_url: connection.base_url.clone(),
            app_id: connection.app_id.clone(),
            allow_insecure_http: connection.allow_insecure_http,
            employee_api: match connection.api {
                PersonioApiVersion::V1 => EmployeeApi::V1,
                PersonioApiVersion::V2 => EmployeeApi::V2,
            },
        }
    }
}

impl PersonioEndpoint {
    /// A local simulator at `base_url` (plain http, the default app id).
    pub fn simulator(base_url: &str) -> Self {
        Self {
            base_url: base_url.to_string(),
            app_id: DEFAULT_APP_ID.to_string(),
            allow_insecure_http: true,
            employee_api: EmployeeApi::V1,
        }
    }
}

/// Where reteach is: the parts of [`ReteachConnection`] a client needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReteachEndpoint {
    /// Base URL of the API.
    pub base_url: String,
    /// Whether plain `http://` is allowed.
    pub allow_insecure_http: bool,
}

impl From<&ReteachConnection> for ReteachEndpoint {
    fn from(connection: &ReteachConnection) -> Self {
        Self {
            base_url: connection.base_url.clone(),
            allow_insecure_http: connection.allow_insecure_http,
        }
    }
}

impl ReteachEndpoint {
    /// A local simulator at `base_url` (plain http).
    pub fn simulator(base_url: &str) -> Self {
        Self {
            base_url: base_url.to_string(),
            allow_insecure_http: true,
        }
    }
}

/// How the builder configures clients beyond their connection.
#[derive(Clone)]
pub struct ClientOptions {
    /// Receives every request (metrics, the demo's log, the benchmark's tally).
    pub observer: Arc<dyn RequestObserver>,
    /// Retries of 429, 5xx and transport errors.
    pub retry: RetryPolicy,
    /// Personio's per-endpoint limits.
    pub personio_limits: PersonioRateLimits,
    /// The reteach client's limit (requests per second, also its burst).
    pub reteach_requests_per_second: u32,
    /// What certificate downloads may fetch.
    pub downloads: DownloadPolicy,
    /// Per-request timeout (`None`: the clients' default).
    pub timeout: Option<Duration>,
    /// The process-wide Personio budget every Personio client takes its turns from (one share
    /// per credential); `None`: only the per-credential limits.
    pub personio_budget: Option<SharedBudget>,
}

impl Default for ClientOptions {
    /// The operator's settings: Personio's published limits, reteach's default rate, default
    /// retries and download policy, no observer.
    fn default() -> Self {
        Self {
            observer: Arc::new(NoopObserver),
            retry: RetryPolicy::default(),
            personio_limits: PersonioRateLimits::default(),
            reteach_requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            downloads: DownloadPolicy::default(),
            timeout: None,
            personio_budget: None,
        }
    }
}

/// Builds the clients of a connection with one set of [`ClientOptions`].
#[derive(Clone)]
pub struct ConnectionClients {
    options: ClientOptions,
}

impl ConnectionClients {
    /// A builder whose clients use `options`.
    pub fn new(options: ClientOptions) -> Self {
        Self { options }
    }

    /// The options the clients are built with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    fn tls(&self, ca_bundle: Option<Vec<u8>>, allow_insecure_http: bool) -> TlsOptions {
        TlsOptions {
            ca_bundle_pem: ca_bundle,
            allow_insecure_http,
            timeout: self.options.timeout,
        }
    }

    /// A Personio client for `endpoint` with `credentials`, trusting `ca_bundle` in addition to
    /// the system roots.
    pub fn personio(
        &self,
        endpoint: &PersonioEndpoint,
        credentials: &PersonioCredentials,
        ca_bundle: Option<Vec<u8>>,
    ) -> Result<PersonioClient, PersonioError> {
        PersonioClient::new(PersonioConfig {
            base_url: endpoint.base_url.clone(),
            credentials: credentials.clone(),
            app_id: endpoint.app_id.clone(),
            tls: self.tls(ca_bundle, endpoint.allow_insecure_http),
            limits: self.options.personio_limits,
            retry: self.options.retry.clone(),
            observer: self.options.observer.clone(),
            employee_api: endpoint.employee_api,
            budget: self.options.personio_budget.as_ref().map(|budget| {
                let id = credentials.id.expose_secret();
                budget.share(format!("{}\n{id}", endpoint.base_url).as_bytes())
            }),
        })
    }

    /// A reteach client for `endpoint` with `credentials`, trusting `ca_bundle` in addition to
    /// the system roots.
    pub fn reteach(
        &self,
        endpoint: &ReteachEndpoint,
        credentials: &ReteachCredentials,
        ca_bundle: Option<Vec<u8>>,
    ) -> Result<ReteachClient, ReteachError> {
        ReteachClient::new(ReteachConfig {
            base_url: endpoint.base_url.clone(),
            credentials: credentials.clone(),
            tls: self.tls(ca_bundle, endpoint.allow_insecure_http),
            requests_per_second: self.options.reteach_requests_per_second,
            retry: self.options.retry.clone(),
            observer: self.options.observer.clone(),
            downloads: self.options.downloads.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show_in_debug_output() {
        let credentials = ReteachCredentials::new("id", "s3cret", "code");
        assert_eq!(format!("{credentials:?}"), "ReteachCredentials(<redacted>)");
    }

    #[test]
    fn a_client_is_built_for_an_endpoint_and_refuses_plain_http_unless_allowed() {
        let clients = ConnectionClients::new(ClientOptions::default());
        let credentials = PersonioCredentials::new("id", "secret");
        let mut endpoint = PersonioEndpoint::simulator("http://127.0.0.1:1");
        assert!(clients.personio(&endpoint, &credentials, None).is_ok());
        endpoint.allow_insecure_http = false;
        assert!(matches!(
            clients.personio(&endpoint, &credentials, None),
            Err(PersonioError::Config(_))
        ));
    }
}
