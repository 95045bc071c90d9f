//! Which resources have a receiver, and the keys each accepts. The reconciler derives the keys
//! from the operator's key or loads them from the resource's Secret (see `controller::webhook`);
//! the watch may open a derived receiver before any reconcile ([`KeysFrom::Watch`]).
//! The receiver only reads this map, so an unauthenticated request never reaches the apiserver.

use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Duration, Utc};

use super::{ReceiverKeys, ResourceKey};

/// Default age after which the reconciler reads the Secret again (token rotation takes effect
/// then, or at once when the spec changes) and re-checks reteach subscriptions.
pub const REFRESH_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

struct Entry {
    /// `None`: the Secret was unusable at `loaded_at`; tried again when stale.
    keys: Option<ReceiverKeys>,
    generation: Option<i64>,
    loaded_at: DateTime<Utc>,
    /// Opened from the watch: accepted at once, but the next reconcile still refreshes it.
    provisional: bool,
}

impl Entry {
    fn new(
        keys: Option<ReceiverKeys>,
        generation: Option<i64>,
        loaded_at: DateTime<Utc>,
        provisional: bool,
    ) -> Self {
        Self {
            keys,
            generation,
            loaded_at,
            provisional,
        }
    }
}

/// Where the keys a receiver is opened with come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeysFrom {
    /// A reconcile loaded them: they replace whatever the receiver held.
    Reconcile,
    /// The watch saw the resource before its reconcile: they open the receiver at once unless it
    /// already has keys for this generation (or was refused for it), and the next reconcile
    /// refreshes them as usual.
    Watch,
}

/// The registry of receivers.
#[derive(Default)]
pub struct Receivers {
    entries: RwLock<HashMap<ResourceKey, Entry>>,
}

impl Receivers {
    /// The map to read; a panic elsewhere does not poison it (every write is one insert or remove).
    fn read(&self) -> RwLockReadGuard<'_, HashMap<ResourceKey, Entry>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The map to change (see [`Self::read`]).
    fn write(&self) -> RwLockWriteGuard<'_, HashMap<ResourceKey, Entry>> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The keys of `key`'s receiver, if it has one.
    pub fn keys(&self, key: &ResourceKey) -> Option<ReceiverKeys> {
        let entries = self.read();
        entries.get(key).and_then(|entry| entry.keys.clone())
    }

    /// Whether the keys of `key` were loaded for `generation` less than `max_age` ago.
    pub fn is_fresh(
        &self,
        key: &ResourceKey,
        generation: Option<i64>,
        now: DateTime<Utc>,
        max_age: std::time::Duration,
    ) -> bool {
        let max_age = Duration::from_std(max_age).unwrap_or(Duration::MAX);
        let entries = self.read();
        entries.get(key).is_some_and(|entry| {
            !entry.provisional && entry.generation == generation && now - entry.loaded_at < max_age
        })
    }

    /// Opens (or updates) the receiver of `key` with `keys` loaded `from` where they came.
    pub fn open(
        &self,
        key: ResourceKey,
        keys: ReceiverKeys,
        generation: Option<i64>,
        now: DateTime<Utc>,
        from: KeysFrom,
    ) {
        let mut entries = self.write();
        let provisional = from == KeysFrom::Watch;
        if provisional
            && entries
                .get(&key)
                .is_some_and(|e| e.generation == generation)
        {
            return;
        }
        entries.insert(key, Entry::new(Some(keys), generation, now, provisional));
    }

    /// Records that the keys of `key` could not be loaded: the receiver refuses everything, and
    /// the Secret is tried again only when the record is stale (one Warning Event per refresh,
    /// not one per reconcile).
    pub fn fail(&self, key: ResourceKey, generation: Option<i64>, now: DateTime<Utc>) {
        let mut entries = self.write();
        entries.insert(key, Entry::new(None, generation, now, false));
    }

    /// Every resource with a receiver (open or failed).
    pub fn open_keys(&self) -> Vec<ResourceKey> {
        let entries = self.read();
        entries.keys().cloned().collect()
    }

    /// Closes the receiver of `key` (webhook removed from the spec, Secret gone, resource
    /// deleted). Returns whether it was open.
    pub fn close(&self, key: &ResourceKey) -> bool {
        let mut entries = self.write();
        entries.remove(key).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at;
    use crate::webhook::{RequestKeys, Source};

    #[test]
    fn keys_go_stale_after_a_while_or_with_a_new_generation() {
        let receivers = Receivers::default();
        let key = ResourceKey::new(Source::Personio, "ns", "hr");
        let now = at("2026-12-02T10:00:00Z");
        let max_age = REFRESH_AFTER;
        assert!(!receivers.is_fresh(&key, Some(1), now, max_age));
        let keys = ReceiverKeys {
            current: RequestKeys::new("x".repeat(32), None),
            ..ReceiverKeys::default()
        };
        receivers.open(key.clone(), keys.clone(), Some(1), now, KeysFrom::Reconcile);
        assert_eq!(receivers.keys(&key), Some(keys));
        assert!(receivers.is_fresh(&key, Some(1), now + Duration::minutes(4), max_age));
        assert!(!receivers.is_fresh(&key, Some(2), now, max_age));
        assert!(!receivers.is_fresh(&key, Some(1), now + Duration::minutes(5), max_age));
        assert!(receivers.close(&key));
        assert_eq!(receivers.keys(&key), None);
        receivers.fail(key.clone(), Some(1), now);
        assert_eq!(
            receivers.keys(&key),
            None,
            "a failed receiver accepts nothing"
        );
        assert!(
            receivers.is_fresh(&key, Some(1), now, max_age),
            "and is not retried at once"
        );
    }

    #[test]
    fn a_receiver_opened_from_the_watch_answers_at_once_and_is_still_refreshed() {
        let receivers = Receivers::default();
        let key = ResourceKey::new(Source::Reteach, "ns", "certs");
        let now = at("2026-12-02T10:00:00Z");
        let keys = ReceiverKeys {
            current: RequestKeys::new("p".repeat(64), None),
            ..ReceiverKeys::default()
        };
        receivers.open(key.clone(), keys.clone(), Some(1), now, KeysFrom::Watch);
        assert_eq!(receivers.keys(&key), Some(keys.clone()));
        assert!(!receivers.is_fresh(&key, Some(1), now, REFRESH_AFTER));
        let refreshed = ReceiverKeys {
            current: RequestKeys::new("r".repeat(64), None),
            ..ReceiverKeys::default()
        };
        receivers.open(
            key.clone(),
            refreshed.clone(),
            Some(1),
            now,
            KeysFrom::Reconcile,
        );
        receivers.open(key.clone(), keys, Some(1), now, KeysFrom::Watch);
        assert_eq!(
            receivers.keys(&key),
            Some(refreshed),
            "a watch event does not undo a reconcile's keys"
        );
        assert!(receivers.is_fresh(&key, Some(1), now, REFRESH_AFTER));
    }
}
