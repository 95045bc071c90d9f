//! No thundering herd: after a start (a restart, an upgrade, a new leader) the runs that are
//! overdue do not all start at once, and never more than a fixed number of runs go at a time.
//!
//! - **Start-up spread.** A resource whose run was already due when this process started (its
//!   `nextSyncTime` lies before the start, or it never ran and existed before the start) runs at
//!   `start + offset`, where the offset is a hash of its uid into the first 90 % of its interval
//!   (capped by `--startup-spread`; the rest leaves room for the wait for a run slot). The offset is deterministic: the same resource lands at the same point of
//!   the window after every restart, so its schedule does not drift and 1,000 resources fill the
//!   window evenly. Spec changes, requested runs and resources created after the start are not
//!   held.
//! - **Run slots.** Shared by both controllers (`--max-concurrent-runs`, see
//!   [`super::admission`]): a due run — polled or woken by a webhook notification — waits for a
//!   slot, by priority and within its namespace's share; reconciles that only find nothing due
//!   never wait.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::runtime::controller::Action;
use kube::ResourceExt;

pub use super::admission::{Priority, RunSlot, RunSlots};
use super::lifecycle::{Scheduled, SyncStatus};
use crate::api::duration::{parse_duration, MAX_INTERVAL};
use crate::api::{CertificateSync, EmployeeSync};
use crate::jobs::run_status::RunContext;
use crate::jobs::schedule::{DueReason, Wake};

/// The interval a resource asks for (its spec), for the start-up spread.
pub trait Interval {
    /// `spec.interval`, if it parses.
    fn interval(&self) -> Option<Duration>;
}

impl Interval for EmployeeSync {
    fn interval(&self) -> Option<Duration> {
        parse_duration(&self.spec.interval).ok()
    }
}

impl Interval for CertificateSync {
    fn interval(&self) -> Option<Duration> {
        parse_duration(&self.spec.interval).ok()
    }
}

/// Where a resource's first run after the start falls within `window`: FNV-1a of its uid (stable
/// across processes and Rust versions, unlike `DefaultHasher`), reduced to the window.
pub fn startup_offset(uid: &str, window: Duration) -> Duration {
    let hash = uid.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    if window_ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(hash % window_ms)
}

/// The part of a resource's interval its first run after the start falls into: the interval
/// (5 minutes when it does not parse) capped by `limit`, of which the first 90 %, so that a run
/// that also waits for a slot still starts within its interval.
pub fn spread_window(interval: Option<Duration>, limit: Duration) -> Duration {
    interval
        .unwrap_or(Duration::from_secs(300))
        .min(limit)
        .min(MAX_INTERVAL)
        .mul_f64(0.9)
}

/// What the start-up spread looks at of one resource.
#[derive(Clone, Debug)]
pub struct SpreadInput<'a> {
    /// `metadata.uid`.
    pub uid: &'a str,
    /// `metadata.creationTimestamp`.
    pub created: Option<DateTime<Utc>>,
    /// `spec.interval`.
    pub interval: Option<Duration>,
    /// `status.nextSyncTime`.
    pub next_sync_time: Option<DateTime<Utc>>,
    /// Why the run is due.
    pub reason: DueReason,
}

/// The start-up spread of one process.
#[derive(Clone, Copy, Debug)]
pub struct StartupSpread {
    /// When this process started working (after winning the Lease, with leader election).
    pub started: DateTime<Utc>,
    /// Longest window (`--startup-spread`); zero switches the spread off.
    pub limit: Duration,
}

impl StartupSpread {
    /// How long a due run waits (`None`: it starts now).
    pub fn hold(&self, input: &SpreadInput<'_>, now: DateTime<Utc>) -> Option<Duration> {
        let overdue_at_start = match input.reason {
            DueReason::FirstRun => input.created.is_some_and(|c| c <= self.started),
            DueReason::IntervalElapsed => input.next_sync_time.is_none_or(|n| n <= self.started),
            // A notification is a real event, like a requested run: never held back.
            DueReason::SpecChanged
            | DueReason::Requested
            | DueReason::Blocked
            | DueReason::Notified => false,
        };
        if !overdue_at_start {
            return None;
        }
        let window = spread_window(input.interval, self.limit);
        let offset = chrono::Duration::from_std(startup_offset(input.uid, window)).ok()?;
        (self.started + offset - now)
            .to_std()
            .ok()
            .filter(|d| !d.is_zero())
    }
}

/// The pacing of one process: start-up spread and run slots.
#[derive(Clone, Debug)]
pub struct Pacing {
    /// See [`StartupSpread`].
    pub spread: StartupSpread,
    /// See [`RunSlots`].
    pub slots: RunSlots,
}

impl Pacing {
    /// No spread, no limit (what tests and the demo get unless they ask).
    pub fn off() -> Self {
        Self {
            spread: StartupSpread {
                started: DateTime::<Utc>::MIN_UTC,
                limit: Duration::ZERO,
            },
            slots: RunSlots::new(0),
        }
    }

    /// Whether `object` is due when looked at now (from the cached copy, with what `wake` says
    /// about webhook notifications) and, if so, whether the start-up spread holds it. A notified
    /// run is due like any other and takes a slot (issue 26: a burst of notifications must not
    /// run past `--max-concurrent-runs`); the spread never holds it.
    pub fn gate<K: Scheduled + Interval>(
        &self,
        object: &K,
        wake: Wake,
        now: DateTime<Utc>,
    ) -> Gate {
        let glance = RunContext::of(object, now);
        let status = object.current_status().cloned().unwrap_or_default();
        let Ok(reason) =
            super::lifecycle::decide(&glance, status.common(), object.suspended(), None, wake)
        else {
            return Gate::NotDue;
        };
        let uid = object.uid().unwrap_or_default();
        let input = SpreadInput {
            uid: &uid,
            created: object.meta().creation_timestamp.as_ref().map(to_chrono),
            interval: object.interval(),
            next_sync_time: status.common().next_sync_time,
            reason,
        };
        match self.spread.hold(&input, now) {
            Some(delay) => Gate::Hold(Action::requeue(delay)),
            None => Gate::Due(reason),
        }
    }
}

/// What [`Pacing::gate`] decided.
#[derive(Debug)]
pub enum Gate {
    /// A run is due now, for this reason: take a slot.
    Due(DueReason),
    /// Nothing due (the reconciler finds out cheaply itself).
    NotDue,
    /// Due, but held by the start-up spread.
    Hold(Action),
}

fn to_chrono(time: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> DateTime<Utc> {
    DateTime::from_timestamp(time.0.as_second(), time.0.subsec_nanosecond().max(0) as u32)
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "pacing_tests.rs"]
mod tests;
