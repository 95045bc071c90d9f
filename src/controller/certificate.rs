//! Reconciler of `CertificateSync`: due check → precondition (EmployeeSync succeeded) → clients
//! (the EmployeeSync's credentials) → category → exactly-once job with the ledger checkpointed in
//! status → status and events.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kube::runtime::events::EventType;
use kube::Api;

use super::announce::{count_records, set_aside_note};
use super::context::Context;
use super::events::publish;
use super::ledger_claim::claim_ledger;
use super::reconcile::{preflight, RunInputs, RunStop, SyncKind};
use super::upstreams::{checked_upstreams, naming_secrets};
use crate::api::duration::chrono_duration;
use crate::api::{CapabilityCheck, CertificateSync, CertificateSyncStatus, EmployeeSync};
use crate::jobs::bookkeeping::record_certificate_partial;
use crate::jobs::failures::FailedRecords;
use crate::jobs::run_failure::RunFailure;
use crate::jobs::run_status::{certificate_status_after_success, RunContext};
use crate::jobs::schedule::DueReason;
use crate::jobs::settings::{CertificateSettings, TimeZone};
use crate::jobs::{
    resolve_category, run_certificate_sync, CertificateJobInput, CertificateJobOutcome,
    CertificateRunRequest, JobError, LedgerError, Reason,
};
use crate::personio::PersonioApi;
use crate::reteach::ReteachApi;

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

impl FailedRecords for CertificateRun {
    fn failed_records(&self) -> &[crate::api::RecordFailure] {
        self.outcome.failed_records()
    }
}

#[async_trait]
impl SyncKind for CertificateSync {
    const KIND: &'static str = "CertificateSync";
    const WAITING_REASON: Option<Reason> = Some(Reason::WaitingForEmployeeSync);
    const RECONCILING_MESSAGE: &'static str = "uploading certificates";
    type Settings = CertificateSettings;
    type Prepared = Connected;
    type Outcome = CertificateRun;
    type Partial = CertificateJobOutcome;

    async fn prepare(
        &self,
        inputs: &RunInputs<'_, Self>,
        capabilities: &mut Option<Vec<CapabilityCheck>>,
    ) -> Result<Connected, RunFailure> {
        let (ctx, namespace) = (inputs.ctx, inputs.namespace);
        let (employee_sync, time_zone) = employee_sync(ctx, namespace, self).await?;
        let upstreams = checked_upstreams(ctx, namespace, &employee_sync).await?;
        let category = Some(&self.spec.document_category);
        *capabilities = preflight(self, inputs, &upstreams, category).await;
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
        inputs: &RunInputs<'_, Self>,
        settings: &CertificateSettings,
        connected: Connected,
    ) -> Result<CertificateRun, RunStop<CertificateJobOutcome>> {
        let (ctx, previous) = (inputs.ctx, inputs.previous);
        let store = claim_ledger(ctx, inputs.api, self, previous).await?;
        let request = CertificateRunRequest {
            now: inputs.run.now,
            tz: connected.time_zone.get(),
            category_id: connected.category_id,
            full_resync_interval: chrono_duration(settings.cadence.full_resync_interval),
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
        input.writer = Some(store.writer.clone());
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
        certificate_status_after_success(
            status,
            run,
            settings.cadence.interval.get(),
            &outcome.outcome,
            outcome.category_id,
        )
    }

    fn record_partial(status: &mut CertificateSyncStatus, partial: CertificateJobOutcome) {
        record_certificate_partial(status, &partial);
    }

    /// Counts the records by action, warns about certificates newly set aside, and says
    /// `Uploaded` when the run uploaded or failed one (a Warning when nothing went up).
    async fn announce(&self, ctx: &Context, run: &CertificateRun, message: &str) {
        let outcome = &run.outcome;
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
        count_records(ctx, self, summary.dry_run, &by_action);
        if let Some(note) = set_aside_note(outcome) {
            let reason = Reason::CertificatesSetAside.as_str();
            publish(ctx, self, EventType::Warning, reason, &note).await;
        }
        if summary.uploaded + summary.failed > 0 {
            let type_ = if summary.failed > 0 && summary.uploaded == 0 {
                EventType::Warning
            } else {
                EventType::Normal
            };
            publish(ctx, self, type_, Reason::Uploaded.as_str(), message).await;
        }
    }
}

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
