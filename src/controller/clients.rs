//! Upstream clients built from a resource's connection settings and Secret, cached per tenant so
//! tokens and rate limiters survive from one run to the next (and are shared by resources that use
//! the same credentials, as Personio's limits are per credential).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use super::credentials::{PersonioCredentials, ReteachCredentials};
use super::metrics::{Metrics, MetricsObserver};
use crate::api::{PersonioConnection, ReteachConnection};
use crate::jobs::connection::{
    ClientOptions, ConnectionClients, PersonioEndpoint, ReteachEndpoint,
};
use crate::personio::{PersonioApi, PersonioError};
use crate::reteach::{DownloadPolicy, ReteachApi, ReteachError};

/// Cache of upstream clients, built by [`ConnectionClients`].
pub struct UpstreamClients {
    builder: ConnectionClients,
    personio: ClientCache<dyn PersonioApi>,
    reteach: ClientCache<dyn ReteachApi>,
}

/// Clients of one upstream by the fingerprint of their settings.
struct ClientCache<T: ?Sized>(Mutex<HashMap<u64, Arc<T>>>);

impl<T: ?Sized> Default for ClientCache<T> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<T: ?Sized> ClientCache<T> {
    /// The client for `settings` (only what the client is built from: resources that share
    /// credentials share a client and its rate limiters), built by `build` when there is none yet.
    fn get_or_build<E>(
        &self,
        settings: &impl Hash,
        build: impl FnOnce() -> Result<Arc<T>, E>,
    ) -> Result<Arc<T>, E> {
        let key = fingerprint(settings);
        // A panic elsewhere while holding the lock leaves a usable map: clients are immutable.
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = cache.get(&key) {
            return Ok(client.clone());
        }
        let client = build()?;
        cache.insert(key, client.clone());
        Ok(client)
    }
}

fn fingerprint(settings: &impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    settings.hash(&mut hasher);
    hasher.finish()
}

impl UpstreamClients {
    /// An empty cache whose clients report to `metrics`.
    pub fn new(metrics: Arc<Metrics>, downloads: DownloadPolicy) -> Self {
        let builder = ConnectionClients::new(ClientOptions {
            observer: Arc::new(MetricsObserver(metrics)),
            downloads,
            ..ClientOptions::default()
        });
        Self {
            builder,
            personio: ClientCache::default(),
            reteach: ClientCache::default(),
        }
    }

    /// The Personio client for these settings (cached).
    pub fn personio(
        &self,
        connection: &PersonioConnection,
        credentials: &PersonioCredentials,
        ca_bundle: Option<Vec<u8>>,
    ) -> Result<Arc<dyn PersonioApi>, PersonioError> {
        let settings = (
            &connection.base_url,
            &connection.app_id,
            connection.allow_insecure_http,
        );
        let key = (settings, credentials, &ca_bundle);
        self.personio.get_or_build(&key, || {
            let endpoint = PersonioEndpoint::from(connection);
            let client = self
                .builder
                .personio(&endpoint, credentials, ca_bundle.clone())?;
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
        let key = (
            &connection.base_url,
            connection.allow_insecure_http,
            credentials,
            &ca_bundle,
        );
        self.reteach.get_or_build(&key, || {
            let endpoint = ReteachEndpoint::from(connection);
            let client = self
                .builder
                .reteach(&endpoint, credentials, ca_bundle.clone())?;
            Ok(Arc::new(client) as Arc<dyn ReteachApi>)
        })
    }
}
