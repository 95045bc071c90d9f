//! The fixture of the certificate job tests: the fakes and the ledger store a run works
//! against ([`World`]), the inputs of a run, and the completions reteach lists.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::UTC;
use tokio_util::sync::CancellationToken;

use crate::api::CertificateLedgerStatus;
use crate::jobs::certificate::{
    run_certificate_sync, CertificateJobInput, CertificateJobOutcome, LedgerStore,
    MemoryLedgerStore,
};
use crate::jobs::fakes::{FakeDocument, FakePersonio, FakeReteach, UploadFault};
use crate::jobs::{Fence, JobError};
use crate::personio::{PersonioApi, PersonioError};
use crate::reteach::ReteachApi;
use crate::sync::Completion;

pub(crate) const CATEGORY: i64 = 7;

pub(crate) use crate::clock::at;

pub(crate) fn now() -> DateTime<Utc> {
    at("2026-11-26T09:00:00Z")
}

pub(crate) fn completion(id: &str, employee: Option<&str>, completed_at: &str) -> Completion {
    Completion {
        participation_id: format!("p-{id}"),
        certificate_id: Some(id.into()),
        certificate_url: Some(format!("https://reteach.test/certificates/{id}.pdf")),
        course_name: format!("Course {id}"),
        completed_at: at(completed_at),
        customer_external_id: employee.map(Into::into),
        customer_id: format!("c-{id}"),
    }
}

/// Completions of employee 1, one a day from 1 January 2026, in the order of `ids`.
pub(crate) fn daily(ids: &[&str]) -> Vec<Completion> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| completion(id, Some("1"), &format!("2026-01-0{}T00:00:00Z", i + 1)))
        .collect()
}

/// Asserts that a run uploaded `uploaded` certificates and left none pending.
pub(crate) fn assert_uploaded_all(outcome: &CertificateJobOutcome, uploaded: i64) {
    assert_eq!(outcome.summary.uploaded, uploaded);
    assert!(outcome.ledger.pending.is_empty());
}

/// Asserts that Personio holds each of the certificates `ids` exactly once.
pub(crate) fn assert_once(personio: &FakePersonio, ids: &[&str]) {
    for id in ids {
        assert_eq!(personio.documents_for(id), 1, "certificate {id}");
    }
}

pub(crate) fn reteach_with(completions: Vec<Completion>) -> FakeReteach {
    let reteach = FakeReteach::default();
    *reteach.completions.lock().unwrap() = completions;
    reteach
}

pub(crate) fn input<'a>(
    ledger: CertificateLedgerStatus,
    store: &'a dyn LedgerStore,
) -> CertificateJobInput<'a> {
    let full_pass = ledger.full_pass_due(now(), Duration::hours(24), false, None);
    CertificateJobInput {
        now: now(),
        tz: UTC,
        dry_run: false,
        category_id: CATEGORY,
        title_template: "Certificate: {course}".into(),
        overlap: CertificateJobInput::default_overlap(),
        ledger,
        store,
        cancel: CancellationToken::new(),
        batch_size: crate::sync::candidate_batch::DEFAULT_BATCH_SIZE,
        full_pass,
        retry_set_aside: false,
        max_attempts: 5,
        deadline: None,
        fence: Fence::open(),
        writer: None,
    }
}

/// The input of a first run: an empty ledger.
pub(crate) fn fresh(store: &dyn LedgerStore) -> CertificateJobInput<'_> {
    input(CertificateLedgerStatus::default(), store)
}

/// One run that must succeed.
pub(crate) async fn run_ok(
    personio: &dyn PersonioApi,
    reteach: &dyn ReteachApi,
    run: &CertificateJobInput<'_>,
) -> CertificateJobOutcome {
    run_certificate_sync(personio, reteach, run).await.unwrap()
}

/// One run that must fail.
pub(crate) async fn run_err(
    personio: &dyn PersonioApi,
    reteach: &dyn ReteachApi,
    run: &CertificateJobInput<'_>,
) -> JobError {
    run_certificate_sync(personio, reteach, run)
        .await
        .unwrap_err()
}

/// What a certificate test runs against: Personio, reteach and the ledger store, all in memory.
#[derive(Default)]
pub(crate) struct World {
    pub(crate) personio: FakePersonio,
    pub(crate) reteach: FakeReteach,
    pub(crate) store: MemoryLedgerStore,
}

impl World {
    /// An empty Personio and a reteach listing `completions`.
    pub(crate) fn new(completions: Vec<Completion>) -> Self {
        let world = Self::default();
        world.list(completions);
        world
    }

    /// A world listing `completions`, after its first run (which must succeed).
    pub(crate) async fn first_run(completions: Vec<Completion>) -> (Self, CertificateJobOutcome) {
        let world = Self::new(completions);
        let outcome = world.run(&world.fresh()).await;
        (world, outcome)
    }

    /// reteach lists `completions` from now on.
    pub(crate) fn list(&self, completions: Vec<Completion>) {
        *self.reteach.completions.lock().unwrap() = completions;
    }

    /// reteach lists one more completion.
    pub(crate) fn complete(&self, completion: Completion) {
        self.reteach.completions.lock().unwrap().push(completion);
    }

    /// Personio's next uploads do what `faults` say instead of succeeding.
    pub(crate) fn fail_uploads(&self, faults: impl IntoIterator<Item = UploadFault>) {
        self.personio.upload_faults.lock().unwrap().extend(faults);
    }

    /// The certificate PDF of `id` cannot be downloaded.
    pub(crate) fn fail_download(&self, id: &str) {
        let url = format!("https://reteach.test/certificates/{id}.pdf");
        self.reteach.failing_downloads.lock().unwrap().insert(url);
    }

    /// Asserts that a run uploaded `uploaded` certificates and left none pending, and that
    /// Personio holds each of the certificates `ids` exactly once.
    pub(crate) fn assert_caught_up(
        &self,
        outcome: &CertificateJobOutcome,
        uploaded: i64,
        ids: &[&str],
    ) {
        assert_uploaded_all(outcome, uploaded);
        self.assert_once(ids);
    }

    /// Personio knows only the employees `ids` (uploads for others fail as not found).
    pub(crate) fn know_only(&self, ids: &[&str]) {
        let known = ids.iter().map(|id| id.to_string()).collect();
        *self.personio.known_employees.lock().unwrap() = Some(known);
    }

    /// Asserts that Personio holds each of the certificates `ids` exactly once.
    pub(crate) fn assert_once(&self, ids: &[&str]) {
        assert_once(&self.personio, ids);
    }

    /// Documents Personio holds.
    pub(crate) fn documents(&self) -> usize {
        self.personio.documents.lock().unwrap().len()
    }

    /// Document listings Personio served.
    pub(crate) fn document_listings(&self) -> usize {
        *self.personio.document_listings.lock().unwrap()
    }

    /// Uploads Personio was asked for.
    pub(crate) fn upload_attempts(&self) -> usize {
        *self.personio.upload_attempts.lock().unwrap()
    }

    /// The input of a first run: an empty ledger.
    pub(crate) fn fresh(&self) -> CertificateJobInput<'_> {
        fresh(&self.store)
    }

    /// The input of a run that starts from `ledger`.
    pub(crate) fn after(&self, ledger: CertificateLedgerStatus) -> CertificateJobInput<'_> {
        input(ledger, &self.store)
    }

    /// The input of a full pass that starts from `ledger`.
    pub(crate) fn full_pass(&self, ledger: CertificateLedgerStatus) -> CertificateJobInput<'_> {
        CertificateJobInput {
            full_pass: true,
            ..self.after(ledger)
        }
    }

    /// One run that must succeed.
    pub(crate) async fn run(&self, run: &CertificateJobInput<'_>) -> CertificateJobOutcome {
        run_ok(&self.personio, &self.reteach, run).await
    }

    /// One run that must fail.
    pub(crate) async fn fail(&self, run: &CertificateJobInput<'_>) -> JobError {
        run_err(&self.personio, &self.reteach, run).await
    }
}

/// Personio unreachable; `maybe_applied` when the request may have landed.
pub(crate) fn unavailable(message: &str, maybe_applied: bool) -> PersonioError {
    PersonioError::Unavailable {
        message: message.into(),
        maybe_applied,
        trace_id: None,
    }
}

/// A certificate document Personio already holds for `employee`, its comment as given.
pub(crate) fn stored_with_comment(personio: &FakePersonio, employee: &str, comment: String) {
    personio.documents.lock().unwrap().push(FakeDocument {
        employee_id: employee.into(),
        category_id: CATEGORY,
        title: "Certificate".into(),
        date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        file_name: "certificate.pdf".into(),
        comment,
        size: 1,
    });
}
