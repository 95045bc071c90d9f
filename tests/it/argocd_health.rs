//! The Argo CD health checks of `health/argocd/` (issue 15) against recorded status objects, in the
//! format of Argo CD's own `resource_customizations` tests (`health_test.yaml` + `testdata/`).

use crate::health_lua;

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct HealthTests {
    tests: Vec<HealthTest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthTest {
    health_status: Expected,
    input_path: String,
}

#[derive(Deserialize)]
struct Expected {
    status: String,
    message: String,
}

fn cases(kind: &str) -> Vec<(HealthTest, Value)> {
    let dir = health_lua::check_dir(kind);
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    };
    let tests: HealthTests = serde_norway::from_str(&read("health_test.yaml"))
        .unwrap_or_else(|e| panic!("invalid health_test.yaml of {kind}: {e}"));
    tests
        .tests
        .into_iter()
        .map(|test| {
            let object: Value = serde_norway::from_str(&read(&test.input_path))
                .unwrap_or_else(|e| panic!("invalid {}: {e}", test.input_path));
            (test, object)
        })
        .collect()
}

#[test]
fn health_checks_give_the_recorded_verdicts() {
    for kind in health_lua::KINDS {
        let cases = cases(kind);
        let statuses: std::collections::BTreeSet<&str> = cases
            .iter()
            .map(|(test, _)| test.health_status.status.as_str())
            .collect();
        assert_eq!(
            statuses,
            ["Degraded", "Healthy", "Progressing", "Suspended"].into(),
            "{kind}: every verdict is covered"
        );
        for (test, object) in &cases {
            assert_eq!(object["kind"], kind, "{}", test.input_path);
            let (status, message) = health_lua::health(kind, object);
            assert_eq!(
                (status.as_str(), message.as_str()),
                (
                    test.health_status.status.as_str(),
                    test.health_status.message.as_str()
                ),
                "{kind} {}",
                test.input_path
            );
        }
    }
}

#[test]
fn both_kinds_ship_the_same_rules() {
    let [employee, certificate] = health_lua::KINDS.map(|kind| {
        std::fs::read_to_string(health_lua::check_dir(kind).join("health.lua"))
            .unwrap_or_else(|e| panic!("no health.lua for {kind}: {e}"))
    });
    assert_eq!(
        employee, certificate,
        "keep both health.lua files identical"
    );
}

#[test]
fn an_object_without_status_is_progressing_not_healthy() {
    let object = serde_json::json!({
        "apiVersion": "sync.reteach.io/v1alpha1",
        "kind": "EmployeeSync",
        "metadata": {"name": "personio", "generation": 1},
        "spec": {"interval": "5m"},
    });
    let (status, _) = health_lua::health("EmployeeSync", &object);
    assert_eq!(status, "Progressing");
}

#[test]
fn a_failing_upstream_is_degraded_and_waiting_for_the_employee_sync_is_progressing() {
    let with_ready = |kind: &str, reason: &str| {
        serde_json::json!({
            "apiVersion": "sync.reteach.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": "x", "generation": 2},
            "spec": {},
            "status": {
                "observedGeneration": 2,
                "conditions": [{"type": "Ready", "status": "False", "reason": reason,
                                "message": "503 from Personio"}],
            },
        })
    };
    let failing = health_lua::health(
        "EmployeeSync",
        &with_ready("EmployeeSync", "PersonioUnavailable"),
    );
    assert_eq!(
        failing,
        ("Degraded".to_string(), "503 from Personio".to_string())
    );
    let waiting = health_lua::health(
        "CertificateSync",
        &with_ready("CertificateSync", "WaitingForEmployeeSync"),
    );
    assert_eq!(waiting.0, "Progressing");
}

#[test]
fn fields_the_academy_does_not_keep_leave_the_resource_healthy_and_say_so() {
    let message = "2 employees: 2 created, 0 updated (0 locked, 0 unlocked), 0 unchanged, 0 skipped, 0 failed; reteach does not keep position (refused): left out of writes";
    let object = serde_json::json!({
        "apiVersion": "sync.reteach.io/v1alpha1",
        "kind": "EmployeeSync",
        "metadata": {"name": "x", "generation": 1},
        "spec": {},
        "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "True", "reason": "UnsupportedFields",
                            "message": message}],
            "unsupportedFields": [{"field": "position", "reason": "Refused",
                                   "mapping": "0123456789abcdef",
                                   "since": "2026-12-02T16:00:00Z"}],
        },
    });
    let (status, shown) = health_lua::health("EmployeeSync", &object);
    assert_eq!(status, "Healthy");
    assert!(shown.contains("position (refused)"), "{shown}");
}
