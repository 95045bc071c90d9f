//! `preflight` against both simulators: each capability row is right for a tenant that has it and
//! for simulator configurations that lack it, and no probe ever writes to either upstream.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as ChronoDuration, Utc};
use reteach_personio_operator::clock::SystemClock;
use reteach_personio_operator::preflight::report::{EXIT_MISSING, EXIT_READY, EXIT_UNDECIDED};
use reteach_personio_operator::preflight::source::{
    PERSONIO_CLIENT_ID, PERSONIO_CLIENT_SECRET, RETEACH_CLIENT_CODE, RETEACH_CLIENT_ID,
    RETEACH_CLIENT_SECRET,
};
use reteach_personio_operator::preflight::{
    from_file, preflight, Capability, Report, State, Subject,
};
use reteach_personio_operator::sim::personio::{EmployeeSeed, PersonioSim, PersonioSimConfig};
use reteach_personio_operator::sim::reteach::{ReteachSim, SimCustomer};
use reteach_personio_operator::sim::{Fault, FaultRule, RunningSim};
use reteach_personio_operator::upstream::RetryPolicy;

const CATEGORY: &str = "Learning Certificates";
const SECRET_LIKE: [&str; 2] = ["sim-personio-secret", "sim-client-secret"];

/// Both simulators with a small, complete tenant: two employees (one with a certificate document
/// already in Personio), a reteach user per employee, two completed courses at different times with
/// generated PDFs, and a course still in progress.
struct Tenant {
    personio: PersonioSim,
    reteach: ReteachSim,
    personio_server: RunningSim,
    reteach_server: RunningSim,
    first_employee: i64,
    certificate_ids: Vec<String>,
}

impl Tenant {
    async fn start() -> Self {
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
        personio.insert_document(first_employee, category, "Old certificate", None);
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
    fn manifests(&self, category: &str) -> String {
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
    fn environment(&self) -> HashMap<String, String> {
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

    fn subject(
        &self,
        manifests: &str,
        name: Option<&str>,
        env: &HashMap<String, String>,
    ) -> Subject {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(manifests.as_bytes()).unwrap();
        let lookup = |key: &str| env.get(key).cloned();
        from_file(file.path(), name, &lookup).expect("the manifests parse")
    }

    /// Preflight of the CertificateSync (which covers its EmployeeSync's rows too).
    async fn check_certificates(&self) -> Report {
        self.check(&self.manifests(CATEGORY), None, &self.environment())
            .await
    }

    async fn check(
        &self,
        manifests: &str,
        name: Option<&str>,
        env: &HashMap<String, String>,
    ) -> Report {
        let subject = self.subject(manifests, name, env);
        let report = preflight(&subject, None, fast_retries()).await;
        self.assert_nothing_written(&report);
        report
    }

    /// The promise of every preflight: not one write request reached either simulator, and the
    /// table holds no personal data or secret.
    fn assert_nothing_written(&self, report: &Report) {
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

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
    }
}

fn state(report: &Report, capability: Capability) -> State {
    report
        .state(capability)
        .unwrap_or_else(|| panic!("no row {} in\n{}", capability.name(), report.table()))
}

fn detail(report: &Report, capability: Capability) -> String {
    report
        .get(capability)
        .map(|f| f.detail.clone())
        .unwrap_or_default()
}

fn action(report: &Report, capability: Capability) -> String {
    report
        .get(capability)
        .map(|f| f.action.clone())
        .unwrap_or_default()
}

const CERTIFICATE_ROWS: [Capability; 10] = [
    Capability::PersonioToken,
    Capability::PersonioAttributes,
    Capability::PersonioDocumentCategory,
    Capability::PersonioDocumentListing,
    Capability::PersonioDocumentUpload,
    Capability::ReteachToken,
    Capability::ReteachCustomerRead,
    Capability::ReteachParticipationRead,
    Capability::ReteachParticipationFilters,
    Capability::ReteachCertificateDownload,
];

#[tokio::test]
async fn complete_tenant_is_ready_and_nothing_is_written() {
    let tenant = Tenant::start().await;
    let report = tenant.check_certificates().await;
    let rows: Vec<Capability> = report.findings.iter().map(|f| f.capability).collect();
    assert_eq!(rows, CERTIFICATE_ROWS.to_vec());
    for capability in CERTIFICATE_ROWS {
        assert_eq!(state(&report, capability), State::Ok, "{}", report.table());
    }
    assert_eq!(report.exit_code(), EXIT_READY);
    assert!(detail(&report, Capability::PersonioDocumentCategory).contains("category id 3"));
    let listing = detail(&report, Capability::PersonioDocumentListing);
    assert!(
        listing.contains(&format!(
            "employee {}: 1 document(s) in category 3",
            tenant.first_employee
        )),
        "{listing}"
    );
    let download = detail(&report, Capability::ReteachCertificateDownload);
    assert!(download.contains("HEAD 200"), "{download}");
    assert!(download.contains("application/pdf"), "{download}");
    assert!(
        tenant
            .certificate_ids
            .iter()
            .any(|id| download.contains(id)),
        "{download}"
    );
    // Headers only: the download route saw a HEAD and no GET.
    let control = tenant.reteach.control();
    assert_eq!(control.count("HEAD /certificates/"), 1);
    assert_eq!(control.count("GET /certificates/"), 0);
}

#[tokio::test]
async fn employee_sync_is_checked_for_what_it_needs_only() {
    let tenant = Tenant::start().await;
    let report = tenant
        .check(
            &tenant
                .manifests(CATEGORY)
                .replace("kind: CertificateSync", "kind: Other"),
            None,
            &tenant.environment(),
        )
        .await;
    let rows: Vec<Capability> = report.findings.iter().map(|f| f.capability).collect();
    assert_eq!(
        rows,
        vec![
            Capability::PersonioToken,
            Capability::PersonioAttributes,
            Capability::ReteachToken,
            Capability::ReteachCustomerRead,
        ]
    );
    assert!(report.resource.starts_with("EmployeeSync personio"));
    assert_eq!(report.exit_code(), EXIT_READY);
    assert_eq!(tenant.personio.control().count("GET /v2/"), 0);
    assert_eq!(tenant.reteach.control().count("GET /participation"), 0);
}

#[tokio::test]
async fn names_required_attributes_the_whitelist_leaves_out() {
    let tenant = Tenant::start().await;
    tenant.personio.set_whitelist(Some(&[
        "first_name",
        "last_name",
        "position",
        "department",
        "office",
        "hire_date",
        "termination_date",
        "last_modified_at",
    ]));
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::PersonioAttributes),
        State::Missing
    );
    assert_eq!(
        detail(&report, Capability::PersonioAttributes),
        "not returned: email, gender"
    );
    assert!(action(&report, Capability::PersonioAttributes).contains("add email, gender"));
    assert_eq!(report.exit_code(), EXIT_MISSING);
}

#[tokio::test]
async fn optional_attributes_left_out_are_noted_but_ok() {
    let tenant = Tenant::start().await;
    let mut readable: Vec<&str> = reteach_personio_operator::personio::REQUIRED_ATTRIBUTES.to_vec();
    readable.retain(|name| *name != "status");
    tenant.personio.set_whitelist(Some(&readable));
    let report = tenant.check_certificates().await;
    assert_eq!(state(&report, Capability::PersonioAttributes), State::Ok);
    assert!(detail(&report, Capability::PersonioAttributes)
        .contains("optional, not returned: status, contract_end_date"));
}

#[tokio::test]
async fn forbidden_v2_listing_is_named_without_blocking() {
    let tenant = Tenant::start().await;
    tenant.personio.control().inject(FaultRule::new(
        "GET /v2/document-management/documents",
        Fault::Status(403),
        100,
    ));
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::PersonioDocumentListing),
        State::Missing
    );
    assert!(detail(&report, Capability::PersonioDocumentListing).contains("denied"));
    assert!(action(&report, Capability::PersonioDocumentListing).contains("documents:read"));
    // Recommended: the sync runs without it (interrupted uploads are set aside for a human).
    assert_eq!(report.exit_code(), EXIT_READY);
}

#[tokio::test]
async fn v2_listing_that_does_not_know_the_owner_is_named() {
    let tenant = Tenant::start().await;
    tenant.personio.control().inject(FaultRule::new(
        "GET /v2/document-management/documents",
        Fault::Status(404),
        100,
    ));
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::PersonioDocumentListing),
        State::Missing
    );
    let detail = detail(&report, Capability::PersonioDocumentListing);
    assert!(
        detail.contains(&format!("owner_id={}", tenant.first_employee)),
        "{detail}"
    );
    assert!(
        action(&report, Capability::PersonioDocumentListing).contains("not be the v1 employee id")
    );
}

#[tokio::test]
async fn unknown_document_category_is_missing_and_lists_the_existing_ones() {
    let tenant = Tenant::start().await;
    let report = tenant
        .check(
            &tenant.manifests("Zertifikate"),
            None,
            &tenant.environment(),
        )
        .await;
    assert_eq!(
        state(&report, Capability::PersonioDocumentCategory),
        State::Missing
    );
    let category = detail(&report, Capability::PersonioDocumentCategory);
    assert!(
        category.contains("\"Zertifikate\" does not exist"),
        "{category}"
    );
    assert!(
        category.contains("Learning Certificates (id 3)"),
        "{category}"
    );
    // The listing is still probed, across all categories.
    let listing = detail(&report, Capability::PersonioDocumentListing);
    assert!(
        listing.contains("1 document(s)") && !listing.contains("in category"),
        "{listing}"
    );
    assert_eq!(report.exit_code(), EXIT_MISSING);
}

#[tokio::test]
async fn rejected_personio_credentials_skip_the_other_personio_probes() {
    let tenant = Tenant::start().await;
    let mut env = tenant.environment();
    env.insert(PERSONIO_CLIENT_SECRET.into(), "wrong".into());
    let report = tenant.check(&tenant.manifests(CATEGORY), None, &env).await;
    assert_eq!(state(&report, Capability::PersonioToken), State::Missing);
    assert!(action(&report, Capability::PersonioToken).contains(PERSONIO_CLIENT_SECRET));
    for capability in [
        Capability::PersonioAttributes,
        Capability::PersonioDocumentCategory,
        Capability::PersonioDocumentListing,
        Capability::PersonioDocumentUpload,
    ] {
        assert_eq!(state(&report, capability), State::Unknown);
        assert!(detail(&report, capability).contains("personio-token is not ok"));
    }
    assert_eq!(state(&report, Capability::ReteachToken), State::Ok);
    assert_eq!(report.exit_code(), EXIT_MISSING);
}

#[tokio::test]
async fn rejected_reteach_credentials_are_missing() {
    let tenant = Tenant::start().await;
    let mut env = tenant.environment();
    env.insert(RETEACH_CLIENT_CODE.into(), "wrong".into());
    let report = tenant.check(&tenant.manifests(CATEGORY), None, &env).await;
    assert_eq!(state(&report, Capability::ReteachToken), State::Missing);
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Unknown
    );
    assert_eq!(state(&report, Capability::PersonioToken), State::Ok);
}

#[tokio::test]
async fn unset_environment_variables_are_named() {
    let tenant = Tenant::start().await;
    let mut env = tenant.environment();
    env.remove(RETEACH_CLIENT_ID);
    env.remove(RETEACH_CLIENT_CODE);
    let report = tenant.check(&tenant.manifests(CATEGORY), None, &env).await;
    assert_eq!(state(&report, Capability::ReteachToken), State::Missing);
    assert_eq!(
        detail(&report, Capability::ReteachToken),
        "environment variable(s) RETEACH_CLIENT_ID, RETEACH_CLIENT_CODE not set"
    );
    assert_eq!(tenant.reteach.control().requests(), vec![]);
}

#[tokio::test]
async fn forbidden_customer_read_is_missing() {
    let tenant = Tenant::start().await;
    tenant
        .reteach
        .control()
        .inject(FaultRule::new("GET /customer", Fault::Status(403), 100));
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::ReteachCustomerRead),
        State::Missing
    );
    assert_eq!(report.exit_code(), EXIT_MISSING);
}

#[tokio::test]
async fn ignored_participation_filters_are_named_without_blocking() {
    let tenant = Tenant::start().await;
    tenant.reteach.set_ignore_participation_filters(true);
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::ReteachParticipationFilters),
        State::Missing
    );
    assert!(detail(&report, Capability::ReteachParticipationFilters)
        .contains("status=COMPLETED ignored: 2 of 4"));
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Ok
    );
    assert_eq!(report.exit_code(), EXIT_READY);
}

#[tokio::test]
async fn certificate_url_serving_a_page_is_missing() {
    let tenant = Tenant::start().await;
    for id in &tenant.certificate_ids {
        tenant.reteach.break_certificate(id);
    }
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Missing
    );
    assert!(detail(&report, Capability::ReteachCertificateDownload).contains("text/html"));
    assert_eq!(report.exit_code(), EXIT_MISSING);
}

#[tokio::test]
async fn forbidden_certificate_download_is_missing() {
    let tenant = Tenant::start().await;
    tenant.reteach.control().inject(FaultRule::new(
        "HEAD /certificates/",
        Fault::Status(403),
        100,
    ));
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Missing
    );
    assert!(detail(&report, Capability::ReteachCertificateDownload).contains("HEAD 403"));
}

#[tokio::test]
async fn host_refusing_head_is_asked_with_a_get_whose_body_is_dropped() {
    let tenant = Tenant::start().await;
    tenant.reteach.control().inject(FaultRule::new(
        "HEAD /certificates/",
        Fault::Status(405),
        100,
    ));
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Ok
    );
    assert!(detail(&report, Capability::ReteachCertificateDownload).contains("GET 200"));
}

#[tokio::test]
async fn empty_tenant_is_undecided_rather_than_ready() {
    let personio = PersonioSim::new(PersonioSimConfig {
        rate_limits: None,
        ..PersonioSimConfig::default()
    });
    let reteach = ReteachSim::new(Arc::new(SystemClock));
    let tenant = Tenant {
        personio_server: personio.start(([127, 0, 0, 1], 0).into()).await.unwrap(),
        reteach_server: reteach.start(([127, 0, 0, 1], 0).into()).await.unwrap(),
        personio,
        reteach,
        first_employee: 0,
        certificate_ids: Vec::new(),
    };
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::PersonioAttributes),
        State::Unknown
    );
    assert_eq!(
        state(&report, Capability::PersonioDocumentListing),
        State::Unknown
    );
    assert!(action(&report, Capability::PersonioDocumentListing).contains("--employee-id"));
    assert_eq!(
        state(&report, Capability::ReteachParticipationFilters),
        State::Unknown
    );
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Unknown
    );
    assert_eq!(state(&report, Capability::ReteachCustomerRead), State::Ok);
    assert_eq!(report.exit_code(), EXIT_UNDECIDED);
}

#[tokio::test]
async fn write_counters_see_every_non_read_request_but_token_requests() {
    let tenant = Tenant::start().await;
    let http = reqwest::Client::new();
    let reteach = tenant.reteach_server.base_url();
    let personio = tenant.personio_server.base_url();
    // Refused for want of a token, yet each one reached the simulator and counts.
    http.post(format!("{reteach}/customer"))
        .send()
        .await
        .unwrap();
    http.delete(format!("{reteach}/customer/x"))
        .send()
        .await
        .unwrap();
    http.post(format!("{reteach}/oauth/authorize"))
        .send()
        .await
        .unwrap();
    http.post(format!("{personio}/v1/company/documents"))
        .send()
        .await
        .unwrap();
    http.post(format!("{personio}/v1/auth"))
        .send()
        .await
        .unwrap();
    let reteach_writes: Vec<String> = tenant
        .reteach
        .write_requests()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(reteach_writes, vec!["POST /customer", "DELETE /customer/x"]);
    assert_eq!(tenant.personio.write_requests().len(), 1);
}
