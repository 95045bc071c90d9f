//! The child side of the scale scenario: holds the watch caches and the tenant clients as the
//! operator does, starts every run at its start-up spread offset and through the run slots, and
//! reads the resident memory while it still holds them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Event;

use super::objects::academy_objects;
use super::{Academy, RunTiming, ScaleTask, CERTIFICATE_INTERVAL, EMPLOYEE_INTERVAL};
use crate::api::{CertificateSync, EmployeeSync};
use crate::bench::certificate_run::CertificateRun;
use crate::bench::child::TIME_ZONE;
use crate::bench::clients::{self, Limits};
use crate::bench::memory::Memory;
use crate::bench::tally::RequestTally;
use crate::controller::pacing::{Priority, RunSlots, SpreadInput, StartupSpread};
use crate::controller::tenant_cache::{TenantCache, TenantKey};
use crate::jobs::run_status::{
    certificate_status_after_success, employee_status_after_success, RunContext,
};
use crate::jobs::schedule::DueReason;
use crate::jobs::{run_employee_sync, EmployeeJobInput, MemoryLedgerStore};
use crate::personio::PersonioClient;
use crate::reteach::ReteachClient;

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
    let employee_interval = EMPLOYEE_INTERVAL.div_f64(time_scale);
    let certificate_interval = CERTIFICATE_INTERVAL.div_f64(time_scale);
    let mut caches = Caches::filled(&task.academies, started)?;
    let spread = StartupSpread {
        started,
        limit: CERTIFICATE_INTERVAL,
    };
    let slots = RunSlots::new(task.max_concurrent_runs);
    let clients: Arc<TenantCache<AcademyClients>> = Arc::default();
    let mut runs = tokio::task::JoinSet::new();
    for (index, (academy, ((_, employee_uid), (_, certificate_uid)))) in
        task.academies.iter().zip(&caches.refs).enumerate()
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
        runs.spawn(shared.clone().employee(Resource {
            index,
            uid: employee_uid.clone(),
            interval: employee_interval,
        }));
        runs.spawn(shared.certificate(Resource {
            index,
            uid: certificate_uid.clone(),
            interval: certificate_interval,
        }));
    }
    let mut timings = Vec::new();
    let mut uploaded = 0;
    while let Some(joined) = runs.join_next().await {
        let (timing, status) = joined??;
        timings.push(timing);
        uploaded += caches.write_back(status)?;
    }
    let late = timings.iter().filter(|t| t.started >= t.interval).count();
    let latest_share = timings
        .iter()
        .map(|t| t.started / t.interval)
        .fold(0.0, f64::max);
    let held = (
        caches.employees.as_reader().len(),
        caches.certificates.as_reader().len(),
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
    drop((caches, clients));
    Ok((summary, memory))
}

/// Where an academy's two objects stand in the caches, and their uids.
type AcademyRefs = (
    (ObjectRef<EmployeeSync>, String),
    (ObjectRef<CertificateSync>, String),
);

/// The watch caches of both kinds, as the operator holds them: each object once, the child
/// keeps only references.
struct Caches {
    employees: Writer<EmployeeSync>,
    certificates: Writer<CertificateSync>,
    refs: Vec<AcademyRefs>,
}

impl Caches {
    fn filled(academies: &[Academy], started: DateTime<Utc>) -> anyhow::Result<Self> {
        let mut caches = Caches {
            employees: Writer::default(),
            certificates: Writer::default(),
            refs: Vec::with_capacity(academies.len()),
        };
        for (n, academy) in academies.iter().enumerate() {
            let (employee, certificate) = academy_objects(n, academy, started)?;
            caches.refs.push((
                (ObjectRef::from_obj(&employee), uid(&employee)),
                (ObjectRef::from_obj(&certificate), uid(&certificate)),
            ));
            cache(&mut caches.employees, employee);
            cache(&mut caches.certificates, certificate);
        }
        Ok(caches)
    }

    /// The status a run wrote comes back through the watch and replaces the cached object.
    /// Returns the documents the run uploaded.
    fn write_back(&mut self, status: RunStatus) -> anyhow::Result<i64> {
        match status {
            RunStatus::Employee(index, status) => {
                let mut object = cached(&self.employees, &self.refs[index].0 .0)?;
                object.status = Some(*status);
                cache(&mut self.employees, object);
                Ok(0)
            }
            RunStatus::Certificate(index, status) => {
                let uploaded = status.last_run.as_ref().map_or(0, |run| run.uploaded);
                let mut object = cached(&self.certificates, &self.refs[index].1 .0)?;
                object.status = Some(*status);
                cache(&mut self.certificates, object);
                Ok(uploaded)
            }
        }
    }
}

/// A copy of the cached object `reference` points at.
fn cached<K>(writer: &Writer<K>, reference: &ObjectRef<K>) -> anyhow::Result<K>
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    writer
        .as_reader()
        .get(reference)
        .map(|object| (*object).clone())
        .ok_or_else(|| anyhow::anyhow!("{reference} is not in the watch cache"))
}

fn uid<K: kube::Resource>(object: &K) -> String {
    object.meta().uid.clone().unwrap_or_default()
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

/// The resource a run is for: its academy's index, its uid and its interval.
struct Resource {
    index: usize,
    uid: String,
    interval: Duration,
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
        resource: &Resource,
    ) -> (Arc<crate::controller::pacing::RunSlot>, RunTiming) {
        let interval = resource.interval;
        let input = SpreadInput {
            uid: &resource.uid,
            created: Some(self.spread.started - chrono::Duration::days(1)),
            interval: Some(interval),
            next_sync_time: Some(self.spread.started - chrono::Duration::minutes(1)),
            reason: DueReason::IntervalElapsed,
        };
        if let Some(hold) = self.spread.hold(&input, Utc::now()) {
            tokio::time::sleep(hold).await;
        }
        let slot = self
            .slots
            .acquire(&self.academy.upstream.personio_url, Priority::Routine)
            .await;
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
            Ok::<_, anyhow::Error>(Arc::new(clients::for_upstream(
                &self.academy.upstream,
                self.limits,
                &self.log,
            )?))
        })
    }

    async fn employee(self, resource: Resource) -> anyhow::Result<(RunTiming, RunStatus)> {
        let (_slot, timing) = self.turn(&resource).await;
        let clients = self.clients()?;
        let input = EmployeeJobInput::full_run(self.now, TIME_ZONE);
        // Boxed, as the operator's `controller::operator::drive` boxes a reconcile: a resource
        // that waits for its turn holds a small future, not the state of a whole run.
        let outcome = Box::pin(run_employee_sync(&clients.0, &clients.1, &input)).await?;
        let mut status = crate::api::EmployeeSyncStatus::default();
        let run = RunContext::first_run(self.now);
        employee_status_after_success(&mut status, &run, resource.interval, &outcome);
        Ok((
            timing,
            RunStatus::Employee(resource.index, Box::new(status)),
        ))
    }

    async fn certificate(self, resource: Resource) -> anyhow::Result<(RunTiming, RunStatus)> {
        let (_slot, timing) = self.turn(&resource).await;
        let clients = self.clients()?;
        let (personio, reteach) = (&clients.0, &clients.1);
        let run = CertificateRun {
            now: self.now,
            category_id: self.academy.category_id,
            ledger: None,
            requested: false,
        };
        let store = MemoryLedgerStore::default();
        let (outcome, category_id) = Box::pin(run.run(personio, reteach, &store)).await?;
        let mut status = crate::api::CertificateSyncStatus::default();
        let run = RunContext::first_run(self.now);
        certificate_status_after_success(
            &mut status,
            &run,
            resource.interval,
            &outcome,
            category_id,
        );
        Ok((
            timing,
            RunStatus::Certificate(resource.index, Box::new(status)),
        ))
    }
}
