//! Counts requests by endpoint in constant memory. The benchmark measures the peak RSS of the
//! sync code, so its own bookkeeping must not grow with the number of requests (a log of every
//! request would add ~1 MiB per 20,000 requests to the figure it reports).

use std::sync::{Arc, Mutex};

use crate::upstream::{RequestObserver, RequestRecord};

/// Requests to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointTally {
    /// `personio` or `reteach`.
    pub api: &'static str,
    /// The fixed endpoint name.
    pub endpoint: &'static str,
    /// Requests sent.
    pub count: usize,
}

#[derive(Debug, Default)]
struct Counts {
    /// In order of the first request to each endpoint.
    endpoints: Vec<EndpointTally>,
    too_many_requests: usize,
}

/// A [`RequestObserver`] that keeps one counter per endpoint and one for 429 answers.
#[derive(Clone, Debug, Default)]
pub struct RequestTally {
    counts: Arc<Mutex<Counts>>,
}

impl RequestTally {
    /// Requests per endpoint, in order of the first request to each.
    pub fn endpoints(&self) -> Vec<EndpointTally> {
        self.counts
            .lock()
            .map(|counts| counts.endpoints.clone())
            .unwrap_or_default()
    }

    /// Answers with status 429.
    pub fn too_many_requests(&self) -> usize {
        self.counts
            .lock()
            .map(|counts| counts.too_many_requests)
            .unwrap_or_default()
    }
}

impl RequestObserver for RequestTally {
    fn observe(&self, record: RequestRecord) {
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        if record.status == 429 {
            counts.too_many_requests += 1;
        }
        match counts
            .endpoints
            .iter_mut()
            .find(|e| e.api == record.api && e.endpoint == record.endpoint)
        {
            Some(tally) => tally.count += 1,
            None => counts.endpoints.push(EndpointTally {
                api: record.api,
                endpoint: record.endpoint,
                count: 1,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record(api: &'static str, endpoint: &'static str, status: u16) -> RequestRecord {
        RequestRecord {
            api,
            endpoint,
            status,
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn counts_by_endpoint_in_first_seen_order() {
        let tally = RequestTally::default();
        tally.observe(record("reteach", "GET /participation", 200));
        tally.observe(record("personio", "POST /v1/auth", 200));
        tally.observe(record("reteach", "GET /participation", 429));
        tally.observe(record("reteach", "GET /participation", 200));
        let endpoints = tally.endpoints();
        assert_eq!(
            endpoints
                .iter()
                .map(|e| (e.endpoint, e.count))
                .collect::<Vec<_>>(),
            [("GET /participation", 3), ("POST /v1/auth", 1)]
        );
        assert_eq!(tally.too_many_requests(), 1);
    }
}
