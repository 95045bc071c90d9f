//! The documentation stays whole: every relative link and anchor of README.md, docs/ and the other
//! top-level Markdown files resolves (`scripts/check-links.py`, also run by `.ci/run`), the checker
//! really catches broken ones, and the generated CRD reference under `docs/reference/` matches
//! `crds/` (`scripts/crd-reference.py --check`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python(script: &str, args: &[&str]) -> Output {
    Command::new("python3")
        .arg(repo_root().join("scripts").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 scripts/{script}: {e}"))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn write(dir: &Path, path: &str, content: &str) {
    let path = dir.join(path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
    }
    std::fs::write(&path, content).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

#[test]
fn every_relative_link_and_anchor_of_the_markdown_files_resolves() {
    let root = repo_root();
    let output = python("check-links.py", &[&root.to_string_lossy()]);
    let report = text(&output);
    assert!(output.status.success(), "broken links:\n{report}");
    assert!(report.contains("resolve"), "{report}");
}

#[test]
fn the_link_checker_reports_missing_files_and_anchors_but_not_code() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
    write(
        dir.path(),
        "README.md",
        "# Tool\n\nSee [setup](docs/setup.md#first-steps), [gone](docs/gone.md) and\n\
         [nowhere](#no-such-heading); [fine](docs/setup.md#install-it-v2-now), [top](#tool).\n\n\
         ```sh\necho [not a link](missing.md)\n```\n\nAnd `[code](missing.md)` too.\n",
    );
    write(
        dir.path(),
        "docs/setup.md",
        "# Setup\n\n## Install it (`v2`, now)\n\n## Configure\n\n[back](../README.md#tool), \
         [sibling](#configure), [again](#configure-1)\n\n## Configure\n",
    );
    let output = python("check-links.py", &[&dir.path().to_string_lossy()]);
    let report = text(&output);
    assert!(!output.status.success(), "broken links passed:\n{report}");
    let broken: Vec<&str> = report
        .lines()
        .filter(|line| line.contains(".md:"))
        .collect();
    assert_eq!(broken.len(), 3, "{report}");
    assert!(
        broken[0].starts_with("README.md:3: docs/setup.md#first-steps: no heading"),
        "{report}"
    );
    assert!(
        broken[1].starts_with("README.md:3: docs/gone.md: no such file"),
        "{report}"
    );
    assert!(
        broken[2].starts_with("README.md:4: #no-such-heading: no heading"),
        "{report}"
    );
}

#[test]
fn the_crd_reference_under_docs_matches_the_crds() {
    let output = python("crd-reference.py", &["--check"]);
    assert!(
        output.status.success(),
        "docs/reference/ is out of date with crds/:\n{}",
        text(&output)
    );
    for kind in ["employeesync", "certificatesync"] {
        let page = repo_root().join(format!("docs/reference/{kind}.md"));
        let content =
            std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(content.contains("| `spec."), "{}", page.display());
        assert!(content.contains("| `status."), "{}", page.display());
    }
}
