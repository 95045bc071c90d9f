//! Schema adjustments the derived schemas of both kinds share: what schemars cannot say from the
//! Rust types alone.

/// Drops the schema's `default` that schemars derives from `#[serde(default)]`, for two kinds of
/// field:
/// - a field inside an optional object that also has a required field (`spec.webhook`,
///   `caBundleRef`). The apiserver persists schema defaults, and server-side apply does not
///   remove fields it did not set: taking such a block out of an applied manifest (Flux, Argo CD,
///   `kubectl apply --server-side`) would leave the defaulted fields behind without the required
///   one, and the apiserver would refuse the apply. The operator applies the same default when it
///   reads the object (serde).
/// - an empty-string field in status (a condition's or capability's `message`). A v1.20
///   apiserver reads an empty-string default (`default: ''`) as `null` and rejects the whole CRD,
///   and a default in status is pointless anyway: only the operator writes status.
pub fn without_default(schema: &mut schemars::Schema) {
    if let Some(object) = schema.as_object_mut() {
        object.remove("default");
    }
}

/// Schema of an array of `T` that server-side apply merges item by item, matching items by the
/// field `key` (`x-kubernetes-list-type: map`) instead of replacing the whole list.
pub fn list_map_schema<T: schemars::JsonSchema>(
    generator: &mut schemars::SchemaGenerator,
    key: &str,
) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<T>>();
    if let Some(object) = schema.as_object_mut() {
        object.insert("x-kubernetes-list-type".into(), "map".into());
        object.insert(
            "x-kubernetes-list-map-keys".into(),
            serde_json::json!([key]),
        );
    }
    schema
}
