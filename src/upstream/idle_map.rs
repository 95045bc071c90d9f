//! A map of shared values that forgets entries nobody asked for during an idle time: the
//! bookkeeping of the shared HTTP clients ([`super::HttpPool`]) and of the per-tenant clients
//! (`controller::tenant_cache::TenantCache`). Expired entries are dropped on the next request,
//! so no timer runs; a caller still holding a value keeps a working one.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Entry<V> {
    value: V,
    last_used: Instant,
}

/// Values by key, each dropped once unused for the idle time.
pub struct IdleMap<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
    idle: Duration,
}

impl<K: Eq + Hash + Clone, V: Clone> IdleMap<K, V> {
    /// An empty map that drops entries unused for `idle`.
    pub fn new(idle: Duration) -> Self {
        Self {
            entries: Mutex::default(),
            idle,
        }
    }

    /// The value for `key` at `now`, built by `build` when there is none. Before a built value
    /// is stored, every entry for which `replaces(cached_key)` holds is dropped (a rotated
    /// credential's old client). A failed build stores nothing.
    pub fn get_or_build<E>(
        &self,
        key: &K,
        now: Instant,
        build: impl FnOnce() -> Result<V, E>,
        replaces: impl Fn(&K) -> bool,
    ) -> Result<V, E> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let idle = self.idle;
        entries.retain(|_, entry| now.saturating_duration_since(entry.last_used) < idle);
        if let Some(entry) = entries.get_mut(key) {
            entry.last_used = now;
            return Ok(entry.value.clone());
        }
        let value = build()?;
        entries.retain(|cached, _| !replaces(cached));
        entries.insert(
            key.clone(),
            Entry {
                value: value.clone(),
                last_used: now,
            },
        );
        Ok(value)
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn value(v: u32) -> Result<u32, Infallible> {
        Ok(v)
    }

    #[test]
    fn an_entry_used_within_the_idle_time_stays_and_an_unused_one_goes() {
        let map = IdleMap::new(Duration::from_secs(60));
        let start = Instant::now();
        map.get_or_build(&"unused", start, || value(1), |_| false)
            .unwrap();
        map.get_or_build(&"used", start, || value(2), |_| false)
            .unwrap();
        let later = start + Duration::from_secs(50);
        map.get_or_build(&"used", later, || value(3), |_| false)
            .unwrap();
        let got = map
            .get_or_build(
                &"used",
                start + Duration::from_secs(70),
                || value(4),
                |_| false,
            )
            .unwrap();
        assert_eq!((got, map.len()), (2, 1));
    }

    #[test]
    fn replaced_entries_go_when_a_new_value_is_stored() {
        let map = IdleMap::new(Duration::from_secs(60));
        let now = Instant::now();
        map.get_or_build(&("a", 1), now, || value(1), |_| false)
            .unwrap();
        map.get_or_build(&("b", 1), now, || value(2), |_| false)
            .unwrap();
        map.get_or_build(&("a", 2), now, || value(3), |k| k.0 == "a")
            .unwrap();
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn a_failed_build_stores_nothing() {
        let map: IdleMap<&str, u32> = IdleMap::new(Duration::from_secs(60));
        let result: Result<u32, &str> =
            map.get_or_build(&"k", Instant::now(), || Err("no"), |_| true);
        assert!(result.is_err());
        assert!(map.is_empty());
    }
}
