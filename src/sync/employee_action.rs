//! What the plan decides for one employee, and the counters over such decisions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::employee_tags::TagChanges;
use super::model::{CustomerFields, CustomerPatch};

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
