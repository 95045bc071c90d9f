//! What real academies hold: users without a Personio id, recreated resources, back-dated
//! completions, bulk imports, an unreadable document list.

use chrono::Duration;

use super::tests::{assert_uploaded_all, at, completion, stored_with_comment, World};
use super::*;
use crate::api::CertificateLedgerStatus;
use crate::jobs::fakes::FakePersonio;
use crate::personio::PersonioError;
use crate::sync::certificate_plan::certificate_marker;

fn stored(personio: &FakePersonio, certificate_id: &str, employee: &str) {
    let marker = certificate_marker(certificate_id);
    stored_with_comment(
        personio,
        employee,
        format!("Uploaded by the operator. {marker}"),
    );
}

fn unlinked(i: usize) -> Completion {
    let mut c = completion(&format!("ext{i:05}"), None, "2026-01-01T00:00:00Z");
    c.completed_at += Duration::seconds(i as i64);
    c
}

#[tokio::test]
async fn users_without_personio_id_never_hold_back_an_employee() {
    let mut listed: Vec<_> = (0..1_100).map(unlinked).collect();
    listed.push(completion("emp", Some("1"), "2026-02-01T00:00:00Z"));
    let world = World::new(listed);
    let first = world
        .run(&world.batched(CertificateLedgerStatus::default(), 64))
        .await;
    assert_eq!(first.summary.unknown_employee, 1_100);
    assert_uploaded_all(&first, 1);
    assert!(first.failures.is_empty());
    // A new employee certificate after them is uploaded by the next run; the unlinked users
    // cost nothing there.
    world.complete(completion("emp2", Some("1"), "2026-02-02T00:00:00Z"));
    let second = world.run(&world.after(first.ledger)).await;
    assert_eq!(second.summary.uploaded, 1);
    assert_eq!(second.summary.unknown_employee, 0);
    world.assert_once(&["emp2"]);
}

#[tokio::test]
async fn a_recreated_resource_finds_every_document_and_uploads_none() {
    let world = World::default();
    let listed: Vec<_> = (0..30)
        .map(|i| {
            let employee = (i % 4).to_string();
            let c = completion(&format!("c{i:02}"), Some(&employee), "2026-01-01T00:00:00Z");
            Completion {
                completed_at: c.completed_at + Duration::minutes(i),
                ..c
            }
        })
        .collect();
    for c in &listed {
        stored(
            &world.personio,
            c.certificate_id.as_deref().unwrap(),
            c.customer_external_id.as_deref().unwrap(),
        );
    }
    world.list(listed);
    let outcome = world.run(&world.fresh()).await;
    assert_eq!(outcome.summary.already_present, 30);
    assert_eq!(outcome.summary.uploaded, 0);
    assert_eq!(world.upload_attempts(), 0);
    // One listing per employee with certificates.
    assert_eq!(world.document_listings(), 4);
    assert!(outcome.ledger.cursor.is_some());
}

#[tokio::test]
async fn a_full_pass_delivers_a_back_dated_completion_exactly_once() {
    let (world, backfill) = World::first_run(vec![
        completion("a", Some("1"), "2026-11-20T00:00:00Z"),
        completion("b", Some("2"), "2026-11-25T00:00:00Z"),
    ])
    .await;
    assert_eq!(backfill.summary.uploaded, 2);
    // An admin marks a course completed three days before the cursor.
    world.complete(completion("late", Some("1"), "2026-11-22T00:00:00Z"));
    let incremental = world.run(&world.after(backfill.ledger.clone())).await;
    assert!(!incremental.summary.full_pass);
    assert_eq!(world.personio.documents_for("late"), 0);
    let pass = world.run(&world.full_pass(incremental.ledger)).await;
    assert!(pass.summary.full_pass);
    assert_eq!(pass.summary.uploaded, 1);
    assert_eq!(
        pass.summary.already_present, 1,
        "b is known from the overlap window"
    );
    world.assert_once(&["late", "a"]);
    assert!(pass.ledger.full_pass.is_none());
    assert!(pass.ledger.last_full_pass_time.is_some());
}

#[tokio::test]
async fn completions_from_the_future_wait_and_never_move_the_cursor() {
    let (world, outcome) = World::first_run(vec![
        completion("now", Some("1"), "2026-11-26T08:00:00Z"),
        completion("future", Some("1"), "2027-01-01T00:00:00Z"),
    ])
    .await;
    assert_eq!(outcome.summary.deferred, 1);
    assert_eq!(outcome.summary.uploaded, 1);
    assert!(outcome.ledger.cursor.unwrap() <= at("2026-11-26T09:00:00Z"));
    assert_eq!(world.personio.documents_for("future"), 0);
}

#[tokio::test]
async fn unreadable_document_list_uploads_nothing_unchecked_and_sets_interrupted_upload_aside() {
    let world = World::default();
    *world.personio.document_list_error.lock().unwrap() = Some(|| PersonioError::Forbidden {
        endpoint: "GET /v2/document-management/documents",
        message: "missing scope".into(),
    });
    world.list(vec![completion("a", Some("1"), "2026-11-20T00:00:00Z")]);
    let ledger = CertificateLedgerStatus {
        cursor: Some(at("2026-11-19T00:00:00Z")),
        last_full_pass_time: Some(at("2026-11-26T00:00:00Z")),
        in_flight: Some(InFlightCertificate {
            certificate_id: "x".into(),
            personio_id: "9".into(),
            started_at: at("2026-11-25T00:00:00Z"),
            participation_id: Some("p-x".into()),
            completed_at: Some(at("2026-11-18T00:00:00Z")),
            uploader: None,
        }),
        ..Default::default()
    };
    let outcome = world.run(&world.after(ledger)).await;
    // The interrupted upload waits for a human; the new certificate still goes up.
    assert_eq!(outcome.ledger.set_aside[0].certificate_id, "x");
    assert!(outcome.listing_unavailable.is_some());
    assert_eq!(outcome.summary.uploaded, 1);
    assert_eq!(world.personio.documents_for("x"), 0);
    // A fresh resource cannot check anything: nothing is uploaded blindly.
    let fresh = world.run(&world.fresh()).await;
    assert_eq!(fresh.summary.unverified, 1);
    assert_eq!(fresh.summary.uploaded, 0);
    assert!(fresh.ledger.full_pass.is_some(), "the pass is not finished");
}

#[tokio::test]
async fn a_bulk_import_keeps_status_small() {
    let listed: Vec<_> = (0..20_000)
        .map(|i| {
            completion(
                &format!("bulk{i:05}"),
                Some(&(i % 500).to_string()),
                "2026-11-25T00:00:00Z",
            )
        })
        .collect();
    let (world, outcome) = World::first_run(listed).await;
    assert_eq!(outcome.summary.uploaded, 20_000);
    let bytes = serde_json::to_vec(&outcome.ledger).unwrap().len();
    assert!(bytes < 64 * 1024, "ledger of {bytes} bytes");
    // The next run re-reads the window: no Personio request for what is known or left to the
    // full pass.
    let listings = world.document_listings();
    let again = world.run(&world.after(outcome.ledger)).await;
    assert_eq!(again.summary.uploaded, 0);
    assert_eq!(world.document_listings(), listings);
}
