//! The tags of each planned employee: none for a skipped one or one whose employment ended (or
//! who left the selection), the wanted ones for a new user, the difference for an existing one.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::employee_action::{EmployeeAction, PlannedEmployee};
use super::employee_identity::{lock_window, CustomerIndex};
use super::employee_mapping::MappedEmployee;
use super::employee_tags::{diff_tags, new_user_tags, TagOwnership};
use super::lock_window::today_in;
use super::model::CustomerPatch;

/// Plans the tags of `planned`: none for a skipped employee or one whose employment ended (or who
/// left the selection: locked users keep their tags as they are), the wanted ones for a new user,
/// the difference for an existing one. An unchanged user whose tags differ becomes an update with
/// an empty patch.
pub(super) fn with_tags(
    mut planned: PlannedEmployee,
    employee: &MappedEmployee,
    index: &CustomerIndex<'_>,
    ownership: &TagOwnership,
    now: DateTime<Utc>,
    today: NaiveDate,
    tz: Tz,
) -> PlannedEmployee {
    if tags_frozen(employee, now, today, tz) {
        return planned;
    }
    let held = match &planned.action {
        EmployeeAction::Skip { .. } => return planned,
        EmployeeAction::Create(_) => {
            planned.tags = new_user_tags(&employee.tags, ownership);
            return planned;
        }
        EmployeeAction::Update { customer_id, .. } => {
            index.by_id.get(customer_id.as_str()).copied()
        }
        // Unchanged is always the linked user (adopting one stamps the Personio id).
        EmployeeAction::Unchanged => index
            .by_external_id
            .get(employee.personio_id.as_str())
            .copied(),
    };
    let Some(customer) = held else {
        return planned;
    };
    planned.tags = diff_tags(&employee.tags, &customer.tags, ownership);
    if planned.action == EmployeeAction::Unchanged && !planned.tags.is_empty() {
        planned.action = EmployeeAction::Update {
            customer_id: customer.id.clone(),
            patch: CustomerPatch::default(),
            changed: Vec::new(),
            locks: false,
            unlocks: false,
        };
    }
    planned
}

/// Whether the operator leaves the employee's tags as they are: their employment has ended, they
/// left the selection, or their record cannot be mapped at all.
fn tags_frozen(employee: &MappedEmployee, now: DateTime<Utc>, today: NaiveDate, tz: Tz) -> bool {
    let desired = employee
        .result
        .as_ref()
        .ok()
        .or(employee.without_email.as_ref());
    desired.is_none_or(|desired| {
        lock_window(desired, employee.selected, today, tz)
            .set_inactive_at
            .is_some_and(|at| at <= now)
    })
}

/// The tags the rules give the employees whose tags this run manages (selected, employment not
/// ended): with `status.managedTags`, what the resource owns in the run
/// ([`super::employee_tags::TagOwnership::new`]). A leaver's tags are never made the resource's.
pub fn tags_in_run(mapped: &[MappedEmployee], now: DateTime<Utc>, tz: Tz) -> Vec<&str> {
    let today = today_in(now, tz);
    mapped
        .iter()
        .filter(|employee| !tags_frozen(employee, now, today, tz))
        .flat_map(|employee| employee.tags.names.iter().map(String::as_str))
        .collect()
}
