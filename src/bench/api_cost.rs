//! Issue 30: what reading employees costs through Personio v1 and v2, on the benchmark company.
//! For each API a fresh tenant runs a full (initial) sync, then — after 1 % of the employees
//! changed a person attribute (last name) and another 1 % only their employment (position), each
//! announced by a webhook notification naming the person — an incremental run. The Personio
//! requests of each run are set against the fewest that API allows:
//!
//! - v1 full: 1 token + ⌈N/100⌉ pages; incremental: 1 token + 1 change-feed call (it sees both
//!   kinds of change).
//! - v2 full: 1 token + ⌈N/50⌉ person pages + N employments + one org unit per department +
//!   ⌈offices/50⌉ workplace pages. Incremental: 1 token + ⌈k/50⌉ changed-person pages + the
//!   targeted re-read of the k employment-only changes (⌈k/50⌉ pages of `id=…`) + 2k
//!   employments + one org unit per department among them + 1 workplace page.
//!
//! The v2 report is the measured one; the v1 figures come as notes (BENCHMARKS.md has both).

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::child::{ChildResult, ChildTask, Upstream};
use super::clients::{self, Limits};
use super::figures::Target;
use super::memory::mib;
use super::scenarios::{measure, pages, start_time, ScenarioReport, Settings};
use super::tally::RequestTally;
use super::tenant::Tenant;
use super::Scenario;
use crate::jobs::connection::PersonioEndpoint;
use crate::jobs::{run_employee_sync, EmployeeJobInput};
use crate::personio::EmployeeApi;

/// Seed of the generated company (the same as the other employee scenarios).
const SEED: u64 = 8;
/// The child's time zone (as the other runs).
const TIME_ZONE: chrono_tz::Tz = chrono_tz::Europe::Berlin;

/// One measured EmployeeSync run through a chosen API.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiReadTask {
    /// The tenant.
    pub upstream: Upstream,
    /// Read employees through v2 (else v1).
    pub v2: bool,
    /// Start of the run.
    pub now: DateTime<Utc>,
    /// Cursor of the previous run (`None`: full).
    pub cursor: Option<DateTime<Utc>>,
    /// Person ids webhook notifications named.
    pub notified: Vec<String>,
}

/// Child side: runs the task and returns the run's summary.
pub async fn run_api_read(
    task: &ApiReadTask,
    limits: Limits,
    log: &RequestTally,
) -> anyhow::Result<serde_json::Value> {
    let mut endpoint = PersonioEndpoint::simulator(&task.upstream.personio_url);
    endpoint.employee_api = if task.v2 {
        EmployeeApi::V2
    } else {
        EmployeeApi::V1
    };
    let builder = clients::builder(limits, log);
    let (personio, reteach) =
        clients::simulators_at(&builder, &endpoint, &task.upstream.reteach_url)?;
    let input = EmployeeJobInput {
        full: task.cursor.is_none(),
        cursor: task.cursor,
        notified: task.notified.clone(),
        ..EmployeeJobInput::full_run(task.now, TIME_ZONE)
    };
    let outcome = run_employee_sync(&personio, &reteach, &input).await?;
    Ok(serde_json::to_value(&outcome.summary)?)
}

/// Personio requests of a run.
fn personio_requests(result: &ChildResult) -> usize {
    result
        .requests
        .iter()
        .filter(|r| r.api == "personio")
        .map(|r| r.count)
        .sum()
}

/// The full and the incremental run of one API, with the minimum of each.
struct ApiRuns {
    full: (ChildResult, usize, String),
    incremental: (ChildResult, usize, String),
    changed: usize,
}

async fn runs_of(v2: bool, settings: &Settings, exe: &Path) -> anyhow::Result<ApiRuns> {
    let tenant = Tenant::start(start_time(), settings.time_scale).await?;
    tenant.personio.populate(settings.employees, SEED);
    let ids = tenant.personio.employee_ids();
    let employees = ids.len();
    let department_of = |id: i64| {
        tenant
            .personio
            .employee(id)
            .and_then(|e| e.seed.department.map(|d| d.id))
    };
    let departments = |ids: &[i64]| -> usize {
        ids.iter()
            .filter_map(|id| department_of(*id))
            .collect::<BTreeSet<_>>()
            .len()
    };
    let offices = ids
        .iter()
        .filter_map(|id| {
            tenant
                .personio
                .employee(*id)
                .and_then(|e| e.seed.office.map(|o| o.id))
        })
        .collect::<BTreeSet<_>>()
        .len();
    let name = if v2 { "v2" } else { "v1" };

    let now = tenant.advance(chrono::Duration::minutes(10));
    eprintln!("bench: {name} full read of {employees} employees");
    let task = |now, cursor, notified| {
        ChildTask::ApiRead(Box::new(ApiReadTask {
            upstream: tenant.upstream.clone(),
            v2,
            now,
            cursor,
            notified,
        }))
    };
    let full = measure(&[&tenant], settings, exe, task(now, None, Vec::new())).await?;
    let (full_minimum, full_rule) = full_read_minimum(v2, employees, departments(&ids), offices);

    tenant.advance(chrono::Duration::minutes(5));
    let (chosen, person_changed) = change_some(&tenant, &ids);
    let changed = chosen.len();
    let notified: Vec<String> = chosen.iter().map(i64::to_string).collect();
    let later = tenant.advance(chrono::Duration::minutes(5));
    eprintln!("bench: {name} incremental run after {changed} changes");
    let incremental = measure(&[&tenant], settings, exe, task(later, Some(now), notified)).await?;
    let (incremental_minimum, incremental_rule) = incremental_read_minimum(
        v2,
        person_changed,
        changed - person_changed,
        departments(&chosen),
    );
    Ok(ApiRuns {
        full: (full, full_minimum, full_rule),
        incremental: (incremental, incremental_minimum, incremental_rule),
        changed,
    })
}

/// The fewest Personio requests of a full read, and how they add up.
fn full_read_minimum(
    v2: bool,
    employees: usize,
    departments: usize,
    offices: usize,
) -> (usize, String) {
    if v2 {
        let d = departments;
        (
            1 + pages(employees, 50) + employees + d + pages(offices, 50),
            format!(
                "1 v2 token + {} person pages of 50 + {employees} employments + {d} org units + {} workplace page(s)",
                pages(employees, 50),
                pages(offices, 50)
            ),
        )
    } else {
        (
            1 + pages(employees, 100),
            format!("1 token + {} pages of 100", pages(employees, 100)),
        )
    }
}

/// 1 % of the employees change a person attribute, another 1 % only their employment; webhooks
/// name them all. Returns the changed ids (person changes first) and how many changed the person.
fn change_some(tenant: &Tenant, ids: &[i64]) -> (Vec<i64>, usize) {
    let k = ids.len().div_ceil(100).max(1);
    let step = (ids.len() / (2 * k)).max(1);
    let chosen: Vec<i64> = ids.iter().step_by(step).take(2 * k).copied().collect();
    let (person_changed, employment_changed) = chosen.split_at(chosen.len() / 2);
    for (n, id) in person_changed.iter().enumerate() {
        tenant
            .personio
            .update_employee(*id, |seed| seed.last_name = format!("Renamed {n}"));
    }
    for (n, id) in employment_changed.iter().enumerate() {
        tenant.personio.update_employee(*id, |seed| {
            seed.position = Some(format!("Benchmark role {n}"))
        });
    }
    let persons = person_changed.len();
    (chosen, persons)
}

/// The fewest Personio requests of an incremental read after `p` person and `e`
/// employment-only changes in `d` departments, and how they add up.
fn incremental_read_minimum(v2: bool, p: usize, e: usize, d: usize) -> (usize, String) {
    if v2 {
        (
            1 + pages(p, 50) + pages(e, 50) + p + e + d + 1,
            format!(
                "1 v2 token + {} changed-person page(s) + {} page(s) of the {e} notified persons by id + {} employments + {d} org units + 1 workplace page",
                pages(p, 50),
                pages(e, 50),
                p + e
            ),
        )
    } else {
        (2, "1 token + 1 change-feed call".to_string())
    }
}

fn report(
    scenario: Scenario,
    v2: (ChildResult, usize, String),
    v1: &(ChildResult, usize, String),
    written: Option<usize>,
) -> ScenarioReport {
    let (mut result, minimum, rule) = v2;
    let measured = personio_requests(&result);
    let reteach = result.total_requests() - measured;
    // The report is about Personio: reteach's requests are the same through either API.
    result.requests.retain(|r| r.api == "personio");
    let ratio = measured as f64 / minimum.max(1) as f64;
    let v1_measured = personio_requests(&v1.0);
    let mut targets = vec![
        Target::new(
            "v2 Personio requests ≤ 1.05 × the v2 minimum",
            ratio <= 1.05 + 1e-9,
            format!("{measured} of {minimum} = {ratio:.3}"),
        ),
        Target::new(
            "no 429",
            result.too_many_requests == 0 && v1.0.too_many_requests == 0,
            format!(
                "v2 {}, v1 {}",
                result.too_many_requests, v1.0.too_many_requests
            ),
        ),
    ];
    if let Some(needed) = written {
        let updated = |r: &ChildResult| r.summary["updated"].as_u64().unwrap_or(0);
        targets.push(Target::new(
            "every change written, through both APIs",
            updated(&result) >= needed as u64 && updated(&v1.0) >= needed as u64,
            format!("v2 {}, v1 {} of {needed}", updated(&result), updated(&v1.0)),
        ));
    }
    let notes = vec![
        format!("reteach requests of the v2 run (left out above): {reteach}"),
        format!(
            "v1: {v1_measured} Personio requests, minimum {} ({}) = {:.3} × minimum",
            v1.1,
            v1.2,
            v1_measured as f64 / v1.1.max(1) as f64
        ),
        format!(
            "v2 ÷ v1 Personio requests: {:.1} ×; v2 minimum ÷ v1 minimum: {:.1} ×",
            measured as f64 / v1_measured.max(1) as f64,
            minimum as f64 / v1.1.max(1) as f64
        ),
        format!(
            "peak RSS of the same run through v1: {:.1} MiB (v2 above)",
            mib(v1.0.memory.peak_kib)
        ),
    ];
    ScenarioReport {
        scenario,
        result,
        minimum,
        minimum_rule: format!("Personio only: {rule}"),
        bound: None,
        targets,
        notes,
    }
}

/// The `api-full` and `api-incremental` scenarios (whichever are wanted).
pub async fn api_cost(
    settings: &Settings,
    exe: &Path,
    full: bool,
    incremental: bool,
) -> anyhow::Result<Vec<ScenarioReport>> {
    let v1 = runs_of(false, settings, exe).await?;
    let v2 = runs_of(true, settings, exe).await?;
    let mut reports = Vec::new();
    if full {
        reports.push(report(Scenario::ApiFull, v2.full, &v1.full, None));
    }
    if incremental {
        reports.push(report(
            Scenario::ApiIncremental,
            v2.incremental,
            &v1.incremental,
            Some(v2.changed),
        ));
    }
    Ok(reports)
}
