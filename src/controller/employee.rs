//! EmployeeSync in the one reconcile path ([`super::reconcile`]): its settings, its clients and
//! its job. The clients of an EmployeeSync are also the CertificateSync's.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kube::runtime::events::EventType;
use kube::ResourceExt;

use super::announce::{count_records, unsupported_event_note};
use super::context::Context;
use super::events::publish;
use super::reconcile::{preflight, RunInputs, RunStop, SyncKind};
use super::upstreams::{checked_upstreams, naming_secrets};
use crate::api::{CapabilityCheck, EmployeeSync, EmployeeSyncStatus, APPROVE_PLAN_ANNOTATION};
use crate::jobs::bookkeeping::{employee_input, EmployeeRunRequest};
use crate::jobs::employee::{run_employee_sync, EmployeeJobOutcome};
use crate::jobs::run_failure::RunFailure;
use crate::jobs::run_status::{employee_status_after_success, RunContext};
use crate::jobs::schedule::DueReason;
use crate::jobs::settings::EmployeeSettings;
use crate::jobs::Reason;
use crate::personio::PersonioApi;
use crate::reteach::ReteachApi;

/// Both clients of a run.
pub struct Connected {
    personio: Arc<dyn PersonioApi>,
    reteach: Arc<dyn ReteachApi>,
}

#[async_trait]
impl SyncKind for EmployeeSync {
    const KIND: &'static str = "EmployeeSync";
    const WAITING_REASON: Option<Reason> = None;
    const RECONCILING_MESSAGE: &'static str = "syncing employees";
    type Settings = EmployeeSettings;
    type Prepared = Connected;
    type Outcome = EmployeeJobOutcome;
    type Partial = ();

    async fn prepare(
        &self,
        inputs: &RunInputs<'_, Self>,
        capabilities: &mut Option<Vec<CapabilityCheck>>,
    ) -> Result<Connected, RunFailure> {
        let upstreams = checked_upstreams(inputs.ctx, inputs.namespace, self).await?;
        *capabilities = preflight(self, inputs, &upstreams, None).await;
        Ok(Connected {
            personio: upstreams.personio,
            reteach: upstreams.reteach,
        })
    }

    async fn run(
        &self,
        inputs: &RunInputs<'_, Self>,
        settings: &EmployeeSettings,
        connected: Connected,
    ) -> Result<EmployeeJobOutcome, RunStop<()>> {
        let ctx = inputs.ctx;
        let request = EmployeeRunRequest {
            now: inputs.run.now,
            dry_run: self.spec.dry_run,
            force_full: matches!(
                inputs.reason,
                DueReason::SpecChanged | DueReason::Requested | DueReason::FirstRun
            ),
            guard: self.spec.mass_change_guard.limits().map(|limits| {
                let approved = self.annotations().get(APPROVE_PLAN_ANNOTATION).cloned();
                (limits, approved)
            }),
        };
        let mut input = employee_input(inputs.previous, settings, request);
        // The persons webhook notifications named: re-read by id (v2 sees no employment change
        // in its change feed); handed back when the run fails, so its retry reads them.
        let key = super::webhook::key_of(self);
        input.notified = ctx.webhooks.triggers.take_persons(&key);
        let result = run_employee_sync(
            connected.personio.as_ref(),
            connected.reteach.as_ref(),
            &input,
        )
        .await;
        if result.is_err() {
            ctx.webhooks
                .triggers
                .restore_persons(&key, std::mem::take(&mut input.notified));
        }
        let mut outcome =
            result.map_err(|e| naming_secrets(RunFailure::from(e), inputs.namespace, self))?;
        outcome.summary.finished_at = Some(ctx.clock.now());
        Ok(outcome)
    }

    fn record_outcome(
        status: &mut EmployeeSyncStatus,
        run: &RunContext,
        settings: &EmployeeSettings,
        outcome: &EmployeeJobOutcome,
    ) -> (Duration, String) {
        employee_status_after_success(status, run, settings.cadence.interval.get(), outcome)
    }

    fn record_partial(_status: &mut EmployeeSyncStatus, _partial: ()) {}

    /// Counts the records by action, warns once per field newly found unsupported, and says
    /// `Synced` when the run wrote or failed a record.
    async fn announce(&self, ctx: &Context, outcome: &EmployeeJobOutcome, message: &str) {
        let summary = &outcome.summary;
        let by_action = [
            ("created", summary.created),
            ("updated", summary.updated),
            ("failed", summary.failed),
        ];
        count_records(ctx, self, summary.dry_run, &by_action);
        for field in &outcome.newly_unsupported {
            let note = unsupported_event_note(field);
            let reason = Reason::UnsupportedFields.as_str();
            publish(ctx, self, EventType::Warning, reason, &note).await;
        }
        if summary.created + summary.updated + summary.failed > 0 {
            let reason = Reason::Synced.as_str();
            publish(ctx, self, EventType::Normal, reason, message).await;
        }
    }
}
