//! One simulated customer in the parent process: a Personio and a reteach simulator on loopback
//! sharing a manual clock, with Personio's rate limits and the reteach limit scaled by the time
//! scale, and injectable latency.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::child::{employee_run, Upstream};
use super::clients::{scaled_reteach_rate, Limits};
use super::tally::RequestTally;
use crate::clock::{Clock, ManualClock};
use crate::jobs::EmployeeJobOutcome;
use crate::sim::personio::{PersonioSim, PersonioSimConfig, SharedIpLimit, SimRateLimits};
use crate::sim::reteach::{RateLimit, ReteachSim};
use crate::sim::RunningSim;

/// The simulators of one tenant.
pub struct Tenant {
    /// Moves only when the benchmark says so (drives `last_modified_at` and `updated_since`).
    pub clock: ManualClock,
    /// Personio, with its published per-endpoint limits.
    pub personio: PersonioSim,
    /// reteach.
    pub reteach: ReteachSim,
    /// Where the child finds them.
    pub upstream: Upstream,
    time_scale: f64,
    _servers: (RunningSim, RunningSim),
}

impl Tenant {
    /// Starts both simulators on free loopback ports, without latency.
    pub async fn start(start: DateTime<Utc>, time_scale: f64) -> std::io::Result<Self> {
        Self::start_with_ip_limit(start, time_scale, None).await
    }

    /// [`Self::start`] with Personio's per-IP limit shared with other tenants' simulators.
    pub async fn start_with_ip_limit(
        start: DateTime<Utc>,
        time_scale: f64,
        ip_limit: Option<SharedIpLimit>,
    ) -> std::io::Result<Self> {
        let clock = ManualClock::new(start);
        let personio = PersonioSim::new(PersonioSimConfig {
            rate_limits: Some(SimRateLimits::default()),
            time_scale,
            clock: Arc::new(clock.clone()),
            ip_limit,
            ..PersonioSimConfig::default()
        });
        let reteach = ReteachSim::new(Arc::new(clock.clone()));
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let personio_server = personio.start(loopback).await?;
        let reteach_server = reteach.start(loopback).await?;
        let upstream = Upstream {
            personio_url: personio_server.base_url(),
            reteach_url: reteach_server.base_url(),
        };
        let tenant = Self {
            clock,
            personio,
            reteach,
            upstream,
            time_scale,
            _servers: (personio_server, reteach_server),
        };
        tenant.limit_reteach(true);
        Ok(tenant)
    }

    /// Latency added to every request of both simulators.
    pub fn set_latency(&self, latency: Duration) {
        self.personio.control().set_latency(latency);
        self.reteach.control().set_latency(latency);
    }

    /// Switches reteach's server-side limit (the client's scaled limit, so an overshooting client
    /// gets 429s) on or off; off for unmeasured setup.
    pub fn limit_reteach(&self, on: bool) {
        let rate = scaled_reteach_rate(self.time_scale);
        self.reteach.set_rate_limit(on.then_some(RateLimit {
            per_second: rate,
            burst: rate,
        }));
    }

    /// Moves the clock and returns the new now.
    pub fn advance(&self, by: chrono::Duration) -> DateTime<Utc> {
        self.clock.advance(by);
        self.clock.now()
    }

    /// Users in the reteach simulator: what `status.reteachUsers` holds after a run that listed
    /// them all.
    pub fn reteach_users(&self) -> u64 {
        u64::try_from(self.reteach.customers().len()).unwrap_or(u64::MAX)
    }

    /// Now on the tenant's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// An unmeasured EmployeeSync run in this process, without reteach's rate limit (state for
    /// the runs that are measured): full without a `cursor`; `department_tags` as in
    /// [`employee_run`].
    pub async fn setup_run(
        &self,
        now: DateTime<Utc>,
        cursor: Option<DateTime<Utc>>,
        department_tags: Option<&[String]>,
    ) -> anyhow::Result<EmployeeJobOutcome> {
        self.limit_reteach(false);
        let outcome = employee_run(
            &self.upstream,
            Limits::setup(self.time_scale),
            &RequestTally::default(),
            now,
            (cursor, cursor.map(|_| self.reteach_users())),
            cursor.is_none(),
            department_tags,
        )
        .await;
        self.limit_reteach(true);
        outcome
    }

    /// The id of the Personio simulator's first document category.
    pub fn category_id(&self) -> anyhow::Result<i64> {
        self.personio
            .categories()
            .first()
            .map(|category| category.id)
            .ok_or_else(|| anyhow::anyhow!("the Personio simulator has no document category"))
    }
}
