//! End-to-end: the generated CRDs install on a real kube-apiserver, the examples apply cleanly and
//! get their defaults, and invalid resources are rejected with a message that names the field.

use crate::support;

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::Client;
use reteach_personio_operator::api::{CertificateSync, Condition, EmployeeSync};
use serde_json::{json, Value};

const CRD_NAMES: [&str; 2] = [
    "employeesyncs.sync.reteach.io",
    "certificatesyncs.sync.reteach.io",
];

/// Applies `crds/` and waits until both APIs are served. Safe to call from every test at once.
async fn install_crds(client: &Client) {
    support::apply_path(client, support::repo_root().join("crds"), None).await;
    for name in CRD_NAMES {
        support::wait_crd_established(client, name).await;
    }
}

fn dynamic_api<K>(client: &Client, namespace: &str) -> Api<DynamicObject>
where
    K: kube::Resource<DynamicType = ()>,
{
    Api::namespaced_with(client.clone(), namespace, &ApiResource::erase::<K>(&()))
}

async fn spec_of<K>(client: &Client, namespace: &str, name: &str) -> Value
where
    K: kube::Resource<DynamicType = ()>,
{
    let object = dynamic_api::<K>(client, namespace)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("cannot read back {namespace}/{name}: {e}"));
    object.data["spec"].clone()
}

/// The apiserver's rejection of `yaml`, as `(HTTP code, message)`.
async fn rejection(client: &Client, yaml: &str, namespace: &str) -> (u16, String) {
    match support::try_apply_yaml(client, yaml, Some(namespace)).await {
        Ok(_) => panic!("the apiserver accepted an invalid resource:\n{yaml}"),
        Err(kube::Error::Api(status)) => (status.code, status.message),
        Err(other) => panic!("expected a validation error, got {other}"),
    }
}

#[tokio::test]
async fn crds_become_established() {
    let client = support::client().await;
    install_crds(&client).await;
}

#[tokio::test]
async fn single_academy_examples_apply_and_get_server_side_defaults() {
    let client = support::client().await;
    install_crds(&client).await;
    let namespace = support::fresh_namespace(&client, "examples").await;
    let examples = support::repo_root().join("examples");
    for file in ["secrets.yaml", "employeesync.yaml", "certificatesync.yaml"] {
        support::apply_path(&client, examples.join(file), Some(&namespace)).await;
    }

    let employee_spec = spec_of::<EmployeeSync>(&client, &namespace, "personio").await;
    assert_eq!(employee_spec["interval"], "5m");
    assert_eq!(employee_spec["fullResyncInterval"], "24h");
    assert_eq!(employee_spec["suspend"], false);
    assert_eq!(employee_spec["dryRun"], false);
    assert_eq!(
        employee_spec["personio"]["baseUrl"],
        "https://api.personio.de"
    );
    assert_eq!(
        employee_spec["personio"]["credentialsSecretRef"]["clientIdKey"],
        "clientId"
    );
    assert_eq!(
        employee_spec["reteach"]["baseUrl"],
        "https://api.reteach.io"
    );
    assert_eq!(
        employee_spec["reteach"]["credentialsSecretRef"]["clientCodeKey"],
        "clientCode"
    );

    let certificate_spec = spec_of::<CertificateSync>(&client, &namespace, "certificates").await;
    assert_eq!(certificate_spec["interval"], "30m");
    assert_eq!(certificate_spec["employeeSyncRef"]["name"], "personio");

    // The typed API reads what the apiserver stored.
    let typed = Api::<EmployeeSync>::namespaced(client.clone(), &namespace)
        .get("personio")
        .await
        .expect("EmployeeSync deserializes into the Rust type");
    assert_eq!(typed.spec.time_zone, "Europe/Berlin");
    Api::<CertificateSync>::namespaced(client.clone(), &namespace)
        .get("certificates")
        .await
        .expect("CertificateSync deserializes into the Rust type");

    let secrets = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), &namespace);
    let reteach = secrets.get("reteach-api").await.expect("reteach Secret");
    let keys: Vec<&String> = reteach
        .data
        .as_ref()
        .map(|d| d.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["clientCode", "clientId", "clientSecret"]);

    support::delete_namespace(&client, &namespace).await;
}

#[tokio::test]
async fn two_tenant_example_applies_into_two_namespaces() {
    let client = support::client().await;
    install_crds(&client).await;
    support::apply_path(
        &client,
        support::repo_root().join("examples/two-tenants"),
        None,
    )
    .await;

    for (namespace, interval) in [("academy-acme", "5m"), ("academy-globex", "15m")] {
        let employee = spec_of::<EmployeeSync>(&client, namespace, "personio").await;
        assert_eq!(employee["interval"], interval, "{namespace}");
        let certificate = spec_of::<CertificateSync>(&client, namespace, "certificates").await;
        assert_eq!(certificate["interval"], "30m", "{namespace}");
        assert_eq!(certificate["title"], "Certificate: {course}", "{namespace}");
    }
}

const EMPLOYEE_SYNC: &str = r#"
apiVersion: sync.reteach.io/v1alpha1
kind: EmployeeSync
metadata: {name: invalid}
spec:
  interval: INTERVAL
  personio: {credentialsSecretRef: {name: personio-api}}
  reteach: {credentialsSecretRef: {name: reteach-api}}
"#;

#[tokio::test]
async fn interval_with_an_unknown_unit_is_rejected() {
    let client = support::client().await;
    install_crds(&client).await;
    let namespace = support::fresh_namespace(&client, "invalid-interval").await;

    let (code, message) = rejection(
        &client,
        &EMPLOYEE_SYNC.replace("INTERVAL", "5x"),
        &namespace,
    )
    .await;

    assert_eq!(code, 422, "{message}");
    assert!(message.contains("spec.interval"), "{message}");
    assert!(message.contains("should match"), "{message}");
    support::delete_namespace(&client, &namespace).await;
}

#[tokio::test]
async fn employee_sync_without_personio_credentials_is_rejected() {
    let client = support::client().await;
    install_crds(&client).await;
    let namespace = support::fresh_namespace(&client, "invalid-credentials").await;
    let yaml = EMPLOYEE_SYNC.replace("INTERVAL", "5m").replace(
        "{credentialsSecretRef: {name: personio-api}}",
        "{baseUrl: https://api.personio.de}",
    );

    let (code, message) = rejection(&client, &yaml, &namespace).await;

    assert_eq!(code, 422, "{message}");
    assert!(
        message.contains("spec.personio.credentialsSecretRef"),
        "{message}"
    );
    assert!(message.contains("Required value"), "{message}");
    support::delete_namespace(&client, &namespace).await;
}

#[tokio::test]
async fn certificate_sync_without_document_category_is_rejected() {
    let client = support::client().await;
    install_crds(&client).await;
    let namespace = support::fresh_namespace(&client, "invalid-category").await;
    let yaml = r#"
apiVersion: sync.reteach.io/v1alpha1
kind: CertificateSync
metadata: {name: invalid}
spec:
  employeeSyncRef: {name: personio}
"#;

    let (code, message) = rejection(&client, yaml, &namespace).await;

    assert_eq!(code, 422, "{message}");
    assert!(message.contains("spec.documentCategory"), "{message}");
    support::delete_namespace(&client, &namespace).await;
}

/// Two writers of different condition types must not overwrite each other's entry: the CRD marks
/// `status.conditions` as a list map keyed by `type`.
#[tokio::test]
async fn status_conditions_merge_by_type_under_server_side_apply() {
    let client = support::client().await;
    install_crds(&client).await;
    let namespace = support::fresh_namespace(&client, "conditions").await;
    support::apply_path(
        &client,
        support::repo_root().join("examples/employeesync.yaml"),
        Some(&namespace),
    )
    .await;
    let api = dynamic_api::<EmployeeSync>(&client, &namespace);
    // Built from the Rust type, with an empty message: what the operator itself sends.
    let condition = |type_: &str| {
        let condition = Condition {
            type_: type_.to_owned(),
            status: "True".to_owned(),
            reason: "Test".to_owned(),
            message: String::new(),
            last_transition_time: chrono::Utc::now(),
            observed_generation: Some(1),
        };
        json!({
            "apiVersion": "sync.reteach.io/v1alpha1", "kind": "EmployeeSync",
            "status": {"conditions": [condition]}
        })
    };

    for (manager, type_) in [("writer-a", "Ready"), ("writer-b", "Reconciling")] {
        api.patch_status(
            "personio",
            &PatchParams::apply(manager).force(),
            &Patch::Apply(condition(type_)),
        )
        .await
        .unwrap_or_else(|e| panic!("status apply by {manager} failed: {e}"));
    }

    let object =
        support::wait_for_condition(&api, "personio", "Ready", "True", support::WAIT).await;
    let value = serde_json::to_value(&object).expect("object serializes");
    assert_eq!(
        support::condition_status(&value, "Reconciling").as_deref(),
        Some("True"),
        "the second writer replaced the first one's condition: {}",
        value["status"]
    );
    support::delete_namespace(&client, &namespace).await;
}

const CERTIFICATE_SYNC: &str = r#"
apiVersion: sync.reteach.io/v1alpha1
kind: CertificateSync
metadata: {name: category}
spec:
  employeeSyncRef: {name: personio}
  documentCategory: CATEGORY
"#;

#[tokio::test]
async fn document_category_needs_exactly_one_of_id_and_name() {
    let client = support::client().await;
    install_crds(&client).await;
    let namespace = support::fresh_namespace(&client, "category").await;

    for category in ["{}", "{id: 7, name: Learning Certificates}"] {
        let yaml = CERTIFICATE_SYNC.replace("CATEGORY", category);
        let (code, message) = rejection(&client, &yaml, &namespace).await;
        assert_eq!(code, 422, "{category}: {message}");
        assert!(
            message.contains("spec.documentCategory"),
            "{category}: {message}"
        );
    }
    for category in ["{id: 7}", "{name: Learning Certificates}"] {
        let yaml = CERTIFICATE_SYNC.replace("CATEGORY", category);
        support::try_apply_yaml(&client, &yaml, Some(&namespace))
            .await
            .unwrap_or_else(|e| panic!("{category} was rejected: {e}"));
    }
    support::delete_namespace(&client, &namespace).await;
}
