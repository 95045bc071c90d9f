//! Tests of the employee plan: identity, fields, locking, counts.

use super::*;
use crate::sync::lock_window::is_locked_at;
use crate::sync::model::{CustomerPatch, Gender};
use chrono::NaiveDate;
use chrono_tz::{Europe, UTC};

pub(super) fn now() -> DateTime<Utc> {
    "2026-11-26T09:00:00Z".parse().unwrap()
}

pub(super) fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub(super) fn employee(id: &str, email: &str) -> PersonioEmployee {
    PersonioEmployee {
        id: id.into(),
        first_name: Some("First".into()),
        last_name: Some("Last".into()),
        email: Some(email.into()),
        position: Some("Engineer".into()),
        department: Some("R&D".into()),
        office: Some("Berlin".into()),
        gender: Some("male".into()),
        hire_date: Some(day(2020, 1, 1)),
        ..Default::default()
    }
}

/// The reteach user exactly as a previous sync of `employee` left it (UTC zone).
pub(super) fn synced(id: &str, employee: &PersonioEmployee) -> ReteachCustomer {
    let EmployeeAction::Create(fields) =
        EmployeePlan::build(std::slice::from_ref(employee), &[], now(), UTC).entries[0]
            .action
            .clone()
    else {
        panic!("expected create");
    };
    ReteachCustomer {
        id: id.into(),
        external_id: Some(fields.external_id),
        email: Some(fields.email),
        first_name: fields.first_name,
        last_name: fields.last_name,
        position: fields.position,
        department: fields.department,
        location: fields.location,
        gender: fields.gender,
        company: fields.company,
        language: fields.language,
        note: fields.note,
        set_active_at: fields.set_active_at,
        set_inactive_at: fields.set_inactive_at,
        // As reteach derives it from the dates.
        status: Some(
            if is_locked_at(fields.set_active_at, fields.set_inactive_at, now()) {
                "INACTIVE"
            } else {
                "ACTIVE"
            }
            .into(),
        ),
        tags: Vec::new(),
    }
}

/// The parts of an [`EmployeeAction::Update`], to assert on.
pub(super) struct Update {
    pub(super) customer_id: String,
    pub(super) patch: CustomerPatch,
    pub(super) changed: Vec<&'static str>,
    pub(super) locks: bool,
    pub(super) unlocks: bool,
}

/// The parts of the update `action` is; any other action fails the test.
pub(super) fn update(action: &EmployeeAction) -> Update {
    match action.clone() {
        EmployeeAction::Update {
            customer_id,
            patch,
            changed,
            locks,
            unlocks,
        } => Update {
            customer_id,
            patch,
            changed,
            locks,
            unlocks,
        },
        other => panic!("expected update, got {other:?}"),
    }
}

/// The action for employee 1 (user `c1`) once Personio changed it by `change` after a sync.
fn after_change(change: impl FnOnce(&mut PersonioEmployee)) -> EmployeeAction {
    let e = employee("1", "a@example.com");
    let customer = synced("c1", &e);
    let mut changed = e;
    change(&mut changed);
    single(&[changed], &[customer])
}

pub(super) fn single(
    employees: &[PersonioEmployee],
    customers: &[ReteachCustomer],
) -> EmployeeAction {
    let plan = EmployeePlan::build(employees, customers, now(), UTC);
    plan.entries.last().unwrap().action.clone()
}

/// The plan of `employees` under `config` (UTC).
pub(super) fn configured(
    config: &EmployeeConfig,
    employees: &[PersonioEmployee],
    customers: &[ReteachCustomer],
) -> EmployeePlan {
    tagged(config, employees, customers, &[])
}

/// [`configured`] for a resource that owns the tags `managed` already.
pub(super) fn tagged(
    config: &EmployeeConfig,
    employees: &[PersonioEmployee],
    customers: &[ReteachCustomer],
    managed: &[String],
) -> EmployeePlan {
    let mapped: Vec<MappedEmployee> = employees.iter().map(|e| map_record(e, config)).collect();
    let ownership = TagOwnership::new(managed, tags_in_run(&mapped, now(), UTC));
    EmployeePlan::build_with_table(&config.table(), &mapped, customers, &ownership, now(), UTC)
}

/// Department tags plus one tag for everyone.
pub(super) fn department_tags() -> EmployeeConfig {
    use crate::sync::employee_config::FieldSource;
    use crate::sync::employee_tags::TagRule;
    EmployeeConfig {
        tags: vec![
            TagRule {
                source: FieldSource::attribute("department"),
                prefix: String::new(),
            },
            TagRule {
                source: FieldSource::Constant("personio".into()),
                prefix: String::new(),
            },
        ],
        ..EmployeeConfig::default()
    }
}

pub(super) fn with_tags(mut customer: ReteachCustomer, names: &[&str]) -> ReteachCustomer {
    customer.tags = names
        .iter()
        .map(|name| crate::sync::CustomerTag {
            id: format!("tag-{name}"),
            name: name.to_string(),
        })
        .collect();
    customer
}

#[test]
fn creates_unknown_employee_with_all_fields() {
    let action = single(&[employee("1", "a@example.com")], &[]);
    let EmployeeAction::Create(fields) = action else {
        panic!("expected create, got {action:?}");
    };
    assert_eq!(fields.external_id, "1");
    assert_eq!(fields.email, "a@example.com");
    assert_eq!(fields.gender, Some(Gender::Male));
    assert_eq!(fields.location.as_deref(), Some("Berlin"));
    assert_eq!(
        fields.set_active_at,
        Some("2020-01-01T00:00:00Z".parse().unwrap())
    );
    assert_eq!(fields.set_inactive_at, None);
}

#[test]
fn leaves_matching_user_unchanged() {
    let e = employee("1", "a@example.com");
    assert_eq!(
        single(std::slice::from_ref(&e), &[synced("c1", &e)]),
        EmployeeAction::Unchanged
    );
}

#[test]
fn updates_only_the_changed_fields() {
    let action = after_change(|e| e.position = Some("Lead".into()));
    assert_eq!(
        action,
        EmployeeAction::Update {
            customer_id: "c1".into(),
            patch: CustomerPatch {
                position: Some(Some("Lead".into())),
                ..Default::default()
            },
            changed: vec!["position"],
            locks: false,
            unlocks: false,
        }
    );
}

#[test]
fn follows_an_email_change_by_external_id() {
    let e = employee("1", "old@example.com");
    let customer = synced("c1", &e);
    let moved = employee("1", "new@example.com");
    let Update { patch, changed, .. } = update(&single(&[moved], &[customer]));
    assert_eq!(changed, vec!["email"]);
    assert_eq!(patch.email, Some(Some("new@example.com".into())));
}

#[test]
fn ignores_case_only_email_difference() {
    let e = employee("1", "Ada@Example.com");
    let mut customer = synced("c1", &e);
    customer.email = Some("ada@example.com".into());
    assert_eq!(single(&[e], &[customer]), EmployeeAction::Unchanged);
}

#[test]
fn adopts_unlinked_user_found_by_email_and_stamps_external_id() {
    let e = employee("1", "a@example.com");
    let mut customer = synced("c1", &e);
    customer.external_id = None;
    customer.email = Some("A@EXAMPLE.COM".into());
    let Update {
        customer_id,
        patch,
        changed,
        ..
    } = update(&single(&[e], &[customer]));
    assert_eq!(customer_id, "c1");
    assert_eq!(changed, vec!["externalId"]);
    assert_eq!(patch.external_id, Some(Some("1".into())));
}

#[test]
fn skips_email_of_user_linked_to_another_employee() {
    let other = synced("c9", &employee("9", "a@example.com"));
    let action = single(&[employee("1", "a@example.com")], &[other]);
    assert_eq!(
        action,
        EmployeeAction::Skip {
            reason: REASON_SHARED_EMAIL
        }
    );
}

#[test]
fn keeps_email_but_syncs_other_fields_when_new_address_is_taken() {
    let me = synced("c1", &employee("1", "me@example.com"));
    let mut stranger = synced("c2", &employee("2", "taken@example.com"));
    stranger.external_id = None;
    let mut changed = employee("1", "taken@example.com");
    changed.position = Some("Lead".into());
    let plan = EmployeePlan::build(&[changed], &[me, stranger], now(), UTC);
    let entry = &plan.entries[0];
    assert_eq!(entry.warning, Some(WARNING_EMAIL_TAKEN));
    let Update { patch, changed, .. } = update(&entry.action);
    assert_eq!(changed, vec!["position"]);
    assert_eq!(patch.email, None);
}

#[test]
fn locks_leaver_even_when_new_address_collides() {
    let me = synced("c1", &employee("1", "me@example.com"));
    let other = synced("c2", &employee("2", "taken@example.com"));
    let mut leaving = employee("1", "taken@example.com");
    leaving.termination_date = Some(day(2026, 11, 1));
    let plan = EmployeePlan::build(&[leaving], &[me, other], now(), UTC);
    assert_eq!(plan.entries[0].warning, Some(WARNING_SHARED_EMAIL));
    let Update { locks, patch, .. } = update(&plan.entries[0].action);
    assert!(locks);
    assert_eq!(patch.email, None);
}

#[test]
fn shared_email_goes_to_the_employee_whose_user_already_has_it() {
    let owner = employee("2", "same@example.com");
    let customer = synced("c2", &owner);
    let plan = EmployeePlan::build(
        &[employee("1", "same@example.com"), owner],
        &[customer],
        now(),
        UTC,
    );
    assert_eq!(
        plan.entries[0].action,
        EmployeeAction::Skip {
            reason: REASON_SHARED_EMAIL
        }
    );
    assert_eq!(plan.entries[1].action, EmployeeAction::Unchanged);
    assert_eq!(plan.entries[1].warning, None);
}

#[test]
fn skips_later_employees_sharing_an_email() {
    let plan = EmployeePlan::build(
        &[
            employee("1", "same@example.com"),
            employee("2", "SAME@example.com"),
            employee("3", "other@example.com"),
        ],
        &[],
        now(),
        UTC,
    );
    assert!(matches!(plan.entries[0].action, EmployeeAction::Create(_)));
    assert_eq!(
        plan.entries[1].action,
        EmployeeAction::Skip {
            reason: REASON_SHARED_EMAIL
        }
    );
    assert!(matches!(plan.entries[2].action, EmployeeAction::Create(_)));
}

#[test]
fn skips_invalid_records_with_fixed_reasons() {
    let mut no_email = employee("1", "x@example.com");
    no_email.email = None;
    assert_eq!(
        single(&[no_email], &[]),
        EmployeeAction::Skip {
            reason: "no e-mail address"
        }
    );
}

#[test]
fn still_locks_linked_leaver_whose_email_was_removed() {
    let e = employee("1", "a@example.com");
    let customer = synced("c1", &e);
    let mut leaving = e.clone();
    leaving.email = None;
    leaving.termination_date = Some(day(2026, 11, 25));
    let plan = EmployeePlan::build(&[leaving], &[customer], now(), UTC);
    let entry = &plan.entries[0];
    assert_eq!(entry.warning, Some(WARNING_NO_EMAIL));
    let Update {
        patch,
        changed,
        locks,
        ..
    } = update(&entry.action);
    assert_eq!(changed, vec!["setInactiveAt"]);
    assert_eq!(patch.email, None);
    assert!(locks);
}

#[test]
fn locks_user_whose_contract_ended_yesterday() {
    let action = after_change(|e| e.termination_date = Some(day(2026, 11, 25)));
    let Update {
        patch,
        changed,
        locks,
        unlocks,
        ..
    } = update(&action);
    assert_eq!(changed, vec!["setInactiveAt"]);
    assert_eq!(
        patch.set_inactive_at,
        Some(Some("2026-11-26T00:00:00Z".parse().unwrap()))
    );
    assert!(locks);
    assert!(!unlocks);
}

#[test]
fn schedules_but_does_not_lock_contract_ending_tomorrow() {
    let action = after_change(|e| e.contract_end_date = Some(day(2026, 11, 27)));
    let Update { locks, .. } = update(&action);
    assert!(!locks);
}

#[test]
fn leaves_alone_a_user_whose_fired_dates_reteach_cleared() {
    let mut left = employee("1", "a@example.com");
    left.termination_date = Some(day(2025, 6, 30));
    let mut customer = synced("c1", &left);
    assert_eq!(customer.status.as_deref(), Some("INACTIVE"));
    customer.set_active_at = None;
    customer.set_inactive_at = None;
    assert!(matches!(
        single(&[left], &[customer]),
        EmployeeAction::Unchanged
    ));

    let active = employee("2", "b@example.com");
    let mut customer = synced("c2", &active);
    customer.set_active_at = None;
    assert!(matches!(
        single(&[active], &[customer]),
        EmployeeAction::Unchanged
    ));
}

#[test]
fn locks_again_a_user_whose_cleared_end_date_left_them_active() {
    let mut left = employee("1", "a@example.com");
    left.termination_date = Some(day(2025, 6, 30));
    let mut customer = synced("c1", &left);
    customer.set_inactive_at = None;
    customer.status = Some("ACTIVE".into());
    let Update { patch, locks, .. } = update(&single(&[left], &[customer]));
    assert!(matches!(patch.set_inactive_at, Some(Some(_))));
    assert!(locks);
}

#[test]
fn unlocks_rehired_user_by_clearing_inactive_date() {
    let mut left = employee("1", "a@example.com");
    left.termination_date = Some(day(2025, 6, 30));
    let customer = synced("c1", &left);
    let rehired = employee("1", "a@example.com");
    let Update {
        patch,
        locks,
        unlocks,
        ..
    } = update(&single(&[rehired], &[customer]));
    assert_eq!(patch.set_inactive_at, Some(None));
    assert!(unlocks);
    assert!(!locks);
    let json = serde_json::to_value(&patch).unwrap();
    assert_eq!(json, serde_json::json!({"setInactiveAt": null}));
}

#[test]
fn counts_creation_of_future_hire_as_locked() {
    let mut future = employee("1", "a@example.com");
    future.hire_date = Some(day(2027, 1, 1));
    let plan = EmployeePlan::build(&[future, employee("2", "b@example.com")], &[], now(), UTC);
    assert_eq!(
        plan.counts(),
        EmployeeCounts {
            created: 2,
            locked: 1,
            ..Default::default()
        }
    );
}

#[test]
fn uses_company_zone_for_set_active_at() {
    let e = employee("1", "a@example.com");
    let plan = EmployeePlan::build(&[e], &[], now(), Europe::Berlin);
    let EmployeeAction::Create(fields) = &plan.entries[0].action else {
        panic!("expected create");
    };
    assert_eq!(
        fields.set_active_at,
        Some("2019-12-31T23:00:00Z".parse().unwrap())
    );
}

#[test]
fn never_plans_more_or_fewer_entries_than_employees() {
    let employees: Vec<_> = (0..10_000)
        .map(|i| employee(&i.to_string(), &format!("user{i}@example.com")))
        .collect();
    let customers: Vec<_> = employees
        .iter()
        .take(5_000)
        .map(|e| synced(&format!("c{}", e.id), e))
        .collect();
    let plan = EmployeePlan::build(&employees, &customers, now(), UTC);
    assert_eq!(plan.entries.len(), employees.len());
    let counts = plan.counts();
    assert_eq!(counts.unchanged, 5_000);
    assert_eq!(counts.created, 5_000);
}
