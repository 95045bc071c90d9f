//! What the controllers' watch caches keep of each object. kube-runtime's reflector stores every
//! object as the apiserver sends it, and for 1,000 academies that is 2,000 objects held for the
//! life of the process (issue 18). Two parts of them are bookkeeping for other clients that no
//! reconcile reads: `metadata.managedFields` (server-side apply's field ownership, one entry per
//! manager) and kubectl's `last-applied-configuration` annotation (a second copy of the spec as
//! JSON text). They are dropped before an object enters the cache. Every write of the operator
//! is a patch (status apply, merge or JSON patch) and never sends cached metadata back, so nothing
//! is lost on the apiserver.

use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Api, Resource};

/// The annotation `kubectl apply` keeps the last applied object in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Removes from `object` what the watch cache need not hold: managed fields and the last-applied
/// annotation. Other annotations (the operator's own, e.g. a requested run) stay.
pub fn trim<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// A controller for `K` like [`Controller::new`], whose watch cache holds trimmed objects
/// ([`trim`]), calling `observe` with every object the watch applies, before the
/// controller queues it (a webhook receiver opens from there, ahead of the start-up spread).
pub fn controller_observed<K>(
    api: Api<K>,
    config: watcher::Config,
    observe: impl Fn(&K) + Send + Sync + 'static,
) -> Controller<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    use futures::TryStreamExt;
    let (reader, writer): (Store<K>, _) = reflector::store();
    let objects = reflector::reflector(writer, watcher(api, config).modify(trim::<K>))
        .applied_objects()
        .inspect_ok(move |object| observe(object));
    Controller::for_stream(objects, reader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::EmployeeSync;

    fn object(annotations: serde_json::Value) -> EmployeeSync {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "sync.reteach.io/v1alpha1",
            "kind": "EmployeeSync",
            "metadata": {
                "name": "personio",
                "namespace": "academy",
                "annotations": annotations,
                "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}],
            },
            "spec": {
                "personio": {"credentialsSecretRef": {"name": "personio-api"}},
                "reteach": {"credentialsSecretRef": {"name": "reteach-api"}},
            },
        }))
        .expect("a valid EmployeeSync")
    }

    #[test]
    fn drops_managed_fields_and_last_applied_keeps_other_annotations() {
        let mut sync = object(serde_json::json!({
            LAST_APPLIED_ANNOTATION: "{\"spec\":{}}",
            crate::api::REQUESTED_AT_ANNOTATION: "2026-12-02T10:00:00Z",
        }));
        trim(&mut sync);
        assert!(sync.metadata.managed_fields.is_none());
        let annotations = sync.metadata.annotations.expect("annotations kept");
        assert!(!annotations.contains_key(LAST_APPLIED_ANNOTATION));
        assert_eq!(
            annotations
                .get(crate::api::REQUESTED_AT_ANNOTATION)
                .map(String::as_str),
            Some("2026-12-02T10:00:00Z")
        );
        assert_eq!(sync.metadata.name.as_deref(), Some("personio"));
    }

    #[test]
    fn no_annotations_left_means_none() {
        let mut sync = object(serde_json::json!({LAST_APPLIED_ANNOTATION: "{}"}));
        trim(&mut sync);
        assert!(sync.metadata.annotations.is_none());
    }
}
