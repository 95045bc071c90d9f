//! EmployeeSync in the one reconcile path ([`super::reconcile`]): its settings, its clients and
//! its job. The clients of an EmployeeSync are also the CertificateSync's.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::conditions::Health;
use super::context::Context;
use super::events::publish;
use super::failure::RunFailure;
use super::lifecycle::RunContext;
use super::reconcile::{preflight, RunInputs, RunStop, SyncKind};
use super::schedule::DueReason;
use super::upstreams::{checked_upstreams, naming_secrets};
use super::ReconcileError;
use crate::api::{
    CapabilityCheck, EmployeeSync, EmployeeSyncStatus, UnsupportedField, UnsupportedFieldReason,
    APPROVE_PLAN_ANNOTATION,
};
use crate::jobs::bookkeeping::{
    employee_input, employee_message, record_employee_outcome, EmployeeRunRequest,
};
use crate::jobs::employee::{run_employee_sync, EmployeeJobOutcome};
use crate::jobs::settings::{EmployeeSettings, SpecError};
use crate::jobs::Reason;
use crate::personio::PersonioApi;
use crate::reteach::ReteachApi;

/// Kind label of metrics and logs.
pub const KIND: &str = "EmployeeSync";

/// Reconciles one EmployeeSync.
pub async fn reconcile(
    sync: Arc<EmployeeSync>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    super::reconcile::reconcile(sync, ctx).await
}

/// Both clients of a run.
pub struct Connected {
    personio: Arc<dyn PersonioApi>,
    reteach: Arc<dyn ReteachApi>,
}

#[async_trait]
impl SyncKind for EmployeeSync {
    const KIND: &'static str = KIND;
    const WAITING_REASON: Option<Reason> = None;
    const RECONCILING_MESSAGE: &'static str = "syncing employees";
    type Settings = EmployeeSettings;
    type Prepared = Connected;
    type Outcome = EmployeeJobOutcome;
    type Partial = ();

    fn settings(&self, ctx: &Context) -> Result<EmployeeSettings, SpecError> {
        EmployeeSettings::from_spec(&self.spec, ctx.tunables.minimum_interval)
    }

    fn interval(settings: &EmployeeSettings) -> Duration {
        settings.interval.get()
    }

    async fn prepare(
        &self,
        ctx: &Context,
        inputs: &RunInputs<'_, Self>,
        _settings: &EmployeeSettings,
        capabilities: &mut Option<Vec<CapabilityCheck>>,
    ) -> Result<Connected, RunFailure> {
        let upstreams = checked_upstreams(ctx, inputs.namespace, self).await?;
        *capabilities = preflight(ctx, self, inputs, &upstreams, None).await;
        Ok(Connected {
            personio: upstreams.personio,
            reteach: upstreams.reteach,
        })
    }

    async fn run(
        &self,
        ctx: &Context,
        _api: &Api<Self>,
        inputs: &RunInputs<'_, Self>,
        settings: &EmployeeSettings,
        connected: Connected,
    ) -> Result<EmployeeJobOutcome, RunStop<()>> {
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
        status_after_success(status, run, settings.interval.get(), outcome)
    }

    fn record_partial(_status: &mut EmployeeSyncStatus, _partial: ()) {}

    async fn announce(&self, ctx: &Context, outcome: &EmployeeJobOutcome, message: &str) {
        let summary = &outcome.summary;
        if !summary.dry_run {
            let namespace = self.namespace().unwrap_or_default();
            for (action, count) in [
                ("created", summary.created),
                ("updated", summary.updated),
                ("failed", summary.failed),
            ] {
                ctx.metrics.records(&namespace, KIND, action, count);
            }
        }
        for field in &outcome.newly_unsupported {
            publish(
                ctx,
                self,
                EventType::Warning,
                Reason::UnsupportedFields.as_str(),
                &unsupported_event_note(field),
            )
            .await;
        }
        if summary.created + summary.updated + summary.failed > 0 {
            publish(
                ctx,
                self,
                EventType::Normal,
                Reason::Synced.as_str(),
                message,
            )
            .await;
        }
    }
}

/// The status after a successful run (pure; the demo prints the same thing).
pub fn status_after_success(
    status: &mut EmployeeSyncStatus,
    run: &RunContext,
    interval: Duration,
    job: &EmployeeJobOutcome,
) -> (Duration, String) {
    let mut message = employee_message(job);
    let delay = if job.unsupported_fields.is_empty() {
        run.succeed(&mut status.common, message.clone(), interval)
    } else {
        // Ready stays True (kstatus: Current, Argo CD: Healthy); the reason and the message say
        // which fields are left out.
        message.push_str(&unsupported_suffix(&job.unsupported_fields));
        let health = Health::Ready {
            reason: Reason::UnsupportedFields,
            message: message.clone(),
        };
        run.complete(&mut status.common, &health, interval)
    };
    record_employee_outcome(status, run.now, job);
    (delay, message)
}

/// `; reteach does not keep position (refused), location (not kept): left out of writes`.
fn unsupported_suffix(fields: &[UnsupportedField]) -> String {
    let named: Vec<String> = fields
        .iter()
        .map(|field| format!("{} ({})", field.field, why(field.reason)))
        .collect();
    format!(
        "; reteach does not keep {}: left out of writes",
        named.join(", ")
    )
}

fn why(reason: UnsupportedFieldReason) -> &'static str {
    match reason {
        UnsupportedFieldReason::Refused => "refused",
        UnsupportedFieldReason::NotKept => "not kept",
    }
}

/// The Warning Event when a field is first found (names the field, never a value).
pub fn unsupported_event_note(field: &UnsupportedField) -> String {
    let what = match field.reason {
        UnsupportedFieldReason::Refused => format!(
            "reteach refused the field {0} (\"property {0} should not exist\")",
            field.field
        ),
        UnsupportedFieldReason::NotKept => format!(
            "reteach accepted the field {} but did not keep it",
            field.field
        ),
    };
    format!(
        "{what}; it is left out of writes and comparisons from now on (status.unsupportedFields). \
         Set spec.mapping.{}: {{unmapped: true}} to stop reading it; a changed mapping tries it again",
        field.field
    )
}
