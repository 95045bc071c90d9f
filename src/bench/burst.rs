//! Issue 26: a bulk event wakes 200 CertificateSyncs at once (a course deadline passes in every
//! academy), each with a 30 MB certificate to copy. The child runs them as the operator runs
//! notified runs: all due at the same moment, through the run slots (`--max-concurrent-runs`,
//! the namespace share), each PDF held in memory under the process-wide allowance
//! (`--pdf-memory-mib`). Reported: peak resident memory against the chart's default memory
//! limit (256 MiB), and the peak of runs in flight against the slots.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::certificate_run::CertificateRun;
use super::child::ChildTask;
use super::clients::{simulators, Limits};
use super::figures::Target;
use super::memory::{mib, Memory};
use super::scale::Academy;
use super::scenarios::{advance_all, measure, ScenarioReport, Settings};
use super::tally::RequestTally;
use super::tenant::Tenant;
use super::Scenario;
use crate::controller::operator::DEFAULT_PDF_MEMORY_MIB;
use crate::controller::pacing::{Priority, RunSlots};
use crate::jobs::connection::{ClientOptions, ConnectionClients};
use crate::jobs::MemoryLedgerStore;
use crate::reteach::DownloadPolicy;
use crate::upstream::{hold_slot_while, PdfMemory, MAX_PDF_BYTES};

/// CertificateSyncs woken at once.
pub const ACADEMIES: usize = 200;
/// Size of every certificate: Personio's largest upload (30 MB).
pub const PDF_BYTES: u64 = 30_000_000;
/// The chart's default `resources.limits.memory`.
pub const CHART_MEMORY_LIMIT_MIB: f64 = 256.0;

/// What the burst child is asked to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BurstTask {
    /// One CertificateSync each, one certificate each.
    pub academies: Vec<Academy>,
    /// When the runs start, on the simulators' clocks.
    pub now: chrono::DateTime<chrono::Utc>,
    /// `--max-concurrent-runs`.
    pub max_concurrent_runs: usize,
    /// `--pdf-memory-mib`.
    pub pdf_memory_mib: u64,
}

/// The burst scenario (parent side).
pub async fn burst(settings: &Settings, exe: &Path) -> anyhow::Result<ScenarioReport> {
    let count = settings.burst_academies.max(1);
    eprintln!(
        "bench: {count} CertificateSyncs woken at once, one {:.1} MB PDF each",
        settings.burst_pdf_bytes as f64 / 1e6
    );
    let settings_30mb = Settings {
        pdf_bytes: settings.burst_pdf_bytes,
        ..settings.clone()
    };
    let (tenants, academies, _) = super::scale::academies(&settings_30mb, count, 1, 1).await?;
    let now = advance_all(&tenants, chrono::Duration::minutes(10));
    let task = ChildTask::Burst(Box::new(BurstTask {
        academies,
        now,
        max_concurrent_runs: settings.max_concurrent_runs,
        pdf_memory_mib: DEFAULT_PDF_MEMORY_MIB,
    }));
    let refs: Vec<&Tenant> = tenants.iter().collect();
    let result = measure(&refs, settings, exe, task).await?;
    let peak = mib(result.memory.peak_kib);
    let summary = &result.summary;
    let uploaded = summary["uploaded"].as_i64().unwrap_or(-1);
    let peak_runs = summary["peakConcurrentRuns"].as_u64().unwrap_or(u64::MAX);
    let targets = vec![
        Target::new(
            format!("peak RSS within the chart's memory limit ({CHART_MEMORY_LIMIT_MIB} MiB)"),
            peak <= CHART_MEMORY_LIMIT_MIB,
            format!(
                "{peak:.1} MiB = {:.2} × limit",
                peak / CHART_MEMORY_LIMIT_MIB
            ),
        ),
        Target::new(
            format!(
                "at most {} runs in flight",
                settings.max_concurrent_runs.max(1)
            ),
            settings.max_concurrent_runs == 0 || peak_runs <= settings.max_concurrent_runs as u64,
            peak_runs.to_string(),
        ),
        Target::new(
            "every certificate uploaded",
            uploaded == count as i64,
            uploaded.to_string(),
        ),
        Target::new(
            "zero 429s",
            result.too_many_requests == 0,
            result.too_many_requests.to_string(),
        ),
    ];
    let minimum = count * 8;
    Ok(ScenarioReport {
        scenario: Scenario::Burst,
        minimum_rule: "per academy: 1 category list + 1 v2 token + 1 document listing + 1 Personio token + 1 reteach token + 1 participation page + 1 download + 1 upload".into(),
        notes: vec![format!(
            "{count} runs started at once, {:.1} MB PDFs; {} MiB PDF allowance (--pdf-memory-mib), {} run slots; peak RSS {peak:.1} MiB, {:.1} MiB after the runs",
            settings.burst_pdf_bytes as f64 / 1e6,
            DEFAULT_PDF_MEMORY_MIB,
            settings.max_concurrent_runs,
            mib(result.memory.current_kib)
        )],
        result,
        minimum,
        bound: None,
        targets,
    })
}

/// Child side: every run at once, through the slots and the PDF allowance.
pub async fn run_burst(
    task: &BurstTask,
    limits: Limits,
    log: &RequestTally,
) -> anyhow::Result<(serde_json::Value, Memory)> {
    let slots = RunSlots::new(task.max_concurrent_runs);
    let builder = Arc::new(ConnectionClients::new(ClientOptions {
        observer: Arc::new(log.clone()),
        personio_limits: limits.personio,
        reteach_requests_per_second: limits.reteach_per_second,
        timeout: Some(std::time::Duration::from_secs(120)),
        downloads: DownloadPolicy {
            memory: Some(PdfMemory::new(
                task.pdf_memory_mib.saturating_mul(1024 * 1024),
                MAX_PDF_BYTES,
            )),
            ..DownloadPolicy::default()
        },
        ..ClientOptions::default()
    }));
    let mut runs = tokio::task::JoinSet::new();
    for (n, academy) in task.academies.iter().enumerate() {
        let (slots, builder, academy, now) =
            (slots.clone(), builder.clone(), academy.clone(), task.now);
        runs.spawn(async move {
            let slot = slots
                .acquire(&format!("academy-{n}"), Priority::Routine)
                .await;
            hold_slot_while(slot, Box::pin(one_run(&builder, &academy, now))).await
        });
    }
    let (mut uploaded, mut failed) = (0, 0);
    while let Some(joined) = runs.join_next().await {
        let (up, down) = joined??;
        uploaded += up;
        failed += down;
    }
    let memory = Memory::read();
    let summary = serde_json::json!({
        "uploaded": uploaded,
        "failed": failed,
        "peakConcurrentRuns": slots.peak(),
    });
    Ok((summary, memory))
}

/// One academy's CertificateSync run; returns the certificates it uploaded and those it failed.
async fn one_run(
    builder: &ConnectionClients,
    academy: &Academy,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(i64, i64)> {
    let (personio, reteach) = simulators(builder, &academy.upstream)?;
    let run = CertificateRun {
        now,
        category_id: academy.category_id,
        ledger: None,
        requested: false,
    };
    let (outcome, _) = run
        .run(&personio, &reteach, &MemoryLedgerStore::default())
        .await?;
    if let Some(failure) = outcome.failures.first() {
        eprintln!("bench: burst run failed a certificate: {}", failure.reason);
    }
    Ok((outcome.summary.uploaded, outcome.summary.failed))
}
