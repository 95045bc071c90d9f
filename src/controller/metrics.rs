//! Prometheus metrics (prometheus-client). Labels carry kinds, resource names, endpoints and
//! reasons — never personal data.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::upstream::{RequestObserver, RequestRecord};

/// Labels of per-resource series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    kind: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    kind: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    api: String,
    endpoint: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecordLabels {
    kind: String,
    action: String,
}

/// All metrics of the operator, registered in one registry.
pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: Family<KindLabels, Histogram>,
    upstream_requests: Family<UpstreamLabels, Counter>,
    upstream_duration: Family<KindLabels, Histogram>,
    records: Family<RecordLabels, Counter>,
    last_success: Family<ResourceLabels, Gauge>,
    leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("reteach_personio");
        let runs = Family::<RunLabels, Counter>::default();
        registry.register("sync_runs", "Sync runs by kind and result", runs.clone());
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "sync_failures",
            "Failed sync runs by kind and condition reason",
            failures.clone(),
        );
        let duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.05, 2.0, 16))
        });
        registry.register(
            "sync_run_duration_seconds",
            "Duration of sync runs",
            duration.clone(),
        );
        let upstream_requests = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream_requests",
            "Requests to Personio and reteach by API, endpoint and HTTP status (0 = no response)",
            upstream_requests.clone(),
        );
        let upstream_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        registry.register(
            "upstream_request_duration_seconds",
            "Latency of upstream requests by API",
            upstream_duration.clone(),
        );
        let records = Family::<RecordLabels, Counter>::default();
        registry.register(
            "records",
            "Records written upstream by kind and action (created, updated, uploaded, failed)",
            records.clone(),
        );
        let last_success = Family::<ResourceLabels, Gauge>::default();
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last successful run per resource",
            last_success.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica does the work (holds the Lease, or runs without leader election), 0 while it stands by",
            leader.clone(),
        );
        Self {
            registry,
            runs,
            failures,
            duration,
            upstream_requests,
            upstream_duration,
            records,
            last_success,
            leader,
        }
    }

    /// Records whether this replica does the work (holds the Lease) or stands by.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Records a finished run.
    pub fn run_finished(
        &self,
        resource: &ResourceLabels,
        elapsed: Duration,
        failure: Option<&str>,
    ) {
        let kind = resource.kind.clone();
        let result = if failure.is_some() {
            "failure"
        } else {
            "success"
        };
        self.runs
            .get_or_create(&RunLabels {
                kind: kind.clone(),
                result: result.into(),
            })
            .inc();
        self.duration
            .get_or_create(&KindLabels { kind: kind.clone() })
            .observe(elapsed.as_secs_f64());
        match failure {
            Some(reason) => {
                self.failures
                    .get_or_create(&FailureLabels {
                        kind,
                        reason: reason.to_string(),
                    })
                    .inc();
            }
            None => {
                self.last_success
                    .get_or_create(resource)
                    .set(chrono::Utc::now().timestamp());
            }
        }
    }

    /// Counts records written upstream.
    pub fn records(&self, kind: &str, action: &str, count: i64) {
        if count > 0 {
            self.records
                .get_or_create(&RecordLabels {
                    kind: kind.into(),
                    action: action.into(),
                })
                .inc_by(count as u64);
        }
    }

    /// Drops the per-resource series of a deleted resource.
    pub fn forget(&self, resource: &ResourceLabels) {
        self.last_success.remove(resource);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Feeds upstream requests into the metrics.
pub struct MetricsObserver(pub Arc<Metrics>);

impl RequestObserver for MetricsObserver {
    fn observe(&self, record: RequestRecord) {
        self.0
            .upstream_requests
            .get_or_create(&UpstreamLabels {
                api: record.api.into(),
                endpoint: record.endpoint.into(),
                status: record.status.to_string(),
            })
            .inc();
        self.0
            .upstream_duration
            .get_or_create(&KindLabels {
                kind: record.api.into(),
            })
            .observe(record.elapsed.as_secs_f64());
    }
}
