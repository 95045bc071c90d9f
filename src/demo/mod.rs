//! `demo`: both syncs end to end against the embedded simulators, no cluster needed.
//!
//! The Personio and reteach simulators start on loopback, seeded with a small simulated company
//! ([`company`]). The shipped examples (`examples/employeesync.yaml`, `examples/certificatesync.yaml`)
//! are loaded and pointed at them, the real clients are built from them, and the real jobs run —
//! the same code the controllers run. The status each resource would carry is computed with the
//! controllers' own functions and printed, followed by what changed, what was skipped and the
//! requests per endpoint. A second pass right after shows the incremental path.

mod company;
mod report;
mod resources;
mod runner;

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use chrono::{Duration, Utc};

use crate::clock::{ManualClock, SystemClock};
use crate::sim::personio::{PersonioSim, PersonioSimConfig};
use crate::sim::reteach::ReteachSim;
use crate::sim::RunningSim;
use crate::upstream::RequestLog;
use report::UsersBefore;
use resources::{DemoResources, SetupError};
use runner::{PassError, PassOutcome, Runner};

/// How long before the demo the seeded employees were last changed in Personio: longer than the
/// incremental overlap, so the second pass finds nothing new, as it would in a real company.
const SEEDED_DAYS_AGO: i64 = 3;

/// Options of `reteach-personio-operator demo`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DemoOptions {}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A simulator could not listen on loopback.
    #[error("could not start a simulator on loopback: {0}")]
    Listen(#[from] std::io::Error),
    /// Examples or clients could not be set up.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A sync failed.
    #[error(transparent)]
    Pass(#[from] PassError),
    /// A status could not be rendered as YAML.
    #[error("could not render status as YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
}

/// Runs the demo and prints what happened.
pub async fn run(_options: DemoOptions) -> anyhow::Result<()> {
    init_tracing();
    Ok(demo(&mut std::io::stdout()).await?)
}

/// Only with `RUST_LOG` set: the jobs' own log lines, on stderr, next to the report.
fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// The simulators and everything the passes need.
struct Stage {
    personio: PersonioSim,
    reteach: ReteachSim,
    _running: (RunningSim, RunningSim),
    runner: Runner,
    log: RequestLog,
    company: company::SeededCompany,
}

/// The whole demo, writing its report to `out` section by section.
async fn demo(out: &mut impl std::io::Write) -> Result<(), DemoError> {
    let stage = set_up().await?;
    let mut text = String::new();
    intro(&mut text, &stage);
    flush(out, &mut text);

    let Stage {
        personio,
        reteach,
        _running,
        mut runner,
        log,
        company: _,
    } = stage;
    let tz = runner.time_zone();

    // Pass 1: full employee sync and certificate backfill.
    let before = UsersBefore::take(&reteach, &personio);
    let started = Utc::now();
    let first = runner.pass(started).await?;
    let first_requests = log.records();
    log.clear();
    let _ = write!(
        text,
        "\n==== Run 1: first sync (full employee comparison, certificate backfill) ====\n"
    );
    statuses(&mut text, &runner)?;
    report::heading(&mut text, "Users in reteach, by Personio id");
    report::users(&mut text, &before, &reteach, &personio, tz, started);
    report::heading(
        &mut text,
        &format!(
            "Certificates uploaded to Personio (document category {})",
            first.category_id
        ),
    );
    report::uploads(&mut text, &before, &personio);
    report::heading(
        &mut text,
        "Skipped, and why (status.failures, status.ledger.pending)",
    );
    skipped(&mut text, &first, &runner);
    report::heading(&mut text, "Requests per endpoint");
    report::requests(&mut text, std::slice::from_ref(&first_requests));
    flush(out, &mut text);

    // Pass 2, right after: incremental, from the cursors of pass 1.
    let before = UsersBefore::take(&reteach, &personio);
    let started = Utc::now();
    let second = runner.pass(started).await?;
    let second_requests = log.records();
    let _ = write!(
        text,
        "\n==== Run 2: right after (incremental, from the cursors of run 1) ====\n\n"
    );
    summary_lines(&mut text, &second, &runner);
    report::heading(&mut text, "Users in reteach, by Personio id");
    report::users(&mut text, &before, &reteach, &personio, tz, started);
    report::heading(&mut text, "Certificates uploaded to Personio");
    report::uploads(&mut text, &before, &personio);
    report::heading(&mut text, "Requests per endpoint, both runs");
    let totals = report::requests(&mut text, &[first_requests, second_requests]);
    let _ = writeln!(
        text,
        "\nrequests total: run 1 = {}, run 2 = {}",
        totals.first().copied().unwrap_or_default(),
        totals.get(1).copied().unwrap_or_default()
    );
    let _ = writeln!(
        text,
        "\nOn a cluster the same code runs in `reteach-personio-operator run`: see README.md."
    );
    flush(out, &mut text);
    Ok(())
}

async fn set_up() -> Result<Stage, DemoError> {
    let now = Utc::now();
    let personio_clock = Arc::new(ManualClock::new(now - Duration::days(SEEDED_DAYS_AGO)));
    let personio = PersonioSim::new(PersonioSimConfig {
        // The demo shows behaviour, not throughput (`bench` measures the limits).
        rate_limits: None,
        clock: personio_clock.clone(),
        ..PersonioSimConfig::default()
    });
    let reteach = ReteachSim::new(Arc::new(SystemClock));
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let running_personio = personio.start(loopback).await?;
    let running_reteach = reteach.start(loopback).await?;

    let resources = DemoResources::load(&running_personio.base_url(), &running_reteach.base_url())?;
    let log = RequestLog::default();
    let personio_client = resources.personio_client(personio.credentials(), &log)?;
    let reteach_client = resources.reteach_client(reteach.credentials(), &log)?;
    let runner = Runner::new(resources, personio_client, reteach_client)?;
    let tz = runner.time_zone();
    let today = now.with_timezone(&tz).date_naive();
    let company = company::seed(&personio, &reteach, today, tz, now);
    // From here on Personio's clock is the real one: nothing changes until the second run.
    personio_clock.set(Utc::now());
    Ok(Stage {
        personio,
        reteach,
        _running: (running_personio, running_reteach),
        runner,
        log,
        company,
    })
}

fn intro(text: &mut String, stage: &Stage) {
    let resources: &DemoResources = stage.runner.resources();
    let tz = stage.runner.time_zone();
    let today = Utc::now().with_timezone(&tz).date_naive();
    let company = &stage.company;
    let _ = writeln!(
        text,
        "reteach-personio-operator demo: the real sync code against SIMULATED Personio and\n\
         reteach servers on loopback. Every person, address and course below is made up."
    );
    let _ = writeln!(
        text,
        "\n  Personio (simulated)  {:<24} {} employees; today is {today} ({tz})",
        resources.employee_sync.spec.personio.base_url,
        company.personio_ids.len(),
    );
    let _ = writeln!(
        text,
        "  reteach (simulated)   {:<24} {} users, {} completed courses ({} PDF pending)",
        resources.employee_sync.spec.reteach.base_url,
        company.existing_users,
        company.completions,
        company.pdfs_generating,
    );
    let _ = writeln!(
        text,
        "  EmployeeSync/{:<15} from examples/employeesync.yaml (baseUrls -> simulators)",
        name_of(&resources.employee_sync.metadata.name),
    );
    let _ = writeln!(
        text,
        "  CertificateSync/{:<11} from examples/certificatesync.yaml",
        name_of(&resources.certificate_sync.metadata.name),
    );
}

fn name_of(name: &Option<String>) -> &str {
    name.as_deref().unwrap_or("-")
}

fn statuses(text: &mut String, runner: &Runner) -> Result<(), serde_norway::Error> {
    let resources = runner.resources();
    text.push('\n');
    report::status_yaml(
        text,
        "employeesync",
        name_of(&resources.employee_sync.metadata.name),
        &runner.employee_status,
    )?;
    text.push('\n');
    report::status_yaml(
        text,
        "certificatesync",
        name_of(&resources.certificate_sync.metadata.name),
        &runner.certificate_status,
    )
}

/// The `Ready` messages of both resources (what `kubectl get` shows after the second pass).
fn summary_lines(text: &mut String, pass: &PassOutcome, runner: &Runner) {
    let ready = |conditions: &[crate::api::Condition]| {
        conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| format!("Ready={} {}\n    {}", c.status, c.reason, c.message))
            .unwrap_or_default()
    };
    let mode = format!("{:?}", pass.employees.summary.mode);
    let _ = writeln!(
        text,
        "  EmployeeSync ({mode}): {}",
        ready(&runner.employee_status.common.conditions)
    );
    if pass.employees.summary.seen == 0 {
        let _ = writeln!(
            text,
            "    Personio reported no employee changed since status.cursor (minus {} minutes of\n    \
             overlap), so reteach was not asked at all.",
            crate::jobs::employee::INCREMENTAL_OVERLAP_MINUTES
        );
    }
    let _ = writeln!(
        text,
        "  CertificateSync: {}",
        ready(&runner.certificate_status.common.conditions)
    );
    let _ = writeln!(
        text,
        "    Only completions after status.ledger.cursor (minus {} minutes) were listed; the {}\n    \
         pending ones were re-read.",
        crate::sync::certificate_plan::DEFAULT_OVERLAP_MINUTES,
        runner.certificate_status.ledger.pending.len()
    );
}

fn skipped(text: &mut String, pass: &PassOutcome, runner: &Runner) {
    report::skipped(
        text,
        &pass.employees.failures,
        &pass.certificates.failures,
        &runner.certificate_status,
    );
}

/// Writes what is buffered, so a slow step never hides the sections before it.
fn flush(out: &mut impl std::io::Write, text: &mut String) {
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    text.clear();
}
