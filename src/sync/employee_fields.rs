//! The employee field mapping, declared once as data: which Personio attribute feeds which reteach
//! field, how the two are compared, and whether a value removed in Personio is removed in reteach.
//! The diff of an existing user and the fields of a new one (a diff against an empty user) both
//! walk this table; the PUT and POST bodies follow from it. A resource could later supply its own
//! table (issue 17); today every resource uses [`EMPLOYEE_FIELDS`].

use chrono::{DateTime, Utc};

use super::employee_mapping::DesiredEmployee;
use super::lock_window::{active_at_satisfied, inactive_at_satisfied, LockWindow, ReportedLock};
use super::model::{CustomerFields, CustomerPatch, Gender, ReteachCustomer};

/// A reteach user field the operator owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReteachField {
    /// `email`, the login.
    Email,
    /// `firstName`.
    FirstName,
    /// `lastName`.
    LastName,
    /// `position`.
    Position,
    /// `department`.
    Department,
    /// `location`.
    Location,
    /// `gender`.
    Gender,
    /// `company` (only when mapped).
    Company,
    /// `language` (only when mapped).
    Language,
    /// `note` (only when mapped).
    Note,
    /// `setActiveAt`: when reteach unlocks the user.
    SetActiveAt,
    /// `setInactiveAt`: when reteach locks the user.
    SetInactiveAt,
}

impl ReteachField {
    /// reteach's name of the field (dry-run reports name fields, never values).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::FirstName => "firstName",
            Self::LastName => "lastName",
            Self::Position => "position",
            Self::Department => "department",
            Self::Location => "location",
            Self::Gender => "gender",
            Self::Company => "company",
            Self::Language => "language",
            Self::Note => "note",
            Self::SetActiveAt => "setActiveAt",
            Self::SetInactiveAt => "setInactiveAt",
        }
    }
}

/// Where a reteach field's value comes from in Personio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// One Personio attribute (by its API name), cleaned (trimmed, shortened, mapped).
    Attribute(&'static str),
    /// Only what `spec.mapping` configures; no default source.
    Configured,
    /// The lock window, from `hire_date` and the end of employment (`termination_date`, else
    /// `contract_end_date`) in the company time zone.
    LockWindow,
}

/// How the wanted value is compared with the one reteach holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// Equal values, or a change.
    Exact,
    /// Equal ignoring case and surrounding space (reteach compares logins that way).
    IgnoringCase,
    /// By what the date does, not its value: reteach may clear or rewrite a date once it fired.
    LockByMeaning,
}

/// One row of the mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldMapping {
    /// The reteach field written.
    pub field: ReteachField,
    /// Where its value comes from.
    pub source: Source,
    /// How a difference is detected.
    pub comparison: Comparison,
    /// Whether a value missing in Personio clears the field in reteach (the operator owns the
    /// field), or leaves it as it is.
    pub may_be_cleared: bool,
}

const fn row(
    field: ReteachField,
    source: Source,
    comparison: Comparison,
    may_be_cleared: bool,
) -> FieldMapping {
    FieldMapping {
        field,
        source,
        comparison,
        may_be_cleared,
    }
}

/// The mapping every resource uses: the nine fields of the product brief, in reteach's order.
#[rustfmt::skip]
pub const EMPLOYEE_FIELDS: [FieldMapping; 9] = {
    use Comparison::{Exact, IgnoringCase, LockByMeaning};
    use ReteachField as F;
    use Source::{Attribute, LockWindow};
    [
        row(F::Email, Attribute("email"), IgnoringCase, false),
        row(F::FirstName, Attribute("first_name"), Exact, true),
        row(F::LastName, Attribute("last_name"), Exact, true),
        row(F::Position, Attribute("position"), Exact, true),
        row(F::Department, Attribute("department"), Exact, true),
        row(F::Location, Attribute("office"), Exact, true),
        row(F::Gender, Attribute("gender"), Exact, true),
        row(F::SetActiveAt, LockWindow, LockByMeaning, true),
        row(F::SetInactiveAt, LockWindow, LockByMeaning, true),
    ]
};

/// Rows of the fields a resource may map in addition (`spec.mapping.company`, `.language`,
/// `.note`): unmapped by default, so they are neither compared nor written unless mapped. A
/// missing `language` is never cleared (every reteach user has one).
#[rustfmt::skip]
pub const OPTIONAL_ROWS: [FieldMapping; 3] = {
    use Comparison::Exact;
    use ReteachField as F;
    use Source::Configured;
    [
        row(F::Company, Configured, Exact, true),
        row(F::Language, Configured, Exact, false),
        row(F::Note, Configured, Exact, true),
    ]
};

/// A field's value, wanted or held. Deliberately without `Debug`: it may be a name.
#[derive(Clone, PartialEq, Eq)]
enum FieldValue {
    Text(Option<String>),
    Gender(Option<Gender>),
    Instant(Option<DateTime<Utc>>),
}

impl FieldValue {
    fn is_empty(&self) -> bool {
        match self {
            Self::Text(value) => value.is_none(),
            Self::Gender(value) => value.is_none(),
            Self::Instant(value) => value.is_none(),
        }
    }
}

/// The value `desired` (and its lock `window`) wants in `field`.
fn wanted(desired: &DesiredEmployee, window: &LockWindow, field: ReteachField) -> FieldValue {
    let text = |value: &Option<String>| FieldValue::Text(value.clone());
    match field {
        ReteachField::Email => {
            FieldValue::Text(Some(desired.email.clone()).filter(|email| !email.is_empty()))
        }
        ReteachField::FirstName => text(&desired.first_name),
        ReteachField::LastName => text(&desired.last_name),
        ReteachField::Position => text(&desired.position),
        ReteachField::Department => text(&desired.department),
        ReteachField::Location => text(&desired.location),
        ReteachField::Gender => FieldValue::Gender(desired.gender),
        ReteachField::Company => text(&desired.company),
        ReteachField::Language => text(&desired.language),
        ReteachField::Note => text(&desired.note),
        ReteachField::SetActiveAt => FieldValue::Instant(window.set_active_at),
        ReteachField::SetInactiveAt => FieldValue::Instant(window.set_inactive_at),
    }
}

/// The value `customer` holds in `field`.
fn held(customer: &ReteachCustomer, field: ReteachField) -> FieldValue {
    let text = |value: &Option<String>| FieldValue::Text(value.clone());
    match field {
        ReteachField::Email => text(&customer.email),
        ReteachField::FirstName => text(&customer.first_name),
        ReteachField::LastName => text(&customer.last_name),
        ReteachField::Position => text(&customer.position),
        ReteachField::Department => text(&customer.department),
        ReteachField::Location => text(&customer.location),
        ReteachField::Gender => FieldValue::Gender(customer.gender),
        ReteachField::Company => text(&customer.company),
        ReteachField::Language => text(&customer.language),
        ReteachField::Note => text(&customer.note),
        ReteachField::SetActiveAt => FieldValue::Instant(customer.set_active_at),
        ReteachField::SetInactiveAt => FieldValue::Instant(customer.set_inactive_at),
    }
}

/// Puts `value` into `field` of `patch` (`None` in a patch clears the field).
fn set(patch: &mut CustomerPatch, field: ReteachField, value: FieldValue) {
    match (field, value) {
        (ReteachField::Email, FieldValue::Text(v)) => patch.email = Some(v),
        (ReteachField::FirstName, FieldValue::Text(v)) => patch.first_name = Some(v),
        (ReteachField::LastName, FieldValue::Text(v)) => patch.last_name = Some(v),
        (ReteachField::Position, FieldValue::Text(v)) => patch.position = Some(v),
        (ReteachField::Department, FieldValue::Text(v)) => patch.department = Some(v),
        (ReteachField::Location, FieldValue::Text(v)) => patch.location = Some(v),
        (ReteachField::Gender, FieldValue::Gender(v)) => patch.gender = Some(v),
        (ReteachField::Company, FieldValue::Text(v)) => patch.company = Some(v),
        (ReteachField::Language, FieldValue::Text(v)) => patch.language = Some(v),
        (ReteachField::Note, FieldValue::Text(v)) => patch.note = Some(v),
        (ReteachField::SetActiveAt, FieldValue::Instant(v)) => patch.set_active_at = Some(v),
        (ReteachField::SetInactiveAt, FieldValue::Instant(v)) => patch.set_inactive_at = Some(v),
        // `wanted` gives every field a value of its own type.
        _ => {}
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
        let current = held(customer, mapping.field);
        let same = match (mapping.comparison, &target) {
            (Comparison::LockByMeaning, Target::New) | (Comparison::Exact, _) => value == current,
            (Comparison::IgnoringCase, _) => same_ignoring_case(&value, &current),
            (Comparison::LockByMeaning, _) => lock_satisfied(mapping.field, window, &reported, now),
        };
        if !same {
            diff.changed.push(mapping.field.name());
            set(&mut diff.patch, mapping.field, value);
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
    CustomerFields {
        external_id: desired.external_id.clone(),
        email: desired.email.clone(),
        first_name: patch.first_name.flatten(),
        last_name: patch.last_name.flatten(),
        position: patch.position.flatten(),
        department: patch.department.flatten(),
        location: patch.location.flatten(),
        gender: patch.gender.flatten(),
        company: patch.company.flatten(),
        language: patch.language.flatten(),
        note: patch.note.flatten(),
        set_active_at: patch.set_active_at.flatten(),
        set_inactive_at: patch.set_inactive_at.flatten(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            position: None,
            department: Some("R&D".into()),
            location: None,
            gender: Some(Gender::Female),
            company: None,
            language: None,
            note: None,
            hire_date: NaiveDate::from_ymd_opt(2020, 1, 1),
            end_of_employment: None,
        }
    }

    fn window(desired: &DesiredEmployee) -> LockWindow {
        LockWindow::new(desired.hire_date, desired.end_of_employment, chrono_tz::UTC)
    }

    #[test]
    fn the_table_covers_every_owned_field_once() {
        let mut fields: Vec<&str> = EMPLOYEE_FIELDS.iter().map(|m| m.field.name()).collect();
        fields.sort_unstable();
        fields.dedup();
        assert_eq!(fields.len(), EMPLOYEE_FIELDS.len());
        let office = EMPLOYEE_FIELDS
            .iter()
            .find(|m| m.field == ReteachField::Location)
            .unwrap();
        assert_eq!(office.source, Source::Attribute("office"));
    }

    #[test]
    fn a_new_user_gets_every_field_personio_has() {
        let desired = desired();
        let fields = create_fields(&EMPLOYEE_FIELDS, &desired, &window(&desired), now());
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
        let diff = diff_fields(
            &EMPLOYEE_FIELDS,
            &desired,
            &window(&desired),
            Target::Linked(&customer),
            &[],
            now(),
        );
        assert_eq!(diff.changed, vec!["lastName"]);
        let kept = diff_fields(
            &EMPLOYEE_FIELDS,
            &desired,
            &window(&desired),
            Target::Linked(&customer),
            &[ReteachField::LastName],
            now(),
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
        let diff = diff_fields(
            &EMPLOYEE_FIELDS,
            &desired,
            &window(&desired),
            Target::Linked(&customer),
            &[],
            now(),
        );
        assert!(!diff.changed.contains(&"email"), "{:?}", diff.changed);
    }

    #[test]
    fn adopting_a_user_stamps_the_personio_id_first() {
        let desired = desired();
        let customer = ReteachCustomer::default();
        let diff = diff_fields(
            &EMPLOYEE_FIELDS,
            &desired,
            &window(&desired),
            Target::Adopted(&customer),
            &[],
            now(),
        );
        assert_eq!(diff.changed.first(), Some(&"externalId"));
        assert_eq!(diff.patch.external_id, Some(Some("7".into())));
    }
}
