use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::{Europe, UTC};

use super::*;
use crate::api::MAX_STATUS_FAILURES;
use crate::jobs::fakes::{FakePersonio, FakeReteach, WriteFault};
use crate::personio::PersonioError;
use crate::sync::{Gender, PersonioEmployee, SkippedRecord};

use crate::clock::at;

pub(super) fn now() -> DateTime<Utc> {
    at("2026-11-26T09:00:00Z")
}

pub(super) fn employee(id: &str) -> PersonioEmployee {
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

pub(super) fn personio_with(employees: Vec<PersonioEmployee>) -> FakePersonio {
    let personio = FakePersonio::default();
    *personio.employees.lock().unwrap() = employees;
    personio
}

pub(super) fn full() -> EmployeeJobInput {
    EmployeeJobInput::full_run(now(), UTC)
}

pub(super) fn incremental(cursor: &str) -> EmployeeJobInput {
    EmployeeJobInput {
        config: Default::default(),
        guard: None,
        full: false,
        cursor: Some(at(cursor)),
        ..full()
    }
}

/// A reteach whose writes for employee `id` fail with `fault`.
pub(super) fn reteach_failing(id: &str, fault: WriteFault) -> FakeReteach {
    let reteach = FakeReteach::default();
    reteach
        .write_faults
        .lock()
        .unwrap()
        .insert(id.into(), fault);
    reteach
}

/// A reteach whose tag requests for employee `id` fail with `fault`.
pub(super) fn tags_failing(id: &str, fault: WriteFault) -> FakeReteach {
    let reteach = FakeReteach::default();
    reteach.tag_faults.lock().unwrap().insert(id.into(), fault);
    reteach
}

/// One run that must succeed.
pub(super) async fn run_ok(
    personio: &dyn PersonioApi,
    reteach: &dyn ReteachApi,
    input: &EmployeeJobInput,
) -> EmployeeJobOutcome {
    run_employee_sync(personio, reteach, input).await.unwrap()
}

/// One run that must fail.
pub(super) async fn run_err(
    personio: &dyn PersonioApi,
    reteach: &dyn ReteachApi,
    input: &EmployeeJobInput,
) -> JobError {
    run_employee_sync(personio, reteach, input)
        .await
        .unwrap_err()
}

/// Personio changes employee `id` at `when`.
pub(super) fn touch(
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
pub(super) const CURSOR: &str = "2026-11-26T08:55:00Z";
pub(super) const CHANGED_AT: &str = "2026-11-26T08:58:00Z";

/// The incremental run after [`CURSOR`].
pub(super) fn after_cursor() -> EmployeeJobInput {
    incremental(CURSOR)
}

/// Personio changes employee `id` after [`CURSOR`].
pub(super) fn change(
    personio: &FakePersonio,
    id: &str,
    change: impl FnOnce(&mut PersonioEmployee),
) {
    touch(personio, id, CHANGED_AT, change);
}

/// Employees `ids`, synced to reteach by one run of `input`.
pub(super) async fn synced(ids: &[&str], input: &EmployeeJobInput) -> (FakePersonio, FakeReteach) {
    let personio = personio_with(ids.iter().map(|id| employee(id)).collect());
    let reteach = FakeReteach::default();
    run_ok(&personio, &reteach, input).await;
    (personio, reteach)
}

/// `n` employees, none in reteach yet, all changed after [`CURSOR`].
pub(super) fn all_changed(n: usize) -> FakePersonio {
    let personio = personio_with((0..n).map(|i| employee(&i.to_string())).collect());
    for i in 0..n {
        change(&personio, &i.to_string(), |_| {});
    }
    personio
}

/// The incremental run after [`CURSOR`], knowing from the last full run that reteach holds
/// `users` users.
pub(super) fn knowing_size(users: u64) -> EmployeeJobInput {
    EmployeeJobInput {
        reteach_users: Some(users),
        ..after_cursor()
    }
}

/// Asserts that `error`'s message contains `text`.
pub(super) fn assert_mentions(error: &JobError, text: &str) {
    assert!(error.to_string().contains(text), "{error}");
}

/// How a run read reteach: (customer listings, lookups by Personio id).
pub(super) fn reads(reteach: &FakeReteach) -> (usize, usize) {
    (
        reteach.calls_of("list_customers"),
        reteach.calls_of("find_by_external_id"),
    )
}

#[tokio::test]
pub(super) async fn full_run_creates_every_new_employee() {
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
pub(super) async fn second_full_run_finds_everything_unchanged() {
    let (personio, reteach) = synced(&["1", "2"], &full()).await;
    let writes = reteach.writes();
    let outcome = run_ok(&personio, &reteach, &full()).await;
    assert_eq!(outcome.summary.unchanged, 2);
    assert_eq!(outcome.summary.created + outcome.summary.updated, 0);
    assert_eq!(reteach.writes(), writes);
}

#[tokio::test]
pub(super) async fn full_run_updates_changed_fields_and_repairs_drift() {
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
pub(super) async fn skips_bad_records_and_keeps_syncing_the_rest() {
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
pub(super) async fn keeps_failure_list_bounded_but_counts_complete() {
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
pub(super) async fn incremental_run_without_changes_makes_one_request() {
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
pub(super) async fn incremental_run_asks_for_changes_since_cursor_minus_overlap_in_either_zone_reading(
) {
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
pub(super) async fn incremental_run_looks_up_few_changed_employees_one_by_one() {
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
pub(super) async fn incremental_run_lists_all_users_when_many_changed() {
    let personio = all_changed(60);
    let reteach = FakeReteach::default();
    let outcome = run_ok(&personio, &reteach, &after_cursor()).await;
    assert_eq!(outcome.summary.created, 60);
    assert_eq!(reads(&reteach), (1, 0));
}

#[test]
pub(super) fn lookups_are_chosen_only_when_cheaper_than_listing() {
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
pub(super) async fn incremental_run_lists_a_small_academy_and_remembers_its_size() {
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
pub(super) async fn incremental_run_looks_up_many_changes_in_a_large_academy() {
    let personio = all_changed(60);
    let reteach = FakeReteach::default();
    let outcome = run_ok(&personio, &reteach, &knowing_size(100_000)).await;
    assert_eq!(outcome.summary.created, 60);
    assert_eq!(reads(&reteach), (0, 60));
    assert_eq!(outcome.reteach_users, None, "not listed, size unknown");
}

#[tokio::test]
pub(super) async fn incremental_run_follows_an_email_change() {
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
pub(super) async fn incremental_run_adopts_existing_user_found_by_email() {
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
pub(super) async fn locks_leaver_and_unlocks_rehire() {
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
pub(super) async fn dry_run_writes_nothing_and_reports_the_plan() {
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
pub(super) async fn transient_write_failure_keeps_the_cursor_and_the_run_going() {
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
pub(super) async fn run_fails_transiently_when_every_write_fails_transiently() {
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
pub(super) async fn rejected_write_is_reported_without_values_and_cursor_advances() {
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
pub(super) async fn rejected_credentials_on_write_stop_the_run() {
    let personio = personio_with(vec![employee("1")]);
    let reteach = reteach_failing("1", WriteFault::Unauthorized);
    let error = run_err(&personio, &reteach, &full()).await;
    assert!(error.is_config());
    assert!(error
        .to_string()
        .starts_with("could not write users to reteach"));
}

#[tokio::test]
pub(super) async fn listing_failure_names_personio_and_what_to_fix() {
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
pub(super) async fn run_without_cursor_is_full_even_when_incremental_was_asked() {
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
pub(super) async fn incremental_email_change_onto_a_taken_address_syncs_the_rest_and_reports_it() {
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
pub(super) async fn incremental_run_locks_leaver_whose_email_was_removed() {
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
