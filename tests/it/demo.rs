//! `reteach-personio-operator demo` runs both syncs against the embedded simulators and reports
//! what happened; these tests run the real binary and read its output like a newcomer would.

use std::process::Command;
use std::sync::OnceLock;

/// The demo's standard output (run once for all tests; it must exit 0).
fn demo_output() -> &'static str {
    static OUTPUT: OnceLock<String> = OnceLock::new();
    OUTPUT.get_or_init(|| {
        let output = Command::new(env!("CARGO_BIN_EXE_reteach-personio-operator"))
            .arg("demo")
            .env_remove("RUST_LOG")
            .output()
            .expect("the binary runs");
        let stdout = String::from_utf8(output.stdout).expect("output is UTF-8");
        assert!(
            output.status.success(),
            "demo exited with {}\nstdout:\n{stdout}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    })
}

/// The part of the output between two run headings.
fn run_section(run: usize) -> &'static str {
    let output = demo_output();
    let start = output
        .find(&format!("==== Run {run}:"))
        .unwrap_or_else(|| panic!("no run {run} in:\n{output}"));
    let rest = &output[start..];
    let end = rest[1..].find("==== Run ").map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

/// The line that contains `needle`.
fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

/// The row of the lock schedule for Personio id `id`.
fn lock_row<'a>(text: &'a str, id: &str) -> &'a str {
    let prefix = format!("  {id} ");
    text.lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no lock schedule row for {id} in:\n{text}"))
}

/// The numbers of `requests total: run 1 = N, run 2 = M`.
fn request_totals() -> (usize, usize) {
    let line = line_with(demo_output(), "requests total:");
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|part| part.parse().ok())
        .collect();
    match numbers.as_slice() {
        [1, first, 2, second] => (*first, *second),
        _ => panic!("unexpected totals line {line:?}"),
    }
}

#[test]
fn first_run_syncs_the_simulated_company_and_reports_its_status() {
    let run = run_section(1);
    assert!(run.contains("kubectl get employeesync personio"), "{run}");
    assert!(
        run.contains("kubectl get certificatesync certificates"),
        "{run}"
    );
    assert!(
        run.contains(
            "50 employees: 13 created, 11 updated (5 locked, 0 unlocked), 25 unchanged, \
             1 skipped, 0 failed"
        ),
        "{run}"
    );
    assert!(
        run.contains(
            "33 certificates handled (full pass): 31 uploaded, 0 already present, \
             1 waiting for a PDF, 1 of users without a Personio id, 0 failed"
        ),
        "{run}"
    );
    assert!(run.contains("mode: Full"), "{run}");
    assert!(run.contains("backfill: true"), "{run}");
    assert!(run.contains("uploadedTotal: 31"), "{run}");
    assert!(line_with(run, "  uploaded ").ends_with("uploaded 31"));
}

#[test]
fn first_run_locks_ended_and_future_contracts_and_schedules_the_last_day() {
    let run = run_section(1);
    for terminated in ["10043", "10044", "10045"] {
        let row = lock_row(run, terminated);
        assert!(
            row.contains("locked") && row.contains("contract ended"),
            "{row}"
        );
    }
    for starting in ["10046", "10047"] {
        let row = lock_row(run, starting);
        assert!(
            row.contains("locked") && row.contains("contract starts later"),
            "{row}"
        );
    }
    // Fixed-term contract ending today: still active, inactive from tomorrow.
    let ends_today = lock_row(run, "10048");
    assert!(
        ends_today.contains("active") && ends_today.contains("last day ahead"),
        "{ends_today}"
    );
    assert!(
        run.contains("10041 has a gender value reteach does not know"),
        "{run}"
    );
}

#[test]
fn first_run_tags_by_department_and_keeps_tags_it_did_not_set() {
    let run = run_section(1);
    assert!(run.contains("; tags: 20 added, 0 removed"), "{run}");
    let managed = &run[run.find("  managedTags:").expect("managedTags in status")..];
    let managed = &managed[..managed.find("\n\n").unwrap_or(managed.len())];
    assert!(managed.contains("  - Engineering"), "{managed}");
    assert!(!managed.contains("Old Team"), "{managed}");
    // The moved team got its new department's tag and kept the old one nobody here set.
    let engineering = line_with(run, "  Engineering ");
    assert!(engineering.contains("10027"), "{engineering}");
    let old_team = line_with(run, "  Old Team ");
    assert!(old_team.contains("10026 10027 10028"), "{old_team}");
    // Leavers keep theirs: 10045 left and still carries Finance.
    assert!(line_with(run, "  Finance ").contains("10045"), "{run}");
    let tag_requests = line_with(run_section(2), "PUT /customer/{id}/tags");
    assert!(tag_requests.ends_with("     20      0"), "{tag_requests}");
}

#[test]
fn first_run_says_what_was_skipped_and_why() {
    let run = run_section(1);
    let skipped = &run[run.find("Skipped, and why").expect("a skipped section")..];
    assert!(
        line_with(skipped, "employee 10050").contains("no e-mail address"),
        "{skipped}"
    );
    assert!(
        skipped.contains("of reteach users without a Personio id"),
        "{skipped}"
    );
    assert!(skipped.contains("PdfPending"), "{skipped}");
}

#[test]
fn second_run_is_incremental_and_has_nothing_to_do() {
    let run = run_section(2);
    assert!(run.contains("EmployeeSync (Incremental)"), "{run}");
    assert!(run.contains("0 employees: 0 created, 0 updated"), "{run}");
    assert!(run.contains("0 uploaded"), "{run}");
    assert!(line_with(run, "  created ").ends_with("created     0"));
    assert!(line_with(run, "  uploaded ").ends_with("uploaded 0"));
}

#[test]
fn second_run_needs_far_fewer_requests() {
    let (first, second) = request_totals();
    assert!(first >= 31, "the backfill uploads 31 documents: {first}");
    assert!(second * 10 < first, "run 1: {first}, run 2: {second}");
    let uploads = line_with(run_section(2), "POST /v1/company/documents");
    assert!(uploads.ends_with("     31      0"), "{uploads}");
}

#[test]
fn output_carries_no_credentials() {
    let output = demo_output();
    for secret in ["sim-personio-secret", "sim-client-secret", "clientSecret"] {
        assert!(!output.contains(secret), "{secret} printed");
    }
}

#[test]
fn docs_sample_shows_what_the_demo_prints() {
    let sample = include_str!("../../docs/demo.md");
    let output = demo_output();
    for needle in [
        "50 employees: 13 created, 11 updated (5 locked, 0 unlocked), 25 unchanged, 1 skipped",
        "33 certificates handled (full pass): 31 uploaded, 0 already present, 1 waiting for a PDF",
        "employee 10050           no e-mail address",
        "0 employees: 0 created, 0 updated (0 locked, 0 unlocked), 0 unchanged, 0 skipped",
        // The example's selector reads `employment_type`: it is asked for and must be whitelisted.
        "  personioAttributes:",
        "  - employment_type",
    ] {
        assert!(output.contains(needle), "demo no longer prints {needle:?}");
        assert!(
            sample.contains(needle),
            "docs/demo.md sample lacks {needle:?}"
        );
    }
    let total = output
        .lines()
        .rfind(|line| line.starts_with("  total "))
        .expect("a totals row of both runs");
    assert!(
        sample.contains(total),
        "docs/demo.md sample lacks the totals row {total:?}"
    );
}

/// The README's summary of the demo quotes the request totals of both runs.
#[test]
fn readme_quotes_the_demo_request_totals() {
    let readme = include_str!("../../README.md")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let output = demo_output();
    let total = output
        .lines()
        .rfind(|line| line.starts_with("  total "))
        .expect("a totals row of both runs");
    let counts: Vec<&str> = total.split_whitespace().skip(1).collect();
    assert_eq!(counts.len(), 2, "{total:?}");
    for phrase in [
        format!("{} for the first run", counts[0]),
        format!("{} for the incremental run", counts[1]),
    ] {
        assert!(
            readme.contains(&phrase),
            "README.md lacks {phrase:?} (the demo prints {total:?})"
        );
    }
}
