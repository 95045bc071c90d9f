//! A hook called once per upstream HTTP request, so metrics and tests can count calls without the
//! clients knowing about Prometheus.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One finished upstream request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// `personio` or `reteach`.
    pub api: &'static str,
    /// A fixed endpoint name, e.g. `GET /v1/company/employees` (never a URL with ids or queries).
    pub endpoint: &'static str,
    /// HTTP status, or 0 when no response arrived (timeout, reset).
    pub status: u16,
    pub elapsed: Duration,
}

/// Receives every upstream request the clients make.
pub trait RequestObserver: Send + Sync {
    fn observe(&self, record: RequestRecord);
}

// The configurations that hold an observer derive `Debug`; what it observes into is not shown.
impl std::fmt::Debug for dyn RequestObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestObserver")
    }
}

/// Observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl RequestObserver for NoopObserver {
    fn observe(&self, _record: RequestRecord) {}
}

/// Observer that keeps every record in memory (tests, demo, bench).
#[derive(Clone, Debug, Default)]
pub struct RequestLog {
    records: Arc<Mutex<Vec<RequestRecord>>>,
}

impl RequestLog {
    /// All records so far.
    pub fn records(&self) -> Vec<RequestRecord> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Forgets all records.
    pub fn clear(&self) {
        if let Ok(mut records) = self.records.lock() {
            records.clear();
        }
    }

    /// Number of requests to one endpoint.
    pub fn count(&self, endpoint: &str) -> usize {
        self.records()
            .iter()
            .filter(|r| r.endpoint == endpoint)
            .count()
    }
}

impl RequestObserver for RequestLog {
    fn observe(&self, record: RequestRecord) {
        if let Ok(mut records) = self.records.lock() {
            records.push(record);
        }
    }
}
