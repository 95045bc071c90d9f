use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::{Europe, UTC};

use super::*;
use crate::api::MAX_STATUS_FAILURES;
use crate::jobs::fakes::{FakePersonio, FakeReteach, WriteFault};
use crate::personio::PersonioError;
use crate::sync::mass_change::MassChangeLimits;
use crate::sync::{Gender, PersonioEmployee, SkippedRecord};

use crate::clock::at;

fn now() -> DateTime<Utc> {
    at("2026-11-26T09:00:00Z")
}

fn employee(id: &str) -> PersonioEmployee {
    PersonioEmployee {
        id: id.into(),
        first_name: Some(format!("First{id}")),
        last_name: Some("Last".into()),
        email: Some(format!("user{id}@example.com")),
        position: Some("Engineer".into()),
        department: Some("R&D".into()),
        office: Some("Berlin".into()),
        gender: Some("female".into()),
        hire_date: NaiveDate::from_ymd_opt(2020, 1, 1),
        last_modified_at: Some(at("2026-01-01T00:00:00Z")),
        ..Default::default()
    }
}

fn personio_with(employees: Vec<PersonioEmployee>) -> FakePersonio {
    let personio = FakePersonio::default();
    *personio.employees.lock().unwrap() = employees;
    personio
}

fn full() -> EmployeeJobInput {
    EmployeeJobInput::full_run(now(), UTC)
}

fn incremental(cursor: &str) -> EmployeeJobInput {
    EmployeeJobInput {
        config: Default::default(),
        guard: None,
        full: false,
        cursor: Some(at(cursor)),
        ..full()
    }
}

/// A reteach whose writes for employee `id` fail with `fault`.
fn reteach_failing(id: &str, fault: WriteFault) -> FakeReteach {
    let reteach = FakeReteach::default();
    reteach
        .write_faults
        .lock()
        .unwrap()
        .insert(id.into(), fault);
    reteach
}

/// A reteach whose tag requests for employee `id` fail with `fault`.
fn tags_failing(id: &str, fault: WriteFault) -> FakeReteach {
    let reteach = FakeReteach::default();
    reteach.tag_faults.lock().unwrap().insert(id.into(), fault);
    reteach
}

/// One run that must succeed.
async fn run_ok(
    personio: &dyn PersonioApi,
    reteach: &dyn ReteachApi,
    input: &EmployeeJobInput,
) -> EmployeeJobOutcome {
    run_employee_sync(personio, reteach, input).await.unwrap()
}

/// One run that must fail.
async fn run_err(
    personio: &dyn PersonioApi,
    reteach: &dyn ReteachApi,
    input: &EmployeeJobInput,
) -> JobError {
    run_employee_sync(personio, reteach, input)
        .await
        .unwrap_err()
}

/// Personio changes employee `id` at `when`.
fn touch(
    personio: &FakePersonio,
    id: &str,
    when: &str,
    change: impl FnOnce(&mut PersonioEmployee),
) {
    let mut employees = personio.employees.lock().unwrap();
    let employee = employees.iter_mut().find(|e| e.id == id).unwrap();
    change(employee);
    employee.last_modified_at = Some(at(when));
}

/// The cursor the incremental runs start from, and when Personio changed employees after it.
const CURSOR: &str = "2026-11-26T08:55:00Z";
const CHANGED_AT: &str = "2026-11-26T08:58:00Z";

/// The incremental run after [`CURSOR`].
fn after_cursor() -> EmployeeJobInput {
    incremental(CURSOR)
}

/// Personio changes employee `id` after [`CURSOR`].
fn change(personio: &FakePersonio, id: &str, change: impl FnOnce(&mut PersonioEmployee)) {
    touch(personio, id, CHANGED_AT, change);
}

/// Employees `ids`, synced to reteach by one run of `input`.
async fn synced(ids: &[&str], input: &EmployeeJobInput) -> (FakePersonio, FakeReteach) {
    let personio = personio_with(ids.iter().map(|id| employee(id)).collect());
    let reteach = FakeReteach::default();
    run_ok(&personio, &reteach, input).await;
    (personio, reteach)
}

/// `n` employees, none in reteach yet, all changed after [`CURSOR`].
fn all_changed(n: usize) -> FakePersonio {
    let personio = personio_with((0..n).map(|i| employee(&i.to_string())).collect());
    for i in 0..n {
        change(&personio, &i.to_string(), |_| {});
    }
    personio
}

/// The incremental run after [`CURSOR`], knowing from the last full run that reteach holds
/// `users` users.
fn knowing_size(users: u64) -> EmployeeJobInput {
    EmployeeJobInput {
        reteach_users: Some(users),
        ..after_cursor()
    }
}

/// Asserts that `error`'s message contains `text`.
fn assert_mentions(error: &JobError, text: &str) {
    assert!(error.to_string().contains(text), "{error}");
}

/// How a run read reteach: (customer listings, lookups by Personio id).
fn reads(reteach: &FakeReteach) -> (usize, usize) {
    (
        reteach.calls_of("list_customers"),
        reteach.calls_of("find_by_external_id"),
    )
}

#[tokio::test]
async fn full_run_creates_every_new_employee() {
    let personio = personio_with(vec![employee("1"), employee("2")]);
    let reteach = FakeReteach::default();
    let outcome = run_ok(&personio, &reteach, &full()).await;
    assert_eq!(outcome.summary.mode, SyncMode::Full);
    assert_eq!(outcome.summary.seen, 2);
    assert_eq!(outcome.summary.created, 2);
    assert_eq!(outcome.summary.failed, 0);
    assert_eq!(outcome.next_cursor, Some(now()));
    let created = reteach.customer("1").unwrap();
    assert_eq!(created.email.as_deref(), Some("user1@example.com"));
    assert_eq!(created.gender, Some(Gender::Female));
    assert_eq!(created.set_active_at, Some(at("2020-01-01T00:00:00Z")));
}

#[tokio::test]
async fn second_full_run_finds_everything_unchanged() {
    let (personio, reteach) = synced(&["1", "2"], &full()).await;
    let writes = reteach.writes();
    let outcome = run_ok(&personio, &reteach, &full()).await;
    assert_eq!(outcome.summary.unchanged, 2);
    assert_eq!(outcome.summary.created + outcome.summary.updated, 0);
    assert_eq!(reteach.writes(), writes);
}

#[tokio::test]
async fn full_run_updates_changed_fields_and_repairs_drift() {
    let (personio, reteach) = synced(&["1"], &full()).await;
    // Someone edited the user by hand in reteach.
    reteach.customers.lock().unwrap()[0].position = Some("Hand-edited".into());
    let outcome = run_ok(&personio, &reteach, &full()).await;
    assert_eq!(outcome.summary.updated, 1);
    assert_eq!(
        reteach.customer("1").unwrap().position.as_deref(),
        Some("Engineer")
    );
}

#[tokio::test]
async fn skips_bad_records_and_keeps_syncing_the_rest() {
    let mut no_email = employee("2");
    no_email.email = None;
    let personio = personio_with(vec![employee("1"), no_email]);
    personio.skipped.lock().unwrap().push(SkippedRecord {
        id: Some("3".into()),
        reason: "hire_date: unparseable date".into(),
    });
    let reteach = FakeReteach::default();
    let outcome = run_ok(&personio, &reteach, &full()).await;
    assert_eq!(outcome.summary.seen, 3);
    assert_eq!(outcome.summary.created, 1);
    assert_eq!(outcome.summary.skipped, 2);
    let reasons: Vec<_> = outcome
        .failures
        .iter()
        .map(|f| (f.personio_id.as_deref(), f.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (Some("3"), "hire_date: unparseable date"),
            (Some("2"), "no e-mail address")
        ]
    );
}

#[tokio::test]
async fn keeps_failure_list_bounded_but_counts_complete() {
    let employees = (0..120)
        .map(|i| {
            let mut e = employee(&i.to_string());
            e.email = None;
            e
        })
        .collect();
    let personio = personio_with(employees);
    let outcome = run_ok(&personio, &FakeReteach::default(), &full()).await;
    assert_eq!(outcome.summary.skipped, 120);
    assert_eq!(outcome.failures.len(), MAX_STATUS_FAILURES);
}

#[tokio::test]
async fn incremental_run_without_changes_makes_one_request() {
    let personio = personio_with(vec![employee("1")]);
    let reteach = FakeReteach::default();
    let outcome = run_ok(&personio, &reteach, &after_cursor()).await;
    assert_eq!(outcome.summary.mode, SyncMode::Incremental);
    assert_eq!(outcome.summary.seen, 0);
    assert_eq!(personio.listings.lock().unwrap().len(), 1);
    assert!(reteach.calls.lock().unwrap().is_empty());
    assert_eq!(outcome.next_cursor, Some(now()));
}

#[tokio::test]
async fn incremental_run_asks_for_changes_since_cursor_minus_overlap_in_either_zone_reading() {
    // East of UTC the UTC reading is the earlier one, west of UTC company time is: whichever zone
    // Personio reads `updated_since` in, the value lies at or before the cursor minus the overlap.
    for (tz, expected) in [
        (Europe::Berlin, "2026-11-26 08:50:00"),
        (chrono_tz::America::New_York, "2026-11-26 03:50:00"),
        (UTC, "2026-11-26 08:50:00"),
    ] {
        let personio = FakePersonio::default();
        let input = EmployeeJobInput {
            config: Default::default(),
            guard: None,
            tz,
            ..after_cursor()
        };
        run_ok(&personio, &FakeReteach::default(), &input).await;
        let since = personio.listings.lock().unwrap()[0].unwrap();
        assert_eq!(since.to_string(), expected, "{tz}");
    }
}

#[tokio::test]
async fn incremental_run_looks_up_few_changed_employees_one_by_one() {
    let (personio, reteach) = synced(&["1", "2", "3"], &full()).await;
    change(&personio, "2", |e| e.position = Some("Lead".into()));
    reteach.calls.lock().unwrap().clear();

    let outcome = run_ok(&personio, &reteach, &after_cursor()).await;
    assert_eq!(outcome.summary.seen, 1);
    assert_eq!(outcome.summary.updated, 1);
    assert_eq!(reads(&reteach), (0, 1));
    assert_eq!(
        reteach.customer("2").unwrap().position.as_deref(),
        Some("Lead")
    );
}

#[tokio::test]
async fn incremental_run_lists_all_users_when_many_changed() {
    let personio = all_changed(60);
    let reteach = FakeReteach::default();
    let outcome = run_ok(&personio, &reteach, &after_cursor()).await;
    assert_eq!(outcome.summary.created, 60);
    assert_eq!(reads(&reteach), (1, 0));
}

#[test]
fn lookups_are_chosen_only_when_cheaper_than_listing() {
    // Size unknown: the fixed threshold.
    assert!(prefer_lookups(LOOKUP_THRESHOLD - 1, None));
    assert!(!prefer_lookups(LOOKUP_THRESHOLD, None));
    // 2,000 users = 8 pages: 7 lookups are cheaper, 8 are not.
    assert!(prefer_lookups(7, Some(2_000)));
    assert!(!prefer_lookups(8, Some(2_000)));
    // A small academy is one page: listing always wins.
    assert!(!prefer_lookups(1, Some(0)));
    assert!(!prefer_lookups(1, Some(250)));
    // 100,000 users = 400 pages: even 60 changes are looked up.
    assert!(prefer_lookups(60, Some(100_000)));
}

#[tokio::test]
async fn incremental_run_lists_a_small_academy_and_remembers_its_size() {
    let employees: Vec<_> = (0..5).map(|i| employee(&i.to_string())).collect();
    let personio = personio_with(employees);
    let reteach = FakeReteach::default();
    let first = run_ok(&personio, &reteach, &full()).await;
    assert_eq!(first.reteach_users, Some(0), "the full run listed reteach");
    for i in 0..2 {
        change(&personio, &i.to_string(), |e| {
            e.position = Some("Lead".into())
        });
    }
    reteach.calls.lock().unwrap().clear();

    let outcome = run_ok(&personio, &reteach, &knowing_size(5)).await;
    assert_eq!(outcome.summary.updated, 2);
    assert_eq!(reads(&reteach), (1, 0));
    assert_eq!(outcome.reteach_users, Some(5));
}

#[tokio::test]
async fn incremental_run_looks_up_many_changes_in_a_large_academy() {
    let personio = all_changed(60);
    let reteach = FakeReteach::default();
    let outcome = run_ok(&personio, &reteach, &knowing_size(100_000)).await;
    assert_eq!(outcome.summary.created, 60);
    assert_eq!(reads(&reteach), (0, 60));
    assert_eq!(outcome.reteach_users, None, "not listed, size unknown");
}

#[tokio::test]
async fn incremental_run_follows_an_email_change() {
    let (personio, reteach) = synced(&["1"], &full()).await;
    change(&personio, "1", |e| {
        e.email = Some("renamed@example.com".into())
    });
    let outcome = run_ok(&personio, &reteach, &after_cursor()).await;
    assert_eq!(outcome.summary.updated, 1);
    assert_eq!(reteach.customers.lock().unwrap().len(), 1);
    assert_eq!(
        reteach.customer("1").unwrap().email.as_deref(),
        Some("renamed@example.com")
    );
}

#[tokio::test]
async fn incremental_run_adopts_existing_user_found_by_email() {
    let personio = personio_with(vec![employee("1")]);
    change(&personio, "1", |_| {});
    let reteach = FakeReteach::default();
    reteach.customers.lock().unwrap().push(ReteachCustomer {
        id: "existing".into(),
        email: Some("USER1@example.com".into()),
        ..Default::default()
    });
    let outcome = run_ok(&personio, &reteach, &after_cursor()).await;
    assert_eq!(outcome.summary.updated, 1);
    assert_eq!(outcome.summary.created, 0);
    assert_eq!(reteach.customer("1").unwrap().id, "existing");
}

#[tokio::test]
async fn locks_leaver_and_unlocks_rehire() {
    let (personio, reteach) = synced(&["1"], &full()).await;

    touch(&personio, "1", "2026-11-26T08:00:00Z", |e| {
        e.termination_date = NaiveDate::from_ymd_opt(2026, 11, 20)
    });
    let left = run_ok(&personio, &reteach, &full()).await;
    assert_eq!((left.summary.updated, left.summary.locked), (1, 1));
    assert_eq!(
        reteach.customer("1").unwrap().set_inactive_at,
        Some(at("2026-11-21T00:00:00Z"))
    );

    touch(&personio, "1", "2026-11-26T08:30:00Z", |e| {
        e.termination_date = None
    });
    let rehired = run_ok(&personio, &reteach, &full()).await;
    assert_eq!((rehired.summary.updated, rehired.summary.unlocked), (1, 1));
    assert_eq!(reteach.customer("1").unwrap().set_inactive_at, None);
}

#[tokio::test]
async fn dry_run_writes_nothing_and_reports_the_plan() {
    let (personio, reteach) = synced(&["1", "2"], &full()).await;
    change(&personio, "2", |e| e.department = Some("Sales".into()));
    personio.employees.lock().unwrap().push(employee("3"));
    let writes = reteach.writes();

    let input = EmployeeJobInput {
        config: Default::default(),
        guard: None,
        dry_run: true,
        cursor: Some(at("2026-11-26T08:00:00Z")),
        ..full()
    };
    let outcome = run_ok(&personio, &reteach, &input).await;
    assert_eq!(reteach.writes(), writes);
    assert!(outcome.summary.dry_run);
    assert_eq!(
        (
            outcome.summary.created,
            outcome.summary.updated,
            outcome.summary.unchanged
        ),
        (1, 1, 1)
    );
    assert_eq!(outcome.next_cursor, input.cursor);
    let planned: Vec<_> = outcome
        .planned
        .iter()
        .map(|p| (p.personio_id.as_str(), p.action.as_str(), p.fields.clone()))
        .collect();
    assert_eq!(planned[0], ("2", "Update", vec!["department".to_string()]));
    assert_eq!(planned[1].0, "3");
    assert_eq!(planned[1].1, "Create");
    assert!(planned[1].2.contains(&"email".to_string()));
    assert_eq!(planned.len(), 2);
}

#[tokio::test]
async fn transient_write_failure_keeps_the_cursor_and_the_run_going() {
    let personio = personio_with(vec![employee("1"), employee("2")]);
    let reteach = reteach_failing("1", WriteFault::Unavailable);
    let input = EmployeeJobInput {
        config: Default::default(),
        guard: None,
        cursor: Some(at("2026-11-26T08:00:00Z")),
        ..full()
    };
    let outcome = run_ok(&personio, &reteach, &input).await;
    assert_eq!(outcome.summary.created, 1);
    assert_eq!(outcome.summary.failed, 1);
    assert_eq!(outcome.transient_failures, 1);
    assert_eq!(outcome.next_cursor, input.cursor);
    assert_eq!(outcome.failures[0].personio_id.as_deref(), Some("1"));
    assert_eq!(
        outcome.failures[0].reason,
        "reteach was unavailable; retried next run"
    );
}

#[tokio::test]
async fn run_fails_transiently_when_every_write_fails_transiently() {
    let personio = personio_with(vec![employee("1"), employee("2")]);
    let reteach = FakeReteach::default();
    for id in ["1", "2"] {
        reteach
            .write_faults
            .lock()
            .unwrap()
            .insert(id.into(), WriteFault::Unavailable);
    }
    let error = run_err(&personio, &reteach, &full()).await;
    assert!(error.is_transient(), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("could not write any user to reteach"),
        "{error}"
    );
}

#[tokio::test]
async fn rejected_write_is_reported_without_values_and_cursor_advances() {
    let personio = personio_with(vec![employee("1")]);
    let reteach = reteach_failing("1", WriteFault::Rejected);
    let outcome = run_ok(&personio, &reteach, &full()).await;
    assert_eq!(outcome.summary.failed, 1);
    assert_eq!(outcome.transient_failures, 0);
    assert_eq!(outcome.next_cursor, Some(now()));
    assert_eq!(outcome.failures[0].reason, "reteach rejected the new user");
    assert!(!outcome.failures[0].reason.contains("example.com"));
}

#[tokio::test]
async fn rejected_credentials_on_write_stop_the_run() {
    let personio = personio_with(vec![employee("1")]);
    let reteach = reteach_failing("1", WriteFault::Unauthorized);
    let error = run_err(&personio, &reteach, &full()).await;
    assert!(error.is_config());
    assert!(error
        .to_string()
        .starts_with("could not write users to reteach"));
}

#[tokio::test]
async fn listing_failure_names_personio_and_what_to_fix() {
    let personio = FakePersonio::default();
    *personio.list_error.lock().unwrap() = Some(PersonioError::AttributesNotWhitelisted(vec![
        "office".into(),
    ]));
    let error = run_err(&personio, &FakeReteach::default(), &full()).await;
    assert!(error.is_config());
    let message = error.to_string();
    assert!(message.starts_with("could not read employees from Personio"));
    assert!(message.contains("office"));
}

#[tokio::test]
async fn run_without_cursor_is_full_even_when_incremental_was_asked() {
    let personio = personio_with(vec![employee("1")]);
    let input = EmployeeJobInput {
        config: Default::default(),
        guard: None,
        full: false,
        ..full()
    };
    let outcome = run_ok(&personio, &FakeReteach::default(), &input).await;
    assert_eq!(outcome.summary.mode, SyncMode::Full);
    assert_eq!(personio.listings.lock().unwrap()[0], None);
}

#[tokio::test]
async fn incremental_email_change_onto_a_taken_address_syncs_the_rest_and_reports_it() {
    let (personio, reteach) = synced(&["1", "2"], &full()).await;
    change(&personio, "1", |e| {
        e.email = Some("user2@example.com".into());
        e.termination_date = NaiveDate::from_ymd_opt(2026, 11, 1);
    });
    let outcome = run_ok(&personio, &reteach, &after_cursor()).await;
    assert_eq!(reteach.calls_of("find_by_email"), 1);
    assert_eq!((outcome.summary.updated, outcome.summary.locked), (1, 1));
    let user = reteach.customer("1").unwrap();
    assert_eq!(user.email.as_deref(), Some("user1@example.com"));
    assert_eq!(user.set_inactive_at, Some(at("2026-11-02T00:00:00Z")));
    assert_eq!(outcome.failures.len(), 1);
    assert!(outcome.failures[0]
        .reason
        .starts_with("e-mail address shared with another employee"));
}

#[tokio::test]
async fn incremental_run_locks_leaver_whose_email_was_removed() {
    let (personio, reteach) = synced(&["1"], &full()).await;
    change(&personio, "1", |e| {
        e.email = None;
        e.termination_date = NaiveDate::from_ymd_opt(2026, 11, 25);
    });
    let outcome = run_ok(&personio, &reteach, &after_cursor()).await;
    assert_eq!((outcome.summary.updated, outcome.summary.locked), (1, 1));
    assert_eq!(outcome.summary.skipped, 0);
    let user = reteach.customer("1").unwrap();
    assert_eq!(user.email.as_deref(), Some("user1@example.com"));
    assert_eq!(user.set_inactive_at, Some(at("2026-11-26T00:00:00Z")));
    assert_eq!(
        outcome.failures[0].reason,
        "no e-mail address; e-mail not changed, other fields synced"
    );
}

mod convergence {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    const EMAILS: [Option<&str>; 6] = [
        Some("a@x.io"),
        Some("b@x.io"),
        Some("A@X.io"),
        Some("c@x.io"),
        None,
        Some("not-an-address"),
    ];

    fn arbitrary_employee() -> impl Strategy<Value = PersonioEmployee> {
        (
            1u8..8,
            0usize..EMAILS.len(),
            proptest::option::of(0i64..3_000),
            proptest::option::of(0i64..3_000),
            proptest::option::of(prop::sample::select(vec!["m", "female", "x", "other"])),
        )
            .prop_map(|(id, email, hire, end, gender)| {
                let base = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
                PersonioEmployee {
                    id: id.to_string(),
                    email: EMAILS[email].map(String::from),
                    hire_date: hire.map(|d| base + chrono::Duration::days(d)),
                    termination_date: end.map(|d| base + chrono::Duration::days(d)),
                    gender: gender.map(String::from),
                    ..employee(&id.to_string())
                }
            })
    }

    proptest! {
        /// Repeated runs settle (a run with nothing to write); no user is lost, no login or
        /// Personio id is used twice.
        #[test]
        fn repeated_full_runs_settle(
            employees in proptest::collection::vec(arbitrary_employee(), 0..10),
            existing in proptest::collection::btree_map(0usize..4, proptest::option::of(1u8..8), 0..4),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                // Personio ids are unique.
                let mut seen = HashSet::new();
                let employees: Vec<_> =
                    employees.into_iter().filter(|e| seen.insert(e.id.clone())).collect();
                let personio = personio_with(employees);
                let reteach = FakeReteach::default();
                let mut linked = HashSet::new();
                for (email, external) in &existing {
                    // Distinct addresses; each Personio id linked at most once.
                    let external = external.filter(|id| linked.insert(*id));
                    reteach.customers.lock().unwrap().push(ReteachCustomer {
                        id: format!("pre{email}"),
                        // Addresses distinct even ignoring case, as reteach enforces.
                        email: [Some("a@x.io"), Some("b@x.io"), Some("c@x.io"), None][*email]
                            .map(String::from),
                        external_id: external.map(|id| id.to_string()),
                        ..Default::default()
                    });
                }
                let before = reteach.customers.lock().unwrap().len();

                // An address freed by one employee's change is only taken by another in the
                // next run (the plan sees reteach as it was), so chains settle one link per run.
                let mut settled = false;
                for _ in 0..6 {
                    let run = run_ok(&personio, &reteach, &full()).await;
                    if run.summary.created + run.summary.updated == 0 {
                        settled = true;
                        break;
                    }
                }
                assert!(settled, "still writing after six runs");

                let customers = reteach.customers.lock().unwrap().clone();
                assert!(customers.len() >= before);
                let mut emails = HashSet::new();
                let mut externals = HashSet::new();
                for customer in &customers {
                    if let Some(email) = &customer.email {
                        assert!(emails.insert(email.to_lowercase()), "login used twice");
                    }
                    if let Some(external) = &customer.external_id {
                        assert!(externals.insert(external.clone()), "Personio id used twice");
                    }
                }
            });
        }
    }
}

// ---- mass-change guard ----

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

/// Full runs with a department tag rule.
fn tagged() -> EmployeeJobInput {
    let mut input = full();
    input.config.tags = vec![crate::sync::employee_tags::TagRule {
        source: crate::sync::employee_config::FieldSource::attribute("department"),
        prefix: "dept:".into(),
    }];
    input
}

#[tokio::test]
async fn a_failed_tag_request_is_a_record_failure_not_a_failed_run() {
    let personio = personio_with(vec![employee("1"), employee("2")]);
    let reteach = tags_failing("1", WriteFault::Rejected);
    let outcome = run_ok(&personio, &reteach, &tagged()).await;
    assert_eq!(outcome.summary.created, 2, "the users exist");
    assert_eq!(outcome.summary.failed, 1);
    assert_eq!(outcome.summary.tags_added, 1);
    assert_eq!(outcome.failures.len(), 1);
    assert_eq!(outcome.failures[0].personio_id.as_deref(), Some("1"));
    assert_eq!(
        outcome.failures[0].reason,
        "reteach rejected a tag change; tried again next run"
    );
    let managed = outcome.managed_tags.clone().unwrap();
    assert_eq!(managed, ["dept:R&D"], "owned before it was written");

    // The next run adds the missing tag: a tags-only update.
    reteach.tag_faults.lock().unwrap().clear();
    let mut again = tagged();
    again.managed_tags = managed;
    let outcome = run_ok(&personio, &reteach, &again).await;
    assert_eq!((outcome.summary.updated, outcome.summary.unchanged), (1, 1));
    assert_eq!(outcome.summary.tags_added, 1);
    assert_eq!(reteach.calls_of("update"), 0, "no field write for tags");
}

#[tokio::test]
async fn refused_credentials_on_a_tag_request_stop_the_run() {
    let personio = personio_with(vec![employee("1")]);
    let reteach = tags_failing("1", WriteFault::Unauthorized);
    let error = run_err(&personio, &reteach, &tagged()).await;
    assert_mentions(&error, "could not change tags");
}

#[tokio::test]
async fn a_dry_run_reports_tag_changes_as_counts_and_owns_nothing_new() {
    let (personio, reteach) = synced(&["1"], &tagged()).await;
    change(&personio, "1", |e| e.department = Some("Sales".into()));
    let mut input = tagged();
    input.dry_run = true;
    input.managed_tags = vec!["dept:R&D".into()];
    let outcome = run_ok(&personio, &reteach, &input).await;
    assert_eq!(outcome.managed_tags, None);
    assert_eq!(
        (outcome.summary.tags_added, outcome.summary.tags_removed),
        (1, 1)
    );
    let planned = &outcome.planned[0];
    assert_eq!(planned.fields, ["department", "tags"]);
    assert_eq!((planned.tags_to_add, planned.tags_to_remove), (1, 1));
    assert_eq!(
        reteach.calls_of("add_tags") + reteach.calls_of("remove_tag"),
        1
    );
}
