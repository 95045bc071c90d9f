//! Upstream clients built from a resource's connection settings and Secret, cached per tenant so
//! tokens and rate limiters survive from one run to the next (and are shared by resources that use
//! the same credentials, as Personio's limits are per credential). Rotated and idle entries are
//! dropped ([`TenantCache`]); the HTTP machinery underneath is shared by all tenants
//! ([`crate::upstream::HttpPool`]).

use std::sync::Arc;
use std::time::Instant;

use secrecy::ExposeSecret;

use super::tenant_cache::{TenantCache, TenantKey};
use crate::api::{PersonioConnection, ReteachConnection};
use crate::credentials::{PersonioCredentials, ReteachCredentials};
use crate::jobs::connection::{
    ClientOptions, ConnectionClients, PersonioEndpoint, ReteachEndpoint,
};
use crate::metrics::{Metrics, MetricsObserver};
use crate::personio::{PersonioApi, PersonioError};
use crate::reteach::{DownloadPolicy, ReteachApi, ReteachError};
use crate::upstream::{ClientCredentials, SharedBudget};

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
        let endpoint = PersonioEndpoint::from(connection);
        let key = tenant_key(&endpoint.base_url, &endpoint, credentials, &[], &ca_bundle);
        self.personio.get_or_build(key, Instant::now(), || {
            let client = self.builder.personio(&endpoint, credentials, ca_bundle)?;
            Ok(Arc::new(client) as Arc<dyn PersonioApi>)
        })
    }

    /// The reteach client for these settings (cached).
    pub fn reteach(
        &self,
        connection: &ReteachConnection,
        credentials: &ReteachCredentials,
        ca_bundle: Option<Vec<u8>>,
    ) -> Result<Arc<dyn ReteachApi>, ReteachError> {
        let endpoint = ReteachEndpoint::from(connection);
        let code = [credentials.client_code.expose_secret()];
        let key = tenant_key(
            &endpoint.base_url,
            &endpoint,
            &credentials.client,
            &code,
            &ca_bundle,
        );
        self.reteach.get_or_build(key, Instant::now(), || {
            let client = self.builder.reteach(&endpoint, credentials, ca_bundle)?;
            Ok(Arc::new(client) as Arc<dyn ReteachApi>)
        })
    }
}

/// The cache key of a client built from `endpoint` and `credentials`: the slot is the endpoint's
/// base URL, the client id and the `other_ids` of the credential (what a rotation keeps); the rest
/// is everything else the client is built from: the whole endpoint (its derived `Debug` form lists
/// every field, so a setting added later, like `spec.personio.api`, cannot be left out of the
/// key), the client secret and the CA bundle.
fn tenant_key(
    base_url: &str,
    endpoint: &impl std::fmt::Debug,
    credentials: &ClientCredentials,
    other_ids: &[&str],
    ca_bundle: &Option<Vec<u8>>,
) -> TenantKey {
    let mut slot = vec![
        base_url.as_bytes(),
        credentials.id.expose_secret().as_bytes(),
    ];
    slot.extend(other_ids.iter().map(|id| id.as_bytes()));
    let settings = format!("{endpoint:?}");
    let rest = [
        settings.as_bytes(),
        credentials.secret.expose_secret().as_bytes(),
        ca_bundle.as_deref().unwrap_or_default(),
    ];
    TenantKey::new(&slot, &rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients() -> UpstreamClients {
        UpstreamClients::new(
            Arc::new(Metrics::new()),
            DownloadPolicy::default(),
            None,
            1.0,
        )
    }

    fn personio_connection(api: &str) -> PersonioConnection {
        let spec = serde_json::json!({"credentialsSecretRef": {"name": "hr"}, "api": api});
        serde_json::from_value(spec).unwrap()
    }

    fn credentials(secret: &str) -> PersonioCredentials {
        PersonioCredentials::new("id", secret)
    }

    #[test]
    fn a_client_is_reused_only_for_the_same_endpoint_and_credential() {
        let clients = clients();
        let get = |api: &str, secret: &str| {
            let connection = personio_connection(api);
            clients
                .personio(&connection, &credentials(secret), None)
                .unwrap()
        };
        let v1 = get("v1", "s1");
        assert!(Arc::ptr_eq(&v1, &get("v1", "s1")), "same settings: cached");
        let v2 = get("v2", "s1");
        assert!(
            !Arc::ptr_eq(&v1, &v2),
            "switching spec.personio.api builds a client for the other API"
        );
        assert!(!Arc::ptr_eq(&v2, &get("v2", "s2")), "a rotated secret too");
    }
}
