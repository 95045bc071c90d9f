//! The real upstream clients, configured as the operator configures them, but pointed at the
//! loopback simulators and with their rate limits scaled by the benchmark's time scale.

use std::sync::Arc;
use std::time::Duration;

use super::child::Upstream;
use super::tally::RequestTally;
use crate::jobs::connection::{
    ClientOptions, ConnectionClients, PersonioCredentials, PersonioEndpoint, ReteachCredentials,
    ReteachEndpoint,
};
use crate::personio::{PersonioClient, PersonioRateLimits};
use crate::reteach::{ReteachClient, DEFAULT_REQUESTS_PER_SECOND};
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
pub fn builder(limits: Limits, log: &RequestTally) -> ConnectionClients {
    ConnectionClients::new(ClientOptions {
        observer: Arc::new(log.clone()),
        personio_limits: limits.personio,
        reteach_requests_per_second: limits.reteach_per_second,
        timeout: Some(REQUEST_TIMEOUT),
        ..ClientOptions::default()
    })
}

/// Both clients for the simulators of `upstream`, with `limits`, reporting every request to `log`.
pub fn for_upstream(
    upstream: &Upstream,
    limits: Limits,
    log: &RequestTally,
) -> anyhow::Result<(PersonioClient, ReteachClient)> {
    simulators(&builder(limits, log), upstream)
}

/// Both clients built by `builder` for the simulators of `upstream` (their default credentials).
pub fn simulators(
    builder: &ConnectionClients,
    upstream: &Upstream,
) -> anyhow::Result<(PersonioClient, ReteachClient)> {
    let personio = PersonioEndpoint::simulator(&upstream.personio_url);
    simulators_at(builder, &personio, &upstream.reteach_url)
}

/// Both clients built by `builder`, for the Personio simulator at `personio` (e.g. reading
/// employees through v2) and the reteach simulator at `reteach_url`, with the simulators'
/// default credentials.
pub fn simulators_at(
    builder: &ConnectionClients,
    personio: &PersonioEndpoint,
    reteach_url: &str,
) -> anyhow::Result<(PersonioClient, ReteachClient)> {
    let (personio_sim, reteach_sim) = (PersonioSimConfig::default(), SimCredentials::default());
    let personio_credentials =
        PersonioCredentials::new(personio_sim.client_id, personio_sim.client_secret);
    let reteach_credentials = ReteachCredentials::new(
        reteach_sim.client_id,
        reteach_sim.client_secret,
        reteach_sim.client_code,
    );
    let reteach = ReteachEndpoint::simulator(reteach_url);
    Ok((
        builder.personio(personio, &personio_credentials, None)?,
        builder.reteach(&reteach, &reteach_credentials, None)?,
    ))
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
