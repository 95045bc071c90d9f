//! Kubernetes Events for runs that changed something or failed. Messages carry counts and ids only.

use kube::runtime::events::{Event, EventType};
use kube::Resource;

use super::context::Context;

/// Publishes an event about `object`; a failure to publish is logged, never fatal.
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
    if let Err(error) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(%error, "could not publish event");
    }
}
