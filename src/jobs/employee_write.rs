//! Applying an EmployeeSync plan to reteach: each entry's user write, then its tags, with a
//! bounded concurrency of [`WRITE_CONCURRENCY`]; fields reteach refuses or does not keep are
//! remembered and left out of later writes.

use std::sync::Mutex;

use futures::StreamExt;

use crate::api::{UnsupportedField, UnsupportedFieldReason};
use crate::reteach::{ReteachApi, ReteachError};
use crate::sync::employee_fields::ReteachField;
use crate::sync::unsupported_fields::{
    not_echoed, optional_field, refused_properties, source_fingerprint, source_of, Unsupported,
    Write,
};
use crate::sync::{EmployeeAction, EmployeePlan, PlannedEmployee, ReteachCustomer};

use super::count;
use super::employee_input::{EmployeeJobInput, EmployeeJobOutcome};
use super::error::JobError;
use super::failures::FailureLog;
use super::reason::{Classify, Disposition, Reason};

/// reteach writes in flight at once.
pub const WRITE_CONCURRENCY: usize = 4;

/// Writes the plan; stops when reteach refuses the credentials (every write would fail), and
/// reports an error when every write that was tried failed transiently.
pub(super) async fn apply(
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
        let mut tally = Tally {
            outcome: &mut *outcome,
            failures: &mut *failures,
            last_transient: &mut last_transient,
        };
        // An update whose only change is its tags counts once its tags went through.
        let updated = write.user_written || (write.tag_error.is_none() && !entry.tags.is_empty());
        let tags_ok = write.tag_error.is_none();
        tally.user_write(entry, write.user, updated, tags_ok)?;
        tally.tag_counts(write.tags_added, write.tags_removed);
        tally.tag_error(entry, write.tag_error)?;
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
pub(super) struct FieldMemory(Mutex<Vec<(ReteachField, Unsupported)>>);

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
    let mut attempts_left = crate::sync::field_table::configurable_fields().count();
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

/// Counts the writes of one entry into the outcome; a fatal error ends the run, a transient one
/// is remembered (see [`apply`]).
struct Tally<'a> {
    outcome: &'a mut EmployeeJobOutcome,
    failures: &'a mut FailureLog,
    last_transient: &'a mut Option<ReteachError>,
}

impl Tally<'_> {
    /// `updated`: the update went through (its user write, or its tags when only they changed);
    /// `tags_ok`: no tag request failed.
    fn user_write(
        &mut self,
        entry: &PlannedEmployee,
        user: Result<(), ReteachError>,
        updated: bool,
        tags_ok: bool,
    ) -> Result<(), JobError> {
        let summary = &mut self.outcome.summary;
        match user {
            Ok(()) => match &entry.action {
                EmployeeAction::Create(_) => {
                    summary.created += 1;
                    summary.locked += i64::from(entry.locked_after);
                }
                EmployeeAction::Update {
                    locks,
                    unlocks,
                    patch,
                    ..
                } if updated => {
                    self.outcome.linked += i64::from(patch.external_id.is_some());
                    summary.updated += 1;
                    summary.locked += i64::from(*locks);
                    summary.unlocked += i64::from(*unlocks);
                }
                // Only fields the academy refuses or does not keep had changed: nothing was sent.
                EmployeeAction::Update { .. } if tags_ok => {
                    summary.unchanged += 1;
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
                let reason = write_failure_reason(&entry.action, &error);
                self.failed(entry, reason, error);
            }
        }
        Ok(())
    }

    fn tag_counts(&mut self, added: i64, removed: i64) {
        self.outcome.summary.tags_added += added;
        self.outcome.summary.tags_removed += removed;
    }

    fn tag_error(
        &mut self,
        entry: &PlannedEmployee,
        tag_error: Option<ReteachError>,
    ) -> Result<(), JobError> {
        match tag_error {
            None => Ok(()),
            Some(error) if is_fatal(&error) => Err(JobError::Reteach {
                action: "could not change tags in reteach",
                source: error,
            }),
            Some(error) => {
                // The user is there; its tags are tried again by the next run that sees it (a
                // transient failure keeps the cursor, so that is the next run).
                self.failed(entry, tag_failure_reason(&error), error);
                Ok(())
            }
        }
    }

    fn failed(&mut self, entry: &PlannedEmployee, reason: &'static str, error: ReteachError) {
        self.outcome.summary.failed += 1;
        self.failures
            .push(Some(entry.personio_id.clone()), None, reason);
        if error.is_transient() {
            self.outcome.transient_failures += 1;
            *self.last_transient = Some(error);
        }
    }
}

/// Adds the fields this run found to the outcome, tied to the field's current mapping.
pub(super) fn remember_unsupported(
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
