//! The bookkeeping both kinds share: the due check inputs, and how a run's result becomes
//! conditions, times, backoff and the requeue delay.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::conditions::{conditions_for, is_blocked, ready, Health, SUSPENDED};
use super::failure::RunFailure;
use super::schedule::{
    failure_backoff, schedule, with_jitter, DueReason, Schedule, ScheduleInput, Wake,
};
use super::status::apply_status;
use crate::api::duration::saturating_after;
use crate::api::{
    CertificateSync, CertificateSyncStatus, EmployeeSync, EmployeeSyncStatus, SyncStatusCommon,
    REQUESTED_AT_ANNOTATION,
};
use crate::clock::Clock;
use crate::jobs::{Disposition, Reason};
use crate::webhook::Notification;

/// A kind's status, which embeds the fields every kind has (declared once in
/// [`SyncStatusCommon`]).
pub trait SyncStatus {
    /// The shared fields.
    fn common(&self) -> &SyncStatusCommon;
    /// The shared fields, to change them.
    fn common_mut(&mut self) -> &mut SyncStatusCommon;
}

impl SyncStatus for EmployeeSyncStatus {
    fn common(&self) -> &SyncStatusCommon {
        &self.common
    }
    fn common_mut(&mut self) -> &mut SyncStatusCommon {
        &mut self.common
    }
}

impl SyncStatus for CertificateSyncStatus {
    fn common(&self) -> &SyncStatusCommon {
        &self.common
    }
    fn common_mut(&mut self) -> &mut SyncStatusCommon {
        &mut self.common
    }
}

/// What the reconciler knows about the object when it starts.
pub struct RunContext {
    pub now: DateTime<Utc>,
    pub generation: Option<i64>,
    pub requested_at: Option<String>,
}

impl RunContext {
    /// Reads generation and the requestedAt annotation from the object.
    pub fn of(object: &impl ResourceExt, now: DateTime<Utc>) -> Self {
        Self {
            now,
            generation: object.meta().generation,
            requested_at: object.annotations().get(REQUESTED_AT_ANNOTATION).cloned(),
        }
    }

    /// Inputs of the due check.
    pub fn schedule_input<'a>(
        &'a self,
        status: &'a SyncStatusCommon,
        suspended: bool,
        waiting_reason: Option<Reason>,
        wake: Wake,
    ) -> ScheduleInput<'a> {
        ScheduleInput {
            suspended,
            generation: self.generation,
            observed_generation: status.observed_generation,
            requested_at: self.requested_at.as_deref(),
            last_handled_requested_at: status.last_handled_reconcile_at.as_deref(),
            last_sync_time: status.last_sync_time,
            next_sync_time: status.next_sync_time,
            blocked: is_blocked(&status.conditions, waiting_reason),
            wake: Wake {
                backing_off: status.consecutive_failures > 0,
                ..wake
            },
        }
    }

    /// Whether a run is due (`Ok(why)`), or what to tell kube-runtime instead (`Err(action)`).
    pub fn decide(
        &self,
        status: &SyncStatusCommon,
        suspended: bool,
        waiting_reason: Option<Reason>,
        wake: Wake,
    ) -> Result<DueReason, Action> {
        match schedule(
            &self.schedule_input(status, suspended, waiting_reason, wake),
            self.now,
        ) {
            Schedule::Suspended => Err(Action::await_change()),
            Schedule::NotDue(delay) => Err(Action::requeue(delay)),
            Schedule::Due(reason) => Ok(reason),
        }
    }

    /// Marks a successful run: Ready, times, cursor of the schedule. Returns the requeue delay.
    pub fn succeed(
        &self,
        status: &mut SyncStatusCommon,
        message: String,
        interval: Duration,
    ) -> Duration {
        let health = Health::Ready {
            reason: Reason::Succeeded,
            message,
        };
        self.complete(status, &health, interval)
    }

    /// Marks a run that went through to its end with `health`: `Ready` counts as a success;
    /// a run that could not make progress (`NotReady`) keeps `lastSuccessfulSyncTime` and
    /// `consecutiveFailures` as they were. Next run after `interval` either way.
    pub fn complete(
        &self,
        status: &mut SyncStatusCommon,
        health: &Health,
        interval: Duration,
    ) -> Duration {
        let delay = with_jitter(interval);
        self.stamp(status, health);
        status.last_sync_time = Some(self.now);
        if matches!(health, Health::Ready { .. }) {
            status.last_successful_sync_time = Some(self.now);
            status.consecutive_failures = 0;
        }
        status.next_sync_time = Some(saturating_after(self.now, delay));
        delay
    }

    /// Marks a failed or blocked run that ended at `ended`. Returns the requeue delay.
    ///
    /// Blocked outcomes (Stalled, Waiting) leave times and counters alone, so re-checking an
    /// unchanged problem produces an identical status, which is not written again. The backoff of
    /// a transient failure counts from the end of the failed run: a run that spent its retries
    /// for longer than the backoff would otherwise be due again at once, re-triggered by its own
    /// status write.
    pub fn fail(
        &self,
        status: &mut SyncStatusCommon,
        failure: &RunFailure,
        interval: Duration,
        blocked_recheck: Duration,
        ended: DateTime<Utc>,
    ) -> Duration {
        let reason = failure.reason;
        let message = failure.message.clone();
        match failure.disposition {
            Disposition::Stalled => {
                self.stamp(status, &Health::Stalled { reason, message });
                with_jitter(blocked_recheck.max(interval.min(Duration::from_secs(600))))
            }
            Disposition::Waiting => {
                self.stamp(status, &Health::NotReady { reason, message });
                with_jitter(blocked_recheck)
            }
            Disposition::Retry => {
                self.stamp(status, &Health::NotReady { reason, message });
                status.consecutive_failures = status.consecutive_failures.saturating_add(1);
                let delay = with_jitter(failure_backoff(status.consecutive_failures, interval));
                status.last_sync_time = Some(self.now);
                status.next_sync_time = Some(saturating_after(ended.max(self.now), delay));
                delay
            }
        }
    }

    /// The status of a suspended resource: the generation is observed (kstatus and Flux's
    /// `wait` count it as current), `Ready` is `True` with reason `Suspended`, and `Reconciling` /
    /// `Stalled` are gone: nothing runs, so nothing is in progress or stuck. Times, counters and
    /// the `requestedAt` token are kept for when it is resumed.
    pub fn suspend(&self, status: &mut SyncStatusCommon) {
        let last = status
            .last_successful_sync_time
            .map_or_else(|| "never".to_string(), |t| t.to_rfc3339());
        let health = Health::Ready {
            reason: Reason::Suspended,
            message: format!(
                "spec.suspend is true: no runs until it is false (last successful run: {last})"
            ),
        };
        let conditions = conditions_for(&health, &status.conditions, self.generation, self.now);
        status.conditions = conditions;
        status.observed_generation = self.generation;
    }

    /// The status shown while a run is in progress.
    pub fn reconciling(&self, status: &mut SyncStatusCommon, message: &str) {
        let conditions = conditions_for(
            &Health::Reconciling {
                message: message.into(),
            },
            &status.conditions,
            self.generation,
            self.now,
        );
        status.conditions = conditions;
    }

    fn stamp(&self, status: &mut SyncStatusCommon, health: &Health) {
        let conditions = conditions_for(health, &status.conditions, self.generation, self.now);
        status.conditions = conditions;
        status.observed_generation = self.generation;
        status.last_handled_reconcile_at = self.requested_at.clone();
    }
}

/// What the due check needs to know about a custom resource of this operator.
pub trait Scheduled:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug
{
    /// The status type of the kind.
    type Status: SyncStatus + Clone + Default + PartialEq + serde::Serialize + Send + Sync;
    /// Top-level status keys written by another field manager, left out of a whole-status apply
    /// (see `status::apply_status`).
    const STATUS_KEYS_OWNED_ELSEWHERE: &'static [&'static str];
    /// `spec.suspend`.
    fn suspended(&self) -> bool;
    /// The current status, if any.
    fn current_status(&self) -> Option<&Self::Status>;
}

impl Scheduled for EmployeeSync {
    type Status = EmployeeSyncStatus;
    const STATUS_KEYS_OWNED_ELSEWHERE: &'static [&'static str] = &[];
    fn suspended(&self) -> bool {
        self.spec.suspend
    }
    fn current_status(&self) -> Option<&EmployeeSyncStatus> {
        self.status.as_ref()
    }
}

impl Scheduled for CertificateSync {
    type Status = CertificateSyncStatus;
    // The certificate ledger has its own field manager (`status::LEDGER_FIELD_MANAGER`).
    const STATUS_KEYS_OWNED_ELSEWHERE: &'static [&'static str] = &["ledger"];
    fn suspended(&self) -> bool {
        self.spec.suspend
    }
    fn current_status(&self) -> Option<&CertificateSyncStatus> {
        self.status.as_ref()
    }
}

/// A run that is due: the object as the apiserver has it now, its status before the run, and why.
pub struct DueRun<K: Scheduled> {
    pub object: K,
    pub run: RunContext,
    pub previous: K::Status,
    pub reason: DueReason,
}

/// Decides whether a run is due; `Err` is what to do instead (requeue, wait for a change).
///
/// kube-runtime hands the reconciler the object from its watch cache, which can lag behind the
/// reconciler's own last status write (the trigger was an earlier write of the same run, e.g.
/// `Reconciling`). Deciding on that copy starts a finished run again, and a run built on that
/// copy's status would overwrite newer counters and ledger. So the cached copy only tells whether
/// to look closer; a run is decided and built on a fresh read.
///
/// `notification`: a pending webhook notification makes a run due early (see
/// [`crate::webhook`]); it is served (cleared) when a run starts for whatever reason.
pub async fn due_run<K: Scheduled>(
    cached: &K,
    api: &Api<K>,
    clock: &dyn Clock,
    waiting_reason: Option<Reason>,
    notification: Option<&Notification<'_>>,
) -> Result<Result<DueRun<K>, Action>, kube::Error> {
    let wake = Wake {
        notified: notification.is_some_and(Notification::pending),
        gap: notification.map_or(Duration::ZERO, |n| n.min_gap),
        backing_off: false,
    };
    let cached_status = cached.current_status().cloned().unwrap_or_default();
    let glance = RunContext::of(cached, clock.now());
    if cached.suspended() {
        if shows_suspended(&glance, cached_status.common()) {
            return Ok(Err(Action::await_change()));
        }
    } else if let Err(action) = glance.decide(cached_status.common(), false, waiting_reason, wake) {
        return Ok(Err(action));
    }
    let Some(object) = api.get_opt(&cached.name_any()).await? else {
        return Ok(Err(Action::await_change()));
    };
    let run = RunContext::of(&object, clock.now());
    let previous = object.current_status().cloned().unwrap_or_default();
    if object.suspended() {
        if !shows_suspended(&run, previous.common()) {
            let mut status = previous.clone();
            run.suspend(status.common_mut());
            apply_status(
                api,
                &object.name_any(),
                &status,
                K::STATUS_KEYS_OWNED_ELSEWHERE,
            )
            .await?;
        }
        return Ok(Err(Action::await_change()));
    }
    let due = run.decide(previous.common(), object.suspended(), waiting_reason, wake);
    if let (Ok(_), Some(notification)) = (&due, notification) {
        notification.served();
    }
    Ok(due.map(|reason| DueRun {
        object,
        run,
        previous,
        reason,
    }))
}

/// Whether `status` already reports the suspension of this generation (then nothing is written).
fn shows_suspended(run: &RunContext, status: &SyncStatusCommon) -> bool {
    status.observed_generation == run.generation
        && status.conditions.len() == 1
        && ready(&status.conditions).is_some_and(|c| c.reason == SUSPENDED)
}

pub use crate::api::duration::chrono_duration;

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn suspending_a_stalled_resource_observes_its_generation_and_reports_ready_suspended() {
        let run = RunContext {
            now: at("2026-11-26T10:00:00Z"),
            generation: Some(3),
            requested_at: Some("token".into()),
        };
        let mut status = SyncStatusCommon {
            observed_generation: Some(2),
            ..SyncStatusCommon::default()
        };
        let failure = RunFailure::stalled(Reason::SecretNotFound, "Secret x not found");
        run.fail(
            &mut status,
            &failure,
            Duration::from_secs(300),
            Duration::from_secs(120),
            run.now,
        );
        status.observed_generation = Some(2);
        status.last_handled_reconcile_at = None;
        assert!(!shows_suspended(&run, &status));

        run.suspend(&mut status);
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.conditions.len(), 1, "{:?}", status.conditions);
        let ready = &status.conditions[0];
        assert_eq!(
            (
                ready.type_.as_str(),
                ready.status.as_str(),
                ready.reason.as_str()
            ),
            ("Ready", "True", "Suspended")
        );
        assert_eq!(ready.observed_generation, Some(3));
        assert!(ready.message.contains("never"), "{}", ready.message);
        assert_eq!(
            status.last_handled_reconcile_at, None,
            "a suspended resource does not consume a requested run"
        );
        assert!(shows_suspended(&run, &status));
    }

    #[test]
    fn a_new_generation_of_a_suspended_resource_is_not_shown_as_suspended_yet() {
        let run = RunContext {
            now: at("2026-11-26T10:00:00Z"),
            generation: Some(1),
            requested_at: None,
        };
        let mut status = SyncStatusCommon::default();
        run.suspend(&mut status);
        let newer = RunContext {
            generation: Some(2),
            ..run
        };
        assert!(!shows_suspended(&newer, &status));
    }

    #[test]
    fn transient_failure_backs_off_from_the_end_of_the_failed_run() {
        let run = RunContext {
            now: at("2026-11-26T10:00:00Z"),
            generation: Some(1),
            requested_at: None,
        };
        let mut status = SyncStatusCommon::default();
        let failure = RunFailure::transient(Reason::PersonioUnavailable, "503");
        let ended = at("2026-11-26T10:02:00Z");
        let delay = run.fail(
            &mut status,
            &failure,
            Duration::from_secs(300),
            Duration::from_secs(120),
            ended,
        );
        assert!(delay >= Duration::from_secs(30));
        assert_eq!(status.last_sync_time, Some(run.now));
        assert_eq!(
            status.next_sync_time,
            Some(ended + chrono_duration(delay)),
            "not already due when the failure is written"
        );
        assert_eq!(status.consecutive_failures, 1);
    }
}
