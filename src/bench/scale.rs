//! Issue 18: many academies in one operator process. `pairs` scaled-down tenants (an EmployeeSync
//! and a CertificateSync each, one Personio and one reteach simulator each) as an operator sees
//! them right after a restart: every run is overdue. The child holds what the operator holds —
//! both kinds in watch caches (kube-runtime reflector stores, objects shaped as the apiserver
//! sends them), per-tenant clients in the operator's [`TenantCache`] over the shared HTTP pool —
//! and starts every run the way the controllers do: at its start-up spread offset
//! ([`StartupSpread`]) and through the run slots ([`RunSlots`]). It reports the peak number of
//! runs in flight, when each run started against its interval, and the resident memory.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::child::{ChildTask, Upstream, TIME_ZONE};
use super::clients::{self, Limits};
use super::figures::Target;
use super::memory::{mib, Memory};
use super::scenarios::{measure, pages, start_time, ScenarioReport, Settings, RETEACH_PAGE};
use super::tally::RequestTally;
use super::tenant::Tenant;
use super::Scenario;
use crate::api::{CertificateSync, EmployeeSync};
use crate::controller::lifecycle::RunContext;
use crate::controller::pacing::{RunSlots, SpreadInput, StartupSpread};
use crate::controller::schedule::DueReason;
use crate::controller::tenant_cache::{TenantCache, TenantKey};
use crate::jobs::{
    resolve_category, run_certificate_sync, run_employee_sync, CertificateJobInput,
    CertificateRunRequest, EmployeeJobInput, MemoryLedgerStore,
};
use crate::personio::PersonioClient;
use crate::reteach::ReteachClient;
use crate::sim::reteach::SimCustomer;

/// Resident memory allowed per EmployeeSync + CertificateSync pair above the baseline.
pub const PAIR_BUDGET_KIB: f64 = 32.0;
/// Resident memory allowed in all at 1,000 pairs, watch caches included.
pub const TOTAL_BUDGET_MIB: f64 = 96.0;
/// The default intervals (`spec.interval`) of the two kinds, in real time.
const EMPLOYEE_INTERVAL: Duration = Duration::from_secs(300);
const CERTIFICATE_INTERVAL: Duration = Duration::from_secs(1800);
/// Seed of the generated companies.
const SEED: u64 = 18;

/// One academy of the scale scenario.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Academy {
    /// Its simulators.
    pub upstream: Upstream,
    /// Personio document category of its CertificateSync.
    pub category_id: i64,
}

/// What the scale child is asked to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScaleTask {
    /// One per EmployeeSync + CertificateSync pair.
    pub academies: Vec<Academy>,
    /// Start of the runs on the simulators' clocks.
    pub now: DateTime<Utc>,
    /// `--max-concurrent-runs` of the operator.
    pub max_concurrent_runs: usize,
    /// Intervals run this many times faster.
    pub time_scale: f64,
}

/// When one run started and ended, in seconds after the child's start, and its interval.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct RunTiming {
    started: f64,
    interval: f64,
}

/// The scale scenario (parent side).
pub async fn scale(settings: &Settings, exe: &Path) -> anyhow::Result<ScenarioReport> {
    let pairs = settings.pairs.max(1);
    let employees = (settings.employees / pairs).max(1);
    let certificates = settings.certificates / pairs;
    eprintln!(
        "bench: {pairs} academies (EmployeeSync + CertificateSync) of {employees} employees and {certificates} certificates each"
    );
    let mut tenants = Vec::with_capacity(pairs);
    let mut academies = Vec::with_capacity(pairs);
    let mut minimum = 0;
    for n in 0..pairs {
        let (tenant, academy, academy_minimum) =
            academy(settings, n, employees, certificates).await?;
        minimum += academy_minimum;
        academies.push(academy);
        tenants.push(tenant);
    }
    let now = tenants
        .iter()
        .map(|tenant| tenant.advance(chrono::Duration::minutes(10)))
        .max()
        .unwrap_or_else(Utc::now);
    let task = ChildTask::Scale(Box::new(ScaleTask {
        academies,
        now,
        max_concurrent_runs: settings.max_concurrent_runs,
        time_scale: settings.time_scale,
    }));
    let refs: Vec<&Tenant> = tenants.iter().collect();
    let result = measure(&refs, settings, exe, task).await?;
    let baseline = measure(&[], settings, exe, ChildTask::Baseline).await?;
    let above = result
        .memory
        .current_kib
        .saturating_sub(baseline.memory.current_kib) as f64;
    let per_pair = above / pairs as f64;
    let peak_per_pair = result
        .memory
        .peak_kib
        .saturating_sub(baseline.memory.peak_kib) as f64
        / pairs as f64;
    let peak = mib(result.memory.peak_kib);
    let summary = &result.summary;
    let runs = summary["runs"].as_u64().unwrap_or(0);
    let late = summary["late"].as_u64().unwrap_or(u64::MAX);
    let peak_runs = summary["peakConcurrentRuns"].as_u64().unwrap_or(0);
    let uploaded = summary["uploaded"].as_i64().unwrap_or(-1);
    let mut targets = vec![
        Target::new(
            format!("≤ {PAIR_BUDGET_KIB} KiB per resource pair above the baseline, idle"),
            per_pair <= PAIR_BUDGET_KIB,
            format!("{per_pair:.1} KiB"),
        ),
        Target::new(
            "requests = minimum",
            result.total_requests() == minimum,
            format!("{} for {minimum}", result.total_requests()),
        ),
        Target::new(
            "zero 429s",
            result.too_many_requests == 0,
            result.too_many_requests.to_string(),
        ),
        Target::new(
            "every resource's first run started within its interval",
            runs == 2 * pairs as u64 && late == 0,
            format!("{runs} runs, {late} late"),
        ),
        Target::new(
            format!(
                "at most {} runs in flight",
                settings.max_concurrent_runs.max(1)
            ),
            settings.max_concurrent_runs == 0 || peak_runs <= settings.max_concurrent_runs as u64,
            peak_runs.to_string(),
        ),
        Target::new(
            "every certificate uploaded",
            uploaded == (certificates * pairs) as i64,
            uploaded.to_string(),
        ),
    ];
    if pairs >= 1_000 {
        targets.push(Target::new(
            format!("peak RSS ≤ {TOTAL_BUDGET_MIB} MiB at 1,000 pairs, watch caches included"),
            peak <= TOTAL_BUDGET_MIB,
            format!("{peak:.1} MiB"),
        ));
    }
    Ok(ScenarioReport {
        scenario: Scenario::Scale,
        minimum_rule: format!(
            "per academy: 1 Personio token + {} employee pages + 1 reteach token + customer pages (EmployeeSync, full, nothing to write) + 1 category list + 1 v2 token + one document listing per employee holding a certificate + {} participation pages + {certificates} downloads + {certificates} uploads (CertificateSync backfill); both resources share the academy's clients",
            pages(employees, 100),
            pages(certificates, RETEACH_PAGE),
        ),
        notes: vec![
            format!(
                "{} runs, peak {peak_runs} in flight (limit {}), first runs spread over {:.0} s (EmployeeSync) and {:.0} s (CertificateSync) = 5m and 30m at time scale {}; latest start {:.0} % into its interval",
                runs,
                settings.max_concurrent_runs,
                EMPLOYEE_INTERVAL.as_secs_f64() / settings.time_scale,
                CERTIFICATE_INTERVAL.as_secs_f64() / settings.time_scale,
                settings.time_scale,
                summary["latestStartShare"].as_f64().unwrap_or(f64::NAN) * 100.0,
            ),
            format!(
                "held: {} EmployeeSync + {} CertificateSync objects in watch caches, {} tenant client pairs, {} shared HTTP clients; RSS now {:.1} MiB, peak {peak:.1} MiB",
                pairs,
                pairs,
                summary["tenantClients"],
                summary["sharedHttpClients"],
                mib(result.memory.current_kib)
            ),
            format!(
                "baseline (a child that runs nothing): {:.1} MiB resident; idle after the runs (their connections closed) {:.1} MiB above it ≈ {per_pair:.1} KiB per pair; at the peak {peak_per_pair:.1} KiB per pair",
                mib(baseline.memory.current_kib),
                above / 1024.0,
            ),
        ],
        result,
        minimum,
        bound: None,
        targets,
    })
}

/// Starts and prepares one academy: its EmployeeSync has run once (every employee is a reteach
/// user), `certificates` completions wait for their first CertificateSync run.
async fn academy(
    settings: &Settings,
    n: usize,
    employees: usize,
    certificates: usize,
) -> anyhow::Result<(Tenant, Academy, usize)> {
    let tenant = Tenant::start(start_time(), settings.time_scale).await?;
    tenant.reteach.set_default_pdf_size(settings.pdf_bytes);
    tenant.personio.populate(employees, SEED + n as u64);
    let now = tenant.advance(chrono::Duration::minutes(10));
    tenant.limit_reteach(false);
    let setup = super::child::employee_run(
        &tenant.upstream,
        Limits::setup(settings.time_scale),
        &RequestTally::default(),
        now,
        (None, None),
        true,
    )
    .await;
    tenant.limit_reteach(true);
    setup?;
    let linked: Vec<SimCustomer> = tenant
        .reteach
        .customers()
        .into_iter()
        .filter(|c| c.external_id.is_some())
        .collect();
    if linked.is_empty() && certificates > 0 {
        anyhow::bail!("academy {n} has no linked reteach user to hold certificates");
    }
    let first = tenant.now() - chrono::Duration::days(30);
    for c in 0..certificates {
        let customer = &linked[c % linked.len()];
        tenant
            .reteach
            .add_completion(
                &customer.id,
                &format!("Course {c}"),
                first + chrono::Duration::seconds(c as i64),
                true,
            )
            .ok_or_else(|| anyhow::anyhow!("benchmark customer vanished"))?;
    }
    let category_id = tenant
        .personio
        .categories()
        .first()
        .map(|category| category.id)
        .ok_or_else(|| anyhow::anyhow!("the Personio simulator has no document category"))?;
    let holders = linked.len().min(certificates);
    let minimum = 1
        + pages(employees, 100)
        + 1
        + pages(tenant.reteach.customers().len(), RETEACH_PAGE)
        + 1
        + 1
        + holders
        + pages(certificates, RETEACH_PAGE)
        + 2 * certificates;
    let academy = Academy {
        upstream: tenant.upstream.clone(),
        category_id,
    };
    Ok((tenant, academy, minimum))
}

/// The clients of one academy, shared by its two resources (as the operator's cache shares them
/// between resources with the same credentials).
type AcademyClients = Arc<(PersonioClient, ReteachClient)>;

/// Child side: runs the scenario and reports what it saw, and the resident memory read while it
/// still holds the watch caches and the tenant clients (idle, after the runs).
pub async fn run_scale(
    task: &ScaleTask,
    limits: Limits,
    log: &RequestTally,
) -> anyhow::Result<(serde_json::Value, Memory)> {
    let time_scale = task.time_scale;
    // Connections idle out as fast as everything else runs (see the function's comment).
    crate::upstream::scale_idle_connection_timeout(time_scale);
    let t0 = Instant::now();
    let started = Utc::now();
    let mut employee_cache = Writer::<EmployeeSync>::default();
    let mut certificate_cache = Writer::<CertificateSync>::default();
    let employee_interval = EMPLOYEE_INTERVAL.div_f64(time_scale);
    let certificate_interval = CERTIFICATE_INTERVAL.div_f64(time_scale);
    let mut objects = Vec::with_capacity(task.academies.len());
    for (n, academy) in task.academies.iter().enumerate() {
        let employee = employee_sync(n, academy, started)?;
        let certificate = certificate_sync(n, academy, started)?;
        cache(&mut employee_cache, employee.clone());
        cache(&mut certificate_cache, certificate.clone());
        objects.push((employee, certificate));
    }
    let spread = StartupSpread {
        started,
        limit: CERTIFICATE_INTERVAL,
    };
    let slots = RunSlots::new(task.max_concurrent_runs);
    let clients: Arc<TenantCache<AcademyClients>> = Arc::default();
    let mut runs = tokio::task::JoinSet::new();
    for (index, (academy, (employee, certificate))) in
        task.academies.iter().zip(&objects).enumerate()
    {
        let shared = Shared {
            academy: academy.clone(),
            clients: clients.clone(),
            slots: slots.clone(),
            spread,
            limits,
            log: log.clone(),
            now: task.now,
            t0,
        };
        let uid = employee.metadata.uid.clone().unwrap_or_default();
        runs.spawn(shared.clone().employee(index, uid, employee_interval));
        let uid = certificate.metadata.uid.clone().unwrap_or_default();
        runs.spawn(shared.certificate(index, uid, certificate_interval));
    }
    let mut timings = Vec::new();
    let mut uploaded = 0;
    let mut statuses = Vec::new();
    while let Some(joined) = runs.join_next().await {
        let (timing, status) = joined??;
        timings.push(timing);
        if let RunStatus::Certificate(_, status) = &status {
            uploaded += status.last_run.as_ref().map_or(0, |run| run.uploaded);
        }
        statuses.push(status);
    }
    // What the watch caches hold after the runs: each object with the status it wrote.
    for status in statuses {
        match status {
            RunStatus::Employee(index, status) => {
                let mut object = objects[index].0.clone();
                object.status = Some(*status);
                cache(&mut employee_cache, object);
            }
            RunStatus::Certificate(index, status) => {
                let mut object = objects[index].1.clone();
                object.status = Some(*status);
                cache(&mut certificate_cache, object);
            }
        }
    }
    // The operator holds each object once, in its cache; these copies were the apiserver's side.
    drop(objects);
    let late = timings.iter().filter(|t| t.started >= t.interval).count();
    let latest_share = timings
        .iter()
        .map(|t| t.started / t.interval)
        .fold(0.0, f64::max);
    let held = (
        employee_cache.as_reader().len(),
        certificate_cache.as_reader().len(),
    );
    // Idle as between runs: the connections of the last runs close (the peak is kept apart).
    tokio::time::sleep(2 * crate::upstream::idle_connection_timeout() + Duration::from_secs(1))
        .await;
    let memory = Memory::read();
    let summary = serde_json::json!({
        "runs": timings.len(),
        "late": late,
        "latestStartShare": latest_share,
        "peakConcurrentRuns": slots.peak(),
        "uploaded": uploaded,
        "tenantClients": clients.len(),
        "sharedHttpClients": crate::upstream::HttpPool::shared().len(),
        "watchCache": [held.0, held.1],
    });
    // Everything above is still held here: the caches, the tenant clients, the shared pool.
    drop((employee_cache, certificate_cache, clients));
    Ok((summary, memory))
}

/// An object arriving in the watch cache, trimmed as the operator's watch streams trim it.
fn cache<K>(writer: &mut Writer<K>, mut object: K)
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    crate::controller::watch_cache::trim(&mut object);
    writer.apply_watcher_event(&Event::Apply(object));
}

/// The status a run leaves, for the watch cache.
enum RunStatus {
    Employee(usize, Box<crate::api::EmployeeSyncStatus>),
    Certificate(usize, Box<crate::api::CertificateSyncStatus>),
}

/// What every run task of the scale child needs.
#[derive(Clone)]
struct Shared {
    academy: Academy,
    clients: Arc<TenantCache<AcademyClients>>,
    slots: RunSlots,
    spread: StartupSpread,
    limits: Limits,
    log: RequestTally,
    now: DateTime<Utc>,
    t0: Instant,
}

impl Shared {
    /// Waits for the resource's start-up spread offset, then for a run slot.
    async fn turn(
        &self,
        uid: &str,
        interval: Duration,
    ) -> (crate::controller::pacing::RunSlot, RunTiming) {
        let input = SpreadInput {
            uid,
            created: Some(self.spread.started - chrono::Duration::days(1)),
            interval: Some(interval),
            next_sync_time: Some(self.spread.started - chrono::Duration::minutes(1)),
            reason: DueReason::IntervalElapsed,
        };
        if let Some(hold) = self.spread.hold(&input, Utc::now()) {
            tokio::time::sleep(hold).await;
        }
        let slot = self.slots.acquire().await;
        let timing = RunTiming {
            started: self.t0.elapsed().as_secs_f64(),
            interval: interval.as_secs_f64(),
        };
        (slot, timing)
    }

    fn clients(&self) -> anyhow::Result<AcademyClients> {
        let key = TenantKey::new(
            &[
                self.academy.upstream.personio_url.as_bytes(),
                self.academy.upstream.reteach_url.as_bytes(),
            ],
            &[],
        );
        self.clients.get_or_build(key, Instant::now(), || {
            Ok::<_, anyhow::Error>(Arc::new((
                clients::personio(&self.academy.upstream.personio_url, self.limits, &self.log)?,
                clients::reteach(&self.academy.upstream.reteach_url, self.limits, &self.log)?,
            )))
        })
    }

    async fn employee(
        self,
        index: usize,
        uid: String,
        interval: Duration,
    ) -> anyhow::Result<(RunTiming, RunStatus)> {
        let (_slot, timing) = self.turn(&uid, interval).await;
        let clients = self.clients()?;
        let input = EmployeeJobInput {
            config: Default::default(),
            guard: None,
            now: self.now,
            tz: TIME_ZONE,
            dry_run: false,
            full: true,
            cursor: None,
            reteach_users: None,
        };
        let outcome = run_employee_sync(&clients.0, &clients.1, &input).await?;
        let mut status = crate::api::EmployeeSyncStatus::default();
        let run = RunContext {
            now: self.now,
            generation: Some(1),
            requested_at: None,
        };
        crate::controller::employee::status_after_success(&mut status, &run, interval, &outcome);
        Ok((timing, RunStatus::Employee(index, Box::new(status))))
    }

    async fn certificate(
        self,
        index: usize,
        uid: String,
        interval: Duration,
    ) -> anyhow::Result<(RunTiming, RunStatus)> {
        let (_slot, timing) = self.turn(&uid, interval).await;
        let clients = self.clients()?;
        let (personio, reteach) = (&clients.0, &clients.1);
        let wanted = crate::api::DocumentCategoryRef {
            id: Some(self.academy.category_id),
            name: None,
        };
        let category_id = resolve_category(personio, &wanted).await?;
        let spec: crate::api::CertificateSyncSpec = serde_json::from_value(serde_json::json!({
            "employeeSyncRef": {"name": "personio"},
            "documentCategory": {"id": category_id},
        }))?;
        let request = CertificateRunRequest {
            now: self.now,
            tz: TIME_ZONE,
            category_id,
            full_resync_interval: chrono::Duration::hours(24),
            requested: false,
            linked_since: None,
        };
        let store = MemoryLedgerStore::default();
        let ledger = crate::api::CertificateLedgerStatus::default();
        let input =
            CertificateJobInput::new(&spec, &ledger, request, &store, CancellationToken::new());
        let outcome = run_certificate_sync(personio, reteach, &input).await?;
        let mut status = crate::api::CertificateSyncStatus::default();
        let run = RunContext {
            now: self.now,
            generation: Some(1),
            requested_at: None,
        };
        crate::controller::certificate::status_after_success(
            &mut status,
            &run,
            interval,
            &outcome,
            category_id,
        );
        Ok((timing, RunStatus::Certificate(index, Box::new(status))))
    }
}

/// Metadata as the apiserver sends it for an object applied with `kubectl apply` whose status the
/// operator writes: uid, timestamps, the last-applied annotation and two managed-fields entries.
fn metadata(
    kind: &str,
    name: &str,
    n: usize,
    spec: &serde_json::Value,
    created: DateTime<Utc>,
) -> serde_json::Value {
    let namespace = format!("academy-{n:04}");
    let last_applied = serde_json::json!({
        "apiVersion": "sync.reteach.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    });
    let time = created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    serde_json::json!({
        "name": name,
        "namespace": namespace,
        "uid": format!("{:08x}-5d3a-4f6e-8a1b-{n:012x}", kind.len() * 0x1000_0000 + n),
        "resourceVersion": format!("{}", 1_000_000 + n),
        "generation": 1,
        "creationTimestamp": time,
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": last_applied.to_string(),
        },
        "managedFields": [
            {
                "apiVersion": "sync.reteach.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}, "f:spec": spec_fields(spec)},
                "manager": "kubectl-client-side-apply",
                "operation": "Update",
                "time": time,
            },
            {
                "apiVersion": "sync.reteach.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {"f:conditions": {}, "f:lastRun": {}, "f:lastSyncTime": {}, "f:lastSuccessfulSyncTime": {}, "f:nextSyncTime": {}, "f:observedGeneration": {}}},
                "manager": "reteach-personio-operator",
                "operation": "Apply",
                "subresource": "status",
                "time": time,
            },
        ],
    })
}

fn spec_fields(spec: &serde_json::Value) -> serde_json::Value {
    match spec {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(key, value)| (format!("f:{key}"), spec_fields(value)))
                .collect(),
        ),
        _ => serde_json::json!({}),
    }
}

fn employee_sync(
    n: usize,
    academy: &Academy,
    created: DateTime<Utc>,
) -> anyhow::Result<EmployeeSync> {
    let spec = serde_json::json!({
        "interval": "5m",
        "timeZone": "Europe/Berlin",
        "personio": {
            "baseUrl": academy.upstream.personio_url,
            "allowInsecureHttp": true,
            "credentialsSecretRef": {"name": "personio-api"},
        },
        "reteach": {
            "baseUrl": academy.upstream.reteach_url,
            "allowInsecureHttp": true,
            "credentialsSecretRef": {"name": "reteach-api"},
        },
    });
    let metadata = metadata(
        "EmployeeSync",
        "personio",
        n,
        &spec,
        created - chrono::Duration::days(1),
    );
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "sync.reteach.io/v1alpha1",
        "kind": "EmployeeSync",
        "metadata": metadata,
        "spec": spec,
    }))?)
}

fn certificate_sync(
    n: usize,
    academy: &Academy,
    created: DateTime<Utc>,
) -> anyhow::Result<CertificateSync> {
    let spec = serde_json::json!({
        "interval": "30m",
        "employeeSyncRef": {"name": "personio"},
        "documentCategory": {"id": academy.category_id},
        "title": "Certificate: {course}",
    });
    let metadata = metadata(
        "CertificateSync",
        "certificates",
        n,
        &spec,
        created - chrono::Duration::days(1),
    );
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "sync.reteach.io/v1alpha1",
        "kind": "CertificateSync",
        "metadata": metadata,
        "spec": spec,
    }))?)
}
