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
    personio: Mutex<HashMap<u64, Arc<dyn PersonioApi>>>,
    reteach: Mutex<HashMap<u64, Arc<dyn ReteachApi>>>,
}

fn fingerprint(parts: &[&[u8]]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for part in parts {
        part.hash(&mut hasher);
    }
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
            personio: Mutex::default(),
            reteach: Mutex::default(),
        }
    }

    /// The Personio client for these settings (cached).
    pub fn personio(
        &self,
        connection: &PersonioConnection,
        credentials: &PersonioCredentials,
        ca_bundle: Option<Vec<u8>>,
    ) -> Result<Arc<dyn PersonioApi>, PersonioError> {
        let key = fingerprint(&[
            connection.base_url.as_bytes(),
            connection.app_id.as_bytes(),
            &[u8::from(connection.allow_insecure_http)],
            credentials.client_id.as_bytes(),
            credentials.client_secret.as_bytes(),
            ca_bundle.as_deref().unwrap_or_default(),
        ]);
        let mut cache = self.personio.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = cache.get(&key) {
            return Ok(client.clone());
        }
        let client: Arc<dyn PersonioApi> = Arc::new(self.builder.personio(
            &PersonioEndpoint::from(connection),
            credentials,
            ca_bundle,
        )?);
        cache.insert(key, client.clone());
        Ok(client)
    }

    /// The reteach client for these settings (cached).
    pub fn reteach(
        &self,
        connection: &ReteachConnection,
        credentials: &ReteachCredentials,
        ca_bundle: Option<Vec<u8>>,
    ) -> Result<Arc<dyn ReteachApi>, ReteachError> {
        let key = fingerprint(&[
            connection.base_url.as_bytes(),
            &[u8::from(connection.allow_insecure_http)],
            credentials.client_id.as_bytes(),
            credentials.client_secret.as_bytes(),
            credentials.client_code.as_bytes(),
            ca_bundle.as_deref().unwrap_or_default(),
        ]);
        let mut cache = self.reteach.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = cache.get(&key) {
            return Ok(client.clone());
        }
        let client: Arc<dyn ReteachApi> = Arc::new(self.builder.reteach(
            &ReteachEndpoint::from(connection),
            credentials,
            ca_bundle,
        )?);
        cache.insert(key, client.clone());
        Ok(client)
    }
}
