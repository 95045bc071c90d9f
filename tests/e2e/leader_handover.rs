//! Two operator processes with leader election on the real apiserver, as a Deployment of two
//! replicas runs them (issue 15): the standby is Ready while it waits, and a leader stopped with
//! SIGTERM finishes, releases the Lease and exits, so the standby takes over in seconds. The
//! webhook receiver's EndpointSlice follows the leader: notifications never reach a standby.
//! Run: `scripts/test.sh --test e2e -- leader_handover::`.

use crate::support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DynamicObject};
use kube::discovery::oneshot;
use kube::Client;

use support::process::{
    install_crds, lease_holder, log_dir, metric_sum, OperatorOptions, OperatorProcess, Tenant,
    TenantCredentials, LONG_WAIT,
};

const LEADER_GAUGE: &str = "reteach_personio_leader";
/// The test processes' Lease lasts 4 s; taking over after a release needs at most one Lease
/// period plus the lease manager's jitter. A generous bound, not a timing assertion.
const TAKEOVER_BOUND: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_is_ready_and_takes_over_when_the_leader_is_stopped() {
    let client = support::client().await;
    install_crds(&client).await;
    let logs = log_dir("handover");
    let namespace = support::fresh_namespace(&client, "handover").await;
    let tenant = Tenant::start(&client, &namespace, TenantCredentials::default()).await;
    tenant.seed_employees(3, "ho");
    tenant.apply_employee_sync(&client, "1s").await;

    let slices = create_receiver_slice(&client, &namespace).await;
    let options = OperatorOptions::new(&namespace).webhook_endpoints(RECEIVER);
    let mut leader = OperatorProcess::spawn(&options.clone().leader("operator-a"), &logs);
    support::poll_until("operator-a to hold the Lease", support::WAIT, || async {
        (lease_holder(&client, &namespace).await.as_deref() == Some("operator-a")).then_some(())
    })
    .await;
    tenant
        .wait_employee_sync_succeeded(&client, support::WAIT)
        .await;
    wait_slice_points_at(&slices, "operator-a").await;
    let mut standby = OperatorProcess::spawn(&options.clone().leader("operator-b"), &logs);

    // Readiness is "can serve", not "is leader": a rolling update waits for this 200.
    standby.wait_ready().await;
    let (_, body) = standby.get("/readyz").await.unwrap_or_default();
    assert!(body.contains("standby"), "/readyz of the standby: {body}");
    leader.wait_ready().await;
    assert_eq!(metric_sum(&leader.metrics().await, LEADER_GAUGE), 1.0);
    assert_eq!(metric_sum(&standby.metrics().await, LEADER_GAUGE), 0.0);
    assert_eq!(
        lease_holder(&client, &namespace).await.as_deref(),
        Some("operator-a"),
        "the standby must not take a held Lease"
    );

    // SIGTERM while the leader syncs every second: it stops its work, releases the Lease, exits 0.
    let status = leader.terminate(Duration::from_secs(30)).await;
    assert!(
        status.success(),
        "the leader exits cleanly: {status}\n{}",
        leader.logs()
    );
    assert_ne!(
        lease_holder(&client, &namespace).await.as_deref(),
        Some("operator-a"),
        "a stopped leader releases the Lease before it exits; logs:\n{}",
        leader.logs()
    );
    assert!(leader.logs().contains("released the leader Lease"));
    let after_exit = slices.get(RECEIVER).await.expect("the EndpointSlice");
    assert!(
        !after_exit.data["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["targetRef"]["name"] == "operator-a"),
        "a stopped leader takes itself out of the receiver's EndpointSlice: {:?}",
        after_exit.data
    );

    support::poll_until("operator-b to take the Lease", TAKEOVER_BOUND, || async {
        (lease_holder(&client, &namespace).await.as_deref() == Some("operator-b")).then_some(())
    })
    .await;
    support::poll_until(
        "operator-b to report itself leader",
        support::WAIT,
        || async { (metric_sum(&standby.metrics().await, LEADER_GAUGE) == 1.0).then_some(()) },
    )
    .await;
    assert_eq!(
        standby.get("/readyz").await,
        Some((200, "ok".to_string())),
        "the new leader is ready and no longer a standby"
    );
    wait_slice_points_at(&slices, "operator-b").await;
    let newcomer = tenant.seed_employees(1, "after")[0];
    support::poll_until(
        "the new leader to sync a new employee",
        LONG_WAIT,
        || async { (tenant.customers_with_external_id(newcomer).len() == 1).then_some(()) },
    )
    .await;
    support::delete_namespace(&client, &namespace).await;
}

/// Name of the receiver Service's EndpointSlice in these tests.
const RECEIVER: &str = "rpo-e2e-webhook";

/// The receiver Service as the chart creates it (no selector); returns the API of its
/// EndpointSlice, which the syncing process creates and keeps.
async fn create_receiver_slice(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let service: Service = serde_json::from_value(serde_json::json!({
        "metadata": { "name": RECEIVER },
        "spec": { "ports": [{ "name": "webhook", "port": 80, "targetPort": 8443, "protocol": "TCP" }] },
    }))
    .expect("service");
    services
        .create(&Default::default(), &service)
        .await
        .expect("create the receiver Service");
    let group = oneshot::group(client, "discovery.k8s.io")
        .await
        .expect("discovery.k8s.io is served");
    let (resource, _) = group
        .recommended_kind("EndpointSlice")
        .expect("EndpointSlice is served");
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// Waits until the slice's only endpoint is the pod `identity`.
async fn wait_slice_points_at(slices: &Api<DynamicObject>, identity: &str) {
    support::poll_until(
        &format!("the receiver's EndpointSlice to point at {identity}"),
        support::WAIT,
        || async {
            let slice = slices.get(RECEIVER).await.ok()?;
            let endpoints = slice.data["endpoints"].as_array()?.clone();
            let owned = slice.metadata.owner_references.unwrap_or_default();
            (endpoints.len() == 1
                && endpoints[0]["targetRef"]["name"] == identity
                && owned
                    .iter()
                    .any(|o| o.kind == "Service" && o.name == RECEIVER))
            .then_some(())
        },
    )
    .await;
}
