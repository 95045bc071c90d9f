//! Prometheus metrics (prometheus-client). Labels carry kinds, resource names, endpoints and
//! reasons — never personal data.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};

use crate::upstream::{RequestObserver, RequestRecord};

/// Labels of per-resource series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// Runs by the resource's namespace (bounded by the tenants, never by names), kind and result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    kind: String,
    namespace: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    kind: String,
    namespace: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// The upstream API (`personio`, `reteach`): the same label name on the request counter and the
/// latency histogram, so the two join in PromQL.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    api: String,
    endpoint: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    source: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecordLabels {
    kind: String,
    namespace: String,
    action: String,
}

/// All metrics of the operator, registered in one registry.
pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: Family<KindLabels, Histogram>,
    upstream_requests: Family<UpstreamLabels, Counter>,
    upstream_duration: Family<ApiLabels, Histogram>,
    records: Family<RecordLabels, Counter>,
    last_success: Family<ResourceLabels, Gauge>,
    effective_interval: Family<ResourceLabels, Gauge>,
    webhook_requests: Family<WebhookLabels, Counter>,
    /// The resources that have per-resource series, so those of deleted resources can be found.
    resources: Mutex<HashSet<ResourceLabels>>,
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
        let r = &mut registry;
        Self {
            runs: registered(r, "sync_runs", "Sync runs by kind, namespace and result"),
            failures: registered(
                r,
                "sync_failures",
                "Failed sync runs by kind, namespace and condition reason",
            ),
            duration: registered_as(
                r,
                "sync_run_duration_seconds",
                "Duration of sync runs",
                Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.05, 2.0, 16))),
            ),
            upstream_requests: registered(
                r,
                "upstream_requests",
                "Requests to Personio and reteach by API, endpoint and HTTP status (0 = no response)",
            ),
            upstream_duration: registered_as(
                r,
                "upstream_request_duration_seconds",
                "Latency of upstream requests by API",
                Family::new_with_constructor(|| {
                    Histogram::new(exponential_buckets(0.005, 2.0, 14))
                }),
            ),
            records: registered(
                r,
                "records",
                "Records by kind, namespace and action (EmployeeSync: created, updated, failed; CertificateSync: uploaded, already_present, pending_pdf, unknown_employee, failed, set_aside, unverified)",
            ),
            last_success: registered(
                r,
                "last_success_timestamp_seconds",
                "Unix time of the last successful run per resource",
            ),
            effective_interval: registered(
                r,
                "sync_effective_interval_seconds",
                "Seconds between the runs of a resource as scheduled: its spec.interval, or longer while the configured intervals need more than the Personio budget (--personio-budget-per-minute) allows",
            ),
            webhook_requests: registered(
                r,
                "webhook_requests",
                "Requests to the webhook receiver by source (personio, reteach) and outcome (accepted, ignored, or the rejection: unauthenticated, replayed, oversized, malformed, unsupported_media_type)",
            ),
            leader: registered(
                r,
                "leader",
                "1 while this replica does the work (holds the Lease, or runs without leader election), 0 while it stands by",
            ),
            resources: Mutex::default(),
            registry,
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
                namespace: resource.namespace.clone(),
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
                        namespace: resource.namespace.clone(),
                        reason: reason.to_string(),
                    })
                    .inc();
            }
            None => {
                self.tracked().insert(resource.clone());
                self.last_success
                    .get_or_create(resource)
                    .set(chrono::Utc::now().timestamp());
            }
        }
    }

    /// Records the interval a resource's next run is scheduled after.
    pub fn effective_interval(&self, resource: &ResourceLabels, interval: Duration) {
        self.tracked().insert(resource.clone());
        self.effective_interval
            .get_or_create(resource)
            .set(i64::try_from(interval.as_secs()).unwrap_or(i64::MAX));
    }

    /// Counts records of a run of a resource in `namespace` by what happened to them.
    pub fn records(&self, namespace: &str, kind: &str, action: &str, count: i64) {
        if count > 0 {
            self.records
                .get_or_create(&RecordLabels {
                    kind: kind.into(),
                    namespace: namespace.into(),
                    action: action.into(),
                })
                .inc_by(count as u64);
        }
    }

    /// Counts one request to the webhook receiver. Both labels come from fixed sets (never from
    /// the request), so a flood of junk cannot grow the series.
    pub fn webhook_request(&self, source: &'static str, outcome: &'static str) {
        self.webhook_requests
            .get_or_create(&WebhookLabels {
                source: source.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Drops the per-resource series of a deleted resource.
    pub fn forget(&self, resource: &ResourceLabels) {
        self.tracked().remove(resource);
        self.last_success.remove(resource);
        self.effective_interval.remove(resource);
    }

    /// Drops the per-resource series of every resource of `kind` in `namespace` (`None`: all
    /// namespaces) that `exists` says is gone; for deletions missed while a watch was down.
    pub fn forget_missing(
        &self,
        kind: &str,
        namespace: Option<&str>,
        exists: impl Fn(&ResourceLabels) -> bool,
    ) {
        let gone: Vec<ResourceLabels> = self
            .tracked()
            .iter()
            .filter(|r| r.kind == kind && namespace.is_none_or(|ns| r.namespace == ns))
            .filter(|r| !exists(r))
            .cloned()
            .collect();
        for resource in &gone {
            self.forget(resource);
        }
    }

    fn tracked(&self) -> std::sync::MutexGuard<'_, HashSet<ResourceLabels>> {
        self.resources.lock().unwrap_or_else(|p| p.into_inner())
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

/// Registers a new (default) `M` as `name` with `help` and hands back the handle to count into.
fn registered<M: Metric + Clone + Default>(registry: &mut Registry, name: &str, help: &str) -> M {
    registered_as(registry, name, help, M::default())
}

/// Registers `metric` as `name` with `help` and hands back the handle to count into.
fn registered_as<M: Metric + Clone>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    metric: M,
) -> M {
    registry.register(name, help, metric.clone());
    metric
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
            .get_or_create(&ApiLabels {
                api: record.api.into(),
            })
            .observe(record.elapsed.as_secs_f64());
    }
}

/// Removes the series of resources of `kind` when they are deleted: a metadata watch (no spec or
/// status is cached) sees deletions as they happen, and each (re-)list drops the series of
/// resources deleted while the watch was down. `on_deleted` hears of each deletion seen as it
/// happens (the webhook receivers close there). Runs until `shutdown`.
pub async fn forget_deleted<K>(
    api: kube::Api<kube::core::PartialObjectMeta<K>>,
    config: kube::runtime::watcher::Config,
    kind: &'static str,
    namespace: Option<String>,
    metrics: Arc<Metrics>,
    shutdown: tokio_util::sync::CancellationToken,
    on_deleted: impl Fn(&ResourceLabels) + Send + 'static,
) where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K: Send + Sync + 'static,
{
    use futures::StreamExt;
    use kube::runtime::watcher::{self, Event};
    use kube::runtime::WatchStreamExt;
    use kube::ResourceExt;

    let labels = |object: &kube::core::PartialObjectMeta<K>| ResourceLabels {
        kind: kind.into(),
        namespace: object.namespace().unwrap_or_default(),
        name: object.name_any(),
    };
    let events = watcher::watcher(api, config)
        .default_backoff()
        .take_until(shutdown.cancelled_owned());
    futures::pin_mut!(events);
    let mut listed: Option<HashSet<ResourceLabels>> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Delete(object)) => {
                let deleted = labels(&object);
                metrics.forget(&deleted);
                on_deleted(&deleted);
            }
            Ok(Event::Init) => listed = Some(HashSet::new()),
            Ok(Event::InitApply(object)) => {
                if let Some(listed) = listed.as_mut() {
                    listed.insert(labels(&object));
                }
            }
            Ok(Event::InitDone) => {
                if let Some(live) = listed.take() {
                    metrics.forget_missing(kind, namespace.as_deref(), |r| live.contains(r));
                }
            }
            Ok(Event::Apply(_)) => {}
            Err(error) => tracing::debug!(%error, kind, "metrics deletion watch"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(kind: &str, namespace: &str, name: &str) -> ResourceLabels {
        ResourceLabels {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn series_of(metrics: &Metrics, name: &str) -> usize {
        metrics
            .encode()
            .lines()
            .filter(|l| l.starts_with("reteach_personio_last_success_timestamp_seconds{"))
            .filter(|l| l.contains(&format!("name=\"{name}\"")))
            .count()
    }

    #[test]
    fn forgetting_a_deleted_resource_removes_its_series_only() {
        let metrics = Metrics::new();
        let gone = resource("EmployeeSync", "a", "gone");
        let kept = resource("EmployeeSync", "a", "kept");
        metrics.run_finished(&gone, Duration::from_secs(1), None);
        metrics.run_finished(&kept, Duration::from_secs(1), None);
        assert_eq!(series_of(&metrics, "gone"), 1);
        metrics.forget(&gone);
        assert_eq!(series_of(&metrics, "gone"), 0);
        assert_eq!(series_of(&metrics, "kept"), 1);
    }

    #[test]
    fn a_relist_forgets_resources_deleted_while_the_watch_was_down_in_its_own_scope_only() {
        let metrics = Metrics::new();
        let deleted = resource("CertificateSync", "a", "deleted");
        let listed = resource("CertificateSync", "a", "listed");
        let other_namespace = resource("CertificateSync", "b", "elsewhere");
        let other_kind = resource("EmployeeSync", "a", "deleted");
        for r in [&deleted, &listed, &other_namespace, &other_kind] {
            metrics.run_finished(r, Duration::from_secs(1), None);
        }
        metrics.forget_missing("CertificateSync", Some("a"), |r| r == &listed);
        let text = metrics.encode();
        assert_eq!(
            series_of(&metrics, "deleted"),
            1,
            "only the EmployeeSync:\n{text}"
        );
        assert!(text.contains("kind=\"EmployeeSync\",namespace=\"a\",name=\"deleted\""));
        assert_eq!(series_of(&metrics, "listed"), 1);
        assert_eq!(series_of(&metrics, "elsewhere"), 1);
    }

    #[test]
    fn request_counter_and_latency_histogram_name_the_api_alike() {
        let metrics = Arc::new(Metrics::new());
        MetricsObserver(metrics.clone()).observe(RequestRecord {
            api: "personio",
            endpoint: "GET /v1/company/employees",
            status: 200,
            elapsed: Duration::from_millis(20),
        });
        let text = metrics.encode();
        for family in [
            "reteach_personio_upstream_requests_total{",
            "reteach_personio_upstream_request_duration_seconds_count{",
        ] {
            let line = text
                .lines()
                .find(|l| l.starts_with(family))
                .unwrap_or_else(|| panic!("no {family} series:\n{text}"));
            assert!(line.contains("api=\"personio\""), "{line}");
            assert!(!line.contains("kind="), "{line}");
        }
    }
}
