//! What a run that went through tells the cluster, shared by the kinds (each kind's `announce`
//! says which): the `records` metric by action and the notes of its Events (counts and ids only,
//! never a name, an e-mail address or a value).

use kube::{Resource, ResourceExt};

use super::context::Context;
use crate::api::{UnsupportedField, UnsupportedFieldReason};
use crate::jobs::CertificateJobOutcome;

/// How many set-aside certificate ids an Event names at most.
const SET_ASIDE_IDS_NAMED: usize = 10;

/// Adds a run's counts to the `records` metric of the object's namespace and kind.
/// A dry run writes nothing, so it counts nothing.
pub(super) fn count_records<K>(ctx: &Context, object: &K, dry_run: bool, by_action: &[(&str, i64)])
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
pub(super) fn set_aside_note(outcome: &CertificateJobOutcome) -> Option<String> {
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
pub(super) fn unsupported_event_note(field: &UnsupportedField) -> String {
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
