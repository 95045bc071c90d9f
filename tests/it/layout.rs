//! The integration tests stay in their three binaries (`tests/it`, `tests/e2e`, `tests/e2e_alone`),
//! and no test file is left out of one: Cargo compiles a `tests/*.rs` file as a binary of its own
//! (linking the whole crate once more), and it silently ignores a file in a binary's directory that
//! its `main.rs` does not declare — its tests would never run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The test binaries, each a directory under `tests/` with a `main.rs`.
const BINARIES: [&str; 3] = ["it", "e2e", "e2e_alone"];

fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// File stems of the `*.rs` files directly in `dir`.
fn rust_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "rs"))
        .filter_map(|path| {
            path.file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
        })
        .collect()
}

/// The modules `main.rs` declares from files of its own directory (`mod NAME;` without `#[path]`).
fn declared_modules(main: &str) -> BTreeSet<String> {
    let mut modules = BTreeSet::new();
    let mut after_path_attribute = false;
    for line in main.lines().map(str::trim) {
        if line.starts_with("#[path") {
            after_path_attribute = true;
            continue;
        }
        if let Some(name) = line
            .strip_prefix("mod ")
            .or_else(|| line.strip_prefix("pub mod "))
            .and_then(|rest| rest.strip_suffix(';'))
        {
            if !after_path_attribute {
                modules.insert(name.to_string());
            }
        }
        after_path_attribute = false;
    }
    modules
}

#[test]
fn no_test_file_builds_a_binary_of_its_own() {
    let stray = rust_files(&tests_dir());
    assert!(
        stray.is_empty(),
        "tests/{{{}}}.rs would each link the whole crate into a binary of its own: move them into \
         tests/it/ (no Kubernetes) or tests/e2e/ (the kube-apiserver) and add `mod NAME;` to its main.rs",
        stray.into_iter().collect::<Vec<_>>().join(",")
    );
}

#[test]
fn every_file_of_a_test_binary_is_compiled_into_it() {
    for binary in BINARIES {
        let dir = tests_dir().join(binary);
        let main = std::fs::read_to_string(dir.join("main.rs"))
            .unwrap_or_else(|e| panic!("tests/{binary}/main.rs: {e}"));
        let mut files = rust_files(&dir);
        assert!(files.remove("main"), "tests/{binary} has no main.rs");
        let declared = declared_modules(&main);
        let missing: Vec<_> = files.difference(&declared).collect();
        assert!(
            missing.is_empty(),
            "tests/{binary}/main.rs does not declare {missing:?}: their tests never run"
        );
        assert!(!declared.is_empty(), "tests/{binary} holds no test module");
    }
}

#[test]
fn declared_modules_skips_shared_modules_loaded_by_path() {
    let main =
        "//! doc\n#[path = \"../support/mod.rs\"]\nmod support;\n\nmod alpha;\npub mod beta;\n";
    let declared = declared_modules(main);
    assert_eq!(declared.into_iter().collect::<Vec<_>>(), ["alpha", "beta"]);
}
