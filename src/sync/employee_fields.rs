//! The diff of one employee along the field table ([`super::field_table`]): which fields of a
//! reteach user differ from what Personio wants, and the fields of a new user (a diff against an
//! empty user). The PUT and POST bodies follow from it.

use chrono::{DateTime, Utc};

use super::employee_mapping::DesiredEmployee;
use super::field_table::{Cleaning, FieldValue};
pub use super::field_table::{Comparison, FieldMapping, ReteachField, Source};
use super::lock_window::{lock_date_satisfied, LockWindow, ReportedLock};
use super::model::{CustomerFields, CustomerPatch, ReteachCustomer};

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

/// What one employee's reteach user should hold: the `desired` values along the field `table`,
/// with the lock `window`, as of `now`. Every diff of that employee starts from it.
#[derive(Clone, Copy)]
pub struct Wanted<'a> {
    /// The field table: which fields are written and how they compare.
    pub table: &'a [FieldMapping],
    /// The employee's values, as the mapping renders them.
    pub desired: &'a DesiredEmployee,
    /// When the employee's user is active.
    pub window: &'a LockWindow,
    /// The time the plan is made at.
    pub now: DateTime<Utc>,
}

impl Wanted<'_> {
    /// The value wanted in `field`.
    fn value(&self, field: ReteachField) -> FieldValue {
        match field.row().cleaning {
            Cleaning::Login => {
                FieldValue::Text(Some(self.desired.email.clone()).filter(|email| !email.is_empty()))
            }
            Cleaning::Window => FieldValue::Instant(self.window.instant(field)),
            Cleaning::Trimmed | Cleaning::Gender | Cleaning::Language => self.desired.value(field),
        }
    }

    /// Compares what is wanted with `target` field by field along the table, leaving the fields
    /// in `kept` alone (an e-mail address that would collide with another login).
    pub fn diff_fields(&self, target: Target<'_>, kept: &[ReteachField]) -> FieldDiff {
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
            diff.patch.external_id = Some(Some(self.desired.external_id.clone()));
        }
        let reported = ReportedLock::of(customer);
        for mapping in self.table {
            if kept.contains(&mapping.field) {
                continue;
            }
            let value = self.value(mapping.field);
            if value.is_empty() && !mapping.may_be_cleared {
                continue;
            }
            let current = customer.value(mapping.field);
            let same = match (mapping.comparison, &target) {
                (Comparison::LockByMeaning, Target::New) | (Comparison::Exact, _) => {
                    value == current
                }
                (Comparison::IgnoringCase, _) => same_ignoring_case(&value, &current),
                (Comparison::LockByMeaning, _) => {
                    lock_date_satisfied(mapping.field, self.window, &reported, self.now)
                }
            };
            if !same {
                diff.changed.push(mapping.field.name());
                diff.patch.put(mapping.field, value);
            }
        }
        diff
    }

    /// The body of `POST /customer` for a new user: the diff against an empty user.
    pub fn create_fields(&self) -> CustomerFields {
        let patch = self.diff_fields(Target::New, &[]).patch;
        let mut fields = CustomerFields {
            external_id: self.desired.external_id.clone(),
            email: self.desired.email.clone(),
            ..CustomerFields::default()
        };
        for row in self.table {
            if let Some(value) = patch.value(row.field) {
                fields.put(row.field, value);
            }
        }
        fields
    }
}

fn same_ignoring_case(wanted: &FieldValue, held: &FieldValue) -> bool {
    match (wanted, held) {
        (FieldValue::Text(Some(wanted)), FieldValue::Text(Some(held))) => {
            held.trim().eq_ignore_ascii_case(wanted)
        }
        (wanted, held) => wanted == held,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at;
    use crate::sync::field_table::FIELDS;
    use crate::sync::model::Gender;
    use chrono::NaiveDate;

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
        wanted_now(desired, &window(desired)).diff_fields(target, kept)
    }

    /// What the default table wants of `desired` now, inside `window`.
    fn wanted_now<'a>(desired: &'a DesiredEmployee, window: &'a LockWindow) -> Wanted<'a> {
        Wanted {
            table: FIELDS,
            desired,
            window,
            now: at("2026-11-26T10:00:00Z"),
        }
    }

    #[test]
    fn a_new_user_gets_every_field_personio_has() {
        let desired = desired();
        let fields = wanted_now(&desired, &window(&desired)).create_fields();
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
