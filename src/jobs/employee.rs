//! One EmployeeSync run: read employees from Personio, plan against reteach, apply the plan.
//!
//! Writes go out with a bounded concurrency of [`WRITE_CONCURRENCY`]: enough to hide request latency
//! for a 10,000-employee backfill, small enough to stay well inside reteach's rate limits (the client
//! throttles and retries on its own). Results are consumed in plan order, so reports are
//! deterministic.

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;

use crate::api::{
    EmployeeCounts, EmployeeRunSummary, PlannedAction, SyncMode, APPROVE_PLAN_ANNOTATION,
};
use crate::personio::{AttributeRequest, ChangedEmployees, EmployeeList, PersonioApi};
use crate::reteach::{ReteachApi, USERS_PER_PAGE};
use crate::sync::employee_mapping::{map_record, MappedEmployee, MappingError};
use crate::sync::employee_plan::tags_in_run;
use crate::sync::employee_tags::TagOwnership;
use crate::sync::field_table::{ReteachField, FIELDS};
use crate::sync::mass_change::{approved_plan_id, check_mass_change, MassChangeInput};
use crate::sync::unsupported_fields::optional_field;
use crate::sync::{CustomerFields, EmployeeAction, EmployeePlan, PlannedEmployee, ReteachCustomer};

use super::count;
pub use super::employee_input::{EmployeeJobInput, EmployeeJobOutcome, MassChangeGuard};
pub use super::employee_write::WRITE_CONCURRENCY;
use super::employee_write::{apply, remember_unsupported, FieldMemory};
use super::error::JobError;
use super::failures::FailureLog;

/// Overlap subtracted from the cursor so that changes saved while the previous run read the list
/// (and small clock differences to Personio) are not missed. Re-reading them is harmless.
pub const INCREMENTAL_OVERLAP_MINUTES: i64 = 5;
/// When the academy's size is unknown: below this many changed employees, users are looked up one
/// by one instead of listing all (see [`prefer_lookups`]).
pub const LOOKUP_THRESHOLD: usize = 50;
/// Most planned actions reported by a dry run.
pub const MAX_PLANNED_SAMPLE: usize = 50;

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
    let attributes = AttributeRequest::new(input.config.attributes());
    // Persons named by webhook notifications are re-read by id where the change feed does not
    // see every change (Personio v2: employment changes).
    let list = personio
        .list_changed_employees(ChangedEmployees {
            updated_since: incremental_since,
            named: &input.notified,
            attributes: &attributes,
        })
        .await
        .map_err(JobError::personio("could not read employees from Personio"))?;
    let mut failures = FailureLog::default();
    for skipped in &list.skipped {
        failures.push(skipped.id.clone(), None, skipped.reason.clone());
    }
    let mut outcome = starting_outcome(input, incremental_since.is_some(), &list, &attributes);
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
    let incremental = incremental_since.is_some();
    let customers = read_customers(reteach, input, &mapped, incremental, &mut outcome).await?;
    let listed_all = !incremental && outcome.reteach_users.is_some();
    let plan = plan_run(input, &mapped, &customers, listed_all, &mut outcome);
    note_plan_findings(&plan, &mut failures);
    if input.dry_run {
        report_dry_run(&plan, &mut outcome);
    } else {
        write_plan(reteach, input, &plan, &mut outcome, &mut failures).await?;
    }
    outcome.failures = failures.into_vec();
    Ok(outcome)
}

/// The reteach users the plan compares against: those of the changed employees, looked up one by
/// one where that is cheaper (an incremental run), else every user (and the academy's size goes
/// into the outcome).
async fn read_customers(
    reteach: &dyn ReteachApi,
    input: &EmployeeJobInput,
    mapped: &[MappedEmployee],
    incremental: bool,
    outcome: &mut EmployeeJobOutcome,
) -> Result<Vec<ReteachCustomer>, JobError> {
    if incremental && prefer_lookups(mapped.len(), input.reteach_users) {
        return look_up_customers(reteach, mapped).await;
    }
    let all = reteach
        .list_customers()
        .await
        .map_err(JobError::reteach("could not list users in reteach"))?;
    outcome.reteach_users = u64::try_from(all.len()).ok();
    Ok(all)
}

/// Applies `plan` unless the mass-change guard holds it; a run with a transient failure keeps
/// the old cursor, so the failed records are read again.
async fn write_plan(
    reteach: &dyn ReteachApi,
    input: &EmployeeJobInput,
    plan: &EmployeePlan,
    outcome: &mut EmployeeJobOutcome,
    failures: &mut FailureLog,
) -> Result<(), JobError> {
    if let Some(guard) = &input.guard {
        let academy_users = outcome.reteach_users.or(input.reteach_users);
        outcome.applied_approval = guard_plan(guard, plan, outcome, academy_users)?;
    }
    let memory = FieldMemory::default();
    let applied = apply(reteach, plan, &memory, outcome, failures).await;
    remember_unsupported(&memory, input, outcome);
    applied?;
    if outcome.transient_failures > 0 {
        outcome.next_cursor = input.cursor;
    }
    Ok(())
}

/// The outcome before anything is planned: what Personio listed and what the input carries on.
fn starting_outcome(
    input: &EmployeeJobInput,
    incremental: bool,
    list: &EmployeeList,
    attributes: &AttributeRequest,
) -> EmployeeJobOutcome {
    let summary = EmployeeRunSummary {
        started_at: input.now,
        mode: if incremental {
            SyncMode::Incremental
        } else {
            SyncMode::Full
        },
        dry_run: input.dry_run,
        seen: count(list.employees.len() + list.skipped.len()),
        counts: EmployeeCounts {
            skipped: count(list.skipped.len()),
            ..EmployeeCounts::default()
        },
        ..Default::default()
    };
    EmployeeJobOutcome {
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
    }
}

/// The plan of the run, and (when it writes) the tags the resource owns after it. `listed_all`:
/// a full run that listed every user, so it knows every tag still held.
fn plan_run(
    input: &EmployeeJobInput,
    mapped: &[MappedEmployee],
    customers: &[ReteachCustomer],
    listed_all: bool,
    outcome: &mut EmployeeJobOutcome,
) -> EmployeePlan {
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
    let wanted_in_run = tags_in_run(mapped, input.now, input.tz);
    let ownership = TagOwnership::new(&input.managed_tags, wanted_in_run.iter().copied());
    let plan =
        EmployeePlan::build_with_table(&table, mapped, customers, &ownership, input.now, input.tz);
    if !input.dry_run {
        // Names no user holds and no rule gives are dropped after a full listing (a tag removed
        // in this run goes in the next full run).
        outcome.managed_tags = Some(if listed_all {
            ownership.in_use(
                wanted_in_run.iter().copied(),
                customers.iter().flat_map(|customer| &customer.tags),
            )
        } else {
            ownership.names()
        });
    }
    plan
}

/// Records what the plan skips or warns about, and tags it cannot set.
fn note_plan_findings(plan: &EmployeePlan, failures: &mut FailureLog) {
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
}

/// A dry run counts what the plan would do and samples it.
fn report_dry_run(plan: &EmployeePlan, outcome: &mut EmployeeJobOutcome) {
    // What the run would do: the plan's counts, on top of the records skipped on reading.
    let summary = &mut outcome.summary;
    for entry in &plan.entries {
        summary.add(entry);
    }
    outcome.planned = plan
        .entries
        .iter()
        .filter_map(planned_action)
        .take(MAX_PLANNED_SAMPLE)
        .collect();
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
    let lookup_failed = JobError::reteach("could not look up users in reteach");
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
    let set = FIELDS
        .iter()
        .filter(|row| row.field != ReteachField::Email && !fields.value(row.field).is_empty())
        .map(|row| row.field.name());
    ["externalId", "email"]
        .into_iter()
        .chain(set)
        .map(String::from)
        .collect()
}

#[cfg(test)]
#[path = "employee_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "employee_convergence_tests.rs"]
mod convergence_tests;

#[cfg(test)]
#[path = "employee_guard_tests.rs"]
mod guard_tests;

#[cfg(test)]
#[path = "employee_tag_tests.rs"]
mod tag_tests;
