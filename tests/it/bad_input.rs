//! Bad records from upstream, one test each: the record gets a precise, PII-free reason (or is
//! cleaned up and synced), and every other record still syncs. Runs the real clients and jobs
//! against both simulators. Spec-level bad input is in `bad_spec.rs`.

use crate::support;

use reteach_personio_operator::api::RecordFailure;
use reteach_personio_operator::clock::Clock;
use reteach_personio_operator::jobs::{
    CertificateJobOutcome as CertificateOutcome, EmployeeJobOutcome,
};
use reteach_personio_operator::personio::REQUIRED_ATTRIBUTES;
use reteach_personio_operator::sim::personio::EmployeeSeed;
use reteach_personio_operator::sim::reteach::{CertificateUrls, SimCustomer};
use reteach_personio_operator::sync::certificate_plan::UNNAMED_COURSE;
use reteach_personio_operator::sync::employee_mapping::MAX_TEXT_CHARS;
use reteach_personio_operator::sync::employee_plan::REASON_SHARED_EMAIL;
use serde_json::json;

use support::sims::{date, employee, Sims};

/// Well-formed employees synced next to each bad one.
const GOOD: usize = 3;

/// A run with [`GOOD`] good employees and `bad` ones; asserts the good ones arrived.
struct EmployeeCase {
    sims: Sims,
    bad_ids: Vec<i64>,
    outcome: EmployeeJobOutcome,
}

async fn sync_with(bad: Vec<EmployeeSeed>) -> EmployeeCase {
    let sims = Sims::start().await;
    let good_ids = sims.add_employees(GOOD);
    let bad_ids = bad
        .into_iter()
        .map(|seed| sims.personio.add_employee(seed))
        .collect();
    let outcome = sims.sync_employees().await;
    for id in &good_ids {
        assert!(
            sims.reteach.customer(&id.to_string()).is_some(),
            "good employee {id} must be synced next to a bad one: {outcome:?}"
        );
    }
    EmployeeCase {
        sims,
        bad_ids,
        outcome,
    }
}

impl EmployeeCase {
    fn bad(&self) -> String {
        self.bad_ids[0].to_string()
    }

    fn failure_of(&self, personio_id: &str) -> Option<&RecordFailure> {
        self.outcome
            .failures
            .iter()
            .find(|f| f.personio_id.as_deref() == Some(personio_id))
    }

    fn assert_skipped(&self, reason: &str) {
        let id = self.bad();
        let failure = self
            .failure_of(&id)
            .unwrap_or_else(|| panic!("employee {id} must be reported: {:?}", self.outcome));
        assert_eq!(failure.reason, reason);
        assert!(
            self.sims.reteach.customer(&id).is_none(),
            "a skipped employee gets no reteach user"
        );
        assert_eq!(self.sims.reteach.customers().len(), GOOD);
    }

    fn assert_synced_cleanly(&self) -> SimCustomer {
        let id = self.bad();
        assert!(
            self.failure_of(&id).is_none(),
            "{:?}",
            self.outcome.failures
        );
        self.sims.reteach.customer(&id).expect("synced")
    }
}

fn with_raw(attribute: &str, value: serde_json::Value) -> EmployeeSeed {
    employee(100).with_raw_value(attribute, value)
}

#[tokio::test]
async fn skips_employee_without_email_and_syncs_the_rest() {
    let case = sync_with(vec![employee(100).with_email(None)]).await;
    case.assert_skipped("no e-mail address");
}

#[tokio::test]
async fn skips_employee_with_blank_email_and_syncs_the_rest() {
    let case = sync_with(vec![employee(100).with_email(Some("   "))]).await;
    case.assert_skipped("no e-mail address");
}

#[tokio::test]
async fn skips_employee_with_invalid_email_and_syncs_the_rest() {
    let case = sync_with(vec![employee(100).with_email(Some("not-an-address"))]).await;
    case.assert_skipped("invalid e-mail address");
    let failure = case.failure_of(&case.bad()).expect("reported");
    assert!(
        !failure.reason.contains("not-an-address"),
        "never echoes the value"
    );
}

#[tokio::test]
async fn gives_a_shared_email_to_one_employee_and_reports_the_other() {
    let shared = Some("shared@example.com");
    let case = sync_with(vec![
        employee(100).with_email(shared),
        employee(101).with_email(shared),
    ])
    .await;
    let synced: Vec<&i64> = case
        .bad_ids
        .iter()
        .filter(|id| case.sims.reteach.customer(&id.to_string()).is_some())
        .collect();
    assert_eq!(synced.len(), 1, "exactly one of them gets the login");
    let reported: Vec<&RecordFailure> = case
        .bad_ids
        .iter()
        .filter_map(|id| case.failure_of(&id.to_string()))
        .collect();
    assert_eq!(reported.len(), 1, "{:?}", case.outcome.failures);
    assert_eq!(reported[0].reason, REASON_SHARED_EMAIL);
    case.sims.assert_no_duplicate_emails();
}

#[tokio::test]
async fn treats_emails_differing_only_in_case_as_shared() {
    let case = sync_with(vec![
        employee(100).with_email(Some("Same.Person@Example.com")),
        employee(101).with_email(Some("same.person@example.com")),
    ])
    .await;
    let reported: Vec<&RecordFailure> = case
        .bad_ids
        .iter()
        .filter_map(|id| case.failure_of(&id.to_string()))
        .collect();
    assert_eq!(reported.len(), 1, "{:?}", case.outcome.failures);
    assert_eq!(reported[0].reason, REASON_SHARED_EMAIL);
    case.sims.assert_no_duplicate_emails();
}

#[tokio::test]
async fn skips_employee_with_unparseable_hire_date_without_echoing_it() {
    let case = sync_with(vec![with_raw("hire_date", json!("next monday"))]).await;
    case.assert_skipped("hire_date: unparseable date");
}

#[tokio::test]
async fn skips_employee_with_impossible_hire_date() {
    let case = sync_with(vec![with_raw(
        "hire_date",
        json!("2023-02-30T00:00:00+01:00"),
    )])
    .await;
    case.assert_skipped("hire_date: unparseable date");
}

#[tokio::test]
async fn skips_employee_with_unparseable_termination_date() {
    let case = sync_with(vec![with_raw("termination_date", json!("31.12.2026"))]).await;
    case.assert_skipped("termination_date: unparseable date");
}

#[tokio::test]
async fn skips_employee_whose_employment_ends_before_it_starts() {
    let case = sync_with(vec![employee(100)
        .with_hire_date(date(2024, 5, 1))
        .with_termination_date(date(2024, 1, 31))])
    .await;
    case.assert_skipped("end of employment before hire date");
}

#[tokio::test]
async fn shortens_10000_character_names_to_what_reteach_accepts() {
    let long = "A".repeat(10_000);
    let mut seed = employee(100);
    seed.first_name = long.clone();
    seed.last_name = long;
    let case = sync_with(vec![seed]).await;
    let user = case.assert_synced_cleanly();
    let first = user.first_name.expect("first name");
    assert_eq!(first.chars().count(), MAX_TEXT_CHARS);
    assert_eq!(
        user.last_name.map(|n| n.chars().count()),
        Some(MAX_TEXT_CHARS)
    );
}

#[tokio::test]
async fn shortens_10000_character_position_department_and_office() {
    let long = "Ж".repeat(10_000);
    let seed = employee(100)
        .with_position(&long)
        .with_department(7, &long)
        .with_office(8, &long);
    let case = sync_with(vec![seed]).await;
    let user = case.assert_synced_cleanly();
    for field in [user.position, user.department, user.location] {
        let value = field.expect("field synced");
        assert_eq!(value.chars().count(), MAX_TEXT_CHARS);
        assert!(value.chars().all(|c| c == 'Ж'), "never splits a character");
    }
}

#[tokio::test]
async fn keeps_unicode_and_right_to_left_names_verbatim() {
    let mut seed = employee(100).with_email(Some("zoë.łukasz@exämple.de"));
    seed.first_name = "محمد ‏יעל".to_string();
    seed.last_name = "Zoë Łukasz-Øster 王".to_string();
    let case = sync_with(vec![seed]).await;
    let user = case.assert_synced_cleanly();
    assert_eq!(user.first_name.as_deref(), Some("محمد ‏יעל"));
    assert_eq!(user.last_name.as_deref(), Some("Zoë Łukasz-Øster 王"));
}

#[tokio::test]
async fn syncs_employee_with_unknown_gender_without_a_gender() {
    let case = sync_with(vec![employee(100).with_gender(Some("prefer not to say"))]).await;
    let user = case.assert_synced_cleanly();
    assert_eq!(user.gender, None);
}

#[tokio::test]
async fn syncs_employee_without_department_or_office() {
    let mut seed = employee(100);
    seed.department = None;
    seed.office = None;
    let case = sync_with(vec![seed]).await;
    let user = case.assert_synced_cleanly();
    assert_eq!((user.department, user.location), (None, None));
}

#[tokio::test]
async fn syncs_employee_without_hire_date_or_position() {
    let mut seed = employee(100);
    seed.hire_date = None;
    seed.position = None;
    let case = sync_with(vec![seed]).await;
    let user = case.assert_synced_cleanly();
    assert_eq!(user.position, None);
    assert_eq!(user.set_inactive_at, None, "no lock without dates");
}

#[tokio::test]
async fn stalls_naming_a_required_attribute_that_is_not_whitelisted() {
    let sims = Sims::start().await;
    sims.add_employees(GOOD);
    let without_email: Vec<&str> = REQUIRED_ATTRIBUTES
        .iter()
        .copied()
        .filter(|a| *a != "email")
        .collect();
    sims.personio.set_whitelist(Some(&without_email));
    let error = sims.employee_run(true).await.expect_err("cannot sync");
    assert!(error.is_config(), "a human must whitelist it: {error}");
    assert!(error.to_string().contains("email"), "names it: {error}");
    assert!(sims.reteach.customers().is_empty(), "nothing half-synced");

    sims.personio.set_whitelist(None);
    sims.sync_employees().await;
    sims.assert_one_user_per_employee();
}

#[tokio::test]
async fn syncs_with_exactly_the_ten_whitelisted_attributes_of_the_setup_guide() {
    let sims = Sims::start().await;
    sims.add_employees(GOOD);
    sims.personio.set_whitelist(Some(&REQUIRED_ATTRIBUTES));
    let outcome = sims.sync_employees().await;
    assert_eq!(outcome.summary.created, GOOD as i64, "{outcome:?}");
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
}

#[tokio::test]
async fn failure_reasons_carry_no_names_or_addresses() {
    let mut named = employee(100).with_email(Some("secret.person@example.com"));
    named.first_name = "Geheim".into();
    named.last_name = "Vertraulich".into();
    let case = sync_with(vec![
        named.with_raw_value("hire_date", json!("Geheim-Datum")),
        employee(101).with_email(Some("Vertraulich at example")),
        employee(102).with_email(None),
    ])
    .await;
    assert_eq!(
        case.outcome.failures.len(),
        3,
        "{:?}",
        case.outcome.failures
    );
    for failure in &case.outcome.failures {
        for secret in ["Geheim", "Vertraulich", "secret.person", "example"] {
            assert!(!failure.reason.contains(secret), "{failure:?}");
        }
    }
}

// ---- certificates ----

/// [`GOOD`] synced employees with one ready certificate each, plus whatever `bad` adds; returns
/// the good certificate ids.
async fn certificates_with(sims: &Sims) -> Vec<String> {
    sims.employees_with_certificates(GOOD).await
}

fn completed(sims: &Sims) -> chrono::DateTime<chrono::Utc> {
    sims.clock.now() - chrono::Duration::minutes(30)
}

#[tokio::test]
async fn certificate_of_a_user_without_personio_id_is_counted_and_holds_nothing_back() {
    let sims = Sims::start().await;
    let good = certificates_with(&sims).await;
    sims.reteach.add_customer(SimCustomer {
        email: Some("manual@example.com".into()),
        ..SimCustomer::default()
    });
    let stray = sims
        .reteach
        .add_completion("manual@example.com", "Safety", completed(&sims), true)
        .expect("customer");
    let outcome = sims.sync_certificates().await;
    assert_eq!(outcome.summary.unknown_employee, 1, "{outcome:?}");
    assert_eq!(outcome.summary.uploaded, GOOD as i64);
    // Not owed to Personio until the user is linked (the full pass after the link finds it):
    // counted, not stored one by one, not a failure.
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    assert!(outcome.ledger.pending.is_empty());
    sims.assert_each_certificate_once(&good);
    assert_eq!(sims.documents_for(&stray.certificate_id), 0);
}

#[tokio::test]
async fn certificate_of_an_employee_unknown_to_personio_is_a_failed_attempt_retried_later() {
    let sims = Sims::start().await;
    let good = certificates_with(&sims).await;
    sims.reteach.add_customer(SimCustomer {
        email: Some("gone@example.com".into()),
        external_id: Some("999999".into()),
        ..SimCustomer::default()
    });
    let stray = sims
        .reteach
        .add_completion("gone@example.com", "Safety", completed(&sims), true)
        .expect("customer");
    let outcome = sims.sync_certificates().await;
    assert_eq!(outcome.summary.failed, 1, "{outcome:?}");
    let failure = outcome
        .failures
        .iter()
        .find(|f| f.certificate_id.as_deref() == Some(stray.certificate_id.as_str()))
        .expect("reported");
    assert_eq!(failure.personio_id.as_deref(), Some("999999"));
    assert_eq!(failure.reason, "employee not found in Personio");
    assert!(outcome
        .ledger
        .pending
        .iter()
        .any(|p| p.participation_id == stray.participation_id && p.attempts == 1));
    sims.assert_each_certificate_once(&good);
}

#[tokio::test]
async fn refuses_a_pdf_over_30_mb_and_uploads_the_rest() {
    let sims = Sims::start().await;
    let good = certificates_with(&sims).await;
    let customer = sims.personio.add_employee(employee(100));
    sims.sync_employees().await;
    let big = sims
        .reteach
        .add_completion(&customer.to_string(), "Big", completed(&sims), true)
        .expect("customer");
    sims.reteach
        .set_certificate_size(&big.certificate_id, 31 * 1024 * 1024);
    let outcome = sims.sync_certificates().await;
    assert_eq!(outcome.summary.failed, 1, "{outcome:?}");
    let failure = outcome
        .failures
        .iter()
        .find(|f| f.certificate_id.as_deref() == Some(big.certificate_id.as_str()))
        .expect("reported");
    assert_eq!(
        failure.reason,
        "certificate file is larger than Personio accepts (30 MB)"
    );
    assert_eq!(sims.documents_for(&big.certificate_id), 0);
    sims.assert_each_certificate_once(&good);
}

#[tokio::test]
async fn uploads_a_pdf_of_exactly_30_mb() {
    let sims = Sims::start().await;
    let customer = sims.personio.add_employee(employee(100));
    sims.sync_employees().await;
    let edge = sims
        .reteach
        .add_completion(&customer.to_string(), "Edge", completed(&sims), true)
        .expect("customer");
    sims.reteach
        .set_certificate_size(&edge.certificate_id, 30 * 1024 * 1024);
    let outcome = sims.sync_certificates().await;
    assert_eq!(outcome.summary.uploaded, 1, "{outcome:?}");
    sims.assert_each_certificate_once(&[edge.certificate_id]);
}

#[tokio::test]
async fn waits_for_a_pdf_not_generated_yet_and_uploads_the_rest() {
    let sims = Sims::start().await;
    let good = certificates_with(&sims).await;
    let customer = sims.personio.add_employee(employee(100));
    sims.sync_employees().await;
    let pending = sims
        .reteach
        .add_completion(&customer.to_string(), "Pending", completed(&sims), false)
        .expect("customer");
    let outcome = sims.sync_certificates().await;
    assert_eq!(outcome.summary.pending_pdf, 1, "{outcome:?}");
    assert_eq!(outcome.summary.uploaded, GOOD as i64);
    assert!(outcome
        .ledger
        .pending
        .iter()
        .any(|p| p.participation_id == pending.participation_id));
    sims.assert_each_certificate_once(&good);
}

#[tokio::test]
async fn refuses_a_download_that_is_not_a_pdf() {
    let sims = Sims::start().await;
    let good = certificates_with(&sims).await;
    let customer = sims.personio.add_employee(employee(100));
    sims.sync_employees().await;
    let broken = sims
        .reteach
        .add_completion(&customer.to_string(), "Broken", completed(&sims), true)
        .expect("customer");
    sims.reteach.break_certificate(&broken.certificate_id);
    let outcome = sims.sync_certificates().await;
    assert_eq!(outcome.summary.failed, 1, "{outcome:?}");
    let failure = outcome
        .failures
        .iter()
        .find(|f| f.certificate_id.as_deref() == Some(broken.certificate_id.as_str()))
        .expect("reported");
    assert_eq!(failure.reason, "certificate file is not a PDF");
    assert_eq!(sims.documents_for(&broken.certificate_id), 0);
    sims.assert_each_certificate_once(&good);
}

/// Runs the certificate sync with every certificate URL of one kind; returns the outcome.
async fn certificates_behind(urls: CertificateUrls) -> (Sims, Vec<String>, CertificateOutcome) {
    let sims = Sims::start().await;
    sims.reteach.set_certificate_urls(urls);
    let certificates = certificates_with(&sims).await;
    let outcome = sims.sync_certificates().await;
    (sims, certificates, outcome)
}

#[tokio::test]
async fn uploads_certificates_from_signed_storage_urls_without_sending_the_token() {
    let (sims, certificates, outcome) = certificates_behind(CertificateUrls::SignedStorage).await;
    assert_eq!(outcome.summary.uploaded, GOOD as i64, "{outcome:?}");
    sims.assert_each_certificate_once(&certificates);
    let storage = sims.reteach.storage_requests();
    assert_eq!(storage.len(), GOOD);
    assert!(storage.iter().all(|r| !r.had_authorization));
}

#[tokio::test]
async fn follows_a_redirect_chain_to_signed_storage() {
    let (sims, certificates, outcome) = certificates_behind(CertificateUrls::Redirects(3)).await;
    assert_eq!(outcome.summary.uploaded, GOOD as i64, "{outcome:?}");
    sims.assert_each_certificate_once(&certificates);
    assert!(sims
        .reteach
        .storage_requests()
        .iter()
        .all(|r| !r.had_authorization));
}

#[tokio::test]
async fn refuses_each_certificate_whose_url_is_a_web_page() {
    let (sims, certificates, outcome) = certificates_behind(CertificateUrls::NotPdfPage).await;
    assert_eq!(outcome.summary.uploaded, 0, "{outcome:?}");
    assert_eq!(outcome.summary.failed, GOOD as i64, "{outcome:?}");
    assert!(outcome
        .failures
        .iter()
        .all(|f| f.reason == "certificate file is not a PDF"));
    for certificate in &certificates {
        assert_eq!(sims.documents_for(certificate), 0);
    }
}

#[tokio::test]
async fn refuses_each_certificate_on_a_host_outside_the_download_allowlist() {
    let sims = Sims::start().await;
    sims.reteach
        .set_certificate_urls(CertificateUrls::SignedStorage);
    sims.reteach.set_storage_host("storage.example.invalid");
    let certificates = certificates_with(&sims).await;
    let outcome = sims.sync_certificates().await;
    assert_eq!(outcome.summary.failed, GOOD as i64, "{outcome:?}");
    assert!(outcome.failures.iter().all(
        |f| f.reason == "certificate URL points at a host that is not an allowed download host"
    ));
    for certificate in &certificates {
        assert_eq!(sims.documents_for(certificate), 0);
    }
    assert!(sims.reteach.storage_requests().is_empty());
}

async fn upload_course(course: &str) -> (Sims, String) {
    let sims = Sims::start().await;
    let good = certificates_with(&sims).await;
    let customer = sims.personio.add_employee(employee(100));
    sims.sync_employees().await;
    let odd = sims
        .reteach
        .add_completion(&customer.to_string(), course, completed(&sims), true)
        .expect("customer");
    let outcome = sims.sync_certificates().await;
    assert_eq!(outcome.summary.uploaded, GOOD as i64 + 1, "{outcome:?}");
    sims.assert_each_certificate_once(&good);
    sims.assert_each_certificate_once(std::slice::from_ref(&odd.certificate_id));
    let title = sims
        .personio
        .documents()
        .into_iter()
        .find(|d| {
            reteach_personio_operator::sync::has_marker(d.comment.as_deref(), &odd.certificate_id)
        })
        .expect("uploaded")
        .title;
    (sims, title)
}

#[tokio::test]
async fn titles_a_certificate_with_an_empty_course_name_as_unnamed() {
    let (_, title) = upload_course("").await;
    assert_eq!(title, format!("Certificate: {UNNAMED_COURSE}"));
}

#[tokio::test]
async fn titles_a_certificate_with_a_blank_course_name_as_unnamed() {
    let (_, title) = upload_course("   ").await;
    assert_eq!(title, format!("Certificate: {UNNAMED_COURSE}"));
}

#[tokio::test]
async fn shortens_an_over_long_course_title_to_what_personio_accepts() {
    let (_, title) = upload_course(&"Kurs ".repeat(1_000)).await;
    assert!(title.starts_with("Certificate: Kurs"));
    assert!(
        title.chars().count() <= reteach_personio_operator::personio::MAX_TITLE_CHARS,
        "{} characters",
        title.chars().count()
    );
}

#[tokio::test]
async fn keeps_a_unicode_course_title() {
    let (_, title) = upload_course("Arbeitssicherheit – Grundlagen 🦺 سلامة").await;
    assert_eq!(title, "Certificate: Arbeitssicherheit – Grundlagen 🦺 سلامة");
}
