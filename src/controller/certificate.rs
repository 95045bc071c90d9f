//! Reconciler of `CertificateSync`: due check → precondition (EmployeeSync succeeded) → clients
//! (the EmployeeSync's credentials) → category → exactly-once job with the ledger checkpointed in
//! status → status and events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::capabilities::probe_when_due;
use super::conditions::Health;
use super::context::Context;
use super::employee::{naming_secrets, upstream_clients};
use super::events::publish;
use super::failure::RunFailure;
use super::handover::{process_writer_prefix, same_checkpoint};
use super::lifecycle::{chrono_duration, due_run, DueRun, RunContext};
use super::metrics::ResourceLabels;
use super::schedule::DueReason;
use super::status::{apply_status, LEDGER_FIELD_MANAGER};
use super::ReconcileError;
use crate::api::{
    CertificateLedgerStatus, CertificateSync, CertificateSyncStatus, EmployeeSync,
    MAX_STATUS_FAILURES,
};
use crate::jobs::{
    resolve_category, run_certificate_sync, CertificateJobInput, CertificateJobOutcome,
    CertificateRunRequest, JobError, LedgerError, LedgerStore,
};
use crate::preflight::Kind;
use crate::sync::duration::{parse_duration_between, parse_interval, MAX_FULL_RESYNC_INTERVAL};

/// Kind label of metrics and logs.
pub const KIND: &str = "CertificateSync";
/// Ready reason while the referenced EmployeeSync has not succeeded yet.
pub const WAITING_FOR_EMPLOYEE_SYNC: &str = "WaitingForEmployeeSync";
/// Status keys owned by the ledger field manager.
const LEDGER_KEYS: [&str; 1] = ["ledger"];

/// Persists the ledger in `status.ledger` before every upload, together with
/// `status.uploadedTotal` so far: a process killed mid-run leaves an exact total behind (the main
/// status apply writes the same value when the run ends).
///
/// Fencing: a run first claims the ledger with a token of its own (`ledger.writer`); every later
/// write is a JSON patch whose `test` operation requires that token still to be there. A replica
/// that lost its Lease while frozen cannot write over the ledger of the run that took over.
struct StatusLedger {
    api: Api<CertificateSync>,
    name: String,
    /// `status.uploadedTotal` when the run started.
    uploaded_before: i64,
    /// This run's token.
    writer: String,
}

impl StatusLedger {
    /// Makes this run the ledger's writer (unconditionally: only the Lease holder runs) and
    /// returns the ledger as it stands after the claim.
    async fn claim(&self) -> Result<CertificateLedgerStatus, kube::Error> {
        let patch = json!({"status": {"ledger": {"writer": self.writer}}});
        self.api
            .patch_status(
                &self.name,
                &PatchParams::apply(LEDGER_FIELD_MANAGER),
                &Patch::Merge(&patch),
            )
            .await
            .map(|sync| sync.status.unwrap_or_default().ledger)
    }
}

#[async_trait]
impl LedgerStore for StatusLedger {
    async fn save(
        &self,
        ledger: &CertificateLedgerStatus,
        uploaded: i64,
    ) -> Result<(), LedgerError> {
        let mut ledger = ledger.clone();
        ledger.writer = Some(self.writer.clone());
        let operations = json!([
            {"op": "test", "path": "/status/ledger/writer", "value": self.writer},
            {"op": "add", "path": "/status/ledger", "value": ledger},
            {"op": "add", "path": "/status/uploadedTotal",
             "value": self.uploaded_before.saturating_add(uploaded)},
        ]);
        let patch: json_patch::Patch =
            serde_json::from_value(operations).map_err(|e| LedgerError::Write(e.to_string()))?;
        let params = PatchParams {
            field_manager: Some(LEDGER_FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        match self
            .api
            .patch_status(&self.name, &params, &Patch::<()>::Json(patch))
            .await
        {
            Ok(_) => Ok(()),
            // The `test` failed: another run has claimed the ledger.
            Err(kube::Error::Api(status)) if status.code == 422 || status.code == 409 => {
                Err(LedgerError::Fenced)
            }
            Err(error) => Err(LedgerError::Write(error.to_string())),
        }
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
    let resource = format!("{namespace}/{name}");
    if let Some(wait) = ctx
        .handover
        .wait(&resource, &previous.ledger, ctx.clock.now())
    {
        tracing::info!(namespace, name, "another process may still be uploading a certificate of this resource; taking it over once that has ended");
        return Ok(Action::requeue(wait));
    }
    let labels = ResourceLabels {
        kind: KIND.into(),
        namespace: namespace.clone(),
        name: name.clone(),
    };
    let started = Instant::now();
    let mut status = previous.clone();
    let settings = RunSettings::from_spec(&sync.spec, ctx.tunables.minimum_interval);
    let mut capabilities = None;
    let result = match &settings {
        Err(failure) => Err((failure.clone(), None)),
        Ok(settings) => {
            let run_settings = RunInputs {
                reason,
                settings,
                capabilities: &mut capabilities,
            };
            execute(&ctx, &api, &namespace, &sync, &previous, &run, run_settings).await
        }
    };
    let interval = settings
        .as_ref()
        .map_or(Duration::from_secs(1800), |s| s.interval);
    if let Err((RunFailure::Fenced, _)) = &result {
        // Another replica runs this resource now; its status is the truth.
        tracing::warn!(
            namespace,
            name,
            "lost the certificate ledger to another run; not writing status"
        );
        return Ok(Action::await_change());
    }
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
    if let Some(capabilities) = capabilities {
        status.capabilities = capabilities;
    }
    if status != previous {
        apply_status(&api, &name, &status, &LEDGER_KEYS).await?;
    }
    Ok(Action::requeue(delay))
}

/// The validated spec values a run needs.
struct RunSettings {
    interval: Duration,
    full_resync_interval: Duration,
}

impl RunSettings {
    fn from_spec(
        spec: &crate::api::CertificateSyncSpec,
        minimum_interval: Duration,
    ) -> Result<Self, RunFailure> {
        let invalid = |field: &str, error: String| {
            RunFailure::stalled("InvalidSpec", format!("spec.{field}: {error}"))
        };
        let interval = parse_interval(&spec.interval, minimum_interval)
            .map_err(|e| invalid("interval", e.to_string()))?;
        let full_resync_interval = parse_duration_between(
            &spec.full_resync_interval,
            Duration::from_secs(3600),
            MAX_FULL_RESYNC_INTERVAL,
        )
        .map_err(|e| invalid("fullResyncInterval", e.to_string()))?;
        Ok(Self {
            interval,
            full_resync_interval,
        })
    }
}

/// Longest a run goes on before it saves its progress and leaves the rest to the next run.
const RUN_DEADLINE: Duration = Duration::from_secs(3600);

/// What a run knows besides the object: why it runs, its validated settings, and where the
/// preflight findings go.
struct RunInputs<'a> {
    reason: DueReason,
    settings: &'a RunSettings,
    capabilities: &'a mut Option<Vec<crate::api::CapabilityCheck>>,
}

async fn execute(
    ctx: &Context,
    api: &Api<CertificateSync>,
    namespace: &str,
    sync: &CertificateSync,
    previous: &CertificateSyncStatus,
    run: &RunContext,
    inputs: RunInputs<'_>,
) -> Result<(CertificateJobOutcome, i64), (RunFailure, Option<CertificateJobOutcome>)> {
    let RunInputs {
        reason,
        settings,
        capabilities,
    } = inputs;
    let no_partial = |failure: RunFailure| (failure, None);
    let employee_sync = employee_sync(ctx, namespace, sync)
        .await
        .map_err(no_partial)?;
    let time_zone = employee_sync
        .spec
        .time_zone
        .parse::<chrono_tz::Tz>()
        .map_err(|_| {
            no_partial(RunFailure::stalled(
                "InvalidSpec",
                format!(
                    "EmployeeSync {}: spec.timeZone {:?} is not an IANA time zone (e.g. Europe/Berlin); the certificate dates follow it",
                    employee_sync.name_any(),
                    employee_sync.spec.time_zone
                ),
            ))
        })?;
    let (personio, reteach) = upstream_clients(ctx, namespace, &employee_sync)
        .await
        .map_err(no_partial)?;
    *capabilities = probe_when_due(
        ctx,
        sync,
        Kind::CertificateSync,
        namespace,
        &sync.name_any(),
        &previous.capabilities,
        reason == DueReason::Requested,
    )
    .await;
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
        writer: writer_token(),
    };
    if !sync.spec.dry_run {
        let claimed = store
            .claim()
            .await
            .map_err(|e| no_partial(RunFailure::transient("StatusWriteFailed", e.to_string())))?;
        if !same_checkpoint(&previous.ledger, &claimed) {
            // Another process wrote a checkpoint after this run read the ledger (see `handover`).
            return Err(no_partial(RunFailure::Fenced));
        }
    }
    let request = CertificateRunRequest {
        now: run.now,
        tz: time_zone,
        category_id,
        full_resync_interval: chrono_duration(settings.full_resync_interval),
        requested: reason == DueReason::Requested,
        linked_since: employee_sync.status.as_ref().and_then(|s| s.last_link_time),
    };
    let mut input = CertificateJobInput::new(
        &sync.spec,
        &previous.ledger,
        request,
        &store,
        ctx.shutdown.clone(),
    );
    input.overlap = ctx.tunables.certificate_overlap;
    input.deadline = Some(tokio::time::Instant::now() + RUN_DEADLINE);
    input.fence = ctx.fence.clone();
    match run_certificate_sync(personio.as_ref(), reteach.as_ref(), &input).await {
        Ok(outcome) => Ok((outcome, category_id)),
        Err(error) if matches!(error.root(), JobError::Ledger(LedgerError::Fenced)) => {
            Err((RunFailure::Fenced, None))
        }
        Err(error) => {
            let partial = error.partial_outcome().cloned();
            Err((failed(error), partial))
        }
    }
}

/// A token naming this run: the pod (or process) and a random part.
fn writer_token() -> String {
    format!("{}{:016x}", process_writer_prefix(), rand::random::<u64>())
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

/// What a run that went through means for `Ready` (pure): a run that could not make progress
/// is never `Succeeded`.
pub fn health_after(outcome: &CertificateJobOutcome, ledger: &CertificateLedgerStatus) -> Health {
    let summary = &outcome.summary;
    let counts = format!(
        "{}{} certificates handled{}: {} uploaded, {} already present, {} waiting for a PDF, {} of users without a Personio id, {} failed",
        if summary.dry_run { "dry run: " } else { "" },
        summary.found,
        if summary.full_pass { " (full pass)" } else { "" },
        summary.uploaded,
        summary.already_present,
        summary.pending_pdf,
        summary.unknown_employee,
        summary.failed
    );
    let mut notes = Vec::new();
    if let Some(why) = outcome.stopped_early {
        notes.push(why.to_string());
    }
    if outcome.not_recorded > 0 {
        notes.push(format!(
            "{} waiting certificates did not fit into status.ledger.pending; the next full pass finds them",
            outcome.not_recorded
        ));
    }
    if summary.deferred > 0 {
        notes.push(format!(
            "{} completions dated in the future wait for their date",
            summary.deferred
        ));
    }
    let message = |extra: Option<String>| {
        let mut parts = vec![counts.clone()];
        parts.extend(extra);
        parts.extend(notes.iter().cloned());
        parts.join("; ")
    };
    let progress = summary.uploaded + summary.already_present > 0;
    if let Some(why) = &outcome.listing_unavailable {
        return Health::NotReady {
            reason: REASON_LISTING_UNAVAILABLE.into(),
            message: message(Some(format!(
                "{} certificates could not be checked for an earlier upload and were left alone: {why}; grant the credential read access to documents (v2 document management) and run `reteach-personio-operator preflight`",
                summary.unverified
            ))),
        };
    }
    if summary.failed > 0 && !progress {
        return Health::NotReady {
            reason: REASON_NO_PROGRESS.into(),
            message: message(Some(format!(
                "no certificate could be delivered; each is retried in later runs and set aside after {} attempts (see status.failures)",
                outcome_max_attempts_hint(ledger)
            ))),
        };
    }
    if !ledger.set_aside.is_empty() {
        return Health::NotReady {
            reason: REASON_SET_ASIDE.into(),
            message: message(Some(format!(
                "{} certificates set aside after repeated failures (status.ledger.setAside); fix the cause, then request a run (reconcile.fluxcd.io/requestedAt) to retry them",
                ledger.set_aside.len()
            ))),
        };
    }
    let waiting_pdf = ledger
        .pending
        .iter()
        .filter(|p| p.reason == crate::sync::certificate_ledger::REASON_PDF_PENDING)
        .count();
    let reason = if summary.failed > 0 {
        REASON_RETRYING
    } else if waiting_pdf > 0 {
        REASON_WAITING_FOR_PDF
    } else {
        "Succeeded"
    };
    Health::Ready {
        reason: reason.into(),
        message: message(None),
    }
}

fn outcome_max_attempts_hint(ledger: &CertificateLedgerStatus) -> String {
    ledger.pending.iter().map(|p| p.attempts).max().map_or_else(
        || "spec.maxAttempts".into(),
        |n| format!("spec.maxAttempts (now at {n})"),
    )
}

/// Ready=False: a run could not deliver any certificate.
pub const REASON_NO_PROGRESS: &str = "NoProgress";
/// Ready=False: certificates were set aside and wait for a human.
pub const REASON_SET_ASIDE: &str = "CertificatesSetAside";
/// Ready=False: Personio's document list cannot be read, so nothing can be checked.
pub const REASON_LISTING_UNAVAILABLE: &str = "DocumentListingUnavailable";
/// Ready=True: everything owed is in Personio except PDFs reteach has not generated yet.
pub const REASON_WAITING_FOR_PDF: &str = "WaitingForPdf";
/// Ready=True: progress made, some certificates failed and are retried.
pub const REASON_RETRYING: &str = "PartiallySucceeded";

/// The status after a run that went through (pure; the demo prints the same thing).
pub fn status_after_success(
    status: &mut CertificateSyncStatus,
    run: &RunContext,
    interval: Duration,
    outcome: &CertificateJobOutcome,
    category_id: i64,
) -> (Duration, String) {
    let summary = &outcome.summary;
    let ledger = if summary.dry_run {
        &status.ledger
    } else {
        &outcome.ledger
    };
    let health = health_after(outcome, ledger);
    let message = match &health {
        Health::Ready { message, .. }
        | Health::NotReady { message, .. }
        | Health::Stalled { message, .. }
        | Health::Reconciling { message } => message.clone(),
    };
    let delay = run.complete(status, &health, interval);
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
        for (action, count) in [
            ("uploaded", summary.uploaded),
            ("already_present", summary.already_present),
            ("pending_pdf", summary.pending_pdf),
            ("unknown_employee", summary.unknown_employee),
            ("failed", summary.failed),
            ("set_aside", summary.set_aside),
            ("unverified", summary.unverified),
        ] {
            ctx.metrics.records(KIND, action, count);
        }
    }
    tracing::info!(
        namespace = labels.namespace,
        name = labels.name,
        "{message}"
    );
    if !outcome.newly_set_aside.is_empty() {
        let ids: Vec<&str> = outcome
            .newly_set_aside
            .iter()
            .take(10)
            .map(|s| s.certificate_id.as_str())
            .collect();
        let note = format!(
            "{} certificates set aside after repeated failures (certificate ids {}{}): {}; fix the cause, then request a run to retry",
            outcome.newly_set_aside.len(),
            ids.join(", "),
            if outcome.newly_set_aside.len() > ids.len() { ", …" } else { "" },
            outcome.newly_set_aside[0].reason
        );
        publish(ctx, sync, EventType::Warning, REASON_SET_ASIDE, &note).await;
    }
    if summary.uploaded + summary.failed > 0 {
        let type_ = if summary.failed > 0 && summary.uploaded == 0 {
            EventType::Warning
        } else {
            EventType::Normal
        };
        publish(ctx, sync, type_, "Uploaded", &message).await;
    }
    delay
}
