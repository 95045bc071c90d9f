//! The benchmark harness on a tiny company (100 employees, 20 certificates, no latency, rate
//! limits 1000 × faster): every scenario runs in a child process of the real binary and produces
//! its figures. Request counts are checked against their known minimum; nothing is timed.

use std::path::Path;
use std::time::Duration;

use reteach_personio_operator::bench::figures::{personio, reteach};
use reteach_personio_operator::bench::{report, run_all, Scenario, ScenarioReport, Settings};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_reteach-personio-operator"))
}

fn tiny(scenarios: &[Scenario]) -> Settings {
    Settings {
        employees: 100,
        certificates: 20,
        latency: Duration::ZERO,
        time_scale: 1000.0,
        resources: 3,
        pdf_bytes: 16 * 1024,
        pairs: 5,
        max_concurrent_runs: 3,
        burst_academies: 6,
        burst_pdf_bytes: 64 * 1024,
        scenarios: scenarios.to_vec(),
    }
}

async fn run_one(scenario: Scenario) -> ScenarioReport {
    let mut reports = run_all(&tiny(&[scenario]), exe()).await.unwrap();
    assert_eq!(reports.len(), 1, "one report per selected scenario");
    let report = reports.remove(0);
    assert_eq!(report.scenario, scenario);
    assert_eq!(report.result.error, None, "the measured run failed");
    assert!(
        report.result.memory.peak_kib > 0,
        "peak RSS comes from the child's /proc/self/status"
    );
    assert_eq!(report.result.too_many_requests, 0);
    report
}

#[tokio::test]
async fn initial_sync_creates_every_user_with_the_minimum_requests() {
    let report = run_one(Scenario::Initial).await;
    let created = report.result.summary["created"].as_u64().unwrap();
    assert!(created > 0);
    assert_eq!(report.result.count(reteach::CREATE) as u64, created);
    assert_eq!(report.result.count(personio::EMPLOYEES), 1);
    assert_eq!(report.result.total_requests(), report.minimum);
    assert!(report.bound.is_some());
}

#[tokio::test]
async fn steady_state_run_asks_personio_once_for_changes_and_nothing_else() {
    let report = run_one(Scenario::Steady).await;
    assert_eq!(report.minimum, 2);
    assert_eq!(report.result.total_requests(), 2);
    assert_eq!(report.result.count(personio::AUTH), 1);
    assert_eq!(report.result.count(personio::EMPLOYEES), 1);
    assert!(report.passed(), "{:?}", report.targets);
}

#[tokio::test]
async fn run_with_one_percent_changed_writes_exactly_the_changed_employees() {
    let report = run_one(Scenario::Changed).await;
    assert_eq!(report.result.summary["updated"], 1);
    assert_eq!(report.result.count(reteach::UPDATE), 1);
    assert_eq!(report.result.total_requests(), report.minimum);
    assert!(report.passed(), "{:?}", report.targets);
}

#[tokio::test]
async fn drift_correction_run_rewrites_only_the_users_edited_in_reteach() {
    let report = run_one(Scenario::Drift).await;
    assert_eq!(report.result.summary["mode"], "Full");
    assert_eq!(report.result.count(reteach::UPDATE), 1);
    assert_eq!(report.result.total_requests(), report.minimum);
}

#[tokio::test]
async fn department_tags_cost_nothing_without_change_and_two_requests_for_a_move() {
    let report = run_one(Scenario::Tags).await;
    assert!(report.passed(), "{:?}", report.targets);
    assert_eq!(report.result.summary["tagsAdded"], 1);
    assert_eq!(report.result.summary["tagsRemoved"], 1);
    assert_eq!(report.result.total_requests(), report.minimum);
}

#[tokio::test]
async fn certificate_backfill_uploads_every_certificate_once() {
    let report = run_one(Scenario::Backfill).await;
    assert_eq!(report.result.summary["run"]["uploaded"], 20);
    assert_eq!(report.result.count(personio::UPLOAD), 20);
    assert_eq!(report.result.count(reteach::DOWNLOAD), 20);
    assert_eq!(report.result.total_requests(), report.minimum);
    assert!(
        report.notes.iter().any(|note| note.contains("peak RSS")),
        "the small comparison run is reported: {:?}",
        report.notes
    );
}

#[tokio::test]
async fn recreated_certificate_sync_uploads_only_the_missing_half() {
    let report = run_one(Scenario::HalfPresent).await;
    assert_eq!(report.result.summary["run"]["alreadyPresent"], 10);
    assert_eq!(report.result.summary["run"]["uploaded"], 10);
    assert_eq!(report.result.count(personio::UPLOAD), 10);
    assert_eq!(report.result.total_requests(), report.minimum);
    assert!(report.passed(), "{:?}", report.targets);
}

#[tokio::test]
async fn full_pass_lists_each_employee_once_and_uploads_nothing() {
    let report = run_one(Scenario::FullPass).await;
    assert_eq!(report.result.summary["run"]["fullPass"], true);
    assert_eq!(report.result.count(personio::UPLOAD), 0);
    assert!(report.result.total_requests() <= report.minimum);
    assert!(report.passed(), "{:?}", report.targets);
}

#[tokio::test]
async fn bulk_import_keeps_the_ledger_within_its_budget() {
    let report = run_one(Scenario::BulkImport).await;
    assert_eq!(report.result.summary["run"]["uploaded"], 40);
    let max = report.result.summary["ledgerMaxBytes"].as_u64().unwrap();
    assert!(max <= 64 * 1024, "{max}");
    assert!(report.passed(), "{:?}", report.targets);
}

#[tokio::test]
async fn idle_resources_each_run_once_and_report_their_memory() {
    let report = run_one(Scenario::Idle).await;
    assert_eq!(report.result.summary["resources"], 3);
    assert_eq!(report.result.count(personio::AUTH), 3);
    assert_eq!(report.result.total_requests(), report.minimum);
    assert!(report.bound.is_none());
    assert!(report.notes.iter().any(|note| note.contains("baseline")));
}

#[tokio::test]
async fn academies_after_a_restart_share_clients_and_respect_the_run_slots() {
    // Whether each run started within its interval depends on the machine's speed at a time
    // scale of 1000, so it is reported, not asserted here; counts and limits are.
    let report = run_one(Scenario::Scale).await;
    let summary = &report.result.summary;
    assert_eq!(
        summary["runs"], 10,
        "5 EmployeeSyncs + 5 CertificateSyncs ran once each"
    );
    assert_eq!(report.result.total_requests(), report.minimum);
    assert_eq!(
        report.result.count(personio::AUTH),
        5,
        "one token per academy, shared by its two resources"
    );
    assert_eq!(summary["uploaded"], 20, "every certificate uploaded once");
    let peak = summary["peakConcurrentRuns"].as_u64().unwrap();
    assert!((1..=3).contains(&peak), "peak {peak} with 3 run slots");
    assert_eq!(summary["tenantClients"], 5);
    assert_eq!(summary["watchCache"], serde_json::json!([5, 5]));
    assert!(
        summary["sharedHttpClients"].as_u64().unwrap() <= 3,
        "API and download clients are shared by all academies: {summary}"
    );
    assert!(report.notes.iter().any(|note| note.contains("per pair")));
}

#[tokio::test]
async fn a_burst_of_certificate_runs_keeps_to_the_run_slots_and_uploads_everything() {
    let report = run_one(Scenario::Burst).await;
    let summary = &report.result.summary;
    assert_eq!(summary["uploaded"], 6, "every certificate uploaded once");
    let peak = summary["peakConcurrentRuns"].as_u64().unwrap();
    assert!((1..=3).contains(&peak), "peak {peak} with 3 run slots");
    assert_eq!(report.result.count(personio::UPLOAD), 6);
}

#[tokio::test]
async fn academies_under_one_personio_limit_get_no_429_and_report_their_interval() {
    let mut reports = run_all(&tiny(&[Scenario::Budget]), exe()).await.unwrap();
    let report = reports.remove(0);
    assert_eq!(report.result.error, None, "a run failed");
    assert_eq!(report.result.too_many_requests, 0);
    let runs = report.result.summary["runs"].as_u64().unwrap();
    assert!(
        runs > 5,
        "every academy ran again after its interval: {runs} runs"
    );
    assert!(
        report
            .notes
            .iter()
            .any(|note| note.contains("effective interval per academy")),
        "{:?}",
        report.notes
    );
    assert!(report
        .targets
        .iter()
        .any(|t| t.name.contains("429") && t.pass));
}

#[tokio::test]
async fn report_shows_every_figure_and_a_verdict_per_scenario() {
    let settings = tiny(&[Scenario::Steady]);
    let reports = run_all(&settings, exe()).await.unwrap();
    let text = report::render(&settings, &reports);
    for expected in [
        "steady state",
        "POST /v1/auth",
        "GET /v1/company/employees",
        "requests 2 / minimum 2 = 1.000",
        "wall",
        "bound",
        "peak RSS",
        "429s received 0",
        "[pass] requests ≤ 3: 2",
        "pass  steady",
    ] {
        assert!(text.contains(expected), "{expected:?} missing in:\n{text}");
    }
}

#[tokio::test]
async fn a_full_read_through_v2_sends_its_minimum_and_says_what_v1_needs() {
    let report = run_one(Scenario::ApiFull).await;
    assert_eq!(
        report.result.total_requests(),
        report.minimum,
        "Personio only"
    );
    assert_eq!(report.result.count("GET /v2/persons/{id}/employments"), 100);
    assert_eq!(report.result.count("GET /v2/persons"), 2);
    assert!(report.passed(), "{:?}", report.targets);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("v1: 2 Personio requests")),
        "{:?}",
        report.notes
    );
}

#[tokio::test]
async fn an_incremental_v2_run_re_reads_the_notified_persons_and_writes_every_change() {
    let report = run_one(Scenario::ApiIncremental).await;
    assert_eq!(
        report.result.total_requests(),
        report.minimum,
        "Personio only"
    );
    assert_eq!(report.result.summary["updated"].as_u64(), Some(2));
    // One changed-person page and one page of the notified person by id.
    assert_eq!(report.result.count("GET /v2/persons"), 2);
    assert!(report.passed(), "{:?}", report.targets);
}
