//! kstatus-correct status on the real apiserver (issue 15): what `kstatus`, Flux's `wait: true`
//! and `helm --wait`-style tools compute from our resources in each phase of their life. The
//! rules of sigs.k8s.io/cli-utils `pkg/kstatus/status` (`Compute`) are implemented below on the
//! raw objects as the apiserver returns them. Each phase is also run through the Argo CD health
//! checks of `health/argocd/`; with `RPO_RECORD_HEALTH_TESTDATA=1` the objects are written to their
//! `testdata/` (the recorded objects `tests/it/argocd_health.rs` checks).
//! Run: `scripts/test.sh --test e2e -- kstatus::`.

use crate::health_lua;
use crate::support;

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject};
use kube::Resource;
use reteach_personio_operator::api::{CertificateSync, EmployeeSync};
use reteach_personio_operator::sim::personio::EmployeeSeed;
use serde_json::{json, Value};
use support::operator::{World, PERSONIO_SECRET, RUN_WAIT};

/// kstatus' result for a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KStatus {
    Current,
    InProgress,
    Failed,
    Terminating,
}

/// kstatus `Compute` for a custom resource: deletion, then `observedGeneration` against
/// `metadata.generation` (only when present), then `Reconciling=True` / `Stalled=True`, then the
/// `Ready` condition, else current.
fn kstatus(object: &Value) -> KStatus {
    if object["metadata"]["deletionTimestamp"].is_string() {
        return KStatus::Terminating;
    }
    let generation = object["metadata"]["generation"].as_i64();
    let observed = object["status"]["observedGeneration"].as_i64();
    if let (Some(generation), Some(observed)) = (generation, observed) {
        if generation != observed {
            return KStatus::InProgress;
        }
    }
    let conditions = object["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let status_of = |type_: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == type_)
            .and_then(|c| c["status"].as_str().map(str::to_string))
    };
    if status_of("Reconciling").as_deref() == Some("True") {
        return KStatus::InProgress;
    }
    if status_of("Stalled").as_deref() == Some("True") {
        return KStatus::Failed;
    }
    match status_of("Ready").as_deref() {
        Some("True") | None => KStatus::Current,
        Some(_) => KStatus::InProgress,
    }
}

/// The raw object as the apiserver returns it (defaults applied), as kstatus reads it.
async fn raw<K: Resource<DynamicType = ()>>(world: &World, namespace: &str, name: &str) -> Value {
    let api: Api<DynamicObject> = Api::namespaced_with(
        world.client.clone(),
        namespace,
        &ApiResource::erase::<K>(&()),
    );
    let object = api
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
    serde_json::to_value(object).unwrap_or_else(|e| panic!("unserialisable object: {e}"))
}

/// Polls the raw object until `accept` holds; returns it.
async fn wait_raw<K: Resource<DynamicType = ()>>(
    world: &World,
    name: &str,
    what: &str,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    let accept = &accept;
    support::poll_until(&format!("{name}: {what}"), RUN_WAIT, || async move {
        let object = raw::<K>(world, &world.namespace, name).await;
        accept(&object).then_some(object)
    })
    .await
}

/// Asserts what kstatus and Argo CD make of `object` in `phase`; records it when asked.
fn check(phase: &str, object: &Value, expected: KStatus, argocd: &str) {
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    assert_eq!(kstatus(object), expected, "{kind} {phase}: {object}");
    let (status, message) = health_lua::health(&kind, object);
    assert_eq!(
        status, argocd,
        "Argo CD health of {kind} {phase}: {message}\n{object}"
    );
    if std::env::var_os("RPO_RECORD_HEALTH_TESTDATA").is_some() {
        record(&kind, phase, object);
    }
}

/// Writes the object without server bookkeeping to `health/argocd/.../testdata/<phase>.yaml`.
fn record(kind: &str, phase: &str, object: &Value) {
    let mut object = object.clone();
    let metadata = object["metadata"].clone();
    object["metadata"] = json!({
        "name": metadata["name"],
        "namespace": "academy",
        "generation": metadata["generation"],
    });
    let path = health_lua::check_dir(kind)
        .join("testdata")
        .join(format!("{phase}.yaml"));
    let yaml = serde_norway::to_string(&object).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn has(object: &Value, type_: &str, status: &str) -> bool {
    condition(object, type_).is_some_and(|c| c["status"] == status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_objects_are_in_progress_until_the_operator_has_observed_them() {
    let world = World::with_secrets("kstatus-new").await;
    // A namespace no operator watches: the objects stay exactly as created.
    let unwatched = support::fresh_namespace(&world.client, "kstatus-unwatched").await;
    let employee_sync = world.employee_sync("personio", json!({}));
    let certificate_sync = world.certificate_sync("certificates", "personio", json!({}));
    for object in [&employee_sync, &certificate_sync] {
        let yaml = serde_json::to_string(object).unwrap_or_default();
        support::try_apply_yaml(&world.client, &yaml, Some(&unwatched))
            .await
            .unwrap_or_else(|e| panic!("cannot create {object}: {e}"));
    }
    for object in [
        raw::<EmployeeSync>(&world, &unwatched, "personio").await,
        raw::<CertificateSync>(&world, &unwatched, "certificates").await,
    ] {
        assert_eq!(
            object["status"]["observedGeneration"], -1,
            "the CRD gives a new object observedGeneration -1: {object}"
        );
        assert_eq!(object["metadata"]["generation"], 1);
        check("new", &object, KStatus::InProgress, "Progressing");
    }
    support::delete_namespace(&world.client, &unwatched).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncing_is_in_progress_and_success_is_current() {
    let world = World::with_secrets("kstatus-sync").await;
    world
        .personio
        .sim
        .add_employee(EmployeeSeed::new("Ada", "Lovelace", "ada@example.com"));
    // Slow answers keep the run in progress long enough to be seen.
    world
        .personio
        .sim
        .control()
        .set_latency(Duration::from_millis(1500));
    world
        .reteach
        .sim
        .control()
        .set_latency(Duration::from_millis(1500));
    world
        .apply(world.employee_sync("personio", json!({"interval": "1h"})))
        .await;
    let syncing = wait_raw::<EmployeeSync>(&world, "personio", "Reconciling=True", |o| {
        has(o, "Reconciling", "True")
    })
    .await;
    check("syncing", &syncing, KStatus::InProgress, "Progressing");

    let done = wait_raw::<EmployeeSync>(&world, "personio", "Ready=True", |o| {
        has(o, "Ready", "True")
    })
    .await;
    assert_eq!(done["status"]["observedGeneration"], 1);
    assert_eq!(condition(&done, "Reconciling"), None, "{done}");
    check("succeeded", &done, KStatus::Current, "Healthy");

    world
        .apply(world.certificate_sync("certificates", "personio", json!({"interval": "1h"})))
        .await;
    let uploading = wait_raw::<CertificateSync>(&world, "certificates", "Reconciling=True", |o| {
        has(o, "Reconciling", "True")
    })
    .await;
    check("syncing", &uploading, KStatus::InProgress, "Progressing");
    let uploaded = wait_raw::<CertificateSync>(&world, "certificates", "Ready=True", |o| {
        has(o, "Ready", "True")
    })
    .await;
    check("succeeded", &uploaded, KStatus::Current, "Healthy");

    // A category Personio does not have: a human must act.
    let unknown = json!({"interval": "1h", "documentCategory": {"name": "No Such Category"}});
    world
        .apply(world.certificate_sync("misfiled", "personio", unknown))
        .await;
    let stalled = wait_raw::<CertificateSync>(&world, "misfiled", "Stalled=True", |o| {
        has(o, "Stalled", "True")
    })
    .await;
    check("stalled", &stalled, KStatus::Failed, "Degraded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_resources_observe_every_generation_and_are_current() {
    let world = World::with_secrets("kstatus-suspend").await;
    // Suspended from the start: never run, yet current with the first generation observed.
    world
        .apply(world.employee_sync("paused", json!({"suspend": true})))
        .await;
    let paused = wait_raw::<EmployeeSync>(&world, "paused", "generation 1 observed", |o| {
        o["status"]["observedGeneration"] == 1
    })
    .await;
    let ready = condition(&paused, "Ready").cloned().unwrap_or_default();
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("True"), &json!("Suspended"))
    );
    assert_eq!(
        paused["status"]["lastSyncTime"],
        Value::Null,
        "it never ran"
    );
    check("suspended-new", &paused, KStatus::Current, "Suspended");
    world
        .apply(world.certificate_sync("certificates", "paused", json!({"suspend": true})))
        .await;
    let paused_certificates =
        wait_raw::<CertificateSync>(&world, "certificates", "generation 1 observed", |o| {
            o["status"]["observedGeneration"] == 1
        })
        .await;
    check(
        "suspended",
        &paused_certificates,
        KStatus::Current,
        "Suspended",
    );

    // Suspending a synced resource: a new generation, observed while suspended.
    world
        .apply(world.employee_sync("personio", json!({"interval": "1h"})))
        .await;
    wait_raw::<EmployeeSync>(&world, "personio", "Ready=True", |o| {
        has(o, "Ready", "True")
    })
    .await;
    world
        .apply(world.employee_sync("personio", json!({"interval": "1h", "suspend": true})))
        .await;
    let suspended = wait_raw::<EmployeeSync>(&world, "personio", "generation 2 observed", |o| {
        o["status"]["observedGeneration"] == 2
    })
    .await;
    assert_eq!(suspended["metadata"]["generation"], 2);
    assert_eq!(
        condition(&suspended, "Ready").map(|c| &c["reason"]),
        Some(&json!("Suspended"))
    );
    assert!(
        suspended["status"]["lastSuccessfulSyncTime"].is_string(),
        "kept: {suspended}"
    );
    check("suspended", &suspended, KStatus::Current, "Suspended");

    // A change while suspended is observed too.
    world
        .apply(world.employee_sync("personio", json!({"interval": "2h", "suspend": true})))
        .await;
    let changed = wait_raw::<EmployeeSync>(&world, "personio", "generation 3 observed", |o| {
        o["status"]["observedGeneration"] == 3
    })
    .await;
    check("suspended-changed", &changed, KStatus::Current, "Suspended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_resources_have_failed_and_a_waiting_certificate_sync_is_in_progress() {
    let world = World::start("kstatus-stalled").await;
    world.apply_reteach_secret().await;
    // The Personio Secret is missing: a human must act.
    world
        .apply(world.employee_sync("personio", json!({})))
        .await;
    let stalled = wait_raw::<EmployeeSync>(&world, "personio", "Stalled=True", |o| {
        has(o, "Stalled", "True")
    })
    .await;
    assert_eq!(stalled["status"]["observedGeneration"], 1);
    let message = condition(&stalled, "Stalled")
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(message.contains(PERSONIO_SECRET), "{message}");
    check("stalled", &stalled, KStatus::Failed, "Degraded");

    // Its CertificateSync waits for it: not failed (nothing to fix there), not current either.
    world
        .apply(world.certificate_sync("certificates", "personio", json!({})))
        .await;
    let waiting =
        wait_raw::<CertificateSync>(&world, "certificates", "WaitingForEmployeeSync", |o| {
            condition(o, "Ready").is_some_and(|c| c["reason"] == "WaitingForEmployeeSync")
        })
        .await;
    check("waiting", &waiting, KStatus::InProgress, "Progressing");
}

#[test]
fn the_rules_match_kstatus_on_hand_made_objects() {
    let object = |generation: i64, observed: Option<i64>, conditions: Value| {
        let mut status = json!({"conditions": conditions});
        if let Some(observed) = observed {
            status["observedGeneration"] = json!(observed);
        }
        json!({"metadata": {"generation": generation}, "status": status})
    };
    let ready = json!([{"type": "Ready", "status": "True"}]);
    assert_eq!(
        kstatus(&object(1, Some(1), ready.clone())),
        KStatus::Current
    );
    assert_eq!(
        kstatus(&object(2, Some(1), ready.clone())),
        KStatus::InProgress
    );
    assert_eq!(
        kstatus(&object(1, None, json!([]))),
        KStatus::Current,
        "kstatus' blind spot"
    );
    assert_eq!(
        kstatus(&object(
            1,
            Some(1),
            json!([{"type": "Stalled", "status": "True"}])
        )),
        KStatus::Failed
    );
    assert_eq!(
        kstatus(&object(
            1,
            Some(1),
            json!([{"type": "Ready", "status": "Unknown"}])
        )),
        KStatus::InProgress
    );
    let mut deleting = object(1, Some(1), ready);
    deleting["metadata"]["deletionTimestamp"] = json!("2026-11-26T10:00:00Z");
    assert_eq!(kstatus(&deleting), KStatus::Terminating);
}
