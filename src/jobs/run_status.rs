//! How the result of a run becomes status: conditions, times, backoff and the requeue delay.
//! Pure (the caller passes `now`): the controllers, the demo and the benchmark share it, so the
//! status the demo prints is the one the operator writes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use super::bookkeeping::{
    certificate_health, employee_message, record_certificate_outcome, record_employee_outcome,
};
use super::conditions::{conditions_for, is_blocked, Health};
use super::run_failure::RunFailure;
use super::{CertificateJobOutcome, Disposition, EmployeeJobOutcome, Reason};
use crate::api::duration::saturating_after;
use crate::api::{
    CertificateSyncStatus, EmployeeSyncStatus, SyncStatusCommon, UnsupportedField,
    UnsupportedFieldReason, REQUESTED_AT_ANNOTATION,
};
use crate::jobs::schedule::{failure_backoff, with_jitter, ScheduleInput, Wake};

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

    /// What the reconciler knows about a freshly applied resource (generation 1, no run
    /// requested): the demo's and the benchmark's runs.
    pub fn first_run(now: DateTime<Utc>) -> Self {
        Self {
            now,
            generation: Some(1),
            requested_at: None,
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

/// The status after a successful run (pure; the demo prints the same thing).
pub fn employee_status_after_success(
    status: &mut EmployeeSyncStatus,
    run: &RunContext,
    interval: Duration,
    job: &EmployeeJobOutcome,
) -> (Duration, String) {
    let mut message = employee_message(job);
    let delay = if job.unsupported_fields.is_empty() {
        run.succeed(&mut status.common, message.clone(), interval)
    } else {
        // Ready stays True (kstatus: Current, Argo CD: Healthy); the reason and the message say
        // which fields are left out.
        message.push_str(&unsupported_suffix(&job.unsupported_fields));
        let health = Health::Ready {
            reason: Reason::UnsupportedFields,
            message: message.clone(),
        };
        run.complete(&mut status.common, &health, interval)
    };
    record_employee_outcome(status, run.now, job);
    (delay, message)
}

/// `; reteach does not keep position (refused), location (not kept): left out of writes`.
fn unsupported_suffix(fields: &[UnsupportedField]) -> String {
    let named: Vec<String> = fields
        .iter()
        .map(|field| format!("{} ({})", field.field, why(field.reason)))
        .collect();
    format!(
        "; reteach does not keep {}: left out of writes",
        named.join(", ")
    )
}

fn why(reason: UnsupportedFieldReason) -> &'static str {
    match reason {
        UnsupportedFieldReason::Refused => "refused",
        UnsupportedFieldReason::NotKept => "not kept",
    }
}

/// The status after a run that went through (pure; the demo prints the same thing).
pub fn certificate_status_after_success(
    status: &mut CertificateSyncStatus,
    run: &RunContext,
    interval: Duration,
    outcome: &CertificateJobOutcome,
    category_id: i64,
) -> (Duration, String) {
    let ledger = if outcome.summary.dry_run {
        &status.ledger
    } else {
        &outcome.ledger
    };
    let health = certificate_health(outcome, ledger);
    let message = health.message().to_string();
    let delay = run.complete(&mut status.common, &health, interval);
    record_certificate_outcome(status, outcome, category_id);
    (delay, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::duration::chrono_duration;
    use crate::clock::at;

    #[test]
    fn transient_failure_backs_off_from_the_end_of_the_failed_run() {
        let run = RunContext::first_run(at("2026-11-26T10:00:00Z"));
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
