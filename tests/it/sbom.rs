//! The image's SBOM (`scripts/sbom.py`, issue 29): a CycloneDX document of exactly the crates the
//! production build compiles, with versions and checksums as Cargo.lock pins them, reproducible
//! for a commit. The cluster tests check that the image carries it and names it in its labels.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn sbom() -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("python3")
        .arg(root.join("scripts/sbom.py"))
        .args(["--revision", "0123abc"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/sbom.py: {e}"));
    assert!(output.status.success(), "scripts/sbom.py: {output:?}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("not JSON: {e}"))
}

/// `name -> [versions]` of the packages in Cargo.lock, with their checksums.
fn locked() -> BTreeMap<(String, String), Option<String>> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"))
        .unwrap_or_else(|e| panic!("Cargo.lock: {e}"));
    let mut packages = BTreeMap::new();
    for block in text.split("[[package]]").skip(1) {
        let field = |key: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        if let (Some(name), Some(version)) = (field("name"), field("version")) {
            packages.insert((name, version), field("checksum"));
        }
    }
    packages
}

#[test]
fn lists_the_production_crates_with_their_locked_versions_and_checksums() {
    let bom = sbom();
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.5");
    let me = &bom["metadata"]["component"];
    assert_eq!(me["name"], "reteach-personio-operator");
    assert_eq!(me["version"], env!("CARGO_PKG_VERSION"));
    assert!(me["properties"].to_string().contains("0123abc"), "{me}");

    let locked = locked();
    let components = bom["components"].as_array().cloned().unwrap_or_default();
    assert!(components.len() > 100, "{} components", components.len());
    let mut names = Vec::new();
    for component in &components {
        let name = component["name"].as_str().unwrap_or_default().to_string();
        let version = component["version"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(component["purl"], format!("pkg:cargo/{name}@{version}"));
        let checksum = locked
            .get(&(name.clone(), version.clone()))
            .unwrap_or_else(|| panic!("{name} {version} is not in Cargo.lock"));
        let listed = component["hashes"][0]["content"]
            .as_str()
            .map(str::to_string);
        assert_eq!(
            &listed, checksum,
            "{name} {version}: the checksum Cargo.lock pins"
        );
        assert!(
            component["licenses"][0]["expression"].is_string(),
            "{component}"
        );
        names.push(name);
    }
    for shipped in [
        "tokio",
        "kube-client",
        "rustls",
        "reqwest",
        "tikv-jemallocator",
    ] {
        assert!(names.iter().any(|n| n == shipped), "{shipped} missing");
    }
    // Dev-dependencies and build-only crates are not in the binary.
    for left_out in ["proptest", "mlua", "cc"] {
        assert!(!names.iter().any(|n| n == left_out), "{left_out} listed");
    }
    let dependencies = bom["dependencies"].as_array().cloned().unwrap_or_default();
    let root_ref = me["bom-ref"].as_str().unwrap_or_default();
    let root = dependencies
        .iter()
        .find(|d| d["ref"] == root_ref)
        .unwrap_or_else(|| panic!("no dependency entry of the operator"));
    assert!(root["dependsOn"].to_string().contains("pkg:cargo/tokio@"));
}

#[test]
fn is_the_same_document_for_the_same_commit() {
    assert_eq!(sbom(), sbom());
}
