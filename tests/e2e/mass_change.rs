//! End-to-end: the mass-change guard of EmployeeSync on a real kube-apiserver, against the
//! simulators. A run that would lock or unlock an unusual share of the academy, or that sees far
//! fewer employees than the previous full run, writes nothing and is `Stalled` (`MassChangeHeld`)
//! until the annotation `sync.reteach.io/approve-plan` names its plan id; an approval is good for
//! that plan, once. Run with `scripts/test.sh --test e2e -- mass_change::`.

use crate::support;

use chrono::{Days, NaiveDate, Utc};
use reteach_personio_operator::api::{EmployeeSync, EmployeeSyncStatus, APPROVE_PLAN_ANNOTATION};
use reteach_personio_operator::sim::personio::EmployeeSeed;
use serde_json::json;
use support::operator::{condition, is_ready, World};

const SYNC: &str = "personio";
const COMPANY_SIZE: usize = 20;

fn yesterday() -> NaiveDate {
    Utc::now().date_naive() - Days::new(1)
}

/// Every run is a full one, so the employee count of each run is comparable.
fn every_run_full() -> serde_json::Value {
    json!({"fullResyncInterval": "2s"})
}

/// Twenty active employees, all synced once.
async fn synced_company(world: &World) -> Vec<i64> {
    let ids: Vec<i64> = (0..COMPANY_SIZE)
        .map(|i| {
            world.personio.sim.add_employee(
                EmployeeSeed::new("Emp", &format!("No{i}"), &format!("emp{i}@acme.example"))
                    .with_hire_date(Utc::now().date_naive() - Days::new(400)),
            )
        })
        .collect();
    world
        .apply(world.employee_sync(SYNC, every_run_full()))
        .await;
    world
        .wait_employee_sync(SYNC, "the company synced", |s| {
            is_ready(&s.common.conditions) && s.last_full_sync_seen == Some(COMPANY_SIZE as i64)
        })
        .await;
    assert_eq!(world.reteach.sim.customers().len(), COMPANY_SIZE);
    ids
}

fn held(status: &EmployeeSyncStatus) -> bool {
    condition(&status.common.conditions, "Stalled")
        .is_some_and(|c| c.status == "True" && c.reason == "MassChangeHeld")
}

fn held_message(sync: &EmployeeSync) -> String {
    sync.status
        .as_ref()
        .and_then(|s| condition(&s.common.conditions, "Stalled"))
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// The plan id of "held plan <id>: …".
fn plan_id(message: &str) -> String {
    message
        .strip_prefix("held plan ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no plan id in {message:?}"))
        .to_string()
}

fn inactive(world: &World, ids: &[i64]) -> usize {
    ids.iter()
        .filter(|id| world.reteach.sim.status_of(&id.to_string()) == Some("INACTIVE"))
        .count()
}

fn writes(world: &World) -> usize {
    let control = world.reteach.sim.control();
    control.count("POST /customer") + control.count("PUT /customer")
}

async fn approve(world: &World, plan: &str) {
    world
        .annotate(&world.employee_syncs(), SYNC, APPROVE_PLAN_ANNOTATION, plan)
        .await;
}

#[tokio::test]
async fn every_contract_ended_yesterday_is_held_then_applied_once_when_approved() {
    let world = World::with_secrets("mass-leavers").await;
    let ids = synced_company(&world).await;
    let writes_before = writes(&world);
    world.personio.sim.bulk_edit(|_, seed| {
        seed.termination_date = Some(yesterday());
        seed.status = "inactive".into();
        true
    });

    let stalled = world
        .wait_employee_sync(SYNC, "Stalled=True MassChangeHeld", held)
        .await;
    let message = held_message(&stalled);
    assert!(
        message.contains("would lock 20 and unlock 0 of 20 users"),
        "{message}"
    );
    assert!(message.contains(APPROVE_PLAN_ANNOTATION), "{message}");
    let plan = plan_id(&message);
    world.wait_event(SYNC, "MassChangeHeld", &plan).await;
    assert_eq!(inactive(&world, &ids), 0, "nobody locked");
    assert_eq!(writes(&world), writes_before, "nothing written");
    let event = world.wait_event(SYNC, "MassChangeHeld", &plan).await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));

    approve(&world, &plan).await;
    let applied = world
        .wait_employee_sync(SYNC, "the approved plan applied", |s| {
            is_ready(&s.common.conditions)
                && s.applied_plan_approval.as_deref() == Some(plan.as_str())
        })
        .await;
    assert_eq!(inactive(&world, &ids), COMPANY_SIZE, "everyone locked");
    let run = applied.status.expect("status").last_run.expect("lastRun");
    assert_eq!(run.locked, COMPANY_SIZE as i64);

    // A later, different plan is held again although the old approval is still annotated:
    // six rehires unlock more than the five users allowed.
    world.personio.sim.bulk_edit(|id, seed| {
        if ids[..6].contains(&id) {
            seed.termination_date = None;
            seed.status = "active".into();
        }
        true
    });
    let again = world
        .wait_employee_sync(SYNC, "the rehires held", held)
        .await;
    let message = held_message(&again);
    assert!(message.contains("unlock 6"), "{message}");
    assert_ne!(plan_id(&message), plan, "a different plan");
    assert_eq!(inactive(&world, &ids), COMPANY_SIZE, "nobody unlocked");
}

#[tokio::test]
async fn personio_suddenly_returning_forty_percent_of_the_employees_is_held() {
    let world = World::with_secrets("mass-shrink").await;
    let ids = synced_company(&world).await;
    let writes_before = writes(&world);
    // A wrong filter, a test company's credentials: 8 of 20 come back.
    // And one of those that remain left yesterday: even that small change waits.
    world.personio.sim.bulk_edit(|id, seed| {
        if id == ids[0] {
            seed.termination_date = Some(yesterday());
        }
        !ids[8..].contains(&id)
    });

    let stalled = world
        .wait_employee_sync(SYNC, "Stalled=True MassChangeHeld", held)
        .await;
    let message = held_message(&stalled);
    assert!(
        message.contains("Personio returned 8 employees, far fewer than the 20"),
        "{message}"
    );
    let plan = plan_id(&message);
    world.wait_event(SYNC, "MassChangeHeld", &plan).await;
    assert_eq!(inactive(&world, &ids), 0, "nobody locked");
    assert_eq!(writes(&world), writes_before, "nothing written");
    let status = world.employee_sync_now(SYNC).await.status.expect("status");
    assert_eq!(status.last_full_sync_seen, Some(COMPANY_SIZE as i64));

    // Approved: applied once, and the new size becomes the reference.
    approve(&world, &plan).await;
    world
        .wait_employee_sync(SYNC, "the approved plan applied", |s| {
            is_ready(&s.common.conditions) && s.last_full_sync_seen == Some(8)
        })
        .await;
    assert_eq!(inactive(&world, &ids), 1, "the leaver is locked");
    assert_eq!(
        world.reteach.sim.customers().len(),
        COMPANY_SIZE,
        "nobody deleted"
    );
}

#[tokio::test]
async fn a_disabled_guard_lets_a_mass_change_through() {
    let world = World::with_secrets("mass-off").await;
    let ids = synced_company(&world).await;
    world
        .apply(world.employee_sync(
            SYNC,
            json!({"fullResyncInterval": "2s", "massChangeGuard": {"enabled": false}}),
        ))
        .await;
    world.personio.sim.bulk_edit(|_, seed| {
        seed.termination_date = Some(yesterday());
        true
    });
    world
        .wait_employee_sync(SYNC, "everyone locked", |s| {
            is_ready(&s.common.conditions) && !held(s)
        })
        .await;
    support::poll_until("everyone locked", support::WAIT, || async {
        (inactive(&world, &ids) == COMPANY_SIZE).then_some(())
    })
    .await;
}
