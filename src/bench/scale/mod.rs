//! Issue 18: many academies in one operator process. `pairs` scaled-down tenants (an EmployeeSync
//! and a CertificateSync each, one Personio and one reteach simulator each) as an operator sees
//! them right after a restart: every run is overdue. The child holds what the operator holds —
//! both kinds in watch caches (kube-runtime reflector stores, objects shaped as the apiserver
//! sends them), per-tenant clients in the operator's [`TenantCache`](crate::controller::tenant_cache::TenantCache) over the shared HTTP pool —
//! and starts every run the way the controllers do: at its start-up spread offset
//! ([`StartupSpread`](crate::controller::pacing::StartupSpread)) and through the run slots ([`RunSlots`](crate::controller::pacing::RunSlots)). It reports the peak number of
//! runs in flight, when each run started against its interval, and the resident memory.

mod objects;
mod run;

pub use run::run_scale;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::child::{ChildResult, ChildTask, Upstream};
use super::figures::Target;
use super::memory::mib;
use super::scenarios::{
    advance_all, measure, pages, start_time, ScenarioReport, Settings, RETEACH_PAGE,
};
use super::tenant::Tenant;
use super::Scenario;
use crate::sim::reteach::SimCustomer;

/// Resident memory allowed per EmployeeSync + CertificateSync pair above the baseline.
pub const PAIR_BUDGET_KIB: f64 = 32.0;
/// Resident memory allowed in all at 1,000 pairs, watch caches included.
pub const TOTAL_BUDGET_MIB: f64 = 96.0;
/// The default intervals (`spec.interval`) of the two kinds, in real time.
const EMPLOYEE_INTERVAL: Duration = Duration::from_secs(300);
const CERTIFICATE_INTERVAL: Duration = Duration::from_secs(1800);
/// Seed of the generated companies.
const SEED: u64 = 18;

/// One academy of the scale scenario.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Academy {
    /// Its simulators.
    pub upstream: Upstream,
    /// Personio document category of its CertificateSync.
    pub category_id: i64,
}

/// What the scale child is asked to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScaleTask {
    /// One per EmployeeSync + CertificateSync pair.
    pub academies: Vec<Academy>,
    /// Start of the runs on the simulators' clocks.
    pub now: DateTime<Utc>,
    /// `--max-concurrent-runs` of the operator.
    pub max_concurrent_runs: usize,
    /// Intervals run this many times faster.
    pub time_scale: f64,
}

/// When one run started and ended, in seconds after the child's start, and its interval.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct RunTiming {
    started: f64,
    interval: f64,
}

/// The scale scenario (parent side).
pub async fn scale(settings: &Settings, exe: &Path) -> anyhow::Result<ScenarioReport> {
    let pairs = settings.pairs.max(1);
    let employees = (settings.employees / pairs).max(1);
    let certificates = settings.certificates / pairs;
    eprintln!(
        "bench: {pairs} academies (EmployeeSync + CertificateSync) of {employees} employees and {certificates} certificates each"
    );
    let (tenants, academies, minimum) = academies(settings, pairs, employees, certificates).await?;
    let now = advance_all(&tenants, chrono::Duration::minutes(10));
    let task = ChildTask::Scale(Box::new(ScaleTask {
        academies,
        now,
        max_concurrent_runs: settings.max_concurrent_runs,
        time_scale: settings.time_scale,
    }));
    let refs: Vec<&Tenant> = tenants.iter().collect();
    let result = measure(&refs, settings, exe, task).await?;
    let baseline = measure(&[], settings, exe, ChildTask::Baseline).await?;
    let figures = ScaleFigures::new(&result, &baseline, pairs);
    Ok(ScenarioReport {
        scenario: Scenario::Scale,
        minimum_rule: format!(
            "per academy: 1 Personio token + {} employee pages + 1 reteach token + customer pages (EmployeeSync, full, nothing to write) + 1 category list + 1 v2 token + one document listing per employee holding a certificate + {} participation pages + {certificates} downloads + {certificates} uploads (CertificateSync backfill); both resources share the academy's clients",
            pages(employees, 100),
            pages(certificates, RETEACH_PAGE),
        ),
        targets: figures.targets(&result, settings, minimum, certificates),
        notes: figures.notes(&result, &baseline, settings),
        result,
        minimum,
        bound: None,
    })
}

/// What the scale run measured, per resource pair and against a child that runs nothing.
struct ScaleFigures {
    pairs: usize,
    /// Resident KiB above the baseline, idle after the runs.
    above: f64,
    per_pair: f64,
    anon_above: u64,
    peak_per_pair: f64,
    /// Peak RSS in MiB.
    peak: f64,
    runs: u64,
    late: u64,
    peak_runs: u64,
    uploaded: i64,
}

impl ScaleFigures {
    fn new(result: &ChildResult, baseline: &ChildResult, pairs: usize) -> Self {
        let above = result
            .memory
            .current_kib
            .saturating_sub(baseline.memory.current_kib) as f64;
        let summary = &result.summary;
        Self {
            pairs,
            above,
            per_pair: above / pairs as f64,
            anon_above: result
                .memory
                .anon_kib
                .saturating_sub(baseline.memory.anon_kib),
            peak_per_pair: result
                .memory
                .peak_kib
                .saturating_sub(baseline.memory.peak_kib) as f64
                / pairs as f64,
            peak: mib(result.memory.peak_kib),
            runs: summary["runs"].as_u64().unwrap_or(0),
            late: summary["late"].as_u64().unwrap_or(u64::MAX),
            peak_runs: summary["peakConcurrentRuns"].as_u64().unwrap_or(0),
            uploaded: summary["uploaded"].as_i64().unwrap_or(-1),
        }
    }

    fn targets(
        &self,
        result: &ChildResult,
        settings: &Settings,
        minimum: usize,
        certificates: usize,
    ) -> Vec<Target> {
        let Self {
            pairs,
            per_pair,
            peak,
            runs,
            late,
            peak_runs,
            uploaded,
            ..
        } = *self;
        let mut targets = vec![
            Target::new(
                format!("≤ {PAIR_BUDGET_KIB} KiB per resource pair above the baseline, idle"),
                per_pair <= PAIR_BUDGET_KIB,
                format!("{per_pair:.1} KiB"),
            ),
            Target::new(
                "requests = minimum",
                result.total_requests() == minimum,
                format!("{} for {minimum}", result.total_requests()),
            ),
            Target::new(
                "zero 429s",
                result.too_many_requests == 0,
                result.too_many_requests.to_string(),
            ),
            Target::new(
                "every resource's first run started within its interval",
                runs == 2 * pairs as u64 && late == 0,
                format!("{runs} runs, {late} late"),
            ),
            Target::new(
                format!(
                    "at most {} runs in flight",
                    settings.max_concurrent_runs.max(1)
                ),
                settings.max_concurrent_runs == 0
                    || peak_runs <= settings.max_concurrent_runs as u64,
                peak_runs.to_string(),
            ),
            Target::new(
                "every certificate uploaded",
                uploaded == (certificates * pairs) as i64,
                uploaded.to_string(),
            ),
        ];
        if pairs >= 1_000 {
            targets.push(Target::new(
                format!("peak RSS ≤ {TOTAL_BUDGET_MIB} MiB at 1,000 pairs, watch caches included"),
                peak <= TOTAL_BUDGET_MIB,
                format!("{peak:.1} MiB"),
            ));
        }
        targets
    }

    fn notes(
        &self,
        result: &ChildResult,
        baseline: &ChildResult,
        settings: &Settings,
    ) -> Vec<String> {
        let Self {
            pairs,
            above,
            per_pair,
            anon_above,
            peak_per_pair,
            peak,
            runs,
            peak_runs,
            ..
        } = *self;
        let summary = &result.summary;
        vec![
            format!(
                "{} runs, peak {peak_runs} in flight (limit {}), first runs spread over {:.0} s (EmployeeSync) and {:.0} s (CertificateSync) = 5m and 30m at time scale {}; latest start {:.0} % into its interval",
                runs,
                settings.max_concurrent_runs,
                EMPLOYEE_INTERVAL.as_secs_f64() / settings.time_scale,
                CERTIFICATE_INTERVAL.as_secs_f64() / settings.time_scale,
                settings.time_scale,
                summary["latestStartShare"].as_f64().unwrap_or(f64::NAN) * 100.0,
            ),
            format!(
                "held: {} EmployeeSync + {} CertificateSync objects in watch caches, {} tenant client pairs, {} shared HTTP clients; RSS now {:.1} MiB, peak {peak:.1} MiB",
                pairs,
                pairs,
                summary["tenantClients"],
                summary["sharedHttpClients"],
                mib(result.memory.current_kib)
            ),
            format!(
                "baseline (a child that runs nothing): {:.1} MiB resident; idle after the runs (their connections closed) {:.1} MiB above it ≈ {per_pair:.1} KiB per pair; at the peak {peak_per_pair:.1} KiB per pair",
                mib(baseline.memory.current_kib),
                above / 1024.0,
            ),
            format!(
                "of which anonymous (heap, stacks) {:.1} MiB ≈ {:.1} KiB per pair, mapped files (the binary's code pages the runs touched) {:.1} MiB",
                mib(anon_above),
                anon_above as f64 / pairs as f64,
                mib(result.memory.file_kib.saturating_sub(baseline.memory.file_kib)),
            ),
        ]
    }
}

/// Starts and prepares `count` academies of `employees` and `certificates` each (see
/// [`academy`]); returns their tenants, the academies and the sum of their minimums.
pub(in crate::bench) async fn academies(
    settings: &Settings,
    count: usize,
    employees: usize,
    certificates: usize,
) -> anyhow::Result<(Vec<Tenant>, Vec<Academy>, usize)> {
    let mut tenants = Vec::with_capacity(count);
    let mut academies = Vec::with_capacity(count);
    let mut minimum = 0;
    for n in 0..count {
        let (tenant, academy, academy_minimum) =
            academy(settings, n, employees, certificates).await?;
        minimum += academy_minimum;
        academies.push(academy);
        tenants.push(tenant);
    }
    Ok((tenants, academies, minimum))
}

/// Starts and prepares one academy: its EmployeeSync has run once (every employee is a reteach
/// user), `certificates` completions wait for their first CertificateSync run.
pub(in crate::bench) async fn academy(
    settings: &Settings,
    n: usize,
    employees: usize,
    certificates: usize,
) -> anyhow::Result<(Tenant, Academy, usize)> {
    let tenant = Tenant::start(start_time(), settings.time_scale).await?;
    tenant.reteach.set_default_pdf_size(settings.pdf_bytes);
    tenant.personio.populate(employees, SEED + n as u64);
    let now = tenant.advance(chrono::Duration::minutes(10));
    tenant.setup_run(now, None, None).await?;
    let linked: Vec<SimCustomer> = tenant
        .reteach
        .customers()
        .into_iter()
        .filter(|c| c.external_id.is_some())
        .collect();
    if linked.is_empty() && certificates > 0 {
        anyhow::bail!("academy {n} has no linked reteach user to hold certificates");
    }
    let first = tenant.now() - chrono::Duration::days(30);
    for c in 0..certificates {
        let customer = &linked[c % linked.len()];
        tenant
            .reteach
            .add_completion(
                &customer.id,
                &format!("Course {c}"),
                first + chrono::Duration::seconds(c as i64),
                true,
            )
            .ok_or_else(|| anyhow::anyhow!("benchmark customer vanished"))?;
    }
    let category_id = tenant.category_id()?;
    let holders = linked.len().min(certificates);
    let minimum = 1
        + pages(employees, 100)
        + 1
        + pages(tenant.reteach.customers().len(), RETEACH_PAGE)
        + 1
        + 1
        + holders
        + pages(certificates, RETEACH_PAGE)
        + 2 * certificates;
    let academy = Academy {
        upstream: tenant.upstream.clone(),
        category_id,
    };
    Ok((tenant, academy, minimum))
}
