//! Diffs Personio employees against reteach users and decides, per employee, what to write.
//! Never deletes: a reteach user holds learning history and certificates. Who is whom lives in
//! [`super::employee_identity`], the tags in [`super::employee_plan_tags`], the decision types in
//! [`super::employee_action`].

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::employee_config::EmployeeConfig;
use super::employee_fields::{FieldMapping, Wanted};
use super::employee_identity::{
    email_holders, lock_window, plan_invalid_email, plan_one, CustomerIndex,
};
use super::employee_mapping::{map_record, MappedEmployee};
use super::employee_plan_tags::with_tags;
use super::employee_tags::{TagChanges, TagOwnership};
use super::lock_window::today_in;
use super::model::{PersonioEmployee, ReteachCustomer};

pub use super::employee_action::{EmployeeAction, EmployeeCounts, PlannedEmployee};
pub use super::employee_identity::{
    REASON_EMAIL_TAKEN, REASON_SHARED_EMAIL, WARNING_EMAIL_TAKEN, WARNING_INVALID_EMAIL,
    WARNING_NO_EMAIL, WARNING_SHARED_EMAIL,
};
pub use super::employee_plan_tags::tags_in_run;

/// One decision per input employee, in input order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmployeePlan {
    /// Exactly one entry per employee given to [`EmployeePlan::build`].
    pub entries: Vec<PlannedEmployee>,
}

impl EmployeePlan {
    /// Plans the writes that bring `customers` in line with `employees` at instant `now`, with the
    /// company day boundary of `tz`. `customers` may be all reteach users or only those that could
    /// match (incremental runs).
    pub fn build(
        employees: &[PersonioEmployee],
        customers: &[ReteachCustomer],
        now: DateTime<Utc>,
        tz: Tz,
    ) -> Self {
        let config = EmployeeConfig::default();
        let mapped: Vec<MappedEmployee> = employees
            .iter()
            .map(|employee| map_record(employee, &config))
            .collect();
        Self::build_mapped(&mapped, customers, now, tz)
    }

    /// [`EmployeePlan::build`] for employees the caller has mapped already (each record is
    /// mapped once per run).
    pub fn build_mapped(
        mapped: &[MappedEmployee],
        customers: &[ReteachCustomer],
        now: DateTime<Utc>,
        tz: Tz,
    ) -> Self {
        Self::build_with_table(
            &EmployeeConfig::default().table(),
            mapped,
            customers,
            &TagOwnership::default(),
            now,
            tz,
        )
    }

    /// [`EmployeePlan::build_mapped`] along the resource's field `table`. An employee the
    /// selector does not select ([`MappedEmployee::selected`]) is left out when no reteach user
    /// is linked to them, and otherwise treated like one whose contract ended yesterday: locked,
    /// never deleted. Tags ([`MappedEmployee::tags`]) are planned within `ownership`.
    pub fn build_with_table(
        table: &[FieldMapping],
        mapped: &[MappedEmployee],
        customers: &[ReteachCustomer],
        ownership: &TagOwnership,
        now: DateTime<Utc>,
        tz: Tz,
    ) -> Self {
        let index = CustomerIndex::new(customers);
        let today = today_in(now, tz);
        let email_holders = email_holders(mapped, &index);
        let entries = mapped
            .iter()
            .filter(|employee| {
                employee.selected
                    || index
                        .by_external_id
                        .contains_key(employee.personio_id.as_str())
            })
            .map(|employee| {
                let desired = match &employee.result {
                    Ok(desired) => desired,
                    Err(error) => {
                        let planned =
                            plan_invalid_email(table, employee, *error, &index, today, tz, now);
                        return with_tags(planned, employee, &index, ownership, now, today, tz);
                    }
                };
                let holds_email = email_holders
                    .get(&desired.email.to_lowercase())
                    .is_some_and(|holder| *holder == desired.external_id.as_str());
                let window = lock_window(desired, employee.selected, today, tz);
                let wanted = Wanted {
                    table,
                    desired,
                    window: &window,
                    now,
                };
                let (action, warning) = plan_one(wanted, &index, holds_email);
                let planned = PlannedEmployee {
                    personio_id: employee.personio_id.clone(),
                    locked_after: window.is_locked(today)
                        && !matches!(action, EmployeeAction::Skip { .. }),
                    action,
                    warning,
                    tags: TagChanges::default(),
                };
                with_tags(planned, employee, &index, ownership, now, today, tz)
            })
            .collect();
        Self { entries }
    }

    /// Counters over the whole plan.
    pub fn counts(&self) -> EmployeeCounts {
        let mut counts = EmployeeCounts::default();
        for entry in &self.entries {
            counts.add(entry);
        }
        counts
    }
}

#[cfg(test)]
#[path = "employee_plan_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "employee_plan_selection_tests.rs"]
mod selection_tests;
