//! The employee scenarios of issue 8: initial sync, steady state, 1 % changed and drift
//! correction on one company, tag changes, and many idle resources.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::child::{ChildResult, ChildTask};
use super::figures::{self, Bound, Target};
use super::memory::mib;
use super::scenarios::{
    advance_all, measure, minutes, pages, ratio_target, rss_target, start_time, ScenarioReport,
    Settings, PERSONIO_PAGE, RETEACH_PAGE, SEED,
};
use super::tenant::Tenant;
use super::Scenario;
use crate::sim::reteach::SimCustomer;

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

/// A tenant whose Personio holds `employees` generated from `seed`.
async fn company(settings: &Settings, employees: usize, seed: u64) -> anyhow::Result<Tenant> {
    let tenant = Tenant::start(start_time(), settings.time_scale).await?;
    tenant.personio.populate(employees, seed);
    Ok(tenant)
}

/// An EmployeeSync run of `tenant` at `now`. After a `cursor` the run knows how many users
/// reteach holds, as `status.reteachUsers` does after the previous (full) run.
fn employee_task(
    tenant: &Tenant,
    now: DateTime<Utc>,
    cursor: Option<DateTime<Utc>>,
    full: bool,
    department_tags: Option<Vec<String>>,
) -> ChildTask {
    ChildTask::Employees {
        upstream: tenant.upstream.clone(),
        now,
        cursor,
        full,
        reteach_users: cursor.map(|_| tenant.reteach_users()),
        department_tags,
    }
}

/// The report of a scenario of the chain: no notes, the run's bound.
fn chain_report(
    scenario: Scenario,
    minimum_rule: String,
    (result, bound): (ChildResult, Bound),
    minimum: usize,
    targets: Vec<Target>,
) -> ScenarioReport {
    ScenarioReport {
        scenario,
        result,
        minimum,
        minimum_rule,
        bound: Some(bound),
        targets,
        notes: Vec::new(),
    }
}

/// Initial sync, steady state, 1 % changed and drift correction, one after another on one
/// company (each needs the state the one before left).
pub(super) async fn employee_chain(
    settings: &Settings,
    exe: &Path,
) -> anyhow::Result<Vec<ScenarioReport>> {
    let tenant = company(settings, settings.employees, SEED).await?;
    let chain = Chain {
        tenant: &tenant,
        settings,
        exe,
        employees: tenant.personio.employee_ids().len(),
    };
    let mut reports = Vec::new();
    let now = tenant.advance(minutes(10));
    if settings.wants(Scenario::Initial) {
        reports.push(chain.initial(now).await?);
    } else {
        tenant.setup_run(now, None, None).await?;
    }
    let mut cursor = now;
    if settings.wants(Scenario::Steady) {
        let (report, now) = chain.steady(cursor).await?;
        reports.push(report);
        cursor = now;
    }
    if settings.wants(Scenario::Changed) {
        let (report, now) = chain.changed(cursor).await?;
        reports.push(report);
        cursor = now;
    }
    if settings.wants(Scenario::Drift) {
        reports.push(chain.drift(cursor).await?);
    }
    Ok(reports)
}

/// The company the employee scenarios run one after another on.
struct Chain<'a> {
    tenant: &'a Tenant,
    settings: &'a Settings,
    exe: &'a Path,
    employees: usize,
}

impl Chain<'_> {
    /// Measures an EmployeeSync run at `now`; `reteach_users` is what `status.reteachUsers`
    /// holds after the previous (full) run.
    async fn run(
        &self,
        now: DateTime<Utc>,
        cursor: Option<DateTime<Utc>>,
        full: bool,
    ) -> anyhow::Result<(ChildResult, Bound)> {
        let task = employee_task(self.tenant, now, cursor, full, None);
        let result = measure(&[self.tenant], self.settings, self.exe, task).await?;
        let settings = self.settings;
        let bound = figures::employee_bound(&result, settings.latency, settings.time_scale);
        Ok((result, bound))
    }

    async fn initial(&self, now: DateTime<Utc>) -> anyhow::Result<ScenarioReport> {
        let employees = self.employees;
        eprintln!("bench: initial sync of {employees} employees");
        let (result, bound) = self.run(now, None, true).await?;
        let created = self.tenant.reteach.customers().len();
        let minimum = 1 + pages(employees, PERSONIO_PAGE) + 1 + 1 + created;
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
        let rule = format!(
            "1 Personio token + {} pages of 100 + 1 reteach token + 1 customer page + {created} creates (users in reteach afterwards)",
            pages(employees, PERSONIO_PAGE)
        );
        Ok(chain_report(
            Scenario::Initial,
            rule,
            (result, bound),
            minimum,
            targets,
        ))
    }

    async fn steady(
        &self,
        cursor: DateTime<Utc>,
    ) -> anyhow::Result<(ScenarioReport, DateTime<Utc>)> {
        eprintln!("bench: steady-state run");
        let now = self.tenant.advance(minutes(10));
        let (result, bound) = self.run(now, Some(cursor), false).await?;
        let total = result.total_requests();
        let targets = vec![
            Target::new("requests ≤ 3", total <= 3, total.to_string()),
            rss_target(&result),
        ];
        let rule = "1 Personio token (a fresh process has none) + 1 change-feed call".into();
        let report = chain_report(Scenario::Steady, rule, (result, bound), 2, targets);
        Ok((report, now))
    }

    async fn changed(
        &self,
        cursor: DateTime<Utc>,
    ) -> anyhow::Result<(ScenarioReport, DateTime<Utc>)> {
        let wanted = self.employees.div_ceil(100).max(1);
        self.tenant.advance(minutes(5));
        let changed = change_employees(self.tenant, wanted);
        eprintln!("bench: run with {changed} changed employees");
        let now = self.tenant.advance(minutes(5));
        let (result, bound) = self.run(now, Some(cursor), false).await?;
        let customers = self.tenant.reteach.customers().len();
        let lookups = pages(customers, RETEACH_PAGE).min(changed);
        let minimum = 1 + 1 + 1 + lookups + changed;
        let targets = vec![
            written_target("every changed employee written", &result, changed),
            ratio_target(1.1, result.total_requests(), minimum),
            rss_target(&result),
        ];
        let rule = format!(
            "1 Personio token + 1 change-feed call + 1 reteach token + {lookups} reads (the cheaper of {} customer pages and one lookup per changed employee) + {changed} updates",
            pages(customers, RETEACH_PAGE)
        );
        let report = chain_report(Scenario::Changed, rule, (result, bound), minimum, targets);
        Ok((report, now))
    }

    async fn drift(&self, cursor: DateTime<Utc>) -> anyhow::Result<ScenarioReport> {
        let employees = self.employees;
        let customers = self.tenant.reteach.customers().len();
        let drifted = drift_customers(self.tenant, customers.div_ceil(100).max(1));
        eprintln!("bench: full drift-correction run ({drifted} users edited in reteach)");
        let now = self.tenant.advance(minutes(10));
        let (result, bound) = self.run(now, Some(cursor), true).await?;
        let minimum =
            1 + pages(employees, PERSONIO_PAGE) + 1 + pages(customers, RETEACH_PAGE) + drifted;
        let targets = vec![
            written_target("every edited user corrected", &result, drifted),
            rss_target(&result),
        ];
        let rule = format!(
            "1 Personio token + {} pages of 100 + 1 reteach token + {} customer pages of 250 + {drifted} updates (users edited by hand)",
            pages(employees, PERSONIO_PAGE),
            pages(customers, RETEACH_PAGE)
        );
        Ok(chain_report(
            Scenario::Drift,
            rule,
            (result, bound),
            minimum,
            targets,
        ))
    }
}

/// The department the tag scenario moves one employee to.
const MOVED_TO: &str = "Benchmark moves";

/// One employee with a tagged user moves to a department of their own ([`MOVED_TO`]). Returns
/// the employee's id and whether the move happened.
fn move_a_tagged_employee(tenant: &Tenant) -> (Option<i64>, bool) {
    let mover = tenant
        .reteach
        .customers()
        .into_iter()
        .find(|c| c.external_id.is_some() && !c.tags.is_empty())
        .and_then(|c| c.external_id?.parse::<i64>().ok());
    let moved = mover.is_some_and(|id| {
        tenant.personio.update_employee(id, |seed| {
            seed.department = Some(crate::sim::personio::OrgUnit {
                id: 999_999,
                name: MOVED_TO.into(),
            });
        })
    });
    (mover, moved)
}

/// The moved employee's user holds the tag of the new department, and no other.
fn holds_only_the_new_tag(tenant: &Tenant, mover: Option<i64>) -> bool {
    mover
        .and_then(|id| tenant.reteach.customer(&id.to_string()))
        .is_some_and(|user| user.tags.len() == 1 && user.tags.iter().all(|t| t.name == MOVED_TO))
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
pub(super) async fn tags(settings: &Settings, exe: &Path) -> anyhow::Result<ScenarioReport> {
    let (tenant, setup) = TagSetup::first_run(settings).await?;

    eprintln!("bench: full run with department tags, nothing changed");
    let now = tenant.advance(minutes(10));
    let tags = Some(setup.managed.clone());
    let steady = employee_task(&tenant, now, Some(now - minutes(10)), true, tags.clone());
    let steady = measure(&[&tenant], settings, exe, steady).await?;
    let cursor = now;

    tenant.advance(minutes(5));
    let (mover, moved) = move_a_tagged_employee(&tenant);
    eprintln!("bench: incremental run after one department change");
    let now = tenant.advance(minutes(5));
    let changed = employee_task(&tenant, now, Some(cursor), false, tags);
    let result = measure(&[&tenant], settings, exe, changed).await?;
    let swapped = holds_only_the_new_tag(&tenant, mover);
    Ok(setup.report(steady, result, moved, swapped))
}

/// What the unmeasured first run of the tag scenario left.
struct TagSetup {
    employees: usize,
    customers: usize,
    /// Users the first run tagged.
    tagged: usize,
    /// `status.managedTags` after it.
    managed: Vec<String>,
}

impl TagSetup {
    /// A company whose first run with department tags gave everyone their tag (unmeasured).
    async fn first_run(settings: &Settings) -> anyhow::Result<(Tenant, Self)> {
        let tenant = company(settings, settings.employees, SEED).await?;
        let employees = tenant.personio.employee_ids().len();
        let now = tenant.advance(minutes(10));
        let first = tenant.setup_run(now, None, Some(&[])).await?;
        let customers = tenant.reteach.customers();
        let setup = Self {
            employees,
            customers: customers.len(),
            tagged: customers.iter().filter(|c| !c.tags.is_empty()).count(),
            managed: first.managed_tags.unwrap_or_default(),
        };
        Ok((tenant, setup))
    }

    /// The report of the no-change full run `steady` and the measured run `result` after one
    /// employee `moved` department (and whether their tag was `swapped`).
    fn report(
        &self,
        steady: ChildResult,
        result: ChildResult,
        moved: bool,
        swapped: bool,
    ) -> ScenarioReport {
        let (employees, customers, tagged) = (self.employees, self.customers, self.tagged);
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
        ScenarioReport {
        scenario: Scenario::Tags,
        result,
        minimum,
        minimum_rule: "1 Personio token + 1 change-feed call + 1 reteach token + 1 lookup + 1 update + 1 tag added + 1 tag removed".into(),
        bound: None,
        targets,
        notes: vec![
            format!(
                "setup: {employees} employees, {customers} users, {tagged} tagged by the first run; status.managedTags holds {} department names",
                self.managed.len()
            ),
            format!(
                "no-change full run (every user compared): {} requests, {steady_tags} of them tag requests, {:.2} s",
                steady.total_requests(),
                steady.wall_secs
            ),
        ],
    }
    }
}

/// `wanted` of `candidates`, spread evenly over them.
fn spread<T>(candidates: &[T], wanted: usize) -> impl Iterator<Item = &T> {
    let step = (candidates.len() / wanted.max(1)).max(1);
    candidates.iter().step_by(step).take(wanted)
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
    spread(&candidates, wanted)
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
    spread(&candidates, wanted)
        .filter(|customer| {
            tenant.reteach.edit_customer(&customer.id, |c| {
                c.department = Some("Edited by hand".to_string());
            })
        })
        .count()
}

/// Many EmployeeSync resources in one process, one tenant each, after their first run.
pub(super) async fn idle(settings: &Settings, exe: &Path) -> anyhow::Result<ScenarioReport> {
    let resources = settings.resources.max(1);
    let per_resource = (settings.employees / resources).max(1);
    eprintln!("bench: {resources} EmployeeSync resources of {per_resource} employees each");
    let mut tenants = Vec::with_capacity(resources);
    let mut minimum = 0;
    for n in 0..resources {
        let tenant = company(settings, per_resource, SEED + n as u64).await?;
        let now = tenant.advance(minutes(10));
        tenant.setup_run(now, None, None).await?;
        minimum += 1
            + pages(per_resource, PERSONIO_PAGE)
            + 1
            + pages(tenant.reteach.customers().len(), RETEACH_PAGE);
        tenants.push(tenant);
    }
    let now = advance_all(&tenants, minutes(10));
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
