//! Harness for end-to-end tests against a real kube-apiserver started by `scripts/test.sh`;
//! [`sims`] wires both simulators to the real clients and jobs for tests without Kubernetes.
//!
//! The script exports `RPO_E2E_KUBECONFIG` (and `HELM_BIN`). Without them the tests panic instead of
//! skipping: a green run must mean the tests ran.

// Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

pub mod hooks;
pub mod operator;
pub mod sims;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::Scope;
use kube::{Client, Config, Resource};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The operator binary as a subprocess, with simulators and a tenant namespace.
pub mod process;

/// Environment variable holding the path of the test cluster's kubeconfig.
pub const KUBECONFIG_ENV: &str = "RPO_E2E_KUBECONFIG";
/// Environment variable holding the path of the helm binary.
pub const HELM_ENV: &str = "HELM_BIN";
/// Field manager of everything the tests apply.
pub const FIELD_MANAGER: &str = "rpo-e2e";
/// Default time to wait for the apiserver to reach a state.
pub const WAIT: Duration = Duration::from_secs(30);

const NO_CONTROL_PLANE: &str =
    "end-to-end tests need a control plane: run scripts/test.sh (or make test)";

/// Repository root (where `crds/`, `examples/` and `charts/` live).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of the test cluster's kubeconfig; panics when the test script did not provide one.
pub fn kubeconfig_path() -> PathBuf {
    match std::env::var_os(KUBECONFIG_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!("{NO_CONTROL_PLANE} ({KUBECONFIG_ENV} is not set)"),
    }
}

/// Path of the helm binary; panics when the test script did not provide one.
pub fn helm_bin() -> PathBuf {
    match std::env::var_os(HELM_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "chart tests need helm: run scripts/test.sh (or make test), or set {HELM_ENV} to a helm 3/4 binary"
        ),
    }
}

/// A client for the test cluster.
pub async fn client() -> Client {
    let path = kubeconfig_path();
    let kubeconfig = Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("cannot read kubeconfig {}: {e}", path.display()));
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("invalid kubeconfig {}: {e}", path.display()));
    Client::try_from(config).unwrap_or_else(|e| panic!("cannot build a kube client: {e}"))
}

/// Creates a namespace with a unique name starting with `prefix`, so tests never share state.
pub async fn fresh_namespace(client: &Client, prefix: &str) -> String {
    let suffix = format!("{:08x}", rand::random::<u32>());
    let mut prefix: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63 - suffix.len() - 1)
        .collect();
    if prefix.is_empty() {
        prefix.push_str("e2e");
    }
    let name = format!("{prefix}-{suffix}");
    let namespace: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"app.kubernetes.io/created-by": FIELD_MANAGER}}
    }))
    .expect("namespace literal is valid");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap_or_else(|e| panic!("cannot create namespace {name}: {e}"));
    name
}

/// Deletes a namespace. The test control plane has no namespace controller, so it stays
/// `Terminating`; what matters is that nothing else can be created in it.
pub async fn delete_namespace(client: &Client, name: &str) {
    match Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(e) => panic!("cannot delete namespace {name}: {e}"),
    }
}

/// The YAML documents of a file, or of every `*.yaml`/`*.yml` file below a directory (sorted by
/// path, so a `namespaces.yaml` can be named to come first).
pub fn read_manifests(path: impl AsRef<Path>) -> Vec<DynamicObject> {
    let path = path.as_ref();
    let mut files = Vec::new();
    collect_yaml_files(path, &mut files);
    assert!(!files.is_empty(), "no YAML files at {}", path.display());
    files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            parse_manifests(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        })
        .collect()
}

fn collect_yaml_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    entries.sort();
    for entry in entries {
        let is_yaml = entry
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        if entry.is_dir() || is_yaml {
            collect_yaml_files(&entry, out);
        }
    }
}

/// Parses a multi-document YAML stream into objects, skipping empty documents.
pub fn parse_manifests(yaml: &str) -> Result<Vec<DynamicObject>, String> {
    let mut objects = Vec::new();
    for document in serde_norway::Deserializer::from_str(yaml) {
        let value = serde_norway::Value::deserialize(document).map_err(|e| e.to_string())?;
        if value.is_null() {
            continue;
        }
        let json = serde_json::to_value(value).map_err(|e| e.to_string())?;
        objects.push(serde_json::from_value(json).map_err(|e| e.to_string())?);
    }
    Ok(objects)
}

/// Server-side applies every object of a file or directory; namespaced objects go into
/// `namespace` when given (else their own, else `default`). Panics on the first rejection.
pub async fn apply_path(
    client: &Client,
    path: impl AsRef<Path>,
    namespace: Option<&str>,
) -> Vec<DynamicObject> {
    let path = path.as_ref();
    apply_objects(client, read_manifests(path), namespace, false)
        .await
        .unwrap_or_else(|e| panic!("applying {} failed: {e}", path.display()))
}

/// Server-side applies a YAML stream; returns the apiserver's error on the first rejection.
pub async fn try_apply_yaml(
    client: &Client,
    yaml: &str,
    namespace: Option<&str>,
) -> Result<Vec<DynamicObject>, kube::Error> {
    let objects = parse_manifests(yaml).unwrap_or_else(|e| panic!("invalid YAML in test: {e}"));
    apply_objects(client, objects, namespace, false).await
}

/// Server-side applies objects (optionally as a server-side dry run, which runs every admission
/// and validation step but stores nothing).
pub async fn apply_objects(
    client: &Client,
    objects: Vec<DynamicObject>,
    namespace: Option<&str>,
    dry_run: bool,
) -> Result<Vec<DynamicObject>, kube::Error> {
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    let mut applied = Vec::new();
    for mut object in objects {
        let api = api_for(client, &mut object, namespace).await?;
        let name = object.metadata.name.clone().unwrap_or_default();
        applied.push(api.patch(&name, &params, &Patch::Apply(&object)).await?);
    }
    Ok(applied)
}

/// The dynamic API of an object's kind, found by discovery; fixes up the object's namespace.
async fn api_for(
    client: &Client,
    object: &mut DynamicObject,
    namespace: Option<&str>,
) -> Result<Api<DynamicObject>, kube::Error> {
    let types = object
        .types
        .clone()
        .unwrap_or_else(|| panic!("object {:?} has no apiVersion/kind", object.metadata.name));
    let gvk = GroupVersionKind::try_from(&types)
        .unwrap_or_else(|e| panic!("bad apiVersion {}: {e}", types.api_version));
    let (resource, capabilities) = kube::discovery::pinned_kind(client, &gvk).await?;
    if capabilities.scope == Scope::Cluster {
        return Ok(Api::all_with(client.clone(), &resource));
    }
    let namespace = namespace
        .map(str::to_owned)
        .or_else(|| object.metadata.namespace.clone())
        .unwrap_or_else(|| "default".to_owned());
    object.metadata.namespace = Some(namespace.clone());
    Ok(Api::namespaced_with(client.clone(), &namespace, &resource))
}

/// Polls `probe` until it returns `Some` or `timeout` passes; panics with `what` on timeout.
/// Polling is fine here: the apiserver's state changes on its own schedule.
pub async fn poll_until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let poll = async {
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    match tokio::time::timeout(timeout, poll).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Waits until the CRD `name` is `Established` (its API is served).
pub async fn wait_crd_established(client: &Client, name: &str) {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    poll_until(&format!("CRD {name} to be Established"), WAIT, || {
        let api = api.clone();
        async move {
            let crd = api.get_opt(name).await.ok().flatten()?;
            let established = crd
                .status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            established.then_some(())
        }
    })
    .await
}

/// Status (`True`/`False`/`Unknown`) of the condition `type_` in an object's `status.conditions`.
pub fn condition_status(object: &Value, type_: &str) -> Option<String> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?["status"]
        .as_str()
        .map(str::to_owned)
}

/// Waits until the object's condition `type_` has `status`, and returns the object.
pub async fn wait_for_condition<K>(
    api: &Api<K>,
    name: &str,
    type_: &str,
    status: &str,
    timeout: Duration,
) -> K
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let what = format!("{name} to have condition {type_}={status}");
    poll_until(&what, timeout, || async {
        let object = api.get_opt(name).await.ok().flatten()?;
        let value = serde_json::to_value(&object).ok()?;
        (condition_status(&value, type_).as_deref() == Some(status)).then_some(object)
    })
    .await
}
