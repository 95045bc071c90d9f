//! Fault matrix: each upstream fault, on each side, during listing and during writes, against the
//! real clients and the jobs. Every row checks three promises:
//! 1. the faulty run ends truthfully (succeeds after retries, or fails naming the side, classified
//!    as transient or as a configuration problem),
//! 2. the next run, without the fault, completes,
//! 3. nothing is written twice (one reteach user per employee, one Personio document per
//!    certificate by comment marker) and nothing is lost (every employee and certificate arrives).
//!
//! The outcome of every row is listed in `RELIABILITY.md`.

use crate::support;

use chrono::Duration as ChronoDuration;
use reteach_personio_operator::jobs::JobError;
use reteach_personio_operator::personio::PersonioApi;
use reteach_personio_operator::reteach::ReteachApi;
use reteach_personio_operator::sim::{Fault, FaultRule, SimControl};

use support::sims::{personio_paths as p, reteach_paths as r, Sims, FAULT_TIMEOUT, SLOW};

/// Enough to outlast every retry of every request of a run.
const STORM: usize = 1_000;
const EMPLOYEES: usize = 5;
const CERTIFICATES: usize = 3;

#[derive(Clone, Copy, Debug)]
enum Side {
    Personio,
    Reteach,
}

#[derive(Clone, Copy, Debug)]
enum FaultKind {
    /// 429 on every attempt.
    RateLimitStorm,
    /// 503 on every attempt.
    ServerError,
    /// Answers later than the client's API timeout, every attempt. Certificate downloads and
    /// uploads stream up to 30 MB and have a budget of 300 s instead, so there the slow answer
    /// must simply arrive.
    Timeout,
    /// Connection broken mid-body, every attempt.
    ConnectionReset,
    /// 200 with a body that is not JSON, every attempt.
    MalformedJson,
    /// One 401 as if the token had just expired (the client must re-authenticate and go on).
    ExpiredToken,
    /// One 403 "Forbidden resource" to a cached token, as reteach's published spec answers a dead
    /// token (the client must re-authenticate once and go on).
    DeadTokenAnswered403,
    /// Every request 401 and the credentials no longer accepted (revoked mid-run).
    RevokedCredentials,
}

/// How the faulty run must end.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// The run succeeds without a failed record (retries or re-authentication healed it).
    Succeeds,
    /// The run succeeds, the affected records are reported as failed and retried next run.
    RecordsFail,
    /// The run stops with a transient error naming the side (→ backoff).
    Transient,
    /// The run stops with a configuration error naming the side (→ Stalled).
    Config,
}

fn control(sims: &Sims, side: Side) -> SimControl {
    match side {
        Side::Personio => sims.personio.control(),
        Side::Reteach => sims.reteach.control(),
    }
}

fn auth_path(side: Side) -> &'static str {
    match side {
        Side::Personio => p::AUTH,
        Side::Reteach => r::AUTH,
    }
}

/// Both clients hold a token before the fault starts, so a fault mid-run is mid-run.
async fn warm_up(sims: &Sims) {
    sims.personio_client
        .check_credentials()
        .await
        .expect("Personio credentials");
    sims.reteach_client.me().await.expect("reteach credentials");
}

fn inject(sims: &Sims, side: Side, prefix: &str, kind: FaultKind) {
    let control = control(sims, side);
    let rule = |fault| FaultRule::new(prefix, fault, STORM);
    match kind {
        FaultKind::RateLimitStorm => control.inject(rule(Fault::Status(429))),
        FaultKind::ServerError => control.inject(rule(Fault::Status(503))),
        FaultKind::Timeout => control.inject(rule(Fault::Delay(SLOW))),
        FaultKind::ConnectionReset => control.inject(rule(Fault::Reset)),
        FaultKind::MalformedJson => control.inject(rule(Fault::MalformedJson)),
        FaultKind::ExpiredToken => control.inject(FaultRule::new(prefix, Fault::ExpiredToken, 1)),
        FaultKind::DeadTokenAnswered403 => {
            control.inject(FaultRule::new(prefix, Fault::Status(403), 1))
        }
        FaultKind::RevokedCredentials => {
            control.inject(rule(Fault::ExpiredToken));
            control.inject(FaultRule::new(auth_path(side), Fault::Status(401), STORM));
        }
    }
}

/// Prints the observed outcome of a row (`cargo test --test it -- fault_matrix:: --nocapture` lists
/// them all; `RELIABILITY.md` is written from that list).
fn report(row: &str, observed: &Result<String, &JobError>) {
    let line = match observed {
        Ok(summary) => summary.clone(),
        Err(error) => format!(
            "run stopped, {}: {error}",
            if error.is_config() {
                "configuration (Stalled)"
            } else {
                "transient (backoff)"
            }
        ),
    };
    println!("ROW | {row} | {line}");
}

fn reasons(failures: &[reteach_personio_operator::api::RecordFailure]) -> String {
    let mut reasons: Vec<&str> = failures.iter().map(|f| f.reason.as_str()).collect();
    reasons.dedup();
    reasons.join("; ")
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Personio => "Personio",
        Side::Reteach => "reteach",
    }
}

fn check_error(error: &JobError, side: Side, expect: Expect) {
    let message = error.to_string();
    assert!(
        message.contains(side_name(side)),
        "the error must name {}: {message}",
        side_name(side)
    );
    match expect {
        Expect::Transient => assert!(error.is_transient(), "must be transient: {message}"),
        Expect::Config => assert!(
            error.is_config(),
            "must be a configuration error: {message}"
        ),
        Expect::Succeeds | Expect::RecordsFail => panic!("run failed: {message}"),
    }
}

/// Where in an EmployeeSync run the fault hits.
#[derive(Clone, Copy, Debug)]
enum EmployeeStep {
    /// Personio `GET /v1/company/employees`.
    ListEmployees,
    /// reteach `GET /customer` (full run).
    ListUsers,
    /// reteach `POST /customer` for new employees.
    CreateUsers,
    /// reteach `PUT /customer/{id}` for changed employees.
    UpdateUsers,
}

impl EmployeeStep {
    fn target(self) -> (Side, &'static str) {
        match self {
            Self::ListEmployees => (Side::Personio, p::EMPLOYEES),
            Self::ListUsers => (Side::Reteach, r::LIST_CUSTOMERS),
            Self::CreateUsers => (Side::Reteach, r::CREATE_CUSTOMER),
            Self::UpdateUsers => (Side::Reteach, r::UPDATE_CUSTOMER),
        }
    }
}

/// One employee row: fault at `step`, then a clean run; users exactly once, all fields arrived.
async fn employee_row(row: &str, step: EmployeeStep, kind: FaultKind, expect: Expect) {
    let sims = Sims::start_with_timeout(FAULT_TIMEOUT).await;
    let ids = sims.add_employees(EMPLOYEES);
    if matches!(step, EmployeeStep::UpdateUsers) {
        sims.sync_employees().await;
        for id in &ids {
            sims.personio
                .update_employee(*id, |seed| seed.position = Some("Team Lead".into()));
        }
        sims.clock.advance(ChronoDuration::minutes(10));
    }
    warm_up(&sims).await;
    let (side, prefix) = step.target();
    inject(&sims, side, prefix, kind);

    let faulty = sims.employee_run(true).await;
    report(
        row,
        &faulty.as_ref().map(|o| {
            format!(
                "run ok: {} created, {} updated, {} failed ({})",
                o.summary.created,
                o.summary.updated,
                o.summary.failed,
                reasons(&o.failures)
            )
        }),
    );
    match (&faulty, expect) {
        (Ok(outcome), Expect::Succeeds) => assert_eq!(outcome.summary.failed, 0, "{outcome:?}"),
        (Ok(outcome), Expect::RecordsFail) => {
            assert!(
                outcome.summary.failed > 0,
                "records must be reported: {outcome:?}"
            );
            assert!(
                outcome.failures.iter().all(|f| f.personio_id.is_some()),
                "each failure names its employee: {:?}",
                outcome.failures
            );
            assert!(outcome.transient_failures > 0 || matches!(kind, FaultKind::MalformedJson));
        }
        (Ok(outcome), _) => panic!("expected {expect:?}, the run succeeded: {outcome:?}"),
        (Err(error), _) => check_error(error, side, expect),
    }

    control(&sims, Side::Personio).clear_faults();
    control(&sims, Side::Reteach).clear_faults();
    sims.clock.advance(ChronoDuration::minutes(1));
    let next = sims.sync_employees().await;
    assert_eq!(next.summary.failed, 0, "the next run completes: {next:?}");
    sims.assert_one_user_per_employee();
    if matches!(step, EmployeeStep::UpdateUsers) {
        for id in &ids {
            let user = sims.reteach.customer(&id.to_string()).expect("user exists");
            assert_eq!(
                user.position.as_deref(),
                Some("Team Lead"),
                "update of {id} arrived"
            );
        }
    }
}

/// Where in a CertificateSync run the fault hits.
#[derive(Clone, Copy, Debug)]
enum CertificateStep {
    /// Personio `GET /v1/company/document-categories`.
    ListCategories,
    /// reteach `GET /participation`.
    ListCompletions,
    /// reteach `GET /certificates/{id}/download`.
    Download,
    /// Personio `POST /v1/company/documents`.
    Upload,
}

impl CertificateStep {
    fn target(self) -> (Side, &'static str) {
        match self {
            Self::ListCategories => (Side::Personio, p::CATEGORIES),
            Self::ListCompletions => (Side::Reteach, r::PARTICIPATIONS),
            Self::Download => (Side::Reteach, r::DOWNLOAD),
            Self::Upload => (Side::Personio, p::UPLOAD),
        }
    }
}

/// One certificate row: fault at `step`, then clean runs; every certificate exactly once.
async fn certificate_row(row: &str, step: CertificateStep, kind: FaultKind, expect: Expect) {
    let sims = Sims::start_with_timeout(FAULT_TIMEOUT).await;
    let certificates = sims.employees_with_certificates(CERTIFICATES).await;
    warm_up(&sims).await;
    let (side, prefix) = step.target();
    inject(&sims, side, prefix, kind);

    let faulty = sims.certificate_run().await;
    report(
        row,
        &faulty.as_ref().map(|o| {
            format!(
                "run ok: {} uploaded, {} failed ({})",
                o.summary.uploaded,
                o.summary.failed,
                reasons(&o.failures)
            )
        }),
    );
    match (&faulty, expect) {
        (Ok(outcome), Expect::Succeeds) => {
            assert_eq!(outcome.summary.failed, 0, "{outcome:?}");
            assert_eq!(outcome.summary.uploaded, CERTIFICATES as i64, "{outcome:?}");
        }
        (Ok(outcome), Expect::RecordsFail) => {
            assert!(
                outcome.summary.failed > 0,
                "records must be reported: {outcome:?}"
            );
            assert!(
                outcome.failures.iter().all(|f| f.certificate_id.is_some()),
                "each failure names its certificate: {:?}",
                outcome.failures
            );
        }
        (Ok(outcome), _) => panic!("expected {expect:?}, the run succeeded: {outcome:?}"),
        (Err(error), _) => check_error(error, side, expect),
    }

    control(&sims, Side::Personio).clear_faults();
    control(&sims, Side::Reteach).clear_faults();
    sims.clock.advance(ChronoDuration::minutes(1));
    let next = sims.sync_certificates().await;
    assert_eq!(next.summary.failed, 0, "the next run completes: {next:?}");
    assert!(next.ledger.in_flight.is_none() && next.ledger.pending.is_empty());
    sims.assert_each_certificate_once(&certificates);
    assert_eq!(
        sims.personio.documents().len(),
        CERTIFICATES,
        "no extra documents"
    );
    assert_eq!(
        *sims.uploaded_total.lock().expect("total"),
        CERTIFICATES as i64,
        "uploadedTotal counts each certificate once"
    );
}

macro_rules! employee_rows {
    ($($name:ident: $step:ident, $kind:ident => $expect:ident;)*) => {$(
        #[tokio::test]
        async fn $name() {
            employee_row(stringify!($name), EmployeeStep::$step, FaultKind::$kind, Expect::$expect).await;
        }
    )*};
}

macro_rules! certificate_rows {
    ($($name:ident: $step:ident, $kind:ident => $expect:ident;)*) => {$(
        #[tokio::test]
        async fn $name() {
            certificate_row(stringify!($name), CertificateStep::$step, FaultKind::$kind, Expect::$expect).await;
        }
    )*};
}

employee_rows! {
    personio_employee_listing_429_storm_fails_transiently_then_recovers: ListEmployees, RateLimitStorm => Transient;
    personio_employee_listing_5xx_fails_transiently_then_recovers: ListEmployees, ServerError => Transient;
    personio_employee_listing_timeout_fails_transiently_then_recovers: ListEmployees, Timeout => Transient;
    personio_employee_listing_reset_fails_transiently_then_recovers: ListEmployees, ConnectionReset => Transient;
    personio_employee_listing_malformed_json_fails_transiently_then_recovers: ListEmployees, MalformedJson => Transient;
    personio_employee_listing_expired_token_reauthenticates_and_succeeds: ListEmployees, ExpiredToken => Succeeds;
    personio_employee_listing_revoked_credentials_stall_then_recover: ListEmployees, RevokedCredentials => Config;

    reteach_user_listing_429_storm_fails_transiently_then_recovers: ListUsers, RateLimitStorm => Transient;
    reteach_user_listing_5xx_fails_transiently_then_recovers: ListUsers, ServerError => Transient;
    reteach_user_listing_timeout_fails_transiently_then_recovers: ListUsers, Timeout => Transient;
    reteach_user_listing_reset_fails_transiently_then_recovers: ListUsers, ConnectionReset => Transient;
    reteach_user_listing_malformed_json_fails_transiently_then_recovers: ListUsers, MalformedJson => Transient;
    reteach_user_listing_expired_token_reauthenticates_and_succeeds: ListUsers, ExpiredToken => Succeeds;
    reteach_user_listing_dead_token_answered_403_reauthenticates_and_succeeds: ListUsers, DeadTokenAnswered403 => Succeeds;
    reteach_user_listing_revoked_credentials_stall_then_recover: ListUsers, RevokedCredentials => Config;

    reteach_user_create_429_storm_fails_transiently_then_creates_once: CreateUsers, RateLimitStorm => Transient;
    reteach_user_create_5xx_fails_transiently_then_creates_once: CreateUsers, ServerError => Transient;
    reteach_user_create_timeout_fails_transiently_then_creates_once: CreateUsers, Timeout => Transient;
    reteach_user_create_reset_fails_transiently_then_creates_once: CreateUsers, ConnectionReset => Transient;
    reteach_user_create_malformed_json_fails_transiently_then_creates_once: CreateUsers, MalformedJson => Transient;
    reteach_user_create_expired_token_reauthenticates_and_succeeds: CreateUsers, ExpiredToken => Succeeds;
    reteach_user_create_dead_token_answered_403_reauthenticates_and_succeeds: CreateUsers, DeadTokenAnswered403 => Succeeds;
    reteach_user_create_revoked_credentials_stall_then_recover: CreateUsers, RevokedCredentials => Config;

    reteach_user_update_429_storm_fails_transiently_then_updates: UpdateUsers, RateLimitStorm => Transient;
    reteach_user_update_5xx_fails_transiently_then_updates: UpdateUsers, ServerError => Transient;
    reteach_user_update_timeout_fails_transiently_then_updates: UpdateUsers, Timeout => Transient;
    reteach_user_update_reset_fails_transiently_then_updates: UpdateUsers, ConnectionReset => Transient;
    reteach_user_update_malformed_json_fails_transiently_then_updates: UpdateUsers, MalformedJson => Transient;
    reteach_user_update_expired_token_reauthenticates_and_succeeds: UpdateUsers, ExpiredToken => Succeeds;
    reteach_user_update_dead_token_answered_403_reauthenticates_and_succeeds: UpdateUsers, DeadTokenAnswered403 => Succeeds;
    reteach_user_update_revoked_credentials_stall_then_recover: UpdateUsers, RevokedCredentials => Config;
}

certificate_rows! {
    personio_category_listing_429_storm_fails_transiently_then_uploads_once: ListCategories, RateLimitStorm => Transient;
    personio_category_listing_5xx_fails_transiently_then_uploads_once: ListCategories, ServerError => Transient;
    personio_category_listing_timeout_fails_transiently_then_uploads_once: ListCategories, Timeout => Transient;
    personio_category_listing_reset_fails_transiently_then_uploads_once: ListCategories, ConnectionReset => Transient;
    personio_category_listing_malformed_json_fails_transiently_then_uploads_once: ListCategories, MalformedJson => Transient;
    personio_category_listing_expired_token_reauthenticates_and_uploads_once: ListCategories, ExpiredToken => Succeeds;
    personio_category_listing_revoked_credentials_stall_then_upload_once: ListCategories, RevokedCredentials => Config;

    personio_upload_429_storm_fails_transiently_then_uploads_once: Upload, RateLimitStorm => Transient;
    personio_upload_5xx_fails_transiently_then_uploads_once: Upload, ServerError => Transient;
    personio_upload_slower_than_api_timeout_succeeds_within_upload_budget: Upload, Timeout => Succeeds;
    personio_upload_reset_fails_transiently_then_uploads_once: Upload, ConnectionReset => Transient;
    personio_upload_malformed_json_fails_transiently_then_uploads_once: Upload, MalformedJson => Transient;
    personio_upload_expired_token_is_a_failed_attempt_then_uploads_once: Upload, ExpiredToken => RecordsFail;
    personio_upload_revoked_credentials_stall_then_upload_once: Upload, RevokedCredentials => Config;

    reteach_completion_listing_429_storm_fails_transiently_then_uploads_once: ListCompletions, RateLimitStorm => Transient;
    reteach_completion_listing_5xx_fails_transiently_then_uploads_once: ListCompletions, ServerError => Transient;
    reteach_completion_listing_timeout_fails_transiently_then_uploads_once: ListCompletions, Timeout => Transient;
    reteach_completion_listing_reset_fails_transiently_then_uploads_once: ListCompletions, ConnectionReset => Transient;
    reteach_completion_listing_malformed_json_fails_transiently_then_uploads_once: ListCompletions, MalformedJson => Transient;
    reteach_completion_listing_expired_token_reauthenticates_and_uploads_once: ListCompletions, ExpiredToken => Succeeds;
    reteach_completion_listing_dead_token_answered_403_reauthenticates_and_uploads_once: ListCompletions, DeadTokenAnswered403 => Succeeds;
    reteach_completion_listing_revoked_credentials_stall_then_upload_once: ListCompletions, RevokedCredentials => Config;

    reteach_download_429_storm_fails_transiently_then_uploads_once: Download, RateLimitStorm => Transient;
    reteach_download_5xx_fails_transiently_then_uploads_once: Download, ServerError => Transient;
    reteach_download_slower_than_api_timeout_succeeds_within_download_budget: Download, Timeout => Succeeds;
    reteach_download_reset_fails_transiently_then_uploads_once: Download, ConnectionReset => Transient;
    reteach_download_malformed_body_is_refused_then_uploaded_next_run: Download, MalformedJson => RecordsFail;
    reteach_download_expired_token_reauthenticates_and_uploads_once: Download, ExpiredToken => Succeeds;
    reteach_download_dead_token_answered_403_reauthenticates_and_uploads_once: Download, DeadTokenAnswered403 => Succeeds;
    reteach_download_revoked_credentials_stall_then_upload_once: Download, RevokedCredentials => Config;
}

/// A write that reached reteach but whose answer was lost must not create the user twice.
#[tokio::test]
async fn reteach_create_applied_but_answer_lost_creates_each_user_once() {
    let sims = Sims::start_with_timeout(FAULT_TIMEOUT).await;
    sims.add_employees(EMPLOYEES);
    sims.reteach.control().inject(FaultRule::new(
        r::CREATE_CUSTOMER,
        Fault::ApplyThenReset,
        STORM,
    ));
    let _ = sims.employee_run(true).await;
    sims.reteach.control().clear_faults();
    sims.clock.advance(ChronoDuration::minutes(1));
    let next = sims.sync_employees().await;
    assert_eq!(next.summary.failed, 0, "{next:?}");
    sims.assert_one_user_per_employee();
}

/// An upload that reached Personio but whose answer was lost is found by its marker and never
/// uploaded again.
#[tokio::test]
async fn personio_upload_applied_but_answer_lost_is_found_by_marker_not_reuploaded() {
    let sims = Sims::start_with_timeout(FAULT_TIMEOUT).await;
    let certificates = sims.employees_with_certificates(CERTIFICATES).await;
    sims.personio
        .control()
        .inject(FaultRule::new(p::UPLOAD, Fault::ApplyThenReset, 1));
    let faulty = sims.certificate_run().await;
    let error = faulty.expect_err("the run cannot confirm the upload");
    assert!(error.is_transient(), "{error}");
    assert!(
        sims.saved_ledger().in_flight.is_some(),
        "the intent is kept"
    );
    assert_eq!(
        sims.personio.documents().len(),
        1,
        "the document did arrive"
    );

    sims.clock.advance(ChronoDuration::minutes(1));
    let next = sims.sync_certificates().await;
    assert_eq!(next.summary.already_present, 1, "{next:?}");
    sims.assert_each_certificate_once(&certificates);
    assert_eq!(sims.personio.documents().len(), CERTIFICATES);
    assert_eq!(
        *sims.uploaded_total.lock().expect("total"),
        CERTIFICATES as i64
    );
}

/// While Personio's document listing fails, an unconfirmed upload is neither retried nor
/// forgotten.
#[tokio::test]
async fn unconfirmed_upload_waits_while_personio_document_listing_fails() {
    let sims = Sims::start_with_timeout(FAULT_TIMEOUT).await;
    let certificates = sims.employees_with_certificates(CERTIFICATES).await;
    sims.personio
        .control()
        .inject(FaultRule::new(p::UPLOAD, Fault::ApplyThenReset, 1));
    assert!(sims.certificate_run().await.is_err());
    sims.personio
        .control()
        .inject(FaultRule::new(p::DOCUMENTS, Fault::Status(503), STORM));
    let blocked = sims
        .certificate_run()
        .await
        .expect_err("cannot check the marker");
    assert!(blocked.is_transient(), "{blocked}");
    assert!(blocked.to_string().contains("Personio"), "{blocked}");
    assert_eq!(
        sims.personio.documents().len(),
        1,
        "nothing uploaded while unchecked"
    );
    assert!(
        sims.saved_ledger().in_flight.is_some(),
        "the intent is still kept"
    );

    sims.personio.control().clear_faults();
    sims.sync_certificates().await;
    sims.assert_each_certificate_once(&certificates);
    assert_eq!(sims.personio.documents().len(), CERTIFICATES);
}

/// A short 429 burst is absorbed by the client's retries within the run.
#[tokio::test]
async fn short_429_burst_on_each_side_is_retried_within_the_run() {
    let sims = Sims::start_with_timeout(FAULT_TIMEOUT).await;
    let certificates = sims.employees_with_certificates(CERTIFICATES).await;
    let burst = support::sims::ATTEMPTS - 1;
    sims.personio
        .control()
        .inject(FaultRule::new(p::CATEGORIES, Fault::Status(429), burst));
    sims.reteach
        .control()
        .inject(FaultRule::new(r::PARTICIPATIONS, Fault::Status(429), burst));
    let outcome = sims.sync_certificates().await;
    assert_eq!(outcome.summary.uploaded, CERTIFICATES as i64);
    sims.assert_each_certificate_once(&certificates);
}

/// One user's update failing through every retry is that record's failure; the others update
/// and the run completes (its cursor stays, so the next run tries again).
#[tokio::test]
async fn one_failing_update_is_reported_for_that_employee_and_the_rest_update() {
    let sims = Sims::start_with_timeout(FAULT_TIMEOUT).await;
    let ids = sims.add_employees(EMPLOYEES);
    sims.sync_employees().await;
    for id in &ids {
        sims.personio
            .update_employee(*id, |seed| seed.position = Some("Team Lead".into()));
    }
    sims.clock.advance(ChronoDuration::minutes(10));
    let victim = ids[2];
    let customer = sims.reteach.customer(&victim.to_string()).expect("user").id;
    sims.reteach.control().inject(FaultRule::new(
        format!("{}{customer}", r::UPDATE_CUSTOMER),
        Fault::Status(503),
        STORM,
    ));
    let outcome = sims.employee_run(true).await.expect("run completes");
    assert_eq!(outcome.summary.updated, EMPLOYEES as i64 - 1, "{outcome:?}");
    assert_eq!(outcome.summary.failed, 1);
    assert_eq!(outcome.failures.len(), 1);
    assert_eq!(
        outcome.failures[0].personio_id.as_deref(),
        Some(victim.to_string().as_str())
    );
    assert_eq!(
        outcome.failures[0].reason,
        "reteach was unavailable; retried next run"
    );

    sims.reteach.control().clear_faults();
    sims.clock.advance(ChronoDuration::minutes(5));
    let next = sims.employee_run(false).await.expect("next run");
    assert_eq!(next.summary.failed, 0, "{next:?}");
    let user = sims.reteach.customer(&victim.to_string()).expect("user");
    assert_eq!(user.position.as_deref(), Some("Team Lead"));
    sims.assert_one_user_per_employee();
}

/// reteach refusing one download (403) is that certificate's failure; it stays pending and is
/// uploaded once reteach allows it.
#[tokio::test]
async fn forbidden_download_is_refused_for_that_certificate_and_retried_later() {
    let sims = Sims::start_with_timeout(FAULT_TIMEOUT).await;
    let certificates = sims.employees_with_certificates(CERTIFICATES).await;
    let refused = &certificates[1];
    sims.reteach.control().inject(FaultRule::new(
        format!("{}{refused}", r::DOWNLOAD),
        Fault::Status(403),
        STORM,
    ));
    let outcome = sims.certificate_run().await.expect("run completes");
    assert_eq!(
        outcome.summary.uploaded,
        CERTIFICATES as i64 - 1,
        "{outcome:?}"
    );
    assert_eq!(outcome.failures.len(), 1);
    assert_eq!(
        outcome.failures[0].certificate_id.as_deref(),
        Some(refused.as_str())
    );
    assert_eq!(
        outcome.failures[0].reason,
        "reteach refused the certificate download: the app lacks access to it"
    );

    sims.reteach.control().clear_faults();
    sims.clock.advance(ChronoDuration::minutes(30));
    let next = sims.sync_certificates().await;
    assert_eq!(next.summary.uploaded, 1, "{next:?}");
    sims.assert_each_certificate_once(&certificates);
}

/// A credential without the right to write documents stops the run as a configuration problem
/// that names the endpoint; nothing is uploaded and nothing is lost.
#[tokio::test]
async fn personio_denying_uploads_stalls_naming_the_endpoint() {
    let sims = Sims::start_with_timeout(FAULT_TIMEOUT).await;
    let certificates = sims.employees_with_certificates(CERTIFICATES).await;
    sims.personio
        .control()
        .inject(FaultRule::new(p::UPLOAD, Fault::Status(403), STORM));
    let error = sims.certificate_run().await.expect_err("cannot upload");
    assert!(error.is_config(), "{error}");
    assert!(
        error
            .to_string()
            .contains("Personio denied POST /v1/company/documents"),
        "{error}"
    );
    assert!(sims.personio.documents().is_empty());
    assert!(
        sims.saved_ledger().in_flight.is_none(),
        "a refusal stored nothing"
    );

    sims.personio.control().clear_faults();
    sims.sync_certificates().await;
    sims.assert_each_certificate_once(&certificates);
}
