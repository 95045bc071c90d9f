//! The checked-in CRDs match the Rust types, and their schemas are structural (what a Kubernetes
//! apiserver accepts and what server-side apply needs to merge conditions by `type`).

use std::path::PathBuf;

use reteach_personio_operator::crdgen::{crd_directories, crd_documents};
use serde_json::Value;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn checked_in_crds_match_the_rust_types() {
    let documents = crd_documents().expect("CRDs serialize");
    assert!(!documents.is_empty(), "crdgen produced no CRDs");
    for dir in crd_directories(&repo_root()) {
        for (name, generated) in &documents {
            let path = dir.join(name);
            let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                checked_in == *generated,
                "{} is missing or out of date with the Rust types: run `cargo run -- crdgen` and commit the result",
                path.display()
            );
        }
        let extra: Vec<String> = std::fs::read_dir(&dir)
            .expect("CRD directory exists")
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|file| !documents.iter().any(|(name, _)| name == file))
            .collect();
        assert!(
            extra.is_empty(),
            "{} holds files crdgen does not generate: {extra:?}; remove them and run `cargo run -- crdgen`",
            dir.display()
        );
    }
}

#[test]
fn generated_schemas_are_structural() {
    for (name, yaml) in crd_documents().expect("CRDs serialize") {
        let crd: Value = serde_norway::from_str(&yaml).expect("CRD YAML parses");
        let versions = crd["spec"]["versions"]
            .as_array()
            .expect("CRD has versions");
        for version in versions {
            let schema = &version["schema"]["openAPIV3Schema"];
            assert!(schema.is_object(), "{name}: version without a schema");
            let violations = structural_violations(schema);
            assert!(
                violations.is_empty(),
                "{name} {}: schema is not structural:\n  {}",
                version["name"],
                violations.join("\n  ")
            );
        }
    }
}

#[test]
fn every_status_has_a_conditions_list_merged_by_type() {
    for (name, yaml) in crd_documents().expect("CRDs serialize") {
        let crd: Value = serde_norway::from_str(&yaml).expect("CRD YAML parses");
        for version in crd["spec"]["versions"].as_array().expect("versions") {
            let status = &version["schema"]["openAPIV3Schema"]["properties"]["status"];
            assert!(
                status["properties"]["conditions"].is_object(),
                "{name}: status has no conditions"
            );
            // The structural check already demands list-map keys for any `conditions`; this test
            // makes sure the field is there to be checked.
        }
    }
}

#[test]
fn crds_are_namespaced_with_a_status_subresource_and_printer_columns() {
    for (name, yaml) in crd_documents().expect("CRDs serialize") {
        let crd: Value = serde_norway::from_str(&yaml).expect("CRD YAML parses");
        assert_eq!(crd["spec"]["group"], "sync.reteach.io", "{name}");
        assert_eq!(crd["spec"]["scope"], "Namespaced", "{name}");
        let categories = crd["spec"]["names"]["categories"].as_array();
        assert!(
            categories.is_some_and(|c| c.iter().any(|c| c == "reteach")),
            "{name}: category reteach missing"
        );
        for version in crd["spec"]["versions"].as_array().expect("versions") {
            assert!(version["subresources"]["status"].is_object(), "{name}");
            let columns: Vec<&str> = version["additionalPrinterColumns"]
                .as_array()
                .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
                .unwrap_or_default();
            for wanted in ["Ready", "Status", "Last Sync", "Age"] {
                assert!(
                    columns.contains(&wanted),
                    "{name}: printer column {wanted} missing"
                );
            }
        }
    }
}

#[test]
fn every_field_is_documented() {
    for (name, yaml) in crd_documents().expect("CRDs serialize") {
        let crd: Value = serde_norway::from_str(&yaml).expect("CRD YAML parses");
        for version in crd["spec"]["versions"].as_array().expect("versions") {
            let mut undocumented = Vec::new();
            collect_undocumented(&version["schema"]["openAPIV3Schema"], "", &mut undocumented);
            assert!(
                undocumented.is_empty(),
                "{name}: fields without a doc comment (it becomes the CRD description and the reference in docs/reference/): {undocumented:?}"
            );
        }
    }
}

fn collect_undocumented(node: &Value, path: &str, out: &mut Vec<String>) {
    for (field, child) in node["properties"].as_object().into_iter().flatten() {
        let child_path = format!("{path}.{field}");
        if child["description"].as_str().is_none_or(str::is_empty) {
            out.push(child_path.clone());
        }
        collect_undocumented(child, &child_path, out);
        collect_undocumented(&child["items"], &format!("{child_path}[]"), out);
    }
}

/// An optional object with a required field must not default any of its fields: the apiserver
/// persists defaults and server-side apply leaves fields it did not set, so removing such a block
/// from an applied manifest (Flux, Argo CD) would leave the defaults without the required field
/// and every later apply would be refused. See `api::common::without_default`.
#[test]
fn optional_objects_with_a_required_field_default_nothing() {
    for (name, yaml) in crd_documents().expect("CRDs serialize") {
        let crd: Value = serde_norway::from_str(&yaml).expect("CRD YAML parses");
        for version in crd["spec"]["versions"].as_array().expect("versions") {
            let mut found = Vec::new();
            let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
            collect_defaults_under_optional(spec, "spec", false, &mut found);
            assert!(
                found.is_empty(),
                "{name}: defaults inside optional objects with a required field: {found:?}"
            );
        }
    }
}

fn collect_defaults_under_optional(
    node: &Value,
    path: &str,
    optional: bool,
    out: &mut Vec<String>,
) {
    let required: Vec<&str> = node["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (field, child) in node["properties"].as_object().into_iter().flatten() {
        let child_path = format!("{path}.{field}");
        if optional && !required.is_empty() && child.get("default").is_some() {
            out.push(child_path.clone());
        }
        let child_optional = optional || !required.contains(&field.as_str());
        collect_defaults_under_optional(child, &child_path, child_optional, out);
        collect_defaults_under_optional(
            &child["items"],
            &format!("{child_path}[]"),
            child_optional,
            out,
        );
    }
}

/// The examples parse into the Rust types (the e2e test also applies them to an apiserver).
#[test]
fn examples_deserialize_into_the_rust_types() {
    use reteach_personio_operator::api::{CertificateSync, EmployeeSync};
    use serde::Deserialize;

    let mut files: Vec<PathBuf> = ["examples", "examples/two-tenants"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(repo_root().join(dir)).expect("examples exist"))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    let mut kinds = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("example readable");
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = serde_norway::Value::deserialize(document).expect("example is YAML");
            let kind = value["kind"].as_str().unwrap_or_default().to_owned();
            let result = match kind.as_str() {
                "EmployeeSync" => serde_norway::from_value::<EmployeeSync>(value).map(|_| ()),
                "CertificateSync" => serde_norway::from_value::<CertificateSync>(value).map(|_| ()),
                _ => Ok(()),
            };
            result.unwrap_or_else(|e| panic!("{}: {kind} does not parse: {e}", file.display()));
            kinds.push(kind);
        }
    }
    for wanted in ["EmployeeSync", "CertificateSync", "Secret"] {
        assert!(
            kinds.iter().filter(|k| *k == wanted).count() >= 3,
            "expected {wanted} in examples/ and both tenants"
        );
    }
}

// --- The checker checks itself: each rule must be able to fail. ---

fn violations_of(schema: Value) -> Vec<String> {
    structural_violations(&schema)
}

#[test]
fn checker_accepts_a_structural_schema() {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "port": {"x-kubernetes-int-or-string": true},
            "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "category": {"type": "object", "properties": {"id": {"type": "integer"}},
                         "oneOf": [{"required": ["id"]}, {"required": ["name"]}]},
            "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                           "x-kubernetes-list-map-keys": ["type"],
                           "items": {"type": "object", "properties": {"type": {"type": "string"}}}}
        }
    });
    assert_eq!(violations_of(schema), Vec::<String>::new());
}

#[test]
fn checker_rejects_a_node_without_type() {
    let schema = serde_json::json!({"type": "object", "properties": {"a": {"description": "x"}}});
    assert_eq!(violations_of(schema).len(), 1);
}

#[test]
fn checker_rejects_nullable_without_type() {
    let schema = serde_json::json!({"type": "object", "properties": {"a": {"nullable": true}}});
    let violations = violations_of(schema);
    assert!(
        violations.iter().any(|v| v.contains("nullable")),
        "{violations:?}"
    );
}

#[test]
fn checker_rejects_types_inside_any_of() {
    let schema = serde_json::json!({"type": "object", "properties": {
        "a": {"anyOf": [{"type": "string"}, {"type": "null"}]}}});
    let violations = violations_of(schema);
    assert!(
        violations.iter().any(|v| v.contains("anyOf")),
        "{violations:?}"
    );
}

#[test]
fn checker_rejects_refs_uint_formats_and_cel_rules() {
    let schema = serde_json::json!({"type": "object", "properties": {
        "a": {"$ref": "#/definitions/A"},
        "b": {"type": "integer", "format": "uint32"},
        "c": {"type": "string", "x-kubernetes-validations": [{"rule": "self != ''"}]}}});
    let violations = violations_of(schema);
    assert!(
        violations.iter().any(|v| v.contains("$ref")),
        "{violations:?}"
    );
    assert!(
        violations.iter().any(|v| v.contains("uint32")),
        "{violations:?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| v.contains("x-kubernetes-validations")),
        "{violations:?}"
    );
}

#[test]
fn checker_rejects_empty_string_defaults() {
    let schema = serde_json::json!({"type": "object", "properties": {
        "message": {"type": "string", "default": ""}}});
    let violations = violations_of(schema);
    assert!(
        violations.iter().any(|v| v.contains("default ''")),
        "{violations:?}"
    );
}

#[test]
fn checker_rejects_additional_properties_beside_properties() {
    let schema = serde_json::json!({"type": "object", "properties": {"a": {"type": "string"}},
        "additionalProperties": {"type": "string"}});
    let violations = violations_of(schema);
    assert!(
        violations
            .iter()
            .any(|v| v.contains("additionalProperties")),
        "{violations:?}"
    );
}

#[test]
fn checker_rejects_conditions_without_list_map_keys() {
    let schema = serde_json::json!({"type": "object", "properties": {"conditions": {
        "type": "array", "items": {"type": "object"}}}});
    let violations = violations_of(schema);
    assert!(
        violations.iter().any(|v| v.contains("conditions")),
        "{violations:?}"
    );
}

// --- Structural schema rules (Kubernetes "Specifying a structural schema"). ---

/// Keywords that may only carry value validations (no `type`, `nullable`, defaults or nested
/// structure) under a structural schema.
const JUNCTORS: [&str; 4] = ["anyOf", "oneOf", "allOf", "not"];

/// Every rule the schema breaks, each with the JSON path of the offending node.
fn structural_violations(schema: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    check_node(schema, "", &mut violations);
    violations
}

fn check_node(node: &Value, path: &str, out: &mut Vec<String>) {
    let Some(object) = node.as_object() else {
        out.push(format!("{path}: schema node is not an object"));
        return;
    };
    let escaped = object.contains_key("x-kubernetes-int-or-string")
        || object.contains_key("x-kubernetes-preserve-unknown-fields");
    if !object.contains_key("type") && !escaped {
        if object.contains_key("nullable") {
            out.push(format!("{path}: nullable without type"));
        } else {
            out.push(format!("{path}: schema node without type"));
        }
    }
    check_common_rules(object, path, out);
    if object.contains_key("additionalProperties") && object.contains_key("properties") {
        out.push(format!(
            "{path}: additionalProperties and properties are mutually exclusive"
        ));
    }
    if let Some(additional) = object.get("additionalProperties") {
        if additional.is_object() {
            check_node(additional, &format!("{path}.additionalProperties"), out);
        } else {
            out.push(format!(
                "{path}: additionalProperties must be a schema, not {additional}"
            ));
        }
    }
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            let child_path = format!("{path}.{name}");
            if name == "conditions" {
                check_conditions(child, &child_path, out);
            }
            check_node(child, &child_path, out);
        }
    }
    if let Some(items) = object.get("items") {
        check_node(items, &format!("{path}[]"), out);
    }
    for junctor in JUNCTORS {
        if let Some(inner) = object.get(junctor) {
            check_junctor(inner, &format!("{path}.{junctor}"), out);
        }
    }
}

fn check_common_rules(object: &serde_json::Map<String, Value>, path: &str, out: &mut Vec<String>) {
    if object.contains_key("$ref") {
        out.push(format!("{path}: $ref is not allowed"));
    }
    if object.contains_key("x-kubernetes-validations") {
        out.push(format!(
            "{path}: x-kubernetes-validations (CEL) is rejected by the v1.20 apiserver we support"
        ));
    }
    if object.get("default") == Some(&Value::String(String::new())) {
        out.push(format!(
            "{path}: default '' is read as null by a v1.20 apiserver, which rejects the CRD"
        ));
    }
    if let Some(format) = object.get("format").and_then(Value::as_str) {
        if format.starts_with("uint") {
            out.push(format!(
                "{path}: format {format} is not a Kubernetes format; use i32/i64"
            ));
        }
    }
}

/// Inside `anyOf`/`oneOf`/`allOf`/`not` only value validations are allowed.
fn check_junctor(node: &Value, path: &str, out: &mut Vec<String>) {
    match node {
        Value::Array(branches) => {
            for (index, branch) in branches.iter().enumerate() {
                check_junctor(branch, &format!("{path}[{index}]"), out);
            }
        }
        Value::Object(object) => {
            for forbidden in [
                "type",
                "nullable",
                "default",
                "additionalProperties",
                "description",
                "x-kubernetes-preserve-unknown-fields",
                "x-kubernetes-int-or-string",
            ] {
                if object.contains_key(forbidden) {
                    out.push(format!(
                        "{path}: {forbidden} inside a junctor (anyOf/oneOf/allOf/not)"
                    ));
                }
            }
            check_common_rules(object, path, out);
            for nested in ["properties", "items"] {
                if let Some(child) = object.get(nested) {
                    let children: Vec<&Value> = match child {
                        Value::Object(map) if nested == "properties" => map.values().collect(),
                        other => vec![other],
                    };
                    for child in children {
                        check_junctor(child, &format!("{path}.{nested}"), out);
                    }
                }
            }
            for junctor in JUNCTORS {
                if let Some(inner) = object.get(junctor) {
                    check_junctor(inner, &format!("{path}.{junctor}"), out);
                }
            }
        }
        other => out.push(format!("{path}: unexpected junctor value {other}")),
    }
}

/// Conditions are merged by `type` under server-side apply; without the list-map markers a status
/// patch would replace the whole list.
fn check_conditions(node: &Value, path: &str, out: &mut Vec<String>) {
    if node["type"] != "array" {
        return;
    }
    if node["x-kubernetes-list-type"] != "map" {
        out.push(format!(
            "{path}: conditions need x-kubernetes-list-type: map"
        ));
    }
    if node["x-kubernetes-list-map-keys"] != serde_json::json!(["type"]) {
        out.push(format!(
            "{path}: conditions need x-kubernetes-list-map-keys: [type]"
        ));
    }
}
