//! `EmployeeSync`: copy employees from Personio into reteach on an interval.

use chrono::{DateTime, Utc};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::common::{PersonioConnection, ReteachConnection, SyncStatusCommon};
use super::mapping::{EmployeeMappingSpec, EmployeeSelectorSpec, TagRuleSpec};
pub use crate::sync::EmployeeCounts;

/// Copies employees one way from Personio into reteach (first name, last name, e-mail, position,
/// department, location, gender, hire date, end of employment) every `interval`. Employees whose
/// contract has ended or not yet begun are transferred too, but locked in reteach. reteach users are
/// never deleted.
// Printer columns repeat `type_ = "string"`/`"date"` on purpose.
#[allow(clippy::duplicated_attributes)]
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "sync.reteach.io",
    version = "v1alpha1",
    kind = "EmployeeSync",
    namespaced,
    status = "EmployeeSyncStatus",
    shortname = "esync",
    category = "reteach",
    doc = "Copies employees from Personio into reteach on an interval, locking those whose contract has ended or not yet begun.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    printcolumn(name = "Interval", type_ = "string", json_path = ".spec.interval"),
    printcolumn(name = "Last Sync", type_ = "date", json_path = ".status.lastSyncTime"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct EmployeeSyncSpec {
    /// How often to sync, as a Go-style duration (`5m`, `1h`). Minimum `1m`, maximum `24h`.
    /// Default `5m`.
    #[serde(default = "default_interval")]
    #[schemars(schema_with = "crate::api::duration::interval_schema")]
    pub interval: String,
    /// Stop syncing while true (the hosted flow's "Deactivate"). Status is kept.
    #[serde(default)]
    pub suspend: bool,
    /// Compute the plan and report it in status, but write nothing to reteach.
    #[serde(default)]
    pub dry_run: bool,
    /// IANA time zone of the company (e.g. `Europe/Berlin`): decides on which day a contract has ended
    /// or begun for the locking rule. Default `UTC`.
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_+/-]+$"))]
    pub time_zone: String,
    /// How often a run compares every employee instead of only those Personio reports as changed;
    /// a full run also repairs changes made by hand in reteach. Go-style duration, at least the
    /// operator's minimum interval (`1m`), at most `720h`; default `24h`.
    #[serde(default = "default_full_resync_interval")]
    #[schemars(schema_with = "crate::api::duration::full_resync_interval_schema")]
    pub full_resync_interval: String,
    /// Holds a run that would lock or unlock an unusual share of the academy, or that sees far
    /// fewer employees than the previous full run, until it is approved (see
    /// `sync.reteach.io/approve-plan`). On by default.
    #[serde(default)]
    pub mass_change_guard: MassChangeGuardSpec,
    /// Where the reteach fields take their values from; fields left out keep today's source.
    pub mapping: Option<EmployeeMappingSpec>,
    /// Which employees are synced (default: everyone).
    pub selector: Option<EmployeeSelectorSpec>,
    /// reteach tags each synced employee carries (reteach assigns courses by tag), at most 20
    /// rules. Tags this resource set and that no longer apply are removed; tags it did not set are
    /// never touched. Users whose employment ended (or who left the selection) keep their tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub tags: Vec<TagRuleSpec>,
    /// Where and how to read employees from Personio.
    pub personio: PersonioConnection,
    /// Where and how to write users into reteach.
    pub reteach: ReteachConnection,
    /// Optional: Personio webhooks (person and employment events) wake the next incremental run
    /// at once. See docs/webhooks.md.
    pub webhook: Option<super::WebhookSpec>,
}

/// Limits of the mass-change guard. A held run writes nothing, turns `Stalled` with reason
/// `MassChangeHeld` (counts and a plan id in the message) and emits a Warning Event; the annotation
/// `sync.reteach.io/approve-plan: <plan id>` approves exactly that plan, for one run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MassChangeGuardSpec {
    /// Whether the guard is on. Default `true`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Most users one run may lock plus unlock without approval, in percent of the academy's
    /// users. Default `10`.
    #[serde(default = "default_max_change_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub max_change_percent: i32,
    /// Changes of up to this many users always pass (small academies). Default `5`.
    #[serde(default = "default_min_users")]
    #[schemars(range(min = 0, max = 100000))]
    pub min_users: i32,
    /// A full run that sees fewer employees than this percentage of the previous full run's
    /// (and at least `minUsers` fewer) is held. `0` turns this check off. Default `50`.
    #[serde(default = "default_min_seen_percent")]
    #[schemars(range(min = 0, max = 100))]
    pub min_seen_percent: i32,
}

impl Default for MassChangeGuardSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            max_change_percent: default_max_change_percent(),
            min_users: default_min_users(),
            min_seen_percent: default_min_seen_percent(),
        }
    }
}

impl MassChangeGuardSpec {
    /// The guard's limits, clamped to the schema's bounds (the schema may not have checked an
    /// object stored before an upgrade); `None` when the guard is off.
    pub fn limits(&self) -> Option<crate::sync::mass_change::MassChangeLimits> {
        let clamp = |value: i32, min: i32, max: i32| value.clamp(min, max).unsigned_abs();
        self.enabled
            .then(|| crate::sync::mass_change::MassChangeLimits {
                max_change_percent: clamp(self.max_change_percent, 1, 100),
                min_users: clamp(self.min_users, 0, 100_000),
                min_seen_percent: clamp(self.min_seen_percent, 0, 100),
            })
    }
}

/// What the operator observed and did; written only by the operator.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(transform = super::common::status_defaults)]
pub struct EmployeeSyncStatus {
    /// Fields both kinds share (conditions, times, observed generation, backoff counter,
    /// capabilities, failures).
    #[serde(flatten)]
    pub common: SyncStatusCommon,
    /// Start of the latest successful full run (every employee compared).
    pub last_full_sync_time: Option<DateTime<Utc>>,
    /// Counters of the latest run.
    pub last_run: Option<EmployeeRunSummary>,
    /// Change-feed watermark: Personio `updated_since` for the next incremental run.
    pub cursor: Option<String>,
    /// With `dryRun`: a sample of the planned actions (at most 50; ids only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planned_actions: Vec<PlannedAction>,
    /// Employees seen by the latest successful full run; the mass-change guard compares the next
    /// full run with it.
    pub last_full_sync_seen: Option<i64>,
    /// The approved plan id (`sync.reteach.io/approve-plan`) the latest approved run applied; an
    /// approval is good for one run.
    pub applied_plan_approval: Option<String>,
    /// Users in the reteach academy at the latest run that listed them all. Incremental runs use
    /// it to choose the cheaper way to find the changed employees' users: one lookup each, or
    /// listing every user.
    pub reteach_users: Option<i64>,
    /// Start of the latest run that linked existing reteach users to their Personio employees.
    /// A CertificateSync referencing this resource makes its next run a full pass, so the
    /// certificates those users earned before are uploaded.
    pub last_link_time: Option<DateTime<Utc>>,
    /// The Personio attributes this resource reads and therefore needs whitelisted on its
    /// credential: exactly those its mapping, selector, tags and the locking rule use (`status`,
    /// `contract_end_date` and `last_modified_at` are asked for too, never required).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub personio_attributes: Vec<String>,
    /// The reteach tag names this resource owns, sorted: every tag it has set that may still be
    /// on a user. Only these are ever removed from a user. A full run drops names no user holds
    /// and no rule gives any more. At most 1,000 names: a new tag beyond that is not set (and
    /// reported in `failures`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub managed_tags: Vec<String>,
    /// Mapped reteach fields the academy refuses or does not keep (its API may predate them:
    /// reteach's 2022 spec has no `position` or `location`). They are left out of every write and
    /// comparison; mapping the field differently (or unmapping it) clears its entry.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub unsupported_fields: Vec<UnsupportedField>,
}

/// A reteach field the operator leaves out because the academy refuses or does not keep it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnsupportedField {
    /// reteach's name of the field, e.g. `position`.
    pub field: String,
    /// Why it is left out.
    pub reason: UnsupportedFieldReason,
    /// Fingerprint of `spec.mapping.<field>` when it was found: while the field is mapped the
    /// same way it stays left out; a different mapping tries it again.
    pub mapping: String,
    /// When the operator found it.
    pub since: DateTime<Utc>,
}

/// Why a field is left out.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum UnsupportedFieldReason {
    /// reteach answered a write carrying it with 400 `property <field> should not exist`.
    Refused,
    /// reteach accepted a value but returned the user without it.
    NotKept,
}

/// Counters of one EmployeeSync run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmployeeRunSummary {
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When the run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// `Incremental` (only employees Personio reports as changed) or `Full`.
    pub mode: SyncMode,
    /// Whether this run only planned (`dryRun`).
    #[serde(default)]
    pub dry_run: bool,
    /// Employees read from Personio.
    pub seen: i64,
    /// What the run did (or, in a dry run, would do).
    #[serde(flatten)]
    pub counts: EmployeeCounts,
}

impl std::ops::Deref for EmployeeRunSummary {
    type Target = EmployeeCounts;

    fn deref(&self) -> &EmployeeCounts {
        &self.counts
    }
}

impl std::ops::DerefMut for EmployeeRunSummary {
    fn deref_mut(&mut self) -> &mut EmployeeCounts {
        &mut self.counts
    }
}

/// Kind of an EmployeeSync run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum SyncMode {
    /// Only employees changed since the cursor.
    #[default]
    Incremental,
    /// Every employee compared; repairs drift.
    Full,
}

/// One action of a dry-run plan.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedAction {
    /// Personio employee id.
    pub personio_id: String,
    /// `Create`, `Update` or `Skip`.
    pub action: String,
    /// Names of the reteach fields that would change (never their values); `tags` when the
    /// user's tags would.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Tags that would be added to the user.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tags_to_add: i64,
    /// Tags that would be removed from the user.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tags_to_remove: i64,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

fn default_interval() -> String {
    "5m".into()
}
fn default_full_resync_interval() -> String {
    "24h".into()
}
fn default_true() -> bool {
    true
}
fn default_max_change_percent() -> i32 {
    10
}
fn default_min_users() -> i32 {
    5
}
fn default_min_seen_percent() -> i32 {
    50
}
fn default_time_zone() -> String {
    "UTC".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn guard_limits_stay_within_their_bounds_whatever_the_spec_says(
            max_change_percent in any::<i32>(),
            min_users in any::<i32>(),
            min_seen_percent in any::<i32>(),
        ) {
            let spec = MassChangeGuardSpec {
                enabled: true,
                max_change_percent,
                min_users,
                min_seen_percent,
            };
            let limits = spec.limits().expect("enabled");
            prop_assert!((1..=100).contains(&limits.max_change_percent));
            prop_assert!(limits.min_users <= 100_000);
            prop_assert!(limits.min_seen_percent <= 100);
        }
    }

    #[test]
    fn a_disabled_guard_has_no_limits() {
        let spec = MassChangeGuardSpec {
            enabled: false,
            ..MassChangeGuardSpec::default()
        };
        assert_eq!(spec.limits(), None);
    }
}
