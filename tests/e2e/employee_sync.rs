//! End-to-end: the EmployeeSync controller on a real kube-apiserver, running in-process against the
//! Personio and reteach simulators. Run with `scripts/test.sh --test e2e -- employee_sync::`.

use crate::support;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use reteach_personio_operator::api::{EmployeeSyncStatus, SyncMode, REQUESTED_AT_ANNOTATION};
use reteach_personio_operator::sim::personio::EmployeeSeed;
use reteach_personio_operator::sim::{Fault, FaultRule};
use serde_json::json;
use support::operator::{
    condition, is_ready, PersonioServer, World, BLOCKED_RECHECK, PERSONIO_SECRET, RETEACH_SECRET,
};

const SYNC: &str = "personio";

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn days_ago(days: u64) -> NaiveDate {
    today() - Days::new(days)
}

fn days_ahead(days: u64) -> NaiveDate {
    today() + Days::new(days)
}

/// The company every test starts from, by role.
struct Company {
    active: i64,
    leaver: i64,
    future_hire: i64,
    fixed_term: i64,
    without_email: i64,
}

/// Names and addresses of the seed: none of them may ever show up in status or events.
const PERSONAL_DATA: [&str; 10] = [
    "Anna",
    "Active",
    "anna@acme.example",
    "Ben",
    "Leaver",
    "ben@acme.example",
    "Clara",
    "Future",
    "clara@acme.example",
    "Nomail",
];

/// Seeds the company as last modified two hours ago, so an incremental run sees only what
/// changes afterwards.
fn seed_company(world: &World) -> Company {
    world.personio.clock.set_behind(chrono::Duration::hours(2));
    let company = add_employees(world);
    world.personio.clock.set_behind(chrono::Duration::zero());
    company
}

fn add_employees(world: &World) -> Company {
    let personio = &world.personio.sim;
    Company {
        active: personio.add_employee(
            EmployeeSeed::new("Anna", "Active", "anna@acme.example")
                .with_hire_date(days_ago(700))
                .with_department(281_522, "Engineering")
                .with_office(131_014, "Munich"),
        ),
        leaver: personio.add_employee(
            EmployeeSeed::new("Ben", "Leaver", "ben@acme.example")
                .with_status("inactive")
                .with_hire_date(days_ago(400))
                .with_termination_date(days_ago(1)),
        ),
        future_hire: personio.add_employee(
            EmployeeSeed::new("Clara", "Future", "clara@acme.example")
                .with_status("onboarding")
                .with_hire_date(days_ahead(10)),
        ),
        fixed_term: personio.add_employee(
            EmployeeSeed::new("David", "Fixed", "david@acme.example")
                .with_hire_date(days_ago(30))
                .with_termination_date(days_ahead(30)),
        ),
        without_email: personio.add_employee(
            EmployeeSeed::new("Eve", "Nomail", "unused@acme.example")
                .with_email(None)
                .with_hire_date(days_ago(100)),
        ),
    }
}

fn has_stalled(status: &EmployeeSyncStatus) -> bool {
    condition(&status.common.conditions, "Stalled").is_some_and(|c| c.status == "True")
}

fn ready_message(status: &EmployeeSyncStatus) -> String {
    condition(&status.common.conditions, "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn applied_employee_sync_becomes_ready_and_creates_the_right_reteach_users() {
    let world = World::with_secrets("esync-ready").await;
    let company = seed_company(&world);
    // A long interval keeps the first run's counters in status while the test reads them.
    world
        .apply(world.employee_sync(SYNC, json!({"interval": "1h"})))
        .await;

    let sync = world
        .wait_employee_sync(SYNC, "Ready=True", |s| is_ready(&s.common.conditions))
        .await;
    let status = sync.status.clone().expect("status");
    assert_eq!(status.common.observed_generation, sync.metadata.generation);
    let run = status.last_run.clone().expect("lastRun");
    assert_eq!(run.mode, SyncMode::Full, "the first run compares everyone");
    assert_eq!(
        (run.seen, run.created, run.locked, run.skipped, run.failed),
        (5, 4, 2, 1, 0),
        "seen/created/locked/skipped/failed of {run:?}"
    );
    assert!(run.finished_at.is_some());
    assert!(status.cursor.is_some(), "a successful run sets the cursor");
    assert!(status.common.next_sync_time > status.common.last_sync_time);
    assert_eq!(status.failures.len(), 1, "{:?}", status.failures);
    assert_eq!(
        status.failures[0].personio_id.as_deref(),
        Some(company.without_email.to_string().as_str())
    );
    let status_text = serde_json::to_string(&status).expect("status serialises");
    for personal in PERSONAL_DATA {
        assert!(
            !status_text.contains(personal),
            "status leaks {personal:?}: {status_text}"
        );
    }

    let customers = world.reteach.sim.customers();
    let external_ids: BTreeSet<String> = customers
        .iter()
        .filter_map(|c| c.external_id.clone())
        .collect();
    let expected: BTreeSet<String> = [
        company.active,
        company.leaver,
        company.future_hire,
        company.fixed_term,
    ]
    .iter()
    .map(i64::to_string)
    .collect();
    assert_eq!(
        customers.len(),
        4,
        "exactly one user per employee with e-mail"
    );
    assert_eq!(external_ids, expected, "externalId = Personio id");

    let reteach = &world.reteach.sim;
    let user = |id: i64| reteach.customer(&id.to_string()).expect("user exists");
    let active = user(company.active);
    assert_eq!(active.email.as_deref(), Some("anna@acme.example"));
    assert_eq!(active.department.as_deref(), Some("Engineering"));
    assert_eq!(active.location.as_deref(), Some("Munich"));
    assert_ne!(
        reteach.status_of(&company.active.to_string()),
        Some("INACTIVE")
    );
    assert!(user(company.leaver)
        .set_inactive_at
        .is_some_and(|at| at <= Utc::now()));
    assert_eq!(
        reteach.status_of(&company.leaver.to_string()),
        Some("INACTIVE")
    );
    assert!(user(company.future_hire)
        .set_active_at
        .is_some_and(|at| at > Utc::now()));
    assert_eq!(
        reteach.status_of(&company.future_hire.to_string()),
        Some("INACTIVE")
    );
    assert!(
        user(company.fixed_term)
            .set_inactive_at
            .is_some_and(|at| at > Utc::now()),
        "a contract ending in 30 days is locked by reteach itself on that day"
    );
    assert_ne!(
        reteach.status_of(&company.fixed_term.to_string()),
        Some("INACTIVE")
    );
    assert_eq!(reteach.delete_requests(), 0);

    let events = support::poll_until("a Synced event", support::WAIT, || async {
        let events = world.events_about(SYNC).await;
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("Synced"))
            .then_some(events)
    })
    .await;
    for event in &events {
        let note = event.note.clone().unwrap_or_default();
        for personal in PERSONAL_DATA {
            assert!(!note.contains(personal), "event leaks {personal:?}: {note}");
        }
    }
}

#[tokio::test]
async fn personio_change_arrives_on_the_next_interval_in_an_incremental_run() {
    let world = World::with_secrets("esync-incremental").await;
    let company = seed_company(&world);
    world.apply(world.employee_sync(SYNC, json!({}))).await;
    let first = world
        .wait_employee_sync(SYNC, "Ready=True", |s| is_ready(&s.common.conditions))
        .await;
    let first_run = first
        .status
        .and_then(|s| s.common.last_successful_sync_time);

    let changed_at = Utc::now();
    world
        .personio
        .sim
        .update_employee(company.active, |employee| {
            employee.position = Some("Team Lead".into());
            employee.termination_date = Some(days_ago(1));
        });
    let changed = world
        .wait_employee_sync(SYNC, "a run after the change", |s| {
            s.common.last_successful_sync_time > first_run
                && s.last_run
                    .as_ref()
                    .is_some_and(|r| r.started_at > changed_at)
        })
        .await;
    let run = changed.status.and_then(|s| s.last_run).expect("lastRun");
    assert_eq!(run.mode, SyncMode::Incremental, "{run:?}");
    // Only the changed employee is read: the run that carried the change says so for good.
    world
        .wait_event(
            SYNC,
            "Synced",
            "1 employees: 0 created, 1 updated (1 locked",
        )
        .await;
    let user = world
        .reteach
        .sim
        .customer(&company.active.to_string())
        .expect("user exists");
    assert_eq!(user.position.as_deref(), Some("Team Lead"));
    assert_eq!(
        world.reteach.sim.status_of(&company.active.to_string()),
        Some("INACTIVE"),
        "a contract that ended yesterday locks the user"
    );
}

#[tokio::test]
async fn suspend_stops_runs_and_unsuspend_resumes_them() {
    let world = World::with_secrets("esync-suspend").await;
    seed_company(&world);
    world.apply(world.employee_sync(SYNC, json!({}))).await;
    world
        .wait_employee_sync(SYNC, "Ready=True", |s| is_ready(&s.common.conditions))
        .await;

    world
        .apply(world.employee_sync(SYNC, json!({"suspend": true})))
        .await;
    // A run that had already started before the spec changed may still finish.
    let settled = world
        .wait_employee_sync(SYNC, "no run in progress", |s| {
            condition(&s.common.conditions, "Reconciling").is_none()
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let personio = world.personio.sim.control();
    let requests_when_suspended = personio.requests().len();
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        personio.requests().len(),
        requests_when_suspended,
        "a suspended sync sends no requests for four intervals"
    );

    let suspended_at = settled
        .status
        .and_then(|s| s.common.last_successful_sync_time)
        .expect("synced before");
    world
        .apply(world.employee_sync(SYNC, json!({"suspend": false})))
        .await;
    world.wait_employee_run_after(SYNC, suspended_at).await;
    assert!(personio.requests().len() > requests_when_suspended);
}

#[tokio::test]
async fn requested_at_annotation_forces_a_run_and_is_echoed() {
    let world = World::with_secrets("esync-requested").await;
    let company = seed_company(&world);
    world
        .apply(world.employee_sync(SYNC, json!({"interval": "1h"})))
        .await;
    let first = world
        .wait_employee_sync(SYNC, "Ready=True", |s| is_ready(&s.common.conditions))
        .await;
    let first_run = first
        .status
        .and_then(|s| s.common.last_successful_sync_time)
        .expect("synced");

    world
        .personio
        .sim
        .update_employee(company.active, |employee| {
            employee.position = Some("Principal Engineer".into());
        });
    world
        .annotate(
            &world.employee_syncs(),
            SYNC,
            REQUESTED_AT_ANNOTATION,
            "2026-11-26T09:00:00Z",
        )
        .await;
    let forced = world
        .wait_employee_sync(SYNC, "the requested run to be handled", |s| {
            s.common.last_handled_reconcile_at.as_deref() == Some("2026-11-26T09:00:00Z")
        })
        .await;
    let status = forced.status.expect("status");
    assert!(status.common.last_successful_sync_time > Some(first_run));
    assert!(is_ready(&status.common.conditions));
    let user = world
        .reteach
        .sim
        .customer(&company.active.to_string())
        .expect("user exists");
    assert_eq!(user.position.as_deref(), Some("Principal Engineer"));
}

#[tokio::test]
async fn broken_secret_stalls_and_fixing_the_secret_recovers_without_touching_the_sync() {
    // Secrets are not watched (the operator may only GET them): the blocked re-check, every
    // BLOCKED_RECHECK here, picks the fixed Secret up.
    let world = World::start("esync-secret").await;
    world.apply_reteach_secret().await;
    let (client_id, client_secret) = world.personio.sim.credentials();
    world
        .apply_secret(PERSONIO_SECRET, json!({"clientId": client_id}))
        .await;
    seed_company(&world);
    world.apply(world.employee_sync(SYNC, json!({}))).await;

    let stalled = world
        .wait_employee_sync(SYNC, "Stalled=True", has_stalled)
        .await;
    let status = stalled.status.clone().expect("status");
    let ready = condition(&status.common.conditions, "Ready").expect("Ready is always present");
    assert_eq!(ready.status, "False");
    let stalled_condition = condition(&status.common.conditions, "Stalled").expect("Stalled");
    assert!(
        stalled_condition.message.contains(PERSONIO_SECRET)
            && stalled_condition.message.contains("clientSecret"),
        "the message names the Secret and the key: {}",
        stalled_condition.message
    );
    assert!(!stalled_condition.message.contains(&client_id));
    assert!(world.reteach.sim.customers().is_empty());
    let generation = stalled.metadata.generation;

    world
        .apply_secret(
            PERSONIO_SECRET,
            json!({"clientId": client_id, "clientSecret": client_secret}),
        )
        .await;
    let recovered = world
        .wait_employee_sync(SYNC, "Ready=True after the fix", |s| {
            is_ready(&s.common.conditions) && !has_stalled(s)
        })
        .await;
    assert_eq!(recovered.metadata.generation, generation, "spec untouched");
    assert_eq!(world.reteach.sim.customers().len(), 4);
}

#[tokio::test]
async fn rejected_credentials_stall_naming_the_secret_to_fix() {
    let world = World::with_secrets("esync-rejected").await;
    seed_company(&world);
    world
        .apply_secret(
            RETEACH_SECRET,
            json!({"clientId": "wrong", "clientSecret": "wrong", "clientCode": "wrong"}),
        )
        .await;
    world.apply(world.employee_sync(SYNC, json!({}))).await;

    let stalled = world
        .wait_employee_sync(SYNC, "Stalled=True", has_stalled)
        .await;
    let stalled = condition(
        &stalled.status.expect("status").common.conditions,
        "Stalled",
    )
    .expect("Stalled")
    .clone();
    assert_eq!(stalled.reason, "ReteachCredentialsRejected");
    assert!(
        stalled
            .message
            .contains(&format!("Secret {}/{RETEACH_SECRET}", world.namespace)),
        "names the Secret: {}",
        stalled.message
    );
    assert!(world.reteach.sim.customers().is_empty());
}

#[tokio::test]
async fn credential_without_email_stalls_naming_it_while_other_syncs_keep_running() {
    let world = World::with_secrets("esync-whitelist").await;
    seed_company(&world);
    let restricted = PersonioServer::start().await;
    restricted.sim.add_employee(
        EmployeeSeed::new("Fritz", "Hidden", "fritz@acme.example").with_hire_date(days_ago(5)),
    );
    restricted.sim.set_whitelist(Some(&[
        "first_name",
        "last_name",
        "position",
        "department",
        "office",
        "gender",
        "hire_date",
        "termination_date",
        "last_modified_at",
    ]));
    world
        .apply(world.employee_sync_to("restricted", &restricted.url, json!({})))
        .await;
    world.apply(world.employee_sync(SYNC, json!({}))).await;

    let stalled = world
        .wait_employee_sync("restricted", "Stalled=True", has_stalled)
        .await;
    let message = condition(
        &stalled.status.expect("status").common.conditions,
        "Stalled",
    )
    .expect("Stalled")
    .message
    .clone();
    assert!(message.contains("email"), "names the attribute: {message}");

    let healthy = world
        .wait_employee_sync(SYNC, "Ready=True", |s| is_ready(&s.common.conditions))
        .await;
    let first = healthy
        .status
        .and_then(|s| s.common.last_successful_sync_time)
        .expect("synced");
    world.wait_employee_run_after(SYNC, first).await;
    let still = world.employee_sync_now("restricted").await;
    assert!(has_stalled(&still.status.expect("status")));
    assert!(world.reteach.sim.customer("fritz@acme.example").is_none());
}

#[tokio::test]
async fn personio_outage_sets_ready_false_and_the_next_attempt_recovers() {
    let world = World::with_secrets("esync-outage").await;
    seed_company(&world);
    // More 503s than the client retries within one run (five attempts).
    world.personio.sim.control().inject(FaultRule::new(
        "GET /v1/company/employees",
        Fault::Status(503),
        5,
    ));
    world.apply(world.employee_sync(SYNC, json!({}))).await;

    let failed = world
        .wait_employee_sync(SYNC, "Ready=False after the outage", |s| {
            condition(&s.common.conditions, "Ready").is_some_and(|c| c.status == "False")
                && s.common.consecutive_failures >= 1
        })
        .await;
    let status = failed.status.expect("status");
    let ready = condition(&status.common.conditions, "Ready").expect("Ready");
    assert_eq!(ready.reason, "PersonioUnavailable");
    assert!(
        !has_stalled(&status),
        "an outage is not a configuration error"
    );
    // The client spent more than ten seconds on its own retries (1 + 2 + 4 + 8 s): the backoff
    // counts from the end of the failed run, or the run's own status write would restart it.
    let started = status.common.last_sync_time.expect("lastSyncTime");
    assert!(
        status.common.next_sync_time > Some(started + chrono::Duration::seconds(10)),
        "retry scheduled from the end of the failed run: {:?} vs start {started}",
        status.common.next_sync_time
    );

    let recovered = world
        .wait_employee_sync(SYNC, "Ready=True once Personio answers", |s| {
            is_ready(&s.common.conditions)
        })
        .await;
    let status = recovered.status.expect("status");
    assert_eq!(status.common.consecutive_failures, 0);
    assert_eq!(world.reteach.sim.customers().len(), 4);
}

#[tokio::test]
async fn idle_sync_is_not_retriggered_by_its_own_status_writes() {
    let world = World::with_secrets("esync-idle").await;
    seed_company(&world);
    world
        .apply(world.employee_sync(SYNC, json!({"interval": "1h"})))
        .await;
    let synced = world
        .wait_employee_sync(SYNC, "Ready=True", |s| {
            is_ready(&s.common.conditions)
                && condition(&s.common.conditions, "Reconciling").is_none()
        })
        .await;
    let personio = world.personio.sim.control();
    let reteach = world.reteach.sim.control();
    let before = (personio.requests().len(), reteach.requests().len());
    let version = synced.metadata.resource_version.clone();

    tokio::time::sleep(Duration::from_secs(3) + BLOCKED_RECHECK * 2).await;

    assert_eq!(
        (personio.requests().len(), reteach.requests().len()),
        before,
        "no upstream requests between intervals"
    );
    let later = world.employee_sync_now(SYNC).await;
    assert_eq!(
        later.metadata.resource_version, version,
        "no further status writes while idle"
    );
}

#[tokio::test]
async fn dry_run_reports_counts_and_planned_actions_without_writing_to_reteach() {
    let world = World::with_secrets("esync-dryrun").await;
    let company = seed_company(&world);
    world
        .apply(world.employee_sync(SYNC, json!({"dryRun": true, "interval": "1h"})))
        .await;

    let sync = world
        .wait_employee_sync(SYNC, "Ready=True", |s| is_ready(&s.common.conditions))
        .await;
    let status = sync.status.expect("status");
    let run = status.last_run.clone().expect("lastRun");
    assert!(run.dry_run);
    assert_eq!(
        (run.seen, run.created, run.locked, run.skipped),
        (5, 4, 2, 1),
        "{run:?}"
    );
    let planned: BTreeSet<(String, String)> = status
        .planned_actions
        .iter()
        .map(|a| (a.personio_id.clone(), a.action.clone()))
        .collect();
    for id in [
        company.active,
        company.leaver,
        company.future_hire,
        company.fixed_term,
    ] {
        assert!(
            planned.contains(&(id.to_string(), "Create".to_string())),
            "{id} planned as Create in {planned:?}"
        );
    }
    assert!(ready_message(&status).contains("dry run"));
    assert!(world.reteach.sim.customers().is_empty());
    assert_eq!(world.reteach.sim.total_writes(), 0);
}
