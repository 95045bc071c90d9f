//! Issue 17 without Kubernetes: `spec.mapping` and `spec.selector` through the real clients and
//! job against both simulators — custom `dynamic_…` attributes, data minimisation (the request
//! and the whitelist check follow the configuration), an employee leaving and entering the
//! selection on incremental runs.

use crate::support;

use std::collections::BTreeMap;

use chrono::Duration;
use reteach_personio_operator::api::UnsupportedFieldReason;
use reteach_personio_operator::sim::reteach::FieldMode;
use reteach_personio_operator::sync::employee_config::{
    AttributeMatch, EmployeeConfig, FieldSource,
};

use support::sims::{employee, Sims};

const EMPLOYEE_NO: &str = "dynamic_44101";

/// Position from a template over a custom attribute, a constant location, gender mapped from
/// Personio's words, department left alone, external staff excluded.
fn config() -> EmployeeConfig {
    let mut config = EmployeeConfig::default();
    config.mapping.position = FieldSource::Template(format!("{{position}} #{{{EMPLOYEE_NO}}}"));
    config.mapping.location = FieldSource::Constant("HQ".into());
    config.mapping.gender = FieldSource::Attribute {
        name: "gender".into(),
        values: BTreeMap::from([("female".to_string(), "diverse".to_string())]),
    };
    config.mapping.department = FieldSource::Unmapped;
    config.selector.exclude.push(AttributeMatch {
        attribute: "employment_type".into(),
        values: vec!["external".into()],
    });
    config
}

#[tokio::test]
async fn a_mapping_with_a_custom_attribute_fills_the_fields_and_asks_for_exactly_its_attributes() {
    let sims = Sims::start().await;
    let ada = sims
        .personio
        .add_employee(employee(1).with_custom(EMPLOYEE_NO, "E-17"));
    let external = sims
        .personio
        .add_employee(employee(2).with_employment_type("external"));
    sims.set_employee_config(config());
    let outcome = sims.sync_employees().await;
    assert_eq!(outcome.summary.created, 1, "{outcome:?}");
    assert!(sims.reteach.customer(&external.to_string()).is_none());
    let user = sims.reteach.customer(&ada.to_string()).expect("user");
    assert_eq!(user.position.as_deref(), Some("Engineer #E-17"));
    assert_eq!(user.location.as_deref(), Some("HQ"));
    assert_eq!(user.gender.as_deref(), Some("DIVERSE"));
    assert_eq!(user.department, None, "an unmapped field is not written");

    let status = sims.employee_status.lock().expect("status").clone();
    assert_eq!(
        status.personio_attributes,
        [
            "first_name",
            "last_name",
            "email",
            "position",
            "gender",
            "hire_date",
            "termination_date",
            EMPLOYEE_NO,
            "employment_type",
        ]
    );
    // Exactly those are asked for (and the optional ones): no `office`, no `department`.
    let listing = sims
        .personio
        .control()
        .requests()
        .into_iter()
        .rev()
        .find(|request| request.path.starts_with("/v1/company/employees"))
        .and_then(|request| request.query)
        .expect("a listing");
    assert!(listing.contains(EMPLOYEE_NO), "{listing}");
    assert!(!listing.contains("office"), "{listing}");
    assert!(!listing.contains("department"), "{listing}");

    sims.clock.advance(Duration::minutes(10));
    let again = sims.sync_employees().await;
    assert_eq!(
        again.summary.unchanged, 1,
        "a mapped value is stable: {again:?}"
    );
}

#[tokio::test]
async fn a_custom_attribute_missing_from_the_whitelist_is_named() {
    let sims = Sims::start().await;
    sims.personio
        .add_employee(employee(1).with_custom(EMPLOYEE_NO, "E-17"));
    sims.set_employee_config(config());
    let mut whitelist: Vec<String> = config().attributes();
    whitelist.retain(|name| name != EMPLOYEE_NO);
    let whitelist: Vec<&str> = whitelist.iter().map(String::as_str).collect();
    sims.personio.set_whitelist(Some(&whitelist));
    let error = sims.employee_run(true).await.expect_err("cannot sync");
    assert!(error.is_config(), "{error}");
    assert!(error.to_string().contains(EMPLOYEE_NO), "{error}");

    // The configuration's own list is enough: `office` and `department` need no whitelisting.
    let full: Vec<String> = config().attributes();
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    sims.personio.set_whitelist(Some(&full));
    let outcome = sims.sync_employees().await;
    assert_eq!(outcome.summary.created, 1, "{outcome:?}");
}

#[tokio::test]
async fn leaving_the_selection_locks_and_entering_it_syncs_on_incremental_runs() {
    let sims = Sims::start().await;
    let ada = sims
        .personio
        .add_employee(employee(1).with_custom(EMPLOYEE_NO, "E-1"));
    let bob = sims.personio.add_employee(
        employee(2)
            .with_custom(EMPLOYEE_NO, "E-2")
            .with_employment_type("external"),
    );
    sims.set_employee_config(config());
    sims.sync_employees().await;
    assert!(sims.reteach.customer(&bob.to_string()).is_none());

    sims.clock.advance(Duration::minutes(10));
    sims.personio
        .update_employee(ada, |seed| seed.employment_type = Some("external".into()));
    sims.personio
        .update_employee(bob, |seed| seed.employment_type = Some("internal".into()));
    let outcome = sims.employee_run(false).await.expect("incremental run");
    assert_eq!(outcome.summary.locked, 1, "{outcome:?}");
    assert_eq!(outcome.summary.created, 1, "{outcome:?}");
    assert_eq!(sims.reteach.status_of(&ada.to_string()), Some("INACTIVE"));
    assert!(
        sims.reteach.customer(&ada.to_string()).is_some(),
        "never deleted"
    );
    assert!(sims.reteach.customer(&bob.to_string()).is_some());

    sims.clock.advance(Duration::days(2));
    let writes = sims.reteach.total_writes();
    let later = sims.sync_employees().await;
    assert_eq!(later.summary.unchanged, 2, "{later:?}");
    assert_eq!(
        sims.reteach.total_writes(),
        writes,
        "a locked leaver is not rewritten"
    );
}

/// Customer writes (`POST`/`PUT /customer…`) the reteach simulator received, refused or not.
fn customer_writes(sims: &Sims) -> usize {
    sims.reteach
        .control()
        .requests()
        .iter()
        .filter(|r| (r.method == "POST" || r.method == "PUT") && r.path.starts_with("/customer"))
        .count()
}

fn unsupported(sims: &Sims) -> Vec<(String, UnsupportedFieldReason)> {
    sims.employee_status
        .lock()
        .expect("status")
        .unsupported_fields
        .iter()
        .map(|field| (field.field.clone(), field.reason))
        .collect()
}

#[tokio::test]
async fn a_field_the_academy_refuses_is_reported_once_and_left_out_of_later_writes() {
    let sims = Sims::start().await;
    sims.reteach.set_field_mode("position", FieldMode::Refuse);
    let ids: Vec<i64> = (0..5)
        .map(|i| sims.personio.add_employee(employee(i)))
        .collect();

    let first = sims.sync_employees().await;
    assert_eq!(first.summary.created, 5, "{first:?}");
    assert_eq!(
        first.summary.failed, 0,
        "never a failure per user: {first:?}"
    );
    assert!(first.failures.is_empty(), "{:?}", first.failures);
    assert_eq!(first.newly_unsupported.len(), 1, "reported once: {first:?}");
    assert_eq!(
        unsupported(&sims),
        [("position".to_string(), UnsupportedFieldReason::Refused)]
    );
    for id in &ids {
        let user = sims.reteach.customer(&id.to_string()).expect("synced");
        assert_eq!(user.department.as_deref(), Some("Engineering"));
        assert_eq!(user.position, None);
    }
    // The writes after the first refusal leave the field out before sending: at most the
    // writes in flight at once were refused.
    let refused = sims
        .reteach
        .control()
        .requests()
        .iter()
        .filter(|r| r.status == 400)
        .count();
    assert!((1..=4).contains(&refused), "{refused} refused writes");

    // Later runs: no write at all, nothing reported again, even when Personio changes the
    // refused field.
    sims.personio
        .update_employee(ids[0], |seed| seed.position = Some("Lead".into()));
    sims.clock.advance(Duration::minutes(10));
    let writes = customer_writes(&sims);
    let second = sims.sync_employees().await;
    assert_eq!(second.summary.unchanged, 5, "{second:?}");
    assert!(second.newly_unsupported.is_empty());
    assert_eq!(customer_writes(&sims), writes, "zero writes");
    assert_eq!(unsupported(&sims).len(), 1, "still remembered");

    // A different mapping of the field tries it again (and finds it refused again).
    let mut config = EmployeeConfig::default();
    config.mapping.position = FieldSource::Constant("Staff".into());
    sims.set_employee_config(config);
    sims.clock.advance(Duration::minutes(10));
    let third = sims.sync_employees().await;
    assert_eq!(third.newly_unsupported.len(), 1, "{third:?}");
    assert_eq!(third.summary.failed, 0, "{third:?}");
    assert_eq!(third.summary.unchanged, 5, "{third:?}");
}

#[tokio::test]
async fn a_field_the_academy_does_not_keep_is_not_changed_forever() {
    let sims = Sims::start().await;
    sims.reteach.set_field_mode("location", FieldMode::Drop);
    sims.add_employees(3);
    let first = sims.sync_employees().await;
    assert_eq!(first.summary.created, 3, "{first:?}");
    assert_eq!(first.summary.failed, 0, "{first:?}");
    assert_eq!(first.newly_unsupported.len(), 1, "{first:?}");
    assert_eq!(
        unsupported(&sims),
        [("location".to_string(), UnsupportedFieldReason::NotKept)]
    );

    sims.clock.advance(Duration::minutes(10));
    let writes = customer_writes(&sims);
    let second = sims.sync_employees().await;
    assert_eq!(second.summary.unchanged, 3, "{second:?}");
    assert_eq!(second.summary.updated, 0, "{second:?}");
    assert!(second.newly_unsupported.is_empty());
    assert_eq!(customer_writes(&sims), writes, "zero writes");
}

#[tokio::test]
async fn an_update_whose_only_change_is_refused_is_not_sent_and_other_changes_go_through() {
    let sims = Sims::start().await;
    let ids = sims.add_employees(2);
    sims.sync_employees().await;
    // The academy is moved to an API without `position`; Personio changes two positions and one
    // department.
    sims.reteach.set_field_mode("position", FieldMode::Refuse);
    sims.personio
        .update_employee(ids[0], |seed| seed.position = Some("Lead".into()));
    sims.personio.update_employee(ids[1], |seed| {
        seed.position = Some("Lead".into());
        seed.department.as_mut().expect("unit").name = "Sales".into();
    });
    sims.clock.advance(Duration::minutes(10));
    let outcome = sims.sync_employees().await;
    assert_eq!(outcome.summary.failed, 0, "{outcome:?}");
    assert_eq!(
        outcome.summary.updated + outcome.summary.unchanged,
        2,
        "{outcome:?}"
    );
    assert_eq!(outcome.newly_unsupported.len(), 1, "{outcome:?}");
    let moved = sims.reteach.customer(&ids[1].to_string()).expect("user");
    assert_eq!(moved.department.as_deref(), Some("Sales"));
    sims.clock.advance(Duration::minutes(10));
    let writes = customer_writes(&sims);
    let later = sims.sync_employees().await;
    assert_eq!(later.summary.unchanged, 2, "{later:?}");
    assert_eq!(customer_writes(&sims), writes, "zero writes");
}

#[tokio::test]
async fn company_language_and_note_are_stored_and_stable_once_mapped() {
    let sims = Sims::start().await;
    let ada = sims
        .personio
        .add_employee(employee(1).with_custom(EMPLOYEE_NO, "Deutsch"));
    let bob = sims
        .personio
        .add_employee(employee(2).with_custom(EMPLOYEE_NO, "Klingonisch"));
    let mut config = EmployeeConfig::default();
    config.mapping.company = FieldSource::Constant("Demo GmbH".into());
    config.mapping.note = FieldSource::Template(format!("Personio {{{EMPLOYEE_NO}}}"));
    config.mapping.language = FieldSource::Attribute {
        name: EMPLOYEE_NO.into(),
        values: BTreeMap::from([("Deutsch".to_string(), "de".to_string())]),
    };
    sims.set_employee_config(config);
    let first = sims.sync_employees().await;
    assert_eq!(
        (first.summary.created, first.summary.failed),
        (2, 0),
        "{first:?}"
    );
    assert!(first.newly_unsupported.is_empty(), "{first:?}");
    let user = sims.reteach.customer(&ada.to_string()).expect("user");
    assert_eq!(user.company.as_deref(), Some("Demo GmbH"));
    assert_eq!(user.language.as_deref(), Some("DE"));
    assert_eq!(user.note.as_deref(), Some("Personio Deutsch"));
    let other = sims.reteach.customer(&bob.to_string()).expect("user");
    assert_eq!(other.language, None, "an unknown language is not sent");

    sims.clock.advance(Duration::minutes(10));
    let writes = customer_writes(&sims);
    let second = sims.sync_employees().await;
    assert_eq!(second.summary.unchanged, 2, "{second:?}");
    assert_eq!(customer_writes(&sims), writes, "zero writes");
}
