//! Both controllers over one [`Context`]: their watches, the gate every run passes, the webhook
//! receiver they share and the cleanup of deleted resources' metrics. The process around them
//! (start-up, leader election, shutdown) is [`super::process`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client, Resource, ResourceExt};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::context::{Context, Tunables};
use super::http::Readiness;
use super::lifecycle::{Scheduled, SyncStatus};
use super::pacing::{Gate, Interval, Pacing, Priority};
use super::panic_guard::reconcile_guarded;
use super::reconcile::SyncKind;
use super::webhook::Webhooked;
use super::{watch_cache, ReconcileError};
use crate::api::{CertificateSync, EmployeeSync};
use crate::clock::Clock;
use crate::jobs::schedule::Wake;
use crate::jobs::Fence;
use crate::metrics::{forget_deleted, Metrics};
use crate::upstream::hold_slot_while;
use crate::webhook::{ResourceKey, Source};

pub use super::options::{init_tracing, RunOptions, DEFAULT_PDF_MEMORY_MIB};

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
            move |deleted: &crate::metrics::ResourceLabels| {
                let key = ResourceKey::new(source, &deleted.namespace, &deleted.name);
                webhooks.receivers.close(&key);
                webhooks.triggers.forget(&key);
                webhooks.registrations.forget(&key);
            }
        };
        [
            Box::pin(forget_deleted(
                self.api::<PartialObjectMeta<EmployeeSync>>(namespace),
                self.watch_config(),
                EmployeeSync::KIND,
                scope.clone(),
                metrics.clone(),
                shutdown.clone(),
                close(Source::Personio),
            )),
            Box::pin(forget_deleted(
                self.api::<PartialObjectMeta<CertificateSync>>(namespace),
                self.watch_config(),
                CertificateSync::KIND,
                scope,
                metrics,
                shutdown,
                close(Source::Reteach),
            )),
        ]
    }

    /// The controller of `K` in `namespace` (all when `None`): its trimmed watch cache opens
    /// webhook receivers as objects arrive, and `triggers` (webhook notifications) wake it.
    fn woken_controller<K: Webhooked + 'static>(
        &self,
        namespace: Option<&str>,
        triggers: UnboundedReceiver<ObjectRef<K>>,
    ) -> Controller<K> {
        let ctx = self.ctx.clone();
        watch_cache::controller_observed(
            self.api::<K>(namespace),
            self.watch_config(),
            move |object| super::webhook::open_from_watch(&ctx, object),
        )
        .reconcile_on(triggers)
    }

    fn employee_controller(&self, namespace: Option<&str>) -> (RunFuture, ReadyFuture) {
        let triggers = self.ctx.webhooks.triggers.employee_stream(namespace);
        let controller = self.woken_controller::<EmployeeSync>(namespace, triggers);
        // Secrets are not watched: that needs list/watch on every Secret of the watched
        // namespaces, more than an operator that GETs two named Secrets per run should hold. A
        // resource stalled on a missing or unlabelled Secret is re-checked every
        // `blocked_recheck` (2 minutes) instead, and every run reads the Secrets afresh.
        self.started(controller)
    }

    fn certificate_controller(&self, namespace: Option<&str>) -> (RunFuture, ReadyFuture) {
        let triggers = self.ctx.webhooks.triggers.certificate_stream(namespace);
        let controller = self.woken_controller::<CertificateSync>(namespace, triggers);
        let store = controller.store();
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
        self.started(controller)
    }

    /// Drives `controller` with the reconcile of its kind (see [`drive`]); ready once its watch
    /// cache has listed the resources.
    fn started<K>(&self, controller: Controller<K>) -> (RunFuture, ReadyFuture)
    where
        K: SyncKind + Interval + Webhooked,
        K::Status: SyncStatus,
    {
        let ready_store = controller.store();
        let run = drive(
            controller,
            K::KIND,
            super::reconcile::reconcile::<K>,
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
        Action::requeue(crate::jobs::schedule::with_jitter(delay))
    }
}
