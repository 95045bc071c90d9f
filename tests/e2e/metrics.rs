//! The operator's metrics as Prometheus scrapes them (issue 15): series of a deleted resource go
//! away (so "sync stale" alerts stop), and the upstream request counter and latency histogram
//! name the API with the same label; and every metric the chart's Grafana dashboard and
//! PrometheusRule name is one a running operator exports (issue 29), with the labels they group
//! by. Run: `scripts/test.sh --test e2e -- metrics::`.

use crate::support;

use std::collections::BTreeSet;
use std::process::Command;

use kube::api::{Api, DeleteParams};
use reteach_personio_operator::api::EmployeeSync;
use support::process::{
    install_crds, log_dir, OperatorOptions, OperatorProcess, Tenant, TenantCredentials,
    EMPLOYEE_SYNC, LONG_WAIT,
};

const LAST_SUCCESS: &str = "reteach_personio_last_success_timestamp_seconds{";
/// An EmployeeSync whose Secrets do not exist: every run fails (Stalled).
const BROKEN_EMPLOYEE_SYNC: &str = "apiVersion: sync.reteach.io/v1alpha1
kind: EmployeeSync
metadata: {name: broken}
spec:
  interval: 1m
  personio: {credentialsSecretRef: {name: missing}}
  reteach: {credentialsSecretRef: {name: missing}}
";

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

/// The chart rendered with the dashboard and the PrometheusRule: every `reteach_personio_*` name
/// in their queries (series names as PromQL uses them: `_total`, `_bucket`, …).
fn names_in_dashboard_and_rules() -> BTreeSet<String> {
    let output = Command::new(support::helm_bin())
        .args(["template", "rpo"])
        .arg(support::repo_root().join("charts/reteach-personio-operator"))
        .args([
            "--set",
            "grafana.dashboard.enabled=true",
            "--set",
            "metrics.prometheusRule.enabled=true",
            "--show-only",
            "templates/grafana-dashboard.yaml",
            "--show-only",
            "templates/prometheusrule.yaml",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run helm: {e}"));
    assert!(output.status.success(), "helm template: {output:?}");
    let objects = support::parse_manifests(&String::from_utf8_lossy(&output.stdout))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut queries = Vec::new();
    for object in &objects {
        if let Some(json) = object.data["data"]["reteach-personio-operator.json"].as_str() {
            let dashboard: serde_json::Value =
                serde_json::from_str(json).unwrap_or_else(|e| panic!("dashboard: {e}"));
            for panel in dashboard["panels"].as_array().cloned().unwrap_or_default() {
                for target in panel["targets"].as_array().cloned().unwrap_or_default() {
                    queries.push(target["expr"].as_str().unwrap_or_default().to_string());
                }
            }
        }
        for group in object.data["spec"]["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            for rule in group["rules"].as_array().cloned().unwrap_or_default() {
                queries.push(rule["expr"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    assert!(
        queries.len() >= 15,
        "dashboard and alert queries: {queries:?}"
    );
    let pattern = regex::Regex::new(r"reteach_personio_[a-z_]+").unwrap_or_else(|e| panic!("{e}"));
    queries
        .iter()
        .flat_map(|query| pattern.find_iter(query).map(|m| m.as_str().to_string()))
        .collect()
}

/// Series names the exposition declares (`# TYPE` lines), as PromQL names them.
fn exported_names(metrics: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in metrics.lines() {
        let mut fields = line.strip_prefix("# TYPE ").unwrap_or_default().split(' ');
        let (Some(name), Some(kind)) = (fields.next(), fields.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_count", "_sum"],
            _ => &[""],
        };
        for suffix in suffixes {
            names.insert(format!("{name}{suffix}"));
        }
    }
    names
}

/// The label names of the first series of `name`.
fn labels_of(metrics: &str, name: &str) -> BTreeSet<String> {
    let line = metrics
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .unwrap_or_else(|| panic!("no series of {name}:\n{metrics}"));
    let inside = &line[name.len() + 1..line.find('}').unwrap_or(line.len())];
    inside
        .split(',')
        .filter_map(|pair| pair.split('=').next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_of_the_dashboard_and_the_alerts_is_exported() {
    let wanted = names_in_dashboard_and_rules();
    for name in [
        "reteach_personio_sync_runs_total",
        "reteach_personio_sync_failures_total",
        "reteach_personio_records_total",
        "reteach_personio_leader",
        "reteach_personio_upstream_requests_total",
    ] {
        assert!(
            wanted.contains(name),
            "the dashboard shows {name}: {wanted:?}"
        );
    }

    let client = support::client().await;
    install_crds(&client).await;
    let logs = log_dir("metrics-dashboard");
    let namespace = support::fresh_namespace(&client, "metrics-dash").await;
    let tenant = Tenant::start(&client, &namespace, TenantCredentials::default()).await;
    let employees = tenant.seed_employees(2, "md");
    let mut operator = OperatorProcess::spawn(&OperatorOptions::new(&namespace), &logs);
    operator.wait_ready().await;
    tenant.apply_employee_sync(&client, "1m").await;
    tenant
        .wait_employee_sync_succeeded(&client, LONG_WAIT)
        .await;
    // A resource whose Secrets are missing: its failed runs feed the failure counter.
    support::try_apply_yaml(&client, BROKEN_EMPLOYEE_SYNC, Some(&namespace))
        .await
        .unwrap_or_else(|e| panic!("cannot apply the broken EmployeeSync: {e}"));
    tenant.seed_certificates(&employees, 1);
    tenant.apply_certificate_sync(&client, "1m").await;
    tenant
        .wait_certificate_sync_succeeded_after(&client, None, LONG_WAIT)
        .await;

    let metrics = support::poll_until("a failed run counted", LONG_WAIT, || async {
        let metrics = operator.metrics().await;
        metrics
            .contains("reteach_personio_sync_failures_total{")
            .then_some(metrics)
    })
    .await;
    let exported = exported_names(&metrics);
    let missing: Vec<&String> = wanted.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "named in the dashboard or the PrometheusRule, not exported: {missing:?}\nexported: {exported:?}"
    );
    // The dashboard's "per namespace" panels group by the resource's namespace.
    for name in [
        "reteach_personio_sync_runs_total",
        "reteach_personio_records_total",
        "reteach_personio_last_success_timestamp_seconds",
    ] {
        let labels = labels_of(&metrics, name);
        assert!(labels.contains("namespace"), "{name} carries {labels:?}");
    }
    let uploaded = metrics.lines().any(|l| {
        l.starts_with("reteach_personio_records_total{")
            && l.contains("kind=\"CertificateSync\"")
            && l.contains(&format!("namespace=\"{namespace}\""))
            && l.contains("action=\"uploaded\"")
    });
    assert!(
        uploaded,
        "the upload is counted in its namespace:\n{metrics}"
    );
    assert!(operator.exited().is_none(), "the operator keeps running");
    support::delete_namespace(&client, &namespace).await;
}

#[tokio::test]
async fn the_dashboard_config_map_is_accepted_and_holds_a_dashboard_per_namespace() {
    let client = support::client().await;
    let namespace = support::fresh_namespace(&client, "dashboard").await;
    let output = Command::new(support::helm_bin())
        .args(["template", "rpo"])
        .arg(support::repo_root().join("charts/reteach-personio-operator"))
        .args([
            "--namespace",
            "operators",
            "--set",
            "grafana.dashboard.enabled=true",
            "--set",
            &format!("grafana.dashboard.namespace={namespace}"),
            "--set-string",
            "grafana.dashboard.annotations.grafana_folder=Operators",
            "--show-only",
            "templates/grafana-dashboard.yaml",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run helm: {e}"));
    assert!(output.status.success(), "helm template: {output:?}");
    let objects = support::parse_manifests(&String::from_utf8_lossy(&output.stdout))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(objects.len(), 1, "one ConfigMap");
    let map = &objects[0];
    assert_eq!(map.metadata.namespace.as_deref(), Some(namespace.as_str()));
    let labels = map.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("grafana_dashboard").map(String::as_str),
        Some("1")
    );
    let json = map.data["data"]["reteach-personio-operator.json"]
        .as_str()
        .unwrap_or_else(|| panic!("no dashboard in {map:?}"));
    let dashboard: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("the dashboard is not JSON: {e}"));
    let variables = dashboard["templating"]["list"].to_string();
    assert!(variables.contains("\"namespace\""), "{variables}");
    let panels = dashboard["panels"].as_array().cloned().unwrap_or_default();
    let titles: Vec<String> = panels.iter().map(|p| p["title"].to_string()).collect();
    for wanted in ["Runs", "Failed", "uploaded", "set aside", "429", "Leader"] {
        assert!(
            titles.iter().any(|t| t.contains(wanted)),
            "a panel about {wanted}: {titles:?}"
        );
    }
    check_queries_with_promtool(&panels);
    support::apply_objects(&client, objects, None, true)
        .await
        .unwrap_or_else(|e| panic!("the apiserver refuses the dashboard ConfigMap: {e}"));
    support::delete_namespace(&client, &namespace).await;
}

/// Every panel query is valid PromQL: `promtool check rules` on them as recording rules, with
/// Grafana's variables filled in as Grafana would.
fn check_queries_with_promtool(panels: &[serde_json::Value]) {
    let rules: Vec<serde_json::Value> = panels
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .enumerate()
        .map(|(i, target)| {
            let expr = target["expr"].as_str().unwrap_or_default();
            let expr = expr
                .replace("$__rate_interval", "5m")
                .replace("$namespace", ".*");
            serde_json::json!({"record": format!("dashboard:query_{i}"), "expr": expr})
        })
        .collect();
    assert!(rules.len() >= 10, "{} queries", rules.len());
    let dir = std::env::temp_dir().join(format!("rpo-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let file = dir.join("dashboard-queries.json");
    let groups = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    std::fs::write(&file, groups.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool (apt-get install prometheus): {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "a dashboard query is not valid PromQL: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
