//! Upstream clients built from a resource's connection settings and Secret, cached per tenant so
//! tokens and rate limiters survive from one run to the next (and are shared by resources that use
//! the same credentials, as Personio's limits are per credential). Rotated and idle entries are
//! dropped ([`TenantCache`]); the HTTP machinery underneath is shared by all tenants
//! ([`crate::upstream::HttpPool`]).

use std::sync::Arc;
use std::time::Instant;

use super::tenant_cache::{TenantCache, TenantKey};
use crate::api::{PersonioConnection, ReteachConnection};
use crate::credentials::{PersonioCredentials, ReteachCredentials};
use crate::jobs::connection::{
    ClientOptions, ConnectionClients, PersonioEndpoint, ReteachEndpoint,
};
use crate::metrics::{Metrics, MetricsObserver};
use crate::personio::{PersonioApi, PersonioError};
use crate::reteach::{DownloadPolicy, ReteachApi, ReteachError};
use crate::upstream::SharedBudget;

/// Cache of upstream clients, built by [`ConnectionClients`].
pub struct UpstreamClients {
    builder: ConnectionClients,
    personio: TenantCache<Arc<dyn PersonioApi>>,
    reteach: TenantCache<Arc<dyn ReteachApi>>,
}

impl UpstreamClients {
    /// An empty cache whose clients report to `metrics` and whose Personio clients take turns
    /// of `personio_budget` (one share per credential). `rate_scale` multiplies the published
    /// rate limits of both upstreams (1.0 in production; soak tests against scaled simulators).
    pub fn new(
        metrics: Arc<Metrics>,
        downloads: DownloadPolicy,
        personio_budget: Option<SharedBudget>,
        rate_scale: f64,
    ) -> Self {
        let reteach_rate = f64::from(crate::reteach::DEFAULT_REQUESTS_PER_SECOND) * rate_scale;
        let builder = ConnectionClients::new(ClientOptions {
            observer: Arc::new(MetricsObserver(metrics)),
            downloads,
            personio_budget,
            personio_limits: crate::personio::PersonioRateLimits::scaled(rate_scale),
            // At least the published rate, at most what a u32 holds (the option allows ≤ 1000×).
            reteach_requests_per_second: reteach_rate
                .clamp(f64::from(crate::reteach::DEFAULT_REQUESTS_PER_SECOND), 1e6)
                as u32,
            ..ClientOptions::default()
        });
        Self {
            builder,
            personio: TenantCache::default(),
            reteach: TenantCache::default(),
        }
    }

    /// The Personio client for these settings (cached).
    pub fn personio(
        &self,
        connection: &PersonioConnection,
        credentials: &PersonioCredentials,
        ca_bundle: Option<Vec<u8>>,
    ) -> Result<Arc<dyn PersonioApi>, PersonioError> {
        let key = TenantKey::new(
            &[
                connection.base_url.as_bytes(),
                credentials.client_id.as_bytes(),
            ],
            &[
                connection.app_id.as_bytes(),
                &[u8::from(connection.allow_insecure_http)],
                credentials.client_secret.as_bytes(),
                ca_bundle.as_deref().unwrap_or_default(),
            ],
        );
        self.personio.get_or_build(key, Instant::now(), || {
            let client: Arc<dyn PersonioApi> = Arc::new(self.builder.personio(
                &PersonioEndpoint::from(connection),
                credentials,
                ca_bundle,
            )?);
            Ok(client)
        })
    }

    /// The reteach client for these settings (cached).
    pub fn reteach(
        &self,
        connection: &ReteachConnection,
        credentials: &ReteachCredentials,
        ca_bundle: Option<Vec<u8>>,
    ) -> Result<Arc<dyn ReteachApi>, ReteachError> {
        let key = TenantKey::new(
            &[
                connection.base_url.as_bytes(),
                credentials.client_id.as_bytes(),
                credentials.client_code.as_bytes(),
            ],
            &[
                &[u8::from(connection.allow_insecure_http)],
                credentials.client_secret.as_bytes(),
                ca_bundle.as_deref().unwrap_or_default(),
            ],
        );
        self.reteach.get_or_build(key, Instant::now(), || {
            let client: Arc<dyn ReteachApi> = Arc::new(self.builder.reteach(
                &ReteachEndpoint::from(connection),
                credentials,
                ca_bundle,
            )?);
            Ok(client)
        })
    }
}
