//! What one EmployeeSync run takes and gives back: its input (a full run with defaults, or
//! built from a resource by [`super::bookkeeping::employee_input`]) and its outcome.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::api::{EmployeeRunSummary, PlannedAction, RecordFailure, UnsupportedField};
use crate::sync::employee_config::EmployeeConfig;
use crate::sync::mass_change::MassChangeLimits;

/// Everything one run needs besides the clients.
#[derive(Clone, Debug)]
pub struct EmployeeJobInput {
    /// Start of the run; becomes the next cursor on success.
    pub now: DateTime<Utc>,
    /// Company time zone: day boundary of the locking rule; see [`updated_since`](super::employee::updated_since) for the change feed.
    pub tz: Tz,
    /// Plan only, write nothing.
    pub dry_run: bool,
    /// Compare every employee. Also happens when there is no cursor yet.
    pub full: bool,
    /// Watermark of the last successful run.
    pub cursor: Option<DateTime<Utc>>,
    /// Users in the reteach academy when it was last listed (`status.reteachUsers`); decides
    /// whether an incremental run looks its changed employees up or lists every user.
    pub reteach_users: Option<u64>,
    /// The mass-change guard, if on.
    pub guard: Option<MassChangeGuard>,
    /// The resource's mapping, selector and tag rules (`spec.mapping`, `spec.selector`,
    /// `spec.tags`).
    pub config: EmployeeConfig,
    /// Fields found earlier that the academy refuses or does not keep, still mapped the same way
    /// (see [`crate::jobs::bookkeeping::employee_input`]): left out of writes and comparisons.
    pub unsupported_fields: Vec<UnsupportedField>,
    /// The tags the resource owns (`status.managedTags`).
    pub managed_tags: Vec<String>,
    /// Personio person ids webhook notifications named since the last run. An incremental run
    /// re-reads them by id when the listing's change feed does not see every change (v2: an
    /// employment change or `employment.terminated` on its date leaves the person's `updated_at`).
    pub notified: Vec<String>,
}

impl EmployeeJobInput {
    /// A full run at `now` in `tz` with the default mapping, no guard and nothing remembered
    /// from earlier runs; set other fields with struct update syntax.
    pub fn full_run(now: DateTime<Utc>, tz: Tz) -> Self {
        Self {
            now,
            tz,
            dry_run: false,
            full: true,
            cursor: None,
            reteach_users: None,
            guard: None,
            config: EmployeeConfig::default(),
            unsupported_fields: Vec::new(),
            managed_tags: Vec::new(),
            notified: Vec::new(),
        }
    }
}

/// The mass-change guard of one run (see [`crate::sync::mass_change`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MassChangeGuard {
    pub limits: MassChangeLimits,
    /// Employees seen by the previous successful full run.
    pub previous_full_seen: Option<u64>,
    /// The plan id the approval annotation names.
    pub approved_plan: Option<String>,
    /// The approval an earlier run already used.
    pub consumed_approval: Option<String>,
}

/// What one run did.
#[derive(Clone, Debug, PartialEq)]
pub struct EmployeeJobOutcome {
    /// Counters for `status.lastRun`. `finished_at` is left for the caller, which owns the clock.
    pub summary: EmployeeRunSummary,
    /// Skipped and failed records (at most `MAX_STATUS_FAILURES`; counters are complete).
    pub failures: Vec<RecordFailure>,
    /// With dry run: a sample of what would be written.
    pub planned: Vec<PlannedAction>,
    /// Cursor for the next run: `now` on success; the old cursor when a record failed transiently
    /// (so it is read again) or on a dry run (nothing was written).
    pub next_cursor: Option<DateTime<Utc>>,
    /// Records whose write failed in a way a retry can fix.
    pub transient_failures: i64,
    /// Users in the reteach academy, when this run listed them all.
    pub reteach_users: Option<u64>,
    /// The approved plan id this run applied (an approval is good for one run).
    pub applied_approval: Option<String>,
    /// Existing reteach users this run linked to their Personio employee (found by e-mail and
    /// given the Personio id): their earlier certificates are owed to Personio now.
    pub linked: i64,
    /// The Personio attributes the run required (`status.personioAttributes`).
    pub personio_attributes: Vec<String>,
    /// Every field left out after this run (`status.unsupportedFields`): those of the input and
    /// those found now.
    pub unsupported_fields: Vec<UnsupportedField>,
    /// The fields this run found the academy refuses or does not keep (one Warning Event each).
    pub newly_unsupported: Vec<UnsupportedField>,
    /// The tags the resource owns after the run (`status.managedTags`); `None` leaves them as
    /// they were (a dry run, or a run that saw nobody).
    pub managed_tags: Option<Vec<String>>,
}
