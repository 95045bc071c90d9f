//! "Is a run due?" decided from spec and status alone (as External Secrets does), and the retry
//! backoff after failures. Pure functions: the reconcilers pass in `now`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

use crate::api::duration::{saturating_after, MAX_INTERVAL};

/// Everything the due check looks at.
#[derive(Clone, Debug, Default)]
pub struct ScheduleInput<'a> {
    pub suspended: bool,
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    /// `reconcile.fluxcd.io/requestedAt` annotation.
    pub requested_at: Option<&'a str>,
    /// `status.lastHandledReconcileAt`.
    pub last_handled_requested_at: Option<&'a str>,
    pub last_sync_time: Option<DateTime<Utc>>,
    pub next_sync_time: Option<DateTime<Utc>>,
    /// The resource waits for a human or a dependency (Stalled, WaitingForEmployeeSync): every
    /// trigger re-checks, which is cheap and makes a fixed Secret or a finished EmployeeSync count
    /// at once. A check whose outcome did not change writes nothing, so this cannot loop.
    pub blocked: bool,
    /// Webhook notifications (see [`Wake`]).
    pub wake: Wake,
}

/// What the due check knows about webhook notifications of the resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wake {
    /// A verified notification arrived since the last run started.
    pub notified: bool,
    /// Shortest time from the start of the last run to a run caused by a notification: a burst
    /// of notifications costs one run per gap at most.
    pub gap: Duration,
    /// The last run failed: the failure backoff stands, notifications do not shorten it.
    pub backing_off: bool,
}

/// Why a run starts now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DueReason {
    FirstRun,
    SpecChanged,
    Requested,
    IntervalElapsed,
    Blocked,
    /// A webhook notification arrived: an incremental run, early.
    Notified,
}

/// Outcome of the due check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// `spec.suspend` is true: do nothing until the spec changes.
    Suspended,
    /// Run now.
    Due(DueReason),
    /// Nothing to do; look again after this long.
    NotDue(Duration),
}

/// Decides whether a run is due.
pub fn schedule(input: &ScheduleInput<'_>, now: DateTime<Utc>) -> Schedule {
    if input.suspended {
        return Schedule::Suspended;
    }
    if input.generation.is_some() && input.generation != input.observed_generation {
        return Schedule::Due(DueReason::SpecChanged);
    }
    if input.requested_at.is_some() && input.requested_at != input.last_handled_requested_at {
        return Schedule::Due(DueReason::Requested);
    }
    // Before "first run": a resource that stalled on its first attempt has no lastSyncTime yet,
    // and must be re-checked quietly, not started over (which writes Reconciling, whose watch
    // event starts it over again: a hot loop).
    if input.blocked {
        return Schedule::Due(DueReason::Blocked);
    }
    if input.last_sync_time.is_none() {
        return Schedule::Due(DueReason::FirstRun);
    }
    match input.next_sync_time {
        Some(next) if next > now => {
            let delay = (next - now).to_std().unwrap_or(Duration::from_secs(1));
            let delay = delay.min(MAX_REQUEUE);
            if !input.wake.notified || input.wake.backing_off {
                return Schedule::NotDue(delay);
            }
            let earliest = input
                .last_sync_time
                .map_or(now, |last| saturating_after(last, input.wake.gap));
            if earliest <= now {
                return Schedule::Due(DueReason::Notified);
            }
            let wait = (earliest - now).to_std().unwrap_or(Duration::from_secs(1));
            Schedule::NotDue(delay.min(wait))
        }
        _ => Schedule::Due(DueReason::IntervalElapsed),
    }
}

/// Delay before the next attempt after `consecutive_failures` failed runs: 30 s doubling per
/// failure, capped by the interval (a failing sync never runs less often than a healthy one).
pub fn failure_backoff(consecutive_failures: i32, interval: Duration) -> Duration {
    let exponent = consecutive_failures.clamp(1, 16) as u32 - 1;
    let delay = Duration::from_secs(30).saturating_mul(2u32.saturating_pow(exponent));
    delay.min(interval)
}

/// Longest delay ever handed to kube-runtime: the longest interval plus its jitter. A `nextSyncTime`
/// far in the future (a status written by hand, a clock that jumped) is looked at again after this.
pub const MAX_REQUEUE: Duration = Duration::from_secs(MAX_INTERVAL.as_secs() + 60);

/// Adds up to 10 % random delay so that many resources created together do not fire together.
/// The result never exceeds [`MAX_REQUEUE`].
pub fn with_jitter(delay: Duration) -> Duration {
    let delay = delay.min(MAX_INTERVAL);
    let max_jitter_ms = (delay.as_millis() / 10).min(60_000) as u64;
    if max_jitter_ms == 0 {
        return delay;
    }
    delay.saturating_add(Duration::from_millis(
        rand::rng().random_range(0..=max_jitter_ms),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0)
            .single()
            .unwrap()
    }

    fn synced(next_in_secs: i64) -> ScheduleInput<'static> {
        ScheduleInput {
            generation: Some(1),
            observed_generation: Some(1),
            last_sync_time: Some(now() - chrono::Duration::minutes(1)),
            next_sync_time: Some(now() + chrono::Duration::seconds(next_in_secs)),
            ..ScheduleInput::default()
        }
    }

    #[test]
    fn first_run_is_due() {
        let input = ScheduleInput::default();
        assert_eq!(schedule(&input, now()), Schedule::Due(DueReason::FirstRun));
    }

    #[test]
    fn waits_for_the_remaining_time_when_not_due() {
        assert_eq!(
            schedule(&synced(120), now()),
            Schedule::NotDue(Duration::from_secs(120))
        );
    }

    #[test]
    fn own_status_write_is_not_a_reason_to_run() {
        // Same generation, no annotation, next sync in the future: a pass triggered by our own
        // status patch does nothing.
        assert!(matches!(schedule(&synced(1), now()), Schedule::NotDue(_)));
    }

    #[test]
    fn interval_elapsed_is_due() {
        assert_eq!(
            schedule(&synced(-1), now()),
            Schedule::Due(DueReason::IntervalElapsed)
        );
    }

    #[test]
    fn a_new_generation_is_due_as_a_spec_change() {
        let changed = ScheduleInput {
            generation: Some(2),
            ..synced(300)
        };
        // A new resource: a generation and no status yet.
        let new = ScheduleInput {
            generation: Some(1),
            ..ScheduleInput::default()
        };
        for input in [changed, new] {
            assert_eq!(
                schedule(&input, now()),
                Schedule::Due(DueReason::SpecChanged),
                "{input:?}"
            );
        }
    }

    #[test]
    fn new_requested_at_token_is_due_once() {
        let input = ScheduleInput {
            requested_at: Some("a"),
            last_handled_requested_at: Some("b"),
            ..synced(300)
        };
        assert_eq!(schedule(&input, now()), Schedule::Due(DueReason::Requested));
        let handled = ScheduleInput {
            last_handled_requested_at: Some("a"),
            ..input
        };
        assert!(matches!(schedule(&handled, now()), Schedule::NotDue(_)));
    }

    #[test]
    fn resource_stalled_before_its_first_sync_is_rechecked_not_restarted() {
        let input = ScheduleInput {
            generation: Some(1),
            observed_generation: Some(1),
            blocked: true,
            ..ScheduleInput::default()
        };
        assert_eq!(schedule(&input, now()), Schedule::Due(DueReason::Blocked));
    }

    #[test]
    fn suspend_wins() {
        let input = ScheduleInput {
            suspended: true,
            ..ScheduleInput::default()
        };
        assert_eq!(schedule(&input, now()), Schedule::Suspended);
    }

    fn notified(input: ScheduleInput<'static>, backing_off: bool) -> ScheduleInput<'static> {
        ScheduleInput {
            wake: Wake {
                notified: true,
                gap: Duration::from_secs(10),
                backing_off,
            },
            ..input
        }
    }

    #[test]
    fn a_notification_makes_a_synced_resource_due_early() {
        // Last run started a minute ago, the next one is 4 minutes away.
        let input = notified(synced(240), false);
        assert_eq!(schedule(&input, now()), Schedule::Due(DueReason::Notified));
    }

    #[test]
    fn notifications_right_after_a_run_wait_for_the_gap() {
        let mut input = notified(synced(240), false);
        input.last_sync_time = Some(now() - chrono::Duration::seconds(4));
        assert_eq!(
            schedule(&input, now()),
            Schedule::NotDue(Duration::from_secs(6)),
            "looked at again when the gap has passed"
        );
    }

    #[test]
    fn notifications_do_not_shorten_a_failure_backoff() {
        let input = notified(synced(240), true);
        assert_eq!(
            schedule(&input, now()),
            Schedule::NotDue(Duration::from_secs(240))
        );
    }

    #[test]
    fn a_notification_never_wakes_a_suspended_resource() {
        let mut input = notified(synced(240), false);
        input.suspended = true;
        assert_eq!(schedule(&input, now()), Schedule::Suspended);
    }

    #[test]
    fn backoff_doubles_and_is_capped_by_interval() {
        let interval = Duration::from_secs(300);
        assert_eq!(failure_backoff(1, interval), Duration::from_secs(30));
        assert_eq!(failure_backoff(2, interval), Duration::from_secs(60));
        assert_eq!(failure_backoff(3, interval), Duration::from_secs(120));
        assert_eq!(failure_backoff(10, interval), interval);
    }

    #[test]
    fn jitter_adds_at_most_ten_percent() {
        let base = Duration::from_secs(300);
        for _ in 0..100 {
            let delay = with_jitter(base);
            assert!(delay >= base && delay <= base + Duration::from_secs(30));
        }
    }

    #[test]
    fn a_next_sync_far_in_the_future_is_looked_at_again_within_a_day() {
        let mut input = synced(0);
        input.next_sync_time = Some(DateTime::<Utc>::MAX_UTC);
        match schedule(&input, now()) {
            Schedule::NotDue(delay) => assert!(delay <= MAX_REQUEUE, "{delay:?}"),
            other => panic!("expected NotDue, got {other:?}"),
        }
    }

    #[test]
    fn jitter_never_exceeds_the_requeue_cap() {
        for delay in [
            Duration::ZERO,
            MAX_INTERVAL,
            Duration::from_secs(u64::MAX),
            Duration::MAX,
        ] {
            assert!(with_jitter(delay) <= MAX_REQUEUE, "{delay:?}");
        }
    }
}
