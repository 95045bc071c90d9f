//! The two example resources of `examples/`, pointed at the simulators, and the real upstream
//! clients built from them the way the controller builds them from a resource and its Secrets.

use std::sync::Arc;

use crate::api::{CertificateSync, EmployeeSync};
use crate::jobs::allowlist::UpstreamPolicy;
use crate::jobs::connection::{
    ClientOptions, ConnectionClients, PersonioCredentials, PersonioEndpoint, ReteachCredentials,
    ReteachEndpoint,
};
use crate::personio::{PersonioClient, PersonioError, PersonioRateLimits};
use crate::reteach::{DownloadPolicy, ReteachClient, ReteachError};
use crate::sim::reteach::SimCredentials;
use crate::upstream::RequestLog;

/// `examples/employeesync.yaml`, as shipped.
const EMPLOYEE_SYNC_YAML: &str = include_str!("../../examples/employeesync.yaml");
/// `examples/certificatesync.yaml`, as shipped.
const CERTIFICATE_SYNC_YAML: &str = include_str!("../../examples/certificatesync.yaml");

/// reteach requests per second in the demo. The production default (10/s) would stretch the
/// first run to ten seconds; the simulator has no limit of its own.
const DEMO_RETEACH_REQUESTS_PER_SECOND: u32 = 1_000;

/// Why the demo could not set itself up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// An example manifest no longer deserializes into the API types.
    #[error("{file} does not parse as a {kind}: {source}")]
    Example {
        /// The example file.
        file: &'static str,
        /// The expected kind.
        kind: &'static str,
        /// The parse error.
        source: serde_norway::Error,
    },
    /// The Personio client refused its configuration.
    #[error("could not build the Personio client: {0}")]
    Personio(#[from] PersonioError),
    /// The reteach client refused its configuration.
    #[error("could not build the reteach client: {0}")]
    Reteach(#[from] ReteachError),
    /// The demo's own upstream policy refused a base URL (as the operator's would).
    #[error("{0}")]
    Upstream(String),
}

/// Both example resources, with their base URLs pointing at the simulators.
#[derive(Clone, Debug)]
pub struct DemoResources {
    /// `examples/employeesync.yaml`.
    pub employee_sync: EmployeeSync,
    /// `examples/certificatesync.yaml`.
    pub certificate_sync: CertificateSync,
}

impl DemoResources {
    /// Loads the examples and points them at `personio_url` and `reteach_url` (plain HTTP on
    /// loopback, which the spec only allows with `allowInsecureHttp`).
    pub fn load(personio_url: &str, reteach_url: &str) -> Result<Self, SetupError> {
        let mut employee_sync: EmployeeSync =
            serde_norway::from_str(EMPLOYEE_SYNC_YAML).map_err(|source| SetupError::Example {
                file: "examples/employeesync.yaml",
                kind: "EmployeeSync",
                source,
            })?;
        let certificate_sync: CertificateSync = serde_norway::from_str(CERTIFICATE_SYNC_YAML)
            .map_err(|source| SetupError::Example {
                file: "examples/certificatesync.yaml",
                kind: "CertificateSync",
                source,
            })?;
        let spec = &mut employee_sync.spec;
        spec.personio.base_url = personio_url.to_string();
        spec.personio.allow_insecure_http = true;
        spec.reteach.base_url = reteach_url.to_string();
        spec.reteach.allow_insecure_http = true;
        // The same check the operator makes, with what the demo's operator would be started
        // with: the loopback simulators allowed explicitly, plain http allowed explicitly.
        let policy = UpstreamPolicy::new(&["127.0.0.1"], true)
            .map_err(|e| SetupError::Upstream(e.to_string()))?;
        for (field, url) in [("personio", personio_url), ("reteach", reteach_url)] {
            policy
                .check(field, url, true)
                .map_err(|failure| SetupError::Upstream(failure.message().to_string()))?;
        }
        Ok(Self {
            employee_sync,
            certificate_sync,
        })
    }

    /// The Personio client of the EmployeeSync, with the simulator's credential standing in for
    /// the Secret. Client-side rate limits are lifted: the simulator enforces none in the demo
    /// (`bench` measures them).
    pub fn personio_client(
        &self,
        credentials: (String, String),
        log: &RequestLog,
    ) -> Result<PersonioClient, SetupError> {
        let (client_id, client_secret) = credentials;
        let credentials = PersonioCredentials::new(client_id, client_secret);
        let endpoint = PersonioEndpoint::from(&self.employee_sync.spec.personio);
        Ok(clients(log).personio(&endpoint, &credentials, None)?)
    }

    /// The reteach client of the EmployeeSync (CertificateSync reuses it, as the controller does).
    pub fn reteach_client(
        &self,
        credentials: SimCredentials,
        log: &RequestLog,
    ) -> Result<ReteachClient, SetupError> {
        let credentials = ReteachCredentials::new(
            credentials.client_id,
            credentials.client_secret,
            credentials.client_code,
        );
        let endpoint = ReteachEndpoint::from(&self.employee_sync.spec.reteach);
        Ok(clients(log).reteach(&endpoint, &credentials, None)?)
    }
}

/// The demo's client options: requests go to `log`; client-side rate limits are lifted (the
/// simulators enforce none in the demo) and downloads may reach the loopback simulators.
fn clients(log: &RequestLog) -> ConnectionClients {
    ConnectionClients::new(ClientOptions {
        observer: Arc::new(log.clone()),
        personio_limits: PersonioRateLimits::unlimited(),
        reteach_requests_per_second: DEMO_RETEACH_REQUESTS_PER_SECOND,
        downloads: DownloadPolicy {
            allow_private_addresses: true,
            ..DownloadPolicy::default()
        },
        ..ClientOptions::default()
    })
}
