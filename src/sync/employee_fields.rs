//! The diff of one employee along the field table ([`super::field_table`]): which fields of a
//! reteach user differ from what Personio wants, and the fields of a new user (a diff against an
//! empty user). The PUT and POST bodies follow from it.

use chrono::{DateTime, Utc};

use super::employee_mapping::DesiredEmployee;
use super::field_table::{Cleaning, FieldValue};
pub use super::field_table::{Comparison, FieldMapping, ReteachField, Source};
use super::lock_window::{active_at_satisfied, inactive_at_satisfied, LockWindow, ReportedLock};
use super::model::{CustomerFields, CustomerPatch, ReteachCustomer};

/// The value `desired` (and its lock `window`) wants in `field`.
fn wanted(desired: &DesiredEmployee, window: &LockWindow, field: ReteachField) -> FieldValue {
    match field.row().cleaning {
        Cleaning::Login => {
            FieldValue::Text(Some(desired.email.clone()).filter(|email| !email.is_empty()))
        }
        Cleaning::Window => FieldValue::Instant(window.instant(field)),
        Cleaning::Trimmed | Cleaning::Gender | Cleaning::Language => desired.value(field),
    }
}

/// Whom the diff is against.
#[derive(Clone, Copy)]
pub enum Target<'a> {
    /// A user that does not exist yet: nothing has fired, so lock dates compare by value.
    New,
    /// A user linked to the employee by `externalId`.
    Linked(&'a ReteachCustomer),
    /// A user found by e-mail and not linked yet: the diff also stamps the Personio id.
    Adopted(&'a ReteachCustomer),
}

/// The changed fields of one employee: the patch and the reteach names of what changed.
pub struct FieldDiff {
    /// Only the changed fields.
    pub patch: CustomerPatch,
    /// reteach names of the changed fields, in table order (`externalId` first when stamped).
    pub changed: Vec<&'static str>,
}

/// Compares `desired` (with its lock `window`) with `target` field by field along `table`,
/// leaving the fields in `kept` alone (an e-mail address that would collide with another login).
pub fn diff_fields(
    table: &[FieldMapping],
    desired: &DesiredEmployee,
    window: &LockWindow,
    target: Target<'_>,
    kept: &[ReteachField],
    now: DateTime<Utc>,
) -> FieldDiff {
    let empty = ReteachCustomer::default();
    let customer = match target {
        Target::New => &empty,
        Target::Linked(customer) | Target::Adopted(customer) => customer,
    };
    let mut diff = FieldDiff {
        patch: CustomerPatch::default(),
        changed: Vec::new(),
    };
    if matches!(target, Target::Adopted(_)) {
        diff.changed.push("externalId");
        diff.patch.external_id = Some(Some(desired.external_id.clone()));
    }
    let reported = ReportedLock {
        set_active_at: customer.set_active_at,
        set_inactive_at: customer.set_inactive_at,
        status: customer.status.as_deref(),
    };
    for mapping in table {
        if kept.contains(&mapping.field) {
            continue;
        }
        let value = wanted(desired, window, mapping.field);
        if value.is_empty() && !mapping.may_be_cleared {
            continue;
        }
        let current = customer.value(mapping.field);
        let same = match (mapping.comparison, &target) {
            (Comparison::LockByMeaning, Target::New) | (Comparison::Exact, _) => value == current,
            (Comparison::IgnoringCase, _) => same_ignoring_case(&value, &current),
            (Comparison::LockByMeaning, _) => lock_satisfied(mapping.field, window, &reported, now),
        };
        if !same {
            diff.changed.push(mapping.field.name());
            diff.patch.put(mapping.field, value);
        }
    }
    diff
}

fn same_ignoring_case(wanted: &FieldValue, held: &FieldValue) -> bool {
    match (wanted, held) {
        (FieldValue::Text(Some(wanted)), FieldValue::Text(Some(held))) => {
            held.trim().eq_ignore_ascii_case(wanted)
        }
        (wanted, held) => wanted == held,
    }
}

fn lock_satisfied(
    field: ReteachField,
    window: &LockWindow,
    reported: &ReportedLock<'_>,
    now: DateTime<Utc>,
) -> bool {
    match field {
        ReteachField::SetActiveAt => active_at_satisfied(window, reported, now),
        ReteachField::SetInactiveAt => inactive_at_satisfied(window, reported, now),
        _ => true,
    }
}

/// The body of `POST /customer` for a new user: the diff against an empty user.
pub fn create_fields(
    table: &[FieldMapping],
    desired: &DesiredEmployee,
    window: &LockWindow,
    now: DateTime<Utc>,
) -> CustomerFields {
    let patch = diff_fields(table, desired, window, Target::New, &[], now).patch;
    let mut fields = CustomerFields {
        external_id: desired.external_id.clone(),
        email: desired.email.clone(),
        ..CustomerFields::default()
    };
    for row in table {
        if let Some(value) = patch.value(row.field) {
            fields.put(row.field, value);
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::field_table::FIELDS;
    use crate::sync::model::Gender;
    use chrono::NaiveDate;

    fn now() -> DateTime<Utc> {
        "2026-11-26T10:00:00Z".parse().unwrap()
    }

    fn desired() -> DesiredEmployee {
        DesiredEmployee {
            external_id: "7".into(),
            email: "ada@example.com".into(),
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            department: Some("R&D".into()),
            gender: Some(Gender::Female),
            hire_date: NaiveDate::from_ymd_opt(2020, 1, 1),
            ..DesiredEmployee::default()
        }
    }

    fn window(desired: &DesiredEmployee) -> LockWindow {
        LockWindow::new(desired.hire_date, desired.end_of_employment, chrono_tz::UTC)
    }

    /// The default table's diff of `desired` against `target` now, inside its lock window.
    fn diff_now(desired: &DesiredEmployee, target: Target<'_>, kept: &[ReteachField]) -> FieldDiff {
        diff_fields(FIELDS, desired, &window(desired), target, kept, now())
    }

    #[test]
    fn a_new_user_gets_every_field_personio_has() {
        let desired = desired();
        let fields = create_fields(FIELDS, &desired, &window(&desired), now());
        assert_eq!(fields.first_name.as_deref(), Some("Ada"));
        assert_eq!(fields.department.as_deref(), Some("R&D"));
        assert_eq!(fields.position, None);
        assert_eq!(fields.gender, Some(Gender::Female));
        assert_eq!(
            fields.set_active_at,
            window(&desired).set_active_at,
            "a past start date is sent to a new user"
        );
        assert!(fields.set_active_at.is_some());
    }

    #[test]
    fn a_kept_field_and_a_case_only_email_difference_are_no_change() {
        let desired = desired();
        let customer = ReteachCustomer {
            id: "c1".into(),
            external_id: Some("7".into()),
            email: Some(" ADA@example.com".into()),
            first_name: Some("Ada".into()),
            last_name: Some("Byron".into()),
            department: Some("R&D".into()),
            gender: Some(Gender::Female),
            set_active_at: window(&desired).set_active_at,
            ..ReteachCustomer::default()
        };
        let diff = diff_now(&desired, Target::Linked(&customer), &[]);
        assert_eq!(diff.changed, vec!["lastName"]);
        let kept = diff_now(
            &desired,
            Target::Linked(&customer),
            &[ReteachField::LastName],
        );
        assert!(kept.changed.is_empty());
    }

    #[test]
    fn an_email_missing_in_personio_is_never_cleared() {
        let mut desired = desired();
        desired.email = String::new();
        let customer = ReteachCustomer {
            email: Some("ada@example.com".into()),
            ..ReteachCustomer::default()
        };
        let diff = diff_now(&desired, Target::Linked(&customer), &[]);
        assert!(!diff.changed.contains(&"email"), "{:?}", diff.changed);
    }

    #[test]
    fn adopting_a_user_stamps_the_personio_id_first() {
        let desired = desired();
        let customer = ReteachCustomer::default();
        let diff = diff_now(&desired, Target::Adopted(&customer), &[]);
        assert_eq!(diff.changed.first(), Some(&"externalId"));
        assert_eq!(diff.patch.external_id, Some(Some("7".into())));
    }
}
