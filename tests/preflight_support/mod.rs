//! A small, complete tenant in both simulators for the preflight tests (`preflight`,
//! `e2e/preflight.rs`), and the checks every preflight test makes.

// Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as ChronoDuration, Utc};
use reteach_personio_operator::clock::SystemClock;
use reteach_personio_operator::jobs::allowlist::UpstreamPolicy;
use reteach_personio_operator::preflight::source::{
    PERSONIO_CLIENT_ID, PERSONIO_CLIENT_SECRET, RETEACH_CLIENT_CODE, RETEACH_CLIENT_ID,
    RETEACH_CLIENT_SECRET,
};
use reteach_personio_operator::preflight::{
    from_file, preflight, Capability, ProbeOptions, Report, State, Subject,
};
use reteach_personio_operator::reteach::DownloadPolicy;
use reteach_personio_operator::sim::personio::{EmployeeSeed, PersonioSim, PersonioSimConfig};
use reteach_personio_operator::sim::reteach::{ReteachSim, SimCustomer};
use reteach_personio_operator::sim::RunningSim;
use reteach_personio_operator::upstream::RetryPolicy;

pub const CATEGORY: &str = "Learning Certificates";
pub const SECRET_LIKE: [&str; 2] = ["sim-personio-secret", "sim-client-secret"];

/// Both simulators with a small, complete tenant: two employees (one with a certificate document
/// already in Personio), a reteach user per employee, two completed courses at different times with
/// generated PDFs, and a course still in progress.
pub struct Tenant {
    pub personio: PersonioSim,
    pub reteach: ReteachSim,
    pub personio_server: RunningSim,
    pub reteach_server: RunningSim,
    pub first_employee: i64,
    pub certificate_ids: Vec<String>,
}

impl Tenant {
    pub async fn start() -> Self {
        Self::start_with_document_of(0).await
    }

    /// [`Tenant::start`] with the one Personio document owned by the `owner`-th employee.
    pub async fn start_with_document_of(owner: usize) -> Self {
        let personio = PersonioSim::new(PersonioSimConfig {
            rate_limits: None,
            ..PersonioSimConfig::default()
        });
        let reteach = ReteachSim::new(Arc::new(SystemClock));
        let mut certificate_ids = Vec::new();
        let mut first_employee = 0;
        for i in 0..2 {
            let id = personio.add_employee(
                EmployeeSeed::new(
                    "Ada",
                    &format!("Lovelace{i}"),
                    &format!("ada{i}@example.com"),
                )
                .with_department(1, "Engineering")
                .with_office(2, "Berlin"),
            );
            if i == 0 {
                first_employee = id;
            }
            let customer = reteach.add_customer(SimCustomer {
                external_id: Some(id.to_string()),
                email: Some(format!("ada{i}@example.com")),
                registered: true,
                ..SimCustomer::default()
            });
            let completed_at = Utc::now() - ChronoDuration::days(i + 1);
            let seeded = reteach
                .add_completion(&customer, "Safety", completed_at, true)
                .expect("customer exists");
            certificate_ids.push(seeded.certificate_id);
            reteach
                .add_participation(&customer, "Fire drill", "STARTED", None)
                .expect("customer exists");
        }
        let category = personio
            .categories()
            .into_iter()
            .find(|c| c.name == CATEGORY)
            .expect("the simulator has the category")
            .id;
        let owner_id = first_employee + i64::try_from(owner).expect("small index");
        personio.insert_document(owner_id, category, "Old certificate", None);
        let personio_server = personio.start(([127, 0, 0, 1], 0).into()).await.unwrap();
        let reteach_server = reteach.start(([127, 0, 0, 1], 0).into()).await.unwrap();
        Self {
            personio,
            reteach,
            personio_server,
            reteach_server,
            first_employee,
            certificate_ids,
        }
    }

    /// An EmployeeSync and a CertificateSync (into `category`) pointing at the simulators.
    pub fn manifests(&self, category: &str) -> String {
        format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: personio-api}}
---
apiVersion: sync.reteach.io/v1alpha1
kind: EmployeeSync
metadata: {{name: personio, namespace: academy}}
spec:
  personio:
    baseUrl: {}
    allowInsecureHttp: true
    credentialsSecretRef: {{name: personio-api}}
  reteach:
    baseUrl: {}
    allowInsecureHttp: true
    credentialsSecretRef: {{name: reteach-api}}
---
apiVersion: sync.reteach.io/v1alpha1
kind: CertificateSync
metadata: {{name: certificates, namespace: academy}}
spec:
  employeeSyncRef: {{name: personio}}
  documentCategory: {{name: "{category}"}}
"#,
            self.personio_server.base_url(),
            self.reteach_server.base_url(),
        )
    }

    /// The simulators' credentials, as the file source reads them from the environment.
    pub fn environment(&self) -> HashMap<String, String> {
        let (personio_id, personio_secret) = self.personio.credentials();
        let reteach = self.reteach.credentials();
        HashMap::from([
            (PERSONIO_CLIENT_ID.to_string(), personio_id),
            (PERSONIO_CLIENT_SECRET.to_string(), personio_secret),
            (RETEACH_CLIENT_ID.to_string(), reteach.client_id),
            (RETEACH_CLIENT_SECRET.to_string(), reteach.client_secret),
            (RETEACH_CLIENT_CODE.to_string(), reteach.client_code),
        ])
    }

    pub fn subject(
        &self,
        manifests: &str,
        name: Option<&str>,
        env: &HashMap<String, String>,
    ) -> Subject {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(manifests.as_bytes()).unwrap();
        let lookup = |key: &str| env.get(key).cloned();
        from_file(
            &[file.path().to_path_buf()],
            name,
            &lookup,
            &probe_options().upstream,
        )
        .expect("the manifests parse")
    }

    /// Preflight of the CertificateSync (which covers its EmployeeSync's rows too).
    pub async fn check_certificates(&self) -> Report {
        self.check(&self.manifests(CATEGORY), None, &self.environment())
            .await
    }

    pub async fn check(
        &self,
        manifests: &str,
        name: Option<&str>,
        env: &HashMap<String, String>,
    ) -> Report {
        let subject = self.subject(manifests, name, env);
        let report = preflight(&subject, None, &probe_options()).await;
        self.assert_nothing_written(&report);
        report
    }

    /// The promise of every preflight: not one write request reached either simulator, and the
    /// table holds no personal data or secret.
    pub fn assert_nothing_written(&self, report: &Report) {
        assert_eq!(self.personio.write_requests(), vec![], "Personio writes");
        assert_eq!(self.reteach.write_requests(), vec![], "reteach writes");
        let table = report.table();
        for private in ["Ada", "Lovelace", "example.com"]
            .iter()
            .chain(&SECRET_LIKE)
        {
            assert!(!table.contains(private), "{private:?} in\n{table}");
        }
    }
}

/// What the probes of these tests may reach: the simulators on loopback over plain http (as an
/// operator started with `--allowed-upstream-hosts 127.0.0.1 --allow-insecure-http`), the
/// production download policy, and short retries.
pub fn probe_options() -> ProbeOptions {
    ProbeOptions {
        upstream: UpstreamPolicy::new(&["127.0.0.1"], true).expect("valid hosts"),
        downloads: DownloadPolicy::default(),
        retry: fast_retries(),
    }
}

pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
    }
}

pub fn state(report: &Report, capability: Capability) -> State {
    report
        .state(capability)
        .unwrap_or_else(|| panic!("no row {} in\n{}", capability.name(), report.table()))
}

pub fn detail(report: &Report, capability: Capability) -> String {
    report
        .get(capability)
        .map(|f| f.detail.clone())
        .unwrap_or_default()
}

pub fn action(report: &Report, capability: Capability) -> String {
    report
        .get(capability)
        .map(|f| f.action.clone())
        .unwrap_or_default()
}
