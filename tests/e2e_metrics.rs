//! The operator's metrics as Prometheus scrapes them (issue 15): series of a deleted resource go
//! away (so "sync stale" alerts stop), and the upstream request counter and latency histogram
//! name the API with the same label. Run: `scripts/test.sh --test e2e_metrics`.

mod support;

use kube::api::{Api, DeleteParams};
use reteach_personio_operator::api::EmployeeSync;
use support::process::{
    install_crds, log_dir, OperatorOptions, OperatorProcess, Tenant, TenantCredentials,
    EMPLOYEE_SYNC,
};

const LAST_SUCCESS: &str = "reteach_personio_last_success_timestamp_seconds{";

fn series_of<'a>(metrics: &'a str, family: &str, namespace: &str) -> Vec<&'a str> {
    metrics
        .lines()
        .filter(|l| l.starts_with(family) && l.contains(&format!("namespace=\"{namespace}\"")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_of_a_deleted_resource_are_removed() {
    let client = support::client().await;
    install_crds(&client).await;
    let logs = log_dir("metrics");
    let namespace = support::fresh_namespace(&client, "metrics").await;
    let tenant = Tenant::start(&client, &namespace, TenantCredentials::default()).await;
    tenant.seed_employees(2, "mx");
    let mut operator = OperatorProcess::spawn(&OperatorOptions::new(&namespace), &logs);
    operator.wait_ready().await;
    tenant.apply_employee_sync(&client, "1m").await;
    tenant
        .wait_employee_sync_succeeded(&client, support::WAIT)
        .await;
    let metrics = operator.metrics().await;
    assert_eq!(
        series_of(&metrics, LAST_SUCCESS, &namespace).len(),
        1,
        "one last-success series for the resource:\n{metrics}"
    );
    for family in [
        "reteach_personio_upstream_requests_total{",
        "reteach_personio_upstream_request_duration_seconds_count{",
    ] {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(family))
            .unwrap_or_else(|| panic!("no {family} series:\n{metrics}"));
        assert!(
            line.contains("api=\"personio\"") || line.contains("api=\"reteach\""),
            "{line}"
        );
    }

    Api::<EmployeeSync>::namespaced(client.clone(), &namespace)
        .delete(EMPLOYEE_SYNC, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("cannot delete the EmployeeSync: {e}"));
    support::poll_until(
        "the deleted resource's series to go",
        support::WAIT,
        || async {
            let metrics = operator.metrics().await;
            series_of(&metrics, LAST_SUCCESS, &namespace)
                .is_empty()
                .then_some(())
        },
    )
    .await;
    assert!(operator.exited().is_none(), "the operator keeps running");
    support::delete_namespace(&client, &namespace).await;
}
