//! When each resource's upstream registration is next checked: after a success, once per refresh
//! period; after a failure, with per-resource exponential backoff (never on every reconcile); at
//! once when the resource's generation changed.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use super::ResourceKey;

/// First wait after a failed registration.
pub const FIRST_BACKOFF: Duration = Duration::seconds(30);

/// Longest wait between two failed attempts.
pub const MAX_BACKOFF: Duration = Duration::hours(1);

#[derive(Clone, Copy)]
struct Schedule {
    generation: Option<i64>,
    failures: u32,
    next: DateTime<Utc>,
}

/// The schedule of every resource's registration checks.
#[derive(Default)]
pub struct Registrations {
    entries: Mutex<HashMap<ResourceKey, Schedule>>,
}

impl Registrations {
    /// Whether `key`'s registration should be checked now.
    pub fn due(&self, key: &ResourceKey, generation: Option<i64>, now: DateTime<Utc>) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .is_none_or(|entry| entry.generation != generation || now >= entry.next)
    }

    /// Records a success: checked again after `refresh`.
    pub fn succeeded(
        &self,
        key: ResourceKey,
        generation: Option<i64>,
        now: DateTime<Utc>,
        refresh: std::time::Duration,
    ) {
        let refresh = Duration::from_std(refresh).unwrap_or(MAX_BACKOFF);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.insert(
            key,
            Schedule {
                generation,
                failures: 0,
                next: now + refresh,
            },
        );
    }

    /// Records a failure; returns how long until the next attempt (doubling from
    /// [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`]).
    pub fn failed(
        &self,
        key: ResourceKey,
        generation: Option<i64>,
        now: DateTime<Utc>,
    ) -> Duration {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let failures = entries
            .get(&key)
            .filter(|entry| entry.generation == generation)
            .map_or(0, |entry| entry.failures)
            .saturating_add(1);
        let wait = (0..failures.saturating_sub(1))
            .try_fold(FIRST_BACKOFF, |wait, _| wait.checked_mul(2))
            .unwrap_or(MAX_BACKOFF)
            .min(MAX_BACKOFF);
        entries.insert(
            key,
            Schedule {
                generation,
                failures,
                next: now + wait,
            },
        );
        wait
    }

    /// Forgets `key` (resource deleted).
    pub fn forget(&self, key: &ResourceKey) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at;
    use crate::webhook::Source;

    #[test]
    fn failures_back_off_exponentially_and_a_new_generation_is_checked_at_once() {
        let registrations = Registrations::default();
        let key = ResourceKey::new(Source::Personio, "hr", "acme");
        let now = at("2026-12-07T10:00:00Z");
        assert!(registrations.due(&key, Some(1), now));
        let waits: Vec<i64> = (0..9)
            .map(|_| {
                registrations
                    .failed(key.clone(), Some(1), now)
                    .num_seconds()
            })
            .collect();
        assert_eq!(
            waits,
            [30, 60, 120, 240, 480, 960, 1920, 3600, 3600],
            "doubling, capped at an hour"
        );
        assert!(!registrations.due(&key, Some(1), now + Duration::minutes(59)));
        assert!(registrations.due(&key, Some(1), now + Duration::hours(1)));
        assert!(
            registrations.due(&key, Some(2), now),
            "a spec change is checked at once"
        );
        registrations.succeeded(
            key.clone(),
            Some(1),
            now,
            std::time::Duration::from_secs(300),
        );
        assert!(!registrations.due(&key, Some(1), now + Duration::minutes(4)));
        assert!(registrations.due(&key, Some(1), now + Duration::minutes(5)));
        assert_eq!(
            registrations
                .failed(key.clone(), Some(1), now)
                .num_seconds(),
            30,
            "a success resets the backoff"
        );
        registrations.forget(&key);
        assert!(registrations.due(&key, Some(1), now));
    }
}
