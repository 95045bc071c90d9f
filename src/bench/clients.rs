//! The real upstream clients, configured as the operator configures them, but pointed at the
//! loopback simulators and with their rate limits scaled by the benchmark's time scale.

use std::sync::Arc;
use std::time::Duration;

use super::tally::RequestTally;
use crate::personio::{PersonioClient, PersonioConfig, PersonioError, PersonioRateLimits};
use crate::reteach::{ReteachClient, ReteachConfig, ReteachError, DEFAULT_REQUESTS_PER_SECOND};
use crate::sim::personio::PersonioSimConfig;
use crate::sim::reteach::SimCredentials;
use crate::upstream::{RetryPolicy, TlsOptions};

/// Per-request timeout of the benchmark clients (generous: waits in the limiter do not count).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How fast the clients may go.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Personio's per-endpoint limits.
    pub personio: PersonioRateLimits,
    /// The reteach client's limit (requests per second, also its burst).
    pub reteach_per_second: u32,
}

impl Limits {
    /// The operator's limits with time running `time_scale` times faster (measured runs).
    pub fn scaled(time_scale: f64) -> Self {
        Self {
            personio: PersonioRateLimits::scaled(time_scale),
            reteach_per_second: scaled_reteach_rate(time_scale),
        }
    }

    /// Unmeasured setup: Personio's scaled limits (its simulator enforces them), reteach without
    /// a limit (its simulator's limit is switched off meanwhile).
    pub fn setup(time_scale: f64) -> Self {
        Self {
            personio: PersonioRateLimits::scaled(time_scale),
            reteach_per_second: 1_000_000,
        }
    }
}

/// [`DEFAULT_REQUESTS_PER_SECOND`] with time running `time_scale` times faster (at least 1/s).
pub fn scaled_reteach_rate(time_scale: f64) -> u32 {
    let rate = (f64::from(DEFAULT_REQUESTS_PER_SECOND) * time_scale).round();
    if rate.is_finite() && rate >= 1.0 {
        rate.min(f64::from(u32::MAX)) as u32
    } else {
        1
    }
}

fn tls() -> TlsOptions {
    TlsOptions {
        allow_insecure_http: true,
        timeout: Some(REQUEST_TIMEOUT),
        ..TlsOptions::default()
    }
}

/// A Personio client for the simulator at `base_url` that reports every request to `log`.
pub fn personio(
    base_url: &str,
    limits: Limits,
    log: &RequestTally,
) -> Result<PersonioClient, PersonioError> {
    let sim = PersonioSimConfig::default();
    let mut config = PersonioConfig::new(base_url, sim.client_id, sim.client_secret);
    config.tls = tls();
    config.limits = limits.personio;
    config.retry = RetryPolicy::default();
    config.observer = Arc::new(log.clone());
    PersonioClient::new(config)
}

/// A reteach client for the simulator at `base_url` that reports every request to `log`.
pub fn reteach(
    base_url: &str,
    limits: Limits,
    log: &RequestTally,
) -> Result<ReteachClient, ReteachError> {
    let sim = SimCredentials::default();
    let mut config =
        ReteachConfig::new(base_url, sim.client_id, sim.client_secret, sim.client_code);
    config.tls = tls();
    config.requests_per_second = limits.reteach_per_second;
    config.retry = RetryPolicy::default();
    config.observer = Arc::new(log.clone());
    ReteachClient::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reteach_rate_scales_with_time() {
        assert_eq!(scaled_reteach_rate(1.0), DEFAULT_REQUESTS_PER_SECOND);
        assert_eq!(scaled_reteach_rate(15.0), 150);
        assert_eq!(scaled_reteach_rate(0.0), 1);
        assert_eq!(scaled_reteach_rate(f64::NAN), 1);
    }
}
