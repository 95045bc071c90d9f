//! The per-tenant half of the upstream clients (credentials, token, rate limiters), cached between
//! runs so tokens and limiters survive, with two ways out:
//!
//! - **Rotation:** an entry belongs to a *slot* (upstream and credential id) and is keyed by
//!   everything that built it (secret and CA bundle included). When a slot comes back with a
//!   different key — the Secret was rotated — the old entry is dropped at once; a run still
//!   holding it finishes with it.
//! - **Idle eviction:** an entry nobody asked for during the idle time (a suspended or deleted
//!   resource) is dropped on the next request. The idle time is longer than the usual intervals,
//!   so a working resource keeps its token; one with an interval above it fetches a token per
//!   run, one request in hours.
//!
//! Keys are compared in full, not by hash: a collision must never hand one tenant another
//! tenant's client.

use std::time::{Duration, Instant};

use crate::upstream::IdleMap;

/// How long a tenant's clients stay cached without a run.
pub const TENANT_IDLE_EVICTION: Duration = Duration::from_secs(2 * 3600);

/// Identifies a cache entry: the slot (which credential of which upstream) and the full key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TenantKey {
    slot: Vec<Box<[u8]>>,
    rest: Vec<Box<[u8]>>,
}

impl TenantKey {
    /// `slot`: what stays the same when the Secret is rotated (base URL, credential id);
    /// `rest`: everything else the client is built from (secret, CA bundle, flags).
    pub fn new(slot: &[&[u8]], rest: &[&[u8]]) -> Self {
        let own = |parts: &[&[u8]]| parts.iter().map(|p| Box::from(*p)).collect();
        Self {
            slot: own(slot),
            rest: own(rest),
        }
    }
}

/// Cached values by [`TenantKey`].
pub struct TenantCache<V> {
    entries: IdleMap<TenantKey, V>,
}

impl<V: Clone> Default for TenantCache<V> {
    fn default() -> Self {
        Self::new(TENANT_IDLE_EVICTION)
    }
}

impl<V: Clone> TenantCache<V> {
    /// An empty cache that drops entries unused for `idle`.
    pub fn new(idle: Duration) -> Self {
        Self {
            entries: IdleMap::new(idle),
        }
    }

    /// The value for `key`, built by `build` when there is none (see the module comment).
    pub fn get_or_build<E>(
        &self,
        key: TenantKey,
        now: Instant,
        build: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        self.entries
            .get_or_build(&key, now, build, |cached| cached.slot == key.slot)
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::sync::Arc;

    fn key(client_id: &str, secret: &str) -> TenantKey {
        TenantKey::new(
            &[b"https://api.personio.de", client_id.as_bytes()],
            &[secret.as_bytes()],
        )
    }

    fn client(name: &str) -> Result<Arc<String>, Infallible> {
        Ok(Arc::new(name.to_string()))
    }

    /// The cached client of `(client id, secret)` at `now`, built as `name` when missing.
    fn get(
        cache: &TenantCache<Arc<String>>,
        (client_id, secret): (&str, &str),
        now: Instant,
        name: &str,
    ) -> Arc<String> {
        cache
            .get_or_build(key(client_id, secret), now, || client(name))
            .unwrap()
    }

    /// A default cache whose every lookup happens at the same instant.
    struct AtOnce {
        cache: TenantCache<Arc<String>>,
        now: Instant,
    }

    impl AtOnce {
        fn new() -> Self {
            Self {
                cache: TenantCache::default(),
                now: Instant::now(),
            }
        }

        /// The cached client of `(client id, secret)`, built as `name` when missing.
        fn get(&self, credentials: (&str, &str), name: &str) -> Arc<String> {
            get(&self.cache, credentials, self.now, name)
        }
    }

    #[test]
    fn the_same_credentials_get_the_same_client() {
        let tenants = AtOnce::new();
        let first = tenants.get(("a", "s1"), "first");
        let again = tenants.get(("a", "s1"), "second");
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(tenants.cache.len(), 1);
    }

    #[test]
    fn a_rotated_secret_drops_the_old_client_at_once() {
        let tenants = AtOnce::new();
        let old = tenants.get(("a", "s1"), "old");
        let other = tenants.get(("b", "s1"), "other");
        let new = tenants.get(("a", "s2"), "new");
        assert_eq!(
            tenants.cache.len(),
            2,
            "tenant a's old client is gone, tenant b's stays"
        );
        assert_eq!(
            Arc::strong_count(&old),
            1,
            "only the caller still holds the old one"
        );
        assert_eq!(Arc::strong_count(&other), 2);
        assert_eq!(new.as_str(), "new");
    }

    #[test]
    fn an_idle_tenant_is_evicted_and_a_busy_one_kept() {
        let cache = TenantCache::new(Duration::from_secs(600));
        let start = Instant::now();
        get(&cache, ("idle", "s"), start, "idle");
        let busy = get(&cache, ("busy", "s"), start, "busy");
        for minutes in [5, 10, 15] {
            let now = start + Duration::from_secs(minutes * 60);
            let again = get(&cache, ("busy", "s"), now, "rebuilt");
            assert!(
                Arc::ptr_eq(&busy, &again),
                "busy client rebuilt after {minutes} min"
            );
        }
        assert_eq!(cache.len(), 1, "the idle tenant's client was dropped");
    }

    #[test]
    fn keys_are_compared_in_full() {
        // Length-aware parts: ("ab", "c") and ("a", "bc") are different tenants.
        assert_ne!(
            TenantKey::new(&[b"ab", b"c"], &[]),
            TenantKey::new(&[b"a", b"bc"], &[])
        );
    }
}
