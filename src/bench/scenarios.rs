//! The six scenarios of issue 8. The parent process owns the simulators and prepares their state
//! (unmeasured, without latency); the run that is measured happens in a child process.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use futures::future::BoxFuture;

use super::burst::burst;
use super::certificate_scenarios::{backfill, bulk_import, full_pass, half_present};
use super::child::{self, ChildRequest, ChildResult, ChildTask};
use super::employee_scenarios::{self, idle, tags};
use super::figures::{Bound, Target};
use super::memory::mib;
use super::scale::scale;
use super::tenant::Tenant;
use super::Scenario;

/// Seed of the generated companies (reproducible runs).
pub(super) const SEED: u64 = 8;
/// Personio's employee page size (`limit` ≤ 100).
pub(super) const PERSONIO_PAGE: usize = 100;
/// reteach's largest page.
pub(super) const RETEACH_PAGE: usize = 250;
/// Peak RSS allowed at 10,000 employees.
pub const RSS_LIMIT_MIB: f64 = 64.0;
/// How much more the big backfill may peak than the one with a hundredth of the certificates and
/// still count as flat. Identical child runs differ by less than 1 MiB; 4 MiB catches anything
/// kept per certificate from about 400 bytes up (at 10,000 certificates), PDFs included.
pub const FLAT_RSS_SLACK_MIB: f64 = 4.0;

/// What the benchmark is asked to do.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Employees of the company (employee scenarios; spread over the resources when idle).
    pub employees: usize,
    /// Certificates of the backfill.
    pub certificates: usize,
    /// Latency the simulators add to every request.
    pub latency: Duration,
    /// Rate limits run this many times faster.
    pub time_scale: f64,
    /// EmployeeSync resources of the idle scenario.
    pub resources: usize,
    /// Size of every certificate PDF.
    pub pdf_bytes: u64,
    /// EmployeeSync + CertificateSync pairs of the scale scenario.
    pub pairs: usize,
    /// Run slots of the scale and burst scenarios.
    pub max_concurrent_runs: usize,
    /// CertificateSyncs woken at once in the burst scenario.
    pub burst_academies: usize,
    /// Size of the burst scenario's PDFs.
    pub burst_pdf_bytes: u64,
    /// Scenarios to run (empty = all).
    pub scenarios: Vec<Scenario>,
}

impl Settings {
    pub(super) fn wants(&self, scenario: Scenario) -> bool {
        self.scenarios.is_empty() || self.scenarios.contains(&scenario)
    }
}

/// The figures of one scenario.
#[derive(Clone, Debug)]
pub struct ScenarioReport {
    /// Which one.
    pub scenario: Scenario,
    /// What the child measured.
    pub result: ChildResult,
    /// Fewest requests that can do the same work (see BENCHMARKS.md for each definition).
    pub minimum: usize,
    /// How `minimum` was counted.
    pub minimum_rule: String,
    /// Lower bound of the wall time, where one applies.
    pub bound: Option<Bound>,
    /// Targets of issue 8.
    pub targets: Vec<Target>,
    /// Further figures (e.g. the comparison runs).
    pub notes: Vec<String>,
}

impl ScenarioReport {
    /// Requests ÷ minimum.
    pub fn ratio(&self) -> f64 {
        self.result.total_requests() as f64 / self.minimum.max(1) as f64
    }

    /// Bound ÷ wall: the share of the best possible speed reached.
    pub fn achieved(&self) -> Option<f64> {
        self.bound
            .as_ref()
            .filter(|_| self.result.wall_secs > 0.0)
            .map(|bound| bound.secs / self.result.wall_secs)
    }

    /// Every target met, and the run did not fail.
    pub fn passed(&self) -> bool {
        self.result.error.is_none() && self.targets.iter().all(|t| t.pass)
    }
}

/// A scenario measured into one report.
type SingleReport =
    for<'a> fn(&'a Settings, &'a Path) -> BoxFuture<'a, anyhow::Result<ScenarioReport>>;

/// The scenarios measured into one report each, in the order they run (after the employee chain).
const SINGLE_REPORTS: [(Scenario, SingleReport); 8] = [
    (Scenario::Tags, |s, e| Box::pin(tags(s, e))),
    (Scenario::Backfill, |s, e| Box::pin(backfill(s, e))),
    (Scenario::HalfPresent, |s, e| Box::pin(half_present(s, e))),
    (Scenario::FullPass, |s, e| Box::pin(full_pass(s, e))),
    (Scenario::BulkImport, |s, e| Box::pin(bulk_import(s, e))),
    (Scenario::Idle, |s, e| Box::pin(idle(s, e))),
    (Scenario::Scale, |s, e| Box::pin(scale(s, e))),
    (Scenario::Burst, |s, e| Box::pin(burst(s, e))),
];

/// Runs the selected scenarios; `exe` is this binary, re-executed for every measured run.
pub async fn run_all(settings: &Settings, exe: &Path) -> anyhow::Result<Vec<ScenarioReport>> {
    let mut reports = Vec::new();
    let employee_scenarios = [
        Scenario::Initial,
        Scenario::Steady,
        Scenario::Changed,
        Scenario::Drift,
    ];
    if employee_scenarios.iter().any(|s| settings.wants(*s)) {
        reports.extend(employee_scenarios::employee_chain(settings, exe).await?);
    }
    for (scenario, run) in SINGLE_REPORTS {
        if settings.wants(scenario) {
            reports.push(run(settings, exe).await?);
        }
    }
    let (api_full, api_incremental) = (
        settings.wants(Scenario::ApiFull),
        settings.wants(Scenario::ApiIncremental),
    );
    if api_full || api_incremental {
        reports.extend(super::api_cost::api_cost(settings, exe, api_full, api_incremental).await?);
    }
    if settings.wants(Scenario::Budget) {
        reports.push(super::budget::budget(settings).await?);
    }
    Ok(reports)
}

pub(super) fn start_time() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(chrono::Duration::seconds(1))
        .unwrap_or(now)
}

pub(super) fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

/// Moves the clock of every tenant on by `by`; returns the latest time they then show (now, for
/// no tenant).
pub(super) fn advance_all(tenants: &[Tenant], by: chrono::Duration) -> DateTime<Utc> {
    tenants
        .iter()
        .map(|tenant| tenant.advance(by))
        .max()
        .unwrap_or_else(Utc::now)
}

pub(super) fn pages(items: usize, page: usize) -> usize {
    items.div_ceil(page).max(1)
}

/// Runs `task` in a child while the tenant adds latency.
pub(super) async fn measure(
    tenants: &[&Tenant],
    settings: &Settings,
    exe: &Path,
    task: ChildTask,
) -> anyhow::Result<ChildResult> {
    for tenant in tenants {
        tenant.set_latency(settings.latency);
    }
    let request = ChildRequest {
        time_scale: settings.time_scale,
        task,
    };
    let result = child::spawn(exe, &request).await;
    for tenant in tenants {
        tenant.set_latency(Duration::ZERO);
    }
    result
}

pub(super) fn rss_target(result: &ChildResult) -> Target {
    let peak = mib(result.memory.peak_kib);
    Target::new(
        format!("peak RSS ≤ {RSS_LIMIT_MIB} MiB"),
        peak <= RSS_LIMIT_MIB,
        format!("{peak:.1} MiB"),
    )
}

pub(super) fn ratio_target(limit: f64, total: usize, minimum: usize) -> Target {
    let ratio = total as f64 / minimum.max(1) as f64;
    Target::new(
        format!("requests ≤ {limit} × minimum"),
        ratio <= limit + 1e-9,
        format!("{ratio:.3}"),
    )
}
