//! What a run that went through tells the cluster: the `records` metric by action and the Events
//! of each kind (counts and ids only, never a name, an e-mail address or a value).

use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::events::publish;
use crate::api::{CertificateSync, EmployeeSync, UnsupportedField, UnsupportedFieldReason};
use crate::jobs::{CertificateJobOutcome, EmployeeJobOutcome, Reason};

/// How many set-aside certificate ids an Event names at most.
const SET_ASIDE_IDS_NAMED: usize = 10;

/// Metrics and Events of an EmployeeSync run: a Warning per newly unsupported field, and
/// `Synced` when the run wrote or failed a record.
pub async fn announce_employee_run(
    ctx: &Context,
    sync: &EmployeeSync,
    outcome: &EmployeeJobOutcome,
    message: &str,
) {
    let summary = &outcome.summary;
    let by_action = [
        ("created", summary.created),
        ("updated", summary.updated),
        ("failed", summary.failed),
    ];
    count_records(ctx, sync, summary.dry_run, &by_action);
    for field in &outcome.newly_unsupported {
        let note = unsupported_event_note(field);
        let reason = Reason::UnsupportedFields.as_str();
        publish(ctx, sync, EventType::Warning, reason, &note).await;
    }
    if summary.created + summary.updated + summary.failed > 0 {
        publish(
            ctx,
            sync,
            EventType::Normal,
            Reason::Synced.as_str(),
            message,
        )
        .await;
    }
}

/// Metrics and Events of a CertificateSync run: a Warning for certificates newly set aside, and
/// `Uploaded` when the run uploaded or failed one (a Warning when nothing went up).
pub async fn announce_certificate_run(
    ctx: &Context,
    sync: &CertificateSync,
    outcome: &CertificateJobOutcome,
    message: &str,
) {
    let summary = &outcome.summary;
    let by_action = [
        ("uploaded", summary.uploaded),
        ("already_present", summary.already_present),
        ("pending_pdf", summary.pending_pdf),
        ("unknown_employee", summary.unknown_employee),
        ("failed", summary.failed),
        ("set_aside", summary.set_aside),
        ("unverified", summary.unverified),
    ];
    count_records(ctx, sync, summary.dry_run, &by_action);
    if let Some(note) = set_aside_note(outcome) {
        let reason = Reason::CertificatesSetAside.as_str();
        publish(ctx, sync, EventType::Warning, reason, &note).await;
    }
    if summary.uploaded + summary.failed > 0 {
        let type_ = if summary.failed > 0 && summary.uploaded == 0 {
            EventType::Warning
        } else {
            EventType::Normal
        };
        publish(ctx, sync, type_, Reason::Uploaded.as_str(), message).await;
    }
}

/// Adds a run's counts to the `records` metric of the object's namespace and kind.
/// A dry run writes nothing, so it counts nothing.
fn count_records<K>(ctx: &Context, object: &K, dry_run: bool, by_action: &[(&str, i64)])
where
    K: Resource<DynamicType = ()>,
{
    if dry_run {
        return;
    }
    let namespace = object.namespace().unwrap_or_default();
    let kind = K::kind(&());
    for &(action, count) in by_action {
        ctx.metrics.records(&namespace, &kind, action, count);
    }
}

/// The Warning Event when certificates are newly set aside: how many, the first ids, the first
/// reason and what to do.
fn set_aside_note(outcome: &CertificateJobOutcome) -> Option<String> {
    let first = outcome.newly_set_aside.first()?;
    let total = outcome.newly_set_aside.len();
    let ids: Vec<&str> = outcome
        .newly_set_aside
        .iter()
        .take(SET_ASIDE_IDS_NAMED)
        .map(|s| s.certificate_id.as_str())
        .collect();
    let more = if total > ids.len() { ", …" } else { "" };
    Some(format!(
        "{total} certificates set aside after repeated failures (certificate ids {}{more}): {}; fix the cause, then request a run to retry",
        ids.join(", "),
        first.reason
    ))
}

/// The Warning Event when a field is first found (names the field, never a value).
pub fn unsupported_event_note(field: &UnsupportedField) -> String {
    let what = match field.reason {
        UnsupportedFieldReason::Refused => format!(
            "reteach refused the field {0} (\"property {0} should not exist\")",
            field.field
        ),
        UnsupportedFieldReason::NotKept => format!(
            "reteach accepted the field {} but did not keep it",
            field.field
        ),
    };
    format!(
        "{what}; it is left out of writes and comparisons from now on (status.unsupportedFields). \
         Set spec.mapping.{}: {{unmapped: true}} to stop reading it; a changed mapping tries it again",
        field.field
    )
}
