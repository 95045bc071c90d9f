//! Kubernetes Events for runs that changed something or failed. Messages carry counts and ids only.

use kube::runtime::events::{Event, EventType, Recorder};
use kube::Resource;

use super::context::Context;

/// Publishes an event about `object`; a failure to publish is logged, never fatal.
///
/// Each call gets a fresh `Recorder`: a shared one folds events with the same reason into one
/// series and keeps the *first* note, so "Uploaded: 1 uploaded" would show as a repeat of the
/// backfill's "3 uploaded". Events are published once per run that changed something, or when a
/// failure changes the status, so there is nothing to fold.
pub async fn publish<K>(ctx: &Context, object: &K, type_: EventType, reason: &str, note: &str)
where
    K: Resource<DynamicType = ()>,
{
    let event = Event {
        type_,
        reason: reason.chars().take(128).collect(),
        note: Some(note.chars().take(1000).collect()),
        action: "Sync".into(),
        secondary: None,
    };
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    if let Err(error) = recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(%error, "could not publish event");
    }
}
