//! Starting the operator: both controllers in one process with one shutdown signal, the HTTP
//! server, optional leader election, and the start-up check that the CRDs are installed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::ListParams;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client, Resource, ResourceExt};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::context::{Context, Tunables};
use super::http::{self, Readiness};
use super::leader::{
    become_leader, confirm_renewals, confirmation_interval, KubeLease, LeaseSettings,
};
use super::lifecycle::Scheduled;
use super::metrics::{forget_deleted, Metrics};
use super::pacing::{Gate, Interval, Pacing, Priority, RunSlots, StartupSpread};
use super::panic_guard::reconcile_guarded;
use super::receiver_endpoints::ReceiverEndpoints;
use super::schedule::Wake;
use super::{certificate, employee, watch_cache, ReconcileError};
use crate::api::{CertificateSync, EmployeeSync};
use crate::clock::{Clock, SystemClock};
use crate::jobs::Fence;
use crate::upstream::hold_slot_while;
use crate::webhook::{ResourceKey, Source};

use super::options::signature_scheme;
pub use super::options::{init_tracing, RunOptions, DEFAULT_PDF_MEMORY_MIB};

/// How often the syncing process checks that its webhook Service still points at it.
const ROUTING_CHECK_PERIOD: Duration = Duration::from_secs(15);

/// Runs the operator until SIGTERM/SIGINT.
pub async fn run(options: RunOptions) -> anyhow::Result<()> {
    init_tracing(&options.log_format);
    let client = Client::try_default().await?;
    check_crds_installed(&client).await?;
    if let Some(selector) = &options.watch_label_selector {
        super::shard::check_label_selector(&client, selector).await?;
    }
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    let metrics = Arc::new(Metrics::new());
    let readiness = Readiness::default();
    let server = tokio::spawn(http::serve(
        options.metrics_addr,
        metrics.clone(),
        readiness.clone(),
        shutdown.clone(),
    ));
    let own_namespace = options
        .lease_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| "default".into());
    // Checked before the election, so a misconfigured pod fails at once, not when it leads.
    let receiver_endpoints = match (&options.webhook_endpoints, options.webhook_addr) {
        (Some(name), Some(addr)) => Some(
            ReceiverEndpoints::new(
                client.clone(),
                &own_namespace,
                name,
                addr.port(),
                ReceiverEndpoints::address_from_env()?,
            )
            .await?,
        ),
        _ => None,
    };
    let webhook_public_url = options
        .webhook_public_url
        .as_deref()
        .filter(|url| !url.trim().is_empty())
        .map(|url| crate::webhook::PublicUrl::parse(url, options.egress.allow_insecure_http))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--webhook-public-url: {e}"))?;
    let webhook_keys = match options.webhook_addr {
        Some(_) => Some(
            super::webhook_key::load_or_create(
                client.clone(),
                &own_namespace,
                &options.webhook_key_secret,
            )
            .await?,
        ),
        None => None,
    };
    let lost_leadership = CancellationToken::new();
    let mut leadership = None;
    let mut fence = Fence::open();
    if options.leader_election {
        let settings = LeaseSettings {
            namespace: own_namespace.clone(),
            name: options.lease_name.clone(),
            identity: std::env::var("POD_NAME")
                .unwrap_or_else(|_| format!("{}-{}", hostname(), std::process::id())),
            duration_seconds: options.lease_duration_seconds,
        };
        // Ready while standing by: the client works (the CRD check above passed), and a
        // standby that is not ready would stall every rolling update.
        readiness.set_standby(true);
        readiness.set_ready();
        metrics.set_leader(false);
        let leader = tokio::select! {
            leader = become_leader(client.clone(), &settings) => leader?,
            _ = shutdown.cancelled() => return Ok(()),
        };
        readiness.set_standby(false);
        metrics.set_leader(true);
        // A pause longer than half the Lease may have let another replica take over.
        let lease_duration = Duration::from_secs(options.lease_duration_seconds.max(2));
        fence = Fence::heartbeat(
            lease_duration / 2,
            Some(lease_duration),
            lost_leadership.clone(),
        );
        // Renewals that fail with errors close the fence a lease duration after the last one.
        let (lease, confirmed) = (
            KubeLease::new(client.clone(), settings.clone()),
            fence.clone(),
        );
        let stopping = shutdown.clone();
        tokio::spawn(async move {
            let every = confirmation_interval(lease_duration);
            tokio::select! {
                () = confirm_renewals(&lease, &confirmed, every) => {}
                () = stopping.cancelled() => {}
            }
        });
        let (shutdown, lost, metrics) =
            (shutdown.clone(), lost_leadership.clone(), metrics.clone());
        let mut changes = leader.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = changes.changed() => {
                        if changed.is_ok() && *changes.borrow() {
                            continue;
                        }
                    }
                    _ = lost.cancelled() => {}
                    // Drops `changes` so the Lease can be released after the work stopped.
                    _ = shutdown.cancelled() => return,
                }
                tracing::error!("lost leadership; stopping");
                metrics.set_leader(false);
                lost.cancel();
                shutdown.cancel();
                return;
            }
        });
        leadership = Some(leader);
    } else {
        metrics.set_leader(true);
    }
    let operator = Operator::new(
        client,
        metrics,
        Arc::new(SystemClock),
        Tunables {
            minimum_interval: crate::sync::duration::parse_duration(&options.minimum_interval)?,
            upstream: options.egress.upstream_policy(),
            downloads: {
                let mut downloads = options
                    .egress
                    .download_policy(options.scratch_dir.clone())
                    .map_err(anyhow::Error::msg)?;
                downloads.memory = Some(crate::upstream::PdfMemory::new(
                    options.pdf_memory_mib.saturating_mul(1024 * 1024),
                    crate::upstream::MAX_PDF_BYTES,
                ));
                downloads
            },
            preflight: !options.skip_preflight,
            webhook_min_gap: crate::sync::duration::parse_duration(&options.webhook_min_gap)
                .map_err(|e| anyhow::anyhow!("--webhook-min-gap: {e}"))?,
            webhooks_enabled: options.webhook_addr.is_some(),
            webhook_public_url,
            webhook_keys,
            webhook_signatures: signature_scheme(&options)?,
            personio_budget_per_minute: (options.personio_budget_per_minute > 0)
                .then_some(options.personio_budget_per_minute),
            handover_grace: crate::sync::duration::parse_duration(&options.handover_grace)
                .map_err(|e| anyhow::anyhow!("--handover-grace: {e}"))?,
            upstream_rate_scale: options.upstream_rate_scale,
            ..Tunables::default()
        },
        options.watch_namespaces.clone(),
        shutdown.clone(),
    )
    .with_fence(fence)
    .with_label_selector(options.watch_label_selector.clone())
    .with_pacing(Pacing {
        spread: StartupSpread {
            started: chrono::Utc::now(),
            limit: crate::sync::duration::parse_duration(&options.startup_spread)
                .map_err(|e| anyhow::anyhow!("--startup-spread: {e}"))?,
        },
        slots: RunSlots::with_namespace_share(
            options.max_concurrent_runs,
            options.max_namespace_run_share,
        ),
    });
    let receiver = options
        .webhook_addr
        .map(|addr| tokio::spawn(operator.serve_webhooks(addr)));
    let receiver_endpoints = receiver_endpoints.map(Arc::new);
    // The receiver's socket is bound by now or about to be; a notification that arrives in
    // between is refused and retried by the sender.
    let routing = receiver_endpoints.clone().map(|endpoints| {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { endpoints.hold(ROUTING_CHECK_PERIOD, shutdown).await })
    });
    let drain = Duration::from_secs(options.shutdown_timeout_seconds);
    run_until_drained(operator.run(readiness), &shutdown, drain).await;
    shutdown.cancel();
    if let Some(routing) = routing {
        let _ = routing.await;
    }
    if let Some(endpoints) = &receiver_endpoints {
        let withdrawn = tokio::time::timeout(Duration::from_secs(5), endpoints.withdraw()).await;
        if let Ok(Err(error)) = withdrawn {
            tracing::warn!(%error, "could not take this process out of the webhook Service");
        }
    }
    // Only now, with no run left in this process, may a standby start working.
    if let Some(leadership) = leadership {
        leadership.release(Duration::from_secs(5)).await;
    }
    let _ = server.await;
    if let Some(receiver) = receiver {
        let _ = receiver.await;
    }
    if lost_leadership.is_cancelled() {
        anyhow::bail!("lost the leader lease");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Runs the controllers; after shutdown is requested, gives in-flight runs `drain` to finish, then
/// abandons them. Abandoning is safe: a certificate upload in flight is recorded in the ledger
/// before it starts and checked against Personio by the next run, and employee writes are
/// idempotent (users are found by `externalId`), so an interrupted run is simply repeated.
async fn run_until_drained(
    work: impl std::future::Future<Output = ()>,
    shutdown: &CancellationToken,
    drain: Duration,
) {
    tokio::pin!(work);
    tokio::select! {
        _ = &mut work => return,
        _ = shutdown.cancelled() => {}
    }
    if tokio::time::timeout(drain, work).await.is_err() {
        tracing::warn!(
            ?drain,
            "in-flight runs did not finish in time after the shutdown request; abandoning them"
        );
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "operator".into())
}

fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = terminate => {},
        }
        tracing::info!("shutdown requested; finishing in-flight work");
        shutdown.cancel();
    });
}

/// Fails with install instructions when the CRDs are missing, instead of crashing later.
pub async fn check_crds_installed(client: &Client) -> anyhow::Result<()> {
    let probe = ListParams::default().limit(1);
    for result in [
        Api::<EmployeeSync>::all(client.clone())
            .list_metadata(&probe)
            .await
            .map(|_| ()),
        Api::<CertificateSync>::all(client.clone())
            .list_metadata(&probe)
            .await
            .map(|_| ()),
    ] {
        if let Err(kube::Error::Api(status)) = &result {
            if status.code == 404 {
                anyhow::bail!(
                    "the CRDs of sync.reteach.io are not installed; run `kubectl apply -f crds/` (or install the Helm chart) first"
                );
            }
        }
    }
    Ok(())
}

/// Both controllers over one `Context`.
pub struct Operator {
    ctx: Arc<Context>,
    namespaces: Vec<String>,
    label_selector: Option<String>,
}

impl Operator {
    /// An operator watching `namespaces` (empty = all).
    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        tunables: Tunables,
        namespaces: Vec<String>,
        shutdown: CancellationToken,
    ) -> Self {
        let ctx = Arc::new(Context::new(client, metrics, clock, tunables, shutdown));
        Self {
            ctx,
            namespaces,
            label_selector: None,
        }
    }

    /// Only resources matching `selector` (a shard); `None`: all.
    pub fn with_label_selector(mut self, selector: Option<String>) -> Self {
        self.label_selector = selector.filter(|s| !s.trim().is_empty());
        self
    }

    /// Start-up spread and run slots: see [`Pacing`].
    pub fn with_pacing(mut self, pacing: Pacing) -> Self {
        match Arc::get_mut(&mut self.ctx) {
            Some(ctx) => ctx.pacing = pacing,
            None => tracing::error!("pacing set after the context was shared; ignored"),
        }
        self
    }

    /// The watch of this operator's own resources: every one, or those of its shard. (The
    /// EmployeeSyncs a CertificateSync waits for are watched with the same selector: both
    /// resources of an academy belong in the same shard.)
    fn watch_config(&self) -> watcher::Config {
        match &self.label_selector {
            Some(selector) => watcher::Config::default().labels(selector),
            None => watcher::Config::default(),
        }
    }

    /// Fences this replica's writes (leader election): see [`Fence`].
    pub fn with_fence(mut self, fence: Fence) -> Self {
        match Arc::get_mut(&mut self.ctx) {
            Some(ctx) => ctx.fence = fence,
            None => tracing::error!("fence set after the context was shared; ignored"),
        }
        self
    }

    /// Serves the webhook receiver on `addr` until shutdown (see [`crate::webhook`]). A port that
    /// cannot be bound is logged; the controllers go on polling.
    pub fn serve_webhooks(
        &self,
        addr: SocketAddr,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let state = self.receiver_state();
        let shutdown = self.ctx.shutdown.clone();
        async move {
            if let Err(error) = crate::webhook::serve(addr, state, shutdown).await {
                tracing::error!(%error, %addr, "webhook receiver stopped");
            }
        }
    }

    /// [`Operator::serve_webhooks`] on a listener the caller already bound (tests bind port 0
    /// and keep the socket, so no other listener can take the port in between).
    pub fn serve_webhooks_on(
        &self,
        listener: std::net::TcpListener,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let state = self.receiver_state();
        let shutdown = self.ctx.shutdown.clone();
        async move {
            if let Err(error) = crate::webhook::serve_on(listener, state, shutdown).await {
                tracing::error!(%error, "webhook receiver stopped");
            }
        }
    }

    fn receiver_state(&self) -> crate::webhook::ReceiverState {
        crate::webhook::ReceiverState {
            webhooks: self.ctx.webhooks.clone(),
            metrics: self.ctx.metrics.clone(),
            clock: self.ctx.clock.clone(),
        }
    }

    /// The shared context (tests read metrics from it).
    pub fn context(&self) -> Arc<Context> {
        self.ctx.clone()
    }

    /// Runs every controller until the context's shutdown token is cancelled; marks `readiness`
    /// once all watches have listed.
    pub async fn run(self, readiness: Readiness) {
        let scopes: Vec<Option<String>> = if self.namespaces.is_empty() {
            vec![None]
        } else {
            self.namespaces.iter().cloned().map(Some).collect()
        };
        let mut runs = Vec::new();
        let mut stores = Vec::new();
        for scope in scopes {
            let (employee_run, employee_store) = self.employee_controller(scope.as_deref());
            let (certificate_run, certificate_store) =
                self.certificate_controller(scope.as_deref());
            runs.push(employee_run);
            runs.push(certificate_run);
            runs.extend(self.metrics_cleanup(scope.as_deref()));
            stores.push(employee_store);
            stores.push(certificate_store);
        }
        if self.ctx.tunables.webhooks_enabled {
            runs.push(Box::pin(refresh_receivers(self.ctx.clone())));
        }
        tokio::spawn(async move {
            for store in stores {
                store.await;
            }
            readiness.set_ready();
            tracing::info!("watches synced; ready");
        });
        futures::future::join_all(runs).await;
    }

    fn api<K>(&self, namespace: Option<&str>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
        K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        match namespace {
            Some(ns) => Api::namespaced(self.ctx.client.clone(), ns),
            None => Api::all(self.ctx.client.clone()),
        }
    }

    /// Drops the metric series and closes the webhook receivers of deleted resources (see
    /// [`forget_deleted`]).
    fn metrics_cleanup(&self, namespace: Option<&str>) -> [RunFuture; 2] {
        let scope = namespace.map(str::to_string);
        let (metrics, shutdown) = (self.ctx.metrics.clone(), self.ctx.shutdown.clone());
        let close = |source: Source| {
            let webhooks = self.ctx.webhooks.clone();
            move |deleted: &super::metrics::ResourceLabels| {
                let key = ResourceKey::new(source, &deleted.namespace, &deleted.name);
                webhooks.receivers.close(&key);
                webhooks.triggers.clear(&key);
                webhooks.registrations.forget(&key);
            }
        };
        [
            Box::pin(forget_deleted(
                self.api::<PartialObjectMeta<EmployeeSync>>(namespace),
                self.watch_config(),
                employee::KIND,
                scope.clone(),
                metrics.clone(),
                shutdown.clone(),
                close(Source::Personio),
            )),
            Box::pin(forget_deleted(
                self.api::<PartialObjectMeta<CertificateSync>>(namespace),
                self.watch_config(),
                certificate::KIND,
                scope,
                metrics,
                shutdown,
                close(Source::Reteach),
            )),
        ]
    }

    fn employee_controller(&self, namespace: Option<&str>) -> (RunFuture, ReadyFuture) {
        let ctx = self.ctx.clone();
        let controller = watch_cache::controller_observed(
            self.api::<EmployeeSync>(namespace),
            self.watch_config(),
            move |sync| super::webhook::open_from_watch(&ctx, sync),
        )
        .reconcile_on(self.ctx.webhooks.triggers.employee_stream(namespace));
        // Secrets are not watched: that needs list/watch on every Secret of the watched
        // namespaces, more than an operator that GETs two named Secrets per run should hold. A
        // resource stalled on a missing or unlabelled Secret is re-checked every
        // `blocked_recheck` (2 minutes) instead, and every run reads the Secrets afresh.
        let ready_store = controller.store();
        let run = drive(
            controller,
            "EmployeeSync",
            employee::reconcile,
            self.ctx.clone(),
        );
        (run, Box::pin(wait_until_listed(ready_store)))
    }

    fn certificate_controller(&self, namespace: Option<&str>) -> (RunFuture, ReadyFuture) {
        let ctx = self.ctx.clone();
        let controller = watch_cache::controller_observed(
            self.api::<CertificateSync>(namespace),
            self.watch_config(),
            move |sync| super::webhook::open_from_watch(&ctx, sync),
        )
        .reconcile_on(self.ctx.webhooks.triggers.certificate_stream(namespace));
        let store = controller.store();
        let ready_store = store.clone();
        // An EmployeeSync that succeeds (or changes) wakes the CertificateSyncs that reference it:
        // that is how "starts by itself once the EmployeeSync has succeeded" happens.
        let controller = controller.watches(
            self.api::<EmployeeSync>(namespace),
            self.watch_config(),
            move |employee_sync| {
                let namespace = employee_sync.namespace();
                let name = employee_sync.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|sync| {
                        sync.namespace() == namespace && sync.spec.employee_sync_ref.name == name
                    })
                    .map(|sync| ObjectRef::from_obj(sync.as_ref()))
                    .collect::<Vec<_>>()
            },
        );
        let run = drive(
            controller,
            "CertificateSync",
            certificate::reconcile,
            self.ctx.clone(),
        );
        (run, Box::pin(wait_until_listed(ready_store)))
    }
}

/// Runs `controller` with `reconcile` until the context's shutdown token fires: each reconcile in
/// a span naming its resource, guarded against panics (the resource turns `Stalled`, the others
/// go on), apiserver failures retried with per-object backoff. Public so that tests can drive a
/// controller with a reconcile that misbehaves.
pub fn drive<K, F, Fut>(
    controller: Controller<K>,
    kind: &'static str,
    reconcile: F,
    ctx: Arc<Context>,
) -> RunFuture
where
    K: Scheduled<Scope = k8s_openapi::NamespaceResourceScope>
        + Interval
        + super::webhook::Webhooked
        + Send
        + Sync
        + 'static,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Action, ReconcileError>> + Send + 'static,
{
    let shutdown = ctx.shutdown.clone();
    let backoff = ErrorBackoff::default();
    let reset = backoff.clone();
    let run = controller
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(
            move |object: Arc<K>, ctx| {
                let (backoff, reconcile) = (reset.clone(), reconcile.clone());
                async move {
                    let key = ErrorBackoff::key(object.as_ref());
                    let span = resource_span(kind, object.as_ref());
                    let pacing: &Pacing = &ctx.pacing;
                    let wake = notification_wake(&ctx, object.as_ref());
                    let slot = match pacing.gate(object.as_ref(), wake, ctx.clock.now()) {
                        Gate::Hold(action) => return Ok(action),
                        Gate::Due(reason) => {
                            let namespace = object.namespace().unwrap_or_default();
                            Some(pacing.slots.acquire(&namespace, Priority::of(reason)).await)
                        }
                        Gate::NotDue => None,
                    };
                    // Boxed once the run may start: a due resource waiting for a run slot holds
                    // this small future, not the state of a whole run (issue 18).
                    let run =
                        Box::pin(reconcile_guarded(kind, object, ctx, reconcile)).instrument(span);
                    // While the run sleeps on a rate limiter or a `Retry-After`, its slot is
                    // free for others (issue 26).
                    let result = match slot {
                        Some(slot) => hold_slot_while(slot, run).await,
                        None => run.await,
                    };
                    if result.is_ok() {
                        backoff.reset(&key);
                    }
                    result
                }
            },
            move |object: Arc<K>, error, _ctx| backoff.next(object.as_ref(), error),
            ctx,
        )
        .for_each(move |result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, kind, "controller event");
            }
        });
    Box::pin(run)
}

/// What the due check of `object` gets to know about webhook notifications: a pending one
/// makes its run due (and so take a slot) like any other.
fn notification_wake<K: super::webhook::Webhooked>(ctx: &Context, object: &K) -> Wake {
    let notification = ctx.webhooks.notification(super::webhook::key_of(object));
    Wake {
        notified: notification.pending(),
        gap: notification.min_gap,
        backing_off: false,
    }
}

/// Every `webhook_refresh`, hands each resource with an open webhook receiver to its controller,
/// so that its Secret is read again and a reteach subscription deleted in reteach is re-created
/// even when no run is due for a long interval.
async fn refresh_receivers(ctx: Arc<Context>) {
    let period = ctx.tunables.webhook_refresh.max(Duration::from_secs(1));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = ctx.shutdown.cancelled() => return,
        }
        for key in ctx.webhooks.receivers.open_keys() {
            ctx.webhooks.triggers.poke(&key);
        }
    }
}

/// Resolves once the store has listed its objects. kube-runtime's `Store::wait_until_ready` wakes
/// only the waiter that polled it last (its `DelayedInit` keeps one waker), and the controller's
/// own runner waits on the same store, so a lone `.await` here would never wake up and `/readyz`
/// would stay 503 forever. Polling again now and then picks up the stored value.
async fn wait_until_listed<K>(store: kube::runtime::reflector::Store<K>)
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        let wait = tokio::time::timeout(Duration::from_millis(250), store.wait_until_ready());
        if wait.await.is_ok() {
            return;
        }
    }
}

/// The span every line logged during one reconcile carries, so a JSON line about a record (a
/// certificate upload, a skipped employee) still names its resource. The field is `resource`, not
/// `name`: the JSON formatter writes the span's own name under `name`.
fn resource_span(kind: &'static str, object: &impl ResourceExt) -> tracing::Span {
    tracing::info_span!(
        "sync",
        kind,
        namespace = object.namespace().unwrap_or_default(),
        resource = object.name_any()
    )
}

/// A controller running until shutdown (see [`drive`]).
pub type RunFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
type ReadyFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Per-object exponential backoff for reconciles that failed to talk to the apiserver
/// (kube-runtime has none built in; see kube-rs issue #1916). Upstream failures do not come here:
/// they are recorded in status and rescheduled by the reconciler itself.
#[derive(Clone, Default)]
struct ErrorBackoff {
    failures: Arc<Mutex<HashMap<String, u32>>>,
}

impl ErrorBackoff {
    fn key(object: &impl ResourceExt) -> String {
        format!(
            "{}/{}",
            object.namespace().unwrap_or_default(),
            object.name_any()
        )
    }

    fn reset(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(key);
    }

    fn next(&self, object: &impl ResourceExt, error: &ReconcileError) -> Action {
        let key = Self::key(object);
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let count = failures.entry(key.clone()).or_insert(0);
        *count = count.saturating_add(1);
        let delay =
            Duration::from_secs(2u64.saturating_pow((*count).min(8))).min(Duration::from_secs(300));
        tracing::warn!(
            namespace = object.namespace().unwrap_or_default(),
            name = object.name_any(),
            %error,
            retry_in = ?delay,
            "reconcile failed"
        );
        Action::requeue(super::schedule::with_jitter(delay))
    }
}
