//! The measured part of a scenario, run in a child process of the same binary so that its peak
//! resident memory (`VmHWM`) belongs to the sync code alone: the simulators, their data and the
//! setup stay in the parent. The parent writes a [`ChildRequest`] as JSON to the child's stdin;
//! the child answers with one [`ChildResult`] line on stdout.

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::certificate_run::CertificateRun;
use super::clients::{self, Limits};
use super::memory::Memory;
use super::tally::RequestTally;
use crate::api::CertificateLedgerStatus;
use crate::jobs::{run_employee_sync, EmployeeJobInput, MemoryLedgerStore};

/// Marks the result line on the child's stdout.
const RESULT_PREFIX: &str = "BENCH-RESULT ";

/// Company time zone of every benchmark run (the Personio simulator's zone).
pub const TIME_ZONE: Tz = chrono_tz::Europe::Berlin;

/// Where one tenant's simulators listen.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Upstream {
    /// Base URL of the Personio simulator.
    pub personio_url: String,
    /// Base URL of the reteach simulator.
    pub reteach_url: String,
}

/// What the child runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ChildTask {
    /// One EmployeeSync run.
    Employees {
        /// The tenant.
        upstream: Upstream,
        /// Start of the run.
        now: DateTime<Utc>,
        /// Cursor of the previous run (`None` = first run).
        cursor: Option<DateTime<Utc>>,
        /// Compare every employee.
        full: bool,
        /// `status.reteachUsers` after the previous run (`None` = never listed).
        #[serde(default)]
        reteach_users: Option<u64>,
        /// `Some(status.managedTags)`: the resource tags by department (`spec.tags`).
        #[serde(default)]
        department_tags: Option<Vec<String>>,
    },
    /// One CertificateSync run (from an empty ledger: the backfill).
    Certificates {
        /// The tenant.
        upstream: Upstream,
        /// Start of the run.
        now: DateTime<Utc>,
        /// Personio document category to upload into.
        category_id: i64,
        /// The ledger the run starts from (`None`: a new resource).
        #[serde(default)]
        ledger: Option<Box<CertificateLedgerStatus>>,
        /// Run a full pass even with a ledger.
        #[serde(default)]
        full_pass: bool,
    },
    /// Many EmployeeSync resources, one tenant each: every one runs once, then all stay idle
    /// holding their clients and last outcome, as the operator's client cache and status do.
    Idle {
        /// One tenant per resource.
        tenants: Vec<Upstream>,
        /// Start of the runs.
        now: DateTime<Utc>,
    },
    /// Many academies after a restart (see [`super::scale`]).
    Scale(Box<super::scale::ScaleTask>),
    /// Many CertificateSyncs woken at once (see [`super::burst`]).
    Burst(Box<super::burst::BurstTask>),
    /// One EmployeeSync run through a chosen Personio API (see [`super::api_cost`]).
    ApiRead(Box<super::api_cost::ApiReadTask>),
    /// Nothing: the resident memory of the runtime alone, for comparison.
    Baseline,
}

/// The child's input.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChildRequest {
    /// Rate limits run this many times faster.
    pub time_scale: f64,
    /// The work.
    pub task: ChildTask,
}

/// Requests to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointCount {
    /// `personio` or `reteach`.
    pub api: String,
    /// Fixed endpoint name, e.g. `GET /v1/company/employees`.
    pub endpoint: String,
    /// Requests sent, retries included.
    pub count: usize,
}

impl EndpointCount {
    /// Every endpoint `log` counted.
    pub fn all(log: &RequestTally) -> Vec<EndpointCount> {
        log.endpoints()
            .into_iter()
            .map(|tally| EndpointCount {
                api: tally.api.to_string(),
                endpoint: tally.endpoint.to_string(),
                count: tally.count,
            })
            .collect()
    }
}

/// What the child measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChildResult {
    /// Wall time of the measured work in seconds.
    pub wall_secs: f64,
    /// Resident memory after the work.
    pub memory: Memory,
    /// Requests by endpoint, in first-use order.
    pub requests: Vec<EndpointCount>,
    /// Responses with status 429.
    pub too_many_requests: usize,
    /// The run's summary counters (`status.lastRun`), for the record.
    pub summary: serde_json::Value,
    /// Set when the run failed; the figures then cover the part that ran.
    pub error: Option<String>,
}

impl ChildResult {
    /// All requests.
    pub fn total_requests(&self) -> usize {
        self.requests.iter().map(|r| r.count).sum()
    }

    /// Requests to one endpoint.
    pub fn count(&self, endpoint: &str) -> usize {
        self.requests
            .iter()
            .filter(|r| r.endpoint == endpoint)
            .map(|r| r.count)
            .sum()
    }
}

/// Child side: reads the request from stdin, runs it, prints the result line.
pub async fn serve_child() -> anyhow::Result<()> {
    let mut input = String::new();
    tokio::io::stdin().read_to_string(&mut input).await?;
    let request: ChildRequest = serde_json::from_str(&input)?;
    let result = execute(&request).await;
    println!("{RESULT_PREFIX}{}", serde_json::to_string(&result)?);
    Ok(())
}

/// Runs the task in this process and measures it.
pub async fn execute(request: &ChildRequest) -> ChildResult {
    let log = RequestTally::default();
    let limits = Limits::scaled(request.time_scale);
    let started = Instant::now();
    let (summary, held, error) = match run_task(&request.task, limits, &log).await {
        Ok((summary, held)) => (summary, held, None),
        Err(error) => (serde_json::Value::Null, None, Some(format!("{error:#}"))),
    };
    let wall_secs = started.elapsed().as_secs_f64();
    ChildResult {
        wall_secs,
        // A task that holds state (the scale scenario's caches and clients) reads its memory
        // while it still holds it; read here, it would be memory the allocator kept after freeing.
        memory: held.unwrap_or_else(Memory::read),
        requests: EndpointCount::all(&log),
        too_many_requests: log.too_many_requests(),
        summary,
        error,
    }
}

/// Runs the task; returns its summary and, for a task that holds state, the memory read while
/// it held it.
async fn run_task(
    task: &ChildTask,
    limits: Limits,
    log: &RequestTally,
) -> anyhow::Result<(serde_json::Value, Option<Memory>)> {
    let summary = match task {
        ChildTask::Employees {
            upstream,
            now,
            cursor,
            full,
            reteach_users,
            department_tags,
        } => {
            let outcome = employee_run(
                upstream,
                limits,
                log,
                *now,
                (*cursor, *reteach_users),
                *full,
                department_tags.as_deref(),
            )
            .await?;
            serde_json::to_value(&outcome.summary)?
        }
        ChildTask::Certificates {
            upstream,
            now,
            category_id,
            ledger,
            full_pass,
        } => {
            let run = CertificateTask {
                upstream,
                now: *now,
                category_id: *category_id,
                ledger: ledger.as_deref(),
                full_pass: *full_pass,
            };
            run.run(limits, log).await?
        }
        ChildTask::Idle { tenants, now } => {
            let (summary, memory) = idle_runs(tenants, *now, limits, log).await?;
            return Ok((summary, Some(memory)));
        }
        ChildTask::Scale(task) => {
            let (summary, memory) = super::scale::run_scale(task, limits, log).await?;
            return Ok((summary, Some(memory)));
        }
        ChildTask::Burst(task) => {
            let (summary, memory) = super::burst::run_burst(task, limits, log).await?;
            return Ok((summary, Some(memory)));
        }
        ChildTask::ApiRead(task) => super::api_cost::run_api_read(task, limits, log).await?,
        ChildTask::Baseline => serde_json::Value::Null,
    };
    Ok((summary, None))
}

/// A measured certificate run (the fields of [`ChildTask::Certificates`]).
struct CertificateTask<'a> {
    upstream: &'a Upstream,
    now: DateTime<Utc>,
    category_id: i64,
    ledger: Option<&'a CertificateLedgerStatus>,
    full_pass: bool,
}

impl CertificateTask<'_> {
    async fn run(self, limits: Limits, log: &RequestTally) -> anyhow::Result<serde_json::Value> {
        let CertificateTask {
            upstream,
            now,
            category_id,
            ledger,
            full_pass,
        } = self;
        let (personio, reteach) = clients::for_upstream(upstream, limits, log)?;
        let store = MemoryLedgerStore::default();
        let run = CertificateRun {
            now,
            category_id,
            ledger,
            requested: full_pass,
        };
        let (outcome, _) = run.run(&personio, &reteach, &store).await?;
        let (max_bytes, total_bytes) = store.bytes();
        Ok(serde_json::json!({
            "run": outcome.summary,
            "ledger": outcome.ledger,
            "ledgerSaves": store.saves(),
            "ledgerMaxBytes": max_bytes,
            "ledgerTotalBytes": total_bytes,
        }))
    }
}

/// Full EmployeeSync runs of many idle tenants; memory is read while their clients and outcomes
/// are still held.
async fn idle_runs(
    tenants: &[Upstream],
    now: DateTime<Utc>,
    limits: Limits,
    log: &RequestTally,
) -> anyhow::Result<(serde_json::Value, Memory)> {
    let mut held = Vec::with_capacity(tenants.len());
    for upstream in tenants {
        let (personio, reteach) = clients::for_upstream(upstream, limits, log)?;
        let input = EmployeeJobInput::full_run(now, TIME_ZONE);
        let outcome = run_employee_sync(&personio, &reteach, &input).await?;
        held.push((personio, reteach, outcome));
    }
    let created: i64 = held.iter().map(|(_, _, o)| o.summary.created).sum();
    let unchanged: i64 = held.iter().map(|(_, _, o)| o.summary.unchanged).sum();
    let memory = Memory::read();
    let summary = serde_json::json!({
        "resources": held.len(),
        "created": created,
        "unchanged": unchanged,
    });
    Ok((summary, memory))
}

/// One EmployeeSync run with fresh clients (also used by the parent for unmeasured setup). With
/// `department_tags` (`status.managedTags`), the resource has one tag rule: the department.
pub async fn employee_run(
    upstream: &Upstream,
    limits: Limits,
    log: &RequestTally,
    now: DateTime<Utc>,
    (cursor, reteach_users): (Option<DateTime<Utc>>, Option<u64>),
    full: bool,
    department_tags: Option<&[String]>,
) -> anyhow::Result<crate::jobs::EmployeeJobOutcome> {
    let (personio, reteach) = clients::for_upstream(upstream, limits, log)?;
    let mut config = crate::sync::employee_config::EmployeeConfig::default();
    if department_tags.is_some() {
        config.tags = vec![crate::sync::employee_tags::TagRule {
            source: crate::sync::employee_config::FieldSource::attribute("department"),
            prefix: String::new(),
        }];
    }
    let input = EmployeeJobInput {
        config,
        full,
        cursor,
        reteach_users,
        managed_tags: department_tags.map(<[String]>::to_vec).unwrap_or_default(),
        ..EmployeeJobInput::full_run(now, TIME_ZONE)
    };
    Ok(run_employee_sync(&personio, &reteach, &input).await?)
}

/// Environment variable with a command the child runs under, e.g. `heaptrack -o /tmp/scale`
/// for a heap profile of the measured process (split at whitespace; unset: the child runs alone).
pub const CHILD_WRAPPER_ENV: &str = "BENCH_CHILD_WRAPPER";

/// Parent side: runs `request` in a child process of `exe` (`exe bench --child`), under the
/// command in [`CHILD_WRAPPER_ENV`] if set.
pub async fn spawn(exe: &Path, request: &ChildRequest) -> anyhow::Result<ChildResult> {
    let wrapper = std::env::var(CHILD_WRAPPER_ENV).unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut command = tokio::process::Command::new(program);
            command.args(words).arg(exe);
            command
        }
        None => tokio::process::Command::new(exe),
    };
    let mut child = command
        .args(["bench", "--child"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("child has no stdin"))?;
    stdin
        .write_all(serde_json::to_string(request)?.as_bytes())
        .await?;
    drop(stdin);
    let output = child.wait_with_output().await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(RESULT_PREFIX))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "benchmark child exited with {} without a result",
                output.status
            )
        })?;
    Ok(serde_json::from_str(line)?)
}
