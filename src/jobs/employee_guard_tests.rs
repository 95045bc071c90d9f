//! The mass-change guard in a run: a run that would lock an unusual share of the academy, or that
//! sees far fewer employees than the previous full run, is held until its plan is approved.

use chrono::NaiveDate;

use super::tests::{assert_mentions, employee, full, personio_with, run_err, run_ok, touch};
use super::*;
use crate::jobs::fakes::{FakePersonio, FakeReteach};
use crate::sync::mass_change::MassChangeLimits;

const GUARD_LIMITS: MassChangeLimits = MassChangeLimits {
    max_change_percent: 10,
    min_users: 5,
    min_seen_percent: 50,
};

fn guarded(approved_plan: Option<&str>, consumed: Option<&str>) -> EmployeeJobInput {
    EmployeeJobInput {
        config: Default::default(),
        guard: Some(MassChangeGuard {
            limits: GUARD_LIMITS,
            previous_full_seen: Some(20),
            approved_plan: approved_plan.map(String::from),
            consumed_approval: consumed.map(String::from),
        }),
        ..full()
    }
}

/// Twenty employees synced, then every contract ended on the 20th.
async fn everyone_left() -> (FakePersonio, FakeReteach) {
    let ids: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
    let personio = personio_with(ids.iter().map(|id| employee(id)).collect());
    let reteach = FakeReteach::default();
    run_ok(&personio, &reteach, &guarded(None, None)).await;
    for id in &ids {
        touch(&personio, id, "2026-11-26T08:00:00Z", |e| {
            e.termination_date = NaiveDate::from_ymd_opt(2026, 11, 20)
        });
    }
    (personio, reteach)
}

fn held_plan(error: JobError) -> Box<crate::sync::mass_change::HeldPlan> {
    match error {
        JobError::MassChangeHeld { plan, .. } => plan,
        other => panic!("expected a held run, got {other}"),
    }
}

#[tokio::test]
async fn holds_a_run_that_would_lock_every_employee_and_writes_nothing() {
    let (personio, reteach) = everyone_left().await;
    let writes = reteach.writes();
    let error = run_err(&personio, &reteach, &guarded(None, None)).await;
    assert!(error.is_config(), "needs a human");
    assert_mentions(&error, "lock 20 and unlock 0 of 20 users");
    let plan = held_plan(error);
    assert_eq!(plan.locks, 20);
    assert_eq!(reteach.writes(), writes, "nothing written");
    assert!(reteach.customer("1").unwrap().set_inactive_at.is_none());
}

#[tokio::test]
async fn an_approved_plan_is_applied_and_reported_once() {
    let (personio, reteach) = everyone_left().await;
    let id = held_plan(run_err(&personio, &reteach, &guarded(None, None)).await).plan_id;
    let outcome = run_ok(&personio, &reteach, &guarded(Some(&id), None)).await;
    assert_eq!(outcome.summary.locked, 20);
    assert_eq!(outcome.applied_approval.as_deref(), Some(id.as_str()));
    assert!(reteach.customer("1").unwrap().set_inactive_at.is_some());
}

#[tokio::test]
async fn an_approval_already_used_does_not_approve_the_same_plan_again() {
    let (personio, reteach) = everyone_left().await;
    let id = held_plan(run_err(&personio, &reteach, &guarded(None, None)).await).plan_id;
    let error = run_err(&personio, &reteach, &guarded(Some(&id), Some(&id))).await;
    assert_eq!(held_plan(error).plan_id, id);
}

#[tokio::test]
async fn holds_a_full_run_when_personio_returns_nobody() {
    let personio = personio_with(Vec::new());
    let reteach = FakeReteach::default();
    let error = run_err(&personio, &reteach, &guarded(None, None)).await;
    assert_mentions(&error, "Personio returned 0 employees");
}

#[tokio::test]
async fn dry_run_is_never_held() {
    let (personio, reteach) = everyone_left().await;
    let input = EmployeeJobInput {
        config: Default::default(),
        dry_run: true,
        ..guarded(None, None)
    };
    let outcome = run_ok(&personio, &reteach, &input).await;
    assert_eq!(outcome.summary.locked, 20);
    assert!(reteach.customer("1").unwrap().set_inactive_at.is_none());
}
