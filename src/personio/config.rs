//! What a [`super::PersonioClient`] is built from, and Personio's published rate limits.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::upstream::{
    BudgetShare, ClientCredentials, NoopObserver, RequestObserver, RetryPolicy, TlsOptions,
};

/// Settings of one Personio client (one tenant credential). `Debug` shows no credential.
#[derive(Clone, Debug)]
pub struct PersonioConfig {
    /// e.g. `https://api.personio.de` (a path prefix is kept, for proxies).
    pub base_url: String,
    /// API credential id and secret (Settings → Integrations → API credentials); never logged.
    pub credentials: PersonioCredentials,
    /// Sent as `X-Personio-App-ID` on every call (Personio asks for UPPER_SNAKE_CASE).
    pub app_id: String,
    /// TLS, CA bundle, plain-http opt-in and request timeout.
    pub tls: TlsOptions,
    /// Client-side rate limits per endpoint.
    pub limits: PersonioRateLimits,
    /// Retries of idempotent calls; uploads are always sent once.
    pub retry: RetryPolicy,
    /// Told about every request (metrics, tests).
    pub observer: Arc<dyn RequestObserver>,
    /// Which API employees are read through.
    pub employee_api: EmployeeApi,
    /// The credential's share of the process-wide budget (Personio's per-IP limit); `None`:
    /// only the per-endpoint limits.
    pub budget: Option<BudgetShare>,
}

/// A Personio API credential: its client id and client secret.
pub type PersonioCredentials = ClientCredentials;

/// Which Personio API the employee listing uses (`spec.personio.api`); documents always go
/// through v1 (v2 has no upload and no category list).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EmployeeApi {
    /// `GET /v1/company/employees`: one request per 100 employees with names of departments and
    /// offices, and a change feed that covers every attribute.
    #[default]
    V1,
    /// `GET /v2/persons` plus one employment request per person and org-unit/workplace look-ups
    /// (see `personio::persons`).
    V2,
}

impl PersonioConfig {
    /// A configuration with Personio's limits, default retries and no observer.
    pub fn new(base_url: impl Into<String>, credentials: PersonioCredentials) -> Self {
        Self {
            base_url: base_url.into(),
            credentials,
            app_id: DEFAULT_APP_ID.to_string(),
            tls: TlsOptions::default(),
            limits: PersonioRateLimits::default(),
            retry: RetryPolicy::default(),
            observer: Arc::new(NoopObserver),
            employee_api: EmployeeApi::V1,
            budget: None,
        }
    }
}

/// The `X-Personio-App-ID` this operator sends unless configured otherwise.
pub const DEFAULT_APP_ID: &str = "RETEACH_PERSONIO_OPERATOR";

/// A token-bucket limit: `per_minute` sustained, up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Requests per minute (fractions allowed, for scaled-down time).
    pub per_minute: f64,
    /// Requests that may be sent back to back.
    pub burst: u32,
}

impl RateLimit {
    /// A governor limiter for this limit; an unusable limit (zero, NaN) means "no faster than 1/min".
    pub fn limiter(&self) -> DefaultDirectRateLimiter {
        let period = if self.per_minute.is_finite() && self.per_minute > 0.0 {
            Duration::from_secs_f64((60.0 / self.per_minute).max(1e-6))
        } else {
            Duration::from_secs(60)
        };
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
            .allow_burst(burst);
        RateLimiter::direct(quota)
    }
}

/// Client-side limits per Personio endpoint (README §6), so the client stays under Personio's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PersonioRateLimits {
    /// `GET /v1/company/employees` (and the single-employee call): 300/min, burst 15.
    pub employees: RateLimit,
    /// `POST /v1/company/documents`: 60/min, one at a time.
    pub uploads: RateLimit,
    /// `POST /v1/auth`: 60/min.
    pub auth: RateLimit,
    /// `POST /v2/auth/token`: 150/min (then Personio accepts only 1/s for 60 s).
    pub v2_auth: RateLimit,
    /// v2 document listing and document categories: 150/min.
    pub documents: RateLimit,
}

impl Default for PersonioRateLimits {
    fn default() -> Self {
        Self {
            employees: RateLimit {
                per_minute: 300.0,
                burst: 15,
            },
            uploads: RateLimit {
                per_minute: 60.0,
                burst: 1,
            },
            auth: RateLimit {
                per_minute: 60.0,
                burst: 5,
            },
            v2_auth: RateLimit {
                per_minute: 150.0,
                burst: 5,
            },
            documents: RateLimit {
                per_minute: 150.0,
                burst: 10,
            },
        }
    }
}

impl PersonioRateLimits {
    /// The default limits with time running `factor` times faster (the benchmark's time scale):
    /// every rate is multiplied by `factor`, bursts stay.
    pub fn scaled(factor: f64) -> Self {
        let scale = |limit: RateLimit| RateLimit {
            per_minute: limit.per_minute * factor,
            ..limit
        };
        let default = Self::default();
        Self {
            employees: scale(default.employees),
            uploads: scale(default.uploads),
            auth: scale(default.auth),
            v2_auth: scale(default.v2_auth),
            documents: scale(default.documents),
        }
    }

    /// Limits high enough never to wait (tests against the simulator).
    pub fn unlimited() -> Self {
        let open = RateLimit {
            per_minute: 6_000_000.0,
            burst: 100_000,
        };
        Self {
            employees: open,
            uploads: open,
            auth: open,
            v2_auth: open,
            documents: open,
        }
    }
}

/// One limiter per endpoint, owned by the client so limits span runs.
pub(super) struct Limiters {
    pub employees: DefaultDirectRateLimiter,
    pub uploads: DefaultDirectRateLimiter,
    pub auth: DefaultDirectRateLimiter,
    pub v2_auth: DefaultDirectRateLimiter,
    pub documents: DefaultDirectRateLimiter,
}

impl Limiters {
    pub fn new(limits: &PersonioRateLimits) -> Self {
        Self {
            employees: limits.employees.limiter(),
            uploads: limits.uploads.limiter(),
            auth: limits.auth.limiter(),
            v2_auth: limits.v2_auth.limiter(),
            documents: limits.documents.limiter(),
        }
    }

    /// The limiter a read in `lane` waits for.
    pub fn of(&self, lane: Lane) -> Option<&DefaultDirectRateLimiter> {
        match lane {
            Lane::Employees => Some(&self.employees),
            Lane::Documents => Some(&self.documents),
            Lane::Unlimited => None,
        }
    }
}

/// Which limit a read counts against: employee reads (v1 listing, v2 persons, employments, org
/// units, workplaces), document reads (listing, categories), or none (webhook management).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lane {
    Employees,
    Documents,
    Unlimited,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_multiplies_rates_and_keeps_bursts() {
        let scaled = PersonioRateLimits::scaled(60.0);
        assert_eq!(scaled.employees.per_minute, 18_000.0);
        assert_eq!(scaled.employees.burst, 15);
        assert_eq!(scaled.uploads.per_minute, 3_600.0);
        assert_eq!(scaled.uploads.burst, 1);
    }

    #[test]
    fn v2_tokens_have_their_own_published_limit() {
        let limits = PersonioRateLimits::default();
        assert_eq!(
            limits.v2_auth.per_minute, 150.0,
            "POST /v2/auth/token: 150/min"
        );
        assert_eq!(limits.auth.per_minute, 60.0, "POST /v1/auth: 60/min");
        assert_eq!(PersonioRateLimits::scaled(2.0).v2_auth.per_minute, 300.0);
    }

    #[test]
    fn burst_is_available_at_once() {
        let limiter = PersonioRateLimits::default().employees.limiter();
        for _ in 0..15 {
            assert!(limiter.check().is_ok());
        }
        assert!(limiter.check().is_err());
    }

    #[test]
    fn odd_limits_do_not_panic() {
        for per_minute in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e12] {
            let _ = RateLimit {
                per_minute,
                burst: 0,
            }
            .limiter();
        }
    }

    #[test]
    fn debug_hides_credentials() {
        let config = PersonioConfig::new(
            "https://api.personio.de",
            PersonioCredentials::new("id-123", "secret-456"),
        );
        let printed = format!("{config:?}");
        assert!(!printed.contains("id-123"));
        assert!(!printed.contains("secret-456"));
    }
}
