//! Diffs Personio employees against reteach users and decides, per employee, what to write.
//! Never deletes: a reteach user holds learning history and certificates.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::employee_config::EmployeeConfig;
use super::employee_fields::{create_fields, diff_fields, FieldMapping, ReteachField, Target};
use super::employee_mapping::{map_record, DesiredEmployee, MappedEmployee, MappingError};
use super::employee_tags::{diff_tags, new_user_tags, TagChanges, TagOwnership};
use super::lock_window::{is_locked_at, today_in, LockWindow, ReportedLock};
use super::model::{CustomerFields, CustomerPatch, PersonioEmployee, ReteachCustomer};

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

/// What to do for one employee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmployeeAction {
    /// No reteach user matches: create one.
    Create(CustomerFields),
    /// A reteach user matches but differs: send only the changed fields.
    Update {
        /// reteach id of the user.
        customer_id: String,
        /// The changed fields only.
        patch: CustomerPatch,
        /// reteach names of the changed fields (for dry-run reports; never values).
        changed: Vec<&'static str>,
        /// The update moves the user from unlocked to locked (at the planning instant).
        locks: bool,
        /// The update moves the user from locked to unlocked.
        unlocks: bool,
    },
    /// The reteach user already matches.
    Unchanged,
    /// Not transferred, with a fixed PII-free reason.
    Skip {
        /// Why, e.g. `no e-mail address`.
        reason: &'static str,
    },
}

/// The decision for one employee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEmployee {
    /// Personio employee id.
    pub personio_id: String,
    /// What to do.
    pub action: EmployeeAction,
    /// Whether the employee is locked after the action (false for skips).
    pub locked_after: bool,
    /// A PII-free note for status when part of the change could not be applied (the e-mail
    /// address collides with another login); the rest of the action still happens.
    pub warning: Option<&'static str>,
    /// The tag requests for the user (after the create or update). A user whose only change is
    /// its tags is an [`EmployeeAction::Update`] with an empty patch. Users whose employment
    /// ended, or who left the selection, keep their tags: none are planned for them.
    pub tags: TagChanges,
}

/// What a run does to employees, counted: planned (a plan, a dry run) or done (a run). The
/// counters of `status.lastRun` ([`crate::api::EmployeeRunSummary`] flattens them).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmployeeCounts {
    /// reteach users created.
    pub created: i64,
    /// reteach users updated (any field).
    pub updated: i64,
    /// Users whose update locks them (contract ended or not yet begun), and new users created
    /// locked.
    pub locked: i64,
    /// Users whose update unlocks them (e.g. rehired).
    pub unlocked: i64,
    /// Employees already up to date.
    pub unchanged: i64,
    /// Employees skipped on purpose (e.g. no e-mail address).
    pub skipped: i64,
    /// Employees whose write to reteach failed (a user write or a tag request).
    pub failed: i64,
    /// Tags added to users (planned, in a dry run).
    #[serde(default)]
    pub tags_added: i64,
    /// Tags removed from users (planned, in a dry run).
    #[serde(default)]
    pub tags_removed: i64,
}

impl EmployeeCounts {
    /// Counts one planned action as if it were done.
    pub fn add(&mut self, planned: &PlannedEmployee) {
        self.tags_added += i64::try_from(planned.tags.add.len()).unwrap_or(i64::MAX);
        self.tags_removed += i64::try_from(planned.tags.remove.len()).unwrap_or(i64::MAX);
        match &planned.action {
            EmployeeAction::Create(_) => {
                self.created += 1;
                if planned.locked_after {
                    self.locked += 1;
                }
            }
            EmployeeAction::Update { locks, unlocks, .. } => {
                self.updated += 1;
                self.locked += i64::from(*locks);
                self.unlocked += i64::from(*unlocks);
            }
            EmployeeAction::Unchanged => self.unchanged += 1,
            EmployeeAction::Skip { .. } => self.skipped += 1,
        }
    }
}

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
                let (action, warning) = plan_one(table, desired, &window, &index, holds_email, now);
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

/// Plans the tags of `planned`: none for a skipped employee or one whose employment ended (or who
/// left the selection: locked users keep their tags as they are), the wanted ones for a new user,
/// the difference for an existing one. An unchanged user whose tags differ becomes an update with
/// an empty patch.
fn with_tags(
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

/// reteach users indexed for O(1) identity lookups.
struct CustomerIndex<'a> {
    by_id: HashMap<&'a str, &'a ReteachCustomer>,
    by_external_id: HashMap<&'a str, &'a ReteachCustomer>,
    by_email: HashMap<String, &'a ReteachCustomer>,
}

impl<'a> CustomerIndex<'a> {
    fn new(customers: &'a [ReteachCustomer]) -> Self {
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
fn plan_invalid_email(
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
            table,
            desired,
            &window,
            Target::Linked(customer),
            KEEP_EMAIL,
            now,
        ),
        locked_after: window.is_locked(today),
        warning: Some(warning),
        tags: TagChanges::default(),
    }
}

/// The lock window of `desired`; for an employee outside the selection, the window of a
/// contract that ended yesterday (or earlier, when it did), so the user is locked at once.
fn lock_window(desired: &DesiredEmployee, selected: bool, today: NaiveDate, tz: Tz) -> LockWindow {
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
fn email_holders<'a>(
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
fn plan_one(
    table: &[FieldMapping],
    desired: &DesiredEmployee,
    window: &LockWindow,
    index: &CustomerIndex<'_>,
    holds_email: bool,
    now: DateTime<Utc>,
) -> (EmployeeAction, Option<&'static str>) {
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
            Some(owner) => (
                diff(table, desired, window, Target::Adopted(owner), &[], now),
                None,
            ),
            None => (
                EmployeeAction::Create(create_fields(table, desired, window, now)),
                None,
            ),
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
    (
        diff(table, desired, window, Target::Linked(customer), kept, now),
        conflict,
    )
}

fn linked_elsewhere(customer: &ReteachCustomer, external_id: &str) -> bool {
    customer
        .external_id
        .as_deref()
        .is_some_and(|other| !other.is_empty() && other != external_id)
}

/// The fields left alone when the e-mail address cannot be applied.
const KEEP_EMAIL: &[ReteachField] = &[ReteachField::Email];

/// The update (or none) that brings `target` in line with `desired`, leaving the fields in
/// `kept` alone.
fn diff(
    table: &[FieldMapping],
    desired: &DesiredEmployee,
    window: &LockWindow,
    target: Target<'_>,
    kept: &[ReteachField],
    now: DateTime<Utc>,
) -> EmployeeAction {
    let customer = match target {
        Target::Linked(customer) | Target::Adopted(customer) => customer,
        Target::New => return EmployeeAction::Create(create_fields(table, desired, window, now)),
    };
    let changes = diff_fields(table, desired, window, target, kept, now);
    if changes.changed.is_empty() {
        return EmployeeAction::Unchanged;
    }
    let reported = ReportedLock {
        set_active_at: customer.set_active_at,
        set_inactive_at: customer.set_inactive_at,
        status: customer.status.as_deref(),
    };
    let was_locked = reported.is_locked(now);
    let will_be_locked = is_locked_at(window.set_active_at, window.set_inactive_at, now);
    EmployeeAction::Update {
        customer_id: customer.id.clone(),
        patch: changes.patch,
        changed: changes.changed,
        locks: !was_locked && will_be_locked,
        unlocks: was_locked && !will_be_locked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::model::Gender;
    use chrono::NaiveDate;
    use chrono_tz::{Europe, UTC};

    fn now() -> DateTime<Utc> {
        "2026-11-26T09:00:00Z".parse().unwrap()
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn employee(id: &str, email: &str) -> PersonioEmployee {
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
    fn synced(id: &str, employee: &PersonioEmployee) -> ReteachCustomer {
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

    fn single(employees: &[PersonioEmployee], customers: &[ReteachCustomer]) -> EmployeeAction {
        let plan = EmployeePlan::build(employees, customers, now(), UTC);
        plan.entries.last().unwrap().action.clone()
    }

    /// The plan of `employees` under `config` (UTC).
    fn configured(
        config: &EmployeeConfig,
        employees: &[PersonioEmployee],
        customers: &[ReteachCustomer],
    ) -> EmployeePlan {
        tagged(config, employees, customers, &[])
    }

    /// [`configured`] for a resource that owns the tags `managed` already.
    fn tagged(
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
    fn department_tags() -> EmployeeConfig {
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

    fn with_tags(mut customer: ReteachCustomer, names: &[&str]) -> ReteachCustomer {
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
        let EmployeeAction::Create(fields) = &configured(&config, &[ada], &[]).entries[0].action
        else {
            panic!("expected create");
        };
        assert_eq!(fields.department, None);
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
        let e = employee("1", "a@example.com");
        let customer = synced("c1", &e);
        let mut changed = e.clone();
        changed.position = Some("Lead".into());
        let action = single(&[changed], &[customer]);
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
        let EmployeeAction::Update { patch, changed, .. } = single(&[moved], &[customer]) else {
            panic!("expected update");
        };
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
        let EmployeeAction::Update {
            customer_id,
            patch,
            changed,
            ..
        } = single(&[e], &[customer])
        else {
            panic!("expected update");
        };
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
        let EmployeeAction::Update { patch, changed, .. } = &entry.action else {
            panic!("expected update, got {:?}", entry.action);
        };
        assert_eq!(changed, &vec!["position"]);
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
        let EmployeeAction::Update { locks, patch, .. } = &plan.entries[0].action else {
            panic!("expected update");
        };
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
        let EmployeeAction::Update {
            patch,
            changed,
            locks,
            ..
        } = &entry.action
        else {
            panic!("expected update, got {:?}", entry.action);
        };
        assert_eq!(changed, &vec!["setInactiveAt"]);
        assert_eq!(patch.email, None);
        assert!(locks);
    }

    #[test]
    fn locks_user_whose_contract_ended_yesterday() {
        let e = employee("1", "a@example.com");
        let customer = synced("c1", &e);
        let mut leaving = e.clone();
        leaving.termination_date = Some(day(2026, 11, 25));
        let EmployeeAction::Update {
            patch,
            changed,
            locks,
            unlocks,
            ..
        } = single(&[leaving], &[customer])
        else {
            panic!("expected update");
        };
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
        let e = employee("1", "a@example.com");
        let customer = synced("c1", &e);
        let mut leaving = e.clone();
        leaving.contract_end_date = Some(day(2026, 11, 27));
        let EmployeeAction::Update { locks, .. } = single(&[leaving], &[customer]) else {
            panic!("expected update");
        };
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
        let EmployeeAction::Update { patch, locks, .. } = single(&[left], &[customer]) else {
            panic!("expected update");
        };
        assert!(matches!(patch.set_inactive_at, Some(Some(_))));
        assert!(locks);
    }

    #[test]
    fn unlocks_rehired_user_by_clearing_inactive_date() {
        let mut left = employee("1", "a@example.com");
        left.termination_date = Some(day(2025, 6, 30));
        let customer = synced("c1", &left);
        let rehired = employee("1", "a@example.com");
        let EmployeeAction::Update {
            patch,
            locks,
            unlocks,
            ..
        } = single(&[rehired], &[customer])
        else {
            panic!("expected update");
        };
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
}
