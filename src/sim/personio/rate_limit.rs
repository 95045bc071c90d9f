//! Per-endpoint token buckets like Personio's gateway (a Spring Cloud Gateway token bucket). A
//! refused request gets 429 — and, as observed on the real API, no `Retry-After`.

use std::time::Instant;

/// One bucket's shape: `capacity` requests at once, refilled at `per_minute`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketLimit {
    /// Requests accepted back to back.
    pub capacity: u32,
    /// Refill rate (before `time_scale`).
    pub per_minute: f64,
}

/// The limits of the simulated endpoints (README §6).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimRateLimits {
    /// `GET /v1/company/employees[/{id}]`: 300/min, burst 15.
    pub employees: BucketLimit,
    /// `POST /v1/company/documents`: 60/min.
    pub uploads: BucketLimit,
    /// `POST /v1/auth` and `POST /v2/auth/token`: 60/min (the client keeps v2 tokens under the
    /// published 150/min; one bucket here is the stricter test).
    pub auth: BucketLimit,
    /// v2 document listing: 150/min.
    pub documents: BucketLimit,
    /// The v2 person, employment, org-unit and workplace endpoints: a window per endpoint whose
    /// limit the answers announce (`x-ratelimit-*`; Personio publishes none for them).
    pub v2_window: super::announced::WindowLimit,
}

impl Default for SimRateLimits {
    fn default() -> Self {
        Self {
            employees: BucketLimit {
                capacity: 15,
                per_minute: 300.0,
            },
            uploads: BucketLimit {
                capacity: 60,
                per_minute: 60.0,
            },
            auth: BucketLimit {
                capacity: 60,
                per_minute: 60.0,
            },
            documents: BucketLimit {
                capacity: 150,
                per_minute: 150.0,
            },
            v2_window: super::announced::WindowLimit::default(),
        }
    }
}

/// The endpoint groups that have their own bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limited {
    /// Employee list and single employee.
    Employees,
    /// Document uploads.
    Uploads,
    /// v1 and v2 token endpoints.
    Auth,
    /// v2 document listing.
    Documents,
}

/// A token bucket on the real clock (rate limits are about wall time, even with a manual clock).
#[derive(Debug)]
pub(super) struct Bucket {
    limit: BucketLimit,
    time_scale: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl Bucket {
    pub fn new(limit: BucketLimit, time_scale: f64) -> Self {
        Self {
            limit,
            time_scale: if time_scale.is_finite() && time_scale > 0.0 {
                time_scale
            } else {
                1.0
            },
            tokens: f64::from(limit.capacity),
            refilled_at: Instant::now(),
        }
    }

    /// Takes one token; `false` = rate limited.
    pub fn try_take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled_at).as_secs_f64();
        let per_second = self.limit.per_minute.max(0.0) / 60.0 * self.time_scale;
        self.tokens = (self.tokens + elapsed * per_second).min(f64::from(self.limit.capacity));
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// All buckets of one simulator.
#[derive(Debug)]
pub(super) struct Buckets {
    employees: Bucket,
    uploads: Bucket,
    auth: Bucket,
    documents: Bucket,
}

impl Buckets {
    pub fn new(limits: &SimRateLimits, time_scale: f64) -> Self {
        Self {
            employees: Bucket::new(limits.employees, time_scale),
            uploads: Bucket::new(limits.uploads, time_scale),
            auth: Bucket::new(limits.auth, time_scale),
            documents: Bucket::new(limits.documents, time_scale),
        }
    }

    pub fn try_take(&mut self, endpoint: Limited) -> bool {
        match endpoint {
            Limited::Employees => self.employees.try_take(),
            Limited::Uploads => self.uploads.try_take(),
            Limited::Auth => self.auth.try_take(),
            Limited::Documents => self.documents.try_take(),
        }
    }
}

/// Personio's limit across every endpoint and every tenant: `per_minute` requests in any 60
/// seconds (divided by the time scale) from one IP address. One value shared by the simulators
/// of all tenants (clones share it), as every academy of one operator replica leaves through one
/// egress IP. Counted over a sliding window — stricter than a fixed one.
#[derive(Clone, Debug)]
pub struct SharedIpLimit {
    per_minute: usize,
    window: std::time::Duration,
    inner: std::sync::Arc<std::sync::Mutex<IpWindow>>,
}

#[derive(Debug, Default)]
struct IpWindow {
    accepted: std::collections::VecDeque<Instant>,
    refused: u64,
    total: u64,
    busiest_window: usize,
}

impl SharedIpLimit {
    /// `per_minute` requests per (scaled) minute.
    pub fn new(per_minute: usize, time_scale: f64) -> Self {
        let scale = if time_scale.is_finite() && time_scale > 0.0 {
            time_scale
        } else {
            1.0
        };
        Self {
            per_minute: per_minute.max(1),
            window: std::time::Duration::from_secs_f64(60.0 / scale),
            inner: std::sync::Arc::default(),
        }
    }

    /// Counts one request; `false` = over the limit (answered with 429).
    pub fn try_take(&self) -> bool {
        let now = Instant::now();
        let mut window = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        window.total += 1;
        while window
            .accepted
            .front()
            .is_some_and(|at| now.duration_since(*at) >= self.window)
        {
            window.accepted.pop_front();
        }
        if window.accepted.len() >= self.per_minute {
            window.refused += 1;
            return false;
        }
        window.accepted.push_back(now);
        window.busiest_window = window.busiest_window.max(window.accepted.len());
        true
    }

    /// Requests refused with 429 so far.
    pub fn refused(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).refused
    }

    /// Requests seen so far.
    pub fn total(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// Most requests accepted within one (scaled) minute.
    pub fn busiest_minute(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .busiest_window
    }

    /// The limit per minute.
    pub fn per_minute(&self) -> usize {
        self.per_minute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ip_limit_is_shared_by_every_clone() {
        let limit = SharedIpLimit::new(3, 1.0);
        let other_tenant = limit.clone();
        assert!(limit.try_take());
        assert!(other_tenant.try_take());
        assert!(limit.try_take());
        assert!(!other_tenant.try_take(), "the fourth request in a minute");
        assert_eq!(
            (limit.refused(), limit.total(), limit.busiest_minute()),
            (1, 4, 3)
        );
    }

    #[test]
    fn bucket_allows_its_capacity_then_refuses() {
        let mut bucket = Bucket::new(
            BucketLimit {
                capacity: 3,
                per_minute: 0.0,
            },
            1.0,
        );
        assert!(bucket.try_take());
        assert!(bucket.try_take());
        assert!(bucket.try_take());
        assert!(!bucket.try_take());
    }
}
