//! The preflight probes (`reteach-personio-operator preflight`) run by the controllers before a
//! resource's first run and on every requested run: their findings become
//! `status.capabilities`, so a missing right or attribute is named before anything is half
//! done, and a missing required one is announced by a Warning Event (`PreflightMissing`). The run
//! itself goes on and reports its own, more precise error if it hits the gap.
//!
//! The probes use the spec and credentials the run has just checked against the upstream policy
//! and read ([`crate::preflight::Subject::checked`]), never a second read of the resource, its
//! EmployeeSync or their Secrets, and the operator's own upstream and download policies.

use kube::runtime::events::EventType;
use kube::Resource;

use super::context::Context;
use super::events::publish;
use crate::api::CapabilityCheck;
use crate::preflight::status::{capability_status, stalled_message};
use crate::preflight::{preflight, ProbeOptions, Subject};

/// Event reason when a required capability is missing.
pub const PREFLIGHT_MISSING: &str = crate::jobs::Reason::PreflightMissing.as_str();

/// Probes `subject` when due (no capabilities recorded yet, or a requested run); `None` when not
/// due or turned off by the operator's `--skip-preflight`. `subject` is only built when due.
pub async fn probe_when_due<K>(
    ctx: &Context,
    object: &K,
    previous: &[CapabilityCheck],
    requested: bool,
    subject: impl FnOnce() -> Subject,
) -> Option<Vec<CapabilityCheck>>
where
    K: Resource<DynamicType = ()>,
{
    if !ctx.tunables.preflight || !(previous.is_empty() || requested) {
        return None;
    }
    let options = ProbeOptions {
        upstream: ctx.tunables.upstream.clone(),
        downloads: ctx.tunables.downloads.clone(),
        ..ProbeOptions::default()
    };
    let report = preflight(&subject(), None, &options).await;
    if let Some(message) = stalled_message(&report) {
        publish(ctx, object, EventType::Warning, PREFLIGHT_MISSING, &message).await;
    }
    Some(capability_status(&report))
}
