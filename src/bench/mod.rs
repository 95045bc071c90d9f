//! `bench`: the real sync code against the simulators with latency and rate limits.
//!
//! The parent process starts the simulators on loopback, prepares their state and re-executes
//! this binary (`bench --child`) for every measured run, so the peak resident memory it reports
//! is that of the sync code and its clients alone. Every run uses the real
//! [`crate::jobs::run_employee_sync`] / [`crate::jobs::run_certificate_sync`], the real clients
//! with their rate limits (scaled by `--time-scale`, like the simulators' buckets) and a
//! [`tally::RequestTally`] that counts requests by endpoint in constant memory. See `BENCHMARKS.md`.
//!
//! What the bench takes from the controller on purpose, because it measures it: the run slots and
//! the start-up spread (`controller::pacing`), the Personio budget planner (`controller::budget`),
//! the per-tenant client cache (`controller::tenant_cache`), the watch cache's trim
//! (`controller::watch_cache::trim`) and the PDF memory default (`controller::operator`). Nothing
//! else: the status after a run comes from [`crate::jobs::run_status`], as in the controller.

pub mod api_cost;
pub mod budget;
pub mod burst;
pub mod certificate_run;
pub mod certificate_scenarios;
pub mod child;
pub mod clients;
pub mod employee_scenarios;
pub mod figures;
pub mod memory;
pub mod report;
pub mod scale;
pub mod scenarios;
pub mod tally;
pub mod tenant;

use std::time::Duration;

pub use scenarios::{run_all, ScenarioReport, Settings};

/// Options of `reteach-personio-operator bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchOptions {
    /// Employees of the simulated company.
    #[arg(long, default_value_t = 10_000)]
    pub employees: usize,
    /// Certificates of the backfill.
    #[arg(long, default_value_t = 10_000)]
    pub certificates: usize,
    /// Latency the simulators add to every request, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub latency_ms: u64,
    /// Every rate limit (client limiters and simulator buckets) runs this many times faster.
    #[arg(long, default_value_t = 15.0)]
    pub time_scale: f64,
    /// Run only these scenarios (repeatable; default: all).
    #[arg(long, value_enum)]
    pub scenario: Vec<Scenario>,
    /// EmployeeSync resources of the idle scenario (the employees are spread over them).
    #[arg(long, default_value_t = 100)]
    pub resources: usize,
    /// Size of every certificate PDF in KiB.
    #[arg(long, default_value_t = 128)]
    pub pdf_kib: u64,
    /// EmployeeSync + CertificateSync pairs of the scale scenario (employees and certificates are
    /// spread over them).
    #[arg(long, default_value_t = 1_000)]
    pub pairs: usize,
    /// Run slots of the scale scenario (the operator's `--max-concurrent-runs`).
    #[arg(long, default_value_t = 32)]
    pub max_concurrent_runs: usize,
    /// CertificateSyncs woken at once in `burst`.
    #[arg(long, default_value_t = burst::ACADEMIES)]
    pub burst_academies: usize,
    /// Size of every PDF in `burst`, in bytes (default: Personio's largest upload, 30 MB).
    #[arg(long, default_value_t = burst::PDF_BYTES)]
    pub burst_pdf_bytes: u64,
    /// Internal: run one measured task read from stdin (the parent re-executes itself).
    #[arg(long, hide = true)]
    pub child: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            employees: 10_000,
            certificates: 10_000,
            latency_ms: 20,
            time_scale: 15.0,
            scenario: Vec::new(),
            resources: 100,
            pdf_kib: 128,
            pairs: 1_000,
            max_concurrent_runs: 32,
            burst_academies: burst::ACADEMIES,
            burst_pdf_bytes: burst::PDF_BYTES,
            child: false,
        }
    }
}

impl BenchOptions {
    /// The settings these options describe.
    pub fn settings(&self) -> Settings {
        Settings {
            employees: self.employees,
            certificates: self.certificates,
            latency: Duration::from_millis(self.latency_ms),
            time_scale: if self.time_scale.is_finite() && self.time_scale > 0.0 {
                self.time_scale
            } else {
                1.0
            },
            resources: self.resources,
            pdf_bytes: self.pdf_kib.saturating_mul(1024),
            pairs: self.pairs,
            max_concurrent_runs: self.max_concurrent_runs,
            burst_academies: self.burst_academies,
            burst_pdf_bytes: self.burst_pdf_bytes,
            scenarios: self.scenario.clone(),
        }
    }
}

/// The scenarios of issue 8.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// First run against an empty reteach.
    Initial,
    /// Incremental run with nothing changed.
    Steady,
    /// Incremental run with 1 % of the employees changed.
    Changed,
    /// Full run correcting users edited by hand in reteach.
    Drift,
    /// First CertificateSync run over every certificate issued so far.
    Backfill,
    /// Many EmployeeSync resources in one process, idle after their first run.
    Idle,
    /// First run of a recreated CertificateSync: half of the documents already in Personio.
    HalfPresent,
    /// A full pass over every certificate after the backfill.
    FullPass,
    /// A bulk import: twice the certificates, all completed at one instant.
    BulkImport,
    /// 1,000 EmployeeSync + CertificateSync pairs in one process after a restart (issue 18).
    Scale,
    /// Department tags: a run without change and one after a department change (issue 17).
    Tags,
    /// Many academies under one shared Personio limit per IP address (issue 26).
    Budget,
    /// 200 CertificateSyncs woken at once, a 30 MB PDF each (issue 26).
    Burst,
    /// A full employee read through Personio v2 against v1, each against its minimum (issue 30).
    ApiFull,
    /// An incremental run through v2 (change feed + notified persons re-read by id) against v1.
    ApiIncremental,
}

impl Scenario {
    /// Short name (as on the command line).
    pub fn name(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Steady => "steady",
            Self::Changed => "changed",
            Self::Drift => "drift",
            Self::Backfill => "backfill",
            Self::Idle => "idle",
            Self::HalfPresent => "half-present",
            Self::FullPass => "full-pass",
            Self::BulkImport => "bulk-import",
            Self::Scale => "scale",
            Self::Tags => "tags",
            Self::Budget => "budget",
            Self::Burst => "burst",
            Self::ApiFull => "api-full",
            Self::ApiIncremental => "api-incremental",
        }
    }

    /// Heading of its report.
    pub fn title(self) -> &'static str {
        match self {
            Self::Initial => "initial sync (empty reteach)",
            Self::Steady => "steady state (incremental, nothing changed)",
            Self::Changed => "1 % of the employees changed (incremental)",
            Self::Drift => "full drift-correction run (1 % of users edited in reteach)",
            Self::Backfill => "certificate backfill",
            Self::Idle => "EmployeeSync resources idle in one operator",
            Self::HalfPresent => {
                "backfill of a recreated CertificateSync (half already in Personio)"
            }
            Self::FullPass => "certificate full pass after the backfill",
            Self::BulkImport => "bulk import (every completion at one instant)",
            Self::Scale => {
                "academies (EmployeeSync + CertificateSync pairs) in one operator after a restart"
            }
            Self::Tags => "department tags: a run without change, then one changed department",
            Self::Budget => {
                "academies sharing one Personio limit of 2,000 requests/min per IP address"
            }
            Self::Burst => "200 CertificateSyncs woken at once by notifications, 30 MB PDFs",
            Self::ApiFull => "Personio requests of a full employee read, v2 against v1",
            Self::ApiIncremental => {
                "Personio requests of an incremental run (2 % changed, notified), v2 against v1"
            }
        }
    }
}

/// Runs the benchmark and prints the figures (or, with `--child`, one measured task).
pub async fn run(options: BenchOptions) -> anyhow::Result<()> {
    if options.child {
        return child::serve_child().await;
    }
    let settings = options.settings();
    let exe = std::env::current_exe()?;
    let reports = run_all(&settings, &exe).await?;
    print!("{}", report::render(&settings, &reports));
    Ok(())
}
