//! One resource must never stop the others: a panic while reconciling it (a bug, a value no check
//! foresaw) is caught at the one place both controllers call into, the resource is marked
//! `Stalled` with reason `InternalError`, and it is looked at again only slowly.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::context::Context;
use super::events::publish;
use super::lifecycle::{write_status, Scheduled, SyncStatus};
use super::ReconcileError;
use crate::jobs::run_failure::RunFailure;
use crate::jobs::run_status::RunContext;
use crate::jobs::Reason;
use crate::metrics::ResourceLabels;

/// Condition reason of a resource whose reconcile panicked.
pub const INTERNAL_ERROR: &str = Reason::InternalError.as_str();

/// The condition message of a panicked reconcile. Fixed on purpose: a panic message may carry
/// anything (a value from upstream, a name), and status is readable by every resource author.
pub const INTERNAL_ERROR_MESSAGE: &str = "the operator hit an internal error while syncing this \
    resource and stopped working on it; the other resources are not affected. The operator's log \
    has the details (\"reconcile panicked\"); please report it. Changing the resource or the \
    reconcile.fluxcd.io/requestedAt annotation retries at once";

/// How long a panicked resource waits before it is tried again (unless it changes).
pub const PANIC_RECHECK: Duration = Duration::from_secs(600);

/// Runs `reconcile` for `object`; a panic becomes a `Stalled`/`InternalError` status instead of
/// unwinding into the controller (which would stop every resource of the process).
pub async fn reconcile_guarded<K, F, Fut>(
    kind: &'static str,
    object: Arc<K>,
    ctx: Arc<Context>,
    reconcile: F,
) -> Result<Action, ReconcileError>
where
    K: Scheduled<Scope = k8s_openapi::NamespaceResourceScope> + Send + Sync + 'static,
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: Future<Output = Result<Action, ReconcileError>>,
{
    let run = AssertUnwindSafe(async { reconcile(object.clone(), ctx.clone()).await });
    match run.catch_unwind().await {
        Ok(result) => result,
        Err(_) => {
            // The panic message itself went to stderr through the panic hook.
            tracing::error!(
                kind,
                namespace = object.namespace().unwrap_or_default(),
                name = object.name_any(),
                "reconcile panicked; marking the resource Stalled"
            );
            mark_internal_error(kind, object.as_ref(), &ctx).await
        }
    }
}

async fn mark_internal_error<K>(
    kind: &'static str,
    cached: &K,
    ctx: &Context,
) -> Result<Action, ReconcileError>
where
    K: Scheduled<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let namespace = cached.namespace().unwrap_or_default();
    let name = cached.name_any();
    ctx.metrics.run_finished(
        &ResourceLabels {
            kind: kind.into(),
            namespace: namespace.clone(),
            name: name.clone(),
        },
        Duration::ZERO,
        Some(INTERNAL_ERROR),
    );
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    // The run may have written `Reconciling` before it panicked: build on the stored status.
    let Some(object) = api.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    let previous = object.current_status().cloned().unwrap_or_default();
    let mut status = previous.clone();
    let run = RunContext::of(&object, ctx.clock.now());
    let failure = RunFailure::stalled(Reason::InternalError, INTERNAL_ERROR_MESSAGE);
    run.fail(
        status.common_mut(),
        &failure,
        PANIC_RECHECK,
        ctx.tunables.blocked_recheck,
        ctx.clock.now(),
    );
    if status != previous {
        write_status(&api, &name, &status).await?;
        publish(
            ctx,
            &object,
            EventType::Warning,
            INTERNAL_ERROR,
            INTERNAL_ERROR_MESSAGE,
        )
        .await;
    }
    Ok(Action::requeue(
        PANIC_RECHECK.max(ctx.tunables.blocked_recheck),
    ))
}
