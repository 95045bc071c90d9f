//! One EmployeeSync run: read employees from Personio, plan against reteach, apply the plan.
//!
//! Writes go out with a bounded concurrency of [`WRITE_CONCURRENCY`]: enough to hide request latency
//! for a 10,000-employee backfill, small enough to stay well inside reteach's rate limits (the client
//! throttles and retries on its own). Results are consumed in plan order, so reports are
//! deterministic.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;
use futures::StreamExt;

use crate::api::{
    EmployeeRunSummary, PlannedAction, RecordFailure, SyncMode, UnsupportedField,
    UnsupportedFieldReason, APPROVE_PLAN_ANNOTATION,
};
use crate::personio::{AttributeRequest, PersonioApi};
use crate::reteach::{ReteachApi, ReteachError, USERS_PER_PAGE};
use crate::sync::employee_config::EmployeeConfig;
use crate::sync::employee_fields::ReteachField;
use crate::sync::employee_mapping::{map_record, MappedEmployee, MappingError};
use crate::sync::employee_plan::tags_in_run;
use crate::sync::employee_tags::TagOwnership;
use crate::sync::mass_change::{
    approved_plan_id, check_mass_change, MassChangeInput, MassChangeLimits,
};
use crate::sync::unsupported_fields::{
    not_echoed, optional_field, refused_properties, source_fingerprint, source_of, Unsupported,
    Write,
};
use crate::sync::{CustomerFields, EmployeeAction, EmployeePlan, PlannedEmployee, ReteachCustomer};

use super::count;
use super::error::JobError;
use super::failures::FailureLog;
use super::reason::{Classify, Disposition, Reason};

/// Overlap subtracted from the cursor so that changes saved while the previous run read the list
/// (and small clock differences to Personio) are not missed. Re-reading them is harmless.
pub const INCREMENTAL_OVERLAP_MINUTES: i64 = 5;
/// When the academy's size is unknown: below this many changed employees, users are looked up one
/// by one instead of listing all (see [`prefer_lookups`]).
pub const LOOKUP_THRESHOLD: usize = 50;
/// reteach writes in flight at once.
pub const WRITE_CONCURRENCY: usize = 4;
/// Most planned actions reported by a dry run.
pub const MAX_PLANNED_SAMPLE: usize = 50;

/// Everything one run needs besides the clients.
#[derive(Clone, Debug)]
pub struct EmployeeJobInput {
    /// Start of the run; becomes the next cursor on success.
    pub now: DateTime<Utc>,
    /// Company time zone: day boundary of the locking rule; see [`updated_since`] for the change feed.
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

/// Runs one EmployeeSync pass. Run-level failures (credentials, listings) return `Err`; a failing
/// record is counted and the run continues.
pub async fn run_employee_sync(
    personio: &dyn PersonioApi,
    reteach: &dyn ReteachApi,
    input: &EmployeeJobInput,
) -> Result<EmployeeJobOutcome, JobError> {
    let incremental_since = match (input.full, input.cursor) {
        (false, Some(cursor)) => Some(updated_since(cursor, input.tz)),
        _ => None,
    };
    let mut summary = EmployeeRunSummary {
        started_at: input.now,
        mode: if incremental_since.is_some() {
            SyncMode::Incremental
        } else {
            SyncMode::Full
        },
        dry_run: input.dry_run,
        ..Default::default()
    };
    let mut failures = FailureLog::default();

    let attributes = AttributeRequest::new(input.config.attributes());
    // Persons named by webhook notifications are re-read by id where the change feed does not
    // see every change (Personio v2: employment changes).
    let list = personio
        .list_changed_employees(incremental_since, &input.notified, &attributes)
        .await
        .map_err(|source| JobError::Personio {
            action: "could not read employees from Personio",
            source,
        })?;
    summary.seen = count(list.employees.len() + list.skipped.len());
    for skipped in &list.skipped {
        summary.skipped += 1;
        failures.push(skipped.id.clone(), None, skipped.reason.clone());
    }
    let mut outcome = EmployeeJobOutcome {
        summary,
        failures: Vec::new(),
        planned: Vec::new(),
        next_cursor: if input.dry_run {
            input.cursor
        } else {
            Some(input.now)
        },
        transient_failures: 0,
        reteach_users: None,
        applied_approval: None,
        linked: 0,
        personio_attributes: attributes.required().to_vec(),
        unsupported_fields: input.unsupported_fields.clone(),
        newly_unsupported: Vec::new(),
        managed_tags: None,
    };
    if list.employees.is_empty() {
        // Nothing to write, but "Personio suddenly returns nobody" is the worst shrink of all.
        if let (false, Some(guard)) = (input.dry_run, &input.guard) {
            outcome.applied_approval = guard_plan(
                guard,
                &EmployeePlan::default(),
                &outcome,
                input.reteach_users,
            )?;
        }
        outcome.failures = failures.into_vec();
        return Ok(outcome);
    }

    // Each record is mapped once: the lookups and the plan share the result.
    let mapped: Vec<MappedEmployee> = list
        .employees
        .iter()
        .map(|employee| map_record(employee, &input.config))
        .collect();
    let customers = if incremental_since.is_some()
        && prefer_lookups(list.employees.len(), input.reteach_users)
    {
        look_up_customers(reteach, &mapped).await?
    } else {
        let all = reteach
            .list_customers()
            .await
            .map_err(|source| JobError::Reteach {
                action: "could not list users in reteach",
                source,
            })?;
        outcome.reteach_users = u64::try_from(all.len()).ok();
        all
    };

    // A field the academy refuses or does not keep is neither compared nor written.
    let left_out: Vec<ReteachField> = input
        .unsupported_fields
        .iter()
        .filter_map(|field| optional_field(&field.field))
        .collect();
    let table: Vec<_> = input
        .config
        .table()
        .into_iter()
        .filter(|row| !left_out.contains(&row.field))
        .collect();
    // The resource owns the tags it set before and those its rules give the selected employees
    // now; it records them before any tag is written, so a tag it sets is never forgotten.
    let wanted_in_run = tags_in_run(&mapped, input.now, input.tz);
    let ownership = TagOwnership::new(&input.managed_tags, wanted_in_run.iter().copied());
    let plan = EmployeePlan::build_with_table(
        &table, &mapped, &customers, &ownership, input.now, input.tz,
    );
    if !input.dry_run {
        // A full run that listed every user knows every tag still held: names no user holds and no
        // rule gives are dropped (a tag removed in this run goes in the next full run).
        let listed_all = incremental_since.is_none() && outcome.reteach_users.is_some();
        outcome.managed_tags = Some(if listed_all {
            ownership.in_use(
                wanted_in_run.iter().copied(),
                customers.iter().flat_map(|customer| &customer.tags),
            )
        } else {
            ownership.names()
        });
    }
    for entry in &plan.entries {
        if let EmployeeAction::Skip { reason } = entry.action {
            failures.push(Some(entry.personio_id.clone()), None, reason);
        } else if let Some(warning) = entry.warning {
            failures.push(Some(entry.personio_id.clone()), None, warning);
        }
        let mut reasons: Vec<String> = entry.tags.not_set.iter().map(|n| n.reason()).collect();
        reasons.dedup();
        for reason in reasons {
            failures.push(Some(entry.personio_id.clone()), None, reason);
        }
    }

    if !input.dry_run {
        if let Some(guard) = &input.guard {
            let academy_users = outcome.reteach_users.or(input.reteach_users);
            outcome.applied_approval = guard_plan(guard, &plan, &outcome, academy_users)?;
        }
    }

    if input.dry_run {
        let counts = plan.counts();
        let summary = &mut outcome.summary;
        summary.created = counts.created;
        summary.updated = counts.updated;
        summary.locked = counts.locked;
        summary.unlocked = counts.unlocked;
        summary.unchanged = counts.unchanged;
        summary.skipped += counts.skipped;
        summary.tags_added = counts.tags_added;
        summary.tags_removed = counts.tags_removed;
        outcome.planned = plan
            .entries
            .iter()
            .filter_map(planned_action)
            .take(MAX_PLANNED_SAMPLE)
            .collect();
        outcome.failures = failures.into_vec();
        return Ok(outcome);
    }

    let memory = FieldMemory::default();
    let applied = apply(reteach, &plan, &memory, &mut outcome, &mut failures).await;
    remember_unsupported(&memory, input, &mut outcome);
    applied?;
    if outcome.transient_failures > 0 {
        outcome.next_cursor = input.cursor;
    }
    outcome.failures = failures.into_vec();
    Ok(outcome)
}

/// Holds the run when the plan changes too much (`Err`), or returns the approval it uses.
fn guard_plan(
    guard: &MassChangeGuard,
    plan: &EmployeePlan,
    outcome: &EmployeeJobOutcome,
    academy_users: Option<u64>,
) -> Result<Option<String>, JobError> {
    let check = MassChangeInput {
        plan,
        academy_users,
        seen: u64::try_from(outcome.summary.seen).unwrap_or(0),
        full: outcome.summary.mode == SyncMode::Full,
        previous_full_seen: guard.previous_full_seen,
        approved_plan: guard.approved_plan.as_deref(),
        consumed_approval: guard.consumed_approval.as_deref(),
    };
    if let Some(held) = check_mass_change(&guard.limits, &check) {
        return Err(JobError::MassChangeHeld {
            message: held.message(APPROVE_PLAN_ANNOTATION),
            plan: Box::new(held),
        });
    }
    Ok(approved_plan_id(&guard.limits, &check))
}

/// Personio's `updated_since`: the cursor minus the overlap, as a naive date-time.
///
/// Personio does not document in which zone it reads the value (README of the reference, "verify
/// on a real tenant"). Read in the other zone than meant, a naive value is off by the zone offset:
/// east of UTC, company time read as UTC lies in the future of every recent change, and every
/// incremental run would miss them until the next full run. So the earlier of the two readings is
/// sent — UTC and company time — which is at or before the cursor either way; re-reading a few
/// unchanged employees is harmless.
pub fn updated_since(cursor: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    let since = cursor
        .checked_sub_signed(Duration::minutes(INCREMENTAL_OVERLAP_MINUTES))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    since
        .naive_utc()
        .min(since.with_timezone(&tz).naive_local())
}

/// Whether looking `changed` employees up one by one (one request each, a second one for a new or
/// changed e-mail address) costs fewer requests than listing every user (one request per 250).
/// With the academy's size unknown (no listing yet), [`LOOKUP_THRESHOLD`] decides. Ties go to the
/// listing, which also refreshes the size.
pub fn prefer_lookups(changed: usize, reteach_users: Option<u64>) -> bool {
    match reteach_users {
        Some(users) => {
            let pages = users.div_ceil(USERS_PER_PAGE).max(1);
            u64::try_from(changed).is_ok_and(|changed| changed < pages)
        }
        None => changed < LOOKUP_THRESHOLD,
    }
}

/// For a handful of changed employees: find their reteach users by Personio id, and by e-mail.
/// When the linked user's address differs, the new address is looked up too, so the plan can see
/// whether it is already taken.
async fn look_up_customers(
    reteach: &dyn ReteachApi,
    employees: &[MappedEmployee],
) -> Result<Vec<ReteachCustomer>, JobError> {
    let lookup_failed = |source| JobError::Reteach {
        action: "could not look up users in reteach",
        source,
    };
    let mut found: Vec<ReteachCustomer> = Vec::new();
    let mut ids: HashSet<String> = HashSet::new();
    for employee in employees {
        let mapped = &employee.result;
        if matches!(mapped, Err(MappingError::EndBeforeHire)) {
            continue;
        }
        // Also for a missing or invalid address: a linked user still gets its other fields.
        let linked = reteach
            .find_by_external_id(&employee.personio_id)
            .await
            .map_err(lookup_failed)?;
        let Ok(desired) = mapped else {
            found.extend(linked.filter(|customer| ids.insert(customer.id.clone())));
            continue;
        };
        let email_needs_lookup = linked.as_ref().is_none_or(|customer| {
            !customer
                .email
                .as_deref()
                .is_some_and(|email| email.trim().eq_ignore_ascii_case(&desired.email))
        });
        let by_email = if email_needs_lookup {
            reteach
                .find_by_email(&desired.email)
                .await
                .map_err(lookup_failed)?
        } else {
            None
        };
        for customer in linked.into_iter().chain(by_email) {
            if ids.insert(customer.id.clone()) {
                found.push(customer);
            }
        }
    }
    Ok(found)
}

/// Writes the plan; stops when reteach refuses the credentials (every write would fail), and
/// reports an error when every write that was tried failed transiently.
async fn apply(
    reteach: &dyn ReteachApi,
    plan: &EmployeePlan,
    memory: &FieldMemory,
    outcome: &mut EmployeeJobOutcome,
    failures: &mut FailureLog,
) -> Result<(), JobError> {
    let counts = plan.counts();
    outcome.summary.unchanged = counts.unchanged;
    outcome.summary.skipped += counts.skipped;

    // The futures are built up front (they are lazy) rather than through iterator adapters with
    // closures: a closure over `&&PlannedEmployee` held across the awaits below makes the run's
    // future not provably `Send`, which the controller's spawned reconcile needs.
    let mut writes = Vec::new();
    for entry in &plan.entries {
        if matches!(
            entry.action,
            EmployeeAction::Create(_) | EmployeeAction::Update { .. }
        ) {
            writes.push(write_entry(reteach, entry, memory));
        }
    }
    // Dropping the stream on a fatal error cancels the writes still in flight; the next run
    // re-plans from reteach's actual state, so a cancelled write is simply done again.
    let mut results = futures::stream::iter(writes).buffered(WRITE_CONCURRENCY);
    let mut last_transient = None;
    while let Some((entry, write)) = results.next().await {
        match write.user {
            Ok(()) => match &entry.action {
                EmployeeAction::Create(_) => {
                    outcome.summary.created += 1;
                    outcome.summary.locked += i64::from(entry.locked_after);
                }
                // An update whose only change is its tags counts once its tags went through.
                EmployeeAction::Update {
                    locks,
                    unlocks,
                    patch,
                    ..
                } if write.user_written
                    || (write.tag_error.is_none() && !entry.tags.is_empty()) =>
                {
                    outcome.linked += i64::from(patch.external_id.is_some());
                    outcome.summary.updated += 1;
                    outcome.summary.locked += i64::from(*locks);
                    outcome.summary.unlocked += i64::from(*unlocks);
                }
                // Only fields the academy refuses or does not keep had changed: nothing was sent.
                EmployeeAction::Update { .. } if write.tag_error.is_none() => {
                    outcome.summary.unchanged += 1;
                }
                _ => {}
            },
            Err(error) if is_fatal(&error) => {
                return Err(JobError::Reteach {
                    action: "could not write users to reteach",
                    source: error,
                });
            }
            Err(error) => {
                outcome.summary.failed += 1;
                failures.push(
                    Some(entry.personio_id.clone()),
                    None,
                    write_failure_reason(&entry.action, &error),
                );
                if error.is_transient() {
                    outcome.transient_failures += 1;
                    last_transient = Some(error);
                }
            }
        }
        outcome.summary.tags_added += write.tags_added;
        outcome.summary.tags_removed += write.tags_removed;
        match write.tag_error {
            None => {}
            Some(error) if is_fatal(&error) => {
                return Err(JobError::Reteach {
                    action: "could not change tags in reteach",
                    source: error,
                });
            }
            Some(error) => {
                // The user is there; its tags are tried again by the next run that sees it (a
                // transient failure keeps the cursor, so that is the next run).
                outcome.summary.failed += 1;
                failures.push(
                    Some(entry.personio_id.clone()),
                    None,
                    tag_failure_reason(&error),
                );
                if error.is_transient() {
                    outcome.transient_failures += 1;
                    last_transient = Some(error);
                }
            }
        }
    }
    // Not one write went through and some failed for a reason time heals: reteach is down or
    // throttling. Report that as the run's condition (→ backoff) rather than success with failed
    // records; the next run re-plans from reteach's actual state.
    if let Some(source) = last_transient {
        if outcome.summary.created + outcome.summary.updated == 0 {
            return Err(JobError::Reteach {
                action: "could not write any user to reteach",
                source,
            });
        }
    }
    Ok(())
}

async fn write_entry<'a>(
    reteach: &dyn ReteachApi,
    entry: &'a PlannedEmployee,
    memory: &FieldMemory,
) -> (&'a PlannedEmployee, EntryWrite) {
    (entry, write_one(reteach, entry, memory).await)
}

/// What the requests for one entry did.
struct EntryWrite {
    /// The user write (create or field update); `Ok` when none was needed.
    user: Result<(), ReteachError>,
    /// Whether a user write was sent (an update whose only change is its tags, or only fields
    /// the academy refuses or does not keep, sends none).
    user_written: bool,
    /// Tags added.
    tags_added: i64,
    /// Tags removed.
    tags_removed: i64,
    /// The tag request that failed; later tag requests of the entry were not sent.
    tag_error: Option<ReteachError>,
}

/// What became of the user write of one planned entry.
enum UserWrite {
    /// reteach accepted it and answered with the user.
    Sent(Box<ReteachCustomer>),
    /// None was needed: no field changed, or only fields the academy refuses or does not keep
    /// (an update whose only change is its tags sends no user write).
    NotSent,
}

/// The fields this run found the academy refuses or does not keep, shared by the concurrent
/// writes (a later write leaves them out before sending). The lock is never held across an
/// await.
#[derive(Default)]
struct FieldMemory(Mutex<Vec<(ReteachField, Unsupported)>>);

impl FieldMemory {
    fn note(&self, fields: &[ReteachField], why: Unsupported) {
        let mut found = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for field in fields {
            if !found.iter().any(|(known, _)| known == field) {
                found.push((*field, why));
            }
        }
    }

    fn found(&self) -> Vec<(ReteachField, Unsupported)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Leaves every field found so far out of `write`.
    fn strip(&self, write: &mut Write<'_>) {
        for (field, _) in self.found() {
            write.remove(field);
        }
    }
}

/// Sends the user write of one planned entry. A 400 naming fields of the write as `property …
/// should not exist` is answered by sending the write again without them (at most once per
/// field, so a write never loops); an answer without a value the write set marks that field as
/// not kept. Either is remembered for the rest of the run and the following ones, never counted
/// as a failure.
async fn write_user(
    reteach: &dyn ReteachApi,
    entry: &PlannedEmployee,
    memory: &FieldMemory,
) -> Result<UserWrite, ReteachError> {
    let mut action = entry.action.clone();
    let mut write = match &mut action {
        EmployeeAction::Create(fields) => Write::Create(fields),
        EmployeeAction::Update { patch, changed, .. } => Write::Update(patch, changed),
        EmployeeAction::Unchanged | EmployeeAction::Skip { .. } => return Ok(UserWrite::NotSent),
    };
    memory.strip(&mut write);
    let mut attempts_left = crate::sync::unsupported_fields::OPTIONAL_FIELDS.len();
    loop {
        if write.is_empty() {
            return Ok(UserWrite::NotSent);
        }
        let result = match &write {
            Write::Create(fields) => reteach.create_customer(fields).await,
            Write::Update(patch, _) => {
                let EmployeeAction::Update { customer_id, .. } = &entry.action else {
                    return Ok(UserWrite::NotSent);
                };
                reteach.update_customer(customer_id, patch).await
            }
        };
        let error = match result {
            Ok(answer) => {
                memory.note(&not_echoed(&write, &answer), Unsupported::NotKept);
                return Ok(UserWrite::Sent(Box::new(answer)));
            }
            Err(error) => error,
        };
        let refused: Vec<ReteachField> = match &error {
            ReteachError::Rejected { message, .. } if attempts_left > 0 => {
                refused_properties(message)
                    .iter()
                    .filter_map(|name| optional_field(name))
                    .filter(|field| write.sends(*field))
                    .collect()
            }
            _ => Vec::new(),
        };
        if refused.is_empty() {
            return Err(error);
        }
        attempts_left -= 1;
        memory.note(&refused, Unsupported::Refused);
        for field in refused {
            write.remove(field);
        }
    }
}

/// Adds the fields this run found to the outcome, tied to the field's current mapping.
fn remember_unsupported(
    memory: &FieldMemory,
    input: &EmployeeJobInput,
    outcome: &mut EmployeeJobOutcome,
) {
    for (field, why) in memory.found() {
        if outcome
            .unsupported_fields
            .iter()
            .any(|known| known.field == field.name())
        {
            continue;
        }
        let Some(source) = source_of(&input.config, field) else {
            continue;
        };
        let entry = UnsupportedField {
            field: field.name().to_string(),
            reason: match why {
                Unsupported::Refused => UnsupportedFieldReason::Refused,
                Unsupported::NotKept => UnsupportedFieldReason::NotKept,
            },
            mapping: source_fingerprint(source),
            since: input.now,
        };
        tracing::warn!(
            field = entry.field,
            reason = ?entry.reason,
            "reteach does not keep a mapped field; it is left out of writes from now on"
        );
        outcome.newly_unsupported.push(entry.clone());
        outcome.unsupported_fields.push(entry);
    }
}

/// The user write, then its tags: adds first (one request), then one removal per tag, so a user
/// moving departments is never without both tags. A tag already gone counts as removed.
async fn write_one(
    reteach: &dyn ReteachApi,
    entry: &PlannedEmployee,
    memory: &FieldMemory,
) -> EntryWrite {
    let mut write = EntryWrite {
        user: Ok(()),
        user_written: false,
        tags_added: 0,
        tags_removed: 0,
        tag_error: None,
    };
    let user = match write_user(reteach, entry, memory).await {
        Ok(user) => user,
        Err(error) => {
            write.user = Err(error);
            return write;
        }
    };
    let (customer_id, add) = match (&entry.action, user) {
        // Find-or-create may return a user that exists already, with tags of its own.
        (EmployeeAction::Create(_), UserWrite::Sent(customer)) => {
            write.user_written = true;
            let add = entry.tags.without_held(&customer.tags);
            (customer.id.clone(), add)
        }
        (EmployeeAction::Update { customer_id, .. }, user) => {
            write.user_written = matches!(user, UserWrite::Sent(_));
            (customer_id.clone(), entry.tags.add.clone())
        }
        _ => return write,
    };
    if !add.is_empty() {
        if let Err(error) = reteach.add_tags(&customer_id, &add).await {
            write.tag_error = Some(error);
            return write;
        }
        write.tags_added = count(add.len());
    }
    for tag in &entry.tags.remove {
        match reteach.remove_tag(&customer_id, tag.address()).await {
            Ok(()) => write.tags_removed += 1,
            Err(ReteachError::NotFound { .. }) => {}
            Err(error) => {
                write.tag_error = Some(error);
                return write;
            }
        }
    }
    write
}

/// A write error that stops the run: one a human must fix that is not about the record itself
/// (a rejected record is counted and the run goes on).
fn is_fatal(error: &ReteachError) -> bool {
    let classification = error.classify();
    classification.disposition == Disposition::Stalled
        && classification.reason != Reason::ReteachRejected
}

/// Fixed reasons: reteach's messages may echo the submitted values, so none of them is copied.
fn write_failure_reason(action: &EmployeeAction, error: &ReteachError) -> &'static str {
    let creating = matches!(action, EmployeeAction::Create(_));
    match error {
        ReteachError::Rejected { .. } if creating => "reteach rejected the new user",
        ReteachError::Rejected { .. } => "reteach rejected the update",
        ReteachError::NotFound { .. } => "reteach user no longer exists; it is recreated next run",
        ReteachError::Unavailable { .. } => "reteach was unavailable; retried next run",
        ReteachError::Malformed { .. } => "reteach sent an unreadable response; retried next run",
        ReteachError::Unauthorized { .. }
        | ReteachError::Forbidden { .. }
        | ReteachError::Redirected { .. }
        | ReteachError::Config(_) => "reteach refused the write",
    }
}

/// Fixed reasons for a failed tag request (reteach's messages may echo the tag names).
fn tag_failure_reason(error: &ReteachError) -> &'static str {
    match error {
        ReteachError::Rejected { .. } => "reteach rejected a tag change; tried again next run",
        ReteachError::Unavailable { .. } | ReteachError::Malformed { .. } => {
            "reteach was unavailable for a tag change; tried again next run"
        }
        ReteachError::NotFound { .. } => {
            "reteach user no longer exists; its tags are set when it is recreated"
        }
        ReteachError::Unauthorized { .. }
        | ReteachError::Forbidden { .. }
        | ReteachError::Redirected { .. }
        | ReteachError::Config(_) => "reteach refused a tag change",
    }
}

/// The dry-run report of one entry; unchanged employees are left out.
fn planned_action(entry: &PlannedEmployee) -> Option<PlannedAction> {
    let (action, mut fields) = match &entry.action {
        EmployeeAction::Create(fields) => ("Create", created_fields(fields)),
        EmployeeAction::Update { changed, .. } => (
            "Update",
            changed.iter().map(|field| (*field).to_string()).collect(),
        ),
        EmployeeAction::Skip { .. } => ("Skip", Vec::new()),
        EmployeeAction::Unchanged => return None,
    };
    if !entry.tags.is_empty() {
        fields.push("tags".to_string());
    }
    Some(PlannedAction {
        personio_id: entry.personio_id.clone(),
        action: action.into(),
        fields,
        tags_to_add: count(entry.tags.add.len()),
        tags_to_remove: count(entry.tags.remove.len()),
    })
}

fn created_fields(fields: &CustomerFields) -> Vec<String> {
    let optional = [
        ("firstName", fields.first_name.is_some()),
        ("lastName", fields.last_name.is_some()),
        ("position", fields.position.is_some()),
        ("department", fields.department.is_some()),
        ("location", fields.location.is_some()),
        ("gender", fields.gender.is_some()),
        ("company", fields.company.is_some()),
        ("language", fields.language.is_some()),
        ("note", fields.note.is_some()),
        ("setActiveAt", fields.set_active_at.is_some()),
        ("setInactiveAt", fields.set_inactive_at.is_some()),
    ];
    ["externalId", "email"]
        .into_iter()
        .chain(
            optional
                .into_iter()
                .filter(|(_, present)| *present)
                .map(|(name, _)| name),
        )
        .map(String::from)
        .collect()
}

#[cfg(test)]
#[path = "employee_tests.rs"]
mod tests;
