//! End-to-end: the Helm chart renders with the real `helm`, grants least privilege only, runs a
//! hardened pod, and everything it renders is accepted by a real apiserver (server-side dry run).

use crate::support;

use std::process::Command;

use kube::api::DynamicObject;
use kube::Client;
use serde_json::Value;

const CHART: &str = "charts/reteach-personio-operator";
const RELEASE: &str = "rpo";

/// `helm template` of the chart into `namespace` with `--set` values.
fn render(namespace: &str, values: &[String]) -> Vec<DynamicObject> {
    render_for(namespace, values, None)
}

/// [`render`] for a given Kubernetes version (`--kube-version`), e.g. the test apiserver's.
fn render_for(
    namespace: &str,
    values: &[String],
    kube_version: Option<&str>,
) -> Vec<DynamicObject> {
    let mut command = Command::new(support::helm_bin());
    command.current_dir(support::repo_root()).args([
        "template",
        RELEASE,
        CHART,
        "--namespace",
        namespace,
    ]);
    if let Some(version) = kube_version {
        command.args(["--kube-version", version]);
    }
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
        .filter(|o| !is_tenant_role(o))
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

/// A ClusterRole aggregated into Kubernetes' `admin`/`edit`/`view` for the tenants who create
/// the resources; never bound to the operator.
fn is_tenant_role(object: &DynamicObject) -> bool {
    kind(object) == "ClusterRole"
        && object
            .metadata
            .labels
            .iter()
            .flatten()
            .any(|(key, _)| key.starts_with("rbac.authorization.k8s.io/aggregate-to-"))
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
    let cluster_roles: Vec<_> = of_kind(&objects, "ClusterRole")
        .into_iter()
        .filter(|r| !is_tenant_role(r))
        .collect();
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
            "--shutdown-timeout-seconds=50",
            "--max-concurrent-runs=32",
            "--max-namespace-run-share=25",
            "--personio-budget-per-minute=2000",
            "--startup-spread=1h",
            "--allowed-upstream-hosts=api.personio.de,api.reteach.io",
            "--pdf-memory-mib=96"
        ],
        "only the official API hosts, no plain http, slots shared, Personio's per-IP budget, PDFs in memory bounded"
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        60
    );
    assert!(
        of_kind(&objects, "PodDisruptionBudget").is_empty(),
        "no PDB for one replica: it would block node drains"
    );
}

#[test]
fn tenants_get_the_two_kinds_through_the_built_in_roles_but_never_their_status() {
    let objects = render("operators", &[]);
    let tenant_roles: Vec<_> = objects.iter().filter(|o| is_tenant_role(o)).collect();
    assert_eq!(tenant_roles.len(), 2, "an edit and a view role");
    let label = |role: &DynamicObject, key: &str| {
        role.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(&format!("rbac.authorization.k8s.io/{key}")))
            .cloned()
    };
    let verbs_on = |role: &DynamicObject, resource: &str| -> Vec<String> {
        rules_of(role)
            .iter()
            .filter(|rule| as_strings(&rule["resources"]).contains(&resource))
            .flat_map(|rule| {
                as_strings(&rule["verbs"])
                    .into_iter()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let edit = tenant_roles
        .iter()
        .find(|r| label(r, "aggregate-to-edit").as_deref() == Some("true"))
        .expect("a role aggregated into edit");
    assert_eq!(label(edit, "aggregate-to-admin").as_deref(), Some("true"));
    let view = tenant_roles
        .iter()
        .find(|r| label(r, "aggregate-to-view").as_deref() == Some("true"))
        .expect("a role aggregated into view");
    for resource in ["employeesyncs", "certificatesyncs"] {
        for verb in ["create", "update", "patch", "delete"] {
            assert!(
                verbs_on(edit, resource).iter().any(|v| v == verb),
                "edit lacks {verb} on {resource}"
            );
        }
        assert_eq!(verbs_on(view, resource), ["get", "list", "watch"]);
        for role in [edit, view] {
            let status = format!("{resource}/status");
            assert!(
                verbs_on(role, &status)
                    .iter()
                    .all(|v| ["get", "list", "watch"].contains(&v.as_str())),
                "tenants may not write {status}"
            );
        }
    }
    for role in &tenant_roles {
        assert!(!contains_wildcard(
            &serde_json::to_value(role).unwrap_or_default()
        ));
        let name = role.metadata.name.clone().unwrap_or_default();
        assert!(
            !objects
                .iter()
                .any(|o| o.data["roleRef"]["name"] == name.as_str()),
            "{name} is aggregated, never bound by the chart"
        );
    }
    let off = render("operators", &["rbac.aggregateToDefaultRoles=false".into()]);
    assert!(!off.iter().any(is_tenant_role));
}

#[test]
fn several_replicas_get_a_disruption_budget_a_spread_and_a_per_release_lease() {
    let objects = render(
        "operators",
        &[
            "replicaCount=2".into(),
            "leaderElection.enabled=true".into(),
        ],
    );
    let budgets = of_kind(&objects, "PodDisruptionBudget");
    assert_eq!(budgets.len(), 1);
    let budget = serde_json::to_value(budgets[0]).unwrap_or_default();
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
    let deployment = deployment(&objects);
    let pod = &deployment["spec"]["template"];
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let spread = &pod["spec"]["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(
        spread["labelSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let args = args_of(&deployment);
    assert!(
        args.contains(&"--lease-name=rpo-reteach-personio-operator-leader"),
        "{args:?}"
    );
    assert!(args.contains(&"--lease-duration-seconds=15"), "{args:?}");
    for key in [
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/version",
        "app.kubernetes.io/component",
        "app.kubernetes.io/part-of",
        "app.kubernetes.io/managed-by",
    ] {
        assert!(
            pod["metadata"]["labels"][key].is_string(),
            "pod label {key} missing"
        );
    }

    let zoned = render(
        "operators",
        &[
            "replicaCount=2".into(),
            "leaderElection.enabled=true".into(),
            "leaderElection.leaseName=team-lease".into(),
            "topologySpreadConstraints[0].maxSkew=1".into(),
            "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone".into(),
            "topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule".into(),
        ],
    );
    let deployment = self::deployment(&zoned);
    let spread = &deployment["spec"]["template"]["spec"]["topologySpreadConstraints"];
    assert_eq!(spread.as_array().map(Vec::len), Some(1));
    assert_eq!(spread[0]["topologyKey"], "topology.kubernetes.io/zone");
    assert_eq!(
        spread[0]["labelSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert!(args_of(&deployment).contains(&"--lease-name=team-lease"));
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
    assert!(
        of_kind(&objects, "ClusterRole")
            .iter()
            .all(|r| is_tenant_role(r)),
        "no cluster-wide rights for the operator"
    );
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
    assert_eq!(
        monitors[0].data["spec"]["endpoints"][0]["honorLabels"],
        true
    );
    let renamed = render(
        "operators",
        &[
            "metrics.serviceMonitor.enabled=true".into(),
            "metrics.serviceMonitor.honorLabels=false".into(),
        ],
    );
    assert_eq!(
        of_kind(&renamed, "ServiceMonitor")[0].data["spec"]["endpoints"][0]["honorLabels"],
        false
    );
    assert!(
        of_kind(&objects, "PrometheusRule").is_empty(),
        "the PrometheusRule is opt-in"
    );
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

#[test]
fn shards_render_one_deployment_and_lease_each_and_the_main_one_takes_unlabelled_resources() {
    let single = deployment(&render("operators", &[]));
    let args = args_of(&single);
    assert!(
        !args.iter().any(|a| a.starts_with("--watch-label-selector")),
        "without shards the operator watches everything: {args:?}"
    );
    assert!(args.contains(&"--max-concurrent-runs=32"), "{args:?}");
    assert!(args.contains(&"--startup-spread=1h"), "{args:?}");

    let objects = render(
        "operators",
        &[
            "sharding.shards={b,c}".into(),
            "leaderElection.enabled=true".into(),
            "maxConcurrentRuns=8".into(),
        ],
    );
    let deployments: Vec<Value> = of_kind(&objects, "Deployment")
        .into_iter()
        .map(|d| serde_json::to_value(d).expect("Deployment serializes"))
        .collect();
    let names: Vec<&str> = deployments
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "rpo-reteach-personio-operator",
            "rpo-reteach-personio-operator-b",
            "rpo-reteach-personio-operator-c"
        ]
    );
    let expected = [
        (
            "!sync.reteach.io/shard",
            "rpo-reteach-personio-operator-leader",
        ),
        (
            "sync.reteach.io/shard=b",
            "rpo-reteach-personio-operator-leader-b",
        ),
        (
            "sync.reteach.io/shard=c",
            "rpo-reteach-personio-operator-leader-c",
        ),
    ];
    for (deployment, (selector, lease)) in deployments.iter().zip(expected) {
        let args = args_of(deployment);
        assert!(
            args.contains(&format!("--watch-label-selector={selector}").as_str()),
            "{args:?}"
        );
        assert!(
            args.contains(&format!("--lease-name={lease}").as_str()),
            "{args:?}"
        );
        assert!(args.contains(&"--max-concurrent-runs=8"), "{args:?}");
        let selector = &deployment["spec"]["selector"]["matchLabels"];
        let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
        for (key, value) in selector.as_object().expect("matchLabels") {
            assert_eq!(
                &pod_labels[key], value,
                "the pods match their own Deployment"
            );
        }
    }
    // Each shard's pods are told apart from the others' (the ReplicaSets never adopt each other's).
    assert_ne!(
        deployments[1]["spec"]["selector"],
        deployments[2]["spec"]["selector"]
    );
}

#[tokio::test]
async fn sharded_chart_is_accepted_by_the_apiserver() {
    let client = support::client().await;
    let namespace = support::fresh_namespace(&client, "chart-shards").await;
    let values = [
        "sharding.shards={b,c}".into(),
        "leaderElection.enabled=true".into(),
    ];

    dry_run_apply(&client, render(&namespace, &values)).await;

    support::delete_namespace(&client, &namespace).await;
}

/// Webhook notifications must reach the one process of a Deployment that syncs: a receiver
/// Service per Deployment (default and each shard) without a selector, whose EndpointSlice that
/// process keeps (`--webhook-endpoints`, `POD_IP`), and a Role that lets the operator create
/// slices and read or patch exactly those — never pods or other Endpoints.
#[test]
fn webhook_receivers_route_to_the_syncing_pod_of_each_deployment_only() {
    let objects = render(
        "operators",
        &[
            "webhook.enabled=true".into(),
            "leaderElection.enabled=true".into(),
            "replicaCount=2".into(),
            "sharding.shards={b}".into(),
        ],
    );
    let deployments = of_kind(&objects, "Deployment");
    assert_eq!(deployments.len(), 2);
    let mut slices_named = Vec::new();
    for deployment in deployments {
        let deployment = serde_json::to_value(deployment).expect("Deployment serializes");
        let name = deployment["metadata"]["name"].as_str().expect("name");
        let receiver = format!("{name}-webhook");
        assert!(
            args_of(&deployment).contains(&format!("--webhook-endpoints={receiver}").as_str()),
            "{:?}",
            args_of(&deployment)
        );
        let env = operator_container(&deployment)["env"]
            .as_array()
            .expect("env");
        assert!(
            env.iter().any(|e| e["name"] == "POD_IP"
                && e["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"),
            "{env:?}"
        );
        let service = of_kind(&objects, "Service")
            .into_iter()
            .find(|s| s.metadata.name.as_deref() == Some(receiver.as_str()))
            .unwrap_or_else(|| panic!("no Service {receiver}"));
        let service = serde_json::to_value(service).expect("Service serializes");
        assert!(
            service["spec"].get("selector").is_none(),
            "a selector would include standbys and other shards: {service}"
        );
        assert!(
            service["spec"]["ports"][0]["name"] == "webhook",
            "the slice the operator creates names its port `webhook`: {service}"
        );
        slices_named.push(receiver);
    }
    assert!(
        of_kind(&objects, "EndpointSlice").is_empty(),
        "the operator keeps the slices; a rendered one would fight it on every upgrade"
    );
    let rules: Vec<Value> = of_kind(&objects, "Role")
        .into_iter()
        .flat_map(rules_of)
        .filter(|rule| {
            let resources = as_strings(&rule["resources"]);
            resources.contains(&"endpointslices") || resources.contains(&"services")
        })
        .collect();
    let verbs_on = |resource: &str, named: bool| -> Vec<String> {
        rules
            .iter()
            .filter(|rule| as_strings(&rule["resources"]).contains(&resource))
            .filter(|rule| rule.get("resourceNames").is_some() == named)
            .flat_map(|rule| as_strings(&rule["verbs"]))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(verbs_on("endpointslices", false), ["create"], "{rules:?}");
    assert_eq!(
        verbs_on("endpointslices", true),
        ["get", "patch"],
        "{rules:?}"
    );
    assert_eq!(verbs_on("services", true), ["get"], "{rules:?}");
    assert!(verbs_on("services", false).is_empty(), "{rules:?}");
    for rule in &rules {
        if rule.get("resourceNames").is_some() {
            assert_eq!(as_strings(&rule["resourceNames"]), slices_named, "{rule}");
        }
    }
    for role in of_kind(&objects, "Role")
        .into_iter()
        .chain(of_kind(&objects, "ClusterRole"))
    {
        assert!(!grants(role, "pods"), "the operator never writes pods");
        assert!(!grants(role, "endpoints"));
    }
}

/// The receiver's public URL is the administrator's (per shard when set), and the operator may
/// create Secrets in its namespace but read only its webhook key (issue 25).
#[test]
fn each_shard_registers_under_its_own_public_url_and_reads_only_its_webhook_key() {
    let objects = render(
        "operators",
        &[
            "webhook.enabled=true".into(),
            "webhook.publicUrl=https://hooks.example.com".into(),
            "sharding.shards={b}".into(),
            "webhook.shardPublicUrls.b=https://hooks-b.example.com".into(),
        ],
    );
    let mut urls = Vec::new();
    for deployment in of_kind(&objects, "Deployment") {
        let deployment = serde_json::to_value(deployment).expect("Deployment serializes");
        let args = args_of(&deployment);
        let key = "--webhook-key-secret=rpo-reteach-personio-operator-webhook-key";
        assert!(args.contains(&key), "{args:?}");
        urls.extend(
            args.iter()
                .filter_map(|a| a.strip_prefix("--webhook-public-url="))
                .map(str::to_string),
        );
    }
    urls.sort();
    assert_eq!(
        urls,
        ["https://hooks-b.example.com", "https://hooks.example.com"]
    );
    let secret_rules: Vec<Value> = of_kind(&objects, "Role")
        .into_iter()
        .flat_map(rules_of)
        .filter(|rule| as_strings(&rule["resources"]).contains(&"secrets"))
        .collect();
    for rule in &secret_rules {
        match rule.get("resourceNames") {
            Some(names) => {
                assert_eq!(
                    as_strings(names),
                    ["rpo-reteach-personio-operator-webhook-key"]
                );
                assert_eq!(as_strings(&rule["verbs"]), ["get"]);
            }
            None => assert_eq!(as_strings(&rule["verbs"]), ["create"], "{rule}"),
        }
    }
    assert_eq!(secret_rules.len(), 2, "{secret_rules:?}");
}

#[tokio::test]
async fn webhook_chart_is_accepted_by_the_apiserver() {
    let client = support::client().await;
    let namespace = support::fresh_namespace(&client, "chart-webhook").await;
    let version = client
        .apiserver_version()
        .await
        .expect("apiserver version")
        .git_version;
    let values = [
        "webhook.enabled=true".into(),
        "leaderElection.enabled=true".into(),
        "sharding.shards={b}".into(),
    ];

    dry_run_apply(&client, render_for(&namespace, &values, Some(&version))).await;

    support::delete_namespace(&client, &namespace).await;
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

/// The alerts in the Metrics section of docs/operating.md, as `(name, expr)`.
fn documented_alerts() -> Vec<(String, String)> {
    let docs = std::fs::read_to_string(support::repo_root().join("docs/operating.md"))
        .unwrap_or_else(|e| panic!("cannot read docs/operating.md: {e}"));
    let block = docs
        .split("```yaml\n")
        .find(|block| block.starts_with("- alert: ReteachPersonio"))
        .and_then(|block| block.split("```").next())
        .unwrap_or_else(|| panic!("no alert block in docs/operating.md"));
    let alerts: Vec<Value> = serde_norway::from_str(block)
        .unwrap_or_else(|e| panic!("the alerts of docs/operating.md are not YAML: {e}"));
    alerts
        .iter()
        .map(|a| {
            (
                a["alert"].as_str().unwrap_or_default().to_string(),
                a["expr"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// `promtool` from Debian's `prometheus` package (scripts/lib.sh installs it).
fn promtool(args: &[&str], dir: &std::path::Path) -> String {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool (apt-get install prometheus): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn prometheus_rule_holds_the_documented_alerts_and_passes_promtool() {
    let objects = render(
        "operators",
        &[
            "metrics.prometheusRule.enabled=true".into(),
            "metrics.prometheusRule.labels.release=kube-prometheus".into(),
        ],
    );
    let rules = of_kind(&objects, "PrometheusRule");
    assert_eq!(rules.len(), 1);
    let rule = rules[0];
    assert_eq!(
        rule.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("release"))
            .map(String::as_str),
        Some("kube-prometheus")
    );
    let spec = &rule.data["spec"];
    let rendered: Vec<(String, String)> = spec["groups"][0]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["alert"].as_str().unwrap_or_default().to_string(),
                r["expr"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rendered,
        documented_alerts(),
        "the chart's alerts are those of docs/operating.md"
    );

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
    let yaml = serde_norway::to_string(spec).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("rules.yaml"), yaml).unwrap_or_else(|e| panic!("{e}"));
    let checked = promtool(&["check", "rules", "rules.yaml"], dir.path());
    assert!(checked.contains("SUCCESS: 5 rules found"), "{checked}");

    // The stale alert fires once a resource has not succeeded for an hour (plus `for: 10m`).
    let unit_test = r#"
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'reteach_personio_last_success_timestamp_seconds{kind="EmployeeSync",namespace="academy",name="personio"}'
        values: '0x120'
    alert_rule_test:
      - eval_time: 65m
        alertname: ReteachPersonioSyncStale
        exp_alerts: []
      - eval_time: 75m
        alertname: ReteachPersonioSyncStale
        exp_alerts:
          - exp_labels: {severity: warning, kind: EmployeeSync, namespace: academy, name: personio}
            exp_annotations:
              summary: EmployeeSync academy/personio has not succeeded for a while.
              description: Check `kubectl -n academy describe esync personio`; the Ready condition says why.
"#;
    std::fs::write(dir.path().join("rules_test.yaml"), unit_test).unwrap_or_else(|e| panic!("{e}"));
    promtool(&["test", "rules", "rules_test.yaml"], dir.path());
}
