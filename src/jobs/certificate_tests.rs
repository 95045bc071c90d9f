use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::NaiveDate;
use chrono_tz::Europe;

use super::*;
use crate::api::{CertificateLedgerStatus, DocumentCategoryRef, RecentUpload};
use crate::jobs::fakes::{FakePersonio, UploadFault};
use crate::personio::PersonioError;
use crate::sync::certificate_plan::certificate_marker;
use crate::sync::DocumentCategory;

#[path = "certificate_fixture.rs"]
mod fixture;
use fixture::{assert_once, daily, fresh, input, reteach_with, run_ok, unavailable, CATEGORY};
pub(super) use fixture::{assert_uploaded_all, at, completion, stored_with_comment, World};

fn present(personio: &FakePersonio, certificate_id: &str, employee: &str) {
    stored_with_comment(personio, employee, certificate_marker(certificate_id));
}

fn in_flight(certificate_id: &str, employee: &str) -> CertificateLedgerStatus {
    CertificateLedgerStatus {
        cursor: Some(at("2026-11-20T00:00:00Z")),
        last_full_pass_time: Some(at("2026-11-26T00:00:00Z")),
        in_flight: Some(InFlightCertificate {
            certificate_id: certificate_id.into(),
            personio_id: employee.into(),
            started_at: at("2026-11-25T09:00:00Z"),
            participation_id: Some(format!("p-{certificate_id}")),
            completed_at: Some(at("2026-11-21T00:00:00Z")),
            uploader: None,
        }),
        ..Default::default()
    }
}

/// A store that fails every save.
struct FailingStore;

#[async_trait]
impl LedgerStore for FailingStore {
    async fn save(&self, _: &CertificateLedgerStatus, _: i64) -> Result<(), LedgerError> {
        Err(LedgerError::Write("conflict".into()))
    }
}

/// A store that records, at every save, the upload in flight and how many documents Personio
/// already holds for it.
struct WitnessStore {
    personio: Arc<FakePersonio>,
    seen: Mutex<Vec<(String, usize)>>,
}

#[async_trait]
impl LedgerStore for WitnessStore {
    async fn save(&self, ledger: &CertificateLedgerStatus, _: i64) -> Result<(), LedgerError> {
        if let Some(in_flight) = &ledger.in_flight {
            let stored = self.personio.documents_for(&in_flight.certificate_id);
            self.seen
                .lock()
                .unwrap()
                .push((in_flight.certificate_id.clone(), stored));
        }
        Ok(())
    }
}

#[tokio::test]
async fn backfill_uploads_every_past_certificate_once() {
    let world = World::new(vec![
        completion("b", Some("2"), "2025-03-01T10:00:00Z"),
        completion("a", Some("1"), "2024-01-01T23:30:00Z"),
    ]);
    let first_input = CertificateJobInput {
        tz: Europe::Berlin,
        ..world.fresh()
    };
    let outcome = world.run(&first_input).await;
    assert!(outcome.summary.backfill);
    assert_eq!((outcome.summary.found, outcome.summary.uploaded), (2, 2));
    assert_eq!(outcome.uploaded_total_delta, 2);
    assert_eq!(
        world.store.uploaded(),
        2,
        "the last save carries the run's count"
    );
    assert_eq!(outcome.ledger.cursor, Some(at("2025-03-01T10:00:00Z")));
    assert_eq!(outcome.ledger.in_flight, None);
    assert_eq!(world.store.latest(), Some(outcome.ledger.clone()));

    let documents = world.personio.documents.lock().unwrap().clone();
    assert_eq!(documents.len(), 2);
    let first = &documents[0];
    assert_eq!(first.employee_id, "1");
    assert_eq!(first.category_id, CATEGORY);
    assert_eq!(first.title, "Certificate: Course a");
    // 23:30 UTC is already the next day in Berlin.
    assert_eq!(first.date, NaiveDate::from_ymd_opt(2024, 1, 2).unwrap());
    assert_eq!(first.comment, "reteach-certificate:a");
    assert_eq!(first.file_name, "certificate-a.pdf");
    assert!(first.size > 0);

    let again = world.run(&world.after(outcome.ledger)).await;
    assert!(!again.summary.backfill);
    assert_eq!(again.summary.uploaded, 0);
    assert_eq!(world.documents(), 2);
}

#[tokio::test]
async fn records_intent_before_every_upload() {
    let personio = Arc::new(FakePersonio::default());
    let reteach = reteach_with(daily(&["a", "b"]));
    let store = WitnessStore {
        personio: personio.clone(),
        seen: Mutex::new(Vec::new()),
    };
    run_ok(personio.as_ref(), &reteach, &fresh(&store)).await;
    assert_eq!(
        *store.seen.lock().unwrap(),
        [("a".to_string(), 0), ("b".to_string(), 0)]
    );
    assert_once(&personio, &["a", "b"]);
}

/// A run after one that started uploading certificate `a` of employee 1 and never learned
/// whether it landed; with `present`, Personio holds it.
async fn resume_interrupted_upload(present: bool) -> (World, CertificateJobOutcome) {
    let world = World::new(vec![completion("a", Some("1"), "2026-11-25T08:00:00Z")]);
    if present {
        self::present(&world.personio, "a", "1");
    }
    let outcome = world.run(&world.after(in_flight("a", "1"))).await;
    (world, outcome)
}

#[tokio::test]
async fn in_flight_certificate_found_in_personio_is_not_uploaded_again() {
    let (world, outcome) = resume_interrupted_upload(true).await;
    assert_eq!(outcome.summary.already_present, 1);
    assert_eq!(outcome.summary.uploaded, 0);
    assert_eq!(outcome.uploaded_total_delta, 1);
    world.assert_once(&["a"]);
    assert_eq!(world.upload_attempts(), 0);
    assert_eq!(outcome.ledger.in_flight, None);
}

#[tokio::test]
async fn in_flight_certificate_missing_in_personio_is_uploaded_once() {
    let (world, outcome) = resume_interrupted_upload(false).await;
    assert_eq!(outcome.summary.already_present, 0);
    assert_eq!(outcome.summary.uploaded, 1);
    world.assert_once(&["a"]);
}

#[tokio::test]
async fn failing_save_prevents_any_upload() {
    let world = World::new(daily(&["a"]));
    let failing = input(CertificateLedgerStatus::default(), &FailingStore);
    let error = world.fail(&failing).await;
    assert!(matches!(error.root(), JobError::Ledger(_)));
    assert!(error.is_transient());
    assert_eq!(world.upload_attempts(), 0);
    assert_eq!(world.reteach.calls_of("download"), 0);
}

#[tokio::test]
async fn upload_timeout_keeps_in_flight_and_next_run_does_not_duplicate() {
    let world = World::default();
    world.fail_uploads([UploadFault::StoreThenFail(unavailable("timeout", true))]);
    world.list(vec![
        completion("a", Some("1"), "2026-01-01T00:00:00Z"),
        completion("b", Some("2"), "2026-01-02T00:00:00Z"),
    ]);
    let error = world
        .fail(&CertificateJobInput {
            writer: Some("pod-a/1/run7".into()),
            ..world.fresh()
        })
        .await;
    assert!(error.is_transient());
    let saved = world.store.latest().unwrap();
    assert_eq!(saved.in_flight.as_ref().unwrap().certificate_id, "a");
    assert_eq!(
        saved.in_flight.as_ref().unwrap().uploader.as_deref(),
        Some("pod-a/1/run7"),
        "the intent names the run that started the upload"
    );
    assert_eq!(world.personio.documents_for("b"), 0);

    let outcome = world.run(&world.after(saved)).await;
    assert_eq!(outcome.summary.already_present, 1);
    assert_eq!(outcome.summary.uploaded, 1);
    world.assert_once(&["a", "b"]);
    assert_eq!(outcome.ledger.cursor, Some(at("2026-01-02T00:00:00Z")));
}

#[tokio::test]
async fn interrupted_run_reports_the_uploads_before_the_stop() {
    let world = World::default();
    world.fail_uploads([
        UploadFault::Succeed,
        UploadFault::StoreThenFail(unavailable("timeout", true)),
    ]);
    world.list(daily(&["a", "b"]));
    let error = world.fail(&world.fresh()).await;
    assert!(error.is_transient());
    assert!(matches!(error.root(), JobError::Personio { .. }));
    let partial = error.partial_outcome().unwrap();
    assert_eq!(partial.summary.uploaded, 1);
    assert_eq!(partial.uploaded_total_delta, 1);
    let saved = world.store.latest().unwrap();
    // The first full pass is still in progress: it has handled "a".
    assert_eq!(saved.cursor, None);
    assert_eq!(
        saved.full_pass.unwrap().after.unwrap().participation_id,
        "p-a"
    );
    assert_eq!(saved.in_flight.unwrap().certificate_id, "b");
    // Saved with the intent for "b": "a" is counted, "b" is not (its outcome is unknown).
    assert_eq!(world.store.uploaded(), 1);
}

#[tokio::test]
async fn upload_refused_before_sending_clears_intent_and_counts_an_attempt() {
    let world = World::default();
    world.fail_uploads([UploadFault::FailBefore(unavailable("HTTP 429", false))]);
    world.list(daily(&["a"]));
    let outcome = world.run(&world.fresh()).await;
    assert_eq!(outcome.summary.failed, 1);
    assert_eq!(outcome.ledger.in_flight, None);
    assert_eq!(outcome.ledger.pending[0].attempts, 1);
    let again = world.run(&world.after(outcome.ledger)).await;
    assert_eq!(again.summary.uploaded, 1);
    world.assert_once(&["a"]);
}
#[tokio::test]
async fn certificate_waits_for_its_pdf_and_is_uploaded_when_ready() {
    let mut generating = completion("a", Some("1"), "2026-01-01T00:00:00Z");
    generating.certificate_id = None;
    generating.certificate_url = None;
    let (world, first) = World::first_run(vec![
        generating,
        completion("b", Some("1"), "2026-02-01T00:00:00Z"),
    ])
    .await;
    assert_eq!(first.summary.pending_pdf, 1);
    assert_eq!(first.summary.uploaded, 1);
    assert_eq!(first.ledger.pending.len(), 1);
    assert_eq!(first.ledger.pending[0].reason, "PdfPending");
    // The cursor may pass it: it is tracked in `pending`.
    assert_eq!(first.ledger.cursor, Some(at("2026-02-01T00:00:00Z")));

    world.reteach.completions.lock().unwrap()[0] =
        completion("a", Some("1"), "2026-01-01T00:00:00Z");
    let second = world.run(&world.after(first.ledger)).await;
    world.assert_caught_up(&second, 1, &["a", "b"]);
}

#[tokio::test]
async fn certificate_of_unknown_employee_is_uploaded_once_the_employee_is_known() {
    let world = World::default();
    world.know_only(&["1"]);
    world.list(vec![
        completion("a", None, "2026-01-01T00:00:00Z"),
        completion("b", Some("2"), "2026-01-02T00:00:00Z"),
    ]);
    let first = world.run(&world.fresh()).await;
    // A user without a Personio id is counted, never stored one by one; an id Personio does
    // not know is a failed attempt, retried.
    assert_eq!(first.summary.unknown_employee, 1);
    assert_eq!(first.summary.failed, 1);
    assert_eq!(first.summary.uploaded, 0);
    assert_eq!(first.ledger.pending.len(), 1);
    assert_eq!(first.ledger.pending[0].certificate_id, "b");
    assert_eq!(first.ledger.cursor, Some(at("2026-01-02T00:00:00Z")));

    // The EmployeeSync links the user; Personio gets the employee. The link makes the next
    // run a full pass.
    world.reteach.completions.lock().unwrap()[0].customer_external_id = Some("1".into());
    world.know_only(&["1", "2"]);
    let second = world.run(&world.full_pass(first.ledger)).await;
    world.assert_caught_up(&second, 2, &["a", "b"]);
}
#[tokio::test]
async fn rejected_document_is_reported_and_retried_every_run() {
    let world = World::default();
    world.fail_uploads([UploadFault::FailBefore(PersonioError::Rejected {
        endpoint: "documents",
        message: "file too large".into(),
    })]);
    world.list(daily(&["a"]));
    let first = world.run(&world.fresh()).await;
    assert_eq!(first.summary.failed, 1);
    assert_eq!(first.ledger.pending[0].reason, "Failed");
    assert_eq!(first.ledger.pending[0].attempts, 1);
    assert_eq!(first.failures[0].certificate_id.as_deref(), Some("a"));

    let second = world.run(&world.after(first.ledger)).await;
    assert_uploaded_all(&second, 1);
}

#[tokio::test]
async fn download_that_is_not_a_pdf_is_never_uploaded() {
    let world = World::new(daily(&["a"]));
    world
        .reteach
        .html_downloads
        .lock()
        .unwrap()
        .insert("https://reteach.test/certificates/a.pdf".into());
    let outcome = world.run(&world.fresh()).await;
    assert_eq!(world.upload_attempts(), 0);
    assert_eq!(outcome.summary.failed, 1);
    assert_eq!(outcome.failures[0].reason, "certificate file is not a PDF");
    assert_eq!(outcome.ledger.pending[0].reason, "Failed");
    assert_eq!(outcome.ledger.in_flight, None);
}

#[tokio::test]
async fn cursor_advances_and_recent_keeps_only_the_overlap() {
    let (world, outcome) = World::first_run(vec![
        completion("old", Some("1"), "2026-01-01T09:00:00Z"),
        completion("edge", Some("1"), "2026-01-01T09:50:00Z"),
        completion("last", Some("1"), "2026-01-01T10:00:00Z"),
    ])
    .await;
    assert_eq!(outcome.ledger.cursor, Some(at("2026-01-01T10:00:00Z")));
    let recent: Vec<_> = outcome
        .ledger
        .recent
        .iter()
        .map(|r| r.certificate_id.as_str())
        .collect();
    assert_eq!(recent, ["edge", "last"]);

    // A late listing inside the overlap is not uploaded twice; a new one is uploaded.
    world.complete(completion("new", Some("1"), "2026-01-01T11:00:00Z"));
    let next = world.run(&world.after(outcome.ledger)).await;
    assert_eq!(next.summary.found, 1);
    assert_eq!(next.summary.uploaded, 1);
    assert_eq!(world.documents(), 4);
    assert_eq!(
        next.ledger.recent,
        [RecentUpload {
            certificate_id: "new".into(),
            completed_at: at("2026-01-01T11:00:00Z"),
            participation_id: Some("p-new".into()),
        }]
    );
}

#[tokio::test]
async fn dry_run_uploads_and_saves_nothing() {
    let world = World::new(vec![
        completion("a", Some("1"), "2026-01-01T00:00:00Z"),
        completion("b", None, "2026-01-02T00:00:00Z"),
    ]);
    let dry = CertificateJobInput {
        dry_run: true,
        ..world.fresh()
    };
    let outcome = world.run(&dry).await;
    assert!(outcome.summary.dry_run);
    assert_eq!(outcome.summary.uploaded, 1);
    assert_eq!(outcome.summary.unknown_employee, 1);
    assert_eq!(outcome.ledger, CertificateLedgerStatus::default());
    assert_eq!(world.store.saves(), 0);
    assert_eq!(world.upload_attempts(), 0);
    assert_eq!(world.reteach.calls_of("download"), 0);
}

#[tokio::test]
async fn cancelled_run_saves_progress_without_passing_unhandled_certificates() {
    let world = World::new(daily(&["a"]));
    let cancelled = world.fresh();
    cancelled.cancel.cancel();
    let outcome = world.run(&cancelled).await;
    assert_eq!(outcome.summary.found, 0);
    assert!(outcome.stopped_early.is_some());
    assert_eq!(outcome.summary.uploaded, 0);
    assert_eq!(outcome.ledger.cursor, None);
    assert_eq!(world.upload_attempts(), 0);
}

#[tokio::test]
async fn one_failing_download_never_holds_back_later_certificates() {
    let world = World::new(daily(&["a", "b"]));
    world.fail_download("a");
    let mut ledger = CertificateLedgerStatus::default();
    for run in 1..=5 {
        let outcome = world.run(&world.after(ledger)).await;
        assert_eq!(outcome.ledger.in_flight, None);
        if run < 5 {
            assert_eq!(outcome.ledger.pending[0].attempts, run);
        } else {
            // Set aside after the fifth attempt, with a reason and without personal data.
            assert!(outcome.ledger.pending.is_empty());
            assert_eq!(outcome.newly_set_aside.len(), 1);
            assert_eq!(outcome.ledger.set_aside[0].certificate_id, "a");
            assert_eq!(
                outcome.ledger.set_aside[0].personio_id.as_deref(),
                Some("1")
            );
        }
        ledger = outcome.ledger;
    }
    world.assert_once(&["b"]);
    assert_eq!(world.personio.documents_for("a"), 0);
    // Set aside: no further attempts, until a human requests a run.
    let quiet = world.run(&world.after(ledger.clone())).await;
    assert_eq!(quiet.summary.failed, 0);
    world.reteach.failing_downloads.lock().unwrap().clear();
    let requested = CertificateJobInput {
        retry_set_aside: true,
        ..world.full_pass(ledger)
    };
    let retried = world.run(&requested).await;
    assert_eq!(retried.summary.uploaded, 1);
    assert!(retried.ledger.set_aside.is_empty());
    world.assert_once(&["a"]);
}

#[tokio::test]
async fn an_outage_stops_the_run_and_costs_no_attempts() {
    let ids = ["a", "b", "c", "d"];
    let world = World::new(daily(&ids));
    for id in ids {
        world.fail_download(id);
    }
    let error = world.fail(&world.fresh()).await;
    assert!(error.is_transient());
    assert!(error.to_string().contains("reteach"));
    let saved = world.store.latest().unwrap();
    assert_eq!(saved.in_flight, None);
    assert!(saved.pending.iter().all(|p| p.attempts == 0));
    assert_eq!(world.reteach.calls_of("download"), 3);
    assert_eq!(world.upload_attempts(), 0);
}
#[tokio::test]
async fn full_pending_list_never_stops_the_cursor() {
    use crate::sync::certificate_ledger::MAX_PENDING;
    let mut completions: Vec<_> = (0..=MAX_PENDING)
        .map(|i| {
            let mut c = completion(&format!("{i:05}"), Some("1"), "2026-01-01T00:00:00Z");
            c.completed_at += chrono::Duration::seconds(i as i64);
            c.certificate_url = None;
            c
        })
        .collect();
    completions.push(completion("ready", Some("1"), "2026-01-02T00:00:00Z"));
    let (_, outcome) = World::first_run(completions).await;
    assert_eq!(outcome.ledger.pending.len(), MAX_PENDING);
    assert_eq!(outcome.not_recorded, 1);
    assert_eq!(outcome.summary.uploaded, 1);
    assert_eq!(outcome.ledger.cursor, Some(at("2026-01-02T00:00:00Z")));
}

/// A reference to a document category by `id` or `name`, as a spec holds it.
fn category_ref(id: Option<i64>, name: Option<&str>) -> DocumentCategoryRef {
    DocumentCategoryRef {
        id,
        name: name.map(String::from),
    }
}

fn categories() -> FakePersonio {
    let personio = FakePersonio::default();
    *personio.categories.lock().unwrap() = vec![
        DocumentCategory {
            id: 1,
            name: "Contracts".into(),
        },
        DocumentCategory {
            id: 7,
            name: "Learning Certificates".into(),
        },
    ];
    personio
}

#[tokio::test]
async fn resolves_category_by_exact_name_or_id() {
    let personio = categories();
    let by_name = category_ref(None, Some("Learning Certificates"));
    assert_eq!(resolve_category(&personio, &by_name).await.unwrap(), 7);
    let by_id = category_ref(Some(1), None);
    assert_eq!(resolve_category(&personio, &by_id).await.unwrap(), 1);
}

#[tokio::test]
async fn unknown_category_names_the_existing_ones() {
    let personio = categories();
    let wanted = category_ref(None, Some("learning certificates"));
    let error = resolve_category(&personio, &wanted).await.unwrap_err();
    assert!(error.is_config());
    assert_eq!(
        error.to_string(),
        "the Personio document category \"learning certificates\" does not exist; existing categories: Contracts (id 1), Learning Certificates (id 7)"
    );
    let missing_id = category_ref(Some(99), None);
    let error = resolve_category(&personio, &missing_id).await.unwrap_err();
    assert!(error.to_string().contains("id 99"));
}

#[tokio::test]
async fn category_ref_needs_exactly_one_of_id_and_name() {
    let personio = categories();
    for wanted in [
        category_ref(None, None),
        category_ref(Some(7), Some("Learning Certificates")),
    ] {
        let error = resolve_category(&personio, &wanted).await.unwrap_err();
        assert!(matches!(error, JobError::InvalidCategoryRef));
        assert!(error.is_config());
    }
}

/// A store that fails the saves whose numbers are listed (a crash or a conflict at that point).
struct FlakyStore {
    inner: MemoryLedgerStore,
    attempts: Mutex<usize>,
    failing: HashSet<usize>,
}

#[async_trait]
impl LedgerStore for FlakyStore {
    async fn save(
        &self,
        ledger: &CertificateLedgerStatus,
        uploaded: i64,
    ) -> Result<(), LedgerError> {
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            *attempts += 1;
            *attempts
        };
        if self.failing.contains(&attempt) {
            return Err(LedgerError::Write("conflict".into()));
        }
        self.inner.save(ledger, uploaded).await
    }
}

fn fault(kind: u8) -> UploadFault {
    match kind % 5 {
        0 => UploadFault::Succeed,
        1 => UploadFault::StoreThenFail(unavailable("timeout", true)),
        2 => UploadFault::FailBefore(unavailable("HTTP 503", false)),
        3 => UploadFault::FailBefore(PersonioError::Rejected {
            endpoint: "documents",
            message: "busy".into(),
        }),
        _ => UploadFault::StoreThenFail(PersonioError::Malformed {
            endpoint: "documents",
            message: "truncated".into(),
        }),
    }
}

proptest::proptest! {
    /// Whatever fails in between (timeouts after storing, refusals, failed saves), once the
    /// faults stop every certificate is in Personio exactly once and nothing is left pending.
    #[test]
    fn every_certificate_lands_exactly_once_despite_faults(
        faults in proptest::collection::vec(0u8..5, 0..12),
        failing_saves in proptest::collection::hash_set(1usize..20, 0..4),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let personio = FakePersonio::default();
            personio
                .upload_faults
                .lock()
                .unwrap()
                .extend(faults.iter().map(|kind| fault(*kind)));
            let ids = ["a", "b", "c", "d", "e"];
            let reteach = reteach_with(daily(&ids));
            let store = FlakyStore {
                inner: MemoryLedgerStore::default(),
                attempts: Mutex::new(0),
                failing: failing_saves.clone(),
            };
            let mut clean_runs = 0;
            for _ in 0..60 {
                let ledger = store.inner.latest().unwrap_or_default();
                let mut run = input(ledger, &store);
                // Attempts are not the subject here: nothing is set aside.
                run.max_attempts = 100;
                match run_certificate_sync(&personio, &reteach, &run).await {
                    Ok(outcome) if outcome.ledger.pending.is_empty() => clean_runs += 1,
                    _ => clean_runs = 0,
                }
                if clean_runs == 2 {
                    break;
                }
            }
            assert_eq!(clean_runs, 2, "never settled");
            assert_once(&personio, &ids);
        });
    }
}
