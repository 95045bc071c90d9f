//! End-to-end: what a resource author cannot do to the operator or to other tenants, on a real
//! kube-apiserver. Run with `scripts/test.sh --test e2e -- safety_rails::`.
//!
//! - absurd values are refused by the apiserver (schema bounds); values the schema allows but the
//!   code refuses stall only their resource;
//! - a reconcile that panics marks only its resource `Stalled` (`InternalError`) while a healthy
//!   one next to it keeps syncing;
//! - a base URL outside the operator's allowlist stalls before any Secret is read, and
//!   `allowInsecureHttp` needs the operator's own option;
//! - only Secrets labelled `sync.reteach.io/credentials: "true"` are used.

use crate::support;

use std::sync::Arc;

use chrono::Utc;
use kube::runtime::{watcher, Controller};
use kube::{Api, ResourceExt};
use reteach_personio_operator::api::{EmployeeSync, EmployeeSyncStatus};
use reteach_personio_operator::controller::allowlist::UpstreamPolicy;
use reteach_personio_operator::controller::operator::drive;
use reteach_personio_operator::controller::panic_guard::{INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE};
use reteach_personio_operator::controller::reconcile::{reconcile, SyncKind};
use reteach_personio_operator::sim::personio::EmployeeSeed;
use serde_json::json;
use support::operator::{
    condition, is_ready, test_tunables, World, BLOCKED_RECHECK, PERSONIO_SECRET,
};

const HEALTHY: &str = "healthy";
const ABSURD: &str = "absurd";

fn stalled_reason(status: &EmployeeSyncStatus) -> Option<String> {
    condition(&status.common.conditions, "Stalled")
        .filter(|c| c.status == "True")
        .map(|c| c.reason.clone())
}

fn stalled_message(sync: &EmployeeSync) -> String {
    sync.status
        .as_ref()
        .and_then(|s| condition(&s.common.conditions, "Stalled"))
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

fn seed(world: &World) {
    world
        .personio
        .sim
        .add_employee(EmployeeSeed::new("Anna", "Active", "anna@acme.example"));
}

fn upstream_requests(world: &World) -> usize {
    world.personio.sim.control().requests().len() + world.reteach.sim.control().requests().len()
}

#[tokio::test]
async fn the_apiserver_refuses_absurd_durations_and_unbounded_strings() {
    let world = World::with_secrets("rails-schema").await;
    for (field, value) in [
        ("interval", json!("3000000000h")),
        ("interval", json!("25h")),
        ("interval", json!("24h1m")),
        ("fullResyncInterval", json!("721h")),
        ("timeZone", json!("x".repeat(65))),
    ] {
        let mut overrides = serde_json::Map::new();
        overrides.insert(field.to_string(), value.clone());
        let object = world.employee_sync("refused", serde_json::Value::Object(overrides));
        let yaml = serde_json::to_string(&object).expect("serialises");
        let result =
            support::try_apply_yaml(&world.client, &yaml, Some(world.namespace.as_str())).await;
        assert!(result.is_err(), "{field}: {value} must be refused");
    }
    let long_secret_name = "a".repeat(254);
    let object = world.employee_sync(
        "refused",
        json!({"personio": {"credentialsSecretRef": {"name": long_secret_name}}}),
    );
    let yaml = serde_json::to_string(&object).expect("serialises");
    assert!(
        support::try_apply_yaml(&world.client, &yaml, Some(world.namespace.as_str()))
            .await
            .is_err(),
        "a Secret name longer than Kubernetes allows"
    );
    let credentials_in_url = world.employee_sync(
        "refused",
        json!({"personio": {"baseUrl": "https://user:pass@api.personio.de"}}),
    );
    let yaml = serde_json::to_string(&credentials_in_url).expect("serialises");
    assert!(
        support::try_apply_yaml(&world.client, &yaml, Some(world.namespace.as_str()))
            .await
            .is_err(),
        "credentials in a base URL"
    );
    // The bounds themselves are accepted.
    world
        .apply(world.employee_sync(
            "bounds",
            json!({"interval": "24h", "fullResyncInterval": "720h", "suspend": true}),
        ))
        .await;
}

#[tokio::test]
async fn a_value_the_schema_allows_but_the_code_refuses_stalls_only_its_resource() {
    let world = World::with_secrets("rails-code-check").await;
    seed(&world);
    world
        .apply(world.employee_sync(HEALTHY, json!({"interval": "1h"})))
        .await;
    // Below the operator's minimum (1 s in these tests) and a time zone that does not exist.
    world
        .apply(world.employee_sync(
            ABSURD,
            json!({"interval": "500ms", "timeZone": "Mars/Olympus"}),
        ))
        .await;

    let absurd = world
        .wait_employee_sync(ABSURD, "Stalled=True", |s| stalled_reason(s).is_some())
        .await;
    assert_eq!(
        stalled_reason(absurd.status.as_ref().expect("status")).as_deref(),
        Some("InvalidSpec")
    );
    assert!(
        stalled_message(&absurd).contains("spec.interval"),
        "{}",
        stalled_message(&absurd)
    );
    world
        .wait_employee_sync(HEALTHY, "Ready=True", |s| is_ready(&s.common.conditions))
        .await;
}

#[tokio::test]
async fn a_panicking_reconcile_stalls_its_resource_and_the_healthy_one_keeps_syncing() {
    // The operator's own reconcile, except that it panics for one resource (as a bug or a value
    // no check foresaw would), behind the same wrapper both controllers use.
    let world = World::start_driving(
        "rails-panic",
        test_tunables(BLOCKED_RECHECK),
        |operator, namespace| {
            let ctx = operator.context();
            let api: Api<EmployeeSync> = Api::namespaced(ctx.client.clone(), namespace);
            let controller = Controller::new(api, watcher::Config::default());
            drive(
                controller,
                EmployeeSync::KIND,
                |sync: Arc<EmployeeSync>, ctx| async move {
                    if sync.name_any() == ABSURD {
                        panic!("injected failure while syncing anna@acme.example");
                    }
                    reconcile(sync, ctx).await
                },
                ctx,
            )
        },
    )
    .await;
    world.apply_secrets().await;
    seed(&world);
    world.apply(world.employee_sync(HEALTHY, json!({}))).await;
    world.apply(world.employee_sync(ABSURD, json!({}))).await;

    let absurd = world
        .wait_employee_sync(ABSURD, "Stalled=True InternalError", |s| {
            stalled_reason(s).as_deref() == Some(INTERNAL_ERROR)
        })
        .await;
    let message = stalled_message(&absurd);
    assert_eq!(message, INTERNAL_ERROR_MESSAGE, "a fixed message");
    assert!(!message.contains("anna"), "nothing of the panic leaks");
    let ready = condition(
        &absurd.status.as_ref().expect("status").common.conditions,
        "Ready",
    )
    .expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", INTERNAL_ERROR)
    );
    world
        .wait_event(ABSURD, INTERNAL_ERROR, "internal error")
        .await;

    // The controller survived the panic: the healthy resource keeps running on its interval.
    let after_panic = Utc::now();
    let healthy = world.wait_employee_run_after(HEALTHY, after_panic).await;
    assert!(is_ready(&healthy.status.expect("status").common.conditions));
    assert_eq!(world.reteach.sim.customers().len(), 1);
    let second = Utc::now();
    world.wait_employee_run_after(HEALTHY, second).await;
}

#[tokio::test]
async fn a_base_url_outside_the_allowlist_stalls_before_any_secret_is_read() {
    let world = World::start("rails-allowlist").await;
    // No Secrets at all: had they been looked for, the reason would be SecretNotFound.
    seed(&world);
    let elsewhere = world.personio.url.replace("127.0.0.1", "localhost");
    world
        .apply(world.employee_sync_to(ABSURD, &elsewhere, json!({})))
        .await;

    let stalled = world
        .wait_employee_sync(ABSURD, "Stalled=True", |s| stalled_reason(s).is_some())
        .await;
    assert_eq!(
        stalled_reason(stalled.status.as_ref().expect("status")).as_deref(),
        Some("UpstreamNotAllowed")
    );
    let message = stalled_message(&stalled);
    assert!(
        message.contains("spec.personio.baseUrl")
            && message.contains("localhost")
            && message.contains("--allowed-upstream-hosts"),
        "{message}"
    );
    assert_eq!(upstream_requests(&world), 0, "nothing was sent anywhere");

    // With the Secrets present, they are still never used for that host.
    world.apply_secrets().await;
    world
        .annotate(
            &world.employee_syncs(),
            ABSURD,
            "reconcile.fluxcd.io/requestedAt",
            "1",
        )
        .await;
    world
        .wait_employee_sync(ABSURD, "the request handled", |s| {
            s.common.last_handled_reconcile_at.as_deref() == Some("1")
        })
        .await;
    let still = world.employee_sync_now(ABSURD).await;
    assert_eq!(
        stalled_reason(still.status.as_ref().expect("status")).as_deref(),
        Some("UpstreamNotAllowed")
    );
    assert_eq!(upstream_requests(&world), 0);
}

#[tokio::test]
async fn allow_insecure_http_needs_the_operators_own_option() {
    // An operator that allows the simulators' host, but not plain http.
    let policy = UpstreamPolicy::new(&["127.0.0.1"], false).expect("policy");
    let world = World::start_with_policy("rails-http", policy).await;
    world.apply_secrets().await;
    seed(&world);
    world.apply(world.employee_sync(ABSURD, json!({}))).await;

    let stalled = world
        .wait_employee_sync(ABSURD, "Stalled=True", |s| stalled_reason(s).is_some())
        .await;
    assert_eq!(
        stalled_reason(stalled.status.as_ref().expect("status")).as_deref(),
        Some("InsecureHttpNotAllowed")
    );
    assert!(
        stalled_message(&stalled).contains("--allow-insecure-http"),
        "{}",
        stalled_message(&stalled)
    );
    assert_eq!(upstream_requests(&world), 0);
    assert!(world.reteach.sim.customers().is_empty());
}

#[tokio::test]
async fn a_secret_without_the_opt_in_label_is_not_used_until_labelled() {
    let world = World::start("rails-opt-in").await;
    world.apply_reteach_secret().await;
    let (client_id, client_secret) = world.personio.sim.credentials();
    let credentials = json!({"clientId": client_id, "clientSecret": client_secret});
    world
        .apply_unlabelled_secret(PERSONIO_SECRET, credentials.clone())
        .await;
    seed(&world);
    world.apply(world.employee_sync(ABSURD, json!({}))).await;

    let stalled = world
        .wait_employee_sync(ABSURD, "Stalled=True", |s| stalled_reason(s).is_some())
        .await;
    assert_eq!(
        stalled_reason(stalled.status.as_ref().expect("status")).as_deref(),
        Some("SecretNotOptedIn")
    );
    let message = stalled_message(&stalled);
    assert!(
        message.contains(&format!("Secret {}/{PERSONIO_SECRET}", world.namespace))
            && message.contains(&format!(
                "kubectl label secret -n {} {PERSONIO_SECRET} sync.reteach.io/credentials=true",
                world.namespace
            )),
        "{message}"
    );
    assert!(!message.contains(&client_id));
    assert_eq!(upstream_requests(&world), 0, "no credential was sent");
    assert!(world.reteach.sim.customers().is_empty());

    // Labelling it is all it takes; the blocked re-check picks it up (Secrets are not watched).
    world.apply_secret(PERSONIO_SECRET, credentials).await;
    world
        .wait_employee_sync(ABSURD, "Ready=True", |s| is_ready(&s.common.conditions))
        .await;
    assert_eq!(world.reteach.sim.customers().len(), 1);
}
