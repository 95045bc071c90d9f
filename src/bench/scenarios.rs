//! The six scenarios of issue 8. The parent process owns the simulators and prepares their state
//! (unmeasured, without latency); the run that is measured happens in a child process.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};

use super::certificate_scenarios::{self, certificate_company, certificate_run, compared_minimum};
use super::child::{self, ChildRequest, ChildResult, ChildTask};
use super::clients::Limits;
use super::figures::{self, Bound, Target};
use super::memory::mib;
use super::tally::RequestTally;
use super::tenant::Tenant;
use super::Scenario;
use crate::sim::reteach::SimCustomer;

/// Seed of the generated companies (reproducible runs).
const SEED: u64 = 8;
/// Personio's employee page size (`limit` ≤ 100).
const PERSONIO_PAGE: usize = 100;
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
    fn wants(&self, scenario: Scenario) -> bool {
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
        reports.extend(employee_chain(settings, exe).await?);
    }
    if settings.wants(Scenario::Tags) {
        reports.push(tags(settings, exe).await?);
    }
    if settings.wants(Scenario::Backfill) {
        reports.push(backfill(settings, exe).await?);
    }
    if settings.wants(Scenario::HalfPresent) {
        reports.push(certificate_scenarios::half_present(settings, exe).await?);
    }
    if settings.wants(Scenario::FullPass) {
        reports.push(certificate_scenarios::full_pass(settings, exe).await?);
    }
    if settings.wants(Scenario::BulkImport) {
        reports.push(certificate_scenarios::bulk_import(settings, exe).await?);
    }
    if settings.wants(Scenario::Idle) {
        reports.push(idle(settings, exe).await?);
    }
    if settings.wants(Scenario::Scale) {
        reports.push(super::scale::scale(settings, exe).await?);
    }
    if settings.wants(Scenario::Burst) {
        reports.push(super::burst::burst(settings, exe).await?);
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

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
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

/// An unmeasured EmployeeSync run in this process (state for the scenarios that follow).
async fn setup_run(
    tenant: &Tenant,
    settings: &Settings,
    now: DateTime<Utc>,
    cursor: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    tenant.limit_reteach(false);
    let outcome = child::employee_run(
        &tenant.upstream,
        Limits::setup(settings.time_scale),
        &RequestTally::default(),
        now,
        (cursor, Some(tenant.reteach_users())),
        cursor.is_none(),
        None,
    )
    .await;
    tenant.limit_reteach(true);
    outcome?;
    Ok(())
}

fn rss_target(result: &ChildResult) -> Target {
    let peak = mib(result.memory.peak_kib);
    Target::new(
        format!("peak RSS ≤ {RSS_LIMIT_MIB} MiB"),
        peak <= RSS_LIMIT_MIB,
        format!("{peak:.1} MiB"),
    )
}

/// The run updated at least the users that needed it (a run that finds nothing to do is cheap
/// but wrong).
fn written_target(name: &str, result: &ChildResult, needed: usize) -> Target {
    let updated = result.summary["updated"].as_u64().unwrap_or(0);
    Target::new(
        name,
        updated >= needed as u64,
        format!("{updated} updated of {needed}"),
    )
}

fn ratio_target(limit: f64, total: usize, minimum: usize) -> Target {
    let ratio = total as f64 / minimum.max(1) as f64;
    Target::new(
        format!("requests ≤ {limit} × minimum"),
        ratio <= limit + 1e-9,
        format!("{ratio:.3}"),
    )
}

/// Initial sync, steady state, 1 % changed and drift correction, one after another on one
/// company (each needs the state the one before left).
async fn employee_chain(settings: &Settings, exe: &Path) -> anyhow::Result<Vec<ScenarioReport>> {
    let tenant = Tenant::start(start_time(), settings.time_scale).await?;
    tenant.personio.populate(settings.employees, SEED);
    let employees = tenant.personio.employee_ids().len();
    let mut reports = Vec::new();

    let now = tenant.advance(minutes(10));
    if settings.wants(Scenario::Initial) {
        eprintln!("bench: initial sync of {employees} employees");
        let task = ChildTask::Employees {
            upstream: tenant.upstream.clone(),
            now,
            cursor: None,
            full: true,
            reteach_users: None,
            department_tags: None,
        };
        let result = measure(&[&tenant], settings, exe, task).await?;
        let created = tenant.reteach.customers().len();
        let minimum = 1 + pages(employees, PERSONIO_PAGE) + 1 + 1 + created;
        let bound = figures::employee_bound(&result, settings.latency, settings.time_scale);
        let wall_ratio = result.wall_secs / bound.secs.max(1e-9);
        let targets = vec![
            ratio_target(1.02, result.total_requests(), minimum),
            Target::new(
                "wall ≤ 1.2 × bound",
                wall_ratio <= 1.2,
                format!("{wall_ratio:.2} × bound"),
            ),
            rss_target(&result),
        ];
        reports.push(ScenarioReport {
            scenario: Scenario::Initial,
            minimum_rule: format!(
                "1 Personio token + {} pages of 100 + 1 reteach token + 1 customer page + {created} creates (users in reteach afterwards)",
                pages(employees, PERSONIO_PAGE)
            ),
            result,
            minimum,
            bound: Some(bound),
            targets,
            notes: Vec::new(),
        });
    } else {
        setup_run(&tenant, settings, now, None).await?;
    }
    let mut cursor = now;

    if settings.wants(Scenario::Steady) {
        eprintln!("bench: steady-state run");
        let now = tenant.advance(minutes(10));
        let task = ChildTask::Employees {
            upstream: tenant.upstream.clone(),
            now,
            cursor: Some(cursor),
            full: false,
            // What status.reteachUsers holds after the previous (full) run.
            reteach_users: Some(tenant.reteach_users()),
            department_tags: None,
        };
        let result = measure(&[&tenant], settings, exe, task).await?;
        let total = result.total_requests();
        let bound = figures::employee_bound(&result, settings.latency, settings.time_scale);
        let targets = vec![
            Target::new("requests ≤ 3", total <= 3, total.to_string()),
            rss_target(&result),
        ];
        reports.push(ScenarioReport {
            scenario: Scenario::Steady,
            result,
            minimum: 2,
            minimum_rule: "1 Personio token (a fresh process has none) + 1 change-feed call".into(),
            bound: Some(bound),
            targets,
            notes: Vec::new(),
        });
        cursor = now;
    }

    if settings.wants(Scenario::Changed) {
        let wanted = employees.div_ceil(100).max(1);
        tenant.advance(minutes(5));
        let changed = change_employees(&tenant, wanted);
        eprintln!("bench: run with {changed} changed employees");
        let now = tenant.advance(minutes(5));
        let task = ChildTask::Employees {
            upstream: tenant.upstream.clone(),
            now,
            cursor: Some(cursor),
            full: false,
            // What status.reteachUsers holds after the previous (full) run.
            reteach_users: Some(tenant.reteach_users()),
            department_tags: None,
        };
        let result = measure(&[&tenant], settings, exe, task).await?;
        let customers = tenant.reteach.customers().len();
        let lookups = pages(customers, RETEACH_PAGE).min(changed);
        let minimum = 1 + 1 + 1 + lookups + changed;
        let bound = figures::employee_bound(&result, settings.latency, settings.time_scale);
        let targets = vec![
            written_target("every changed employee written", &result, changed),
            ratio_target(1.1, result.total_requests(), minimum),
            rss_target(&result),
        ];
        reports.push(ScenarioReport {
            scenario: Scenario::Changed,
            minimum_rule: format!(
                "1 Personio token + 1 change-feed call + 1 reteach token + {lookups} reads (the cheaper of {} customer pages and one lookup per changed employee) + {changed} updates",
                pages(customers, RETEACH_PAGE)
            ),
            result,
            minimum,
            bound: Some(bound),
            targets,
            notes: Vec::new(),
        });
        cursor = now;
    }

    if settings.wants(Scenario::Drift) {
        let customers = tenant.reteach.customers().len();
        let drifted = drift_customers(&tenant, customers.div_ceil(100).max(1));
        eprintln!("bench: full drift-correction run ({drifted} users edited in reteach)");
        let now = tenant.advance(minutes(10));
        let task = ChildTask::Employees {
            upstream: tenant.upstream.clone(),
            now,
            cursor: Some(cursor),
            full: true,
            reteach_users: Some(tenant.reteach_users()),
            department_tags: None,
        };
        let result = measure(&[&tenant], settings, exe, task).await?;
        let minimum =
            1 + pages(employees, PERSONIO_PAGE) + 1 + pages(customers, RETEACH_PAGE) + drifted;
        let bound = figures::employee_bound(&result, settings.latency, settings.time_scale);
        let targets = vec![
            written_target("every edited user corrected", &result, drifted),
            rss_target(&result),
        ];
        reports.push(ScenarioReport {
            scenario: Scenario::Drift,
            minimum_rule: format!(
                "1 Personio token + {} pages of 100 + 1 reteach token + {} customer pages of 250 + {drifted} updates (users edited by hand)",
                pages(employees, PERSONIO_PAGE),
                pages(customers, RETEACH_PAGE)
            ),
            result,
            minimum,
            bound: Some(bound),
            targets,
            notes: Vec::new(),
        });
    }
    Ok(reports)
}

/// Requests to the tag endpoints (`…/tags`, `…/multiple-tags`).
fn tag_requests(result: &ChildResult) -> usize {
    result
        .requests
        .iter()
        .filter(|r| r.endpoint.contains("tags"))
        .map(|r| r.count)
        .sum()
}

/// Department tags (`spec.tags: [{attribute: department}]`, issue 17): after an unmeasured first
/// run has tagged everyone, a full run without change (measured: no tag request) and an
/// incremental run after one employee changed department (measured: the field update, one tag
/// added, one removed).
async fn tags(settings: &Settings, exe: &Path) -> anyhow::Result<ScenarioReport> {
    let tenant = Tenant::start(start_time(), settings.time_scale).await?;
    tenant.personio.populate(settings.employees, SEED);
    let employees = tenant.personio.employee_ids().len();
    let now = tenant.advance(minutes(10));
    tenant.limit_reteach(false);
    let first = child::employee_run(
        &tenant.upstream,
        Limits::setup(settings.time_scale),
        &RequestTally::default(),
        now,
        (None, None),
        true,
        Some(&[]),
    )
    .await;
    tenant.limit_reteach(true);
    let managed = first?.managed_tags.unwrap_or_default();
    let customers = tenant.reteach.customers().len();
    let tagged = tenant
        .reteach
        .customers()
        .iter()
        .filter(|c| !c.tags.is_empty())
        .count();

    eprintln!("bench: full run with department tags, nothing changed");
    let now = tenant.advance(minutes(10));
    let steady = ChildTask::Employees {
        upstream: tenant.upstream.clone(),
        now,
        cursor: Some(now - minutes(10)),
        full: true,
        reteach_users: Some(tenant.reteach_users()),
        department_tags: Some(managed.clone()),
    };
    let steady = measure(&[&tenant], settings, exe, steady).await?;
    let cursor = now;

    // One employee with a user moves to a department of their own.
    let mover = tenant
        .reteach
        .customers()
        .into_iter()
        .find(|c| c.external_id.is_some() && !c.tags.is_empty())
        .and_then(|c| c.external_id?.parse::<i64>().ok());
    tenant.advance(minutes(5));
    let moved = mover.is_some_and(|id| {
        tenant.personio.update_employee(id, |seed| {
            seed.department = Some(crate::sim::personio::OrgUnit {
                id: 999_999,
                name: "Benchmark moves".into(),
            });
        })
    });
    eprintln!("bench: incremental run after one department change");
    let now = tenant.advance(minutes(5));
    let changed = ChildTask::Employees {
        upstream: tenant.upstream.clone(),
        now,
        cursor: Some(cursor),
        full: false,
        reteach_users: Some(tenant.reteach_users()),
        department_tags: Some(managed.clone()),
    };
    let result = measure(&[&tenant], settings, exe, changed).await?;
    let swapped = mover
        .and_then(|id| tenant.reteach.customer(&id.to_string()))
        .is_some_and(|user| {
            user.tags.len() == 1 && user.tags.iter().all(|t| t.name == "Benchmark moves")
        });
    let steady_tags = tag_requests(&steady);
    let changed_tags = tag_requests(&result);
    // 1 Personio token + 1 change feed + 1 reteach token + 1 lookup + 1 update + 1 add + 1 remove.
    let minimum = 7;
    let targets = vec![
        Target::new(
            "no-change full run: 0 tag requests",
            steady_tags == 0,
            format!(
                "{steady_tags} tag requests, {} requests in all",
                steady.total_requests()
            ),
        ),
        Target::new(
            "one changed department: ≤ 2 tag requests, tag swapped",
            moved && swapped && changed_tags <= 2,
            format!("{changed_tags} tag requests, swapped: {swapped}"),
        ),
        ratio_target(1.0, result.total_requests(), minimum),
        rss_target(&result),
    ];
    Ok(ScenarioReport {
        scenario: Scenario::Tags,
        result,
        minimum,
        minimum_rule: "1 Personio token + 1 change-feed call + 1 reteach token + 1 lookup + 1 update + 1 tag added + 1 tag removed".into(),
        bound: None,
        targets,
        notes: vec![
            format!(
                "setup: {employees} employees, {customers} users, {tagged} tagged by the first run; status.managedTags holds {} department names",
                managed.len()
            ),
            format!(
                "no-change full run (every user compared): {} requests, {steady_tags} of them tag requests, {:.2} s",
                steady.total_requests(),
                steady.wall_secs
            ),
        ],
    })
}

/// Changes the position of `wanted` employees that have a reteach user, spread over the
/// company. Returns how many were changed.
fn change_employees(tenant: &Tenant, wanted: usize) -> usize {
    let synced: std::collections::HashSet<String> = tenant
        .reteach
        .customers()
        .into_iter()
        .filter_map(|customer| customer.external_id)
        .collect();
    let candidates: Vec<i64> = tenant
        .personio
        .employee_ids()
        .into_iter()
        .filter(|id| synced.contains(&id.to_string()))
        .collect();
    let step = (candidates.len() / wanted.max(1)).max(1);
    candidates
        .iter()
        .step_by(step)
        .take(wanted)
        .enumerate()
        .filter(|(n, id)| {
            tenant.personio.update_employee(**id, |seed| {
                seed.position = Some(format!("Benchmark role {n}"));
            })
        })
        .count()
}

/// Edits the department of `wanted` synced users by hand in reteach (drift the full run must
/// correct). Returns how many were edited.
fn drift_customers(tenant: &Tenant, wanted: usize) -> usize {
    let candidates: Vec<SimCustomer> = tenant
        .reteach
        .customers()
        .into_iter()
        .filter(|c| c.external_id.is_some() && c.department.is_some())
        .collect();
    let step = (candidates.len() / wanted.max(1)).max(1);
    candidates
        .iter()
        .step_by(step)
        .take(wanted)
        .filter(|customer| {
            tenant.reteach.edit_customer(&customer.id, |c| {
                c.department = Some("Edited by hand".to_string());
            })
        })
        .count()
}

/// A company with `certificates` completed courses (PDFs ready) over its employees, run once from
/// an empty ledger. Returns the result and its minimum.
async fn backfill_run(
    settings: &Settings,
    exe: &Path,
    certificates: usize,
) -> anyhow::Result<(ChildResult, usize)> {
    let company = certificate_company(settings, certificates, false).await?;
    let result = certificate_run(settings, exe, &company, None, false).await?;
    Ok((
        result,
        compared_minimum(certificates, company.employees, certificates),
    ))
}

/// Certificate backfill, plus a run with a hundredth of the certificates to show that memory
/// does not grow with the number of PDFs.
async fn backfill(settings: &Settings, exe: &Path) -> anyhow::Result<ScenarioReport> {
    let small = (settings.certificates / 100).max(1);
    eprintln!("bench: certificate backfill of {small} certificates (memory comparison)");
    let (small_result, _) = backfill_run(settings, exe, small).await?;
    eprintln!(
        "bench: certificate backfill of {} certificates",
        settings.certificates
    );
    let (result, minimum) = backfill_run(settings, exe, settings.certificates).await?;
    let uploads = result.count(figures::personio::UPLOAD);
    let upload_bound = figures::upload_bound(uploads, settings.time_scale);
    let share = if result.wall_secs > 0.0 {
        upload_bound / result.wall_secs
    } else {
        0.0
    };
    let growth = mib(result.memory.peak_kib) - mib(small_result.memory.peak_kib);
    let bound = figures::certificate_bound(&result, settings.latency, settings.time_scale);
    let targets = vec![
        Target::new(
            "≥ 95 % of the upload bound",
            share >= 0.95,
            format!(
                "{:.1} % ({uploads} uploads, bound {upload_bound:.1} s)",
                share * 100.0
            ),
        ),
        Target::new(
            "zero 429s",
            result.too_many_requests == 0,
            result.too_many_requests.to_string(),
        ),
        rss_target(&result),
        Target::new(
            format!(
                "RSS flat in PDF count (≤ +{FLAT_RSS_SLACK_MIB} MiB over {small} certificates)"
            ),
            growth <= FLAT_RSS_SLACK_MIB,
            format!(
                "{:+.1} MiB ({:.1} → {:.1} MiB)",
                growth,
                mib(small_result.memory.peak_kib),
                mib(result.memory.peak_kib)
            ),
        ),
    ];
    Ok(ScenarioReport {
        scenario: Scenario::Backfill,
        minimum_rule: format!(
            "1 Personio token + 1 category list + {c} uploads + 1 reteach token + {} participation pages of 250 + {c} PDF downloads + 1 v2 token and {} document listings (a new resource checks each employee's documents for markers once)",
            pages(settings.certificates, RETEACH_PAGE),
            settings.employees.min(settings.certificates).max(1),
            c = settings.certificates
        ),
        notes: vec![format!(
            "{small} certificates: peak RSS {:.1} MiB, {:.1} s; PDFs of {} KiB each",
            mib(small_result.memory.peak_kib),
            small_result.wall_secs,
            settings.pdf_bytes / 1024
        )],
        result,
        minimum,
        bound: Some(bound),
        targets,
    })
}

/// Many EmployeeSync resources in one process, one tenant each, after their first run.
async fn idle(settings: &Settings, exe: &Path) -> anyhow::Result<ScenarioReport> {
    let resources = settings.resources.max(1);
    let per_resource = (settings.employees / resources).max(1);
    eprintln!("bench: {resources} EmployeeSync resources of {per_resource} employees each");
    let mut tenants = Vec::with_capacity(resources);
    let mut minimum = 0;
    for n in 0..resources {
        let tenant = Tenant::start(start_time(), settings.time_scale).await?;
        tenant.personio.populate(per_resource, SEED + n as u64);
        let now = tenant.advance(minutes(10));
        setup_run(&tenant, settings, now, None).await?;
        minimum += 1
            + pages(per_resource, PERSONIO_PAGE)
            + 1
            + pages(tenant.reteach.customers().len(), RETEACH_PAGE);
        tenants.push(tenant);
    }
    let now = tenants
        .iter()
        .map(|tenant| tenant.advance(minutes(10)))
        .max()
        .unwrap_or_else(Utc::now);
    let task = ChildTask::Idle {
        tenants: tenants.iter().map(|t| t.upstream.clone()).collect(),
        now,
    };
    let refs: Vec<&Tenant> = tenants.iter().collect();
    let result = measure(&refs, settings, exe, task).await?;
    let baseline = measure(&[], settings, exe, ChildTask::Baseline).await?;
    let peak = mib(result.memory.peak_kib);
    let targets = vec![rss_target(&result)];
    Ok(ScenarioReport {
        scenario: Scenario::Idle,
        minimum_rule: format!(
            "per resource: 1 Personio token + {} pages + 1 reteach token + customer pages (full first run, nothing to write)",
            pages(per_resource, PERSONIO_PAGE)
        ),
        notes: vec![
            format!(
                "held: {resources} Personio + {resources} reteach clients (token, limiters, connection pool) and each last run's outcome; RSS now {:.1} MiB, peak {peak:.1} MiB",
                mib(result.memory.current_kib)
            ),
            format!(
                "baseline (a child that runs nothing): peak {:.1} MiB, so {:.1} MiB ≈ {:.0} KiB per resource",
                mib(baseline.memory.peak_kib),
                peak - mib(baseline.memory.peak_kib),
                (result.memory.peak_kib.saturating_sub(baseline.memory.peak_kib)) as f64
                    / resources as f64
            ),
            "not included: the controller's kube watch caches (100 small custom resources) and the HTTP server".to_string(),
        ],
        result,
        minimum,
        bound: None,
        targets,
    })
}
