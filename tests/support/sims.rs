//! Both simulators, real clients with short timeouts and the two jobs wired together, for the
//! integration tests that need no Kubernetes (`fault_matrix`, `bad_input`, `sync_integration`).
//!
//! The harness keeps what the controller would keep between runs — the employee cursor and the
//! certificate ledger — so a test reads like a sequence of scheduled runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use reteach_personio_operator::api::{
    CertificateLedgerStatus, CertificateSyncSpec, DocumentCategoryRef, EmployeeSyncStatus,
};
use reteach_personio_operator::clock::{Clock, ManualClock};
use reteach_personio_operator::jobs::bookkeeping::{
    employee_input, record_employee_outcome, EmployeeRunRequest,
};
use reteach_personio_operator::jobs::settings::{
    Cadence, EmployeeSettings, TimeZone as CompanyTimeZone,
};
use reteach_personio_operator::jobs::{
    resolve_category, run_certificate_sync, run_employee_sync, CertificateJobInput,
    CertificateJobOutcome, CertificateRunRequest, EmployeeJobOutcome, JobError, MemoryLedgerStore,
};
use reteach_personio_operator::personio::{
    PersonioClient, PersonioConfig, PersonioCredentials, PersonioRateLimits,
};
use reteach_personio_operator::reteach::{
    DownloadPolicy, ReteachClient, ReteachConfig, ReteachCredentials,
};
use reteach_personio_operator::sim::personio::{EmployeeSeed, PersonioSim, PersonioSimConfig};
use reteach_personio_operator::sim::reteach::ReteachSim;
use reteach_personio_operator::sim::RunningSim;
use reteach_personio_operator::sync::candidate_batch::DEFAULT_BATCH_SIZE;
use reteach_personio_operator::sync::certificate_plan::certificate_marker;
use reteach_personio_operator::sync::employee_config::EmployeeConfig;
use reteach_personio_operator::upstream::{RetryPolicy, TlsOptions};

/// Per-request timeout of both clients: generous, so a busy CI machine never turns a clean run
/// into a timeout.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-request timeout for fault tests ([`Sims::start_with_timeout`]): `Fault::Delay(SLOW)` is a
/// timeout, while a normal answer from the loopback simulators arrives far within it.
pub const FAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// A delay beyond [`FAULT_TIMEOUT`].
pub const SLOW: Duration = Duration::from_secs(3);
/// Attempts per idempotent request (the first plus two retries).
pub const ATTEMPTS: usize = 3;
/// Name of the document category the certificate runs upload into.
pub const CATEGORY: &str = "Learning Certificates";
/// Company time zone of every run.
pub const TZ: Tz = chrono_tz::Europe::Berlin;

/// Personio request prefixes (for `FaultRule`).
pub mod personio_paths {
    pub const AUTH: &str = "POST /v1/auth";
    pub const EMPLOYEES: &str = "GET /v1/company/employees";
    pub const CATEGORIES: &str = "GET /v1/company/document-categories";
    pub const UPLOAD: &str = "POST /v1/company/documents";
    pub const DOCUMENTS: &str = "GET /v2/document-management/documents";
}

/// reteach request prefixes (for `FaultRule`).
pub mod reteach_paths {
    pub const AUTH: &str = "POST /oauth/authorize";
    pub const LIST_CUSTOMERS: &str = "GET /customer";
    pub const CREATE_CUSTOMER: &str = "POST /customer";
    pub const UPDATE_CUSTOMER: &str = "PUT /customer/";
    pub const PARTICIPATIONS: &str = "GET /participation";
    pub const DOWNLOAD: &str = "GET /certificates/";
}

/// 2026-11-26 08:00 UTC, a Thursday.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0)
        .single()
        .expect("valid start time")
}

/// Calendar date helper.
pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// An employee every test can sync: e-mail, department, office, gender, hired in 2020.
pub fn employee(i: usize) -> EmployeeSeed {
    EmployeeSeed::new(
        "Test",
        &format!("Person{i}"),
        &format!("person{i}@example.com"),
    )
    .with_position("Engineer")
    .with_department(1, "Engineering")
    .with_office(2, "Berlin")
    .with_gender(Some("female"))
    .with_hire_date(date(2020, 1, 1))
}

/// Both simulators on loopback, a client for each, and the state kept between runs.
pub struct Sims {
    pub clock: ManualClock,
    pub personio: PersonioSim,
    pub reteach: ReteachSim,
    pub personio_client: PersonioClient,
    pub reteach_client: ReteachClient,
    pub personio_server: RunningSim,
    pub reteach_server: RunningSim,
    /// The EmployeeSync's own status fields (cursor, last full run, `reteachUsers`), kept by the
    /// controller's bookkeeping functions.
    pub employee_status: Mutex<EmployeeSyncStatus>,
    /// Where certificate runs persist their ledger (survives failed runs, like status does).
    pub ledger: Arc<MemoryLedgerStore>,
    /// Documents uploaded over all certificate runs (what `status.uploadedTotal` would say).
    pub uploaded_total: Mutex<i64>,
    /// The certificate category in the Personio simulator.
    pub category_id: i64,
    /// Completions one pass of a certificate run holds (`CertificateJobInput::batch_size`).
    pub batch_size: AtomicUsize,
    /// Mapping and selector of the EmployeeSync runs.
    pub employee_config: Mutex<EmployeeConfig>,
}

impl Sims {
    /// Starts both simulators (Personio without its rate limits, so tests stay fast) with
    /// [`CATEGORY`] present.
    pub async fn start() -> Self {
        Self::start_with_timeout(CLIENT_TIMEOUT).await
    }

    /// [`Sims::start`] with clients that give up on a request after `timeout`.
    pub async fn start_with_timeout(timeout: Duration) -> Self {
        let clock = ManualClock::new(start_time());
        let personio = PersonioSim::new(PersonioSimConfig {
            rate_limits: None,
            clock: Arc::new(clock.clone()),
            ..PersonioSimConfig::default()
        });
        let category_id = personio
            .categories()
            .iter()
            .find(|category| category.name == CATEGORY)
            .map_or_else(|| personio.add_category(CATEGORY), |category| category.id);
        let reteach = ReteachSim::new(Arc::new(clock.clone()));
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let personio_server = personio.start(loopback).await.expect("start Personio sim");
        let reteach_server = reteach.start(loopback).await.expect("start reteach sim");
        let mut personio_settings = personio_config(&personio, &personio_server);
        personio_settings.tls.timeout = Some(timeout);
        let personio_client = PersonioClient::new(personio_settings).expect("Personio client");
        let mut reteach_settings = reteach_config(&reteach, &reteach_server);
        reteach_settings.tls.timeout = Some(timeout);
        let reteach_client = ReteachClient::new(reteach_settings).expect("reteach client");
        Self {
            clock,
            personio,
            reteach,
            personio_client,
            reteach_client,
            personio_server,
            reteach_server,
            employee_status: Mutex::new(EmployeeSyncStatus::default()),
            ledger: Arc::new(MemoryLedgerStore::default()),
            uploaded_total: Mutex::new(0),
            category_id,
            batch_size: AtomicUsize::new(DEFAULT_BATCH_SIZE),
            employee_config: Mutex::new(EmployeeConfig::default()),
        }
    }

    /// Sets the mapping and selector of the following EmployeeSync runs.
    pub fn set_employee_config(&self, config: EmployeeConfig) {
        *self.employee_config.lock().expect("config") = config;
    }

    /// Adds `count` employees built by [`employee`]; returns their Personio ids.
    pub fn add_employees(&self, count: usize) -> Vec<i64> {
        (0..count)
            .map(|i| self.personio.add_employee(employee(i)))
            .collect()
    }

    /// One EmployeeSync run (incremental when a cursor exists, the last full run is less than a
    /// day old and `full` is false); on success the status moves on through the controller's own
    /// bookkeeping (`jobs::bookkeeping`), so the tests check the code the controller runs.
    pub async fn employee_run(&self, full: bool) -> Result<EmployeeJobOutcome, JobError> {
        self.employee_run_with(&self.personio_client, full).await
    }

    /// [`Sims::employee_run`] reading Personio through `personio` (e.g. a v2 client).
    pub async fn employee_run_with(
        &self,
        personio: &dyn reteach_personio_operator::personio::PersonioApi,
        full: bool,
    ) -> Result<EmployeeJobOutcome, JobError> {
        self.employee_run_notified(personio, full, Vec::new()).await
    }

    /// [`Sims::employee_run_with`] after webhook notifications named the persons `notified`
    /// (what the controller takes from `Triggers::take_persons`).
    pub async fn employee_run_notified(
        &self,
        personio: &dyn reteach_personio_operator::personio::PersonioApi,
        full: bool,
        notified: Vec<String>,
    ) -> Result<EmployeeJobOutcome, JobError> {
        let settings = EmployeeSettings {
            cadence: Cadence::parse(
                "5m",
                "24h",
                Duration::from_secs(60),
                Duration::from_secs(60),
            )
            .expect("cadence"),
            time_zone: CompanyTimeZone::parse(TZ.name()).expect("time zone"),
            config: self.employee_config.lock().expect("config").clone(),
        };
        let now = self.clock.now();
        let request = EmployeeRunRequest {
            now,
            dry_run: false,
            force_full: full,
            guard: None,
        };
        let mut input = employee_input(
            &self.employee_status.lock().expect("status"),
            &settings,
            request,
        );
        input.notified = notified;
        let outcome = run_employee_sync(personio, &self.reteach_client, &input).await?;
        record_employee_outcome(
            &mut self.employee_status.lock().expect("status"),
            now,
            &outcome,
        );
        Ok(outcome)
    }

    /// A full EmployeeSync run that must succeed.
    pub async fn sync_employees(&self) -> EmployeeJobOutcome {
        match self.employee_run(true).await {
            Ok(outcome) => outcome,
            Err(error) => panic!("employee sync failed: {error}"),
        }
    }

    /// One CertificateSync run into [`CATEGORY`], starting from the ledger last saved.
    pub async fn certificate_run(&self) -> Result<CertificateJobOutcome, JobError> {
        self.certificate_run_with(&self.personio_client).await
    }

    /// [`Sims::certificate_run`] through another Personio client (e.g. one reading employees
    /// through v2: documents still go through v1).
    pub async fn certificate_run_with(
        &self,
        personio: &reteach_personio_operator::personio::PersonioClient,
    ) -> Result<CertificateJobOutcome, JobError> {
        let category_id = resolve_category(
            personio,
            &DocumentCategoryRef {
                id: None,
                name: Some(CATEGORY.to_string()),
            },
        )
        .await?;
        let spec: CertificateSyncSpec = serde_json::from_value(serde_json::json!({
            "employeeSyncRef": {"name": "sims"},
            "documentCategory": {"id": category_id},
        }))
        .expect("certificate spec");
        let request = CertificateRunRequest {
            now: self.clock.now(),
            tz: TZ,
            category_id,
            full_resync_interval: chrono::Duration::hours(24),
            requested: false,
            linked_since: None,
        };
        let mut input = CertificateJobInput::new(
            &spec,
            &self.ledger.latest().unwrap_or_default(),
            request,
            self.ledger.as_ref(),
            CancellationToken::new(),
        );
        input.batch_size = self.batch_size.load(Ordering::Relaxed);
        let result = run_certificate_sync(personio, &self.reteach_client, &input).await;
        let delta = match &result {
            Ok(outcome) => outcome.uploaded_total_delta,
            Err(error) => error
                .partial_outcome()
                .map_or(0, |partial| partial.uploaded_total_delta),
        };
        *self.uploaded_total.lock().expect("uploaded total") += delta;
        result
    }

    /// A CertificateSync run that must succeed.
    pub async fn sync_certificates(&self) -> CertificateJobOutcome {
        match self.certificate_run().await {
            Ok(outcome) => outcome,
            Err(error) => panic!("certificate sync failed: {error}"),
        }
    }

    /// The ledger as last saved.
    pub fn saved_ledger(&self) -> CertificateLedgerStatus {
        self.ledger.latest().unwrap_or_default()
    }

    /// Documents in Personio carrying the marker of `certificate_id`.
    pub fn documents_for(&self, certificate_id: &str) -> usize {
        self.personio
            .documents()
            .iter()
            .filter(|document| {
                reteach_personio_operator::sync::certificate_plan::has_marker(
                    document.comment.as_deref(),
                    certificate_id,
                )
            })
            .count()
    }

    /// Asserts every certificate id has exactly one Personio document.
    pub fn assert_each_certificate_once(&self, certificate_ids: &[String]) {
        for id in certificate_ids {
            assert_eq!(
                self.documents_for(id),
                1,
                "certificate {id} (marker {}) must be in Personio exactly once",
                certificate_marker(id)
            );
        }
    }

    /// Asserts every Personio employee has exactly one reteach user and no user exists twice.
    pub fn assert_one_user_per_employee(&self) {
        let customers = self.reteach.customers();
        for id in self.personio.employee_ids() {
            let linked = customers
                .iter()
                .filter(|c| c.external_id.as_deref() == Some(id.to_string().as_str()))
                .count();
            assert_eq!(
                linked, 1,
                "Personio employee {id} must have exactly one reteach user"
            );
        }
        self.assert_no_duplicate_emails();
    }

    /// Asserts no e-mail address belongs to two reteach users and nothing was deleted.
    pub fn assert_no_duplicate_emails(&self) {
        let customers = self.reteach.customers();
        let mut emails: Vec<String> = customers
            .iter()
            .filter_map(|c| c.email.clone())
            .map(|e| e.to_lowercase())
            .collect();
        let total = emails.len();
        emails.sort();
        emails.dedup();
        assert_eq!(
            emails.len(),
            total,
            "no e-mail address may belong to two reteach users"
        );
        assert_eq!(
            self.reteach.delete_requests(),
            0,
            "the operator never deletes users"
        );
    }

    /// Syncs employees and gives each synced reteach user (by Personio id) one completed course
    /// with a ready PDF; returns the certificate ids.
    pub async fn employees_with_certificates(&self, employees: usize) -> Vec<String> {
        let ids = self.add_employees(employees);
        self.sync_employees().await;
        let completed = self.clock.now() - chrono::Duration::hours(1);
        ids.iter()
            .map(|id| {
                self.reteach
                    .add_completion(&id.to_string(), "Safety Basics", completed, true)
                    .expect("customer synced")
                    .certificate_id
            })
            .collect()
    }
}

/// Client settings for the Personio simulator: its credentials, short timeout, fast retries.
pub fn personio_config(sim: &PersonioSim, server: &RunningSim) -> PersonioConfig {
    let (client_id, client_secret) = sim.credentials();
    let mut config = PersonioConfig::new(
        server.base_url(),
        PersonioCredentials::new(client_id, client_secret),
    );
    config.tls = test_tls();
    config.limits = PersonioRateLimits::unlimited();
    config.retry = fast_retry();
    config
}

/// Client settings for the reteach simulator: its credentials, short timeout, fast retries.
pub fn reteach_config(sim: &ReteachSim, server: &RunningSim) -> ReteachConfig {
    let credentials = sim.credentials();
    let mut config = ReteachConfig::new(
        server.base_url(),
        ReteachCredentials::new(
            credentials.client_id,
            credentials.client_secret,
            credentials.client_code,
        ),
    );
    config.tls = test_tls();
    config.requests_per_second = 10_000;
    config.retry = fast_retry();
    // The simulator's storage host is itself under the name `localhost`, a loopback address.
    config.downloads = DownloadPolicy {
        allowed_hosts: vec!["localhost".to_string()],
        allow_private_addresses: true,
        ..DownloadPolicy::default()
    };
    config
}

fn test_tls() -> TlsOptions {
    TlsOptions {
        allow_insecure_http: true,
        timeout: Some(CLIENT_TIMEOUT),
        ..TlsOptions::default()
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: ATTEMPTS,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}
