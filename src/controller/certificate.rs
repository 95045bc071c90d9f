//! Reconciler of `CertificateSync`: due check → precondition (EmployeeSync succeeded) → clients
//! (the EmployeeSync's credentials) → category → exactly-once job with the ledger checkpointed in
//! status → status and events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::context::Context;
use super::employee::{naming_secrets, upstream_clients};
use super::events::publish;
use super::failure::RunFailure;
use super::lifecycle::{due_run, DueRun, RunContext};
use super::metrics::ResourceLabels;
use super::schedule::DueReason;
use super::status::{apply_raw, apply_status, LEDGER_FIELD_MANAGER};
use super::ReconcileError;
use crate::api::{
    CertificateLedgerStatus, CertificateSync, CertificateSyncStatus, EmployeeSync,
    MAX_STATUS_FAILURES,
};
use crate::jobs::{
    resolve_category, run_certificate_sync, CertificateJobInput, CertificateJobOutcome,
    LedgerError, LedgerStore,
};
use crate::sync::duration::parse_interval;

/// Kind label of metrics and logs.
pub const KIND: &str = "CertificateSync";
/// Ready reason while the referenced EmployeeSync has not succeeded yet.
pub const WAITING_FOR_EMPLOYEE_SYNC: &str = "WaitingForEmployeeSync";
/// Status keys owned by the ledger field manager.
const LEDGER_KEYS: [&str; 1] = ["ledger"];

/// Persists the ledger in `status.ledger` by server-side apply under its own field manager, before
/// every upload, together with `status.uploadedTotal` so far: a process killed mid-run leaves an
/// exact total behind (the main status apply writes the same value when the run ends).
struct StatusLedger {
    api: Api<CertificateSync>,
    name: String,
    /// `status.uploadedTotal` when the run started.
    uploaded_before: i64,
}

#[async_trait]
impl LedgerStore for StatusLedger {
    async fn save(
        &self,
        ledger: &CertificateLedgerStatus,
        uploaded: i64,
    ) -> Result<(), LedgerError> {
        let status = json!({
            "ledger": ledger,
            "uploadedTotal": self.uploaded_before.saturating_add(uploaded),
        });
        apply_raw(&self.api, &self.name, LEDGER_FIELD_MANAGER, status)
            .await
            .map_err(|e| LedgerError(e.to_string()))
    }
}

/// Reconciles one CertificateSync.
pub async fn reconcile(
    sync: Arc<CertificateSync>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let namespace = sync.namespace().unwrap_or_default();
    let name = sync.name_any();
    let waiting = Some(WAITING_FOR_EMPLOYEE_SYNC);
    // Fresh, not cached: the ledger and uploadedTotal of a run must build on the latest ones.
    let api: Api<CertificateSync> = Api::namespaced(ctx.client.clone(), &namespace);
    let DueRun {
        object: sync,
        run,
        previous,
        reason,
    } = match due_run(sync.as_ref(), &api, ctx.clock.as_ref(), waiting).await? {
        Ok(due) => due,
        Err(action) => return Ok(action),
    };
    let labels = ResourceLabels {
        kind: KIND.into(),
        namespace: namespace.clone(),
        name: name.clone(),
    };
    let started = Instant::now();
    let mut status = previous.clone();
    let interval = parse_interval(&sync.spec.interval, ctx.tunables.minimum_interval)
        .map_err(|e| RunFailure::stalled("InvalidSpec", format!("spec.interval: {e}")));
    let result = match &interval {
        Err(failure) => Err((failure.clone(), None)),
        Ok(_) => execute(&ctx, &api, &namespace, &sync, &previous, &run, reason).await,
    };
    let interval = interval.unwrap_or(Duration::from_secs(1800));
    let (delay, failure) = match result {
        Err((failure, partial)) => {
            // Uploads happened before the run stopped: count them.
            if let Some(partial) = partial {
                status.uploaded_total += partial.uploaded_total_delta;
                status.last_run = Some(partial.summary.clone());
                status.failures = partial
                    .failures
                    .into_iter()
                    .take(MAX_STATUS_FAILURES)
                    .collect();
            }
            let delay = run.fail(
                &mut status,
                &failure,
                interval,
                ctx.tunables.blocked_recheck,
                ctx.clock.now(),
            );
            (delay, Some(failure))
        }
        Ok((mut outcome, category_id)) => {
            outcome.summary.finished_at = Some(ctx.clock.now());
            let delay = record_success(
                &mut status,
                &run,
                interval,
                outcome,
                category_id,
                &ctx,
                &labels,
                &sync,
            )
            .await;
            (delay, None)
        }
    };
    if let Some(failure) = &failure {
        if !matches!(failure, RunFailure::Waiting { .. }) {
            tracing::warn!(
                namespace,
                name,
                reason = failure.reason(),
                "certificate sync failed: {}",
                failure.message()
            );
        }
        if status.conditions != previous.conditions {
            let type_ = if matches!(failure, RunFailure::Waiting { .. }) {
                EventType::Normal
            } else {
                EventType::Warning
            };
            publish(&ctx, &sync, type_, failure.reason(), failure.message()).await;
        }
    }
    if !matches!(failure, Some(RunFailure::Waiting { .. })) {
        ctx.metrics.run_finished(
            &labels,
            started.elapsed(),
            failure.as_ref().map(RunFailure::reason),
        );
    }
    if status != previous {
        apply_status(&api, &name, &status, &LEDGER_KEYS).await?;
    }
    Ok(Action::requeue(delay))
}

async fn execute(
    ctx: &Context,
    api: &Api<CertificateSync>,
    namespace: &str,
    sync: &CertificateSync,
    previous: &CertificateSyncStatus,
    run: &RunContext,
    reason: DueReason,
) -> Result<(CertificateJobOutcome, i64), (RunFailure, Option<CertificateJobOutcome>)> {
    let no_partial = |failure: RunFailure| (failure, None);
    let employee_sync = employee_sync(ctx, namespace, sync)
        .await
        .map_err(no_partial)?;
    let time_zone = employee_sync
        .spec
        .time_zone
        .parse::<chrono_tz::Tz>()
        .unwrap_or(chrono_tz::UTC);
    let (personio, reteach) = upstream_clients(ctx, namespace, &employee_sync)
        .await
        .map_err(no_partial)?;
    let failed = |error| naming_secrets(RunFailure::from(error), namespace, &employee_sync);
    let category_id = resolve_category(personio.as_ref(), &sync.spec.document_category)
        .await
        .map_err(|e| no_partial(failed(e)))?;
    if reason != DueReason::Blocked {
        let mut in_progress = previous.clone();
        run.reconciling(&mut in_progress, "uploading certificates");
        apply_status(api, &sync.name_any(), &in_progress, &LEDGER_KEYS)
            .await
            .map_err(|e| no_partial(RunFailure::transient("StatusWriteFailed", e.to_string())))?;
    }
    let store = StatusLedger {
        api: api.clone(),
        name: sync.name_any(),
        uploaded_before: previous.uploaded_total,
    };
    let input = CertificateJobInput {
        now: run.now,
        tz: time_zone,
        dry_run: sync.spec.dry_run,
        category_id,
        title_template: sync.spec.title.clone(),
        overlap: ctx.tunables.certificate_overlap,
        ledger: previous.ledger.clone(),
        store: &store,
        cancel: ctx.shutdown.clone(),
        batch_size: crate::sync::candidate_batch::DEFAULT_BATCH_SIZE,
    };
    match run_certificate_sync(personio.as_ref(), reteach.as_ref(), &input).await {
        Ok(outcome) => Ok((outcome, category_id)),
        Err(error) => {
            let partial = error.partial_outcome().cloned();
            Err((failed(error), partial))
        }
    }
}

/// The referenced EmployeeSync, once it has succeeded; otherwise why not.
async fn employee_sync(
    ctx: &Context,
    namespace: &str,
    sync: &CertificateSync,
) -> Result<EmployeeSync, RunFailure> {
    let reference = &sync.spec.employee_sync_ref.name;
    let api: Api<EmployeeSync> = Api::namespaced(ctx.client.clone(), namespace);
    let employee_sync = api
        .get_opt(reference)
        .await
        .map_err(|e| RunFailure::transient("KubernetesApiError", e.to_string()))?
        .ok_or_else(|| {
            RunFailure::stalled(
                "EmployeeSyncNotFound",
                format!(
                    "EmployeeSync {namespace}/{reference} not found; create it or fix spec.employeeSyncRef.name"
                ),
            )
        })?;
    let succeeded = employee_sync
        .status
        .as_ref()
        .is_some_and(|s| s.last_successful_sync_time.is_some());
    if !succeeded {
        return Err(RunFailure::Waiting {
            reason: WAITING_FOR_EMPLOYEE_SYNC.into(),
            message: format!(
                "waiting for EmployeeSync {reference} to succeed once before uploading certificates"
            ),
        });
    }
    Ok(employee_sync)
}

/// The status after a successful run (pure; the demo prints the same thing).
pub fn status_after_success(
    status: &mut CertificateSyncStatus,
    run: &RunContext,
    interval: Duration,
    outcome: &CertificateJobOutcome,
    category_id: i64,
) -> (Duration, String) {
    let summary = &outcome.summary;
    let message = format!(
        "{}{} certificates found: {} uploaded, {} already present, {} pending PDF, {} unknown employee, {} failed",
        if summary.dry_run { "dry run: " } else { "" },
        summary.found,
        summary.uploaded,
        summary.already_present,
        summary.pending_pdf,
        summary.unknown_employee,
        summary.failed
    );
    let delay = run.succeed(status, message.clone(), interval);
    status.category_id = Some(category_id);
    if !summary.dry_run {
        status.ledger = outcome.ledger.clone();
        status.uploaded_total += outcome.uploaded_total_delta;
    }
    status.failures = outcome
        .failures
        .iter()
        .take(MAX_STATUS_FAILURES)
        .cloned()
        .collect();
    status.last_run = Some(summary.clone());
    (delay, message)
}

#[allow(clippy::too_many_arguments)]
async fn record_success(
    status: &mut CertificateSyncStatus,
    run: &RunContext,
    interval: Duration,
    outcome: CertificateJobOutcome,
    category_id: i64,
    ctx: &Context,
    labels: &ResourceLabels,
    sync: &CertificateSync,
) -> Duration {
    let (delay, message) = status_after_success(status, run, interval, &outcome, category_id);
    let summary = &outcome.summary;
    if !summary.dry_run {
        ctx.metrics.records(KIND, "uploaded", summary.uploaded);
        ctx.metrics.records(KIND, "failed", summary.failed);
    }
    tracing::info!(
        namespace = labels.namespace,
        name = labels.name,
        "{message}"
    );
    if summary.uploaded + summary.failed > 0 {
        publish(ctx, sync, EventType::Normal, "Uploaded", &message).await;
    }
    delay
}
