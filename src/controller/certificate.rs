//! Reconciler of `CertificateSync`: due check → precondition (EmployeeSync succeeded) → clients
//! (the EmployeeSync's credentials) → category → exactly-once job with the ledger checkpointed in
//! status → status and events.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::conditions::Health;
use super::context::Context;
use super::events::publish;
use super::failure::RunFailure;
use super::handover::{process_writer_prefix, same_checkpoint};
use super::lifecycle::{chrono_duration, RunContext};
use super::reconcile::{preflight, RunInputs, RunStop, SyncKind};
use super::schedule::DueReason;
use super::status::LEDGER_FIELD_MANAGER;
use super::upstreams::{checked_upstreams, naming_secrets};
use super::ReconcileError;
use crate::api::{
    CapabilityCheck, CertificateLedgerStatus, CertificateSync, CertificateSyncStatus, EmployeeSync,
};
use crate::jobs::bookkeeping::{record_certificate_outcome, record_certificate_partial};
use crate::jobs::settings::{CertificateSettings, SpecError, TimeZone};
use crate::jobs::{
    resolve_category, run_certificate_sync, CertificateJobInput, CertificateJobOutcome,
    CertificateRunRequest, JobError, LedgerError, LedgerStore, Reason,
};
use crate::personio::PersonioApi;
use crate::reteach::ReteachApi;

/// Kind label of metrics and logs.
pub const KIND: &str = "CertificateSync";
/// Ready reason while the referenced EmployeeSync has not succeeded yet.
pub const WAITING_FOR_EMPLOYEE_SYNC: &str = Reason::WaitingForEmployeeSync.as_str();

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
    super::reconcile::reconcile(sync, ctx).await
}

/// Longest a run goes on before it saves its progress and leaves the rest to the next run.
const RUN_DEADLINE: Duration = Duration::from_secs(3600);

/// What a run needs once the EmployeeSync has succeeded: its clients, the company time zone and
/// the resolved document category.
pub struct Connected {
    employee_sync: EmployeeSync,
    time_zone: TimeZone,
    personio: Arc<dyn PersonioApi>,
    reteach: Arc<dyn ReteachApi>,
    category_id: i64,
}

/// What a run that went through did, with the category it resolved.
pub struct CertificateRun {
    outcome: CertificateJobOutcome,
    category_id: i64,
}

#[async_trait]
impl SyncKind for CertificateSync {
    const KIND: &'static str = KIND;
    const WAITING_REASON: Option<Reason> = Some(Reason::WaitingForEmployeeSync);
    const RECONCILING_MESSAGE: &'static str = "uploading certificates";
    type Settings = CertificateSettings;
    type Prepared = Connected;
    type Outcome = CertificateRun;
    type Partial = CertificateJobOutcome;

    fn settings(&self, ctx: &Context) -> Result<CertificateSettings, SpecError> {
        CertificateSettings::from_spec(&self.spec, ctx.tunables.minimum_interval)
    }

    fn interval(settings: &CertificateSettings) -> Duration {
        settings.interval.get()
    }

    async fn prepare(
        &self,
        ctx: &Context,
        inputs: &RunInputs<'_, Self>,
        _settings: &CertificateSettings,
        capabilities: &mut Option<Vec<CapabilityCheck>>,
    ) -> Result<Connected, RunFailure> {
        let namespace = inputs.namespace;
        let (employee_sync, time_zone) = employee_sync(ctx, namespace, self).await?;
        let upstreams = checked_upstreams(ctx, namespace, &employee_sync).await?;
        let category = Some(&self.spec.document_category);
        *capabilities = preflight(ctx, self, inputs, &upstreams, category).await;
        let (personio, reteach) = (upstreams.personio, upstreams.reteach);
        let category_id = resolve_category(personio.as_ref(), &self.spec.document_category)
            .await
            .map_err(|e| naming_secrets(RunFailure::from(e), namespace, &employee_sync))?;
        Ok(Connected {
            employee_sync,
            time_zone,
            personio,
            reteach,
            category_id,
        })
    }

    async fn run(
        &self,
        ctx: &Context,
        api: &Api<Self>,
        inputs: &RunInputs<'_, Self>,
        settings: &CertificateSettings,
        connected: Connected,
    ) -> Result<CertificateRun, RunStop<CertificateJobOutcome>> {
        let previous = inputs.previous;
        let resource = format!("{}/{}", inputs.namespace, self.name_any());
        let writer = writer_token();
        if let Some(wait) = ctx
            .handover
            .wait(&resource, &previous.ledger, &writer, ctx.clock.now())
        {
            tracing::info!(
                "another process may still be uploading a certificate of this resource; taking it over once that has ended"
            );
            return Err(RunStop::Later(wait));
        }
        let store = StatusLedger {
            api: api.clone(),
            name: self.name_any(),
            uploaded_before: previous.uploaded_total,
            writer: writer.clone(),
        };
        if !self.spec.dry_run {
            let claimed = store
                .claim()
                .await
                .map_err(|e| RunFailure::transient(Reason::StatusWriteFailed, e.to_string()))?;
            if !same_checkpoint(&previous.ledger, &claimed) {
                // Another process wrote a checkpoint after this run read the ledger (`handover`).
                return Err(RunStop::Fenced);
            }
        }
        let request = CertificateRunRequest {
            now: inputs.run.now,
            tz: connected.time_zone.get(),
            category_id: connected.category_id,
            full_resync_interval: chrono_duration(settings.full_resync_interval),
            requested: inputs.reason == DueReason::Requested,
            linked_since: connected
                .employee_sync
                .status
                .as_ref()
                .and_then(|s| s.last_link_time),
        };
        let mut input = CertificateJobInput::new(
            &self.spec,
            &previous.ledger,
            request,
            &store,
            ctx.shutdown.clone(),
        );
        input.overlap = ctx.tunables.certificate_overlap;
        input.deadline = Some(tokio::time::Instant::now() + RUN_DEADLINE);
        input.fence = ctx.fence.clone();
        input.writer = Some(writer);
        match run_certificate_sync(
            connected.personio.as_ref(),
            connected.reteach.as_ref(),
            &input,
        )
        .await
        {
            Ok(mut outcome) => {
                outcome.summary.finished_at = Some(ctx.clock.now());
                Ok(CertificateRun {
                    outcome,
                    category_id: connected.category_id,
                })
            }
            Err(error) if matches!(error.root(), JobError::Ledger(LedgerError::Fenced)) => {
                Err(RunStop::Fenced)
            }
            Err(error) => {
                let partial = error.partial_outcome().cloned();
                let failure = naming_secrets(
                    RunFailure::from(error),
                    inputs.namespace,
                    &connected.employee_sync,
                );
                Err(RunStop::Failed { failure, partial })
            }
        }
    }

    fn record_outcome(
        status: &mut CertificateSyncStatus,
        run: &RunContext,
        settings: &CertificateSettings,
        outcome: &CertificateRun,
    ) -> (Duration, String) {
        status_after_success(
            status,
            run,
            settings.interval.get(),
            &outcome.outcome,
            outcome.category_id,
        )
    }

    fn record_partial(status: &mut CertificateSyncStatus, partial: CertificateJobOutcome) {
        record_certificate_partial(status, &partial);
    }

    async fn announce(&self, ctx: &Context, run: &CertificateRun, message: &str) {
        announce_run(ctx, self, &run.outcome, message).await;
    }
}

/// A token naming this run: the pod (or process) and a random part.
fn writer_token() -> String {
    format!("{}{:016x}", process_writer_prefix(), rand::random::<u64>())
}

/// The referenced EmployeeSync, once it has succeeded; otherwise why not.
/// The referenced EmployeeSync once it has succeeded, with its company time zone. An unknown
/// time zone stalls before the wait: that EmployeeSync cannot succeed until a human fixes it.
async fn employee_sync(
    ctx: &Context,
    namespace: &str,
    sync: &CertificateSync,
) -> Result<(EmployeeSync, TimeZone), RunFailure> {
    let reference = &sync.spec.employee_sync_ref.name;
    let api: Api<EmployeeSync> = Api::namespaced(ctx.client.clone(), namespace);
    let employee_sync = api
        .get_opt(reference)
        .await
        .map_err(|e| RunFailure::transient(Reason::KubernetesApiError, e.to_string()))?
        .ok_or_else(|| {
            RunFailure::stalled(
                Reason::EmployeeSyncNotFound,
                format!(
                    "EmployeeSync {namespace}/{reference} not found; create it or fix spec.employeeSyncRef.name"
                ),
            )
        })?;
    let time_zone = CertificateSettings::with_company(&employee_sync.spec, reference)
        .map_err(|e| RunFailure::stalled(Reason::InvalidSpec, e.to_string()))?;
    let succeeded = employee_sync
        .status
        .as_ref()
        .is_some_and(|s| s.common.last_successful_sync_time.is_some());
    if !succeeded {
        return Err(RunFailure::waiting(
            Reason::WaitingForEmployeeSync,
            format!(
                "waiting for EmployeeSync {reference} to succeed once before uploading certificates"
            ),
        ));
    }
    Ok((employee_sync, time_zone))
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
            reason: Reason::DocumentListingUnavailable,
            message: message(Some(format!(
                "{} certificates could not be checked for an earlier upload and were left alone: {why}; grant the credential read access to documents (v2 document management) and run `reteach-personio-operator preflight`",
                summary.unverified
            ))),
        };
    }
    if summary.failed > 0 && !progress {
        return Health::NotReady {
            reason: Reason::NoProgress,
            message: message(Some(format!(
                "no certificate could be delivered; each is retried in later runs and set aside after {} attempts (see status.failures)",
                outcome_max_attempts_hint(ledger)
            ))),
        };
    }
    if !ledger.set_aside.is_empty() {
        return Health::NotReady {
            reason: Reason::CertificatesSetAside,
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
        Reason::PartiallySucceeded
    } else if waiting_pdf > 0 {
        Reason::WaitingForPdf
    } else {
        Reason::Succeeded
    };
    Health::Ready {
        reason,
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
pub const REASON_NO_PROGRESS: &str = Reason::NoProgress.as_str();
/// Ready=False: certificates were set aside and wait for a human.
pub const REASON_SET_ASIDE: &str = Reason::CertificatesSetAside.as_str();
/// Ready=False: Personio's document list cannot be read, so nothing can be checked.
pub const REASON_LISTING_UNAVAILABLE: &str = Reason::DocumentListingUnavailable.as_str();
/// Ready=True: everything owed is in Personio except PDFs reteach has not generated yet.
pub const REASON_WAITING_FOR_PDF: &str = Reason::WaitingForPdf.as_str();
/// Ready=True: progress made, some certificates failed and are retried.
pub const REASON_RETRYING: &str = Reason::PartiallySucceeded.as_str();

/// The status after a run that went through (pure; the demo prints the same thing).
pub fn status_after_success(
    status: &mut CertificateSyncStatus,
    run: &RunContext,
    interval: Duration,
    outcome: &CertificateJobOutcome,
    category_id: i64,
) -> (Duration, String) {
    let ledger = if outcome.summary.dry_run {
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
    let delay = run.complete(&mut status.common, &health, interval);
    record_certificate_outcome(status, outcome, category_id);
    (delay, message)
}

/// Metrics and Events of a run that went through.
async fn announce_run(
    ctx: &Context,
    sync: &CertificateSync,
    outcome: &CertificateJobOutcome,
    message: &str,
) {
    let summary = &outcome.summary;
    if !summary.dry_run {
        let namespace = sync.namespace().unwrap_or_default();
        for (action, count) in [
            ("uploaded", summary.uploaded),
            ("already_present", summary.already_present),
            ("pending_pdf", summary.pending_pdf),
            ("unknown_employee", summary.unknown_employee),
            ("failed", summary.failed),
            ("set_aside", summary.set_aside),
            ("unverified", summary.unverified),
        ] {
            ctx.metrics.records(&namespace, KIND, action, count);
        }
    }
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
        publish(ctx, sync, type_, Reason::Uploaded.as_str(), message).await;
    }
}
