//! Prints the figures of every scenario and the pass/miss summary.

use std::fmt::Write;

use super::memory::mib;
use super::scenarios::{ScenarioReport, Settings};

/// The whole report as text.
pub fn render(settings: &Settings, reports: &[ScenarioReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "benchmark: {} employees, {} certificates, latency {} ms per request, time scale {}",
        settings.employees,
        settings.certificates,
        settings.latency.as_millis(),
        settings.time_scale
    );
    for report in reports {
        render_one(&mut out, report);
    }
    let _ = writeln!(out, "\nsummary");
    for report in reports {
        let verdict = if report.passed() { "pass" } else { "MISS" };
        let _ = writeln!(
            out,
            "  {verdict:<4}  {:<10} requests {:>6} / minimum {:>6} = {:.3}   wall {:>8.2} s   peak RSS {:>6.1} MiB   429s {}",
            report.scenario.name(),
            report.result.total_requests(),
            report.minimum,
            report.ratio(),
            report.result.wall_secs,
            mib(report.result.memory.peak_kib),
            report.result.too_many_requests
        );
    }
    out
}

fn render_one(out: &mut String, report: &ScenarioReport) {
    let result = &report.result;
    let _ = writeln!(out, "\n== {} ==", report.scenario.title());
    if let Some(error) = &result.error {
        let _ = writeln!(out, "  RUN FAILED: {error}");
    }
    let _ = writeln!(out, "  requests by endpoint:");
    for endpoint in &result.requests {
        let _ = writeln!(
            out,
            "    {:<8} {:<40} {:>6}",
            endpoint.api, endpoint.endpoint, endpoint.count
        );
    }
    let _ = writeln!(
        out,
        "  requests {} / minimum {} = {:.3}",
        result.total_requests(),
        report.minimum,
        report.ratio()
    );
    let _ = writeln!(out, "    minimum: {}", report.minimum_rule);
    let _ = write!(out, "  wall {:.2} s", result.wall_secs);
    match (&report.bound, report.achieved()) {
        (Some(bound), Some(achieved)) => {
            let _ = writeln!(
                out,
                "; bound {:.2} s ({}); achieved/bound {:.1} %",
                bound.secs,
                bound.binding,
                achieved * 100.0
            );
        }
        _ => {
            let _ = writeln!(out, "; no bound (runs of many tenants one after another)");
        }
    }
    let _ = writeln!(
        out,
        "  peak RSS {:.1} MiB (VmHWM of the child process); 429s received {}",
        mib(result.memory.peak_kib),
        result.too_many_requests
    );
    // Certificate runs also return their ledger: print the counters only.
    let summary = match result.summary.get("run") {
        Some(run) => run,
        None => &result.summary,
    };
    if !summary.is_null() {
        let _ = writeln!(out, "  run summary: {summary}");
    }
    for note in &report.notes {
        let _ = writeln!(out, "  {note}");
    }
    for target in &report.targets {
        let verdict = if target.pass { "pass" } else { "MISS" };
        let _ = writeln!(out, "  [{verdict}] {}: {}", target.name, target.measured);
    }
}
