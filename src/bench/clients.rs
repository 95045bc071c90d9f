//! The real upstream clients, configured as the operator configures them, but pointed at the
//! loopback simulators and with their rate limits scaled by the benchmark's time scale.

use std::sync::Arc;
use std::time::Duration;

use super::tally::RequestTally;
use crate::jobs::connection::{
    ClientOptions, ConnectionClients, PersonioCredentials, PersonioEndpoint, ReteachCredentials,
    ReteachEndpoint,
};
use crate::personio::{PersonioClient, PersonioError, PersonioRateLimits};
use crate::reteach::{ReteachClient, ReteachError, DEFAULT_REQUESTS_PER_SECOND};
use crate::sim::personio::PersonioSimConfig;
use crate::sim::reteach::SimCredentials;

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

/// The operator's client settings with the benchmark's limits, timeout and request tally.
fn clients(limits: Limits, log: &RequestTally) -> ConnectionClients {
    ConnectionClients::new(ClientOptions {
        observer: Arc::new(log.clone()),
        personio_limits: limits.personio,
        reteach_requests_per_second: limits.reteach_per_second,
        timeout: Some(REQUEST_TIMEOUT),
        ..ClientOptions::default()
    })
}

/// A Personio client for the simulator at `base_url` that reports every request to `log`.
pub fn personio(
    base_url: &str,
    limits: Limits,
    log: &RequestTally,
) -> Result<PersonioClient, PersonioError> {
    simulator_personio(&clients(limits, log), base_url)
}

/// A Personio client for the simulator at `endpoint` (e.g. reading employees through v2) that
/// reports every request to `log`.
pub fn personio_at(
    endpoint: &PersonioEndpoint,
    limits: Limits,
    log: &RequestTally,
) -> Result<PersonioClient, PersonioError> {
    let sim = PersonioSimConfig::default();
    let credentials = PersonioCredentials {
        client_id: sim.client_id,
        client_secret: sim.client_secret,
    };
    clients(limits, log).personio(endpoint, &credentials, None)
}

/// A reteach client for the simulator at `base_url` that reports every request to `log`.
pub fn reteach(
    base_url: &str,
    limits: Limits,
    log: &RequestTally,
) -> Result<ReteachClient, ReteachError> {
    simulator_reteach(&clients(limits, log), base_url)
}

/// A Personio client built by `builder` for the simulator at `base_url` (its default credentials).
pub fn simulator_personio(
    builder: &ConnectionClients,
    base_url: &str,
) -> Result<PersonioClient, PersonioError> {
    let sim = PersonioSimConfig::default();
    let credentials = PersonioCredentials {
        client_id: sim.client_id,
        client_secret: sim.client_secret,
    };
    builder.personio(&PersonioEndpoint::simulator(base_url), &credentials, None)
}

/// A reteach client built by `builder` for the simulator at `base_url` (its default credentials).
pub fn simulator_reteach(
    builder: &ConnectionClients,
    base_url: &str,
) -> Result<ReteachClient, ReteachError> {
    let sim = SimCredentials::default();
    let credentials = ReteachCredentials {
        client_id: sim.client_id,
        client_secret: sim.client_secret,
        client_code: sim.client_code,
    };
    builder.reteach(&ReteachEndpoint::simulator(base_url), &credentials, None)
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
