//! Who is whom: which reteach user belongs to which employee (by Personio id, then by e-mail
//! address), who may use a shared address, and the action that brings one employee's user in
//! line. Never deletes: a reteach user holds learning history and certificates.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::employee_action::{EmployeeAction, PlannedEmployee};
use super::employee_fields::{FieldMapping, ReteachField, Target, Wanted};
use super::employee_mapping::{DesiredEmployee, MappedEmployee, MappingError};
use super::employee_tags::TagChanges;
use super::lock_window::{is_locked_at, LockWindow, ReportedLock};
use super::model::ReteachCustomer;

/// Skip reason when two employees (or an employee and a reteach user linked to another employee)
/// use the same e-mail address; reteach logins must be unique.
pub const REASON_SHARED_EMAIL: &str = "e-mail address shared with another employee";
/// Skip reason when the e-mail address belongs to a reteach user that is not linked to any employee
/// while this employee is already linked to a different reteach user.
pub const REASON_EMAIL_TAKEN: &str = "e-mail address used by another reteach user";
/// Warning when a linked employee has no e-mail address in Personio any more.
pub const WARNING_NO_EMAIL: &str = "no e-mail address; e-mail not changed, other fields synced";
/// Warning when a linked employee's e-mail address in Personio is invalid.
pub const WARNING_INVALID_EMAIL: &str =
    "invalid e-mail address; e-mail not changed, other fields synced";
/// Warning when a linked employee's new address is shared; the other fields are still synced.
pub const WARNING_SHARED_EMAIL: &str =
    "e-mail address shared with another employee; e-mail not changed, other fields synced";
/// Warning when a linked employee's new address belongs to another reteach user.
pub const WARNING_EMAIL_TAKEN: &str =
    "e-mail address used by another reteach user; e-mail not changed, other fields synced";

/// reteach users indexed for O(1) identity lookups.
pub(super) struct CustomerIndex<'a> {
    pub(super) by_id: HashMap<&'a str, &'a ReteachCustomer>,
    pub(super) by_external_id: HashMap<&'a str, &'a ReteachCustomer>,
    pub(super) by_email: HashMap<String, &'a ReteachCustomer>,
}

impl<'a> CustomerIndex<'a> {
    pub(super) fn new(customers: &'a [ReteachCustomer]) -> Self {
        let mut by_id = HashMap::with_capacity(customers.len());
        let mut by_external_id = HashMap::with_capacity(customers.len());
        let mut by_email = HashMap::with_capacity(customers.len());
        for customer in customers {
            by_id.entry(customer.id.as_str()).or_insert(customer);
            if let Some(external_id) = customer.external_id.as_deref().filter(|id| !id.is_empty()) {
                by_external_id.entry(external_id).or_insert(customer);
            }
            if let Some(email) = customer.email.as_deref() {
                by_email
                    .entry(email.trim().to_lowercase())
                    .or_insert(customer);
            }
        }
        Self {
            by_id,
            by_external_id,
            by_email,
        }
    }
}

/// An employee whose mapping failed. When only the e-mail address is missing or invalid and the
/// employee is already linked to a reteach user, everything but the address is still synced (a
/// leaver must still be locked); otherwise the employee is skipped.
pub(super) fn plan_invalid_email(
    table: &[FieldMapping],
    employee: &MappedEmployee,
    error: MappingError,
    index: &CustomerIndex<'_>,
    today: chrono::NaiveDate,
    tz: Tz,
    now: DateTime<Utc>,
) -> PlannedEmployee {
    let skip = PlannedEmployee {
        personio_id: employee.personio_id.clone(),
        action: EmployeeAction::Skip {
            reason: error.reason(),
        },
        locked_after: false,
        warning: None,
        tags: TagChanges::default(),
    };
    let warning = match error {
        MappingError::NoEmail => WARNING_NO_EMAIL,
        MappingError::InvalidEmail => WARNING_INVALID_EMAIL,
        MappingError::EndBeforeHire => return skip,
    };
    let Some(customer) = index.by_external_id.get(employee.personio_id.as_str()) else {
        return skip;
    };
    let Some(desired) = &employee.without_email else {
        return skip;
    };
    let window = lock_window(desired, employee.selected, today, tz);
    PlannedEmployee {
        personio_id: employee.personio_id.clone(),
        action: diff(
            Wanted {
                table,
                desired,
                window: &window,
                now,
            },
            Target::Linked(customer),
            KEEP_EMAIL,
        ),
        locked_after: window.is_locked(today),
        warning: Some(warning),
        tags: TagChanges::default(),
    }
}

/// The lock window of `desired`; for an employee outside the selection, the window of a
/// contract that ended yesterday (or earlier, when it did), so the user is locked at once.
pub(super) fn lock_window(
    desired: &DesiredEmployee,
    selected: bool,
    today: NaiveDate,
    tz: Tz,
) -> LockWindow {
    if selected {
        return LockWindow::new(desired.hire_date, desired.end_of_employment, tz);
    }
    let yesterday = today.pred_opt().unwrap_or(today);
    let end = desired
        .end_of_employment
        .map_or(yesterday, |end| end.min(yesterday));
    let hire = desired.hire_date.map(|hire| hire.min(end));
    LockWindow::new(hire, Some(end), tz)
}

/// Decides, per e-mail address shared by several employees, which one may use it: the one whose
/// reteach user already has it, else the first selected employee in Personio's order, else the
/// first employee outside the selection.
///
/// An employee outside the selection (whose user is only locked) never takes an address away from
/// a selected one, except the address their own reteach user already has: one address is one
/// reteach user, and moving that user (with its learning history and certificates) to another
/// employee, or unlocking it for them, is never done automatically. The selected employee is then
/// skipped with [`REASON_SHARED_EMAIL`] while the other one's user is locked.
pub(super) fn email_holders<'a>(
    mapped: &'a [MappedEmployee],
    index: &CustomerIndex<'_>,
) -> HashMap<String, &'a str> {
    let mut holders: HashMap<String, &'a str> = HashMap::with_capacity(mapped.len());
    let valid = || {
        mapped
            .iter()
            .filter_map(|m| m.result.as_ref().ok().map(|desired| (m.selected, desired)))
    };
    for (selected, desired) in valid() {
        let email = desired.email.to_lowercase();
        let owns_in_reteach = index
            .by_email
            .get(&email)
            .and_then(|owner| owner.external_id.as_deref())
            == Some(desired.external_id.as_str());
        if owns_in_reteach {
            holders.insert(email, &desired.external_id);
        } else if selected {
            holders.entry(email).or_insert(&desired.external_id);
        }
    }
    for (_, desired) in valid().filter(|(selected, _)| !selected) {
        holders
            .entry(desired.email.to_lowercase())
            .or_insert(&desired.external_id);
    }
    holders
}

/// The action for one valid employee, and a warning when the e-mail address could not be applied.
pub(super) fn plan_one(
    wanted: Wanted<'_>,
    index: &CustomerIndex<'_>,
    holds_email: bool,
) -> (EmployeeAction, Option<&'static str>) {
    let desired = wanted.desired;
    let email_owner = index.by_email.get(&desired.email.to_lowercase()).copied();
    let linked = index
        .by_external_id
        .get(desired.external_id.as_str())
        .copied();
    let skip = |reason| (EmployeeAction::Skip { reason }, None);
    let Some(customer) = linked else {
        return match email_owner {
            _ if !holds_email => skip(REASON_SHARED_EMAIL),
            Some(owner) if linked_elsewhere(owner, &desired.external_id) => {
                skip(REASON_SHARED_EMAIL)
            }
            // Found by e-mail and not linked yet: adopt the user and stamp the Personio id.
            Some(owner) => (diff(wanted, Target::Adopted(owner), &[]), None),
            None => (EmployeeAction::Create(wanted.create_fields()), None),
        };
    };
    // Already linked: the other fields (above all the lock dates) are still synced when the new
    // address cannot be used, because it would collide with another login.
    let conflict = if !holds_email {
        Some(WARNING_SHARED_EMAIL)
    } else {
        email_owner
            .filter(|owner| owner.id != customer.id)
            .map(|owner| {
                if linked_elsewhere(owner, &desired.external_id) {
                    WARNING_SHARED_EMAIL
                } else {
                    WARNING_EMAIL_TAKEN
                }
            })
    };
    let kept = if conflict.is_some() { KEEP_EMAIL } else { &[] };
    (diff(wanted, Target::Linked(customer), kept), conflict)
}

fn linked_elsewhere(customer: &ReteachCustomer, external_id: &str) -> bool {
    customer
        .external_id
        .as_deref()
        .is_some_and(|other| !other.is_empty() && other != external_id)
}

/// The fields left alone when the e-mail address cannot be applied.
const KEEP_EMAIL: &[ReteachField] = &[ReteachField::Email];

/// The update (or none) that brings `target` in line with what is `wanted`, leaving the fields
/// in `kept` alone.
fn diff(wanted: Wanted<'_>, target: Target<'_>, kept: &[ReteachField]) -> EmployeeAction {
    let customer = match target {
        Target::Linked(customer) | Target::Adopted(customer) => customer,
        Target::New => return EmployeeAction::Create(wanted.create_fields()),
    };
    let changes = wanted.diff_fields(target, kept);
    if changes.changed.is_empty() {
        return EmployeeAction::Unchanged;
    }
    let Wanted { window, now, .. } = wanted;
    let was_locked = ReportedLock::of(customer).is_locked(now);
    let will_be_locked = is_locked_at(window.set_active_at, window.set_inactive_at, now);
    EmployeeAction::Update {
        customer_id: customer.id.clone(),
        patch: changes.patch,
        changed: changes.changed,
        locks: !was_locked && will_be_locked,
        unlocks: was_locked && !will_be_locked,
    }
}
