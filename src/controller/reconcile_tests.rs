//! `reconcile` against a mocked API server (a `tower` service standing in for the apiserver):
//! which requests one reconcile sends, and what status it writes, when a resource is not due,
//! has an invalid spec, or is suspended. Runs that reach the upstreams are covered against the
//! simulators and the real apiserver (`tests/e2e_*`).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::http::{Method, Request, Response, StatusCode};
use chrono::{DateTime, Utc};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::Client;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::reconcile;
use crate::api::EmployeeSync;
use crate::clock::ManualClock;
use crate::controller::{Context, Tunables};
use crate::jobs::run_status::RunContext;
use crate::metrics::Metrics;

const PATH: &str = "/apis/sync.reteach.io/v1alpha1/namespaces/academy/employeesyncs/personio";

/// One request the mock received: method, path, JSON body.
type Seen = (Method, String, Value);

/// An apiserver that serves `object` and answers a status patch with the patched object; an
/// Event is accepted; anything else is 404. Records every request.
fn mock_apiserver(object: Value) -> (Client, Arc<Mutex<Vec<Seen>>>) {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let service = tower::service_fn(move |request: Request<Body>| {
        let log = log.clone();
        let object = object.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let path = parts.uri.path().to_string();
            log.lock()
                .unwrap()
                .push((parts.method.clone(), path.clone(), body.clone()));
            let (status, answer) = match (&parts.method, path.as_str()) {
                (&Method::GET, PATH) => (StatusCode::OK, object),
                (&Method::PATCH, p) if p == format!("{PATH}/status") => {
                    let mut patched = object;
                    patched["status"] = body["status"].clone();
                    (StatusCode::OK, patched)
                }
                (&Method::POST, p) if p.ends_with("/events") => (StatusCode::CREATED, body),
                _ => (
                    StatusCode::NOT_FOUND,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "NotFound", "code": 404, "message": "not found"}),
                ),
            };
            let response = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap();
            Ok::<_, Infallible>(response)
        }
    });
    (Client::new(service, "default"), seen)
}

fn now() -> DateTime<Utc> {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

fn context(client: Client) -> Arc<Context> {
    Arc::new(Context::new(
        client,
        Arc::new(Metrics::new()),
        Arc::new(ManualClock::new(now())),
        Tunables::default(),
        CancellationToken::new(),
    ))
}

fn employee_sync(interval: &str, suspend: bool) -> Value {
    json!({
        "apiVersion": "sync.reteach.io/v1alpha1",
        "kind": "EmployeeSync",
        "metadata": {"name": "personio", "namespace": "academy", "generation": 1,
            "uid": "u-1", "resourceVersion": "7"},
        "spec": {
            "interval": interval,
            "timeZone": "Europe/Berlin",
            "suspend": suspend,
            "personio": {"credentialsSecretRef": {"name": "personio-api"}},
            "reteach": {"credentialsSecretRef": {"name": "reteach-api"}},
        },
    })
}

fn parse(object: &Value) -> EmployeeSync {
    serde_json::from_value(object.clone()).unwrap()
}

fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|condition| condition["type"] == type_)
}

fn status_patches(seen: &[Seen]) -> Vec<&Value> {
    seen.iter()
        .filter(|(method, path, _)| method == Method::PATCH && path.ends_with("/status"))
        .map(|(_, _, body)| &body["status"])
        .collect()
}

#[tokio::test]
async fn a_resource_that_is_not_due_costs_no_request() {
    let mut object = employee_sync("15m", false);
    let sync = parse(&object);
    let mut status = crate::api::EmployeeSyncStatus::default();
    let interval = std::time::Duration::from_secs(15 * 60);
    RunContext::of(&sync, now()).succeed(&mut status.common, "synced".into(), interval);
    object["status"] = serde_json::to_value(&status).unwrap();
    let (client, seen) = mock_apiserver(object.clone());

    let action = reconcile(Arc::new(parse(&object)), context(client))
        .await
        .unwrap();

    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
    assert_ne!(action, Action::await_change(), "the next run is scheduled");
}

#[tokio::test]
async fn an_invalid_spec_stalls_naming_the_field_with_one_status_write() {
    let object = employee_sync("often", false);
    let (client, seen) = mock_apiserver(object.clone());

    reconcile(Arc::new(parse(&object)), context(client))
        .await
        .unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].0, Method::GET, "the run is decided on a fresh read");
    let patches = status_patches(&seen);
    assert_eq!(
        patches.len(),
        1,
        "no Reconciling before a spec that cannot run"
    );
    let stalled = condition(patches[0], "Stalled").expect("Stalled");
    assert_eq!(stalled["status"], "True");
    assert_eq!(stalled["reason"], "InvalidSpec");
    assert!(
        stalled["message"].as_str().unwrap().contains("interval"),
        "{stalled}"
    );
    assert_eq!(condition(patches[0], "Ready").unwrap()["status"], "False");
    assert!(
        seen.iter()
            .any(|(method, path, _)| method == Method::POST && path.ends_with("/events")),
        "a Warning Event says so"
    );
}

#[tokio::test]
async fn a_suspended_resource_says_so_once_and_then_waits_for_a_change() {
    let object = employee_sync("15m", true);
    let (client, seen) = mock_apiserver(object.clone());
    let ctx = context(client);

    let action = reconcile(Arc::new(parse(&object)), ctx.clone())
        .await
        .unwrap();

    assert_eq!(action, Action::await_change());
    let written = {
        let seen = seen.lock().unwrap();
        let patches = status_patches(&seen);
        assert_eq!(patches.len(), 1);
        // kstatus: current, not failed; the reason says why nothing runs.
        let ready = condition(patches[0], "Ready").expect("Ready");
        assert_eq!(ready["status"], "True");
        assert_eq!(ready["reason"], "Suspended");
        assert_eq!(patches[0]["observedGeneration"], 1);
        patches[0].clone()
    };

    // Reconciled again with the status it wrote: nothing more to say, no request at all.
    seen.lock().unwrap().clear();
    let mut again = object;
    again["status"] = written;
    let action = reconcile(Arc::new(parse(&again)), ctx).await.unwrap();
    assert_eq!(action, Action::await_change());
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
}
