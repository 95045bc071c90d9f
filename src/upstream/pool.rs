//! One `reqwest::Client` per distinct transport configuration, shared by every tenant.
//!
//! A `reqwest::Client` carries a rustls configuration with its own copy of the trusted roots, a
//! DNS resolver and a connection pool: about 70 KiB before it sends anything, and an academy needs
//! three (Personio, reteach, certificate downloads). Nothing in it belongs to a tenant —
//! credentials, tokens and rate limiters live in the Personio and reteach clients — so tenants
//! with the same TLS settings (nearly all of them: the public hosts, no extra CA) share one, and
//! its connection pool serves them all (connections are kept per host).
//!
//! The key holds the whole CA bundle, not a hash of it: a collision must never hand one tenant a
//! client that trusts another tenant's CA. Entries nobody asked for during [`IDLE_EVICTION`] are
//! dropped on the next request, so CA bundles that were rotated away do not pile up; a tenant that
//! still holds a clone keeps a working client.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::IdleMap;

/// How long an entry nobody asked for stays in the pool.
pub const IDLE_EVICTION: Duration = Duration::from_secs(2 * 3600);

/// What a shared client is for, as far as it changes the client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientPurpose {
    /// API calls: redirects never followed (see [`super::build_http_client`]), system resolver.
    Api,
    /// Certificate downloads: no automatic redirects, names resolved through a resolver that
    /// keeps non-public addresses away from every host but `exempt_host`.
    Download {
        /// Host (lower case) whose addresses are not checked: the reteach API host.
        exempt_host: String,
        /// Every host may reach non-public addresses (tests, demo).
        allow_private: bool,
    },
}

/// Everything that makes two clients differ.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransportKey {
    /// Extra trusted certificates (PEM), compared byte for byte.
    pub ca_bundle_pem: Option<Arc<[u8]>>,
    /// Plain `http://` allowed.
    pub allow_insecure_http: bool,
    /// Per-request timeout.
    pub timeout: Duration,
    /// API or download client.
    pub purpose: ClientPurpose,
}

/// The pool: shared clients by [`TransportKey`].
pub struct HttpPool {
    clients: IdleMap<TransportKey, reqwest::Client>,
}

impl Default for HttpPool {
    fn default() -> Self {
        Self::new(IDLE_EVICTION)
    }
}

impl HttpPool {
    /// An empty pool that drops entries unused for `idle`.
    pub fn new(idle: Duration) -> Self {
        Self {
            clients: IdleMap::new(idle),
        }
    }

    /// The pool of this process, used by every Personio and reteach client.
    pub fn shared() -> &'static HttpPool {
        static POOL: OnceLock<HttpPool> = OnceLock::new();
        POOL.get_or_init(HttpPool::default)
    }

    /// The client for `key`, built by `build` when there is none.
    pub fn client<E>(
        &self,
        key: &TransportKey,
        build: impl FnOnce() -> Result<reqwest::Client, E>,
    ) -> Result<reqwest::Client, E> {
        self.client_at(key, Instant::now(), build)
    }

    /// [`Self::client`] at `now` (tests move time without sleeping).
    pub fn client_at<E>(
        &self,
        key: &TransportKey,
        now: Instant,
        build: impl FnOnce() -> Result<reqwest::Client, E>,
    ) -> Result<reqwest::Client, E> {
        self.clients.get_or_build(key, now, build, |_| false)
    }

    /// Shared clients held now.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether the pool holds no client.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn key(ca: Option<&[u8]>) -> TransportKey {
        TransportKey {
            ca_bundle_pem: ca.map(Arc::from),
            allow_insecure_http: false,
            timeout: Duration::from_secs(30),
            purpose: ClientPurpose::Api,
        }
    }

    fn build(count: &mut usize) -> Result<reqwest::Client, Infallible> {
        *count += 1;
        Ok(reqwest::Client::new())
    }

    #[test]
    fn tenants_with_the_same_settings_share_one_client() {
        let pool = HttpPool::default();
        let mut built = 0;
        let now = Instant::now();
        for _ in 0..1_000 {
            pool.client_at(&key(None), now, || build(&mut built))
                .unwrap();
        }
        assert_eq!((built, pool.len()), (1, 1));
    }

    #[test]
    fn a_different_ca_bundle_timeout_scheme_or_purpose_gets_its_own_client() {
        let pool = HttpPool::default();
        let mut built = 0;
        let now = Instant::now();
        let download = TransportKey {
            purpose: ClientPurpose::Download {
                exempt_host: "api.reteach.io".into(),
                allow_private: false,
            },
            ..key(None)
        };
        let other_exempt_host = TransportKey {
            purpose: ClientPurpose::Download {
                exempt_host: "eu.reteach.io".into(),
                allow_private: false,
            },
            ..key(None)
        };
        let keys = [
            key(None),
            key(Some(b"ca one")),
            key(Some(b"ca two")),
            TransportKey {
                allow_insecure_http: true,
                ..key(None)
            },
            TransportKey {
                timeout: Duration::from_secs(60),
                ..key(None)
            },
            download,
            other_exempt_host,
        ];
        for key in &keys {
            pool.client_at(key, now, || build(&mut built)).unwrap();
        }
        assert_eq!((built, pool.len()), (keys.len(), keys.len()));
    }

    #[test]
    fn a_client_nobody_asked_for_during_the_idle_time_is_dropped() {
        let pool = HttpPool::new(Duration::from_secs(60));
        let mut built = 0;
        let start = Instant::now();
        pool.client_at(&key(Some(b"rotated away")), start, || build(&mut built))
            .unwrap();
        pool.client_at(&key(None), start, || build(&mut built))
            .unwrap();
        let later = start + Duration::from_secs(59);
        pool.client_at(&key(None), later, || build(&mut built))
            .unwrap();
        assert_eq!(pool.len(), 2, "nothing is idle for 60 s yet");
        pool.client_at(&key(None), start + Duration::from_secs(61), || {
            build(&mut built)
        })
        .unwrap();
        assert_eq!(pool.len(), 1, "the rotated CA's client is gone");
        assert_eq!(built, 2, "the client in use was kept, not rebuilt");
    }

    #[test]
    fn a_failed_build_leaves_no_entry() {
        let pool = HttpPool::default();
        let result: Result<_, &str> = pool.client(&key(None), || Err("bad CA"));
        assert!(result.is_err());
        assert!(pool.is_empty());
    }
}
