//! The operator binary as an SRE runs it: leader election between two processes, the HTTP
//! endpoints, JSON logs that name the resource, and no personal data or secret anywhere it writes
//! (issues 6 and 9). Runs against the real apiserver: `scripts/test.sh --test e2e -- operator_process::`.

use crate::support;

use std::path::Path;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use kube::Client;
use reteach_personio_operator::sim::personio::{EmployeeSeed, OrgUnit};
use reteach_personio_operator::sim::reteach::{SimCredentials, SimCustomer};
use serde_json::Value;
use support::process::{
    install_crds, lease_holder, log_dir, metric_sum, OperatorOptions, OperatorProcess, Tenant,
    TenantCredentials, LONG_WAIT,
};

const UPSTREAM_REQUESTS: &str = "reteach_personio_upstream_requests";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_syncs_and_the_other_takes_over_when_it_is_killed() {
    let client = support::client().await;
    install_crds(&client).await;
    let logs = log_dir("leader");
    let namespace = support::fresh_namespace(&client, "leader").await;
    let tenant = Tenant::start(&client, &namespace, TenantCredentials::default()).await;
    tenant.seed_employees(3, "le");
    tenant.apply_employee_sync(&client, "1s").await;

    let options = OperatorOptions::new(&namespace);
    let mut first = OperatorProcess::spawn(&options.clone().leader("operator-a"), &logs);
    let holder = support::poll_until("a lease holder", support::WAIT, || {
        lease_holder(&client, &namespace)
    })
    .await;
    assert_eq!(
        holder, "operator-a",
        "the first operator takes the free lease"
    );
    tenant
        .wait_employee_sync_succeeded(&client, support::WAIT)
        .await;

    let mut second = OperatorProcess::spawn(&options.clone().leader("operator-b"), &logs);
    support::poll_until("operator-b to serve /healthz", support::WAIT, || async {
        matches!(second.get("/healthz").await, Some((200, _))).then_some(())
    })
    .await;
    // The leader keeps syncing (every second) while the other one runs and waits.
    let baseline = metric_sum(&first.metrics().await, UPSTREAM_REQUESTS);
    support::poll_until("the leader to keep syncing", support::WAIT, || async {
        let now = metric_sum(&first.metrics().await, UPSTREAM_REQUESTS);
        (now >= baseline + 10.0).then_some(())
    })
    .await;
    assert_eq!(
        metric_sum(&second.metrics().await, UPSTREAM_REQUESTS),
        0.0,
        "the replica without the lease must not call Personio or reteach"
    );
    assert_eq!(
        lease_holder(&client, &namespace).await.as_deref(),
        Some("operator-a")
    );
    assert!(
        second.exited().is_none(),
        "the waiting replica must keep running"
    );

    first.kill().await;
    let newcomer = tenant.seed_employees(1, "late")[0];
    support::poll_until("operator-b to take the lease", LONG_WAIT, || async {
        (lease_holder(&client, &namespace).await.as_deref() == Some("operator-b")).then_some(())
    })
    .await;
    support::poll_until(
        "the new leader to sync the new employee",
        LONG_WAIT,
        || async { (tenant.customers_with_external_id(newcomer).len() == 1).then_some(()) },
    )
    .await;
    assert!(metric_sum(&second.metrics().await, UPSTREAM_REQUESTS) > 0.0);
    support::delete_namespace(&client, &namespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_health_readiness_and_the_documented_metrics() {
    let client = support::client().await;
    install_crds(&client).await;
    let logs = log_dir("endpoints");
    let namespace = support::fresh_namespace(&client, "endpoints").await;
    let tenant = Tenant::start(&client, &namespace, TenantCredentials::default()).await;
    tenant.seed_employees(2, "ep");
    let mut operator = OperatorProcess::spawn(&OperatorOptions::new(&namespace), &logs);
    support::poll_until("/healthz to answer 200", support::WAIT, || async {
        matches!(operator.get("/healthz").await, Some((200, _))).then_some(())
    })
    .await;
    operator.wait_ready().await;
    tenant.apply_employee_sync(&client, "1m").await;
    tenant
        .wait_employee_sync_succeeded(&client, support::WAIT)
        .await;

    let metrics = operator.metrics().await;
    for family in [
        "reteach_personio_sync_runs",
        "reteach_personio_upstream_requests",
        "reteach_personio_last_success_timestamp_seconds",
        "reteach_personio_sync_run_duration_seconds_bucket",
    ] {
        assert!(
            metric_sum(&metrics, family) > 0.0,
            "/metrics must report {family} after a successful run:\n{metrics}"
        );
    }
    let last_success = metrics
        .lines()
        .find(|l| l.starts_with("reteach_personio_last_success_timestamp_seconds{"))
        .unwrap_or_else(|| panic!("no last-success series:\n{metrics}"));
    assert!(
        last_success.contains(&format!("namespace=\"{namespace}\""))
            && last_success.contains("name=\"personio\""),
        "the last-success series names its resource: {last_success}"
    );
    support::delete_namespace(&client, &namespace).await;
}

/// Values that must never appear in anything the operator writes.
struct Canaries {
    credentials: TenantCredentials,
    personal: Vec<&'static str>,
}

impl Canaries {
    fn new() -> Self {
        Self {
            credentials: TenantCredentials {
                personio: (
                    "canary-personio-client-7Qx".into(),
                    "canary-personio-secret-9Zk".into(),
                ),
                reteach: SimCredentials {
                    client_id: "canary-reteach-client-3Rv".into(),
                    client_secret: "canary-reteach-secret-5Wp".into(),
                    client_code: "canary-reteach-code-8Jm".into(),
                },
            },
            personal: vec![
                "Zanzibarina",
                "Quokkaberg",
                "zanzibarina.quokka@canary-leak.test",
                "Ortwinello",
                "Wombatstein",
                "broken.canary@@leak",
                "Chief Canary Officer",
                "Canary Department Xyz",
                "Canary Office Qwv",
                "Unknownia",
                "unknownia@canary-leak.test",
            ],
        }
    }

    fn all(&self) -> Vec<String> {
        let (id, secret) = &self.credentials.personio;
        let reteach = &self.credentials.reteach;
        let mut all = vec![
            id.clone(),
            secret.clone(),
            reteach.client_id.clone(),
            reteach.client_secret.clone(),
            reteach.client_code.clone(),
        ];
        all.extend(self.personal.iter().map(|s| s.to_string()));
        all
    }

    /// The seeded tenant: a full employee, one with an invalid e-mail address, and a reteach user
    /// unknown to Personio with a certificate; returns the Personio id of the full employee.
    fn seed(&self, tenant: &Tenant) -> i64 {
        let mut employee = EmployeeSeed::new(
            "Zanzibarina",
            "Quokkaberg",
            "zanzibarina.quokka@canary-leak.test",
        )
        .with_position("Chief Canary Officer");
        employee.department = Some(OrgUnit {
            id: 7001,
            name: "Canary Department Xyz".into(),
        });
        employee.office = Some(OrgUnit {
            id: 7002,
            name: "Canary Office Qwv".into(),
        });
        let id = tenant.personio.add_employee(employee);
        tenant.personio.add_employee(EmployeeSeed::new(
            "Ortwinello",
            "Wombatstein",
            "broken.canary@@leak",
        ));
        tenant.reteach.add_customer(SimCustomer {
            external_id: Some("999999".into()),
            email: Some("unknownia@canary-leak.test".into()),
            first_name: Some("Unknownia".into()),
            last_name: Some("Unknownia".into()),
            ..SimCustomer::default()
        });
        id
    }
}

/// Everything an operator process left behind after a full run of both syncs.
struct Evidence {
    logs: String,
    events: String,
    statuses: String,
    metrics: String,
}

/// Runs both syncs to completion with seeded canaries under one operator process, then stops it.
async fn full_run(client: &Client, prefix: &str, format: &'static str, logs: &Path) -> Evidence {
    let canaries = Canaries::new();
    let namespace = support::fresh_namespace(client, prefix).await;
    let tenant = Tenant::start(client, &namespace, canaries.credentials.clone()).await;
    let employee = canaries.seed(&tenant);
    let options = OperatorOptions::new(&namespace)
        .log_format(format)
        .rust_log("info,reteach_personio_operator=debug");
    let mut operator = OperatorProcess::spawn(&options, logs);
    tenant.apply_employee_sync(client, "1m").await;
    tenant
        .wait_employee_sync_succeeded(client, support::WAIT)
        .await;
    let certificates = tenant.seed_certificates(&[employee], 2);
    tenant
        .reteach
        .add_completion(
            "999999",
            "Course of an unknown employee",
            chrono::Utc::now(),
            true,
        )
        .unwrap_or_else(|| panic!("the unknown employee is in reteach"));
    tenant.apply_certificate_sync(client, "1m").await;
    let sync = tenant
        .wait_certificate_sync_succeeded_after(client, None, LONG_WAIT)
        .await;
    tenant.assert_each_certificate_once(&certificates);
    assert_eq!(
        sync["status"]["lastRun"]["failed"], 1,
        "the certificate of the employee Personio does not know is reported: {}",
        sync["status"]
    );
    let employees = tenant.employee_sync(client).await;
    assert!(
        employees["status"]["failures"]
            .as_array()
            .is_some_and(|failures| !failures.is_empty()),
        "the invalid e-mail address is reported: {}",
        employees["status"]
    );
    let metrics = operator.metrics().await;
    let status = operator.terminate(support::WAIT).await;
    assert!(status.success(), "SIGTERM must exit 0, got {status}");
    let events = Api::<Event>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("cannot list events: {e}"));
    assert!(!events.items.is_empty(), "the runs publish events");
    let statuses = format!("{}\n{}", employees["status"], sync["status"]);
    let evidence = Evidence {
        logs: operator.logs(),
        events: serde_json::to_string(&events.items).unwrap_or_default(),
        statuses,
        metrics,
    };
    support::delete_namespace(client, &namespace).await;
    evidence
}

fn assert_no_canary(evidence: &Evidence) {
    for canary in Canaries::new().all() {
        for (place, text) in [
            ("logs", &evidence.logs),
            ("events", &evidence.events),
            ("status", &evidence.statuses),
            ("metrics", &evidence.metrics),
        ] {
            let leaked: Vec<&str> = text.lines().filter(|l| l.contains(&canary)).collect();
            assert!(
                leaked.is_empty(),
                "{canary:?} leaked into the {place}:\n{}",
                leaked.join("\n")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_events_status_and_metrics_carry_no_names_emails_or_secrets() {
    let client = support::client().await;
    install_crds(&client).await;
    let evidence = full_run(&client, "leak-text", "text", &log_dir("leak-text")).await;
    assert_no_canary(&evidence);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_events_status_and_metrics_carry_no_names_emails_or_secrets() {
    let client = support::client().await;
    install_crds(&client).await;
    let evidence = full_run(&client, "leak-json", "json", &log_dir("leak-json")).await;
    assert_no_canary(&evidence);
}

/// Fields that make a log line about one resource (or one of its records).
const RESOURCE_FIELDS: [&str; 6] = [
    "namespace",
    "name",
    "object",
    "certificate_id",
    "personio_id",
    "document_id",
];

/// `(namespace, name)` a JSON log line carries, at top level or in one of its spans.
fn resource_of(line: &Value) -> Option<(String, String)> {
    let top = (line["namespace"].as_str(), line["name"].as_str());
    if let (Some(namespace), Some(name)) = top {
        return Some((namespace.into(), name.into()));
    }
    line["spans"].as_array()?.iter().find_map(|span| {
        Some((
            span["namespace"].as_str()?.to_string(),
            span["resource"].as_str()?.to_string(),
        ))
    })
}

fn is_about_a_resource(line: &Value) -> bool {
    RESOURCE_FIELDS.iter().any(|f| !line[f].is_null())
        || line["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|s| s["name"] == "reconciling object"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_log_line_about_a_resource_names_its_namespace_and_name() {
    let client = support::client().await;
    install_crds(&client).await;
    let evidence = full_run(&client, "json-lines", "json", &log_dir("json-lines")).await;
    let mut about_resources = 0;
    for text in evidence.logs.lines().filter(|l| !l.trim().is_empty()) {
        let line: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {text}"));
        if !is_about_a_resource(&line) {
            continue;
        }
        about_resources += 1;
        let (namespace, name) = resource_of(&line)
            .unwrap_or_else(|| panic!("a line about a resource lacks namespace/name: {text}"));
        assert!(
            namespace.starts_with("json-lines-") && (name == "personio" || name == "certificates"),
            "a line names the wrong resource {namespace}/{name}: {text}"
        );
    }
    assert!(
        about_resources >= 4,
        "the runs must log about their resources:\n{}",
        evidence.logs
    );
}
