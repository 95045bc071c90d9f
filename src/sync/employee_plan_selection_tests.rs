//! Tests of the employee plan: tags and the selector.

use super::tests::*;
use super::{tags_in_run, EmployeeAction, EmployeePlan, REASON_SHARED_EMAIL, WARNING_SHARED_EMAIL};
use crate::sync::employee_config::EmployeeConfig;
use crate::sync::employee_mapping::map_record;
use crate::sync::model::{CustomerPatch, ReteachCustomer};
use chrono_tz::UTC;

#[test]
fn a_new_user_gets_the_tags_of_the_rules() {
    let plan = configured(&department_tags(), &[employee("1", "a@example.com")], &[]);
    assert!(matches!(plan.entries[0].action, EmployeeAction::Create(_)));
    assert_eq!(plan.entries[0].tags.add, ["R&D", "personio"]);
    assert_eq!(plan.counts().tags_added, 2);
}

#[test]
fn a_department_change_swaps_the_tag_and_keeps_hand_set_ones() {
    let ada = employee("1", "a@example.com");
    let user = with_tags(synced("c1", &ada), &["R&D", "personio", "First aider"]);
    let mut moved = ada.clone();
    moved.department = Some("Sales".into());
    let managed = ["R&D".to_string(), "personio".to_string()];
    let plan = tagged(&department_tags(), &[moved], &[user], &managed);
    let entry = &plan.entries[0];
    let EmployeeAction::Update { changed, .. } = &entry.action else {
        panic!("expected update: {entry:?}");
    };
    assert_eq!(changed, &vec!["department"]);
    assert_eq!(entry.tags.add, ["Sales"]);
    let removed: Vec<&str> = entry.tags.remove.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(removed, ["R&D"]);
}

#[test]
fn a_user_whose_only_change_is_tags_is_an_update_without_fields() {
    let ada = employee("1", "a@example.com");
    let user = with_tags(synced("c1", &ada), &["R&D"]);
    let plan = configured(&department_tags(), &[ada], &[user]);
    let entry = &plan.entries[0];
    assert_eq!(
        entry.action,
        EmployeeAction::Update {
            customer_id: "c1".into(),
            patch: CustomerPatch::default(),
            changed: Vec::new(),
            locks: false,
            unlocks: false,
        }
    );
    assert_eq!(entry.tags.add, ["personio"]);
    assert_eq!(plan.counts().updated, 1);
}

#[test]
fn a_user_with_the_wanted_tags_is_unchanged() {
    let ada = employee("1", "a@example.com");
    let user = with_tags(synced("c1", &ada), &["personio", "r&d", "VIP"]);
    let managed = ["R&D".to_string(), "personio".to_string()];
    let plan = tagged(&department_tags(), &[ada], &[user], &managed);
    assert_eq!(plan.entries[0].action, EmployeeAction::Unchanged);
    assert!(plan.entries[0].tags.is_empty());
}

#[test]
fn a_leaver_and_a_deselected_employee_keep_their_tags() {
    let ada = employee("1", "a@example.com");
    let user = with_tags(synced("c1", &ada), &["R&D", "personio"]);
    let mut leaving = ada.clone();
    leaving.termination_date = Some(day(2026, 11, 1));
    leaving.department = Some("Sales".into());
    let managed = ["R&D".to_string(), "personio".to_string()];
    let plan = tagged(
        &department_tags(),
        &[leaving],
        std::slice::from_ref(&user),
        &managed,
    );
    assert!(plan.entries[0].tags.is_empty(), "{:?}", plan.entries[0]);
    let mut config = department_tags();
    config.selector = only_munich().selector;
    let plan = tagged(&config, &[ada], &[user], &managed);
    let EmployeeAction::Update { locks, .. } = plan.entries[0].action else {
        panic!("expected a lock");
    };
    assert!(locks);
    assert!(plan.entries[0].tags.is_empty());
}

#[test]
fn a_leavers_tags_are_not_made_the_resources() {
    let mut leaving = employee("1", "a@example.com");
    leaving.termination_date = Some(day(2026, 11, 1));
    leaving.department = Some("Legacy".into());
    let config = department_tags();
    let mapped = [
        map_record(&leaving, &config),
        map_record(&employee("2", "b@example.com"), &config),
    ];
    assert_eq!(tags_in_run(&mapped, now(), UTC), ["R&D", "personio"]);
}

#[test]
fn a_future_hire_gets_tags_with_the_user() {
    let mut future = employee("1", "a@example.com");
    future.hire_date = Some(day(2027, 1, 1));
    let plan = configured(&department_tags(), &[future], &[]);
    assert!(plan.entries[0].locked_after);
    assert_eq!(plan.entries[0].tags.add, ["R&D", "personio"]);
}

fn only_munich() -> EmployeeConfig {
    let mut config = EmployeeConfig::default();
    config
        .selector
        .include
        .push(crate::sync::employee_config::AttributeMatch {
            attribute: "office".into(),
            values: vec!["Munich".into()],
        });
    config
}

#[test]
fn an_employee_outside_the_selection_without_a_user_is_left_out() {
    let plan = configured(&only_munich(), &[employee("1", "a@example.com")], &[]);
    assert!(plan.entries.is_empty(), "{:?}", plan.entries);
}

#[test]
fn an_employee_who_leaves_the_selection_is_locked_like_a_leaver_and_stays_locked() {
    let ada = employee("1", "a@example.com");
    let user = synced("c1", &ada);
    let plan = configured(
        &only_munich(),
        std::slice::from_ref(&ada),
        std::slice::from_ref(&user),
    );
    let EmployeeAction::Update {
        changed,
        locks,
        patch,
        ..
    } = &plan.entries[0].action
    else {
        panic!("expected a lock: {:?}", plan.entries);
    };
    assert!(*locks);
    assert_eq!(changed, &vec!["setInactiveAt"]);
    assert!(plan.entries[0].locked_after);
    let inactive_at = patch.set_inactive_at.flatten().unwrap();
    assert!(inactive_at <= now(), "locked at once");
    // Once reteach locked the user, the next runs (also on later days) change nothing.
    let locked = ReteachCustomer {
        set_inactive_at: Some(inactive_at),
        status: Some("INACTIVE".into()),
        ..user
    };
    let later = configured(&only_munich(), &[ada], &[locked]);
    assert_eq!(later.entries[0].action, EmployeeAction::Unchanged);
}

/// Ada (outside the selection, listed first) and Bob (selected) share an address.
fn sharing(ada_user: Option<ReteachCustomer>) -> EmployeePlan {
    let ada = employee("1", "same@example.com");
    let mut bob = employee("2", "same@example.com");
    bob.office = Some("Munich".into());
    let users: Vec<ReteachCustomer> = ada_user.into_iter().collect();
    configured(&only_munich(), &[ada, bob], &users)
}

#[test]
fn an_employee_outside_the_selection_does_not_make_a_selected_one_skip() {
    let plan = sharing(None);
    assert_eq!(plan.entries.len(), 1, "{:?}", plan.entries);
    assert_eq!(plan.entries[0].personio_id, "2");
    assert!(matches!(plan.entries[0].action, EmployeeAction::Create(_)));
}

#[test]
fn a_shared_address_stays_with_the_user_of_an_employee_outside_the_selection() {
    // Ada's user has the address: it is locked, and never handed to Bob (one address is one
    // reteach user, with Ada's history).
    let ada_user = synced("c1", &employee("1", "same@example.com"));
    let plan = sharing(Some(ada_user));
    let ada = &plan.entries[0];
    let EmployeeAction::Update { locks, patch, .. } = &ada.action else {
        panic!("expected a lock: {:?}", plan.entries);
    };
    assert!(*locks);
    assert_eq!(patch.external_id, None, "not relinked");
    assert_eq!(
        plan.entries[1].action,
        EmployeeAction::Skip {
            reason: REASON_SHARED_EMAIL
        }
    );
}

#[test]
fn an_employee_outside_the_selection_does_not_take_a_new_address_from_a_selected_one() {
    // Ada's user still has her old address; her new one is Bob's.
    let ada_user = synced("c1", &employee("1", "old@example.com"));
    let plan = sharing(Some(ada_user));
    let ada = &plan.entries[0];
    assert_eq!(ada.warning, Some(WARNING_SHARED_EMAIL));
    let EmployeeAction::Update { locks, patch, .. } = &ada.action else {
        panic!("expected a lock: {:?}", plan.entries);
    };
    assert!(*locks);
    assert_eq!(patch.email, None, "the address stays");
    assert!(matches!(plan.entries[1].action, EmployeeAction::Create(_)));
}

#[test]
fn an_employee_outside_the_selection_keeps_following_an_unshared_address() {
    let ada_user = synced("c1", &employee("1", "old@example.com"));
    let plan = configured(
        &only_munich(),
        &[employee("1", "new@example.com")],
        &[ada_user],
    );
    let EmployeeAction::Update { patch, .. } = &plan.entries[0].action else {
        panic!("expected an update: {:?}", plan.entries);
    };
    assert_eq!(patch.email, Some(Some("new@example.com".into())));
    assert_eq!(plan.entries[0].warning, None);
}

#[test]
fn company_language_and_note_are_written_only_when_mapped() {
    use crate::sync::employee_config::FieldSource;
    let mut ada = employee("1", "a@example.com");
    ada.other.insert("dynamic_7".into(), "Deutsch".into());
    let mut bob = employee("2", "b@example.com");
    bob.other.insert("dynamic_7".into(), "Klingonisch".into());
    // Unmapped (the default): a value set by hand stays.
    let mut user = synced("c1", &ada);
    user.company = Some("By hand".into());
    user.note = Some("By hand".into());
    user.language = Some("FR".into());
    let plan = EmployeePlan::build(std::slice::from_ref(&ada), &[user.clone()], now(), UTC);
    assert_eq!(plan.entries[0].action, EmployeeAction::Unchanged);

    let mut config = EmployeeConfig::default();
    config.mapping.company = FieldSource::Constant("Demo GmbH".into());
    config.mapping.language = FieldSource::Attribute {
        name: "dynamic_7".into(),
        values: [("Deutsch".to_string(), "de".to_string())].into(),
    };
    let plan = configured(&config, &[ada.clone(), bob.clone()], &[]);
    let EmployeeAction::Create(created) = &plan.entries[0].action else {
        panic!("expected create: {:?}", plan.entries);
    };
    assert_eq!(created.company.as_deref(), Some("Demo GmbH"));
    assert_eq!(created.language.as_deref(), Some("DE"));
    assert_eq!(created.note, None, "note stays unmapped");
    let EmployeeAction::Create(created) = &plan.entries[1].action else {
        panic!("expected create: {:?}", plan.entries);
    };
    assert_eq!(created.language, None, "an unknown language is left out");

    // An existing user: company and language change; an unknown language never clears.
    let plan = configured(&config, std::slice::from_ref(&ada), &[user.clone()]);
    let EmployeeAction::Update { changed, .. } = &plan.entries[0].action else {
        panic!("expected update: {:?}", plan.entries);
    };
    assert_eq!(changed, &vec!["company", "language"]);
    let mut bob_user = synced("c2", &bob);
    bob_user.language = Some("FR".into());
    bob_user.company = Some("Demo GmbH".into());
    let plan = configured(&config, &[bob], &[bob_user]);
    assert_eq!(plan.entries[0].action, EmployeeAction::Unchanged);
}

#[test]
fn an_employee_who_enters_the_selection_is_synced() {
    let mut ada = employee("1", "a@example.com");
    ada.office = Some("Munich".into());
    let plan = configured(&only_munich(), &[ada], &[]);
    assert!(matches!(plan.entries[0].action, EmployeeAction::Create(_)));
}

#[test]
fn an_unmapped_field_is_neither_written_nor_cleared() {
    let ada = employee("1", "a@example.com");
    let mut user = synced("c1", &ada);
    user.department = Some("Set by hand".into());
    let mut config = EmployeeConfig::default();
    config.mapping.department = crate::sync::employee_config::FieldSource::Unmapped;
    let plan = configured(&config, std::slice::from_ref(&ada), &[user]);
    assert_eq!(plan.entries[0].action, EmployeeAction::Unchanged);
    let EmployeeAction::Create(fields) = &configured(&config, &[ada], &[]).entries[0].action else {
        panic!("expected create");
    };
    assert_eq!(fields.department, None);
}
