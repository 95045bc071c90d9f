//! The one reconcile path of both kinds: due check → validated spec → preconditions and clients →
//! `Reconciling` → run → status, Event, log line and metrics. A kind brings only what differs
//! ([`SyncKind`]): its settings, how it connects, its job, and what its outcome means for its own
//! status fields; the common ones (conditions, schedule, capabilities, failures) are recorded here.
//! Every failure goes through the same classification (stalled, retry, waiting), so both kinds
//! react to the same problem in the same way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kube::core::object::HasSpec;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::capabilities::probe_when_due;
use super::context::Context;
use super::events::publish;
use super::lifecycle::{due_run, write_status, DueRun, Scheduled, SyncStatus};
use super::upstreams::Upstreams;
use super::webhook;
use super::ReconcileError;
use crate::api::{CapabilityCheck, DocumentCategoryRef, SyncStatusCommon};
use crate::jobs::failures::{record_failures, FailedRecords};
use crate::jobs::run_failure::RunFailure;
use crate::jobs::run_status::RunContext;
use crate::jobs::schedule::DueReason;
use crate::jobs::settings::KindSettings;
use crate::jobs::Reason;
use crate::metrics::ResourceLabels;
use crate::preflight::Subject;

/// The interval a resource with an invalid spec is treated with (its own cannot be read): the
/// stalled re-check is then the slowest one, the same for both kinds.
pub const INVALID_SPEC_INTERVAL: Duration = Duration::from_secs(600);

/// Why a run stopped.
#[derive(Debug)]
pub enum RunStop<P> {
    /// The run failed; `partial` is what it did before (recorded in status).
    Failed {
        /// Classified failure.
        failure: RunFailure,
        /// What the run did before it stopped, if anything.
        partial: Option<P>,
    },
    /// Another replica's run owns the resource now: write nothing.
    Fenced,
    /// Not yet: look again after this long, writing nothing (a takeover waiting out another
    /// process's in-flight upload, see `handover`).
    Later(std::time::Duration),
}

impl<P> From<RunFailure> for RunStop<P> {
    fn from(failure: RunFailure) -> Self {
        Self::Failed {
            failure,
            partial: None,
        }
    }
}

/// What a run knows besides the object: the operator's context, the kind's API, why it runs, the
/// status before it, and the clock reading.
pub struct RunInputs<'a, K: Scheduled> {
    /// The operator's clients, caches and tunables.
    pub ctx: &'a Context,
    /// The kind's API in the resource's namespace.
    pub api: &'a Api<K>,
    /// The resource's namespace.
    pub namespace: &'a str,
    /// Why the run is due.
    pub reason: DueReason,
    /// Status before the run.
    pub previous: &'a K::Status,
    /// Time, generation and requested-run token.
    pub run: &'a RunContext,
}

/// The kind-specific parts of a reconcile.
#[async_trait]
pub trait SyncKind:
    Scheduled<Scope = k8s_openapi::NamespaceResourceScope> + HasSpec + Send + Sync + 'static
where
    Self::Status: SyncStatus,
{
    /// Kind label of metrics and logs.
    const KIND: &'static str;
    /// `Ready=False` reason while a dependency is unmet (re-checked on every trigger).
    const WAITING_REASON: Option<Reason>;
    /// The `Reconciling` message.
    const RECONCILING_MESSAGE: &'static str;
    /// The validated spec values.
    type Settings: KindSettings<Spec = <Self as HasSpec>::Spec> + Send + Sync;
    /// What a run needs once its preconditions hold (clients, resolved ids).
    type Prepared: Send + Sync;
    /// What a run that went through did (its skipped records land in `status.failures`).
    type Outcome: FailedRecords + Send + Sync;
    /// What a failed run did before it stopped (its skipped records land in `status.failures`).
    type Partial: FailedRecords + Send;

    /// Checks the preconditions and builds the clients; stores the preflight findings in
    /// `capabilities` when the probes ran.
    async fn prepare(
        &self,
        inputs: &RunInputs<'_, Self>,
        capabilities: &mut Option<Vec<CapabilityCheck>>,
    ) -> Result<Self::Prepared, RunFailure>;

    /// Runs the job.
    async fn run(
        &self,
        inputs: &RunInputs<'_, Self>,
        settings: &Self::Settings,
        prepared: Self::Prepared,
    ) -> Result<Self::Outcome, RunStop<Self::Partial>>;

    /// Records a run that went through in `status`; returns the requeue delay and the message.
    fn record_outcome(
        status: &mut Self::Status,
        run: &RunContext,
        settings: &Self::Settings,
        outcome: &Self::Outcome,
    ) -> (Duration, String);

    /// Records what a failed run did before it stopped.
    fn record_partial(status: &mut Self::Status, partial: Self::Partial);

    /// Metrics and Events of a run that went through.
    async fn announce(&self, ctx: &Context, outcome: &Self::Outcome, message: &str);
}

/// Runs the read-only preflight probes when they are due (first run, requested run), on the
/// EmployeeSync `upstreams` were built from and the credentials they were built with; `None` when
/// they did not run. `category` is the CertificateSync's document category.
pub async fn preflight<K>(
    object: &K,
    inputs: &RunInputs<'_, K>,
    upstreams: &Upstreams,
    category: Option<&DocumentCategoryRef>,
) -> Option<Vec<CapabilityCheck>>
where
    K: SyncKind,
    K::Status: SyncStatus,
{
    probe_when_due(
        inputs.ctx,
        object,
        &inputs.previous.common().capabilities,
        inputs.reason == DueReason::Requested,
        || {
            Subject::checked(
                inputs.namespace,
                &object.name_any(),
                &upstreams.employee_sync,
                category,
                &upstreams.credentials,
            )
        },
    )
    .await
}

/// Reconciles one resource of kind `K`: the webhook part, the due check, and a due run.
pub async fn reconcile<K>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action, ReconcileError>
where
    K: SyncKind + webhook::Webhooked,
    K::Status: SyncStatus,
{
    if let Some(action) = webhook::before_due_check(&ctx, object.as_ref()).await? {
        return Ok(action);
    }
    // Fresh, not cached: a run must build on the latest status (see `due_run`).
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let notification = ctx.webhooks.notification(webhook::key_of(object.as_ref()));
    let due = due_run(
        object.as_ref(),
        &api,
        ctx.clock.as_ref(),
        K::WAITING_REASON,
        Some(&notification),
    )
    .await?;
    match due {
        Ok(due) => run_due(&ctx, &api, due).await,
        Err(action) => Ok(action),
    }
}

/// One due run: settings, preconditions and job ([`attempt`]), then status, Event, log line and
/// metrics, the same for every kind and every way a run ends.
async fn run_due<K>(ctx: &Context, api: &Api<K>, due: DueRun<K>) -> Result<Action, ReconcileError>
where
    K: SyncKind,
    K::Status: SyncStatus,
{
    let DueRun {
        object,
        run,
        previous,
        reason,
    } = due;
    let namespace = object.namespace().unwrap_or_default();
    let inputs = RunInputs {
        ctx,
        api,
        namespace: &namespace,
        reason,
        previous: &previous,
        run: &run,
    };
    let ended = Ended {
        labels: ResourceLabels {
            kind: K::KIND.into(),
            namespace: namespace.clone(),
            name: object.name_any(),
        },
        started: Instant::now(),
        ctx,
        object: &object,
        run: &run,
    };
    let mut capabilities = None;
    let settings = K::Settings::from_spec(object.spec(), ctx.tunables.minimum_interval);
    let interval = settings.as_ref().map_or(INVALID_SPEC_INTERVAL, |settings| {
        settings.cadence().interval.get()
    });
    let (result, personio_requests) = match settings {
        Err(error) => {
            let failure = RunFailure::stalled(Reason::InvalidSpec, error.to_string());
            (Err(RunStop::from(failure)), 0)
        }
        Ok(settings) => {
            let attempt = attempt(&object, &inputs, settings, &mut capabilities);
            crate::upstream::metered(attempt).await
        }
    };
    let mut status = previous.clone();
    let costs = (interval, personio_requests);
    let delay = match ended.end(result, &mut status, &previous, costs).await {
        Ok(delay) => delay,
        Err(action) => return Ok(action),
    };
    if let Some(capabilities) = capabilities {
        status.common_mut().capabilities = capabilities;
    }
    if status != previous {
        write_status(api, &object.name_any(), &status).await?;
    }
    Ok(Action::requeue(delay))
}

/// How an attempt ended: the settings and outcome of a run that went through, or why it stopped.
type Attempt<K> = Result<
    (<K as SyncKind>::Settings, <K as SyncKind>::Outcome),
    RunStop<<K as SyncKind>::Partial>,
>;

/// A run that ended, and what its end is recorded with.
struct Ended<'a, K> {
    ctx: &'a Context,
    object: &'a K,
    run: &'a RunContext,
    labels: ResourceLabels,
    started: Instant,
}

impl<K> Ended<'_, K>
where
    K: SyncKind,
    K::Status: SyncStatus,
{
    /// Records how the run ended in `status`; returns the requeue delay, or the action when
    /// nothing is to be written (another run owns the resource, or it is not yet its turn).
    async fn end(
        &self,
        result: Attempt<K>,
        status: &mut K::Status,
        previous: &K::Status,
        (interval, personio_requests): (Duration, u64),
    ) -> Result<Duration, Action> {
        match result {
            Err(RunStop::Later(delay)) => Err(Action::requeue(delay)),
            Err(RunStop::Fenced) => {
                // Another replica runs this resource now; its status is the truth.
                let labels = &self.labels;
                tracing::warn!(
                    namespace = labels.namespace,
                    name = labels.name,
                    kind = K::KIND,
                    "lost the resource to another run; not writing status"
                );
                Err(Action::await_change())
            }
            Err(RunStop::Failed { failure, partial }) => {
                if let Some(partial) = partial {
                    record_failures(status.common_mut(), &partial);
                    K::record_partial(status, partial);
                }
                Ok(self.failed(status, previous, interval, failure).await)
            }
            Ok((settings, outcome)) => {
                let costs = (interval, personio_requests);
                Ok(self.succeeded(status, &settings, outcome, costs).await)
            }
        }
    }

    /// Records a run that went through in `status` (its schedule stretched when the Personio
    /// budget needs it), logs, announces and counts it; returns the requeue delay.
    async fn succeeded(
        &self,
        status: &mut K::Status,
        settings: &K::Settings,
        outcome: K::Outcome,
        (interval, personio_requests): (Duration, u64),
    ) -> Duration {
        let (delay, message) = K::record_outcome(status, self.run, settings, &outcome);
        record_failures(status.common_mut(), &outcome);
        let delay = stretch_for_budget(
            self.ctx,
            &self.labels,
            status.common_mut(),
            self.run,
            (interval, delay),
            personio_requests,
        );
        let (namespace, name) = (&self.labels.namespace, &self.labels.name);
        tracing::info!(namespace, name, "{message}");
        self.object.announce(self.ctx, &outcome, &message).await;
        let elapsed = self.started.elapsed();
        self.ctx.metrics.run_finished(&self.labels, elapsed, None);
        delay
    }

    /// Records a failed run in `status` by its disposition, logs it and (when the status changed
    /// from `previous`) publishes an Event; returns the requeue delay.
    async fn failed(
        &self,
        status: &mut K::Status,
        previous: &K::Status,
        interval: Duration,
        failure: RunFailure,
    ) -> Duration {
        let ctx = self.ctx;
        let delay = self.run.fail(
            status.common_mut(),
            &failure,
            interval,
            ctx.tunables.blocked_recheck,
            ctx.clock.now(),
        );
        report_failure(ctx, self.object, &failure, status != previous).await;
        if failure.disposition.counts_as_failed_run() {
            let elapsed = self.started.elapsed();
            ctx.metrics
                .run_finished(&self.labels, elapsed, Some(failure.reason()));
        }
        delay
    }
}

/// Schedules the next run after the effective interval when the Personio budget cannot carry
/// every configured interval (see [`super::budget`]): moves `nextSyncTime`, says so in the `Ready`
/// message, and exports the interval. Returns the requeue delay (`scheduled.1` when not stretched).
fn stretch_for_budget(
    ctx: &Context,
    labels: &ResourceLabels,
    status: &mut SyncStatusCommon,
    run: &RunContext,
    (interval, delay): (Duration, Duration),
    personio_requests: u64,
) -> Duration {
    let Some(planner) = &ctx.budget else {
        ctx.metrics.effective_interval(labels, interval);
        return delay;
    };
    let key = format!("{}/{}/{}", labels.kind, labels.namespace, labels.name);
    let stretch = planner.record(&key, personio_requests, interval, run.now);
    ctx.metrics.effective_interval(labels, stretch.effective);
    super::budget::schedule_stretched(status, run.now, interval, &stretch).unwrap_or(delay)
}

/// Preconditions, `Reconciling`, the job.
async fn attempt<K>(
    object: &K,
    inputs: &RunInputs<'_, K>,
    settings: K::Settings,
    capabilities: &mut Option<Vec<CapabilityCheck>>,
) -> Attempt<K>
where
    K: SyncKind,
    K::Status: SyncStatus,
{
    let prepared = object.prepare(inputs, capabilities).await?;
    // A blocked resource that is re-checked shows no `Reconciling`: its status stays unchanged
    // unless the outcome changes (no write, no watch event, no loop).
    if inputs.reason != DueReason::Blocked {
        let mut in_progress = inputs.previous.clone();
        inputs
            .run
            .reconciling(in_progress.common_mut(), K::RECONCILING_MESSAGE);
        write_status(inputs.api, &object.name_any(), &in_progress)
            .await
            .map_err(|e| RunFailure::transient(Reason::StatusWriteFailed, e.to_string()))?;
    }
    let outcome = object.run(inputs, &settings, prepared).await?;
    Ok((settings, outcome))
}

/// Log line and Event of a failed run, by its disposition.
async fn report_failure<K>(ctx: &Context, object: &K, failure: &RunFailure, changed: bool)
where
    K: SyncKind,
    K::Status: SyncStatus,
{
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let reason = failure.reason();
    if failure.disposition.log_level() == tracing::Level::WARN {
        tracing::warn!(namespace, name, reason, "run failed: {}", failure.message());
    } else {
        tracing::info!(namespace, name, reason, "run waits: {}", failure.message());
    }
    if changed {
        let type_ = if failure.disposition.is_warning() {
            EventType::Warning
        } else {
            EventType::Normal
        };
        publish(ctx, object, type_, failure.reason(), failure.message()).await;
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
