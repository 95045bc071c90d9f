//! End-to-end: the Helm chart renders with the real `helm`, grants least privilege only, runs a
//! hardened pod, and everything it renders is accepted by a real apiserver (server-side dry run).

mod support;

use std::process::Command;

use kube::api::DynamicObject;
use kube::Client;
use serde_json::Value;

const CHART: &str = "charts/reteach-personio-operator";
const RELEASE: &str = "rpo";

/// `helm template` of the chart into `namespace` with `--set` values.
fn render(namespace: &str, values: &[String]) -> Vec<DynamicObject> {
    let mut command = Command::new(support::helm_bin());
    command.current_dir(support::repo_root()).args([
        "template",
        RELEASE,
        CHART,
        "--namespace",
        namespace,
    ]);
    for value in values {
        command.args(["--set", value]);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", support::helm_bin()));
    assert!(
        output.status.success(),
        "helm template {values:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let yaml = String::from_utf8(output.stdout).expect("helm prints UTF-8");
    support::parse_manifests(&yaml).unwrap_or_else(|e| panic!("helm rendered invalid YAML: {e}"))
}

fn kind(object: &DynamicObject) -> &str {
    object.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("")
}

fn of_kind<'a>(objects: &'a [DynamicObject], wanted: &str) -> Vec<&'a DynamicObject> {
    objects.iter().filter(|o| kind(o) == wanted).collect()
}

fn namespace_of(object: &DynamicObject) -> &str {
    object.metadata.namespace.as_deref().unwrap_or("")
}

fn as_strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn contains_wildcard(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('*'),
        Value::Array(items) => items.iter().any(contains_wildcard),
        Value::Object(map) => map.values().any(contains_wildcard),
        _ => false,
    }
}

/// Every RBAC object: no wildcard anywhere, no built-in powerful role, no verb that lets the
/// operator write spec, grant itself rights or touch anything but its own resources.
fn assert_least_privilege(objects: &[DynamicObject]) {
    const ALLOWED: [(&str, &str, &[&str]); 7] = [
        (
            "sync.reteach.io",
            "employeesyncs",
            &["get", "list", "watch"],
        ),
        (
            "sync.reteach.io",
            "certificatesyncs",
            &["get", "list", "watch"],
        ),
        (
            "sync.reteach.io",
            "employeesyncs/status",
            &["get", "patch", "update"],
        ),
        (
            "sync.reteach.io",
            "certificatesyncs/status",
            &["get", "patch", "update"],
        ),
        // Only `get`: no list/watch on Secrets anywhere (each run GETs the two it names).
        ("", "secrets", &["get"]),
        ("events.k8s.io", "events", &["create", "patch"]),
        (
            "coordination.k8s.io",
            "leases",
            &["get", "create", "update", "patch"],
        ),
    ];
    let rbac: Vec<&DynamicObject> = objects
        .iter()
        .filter(|o| ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"].contains(&kind(o)))
        .collect();
    assert!(!rbac.is_empty(), "the chart renders no RBAC");
    for object in rbac {
        let name = object.metadata.name.as_deref().unwrap_or("");
        let data = serde_json::to_value(object).expect("object serializes");
        assert!(
            !contains_wildcard(&data),
            "{} {name} contains a `*`: {data}",
            kind(object)
        );
        if let Some(role) = data["roleRef"]["name"].as_str() {
            assert!(
                !["cluster-admin", "admin", "edit"].contains(&role),
                "{} {name} binds the built-in role {role}",
                kind(object)
            );
        }
        for rule in data["rules"].as_array().into_iter().flatten() {
            assert!(rule.get("nonResourceURLs").is_none(), "{name}: {rule}");
            assert!(rule.get("resourceNames").is_none() || rule["resourceNames"].is_array());
            for group in as_strings(&rule["apiGroups"]) {
                for resource in as_strings(&rule["resources"]) {
                    let allowed = ALLOWED
                        .iter()
                        .find(|(g, r, _)| *g == group && *r == resource)
                        .unwrap_or_else(|| panic!("{name} grants access to {group}/{resource}"));
                    for verb in as_strings(&rule["verbs"]) {
                        assert!(
                            allowed.2.contains(&verb),
                            "{name} grants `{verb}` on {group}/{resource}"
                        );
                    }
                }
            }
        }
    }
}

fn rules_of(object: &DynamicObject) -> Vec<Value> {
    object.data["rules"].as_array().cloned().unwrap_or_default()
}

fn grants(object: &DynamicObject, resource: &str) -> bool {
    rules_of(object)
        .iter()
        .any(|rule| as_strings(&rule["resources"]).contains(&resource))
}

fn deployment(objects: &[DynamicObject]) -> Value {
    let deployments = of_kind(objects, "Deployment");
    assert_eq!(deployments.len(), 1, "exactly one Deployment");
    serde_json::to_value(deployments[0]).expect("Deployment serializes")
}

fn operator_container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn args_of(deployment: &Value) -> Vec<&str> {
    as_strings(&operator_container(deployment)["args"])
}

async fn dry_run_apply(client: &Client, objects: Vec<DynamicObject>) {
    let count = objects.len();
    let applied = support::apply_objects(client, objects, None, true)
        .await
        .unwrap_or_else(|e| panic!("the apiserver rejected the rendered chart: {e}"));
    assert_eq!(applied.len(), count);
}

#[test]
fn default_values_grant_cluster_wide_read_and_status_write_only() {
    let objects = render("operators", &[]);

    assert_least_privilege(&objects);
    let cluster_roles = of_kind(&objects, "ClusterRole");
    assert_eq!(cluster_roles.len(), 1);
    assert!(grants(cluster_roles[0], "employeesyncs/status"));
    assert!(grants(cluster_roles[0], "secrets"));
    assert_eq!(of_kind(&objects, "ClusterRoleBinding").len(), 1);
    assert!(
        of_kind(&objects, "Role").is_empty(),
        "no namespaced Role without watchNamespaces or leader election"
    );
    assert!(
        !objects.iter().any(|o| grants(o, "leases")),
        "lease rights without leader election"
    );
    let deployment = deployment(&objects);
    assert_eq!(
        args_of(&deployment),
        [
            "run",
            "--log-format=json",
            "--allowed-upstream-hosts=api.personio.de,api.reteach.io"
        ],
        "only the official API hosts, and no plain http"
    );
}

#[test]
fn allowed_upstream_hosts_and_insecure_http_are_chart_values() {
    let objects = render(
        "operators",
        &[
            "allowedUpstreamHosts={api.personio.de,proxy.internal:8443}".into(),
            "allowInsecureHttp=true".into(),
        ],
    );
    let deployment = deployment(&objects);
    let args = args_of(&deployment);
    for wanted in [
        "--allowed-upstream-hosts=api.personio.de,proxy.internal:8443",
        "--allow-insecure-http",
    ] {
        assert!(args.contains(&wanted), "args {args:?} lack {wanted}");
    }
}

#[test]
fn watch_namespaces_and_leader_election_use_roles_only() {
    let objects = render(
        "operators",
        &[
            "watchNamespaces={team-a,team-b}".into(),
            "leaderElection.enabled=true".into(),
        ],
    );

    assert_least_privilege(&objects);
    assert!(of_kind(&objects, "ClusterRole").is_empty());
    assert!(of_kind(&objects, "ClusterRoleBinding").is_empty());
    let roles = of_kind(&objects, "Role");
    for namespace in ["team-a", "team-b"] {
        assert!(
            roles
                .iter()
                .any(|r| namespace_of(r) == namespace && grants(r, "employeesyncs")),
            "no Role in {namespace}"
        );
        assert!(
            of_kind(&objects, "RoleBinding")
                .iter()
                .any(|b| namespace_of(b) == namespace),
            "no RoleBinding in {namespace}"
        );
    }
    let lease_roles: Vec<_> = roles.iter().filter(|r| grants(r, "leases")).collect();
    assert_eq!(lease_roles.len(), 1, "one lease Role");
    assert_eq!(namespace_of(lease_roles[0]), "operators");
    assert!(!grants(lease_roles[0], "secrets"));

    let deployment = deployment(&objects);
    let args = args_of(&deployment);
    for wanted in [
        "--leader-election",
        "--watch-namespace=team-a",
        "--watch-namespace=team-b",
    ] {
        assert!(args.contains(&wanted), "args {args:?} lack {wanted}");
    }
}

#[test]
fn operator_pod_is_hardened_and_probed() {
    let deployment = deployment(&render("operators", &[]));
    let pod = &deployment["spec"]["template"]["spec"];
    let container = operator_container(&deployment);
    let security = &container["securityContext"];

    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(as_strings(&security["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    assert!(
        container["resources"]["requests"].is_object(),
        "no resource requests"
    );
    assert!(
        container["resources"]["limits"]["memory"].is_string(),
        "no memory limit"
    );
    assert_eq!(container["ports"][0]["name"], "http");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    let env = container["env"].as_array().cloned().unwrap_or_default();
    assert!(env.iter().any(|e| e["name"] == "RUST_LOG"), "no RUST_LOG");
}

#[test]
fn service_monitor_and_network_policy_render_when_enabled() {
    let objects = render(
        "operators",
        &[
            "metrics.serviceMonitor.enabled=true".into(),
            "networkPolicy.enabled=true".into(),
        ],
    );

    let monitors = of_kind(&objects, "ServiceMonitor");
    assert_eq!(monitors.len(), 1);
    assert_eq!(monitors[0].data["spec"]["endpoints"][0]["port"], "http");
    let policies = of_kind(&objects, "NetworkPolicy");
    assert_eq!(policies.len(), 1);
    let egress = policies[0].data["spec"]["egress"].to_string();
    assert!(egress.contains("443") && egress.contains("53"), "{egress}");
}

#[test]
fn more_replicas_without_leader_election_are_refused() {
    let output = Command::new(support::helm_bin())
        .current_dir(support::repo_root())
        .args(["template", RELEASE, CHART, "--set", "replicaCount=2"])
        .output()
        .expect("helm runs");
    assert!(
        !output.status.success(),
        "helm rendered two unelected replicas"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("leaderElection.enabled"), "{stderr}");
}

#[tokio::test]
async fn rendered_chart_is_accepted_by_the_apiserver_cluster_wide() {
    let client = support::client().await;
    let namespace = support::fresh_namespace(&client, "chart-default").await;

    dry_run_apply(&client, render(&namespace, &[])).await;

    support::delete_namespace(&client, &namespace).await;
}

#[tokio::test]
async fn rendered_chart_is_accepted_by_the_apiserver_namespaced() {
    let client = support::client().await;
    let release = support::fresh_namespace(&client, "chart-operators").await;
    let team_a = support::fresh_namespace(&client, "chart-team-a").await;
    let team_b = support::fresh_namespace(&client, "chart-team-b").await;
    let values = [
        format!("watchNamespaces={{{team_a},{team_b}}}"),
        "leaderElection.enabled=true".into(),
        "networkPolicy.enabled=true".into(),
        "networkPolicy.apiServerCidrs={10.0.0.1/32}".into(),
    ];

    dry_run_apply(&client, render(&release, &values)).await;

    for namespace in [release, team_a, team_b] {
        support::delete_namespace(&client, &namespace).await;
    }
}

/// `helm install` as the README shows it: installs the CRDs from the chart's `crds/` and the
/// operator; `helm uninstall` removes the operator but keeps the CRDs (and so every resource).
#[tokio::test]
async fn helm_install_and_uninstall_keep_the_crds() {
    let client = support::client().await;
    let namespace = support::fresh_namespace(&client, "chart-install").await;
    let helm = |args: &[&str]| {
        let output = Command::new(support::helm_bin())
            .current_dir(support::repo_root())
            .args(args)
            .args(["--namespace", &namespace, "--kubeconfig"])
            .arg(support::kubeconfig_path())
            .output()
            .expect("helm runs");
        assert!(
            output.status.success(),
            "helm {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };

    helm(&["install", "rpo-install", CHART]);
    for crd in [
        "employeesyncs.sync.reteach.io",
        "certificatesyncs.sync.reteach.io",
    ] {
        support::wait_crd_established(&client, crd).await;
    }
    let deployments =
        kube::Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), &namespace);
    let deployment = deployments
        .get("rpo-install-reteach-personio-operator")
        .await
        .expect("helm install created the Deployment");
    let service_account = deployment
        .spec
        .template
        .spec
        .and_then(|pod| pod.service_account_name);
    assert_eq!(
        service_account.as_deref(),
        Some("rpo-install-reteach-personio-operator")
    );

    helm(&["uninstall", "rpo-install"]);
    assert!(
        deployments
            .get_opt("rpo-install-reteach-personio-operator")
            .await
            .expect("apiserver answers")
            .is_none(),
        "helm uninstall left the Deployment"
    );
    support::wait_crd_established(&client, "employeesyncs.sync.reteach.io").await;
    support::delete_namespace(&client, &namespace).await;
}
