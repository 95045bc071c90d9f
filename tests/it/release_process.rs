//! The release script (`scripts/release.sh`, issue 29) on a throw-away git repository shaped like
//! this one: versions kept in step, the CI check refusing a chart or CRD change without a version
//! bump and a CHANGELOG entry, and `cut` recording the release's commit in RELEASES.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CHART: &str = "charts/reteach-personio-operator/Chart.yaml";

struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// A repository at version 0.1.0, released at its first commit.
    fn released_at_0_1_0(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rpo-release-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let scratch = Self { dir };
        scratch.write(
            "Cargo.toml",
            "[package]\nname = \"reteach-personio-operator\"\nversion = \"0.1.0\"\n\n[dependencies]\nanyhow = \"1\"\n",
        );
        scratch.write(
            "Cargo.lock",
            "[[package]]\nname = \"anyhow\"\nversion = \"1.0.0\"\n\n[[package]]\nname = \"reteach-personio-operator\"\nversion = \"0.1.0\"\n",
        );
        scratch.write(
            CHART,
            "apiVersion: v2\nname: reteach-personio-operator\nversion: 0.1.0\nappVersion: \"0.1.0\"\n",
        );
        scratch.write("Dockerfile", "FROM scratch\nARG VERSION=0.1.0\n");
        scratch.write("crds/employeesync.yaml", "kind: CustomResourceDefinition\n");
        scratch.write(
            "tests/fixtures/v0.1.0/objects.yaml",
            "kind: EmployeeSync # written for 0.1.0\n",
        );
        scratch.write(
            "CHANGELOG.md",
            "# Changelog\n\n## [Unreleased]\n\n## [0.1.0] - 2026-12-02\n\n### Added\n- Everything.\n\n[Unreleased]: https://example.com/compare/v0.1.0...HEAD\n",
        );
        scratch.git(&["init", "-q"]);
        scratch.commit("0.1.0");
        let first = scratch.head();
        scratch.write(
            "RELEASES",
            &format!("# VERSION COMMIT DATE\n0.1.0 {first} 2026-12-02\n"),
        );
        scratch.commit("record 0.1.0");
        scratch
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.dir.join(path)).unwrap()
    }

    fn git(&self, args: &[&str]) -> Output {
        let output = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {output:?}");
        output
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    fn head(&self) -> String {
        String::from_utf8(self.git(&["rev-parse", "HEAD"]).stdout)
            .unwrap()
            .trim()
            .to_string()
    }

    /// Runs `scripts/release.sh ARGS` on the scratch repository: (success, stderr + stdout).
    fn release(&self, args: &[&str]) -> (bool, String) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/release.sh");
        let output = Command::new("bash")
            .arg(script)
            .args(args)
            .env("RPO_RELEASE_REPO", &self.dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        (output.status.success(), text)
    }

    fn check_fails_with(&self, wanted: &str) {
        let (ok, text) = self.release(&["check"]);
        assert!(!ok, "check should fail ({wanted}):\n{text}");
        assert!(text.contains(wanted), "want '{wanted}' in:\n{text}");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_chart_change_needs_a_bump_and_a_changelog_entry() {
    let repo = Scratch::released_at_0_1_0("check");
    let (ok, text) = repo.release(&["check"]);
    assert!(ok, "a tree equal to its release passes:\n{text}");

    repo.write(
        "charts/reteach-personio-operator/templates/new.yaml",
        "kind: ConfigMap\n",
    );
    repo.commit("chart change");
    repo.check_fails_with("but the version is still 0.1.0");

    let (ok, text) = repo.release(&["bump", "0.2.0"]);
    assert!(ok, "{text}");
    for (path, wanted) in [
        ("Cargo.toml", "version = \"0.2.0\""),
        (
            "Cargo.lock",
            "name = \"reteach-personio-operator\"\nversion = \"0.2.0\"",
        ),
        ("Cargo.lock", "name = \"anyhow\"\nversion = \"1.0.0\""),
        (CHART, "version: 0.2.0\nappVersion: \"0.2.0\""),
        ("Dockerfile", "ARG VERSION=0.2.0"),
    ] {
        assert!(
            repo.read(path).contains(wanted),
            "{path}: {}",
            repo.read(path)
        );
    }
    repo.check_fails_with("without an entry under '## [Unreleased]'");

    let changelog = repo.read("CHANGELOG.md").replace(
        "## [Unreleased]\n",
        "## [Unreleased]\n\n### Added\n- A dashboard.\n",
    );
    repo.write("CHANGELOG.md", &changelog);
    let (ok, text) = repo.release(&["check"]);
    assert!(ok, "bumped and noted:\n{text}");

    repo.write(
        CHART,
        "apiVersion: v2\nname: reteach-personio-operator\nversion: 0.2.1\nappVersion: \"0.2.0\"\n",
    );
    repo.check_fails_with("versions out of step");
}

#[test]
fn a_crd_change_counts_like_a_chart_change() {
    let repo = Scratch::released_at_0_1_0("crd");
    repo.write(
        "crds/employeesync.yaml",
        "kind: CustomResourceDefinition\n# new field\n",
    );
    repo.commit("crd change");
    repo.check_fails_with("but the version is still 0.1.0");
}

#[test]
fn cut_records_the_release_commit_and_moves_the_notes() {
    let repo = Scratch::released_at_0_1_0("cut");
    let (ok, text) = repo.release(&["cut", "0.2.0"]);
    assert!(!ok, "nothing to release:\n{text}");
    assert!(text.contains("nothing under '## [Unreleased]'"), "{text}");

    let changelog = repo.read("CHANGELOG.md").replace(
        "## [Unreleased]\n",
        "## [Unreleased]\n\n### Fixed\n- A bug.\n",
    );
    repo.write("CHANGELOG.md", &changelog);
    repo.write(
        "crds/employeesync.yaml",
        "kind: CustomResourceDefinition\n# v2\n",
    );
    let (ok, text) = repo.release(&["cut", "0.2.0"]);
    assert!(!ok, "a dirty tree is refused:\n{text}");
    repo.commit("fix");

    let (ok, text) = repo.release(&["cut", "0.2.0"]);
    assert!(ok, "{text}");
    let release_commit = String::from_utf8(repo.git(&["rev-parse", "HEAD~1"]).stdout).unwrap();
    let message =
        String::from_utf8(repo.git(&["log", "-1", "--format=%s", "HEAD~1"]).stdout).unwrap();
    assert_eq!(message.trim(), "Release 0.2.0");
    let (ok, previous) = repo.release(&["previous"]);
    assert!(ok);
    assert_eq!(previous.trim(), format!("0.2.0 {}", release_commit.trim()));
    let changelog = repo.read("CHANGELOG.md");
    let unreleased = changelog.find("## [Unreleased]").unwrap();
    let released = changelog.find("## [0.2.0] - ").unwrap();
    let note = changelog.find("- A bug.").unwrap();
    assert!(unreleased < released && released < note, "{changelog}");
    assert!(changelog.contains(
        "[0.2.0]: https://github.com/reteach/reteach-personio-operator/compare/v0.1.0...v0.2.0"
    ));
    let (ok, text) = repo.release(&["check"]);
    assert!(ok, "a fresh release passes its own check:\n{text}");
    assert_eq!(
        repo.read("tests/fixtures/v0.2.0/crds/employeesync.yaml"),
        "kind: CustomResourceDefinition\n# v2\n",
        "the release's CRDs kept as upgrade fixtures"
    );
    assert!(repo
        .read("tests/fixtures/v0.2.0/objects.yaml")
        .contains("written for 0.2.0"));
    let files = String::from_utf8(
        repo.git(&["show", "--name-only", "--format=", "HEAD~1"])
            .stdout,
    )
    .unwrap();
    assert!(
        files.contains("tests/fixtures/v0.2.0/crds/employeesync.yaml"),
        "{files}"
    );

    let (ok, text) = repo.release(&["bump", "0.1.9"]);
    assert!(
        !ok && text.contains("not above the last release 0.2.0"),
        "{text}"
    );
    let (ok, text) = repo.release(&["bump", "1.0"]);
    assert!(!ok && text.contains("not a semantic version"), "{text}");
}
