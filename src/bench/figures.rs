//! What a scenario is judged by: the lower bound on its wall time and the targets of issue 8.

use std::time::Duration;

use super::child::ChildResult;
use super::clients::scaled_reteach_rate;
use crate::jobs::employee::WRITE_CONCURRENCY;
use crate::personio::PersonioRateLimits;

/// Personio endpoint names as the client records them.
pub use crate::personio::endpoints as personio;
/// reteach endpoint names as the client records them.
pub use crate::reteach::endpoints as reteach;

/// The shortest wall time the requests a run made could possibly take.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    /// Seconds.
    pub secs: f64,
    /// What binds: latency or which rate limit.
    pub binding: String,
}

/// Sequential `requests` at `latency` each, or paced by a token bucket (`rate` per second after
/// `burst`), whichever is slower.
fn phase(requests: usize, concurrency: usize, latency: f64, rate: f64, burst: f64) -> (f64, f64) {
    let n = requests as f64;
    let by_latency = n * latency / concurrency.max(1) as f64;
    let by_rate = if rate > 0.0 {
        (n - burst).max(0.0) / rate
    } else {
        0.0
    };
    (by_latency, by_rate)
}

fn per_second(per_minute: f64) -> f64 {
    per_minute / 60.0
}

/// An EmployeeSync run: Personio reads one after another, then reteach reads one after another,
/// then reteach writes [`WRITE_CONCURRENCY`] at a time. Each part takes at least its latency
/// bound and at least its rate-limit bound; the parts add up.
pub fn employee_bound(result: &ChildResult, latency: Duration, time_scale: f64) -> Bound {
    let latency = latency.as_secs_f64();
    let limits = PersonioRateLimits::scaled(time_scale);
    let auth = result.count(personio::AUTH) as f64 * latency;
    let (p_latency, p_rate) = phase(
        result.count(personio::EMPLOYEES),
        1,
        latency,
        per_second(limits.employees.per_minute),
        f64::from(limits.employees.burst),
    );
    let reads =
        result.count(reteach::AUTH) + result.count(reteach::LIST) + result.count(reteach::LOOKUP);
    let writes = result.count(reteach::CREATE) + result.count(reteach::UPDATE);
    let rate = f64::from(scaled_reteach_rate(time_scale));
    let (r_latency, _) = phase(reads, 1, latency, 0.0, 0.0);
    let (w_latency, _) = phase(writes, WRITE_CONCURRENCY, latency, 0.0, 0.0);
    let (_, r_rate) = phase(reads + writes, 1, latency, rate, rate);
    let reteach_latency = r_latency + w_latency;
    let mut binding = Vec::new();
    binding.push(if p_rate > p_latency {
        "Personio employees limit"
    } else {
        "Personio latency"
    });
    binding.push(if r_rate > reteach_latency {
        "reteach client limit"
    } else {
        "reteach latency"
    });
    Bound {
        secs: auth + p_latency.max(p_rate) + reteach_latency.max(r_rate),
        binding: binding.join(" + "),
    }
}

/// The upload rate limit alone: `uploads` at Personio's 60/min (scaled), burst 1.
pub fn upload_bound(uploads: usize, time_scale: f64) -> f64 {
    let limits = PersonioRateLimits::scaled(time_scale);
    phase(
        uploads,
        1,
        0.0,
        per_second(limits.uploads.per_minute),
        f64::from(limits.uploads.burst),
    )
    .1
}

/// A CertificateSync run handles one certificate at a time (download, then upload), so every
/// request waits for the one before; uploads are paced by Personio's 60/min and downloads by
/// the reteach client's limit. The slowest of the three binds.
pub fn certificate_bound(result: &ChildResult, latency: Duration, time_scale: f64) -> Bound {
    let chain = result.total_requests() as f64 * latency.as_secs_f64();
    let uploads = upload_bound(result.count(personio::UPLOAD), time_scale);
    let rate = f64::from(scaled_reteach_rate(time_scale));
    let reteach_requests = result.count(reteach::AUTH)
        + result.count(reteach::PARTICIPATIONS)
        + result.count(reteach::DOWNLOAD);
    let (_, downloads) = phase(reteach_requests, 1, 0.0, rate, rate);
    let candidates = [
        (chain, "latency (one certificate at a time)"),
        (uploads, "Personio upload limit"),
        (downloads, "reteach client limit"),
    ];
    let (secs, binding) =
        candidates.into_iter().fold(
            (0.0, ""),
            |best, next| if next.0 > best.0 { next } else { best },
        );
    Bound {
        secs,
        binding: binding.to_string(),
    }
}

/// One target of issue 8 and how the run did against it.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// e.g. `requests ≤ 1.02 × minimum`.
    pub name: String,
    /// Met?
    pub pass: bool,
    /// The measured value.
    pub measured: String,
}

impl Target {
    /// A target met when `pass`.
    pub fn new(name: impl Into<String>, pass: bool, measured: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            pass,
            measured: measured.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::child::EndpointCount;

    fn result(counts: &[(&str, usize)]) -> ChildResult {
        ChildResult {
            requests: counts
                .iter()
                .map(|(endpoint, count)| EndpointCount {
                    api: "x".into(),
                    endpoint: (*endpoint).into(),
                    count: *count,
                })
                .collect(),
            ..ChildResult::default()
        }
    }

    #[test]
    fn writes_hide_latency_behind_concurrency() {
        let run = result(&[(reteach::CREATE, 400)]);
        // 400 × 20 ms ÷ 4 = 2 s; the client limit (10/s × 1000) does not bind.
        let bound = employee_bound(&run, Duration::from_millis(20), 1000.0);
        assert!((bound.secs - 2.0).abs() < 1e-9, "{bound:?}");
        assert_eq!(bound.binding, "Personio latency + reteach latency");
    }

    #[test]
    fn reteach_client_limit_binds_at_real_time() {
        let run = result(&[(reteach::CREATE, 1010)]);
        // (1010 − burst 10) ÷ 10/s = 100 s.
        let bound = employee_bound(&run, Duration::from_millis(20), 1.0);
        assert!((bound.secs - 100.0).abs() < 1e-9, "{bound:?}");
        assert!(bound.binding.ends_with("reteach client limit"));
    }

    #[test]
    fn uploads_are_paced_at_sixty_per_minute_times_the_scale() {
        // 61 uploads, burst 1: 60 waits of 1 s at real time, of 0.1 s at time scale 10.
        assert!((upload_bound(61, 1.0) - 60.0).abs() < 1e-9);
        assert!((upload_bound(61, 10.0) - 6.0).abs() < 1e-9);
    }

    #[test]
    fn upload_limit_binds_a_backfill_at_moderate_time_scale() {
        let run = result(&[
            (personio::UPLOAD, 1000),
            (reteach::DOWNLOAD, 1000),
            (reteach::PARTICIPATIONS, 4),
        ]);
        let bound = certificate_bound(&run, Duration::from_millis(20), 10.0);
        assert_eq!(bound.binding, "Personio upload limit");
        assert!((bound.secs - 99.9).abs() < 1e-9, "{bound:?}");
    }
}
