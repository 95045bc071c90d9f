//! An in-process operator against the test apiserver, with both simulators: the set-up of the
//! controller end-to-end tests (`tests/e2e/employee_sync.rs`, `tests/e2e/certificate_sync.rs`).
//!
//! Each [`World`] has its own namespace, simulators on loopback ports and an operator watching only
//! that namespace, so tests run in parallel without sharing state. Dropping it stops the operator.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::Client;
use reteach_personio_operator::api::{
    CertificateSync, CertificateSyncStatus, EmployeeSync, EmployeeSyncStatus,
};
use reteach_personio_operator::clock::{Clock, SystemClock};
use reteach_personio_operator::controller::allowlist::UpstreamPolicy;
use reteach_personio_operator::controller::http::Readiness;
use reteach_personio_operator::controller::operator::RunFuture;
use reteach_personio_operator::controller::{Operator, Tunables};
use reteach_personio_operator::credentials::CREDENTIALS_LABEL;
use reteach_personio_operator::metrics::Metrics;
use reteach_personio_operator::reteach::DownloadPolicy;
use reteach_personio_operator::sim::personio::{PersonioSim, PersonioSimConfig};
use reteach_personio_operator::sim::reteach::ReteachSim;
use reteach_personio_operator::sim::RunningSim;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::{
    apply_path, fresh_namespace, poll_until, repo_root, try_apply_yaml, wait_crd_established,
};

/// Name of the Secret with the Personio credentials.
pub const PERSONIO_SECRET: &str = "personio-api";
/// Name of the Secret with the reteach credentials.
pub const RETEACH_SECRET: &str = "reteach-api";
/// Interval of the resources in these tests (the operator's minimum is lowered to 1 s).
pub const INTERVAL: &str = "2s";
/// Time to wait for a run to show up in status: a few intervals plus the apiserver round trips.
pub const RUN_WAIT: Duration = Duration::from_secs(45);
/// The operator's re-check period of blocked resources in these tests.
pub const BLOCKED_RECHECK: Duration = Duration::from_secs(2);
/// A re-check period no test waits for.
pub const NO_RECHECK: Duration = Duration::from_secs(3600);

const CRD_NAMES: [&str; 2] = [
    "employeesyncs.sync.reteach.io",
    "certificatesyncs.sync.reteach.io",
];

/// The system clock, optionally set back: employees seeded while it is set back were last
/// modified "long ago", outside the overlap of the next incremental run.
#[derive(Clone, Default)]
pub struct LaggingClock {
    behind: Arc<Mutex<chrono::Duration>>,
}

impl LaggingClock {
    /// Sets how far the clock lags behind real time (zero = real time).
    pub fn set_behind(&self, by: chrono::Duration) {
        *self.behind.lock().unwrap_or_else(|p| p.into_inner()) = by;
    }
}

impl Clock for LaggingClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() - *self.behind.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A Personio simulator serving on a loopback port.
pub struct PersonioServer {
    pub sim: PersonioSim,
    pub url: String,
    /// The simulator's clock (`last_modified_at` of changes).
    pub clock: LaggingClock,
    _server: RunningSim,
}

impl PersonioServer {
    /// Starts an empty company (default credentials, the three default document categories).
    /// Rate limits are Personio's; a handful of requests never reach them.
    pub async fn start() -> Self {
        let clock = LaggingClock::default();
        let sim = PersonioSim::new(PersonioSimConfig {
            clock: Arc::new(clock.clone()),
            ..PersonioSimConfig::default()
        });
        let server = sim
            .start(loopback())
            .await
            .unwrap_or_else(|e| panic!("cannot start the Personio simulator: {e}"));
        Self {
            url: server.base_url(),
            sim,
            clock,
            _server: server,
        }
    }
}

/// A reteach simulator serving on a loopback port.
pub struct ReteachServer {
    pub sim: ReteachSim,
    pub url: String,
    _server: RunningSim,
}

impl ReteachServer {
    /// Starts an empty academy accepting the default credentials.
    pub async fn start() -> Self {
        let sim = ReteachSim::new(Arc::new(SystemClock));
        let server = sim
            .start(loopback())
            .await
            .unwrap_or_else(|e| panic!("cannot start the reteach simulator: {e}"));
        Self {
            url: server.base_url(),
            sim,
            _server: server,
        }
    }
}

/// The operator settings of these tests: intervals of seconds, the simulators allowed.
pub fn test_tunables(blocked_recheck: Duration) -> Tunables {
    Tunables {
        minimum_interval: Duration::from_secs(1),
        blocked_recheck,
        upstream: loopback_policy(),
        // Most tests count requests and inject faults by count: the probes are tested on their own
        // (`World::with_preflight`).
        preflight: false,
        // Every run but the one that started an upload waits it out before taking the resource
        // over (production: 2 minutes); an upload to the simulators takes milliseconds.
        handover_grace: Duration::from_secs(2),
        ..Tunables::default()
    }
}

/// What the operators of these tests allow: the simulators, on loopback, over plain http.
pub fn loopback_policy() -> UpstreamPolicy {
    UpstreamPolicy::new(&["127.0.0.1"], true).unwrap_or_else(|e| panic!("{e}"))
}

fn loopback() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

/// One test's world: namespace, simulators, Secrets and a running operator.
pub struct World {
    pub client: Client,
    pub namespace: String,
    pub personio: PersonioServer,
    pub reteach: ReteachServer,
    shutdown: CancellationToken,
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl World {
    /// CRDs installed, a fresh namespace, both simulators running (empty), and an operator
    /// watching the namespace. No Secrets yet: see [`World::apply_secrets`].
    pub async fn start(prefix: &str) -> Self {
        Self::start_with_recheck(prefix, BLOCKED_RECHECK).await
    }

    /// Like [`World::start`], with blocked resources re-checked only every `blocked_recheck`: with
    /// a long one, only a watch can be what wakes a blocked resource within a test.
    pub async fn start_with_recheck(prefix: &str, blocked_recheck: Duration) -> Self {
        Self::start_with_tunables(prefix, test_tunables(blocked_recheck)).await
    }

    /// Like [`World::with_secrets`], with an operator that runs the preflight probes before a
    /// resource's first run.
    pub async fn with_preflight(prefix: &str) -> Self {
        let tunables = Tunables {
            preflight: true,
            ..test_tunables(BLOCKED_RECHECK)
        };
        let world = Self::start_with_tunables(prefix, tunables).await;
        world.apply_secrets().await;
        world
    }

    /// Like [`World::with_preflight`], with these download hosts and private-address rule.
    pub async fn with_preflight_and_downloads(prefix: &str, downloads: DownloadPolicy) -> Self {
        let tunables = Tunables {
            preflight: true,
            downloads,
            ..test_tunables(BLOCKED_RECHECK)
        };
        let world = Self::start_with_tunables(prefix, tunables).await;
        world.apply_secrets().await;
        world
    }

    /// Like [`World::start`], with an operator that allows these upstreams.
    pub async fn start_with_policy(prefix: &str, upstream: UpstreamPolicy) -> Self {
        let tunables = Tunables {
            upstream,
            ..test_tunables(BLOCKED_RECHECK)
        };
        Self::start_with_tunables(prefix, tunables).await
    }

    async fn start_with_tunables(prefix: &str, tunables: Tunables) -> Self {
        Self::start_driving(prefix, tunables, |operator, _| {
            Box::pin(operator.run(Readiness::default()))
        })
        .await
    }

    /// Like [`World::start`], with the controllers `run` builds from the operator and the
    /// namespace (tests that drive a controller with a misbehaving reconcile).
    pub async fn start_driving(
        prefix: &str,
        tunables: Tunables,
        run: impl FnOnce(Operator, &str) -> RunFuture,
    ) -> Self {
        init_tracing_when_asked();
        let client = super::client().await;
        install_crds(&client).await;
        let namespace = fresh_namespace(&client, prefix).await;
        let personio = PersonioServer::start().await;
        let reteach = ReteachServer::start().await;
        let shutdown = CancellationToken::new();
        let operator = Operator::new(
            client.clone(),
            Arc::new(Metrics::new()),
            Arc::new(SystemClock),
            tunables,
            vec![namespace.clone()],
            shutdown.clone(),
        );
        tokio::spawn(run(operator, &namespace));
        Self {
            client,
            namespace,
            personio,
            reteach,
            shutdown,
        }
    }

    /// Like [`World::start`], with both Secrets holding the simulators' credentials.
    pub async fn with_secrets(prefix: &str) -> Self {
        let world = Self::start(prefix).await;
        world.apply_secrets().await;
        world
    }

    /// Applies both Secrets with the simulators' credentials (all keys present).
    pub async fn apply_secrets(&self) {
        let (client_id, client_secret) = self.personio.sim.credentials();
        self.apply_secret(
            PERSONIO_SECRET,
            json!({"clientId": client_id, "clientSecret": client_secret}),
        )
        .await;
        self.apply_reteach_secret().await;
    }

    /// Applies the reteach Secret with the simulator's credentials.
    pub async fn apply_reteach_secret(&self) {
        let reteach = self.reteach.sim.credentials();
        self.apply_secret(
            RETEACH_SECRET,
            json!({
                "clientId": reteach.client_id,
                "clientSecret": reteach.client_secret,
                "clientCode": reteach.client_code,
            }),
        )
        .await;
    }

    /// Applies (creates or replaces) a Secret with these `stringData` entries, labelled for use
    /// by sync resources.
    pub async fn apply_secret(&self, name: &str, string_data: Value) {
        self.apply(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "labels": {CREDENTIALS_LABEL: "true"}},
            "type": "Opaque",
            "stringData": string_data,
        }))
        .await;
    }

    /// Applies a Secret with these `stringData` entries without the opt-in label.
    pub async fn apply_unlabelled_secret(&self, name: &str, string_data: Value) {
        self.apply(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "type": "Opaque",
            "stringData": string_data,
        }))
        .await;
    }

    /// Server-side applies one object into the namespace.
    pub async fn apply(&self, object: Value) {
        let yaml = serde_json::to_string(&object).unwrap_or_else(|e| panic!("bad object: {e}"));
        try_apply_yaml(&self.client, &yaml, Some(&self.namespace))
            .await
            .unwrap_or_else(|e| panic!("the apiserver rejected {object}: {e}"));
    }

    /// An EmployeeSync talking to this world's simulators (interval [`INTERVAL`], UTC), with
    /// `spec_overrides` merged into the spec (e.g. `{"suspend": true}`).
    pub fn employee_sync(&self, name: &str, spec_overrides: Value) -> Value {
        self.employee_sync_to(name, &self.personio.url, spec_overrides)
    }

    /// Like [`World::employee_sync`], reading from another Personio simulator.
    pub fn employee_sync_to(&self, name: &str, personio_url: &str, spec_overrides: Value) -> Value {
        let mut spec = json!({
            "interval": INTERVAL,
            "timeZone": "UTC",
            "personio": {
                "baseUrl": personio_url,
                "allowInsecureHttp": true,
                "credentialsSecretRef": {"name": PERSONIO_SECRET},
            },
            "reteach": {
                "baseUrl": self.reteach.url,
                "allowInsecureHttp": true,
                "credentialsSecretRef": {"name": RETEACH_SECRET},
            },
        });
        merge(&mut spec, spec_overrides);
        json!({
            "apiVersion": "sync.reteach.io/v1alpha1",
            "kind": "EmployeeSync",
            "metadata": {"name": name},
            "spec": spec,
        })
    }

    /// A CertificateSync of the EmployeeSync `employee_sync` into the category "Learning
    /// Certificates" (interval [`INTERVAL`]), with `spec_overrides` merged into the spec.
    pub fn certificate_sync(
        &self,
        name: &str,
        employee_sync: &str,
        spec_overrides: Value,
    ) -> Value {
        let mut spec = json!({
            "interval": INTERVAL,
            "employeeSyncRef": {"name": employee_sync},
            "documentCategory": {"name": "Learning Certificates"},
        });
        merge(&mut spec, spec_overrides);
        json!({
            "apiVersion": "sync.reteach.io/v1alpha1",
            "kind": "CertificateSync",
            "metadata": {"name": name},
            "spec": spec,
        })
    }

    /// Typed API of the EmployeeSyncs in the namespace.
    pub fn employee_syncs(&self) -> Api<EmployeeSync> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Typed API of the CertificateSyncs in the namespace.
    pub fn certificate_syncs(&self) -> Api<CertificateSync> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Reads an EmployeeSync.
    pub async fn employee_sync_now(&self, name: &str) -> EmployeeSync {
        self.employee_syncs()
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("cannot read EmployeeSync {name}: {e}"))
    }

    /// Reads a CertificateSync.
    pub async fn certificate_sync_now(&self, name: &str) -> CertificateSync {
        self.certificate_syncs()
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("cannot read CertificateSync {name}: {e}"))
    }

    /// Waits until the EmployeeSync's status satisfies `accept`; returns the object.
    pub async fn wait_employee_sync(
        &self,
        name: &str,
        what: &str,
        accept: impl Fn(&EmployeeSyncStatus) -> bool,
    ) -> EmployeeSync {
        let api = self.employee_syncs();
        let accept = &accept;
        poll_until(&format!("EmployeeSync {name}: {what}"), RUN_WAIT, || {
            let api = api.clone();
            async move {
                let sync = api.get_opt(name).await.ok().flatten()?;
                accept(sync.status.as_ref()?).then_some(sync)
            }
        })
        .await
    }

    /// Waits until the CertificateSync's status satisfies `accept`; returns the object.
    pub async fn wait_certificate_sync(
        &self,
        name: &str,
        what: &str,
        accept: impl Fn(&CertificateSyncStatus) -> bool,
    ) -> CertificateSync {
        let api = self.certificate_syncs();
        let accept = &accept;
        poll_until(&format!("CertificateSync {name}: {what}"), RUN_WAIT, || {
            let api = api.clone();
            async move {
                let sync = api.get_opt(name).await.ok().flatten()?;
                accept(sync.status.as_ref()?).then_some(sync)
            }
        })
        .await
    }

    /// Waits until the EmployeeSync `name` has finished a successful run started after `after`.
    pub async fn wait_employee_run_after(&self, name: &str, after: DateTime<Utc>) -> EmployeeSync {
        self.wait_employee_sync(name, &format!("a successful run after {after}"), |status| {
            is_ready(&status.common.conditions)
                && status.common.last_successful_sync_time > Some(after)
        })
        .await
    }

    /// Sets an annotation on a resource by a merge patch (as `flux reconcile` does).
    pub async fn annotate<K>(&self, api: &Api<K>, name: &str, key: &str, value: &str)
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let patch = json!({"metadata": {"annotations": {key: value}}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("cannot annotate {name}: {e}"));
    }

    /// Waits for an Event about `name` with `reason` whose note contains `note`: runs are recorded
    /// there for good, while `status.lastRun` shows only the latest one.
    pub async fn wait_event(&self, name: &str, reason: &str, note: &str) -> Event {
        let what = format!("an event {reason} about {name} with {note:?}");
        poll_until(&what, RUN_WAIT, || async {
            self.events_about(name).await.into_iter().find(|event| {
                event.reason.as_deref() == Some(reason)
                    && event.note.as_deref().is_some_and(|n| n.contains(note))
            })
        })
        .await
    }

    /// The events.k8s.io Events about the object `name` in the namespace.
    pub async fn events_about(&self, name: &str) -> Vec<Event> {
        Api::<Event>::namespaced(self.client.clone(), &self.namespace)
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("cannot list events: {e}"))
            .items
            .into_iter()
            .filter(|event| {
                event
                    .regarding
                    .as_ref()
                    .is_some_and(|r| r.name.as_deref() == Some(name))
            })
            .collect()
    }
}

/// Whether `Ready=True` is among the conditions.
pub fn is_ready(conditions: &[reteach_personio_operator::api::Condition]) -> bool {
    condition(conditions, "Ready").is_some_and(|c| c.status == "True")
}

/// The condition of `type_`, if present.
pub fn condition<'a>(
    conditions: &'a [reteach_personio_operator::api::Condition],
    type_: &str,
) -> Option<&'a reteach_personio_operator::api::Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Applies `crds/` and waits until both APIs are served. Safe to call from every test at once.
pub async fn install_crds(client: &Client) {
    apply_path(client, repo_root().join("crds"), None).await;
    for name in CRD_NAMES {
        wait_crd_established(client, name).await;
    }
}

/// Recursive JSON merge: objects merge key by key, anything else replaces.
fn merge(target: &mut Value, overrides: Value) {
    match (target, overrides) {
        (Value::Object(target), Value::Object(overrides)) => {
            for (key, value) in overrides {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, value) => *target = value,
    }
}

/// Operator logs on stdout when `RUST_LOG` is set (debugging a failing test).
fn init_tracing_when_asked() {
    if std::env::var_os("RUST_LOG").is_some() {
        reteach_personio_operator::controller::operator::init_tracing("text");
    }
}
