//! The part of a run's bookkeeping that talks to Kubernetes: whether a run is due (on a fresh
//! read of the object), the suspended status, and what to tell kube-runtime. How a result
//! becomes status is pure and lives in [`crate::jobs::run_status`].

use std::time::Duration;

use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::status::apply_status;
use crate::api::{
    CertificateSync, CertificateSyncStatus, EmployeeSync, EmployeeSyncStatus, SyncStatusCommon,
};
use crate::clock::Clock;
use crate::jobs::conditions::{ready, SUSPENDED};
use crate::jobs::run_status::RunContext;
use crate::jobs::schedule::{schedule, DueReason, Schedule, Wake};
use crate::jobs::Reason;
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

/// Whether a run is due (`Ok(why)`), or what to tell kube-runtime instead (`Err(action)`).
pub fn decide(
    run: &RunContext,
    status: &SyncStatusCommon,
    suspended: bool,
    waiting_reason: Option<Reason>,
    wake: Wake,
) -> Result<DueReason, Action> {
    match schedule(
        &run.schedule_input(status, suspended, waiting_reason, wake),
        run.now,
    ) {
        Schedule::Suspended => Err(Action::await_change()),
        Schedule::NotDue(delay) => Err(Action::requeue(delay)),
        Schedule::Due(reason) => Ok(reason),
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

/// Writes the status of the object named `name` (server-side apply), leaving out the keys
/// another field manager owns.
pub async fn write_status<K: Scheduled>(
    api: &Api<K>,
    name: &str,
    status: &K::Status,
) -> Result<(), kube::Error> {
    apply_status(api, name, status, K::STATUS_KEYS_OWNED_ELSEWHERE).await
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
    } else if let Err(action) = decide(&glance, cached_status.common(), false, waiting_reason, wake)
    {
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
            write_status(api, &object.name_any(), &status).await?;
        }
        return Ok(Err(Action::await_change()));
    }
    let due = decide(
        &run,
        previous.common(),
        object.suspended(),
        waiting_reason,
        wake,
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at;
    use crate::jobs::run_failure::RunFailure;

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
        let run = RunContext::first_run(at("2026-11-26T10:00:00Z"));
        let mut status = SyncStatusCommon::default();
        run.suspend(&mut status);
        let newer = RunContext {
            generation: Some(2),
            ..run
        };
        assert!(!shows_suspended(&newer, &status));
    }
}
