//! The EmployeeSync and CertificateSync objects of the scale scenario, shaped as the apiserver
//! sends them to a watch.

use chrono::{DateTime, Utc};

use super::Academy;
use crate::api::{CertificateSync, EmployeeSync};

/// Metadata as the apiserver sends it for an object applied with `kubectl apply` whose status the
/// operator writes: uid, timestamps, the last-applied annotation and two managed-fields entries.
fn metadata(
    kind: &str,
    name: &str,
    n: usize,
    spec: &serde_json::Value,
    created: DateTime<Utc>,
) -> serde_json::Value {
    let namespace = format!("academy-{n:04}");
    let last_applied = serde_json::json!({
        "apiVersion": "sync.reteach.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    });
    let time = created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    serde_json::json!({
        "name": name,
        "namespace": namespace,
        "uid": format!("{:08x}-5d3a-4f6e-8a1b-{n:012x}", kind.len() * 0x1000_0000 + n),
        "resourceVersion": format!("{}", 1_000_000 + n),
        "generation": 1,
        "creationTimestamp": time,
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": last_applied.to_string(),
        },
        "managedFields": [
            {
                "apiVersion": "sync.reteach.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}, "f:spec": spec_fields(spec)},
                "manager": "kubectl-client-side-apply",
                "operation": "Update",
                "time": time,
            },
            {
                "apiVersion": "sync.reteach.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {"f:conditions": {}, "f:lastRun": {}, "f:lastSyncTime": {}, "f:lastSuccessfulSyncTime": {}, "f:nextSyncTime": {}, "f:observedGeneration": {}}},
                "manager": "reteach-personio-operator",
                "operation": "Apply",
                "subresource": "status",
                "time": time,
            },
        ],
    })
}

fn spec_fields(spec: &serde_json::Value) -> serde_json::Value {
    match spec {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(key, value)| (format!("f:{key}"), spec_fields(value)))
                .collect(),
        ),
        _ => serde_json::json!({}),
    }
}

/// The EmployeeSync and the CertificateSync of academy `n`, as applied a day before `created`.
pub(super) fn academy_objects(
    n: usize,
    academy: &Academy,
    created: DateTime<Utc>,
) -> anyhow::Result<(EmployeeSync, CertificateSync)> {
    let employees = serde_json::json!({
        "interval": "5m",
        "timeZone": "Europe/Berlin",
        "personio": {
            "baseUrl": academy.upstream.personio_url,
            "allowInsecureHttp": true,
            "credentialsSecretRef": {"name": "personio-api"},
        },
        "reteach": {
            "baseUrl": academy.upstream.reteach_url,
            "allowInsecureHttp": true,
            "credentialsSecretRef": {"name": "reteach-api"},
        },
    });
    let certificates = serde_json::json!({
        "interval": "30m",
        "employeeSyncRef": {"name": "personio"},
        "documentCategory": {"id": academy.category_id},
        "title": "Certificate: {course}",
    });
    let applied = created - chrono::Duration::days(1);
    Ok((
        object("EmployeeSync", "personio", n, employees, applied)?,
        object("CertificateSync", "certificates", n, certificates, applied)?,
    ))
}

/// The object of `kind` named `name` in academy `n`'s namespace, with `spec`, applied at
/// `applied`.
fn object<K: serde::de::DeserializeOwned>(
    kind: &str,
    name: &str,
    n: usize,
    spec: serde_json::Value,
    applied: DateTime<Utc>,
) -> anyhow::Result<K> {
    let metadata = metadata(kind, name, n, &spec, applied);
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "sync.reteach.io/v1alpha1",
        "kind": kind,
        "metadata": metadata,
        "spec": spec,
    }))?)
}
