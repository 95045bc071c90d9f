//! The preflight probes (`reteach-personio-operator preflight`) run by the controllers before a
//! resource's first run and on every requested run: their findings become
//! `status.capabilities`, so a missing right or attribute is named before anything is half
//! done, and a missing required one is announced by a Warning Event (`PreflightMissing`). The run
//! itself goes on and reports its own, more precise error if it hits the gap.

use kube::runtime::events::EventType;
use kube::Resource;

use super::context::Context;
use super::events::publish;
use crate::api::CapabilityCheck;
use crate::preflight::status::{capability_status, stalled_message};
use crate::preflight::{probe_resource, Kind};

/// Event reason when a required capability is missing.
pub const PREFLIGHT_MISSING: &str = crate::jobs::Reason::PreflightMissing.as_str();

/// Probes when due (no capabilities recorded yet, or a requested run); `None` when not due, turned
/// off by the operator's `--skip-preflight`, or when the probes could not run at all (logged).
pub async fn probe_when_due<K>(
    ctx: &Context,
    object: &K,
    kind: Kind,
    namespace: &str,
    name: &str,
    previous: &[CapabilityCheck],
    requested: bool,
) -> Option<Vec<CapabilityCheck>>
where
    K: Resource<DynamicType = ()>,
{
    if !ctx.tunables.preflight || !(previous.is_empty() || requested) {
        return None;
    }
    let report = match probe_resource(ctx.client.clone(), namespace, kind, name).await {
        Ok(report) => report,
        Err(error) => {
            tracing::warn!(namespace, name, %error, "preflight probes could not run");
            return None;
        }
    };
    if let Some(message) = stalled_message(&report) {
        publish(ctx, object, EventType::Warning, PREFLIGHT_MISSING, &message).await;
    }
    Some(capability_status(&report))
}
