//! Issue 26: many academies under one Personio limit per IP address. `pairs` academies, each
//! with its own Personio and reteach simulator — but every Personio simulator counts against one
//! shared limit of 2,000 requests per (scaled) minute, as Personio counts every tenant behind one
//! egress IP. Each academy's EmployeeSync asks for the shortest interval (1m), so together they
//! need more than the budget. The runs go as the operator runs them: through the run slots, each
//! Personio request through the process-wide fair budget, and after each run the next one is
//! scheduled at the effective interval the budget planner gives (see `controller::budget`).
//!
//! Reported: 429s (target 0), the busiest minute against the limit, and each academy's
//! effective interval against the fair bound (every academy gets the same share of the budget).
//! It runs in the parent process: it measures requests and time, not memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::child::{ChildResult, EndpointCount, TIME_ZONE};
use super::clients::{simulators, Limits};
use super::figures::Target;
use super::scenarios::{start_time, ScenarioReport, Settings};
use super::tally::RequestTally;
use super::tenant::Tenant;
use super::Scenario;
use crate::controller::budget::{BudgetPlanner, PLANNED_SHARE};
use crate::controller::pacing::{startup_offset, Priority, RunSlots};
use crate::jobs::connection::{ClientOptions, ConnectionClients};
use crate::jobs::{run_employee_sync, EmployeeJobInput};
use crate::personio::PersonioClient;
use crate::reteach::ReteachClient;
use crate::sim::personio::SharedIpLimit;
use crate::upstream::{metered, SharedBudget, DEFAULT_BUDGET_PER_MINUTE};

/// The interval every academy asks for (the shortest accepted), in real time.
const INTERVAL: Duration = Duration::from_secs(60);
/// How long the scenario runs, in configured intervals.
const INTERVALS: u32 = 6;

/// What one academy saw.
#[derive(Clone, Debug, Default)]
struct AcademyRuns {
    starts: Vec<f64>,
    requests: u64,
    effective: Duration,
    error: Option<String>,
}

impl AcademyRuns {
    /// Mean time between the starts of its runs, once the first wave is over.
    fn achieved_gap(&self) -> Option<f64> {
        let later = self.starts.get(1..)?;
        let (first, last) = (later.first()?, later.last()?);
        (later.len() >= 2).then(|| (last - first) / (later.len() - 1) as f64)
    }
}

/// The budget scenario (runs in this process).
pub async fn budget(settings: &Settings) -> anyhow::Result<ScenarioReport> {
    let academies = settings.pairs.max(1);
    let employees = (settings.employees / academies).clamp(1, 100);
    let scale = settings.time_scale;
    eprintln!(
        "bench: {academies} academies of {employees} employees under one Personio limit of {DEFAULT_BUDGET_PER_MINUTE}/min"
    );
    let ip_limit = SharedIpLimit::new(DEFAULT_BUDGET_PER_MINUTE as usize, scale);
    let mut tenants = Vec::with_capacity(academies);
    for n in 0..academies {
        let tenant =
            Tenant::start_with_ip_limit(start_time(), scale, Some(ip_limit.clone())).await?;
        tenant.personio.populate(employees, 26 + n as u64);
        tenant.set_latency(settings.latency);
        tenants.push(tenant);
    }
    let log = RequestTally::default();
    let shared = SharedBudget::paced(
        DEFAULT_BUDGET_PER_MINUTE,
        f64::from(DEFAULT_BUDGET_PER_MINUTE) * 0.95 * scale,
    );
    let planner = Arc::new(
        BudgetPlanner::new(scaled_budget(scale))
            .with_grace(crate::controller::budget::FORGET_GRACE.div_f64(scale)),
    );
    let slots = RunSlots::new(settings.max_concurrent_runs);
    let builder = ConnectionClients::new(ClientOptions {
        observer: Arc::new(log.clone()),
        personio_limits: Limits::scaled(scale).personio,
        reteach_requests_per_second: Limits::setup(scale).reteach_per_second,
        timeout: Some(Duration::from_secs(60)),
        personio_budget: Some(shared.clone()),
        ..ClientOptions::default()
    });
    let interval = INTERVAL.div_f64(scale);
    let t0 = Instant::now();
    let deadline = interval * INTERVALS;
    let mut runs = tokio::task::JoinSet::new();
    for (n, tenant) in tenants.iter().enumerate() {
        let (personio, reteach) = simulators(&builder, &tenant.upstream)?;
        let academy = Academy {
            key: format!("academy-{n}/personio"),
            personio,
            reteach,
            slots: slots.clone(),
            planner: planner.clone(),
            interval,
            t0,
            deadline,
        };
        runs.spawn(academy.run());
    }
    let mut seen = Vec::with_capacity(academies);
    while let Some(joined) = runs.join_next().await {
        seen.push(joined?);
    }
    let wall = t0.elapsed().as_secs_f64();
    Ok(report(settings, &seen, &log, &ip_limit, wall, interval))
}

/// The planner works in the benchmark's time: a scaled minute holds `scale` times the budget.
fn scaled_budget(scale: f64) -> u32 {
    (f64::from(DEFAULT_BUDGET_PER_MINUTE) * scale).min(f64::from(u32::MAX)) as u32
}

/// One academy's EmployeeSync, run again and again at its effective interval.
struct Academy {
    key: String,
    personio: PersonioClient,
    reteach: ReteachClient,
    slots: RunSlots,
    planner: Arc<BudgetPlanner>,
    interval: Duration,
    t0: Instant,
    deadline: Duration,
}

impl Academy {
    async fn run(self) -> AcademyRuns {
        let mut seen = AcademyRuns::default();
        // Every run is overdue at the start: the start-up spread places it in its interval.
        let mut next = startup_offset(&self.key, self.interval.mul_f64(0.9));
        while next < self.deadline {
            tokio::time::sleep_until((self.t0 + next).into()).await;
            let started = self.t0.elapsed();
            seen.starts.push(started.as_secs_f64());
            let slot = self.slots.acquire(&self.key, Priority::Routine).await;
            let input = EmployeeJobInput::full_run(Utc::now(), TIME_ZONE);
            let run = Box::pin(run_employee_sync(&self.personio, &self.reteach, &input));
            let (outcome, requests) = metered(run).await;
            drop(slot);
            if let Err(error) = outcome {
                seen.error = Some(error.to_string());
                return seen;
            }
            seen.requests += requests;
            let stretch = self
                .planner
                .record(&self.key, requests, self.interval, Utc::now());
            seen.effective = stretch.effective;
            next = started + stretch.effective;
        }
        seen
    }
}

fn percentile(sorted: &[f64], share: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * share).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// The effective intervals of the academies and the achieved gaps between their run starts, in
/// configured minutes (as the operator would show them), each sorted.
fn intervals(seen: &[AcademyRuns], scale: f64) -> (Vec<f64>, Vec<f64>) {
    let mut effective: Vec<f64> = seen
        .iter()
        .map(|a| a.effective.as_secs_f64() * scale / 60.0)
        .collect();
    effective.sort_by(f64::total_cmp);
    let mut achieved: Vec<f64> = seen
        .iter()
        .filter_map(AcademyRuns::achieved_gap)
        .map(|gap| gap * scale / 60.0)
        .collect();
    achieved.sort_by(f64::total_cmp);
    (effective, achieved)
}

/// The figures the budget scenario is judged by.
struct Pace {
    academies: usize,
    runs: usize,
    /// Budgeted Personio requests.
    requests: u64,
    /// 429s: refused by the shared limit or seen by the clients.
    refused: usize,
    /// Runs that failed.
    errors: usize,
    /// Requests of the busiest minute at the shared limit.
    busiest: usize,
    /// Requests per run.
    cost: f64,
    /// The fair bound of the achieved interval (configured minutes).
    bound: f64,
    /// Effective and achieved intervals per academy (configured minutes), sorted.
    effective: Vec<f64>,
    achieved: Vec<f64>,
}

impl Pace {
    /// The figures of the runs `seen` at the configured `interval`.
    fn measure(
        settings: &Settings,
        seen: &[AcademyRuns],
        log: &RequestTally,
        ip_limit: &SharedIpLimit,
        interval: Duration,
    ) -> Self {
        let scale = settings.time_scale;
        let academies = seen.len();
        let runs: usize = seen.iter().map(|a| a.starts.len()).sum();
        let requests: u64 = seen.iter().map(|a| a.requests).sum();
        let (effective, achieved) = intervals(seen, scale);
        // Fair bound: every academy the same share of the whole budget, at what a run costs.
        let cost = requests as f64 / runs.max(1) as f64;
        let bound = (academies as f64 * cost / f64::from(DEFAULT_BUDGET_PER_MINUTE))
            .max(interval.as_secs_f64() * scale / 60.0);
        Self {
            academies,
            runs,
            requests,
            refused: ip_limit.refused() as usize + log.too_many_requests(),
            errors: seen.iter().filter(|a| a.error.is_some()).count(),
            busiest: ip_limit.busiest_minute(),
            cost,
            bound,
            effective,
            achieved,
        }
    }

    /// The median achieved interval (configured minutes).
    fn median_achieved(&self) -> f64 {
        percentile(&self.achieved, 0.5)
    }

    /// The targets of the scenario.
    fn targets(&self) -> Vec<Target> {
        let (refused, busiest, bound, errors) =
            (self.refused, self.busiest, self.bound, self.errors);
        let busiest_ratio = busiest as f64 / DEFAULT_BUDGET_PER_MINUTE as f64;
        let median_achieved = self.median_achieved();
        let spread = percentile(&self.achieved, 0.99) / percentile(&self.achieved, 0.01).max(1e-9);
        vec![
            Target::new("zero 429s", refused == 0, refused.to_string()),
            Target::new(
                "busiest minute within the shared limit",
                busiest <= DEFAULT_BUDGET_PER_MINUTE as usize,
                format!("{busiest} of {DEFAULT_BUDGET_PER_MINUTE} ({busiest_ratio:.2} × limit)"),
            ),
            Target::new(
                "median achieved interval ≤ 1.5 × fair bound",
                median_achieved <= 1.5 * bound,
                format!(
                    "{median_achieved:.2} min for a bound of {bound:.2} min ({:.2} ×)",
                    median_achieved / bound
                ),
            ),
            Target::new(
                "fair: p99 ÷ p1 of the achieved intervals ≤ 1.5",
                spread <= 1.5,
                format!("{spread:.2}"),
            ),
            Target::new("no run failed", errors == 0, errors.to_string()),
        ]
    }

    /// The figures behind the targets, at time scale `scale`.
    fn notes(&self, scale: f64, ip_limit: &SharedIpLimit) -> Vec<String> {
        let (academies, cost, bound) = (self.academies, self.cost, self.bound);
        let (runs, requests) = (self.runs, self.requests);
        let (effective, achieved) = (&self.effective, &self.achieved);
        let median_achieved = self.median_achieved();
        vec![
            format!(
                "{academies} academies × EmployeeSync every 1m asked: {:.0} requests/min at {cost:.2} requests per run; budget {DEFAULT_BUDGET_PER_MINUTE}/min (planned share {:.0} %), time scale {scale}",
                academies as f64 * cost,
                PLANNED_SHARE * 100.0
            ),
            format!(
                "effective interval per academy (configured minutes): min {:.2}, median {:.2}, p99 {:.2}, max {:.2}; achieved between run starts: min {:.2}, median {median_achieved:.2}, max {:.2}; fair bound {bound:.2}",
                percentile(effective, 0.0),
                percentile(effective, 0.5),
                percentile(effective, 0.99),
                percentile(effective, 1.0),
                percentile(achieved, 0.0),
                percentile(achieved, 1.0),
            ),
            format!(
                "{runs} runs, {requests} budgeted Personio requests, {} seen by the shared limit",
                ip_limit.total()
            ),
        ]
    }
}

fn report(
    settings: &Settings,
    seen: &[AcademyRuns],
    log: &RequestTally,
    ip_limit: &SharedIpLimit,
    wall: f64,
    interval: Duration,
) -> ScenarioReport {
    let pace = Pace::measure(settings, seen, log, ip_limit, interval);
    let result = ChildResult {
        wall_secs: wall,
        requests: EndpointCount::all(log),
        too_many_requests: pace.refused,
        summary: serde_json::json!({"runs": pace.runs, "academies": pace.academies}),
        error: seen.iter().find_map(|a| a.error.clone()),
        ..ChildResult::default()
    };
    let minimum = result.total_requests();
    ScenarioReport {
        scenario: Scenario::Budget,
        result,
        minimum,
        minimum_rule:
            "the requests the runs needed (the scenario measures the pace, not the count)".into(),
        bound: None,
        targets: pace.targets(),
        notes: pace.notes(settings.time_scale, ip_limit),
    }
}
