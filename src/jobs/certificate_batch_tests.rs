//! The certificate job walking the reteach listing in passes of `batch_size` (bounded memory):
//! every certificate handled exactly once, in completion order, whatever order reteach lists in.

use chrono::Duration;

use super::tests::{at, completion, World};
use super::*;
use crate::api::{CertificateLedgerStatus, PendingCertificate};
use crate::jobs::fakes::FakePersonio;

impl World {
    /// The input of a run over `ledger` that walks the listing in passes of `batch_size`.
    pub(super) fn batched(
        &self,
        ledger: CertificateLedgerStatus,
        batch_size: usize,
    ) -> CertificateJobInput<'_> {
        CertificateJobInput {
            batch_size,
            ..self.after(ledger)
        }
    }
}

/// `n` completions listed in scrambled order, several sharing a completion time.
fn scrambled(n: usize) -> Vec<Completion> {
    (0..n)
        .map(|i| {
            let k = (i * 7) % n;
            let mut c = completion(&format!("{k:03}"), Some("1"), "2026-01-01T00:00:00Z");
            c.completed_at += Duration::minutes((k / 3) as i64);
            c
        })
        .collect()
}

fn uploaded_order(personio: &FakePersonio) -> Vec<String> {
    personio
        .documents
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.file_name.clone())
        .collect()
}

#[tokio::test]
async fn backfill_in_passes_uploads_in_completion_order_exactly_once() {
    let world = World::new(scrambled(23));
    let run = world.batched(CertificateLedgerStatus::default(), 4);
    let outcome = world.run(&run).await;

    assert_eq!((outcome.summary.found, outcome.summary.uploaded), (23, 23));
    let expected: Vec<String> = (0..23).map(|k| format!("certificate-{k:03}.pdf")).collect();
    assert_eq!(uploaded_order(&world.personio), expected);
    // ⌈23 / 4⌉ passes, each one listing.
    assert_eq!(world.reteach.calls_of("completed_participations"), 6);
    assert_eq!(
        outcome.ledger.cursor,
        Some(at("2026-01-01T00:07:00Z")),
        "cursor at the last completion"
    );

    // The next run finds nothing new: the overlap re-reads are in `recent`.
    let again = world.run(&world.batched(outcome.ledger, 4)).await;
    assert_eq!((again.summary.found, again.summary.uploaded), (0, 0));
    assert_eq!(world.documents(), 23);
}

#[tokio::test]
async fn pending_certificate_also_listed_is_handled_once() {
    let ready = completion("late", Some("1"), "2026-01-01T00:05:00Z");
    let mut listed = scrambled(5);
    listed.push(ready.clone());
    let world = World::new(listed);
    let ledger = CertificateLedgerStatus {
        cursor: Some(at("2026-01-01T00:00:30Z")),
        pending: vec![PendingCertificate {
            certificate_id: "late".into(),
            participation_id: ready.participation_id.clone(),
            completed_at: ready.completed_at,
            reason: "PdfPending".into(),
            attempts: 0,
            last_error: None,
        }],
        last_full_pass_time: Some(at("2026-01-01T00:00:30Z")),
        ..Default::default()
    };
    let outcome = world.run(&world.batched(ledger, 2)).await;

    world.assert_once(&["late"]);
    assert_eq!((outcome.summary.found, outcome.summary.uploaded), (6, 6));
    assert!(outcome.ledger.pending.is_empty());
}

#[tokio::test]
async fn certificate_pended_in_one_pass_is_not_counted_again_in_the_next() {
    let mut listed = scrambled(6);
    // The earliest one has no PDF yet: it is pended by the first pass and lies in the overlap
    // window of every later pass.
    listed
        .iter_mut()
        .find(|c| c.certificate_id.as_deref() == Some("000"))
        .unwrap()
        .certificate_url = None;
    let world = World::new(listed);
    let outcome = world
        .run(&world.batched(CertificateLedgerStatus::default(), 2))
        .await;

    assert_eq!(outcome.summary.found, 6);
    assert_eq!(
        (outcome.summary.uploaded, outcome.summary.pending_pdf),
        (5, 1)
    );
    assert_eq!(outcome.ledger.pending.len(), 1);
    assert_eq!(world.documents(), 5);
}

#[tokio::test]
async fn dry_run_counts_every_certificate_once_across_passes() {
    let world = World::new(scrambled(10));
    let dry = CertificateJobInput {
        dry_run: true,
        ..world.batched(CertificateLedgerStatus::default(), 3)
    };
    let outcome = world.run(&dry).await;

    assert_eq!((outcome.summary.found, outcome.summary.uploaded), (10, 10));
    assert_eq!(world.reteach.calls_of("completed_participations"), 4);
    assert!(world.personio.documents.lock().unwrap().is_empty());
    assert_eq!(world.store.saves(), 0);
}

#[tokio::test]
async fn listing_failure_in_a_later_pass_keeps_the_progress_of_earlier_ones() {
    let world = World::new(scrambled(6));
    world.reteach.fail_listing_after(1);
    let error = world
        .fail(&world.batched(CertificateLedgerStatus::default(), 4))
        .await;

    let JobError::Interrupted { partial, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(partial.summary.uploaded, 4);
    assert!(error.is_transient());
    let saved = world.store.latest().unwrap();
    // The first full pass resumes after what it handled.
    assert_eq!(
        saved
            .full_pass
            .as_ref()
            .unwrap()
            .after
            .as_ref()
            .unwrap()
            .completed_at,
        at("2026-01-01T00:01:00Z")
    );
    assert_eq!(saved.in_flight, None);

    // The next run continues after the cursor and uploads only the rest.
    *world.reteach.listings_before_failure.lock().unwrap() = None;
    let rest = world.run(&world.batched(saved, 4)).await;
    assert_eq!(rest.summary.uploaded, 2);
    assert_eq!(world.documents(), 6);
}
