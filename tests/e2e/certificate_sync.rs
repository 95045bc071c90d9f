//! End-to-end: the CertificateSync controller on a real kube-apiserver, running in-process against
//! the Personio and reteach simulators. Run with `scripts/test.sh --test e2e -- certificate_sync::`.

use crate::support;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use reteach_personio_operator::api::{CertificateSyncStatus, REQUESTED_AT_ANNOTATION};
use reteach_personio_operator::sim::personio::EmployeeSeed;
use reteach_personio_operator::sim::reteach::SimCustomer;
use reteach_personio_operator::sim::{Fault, FaultRule};
use reteach_personio_operator::sync::has_marker;
use serde_json::json;
use support::operator::{condition, is_ready, World, NO_RECHECK, PERSONIO_SECRET};

const EMPLOYEES: &str = "personio";
const CERTIFICATES: &str = "certificates";
/// The simulator's "Learning Certificates" category.
const LEARNING_CERTIFICATES: i64 = 3;
const UPLOADS: &str = "POST /v1/company/documents";

/// Who is who in Personio and reteach.
struct Academy {
    anna: i64,
    ben: i64,
}

/// Two employees in Personio, already users in reteach (linked by externalId), plus a reteach
/// guest without Personio id (`guest@partner.example`).
fn seed_academy(world: &World) -> Academy {
    world.personio.clock.set_behind(chrono::Duration::hours(2));
    let hired = Utc::now().date_naive() - Days::new(300);
    let anna = world.personio.sim.add_employee(
        EmployeeSeed::new("Anna", "Active", "anna@acme.example").with_hire_date(hired),
    );
    let ben = world
        .personio
        .sim
        .add_employee(EmployeeSeed::new("Ben", "Busy", "ben@acme.example").with_hire_date(hired));
    world.personio.clock.set_behind(chrono::Duration::zero());
    for (id, email) in [(anna, "anna@acme.example"), (ben, "ben@acme.example")] {
        world.reteach.sim.add_customer(SimCustomer {
            external_id: Some(id.to_string()),
            email: Some(email.into()),
            registered: true,
            ..SimCustomer::default()
        });
    }
    world.reteach.sim.add_customer(SimCustomer {
        email: Some("guest@partner.example".into()),
        first_name: Some("Gustav".into()),
        registered: true,
        ..SimCustomer::default()
    });
    Academy { anna, ben }
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse()
        .unwrap_or_else(|e| panic!("bad timestamp {text}: {e}"))
}

/// Adds a completed course with a certificate; returns the certificate id.
fn complete(
    world: &World,
    customer: &str,
    course: &str,
    at: DateTime<Utc>,
    pdf_ready: bool,
) -> String {
    world
        .reteach
        .sim
        .add_completion(customer, course, at, pdf_ready)
        .unwrap_or_else(|| panic!("unknown reteach customer {customer}"))
        .certificate_id
}

/// How many Personio documents carry the marker of `certificate_id`.
fn copies(world: &World, certificate_id: &str) -> usize {
    world
        .personio
        .sim
        .documents()
        .iter()
        .filter(|d| has_marker(d.comment.as_deref(), certificate_id))
        .count()
}

fn has_stalled(status: &CertificateSyncStatus) -> bool {
    condition(&status.common.conditions, "Stalled").is_some_and(|c| c.status == "True")
}

async fn start_both(
    world: &World,
    employee_spec: serde_json::Value,
    certificate_spec: serde_json::Value,
) {
    world
        .apply(world.employee_sync(EMPLOYEES, employee_spec))
        .await;
    world
        .apply(world.certificate_sync(CERTIFICATES, EMPLOYEES, certificate_spec))
        .await;
}

#[tokio::test]
async fn waits_for_the_employee_sync_and_starts_by_itself_once_it_succeeded() {
    // Blocked resources are not re-checked on a timer here: only the watches can wake them.
    let world = World::start_with_recheck("csync-waits", NO_RECHECK).await;
    world.apply_reteach_secret().await;
    let academy = seed_academy(&world);
    let certificate = complete(
        &world,
        &academy.anna.to_string(),
        "Datenschutz",
        at("2026-03-10T10:00:00Z"),
        true,
    );
    // The Personio Secret is missing: the EmployeeSync cannot succeed yet.
    start_both(&world, json!({}), json!({})).await;

    let waiting = world
        .wait_certificate_sync(CERTIFICATES, "Ready=False WaitingForEmployeeSync", |s| {
            condition(&s.common.conditions, "Ready")
                .is_some_and(|c| c.status == "False" && c.reason == "WaitingForEmployeeSync")
        })
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(world.personio.sim.documents().is_empty());
    assert_eq!(world.personio.sim.control().count(UPLOADS), 0);
    let still = world.certificate_sync_now(CERTIFICATES).await;
    let reason = condition(&still.status.expect("status").common.conditions, "Ready")
        .map(|c| c.reason.clone());
    assert_eq!(reason.as_deref(), Some("WaitingForEmployeeSync"));

    let (client_id, client_secret) = world.personio.sim.credentials();
    world
        .apply_secret(
            PERSONIO_SECRET,
            json!({"clientId": client_id, "clientSecret": client_secret}),
        )
        .await;
    // Secrets are not watched (the operator may only GET them): the user asks for a run, as
    // `flux reconcile` would. The CertificateSync then starts by itself through the watch.
    world
        .annotate(
            &world.employee_syncs(),
            EMPLOYEES,
            REQUESTED_AT_ANNOTATION,
            "secret-fixed",
        )
        .await;
    let started = world
        .wait_certificate_sync(CERTIFICATES, "the certificate uploaded", |s| {
            is_ready(&s.common.conditions) && s.uploaded_total == 1
        })
        .await;
    assert_eq!(
        started.metadata.generation, waiting.metadata.generation,
        "the CertificateSync was not touched"
    );
    assert_eq!(started.metadata.annotations, waiting.metadata.annotations);
    assert_eq!(copies(&world, &certificate), 1);
}

#[tokio::test]
async fn backfills_every_past_certificate_exactly_once_then_uploads_only_new_ones() {
    let world = World::with_secrets("csync-backfill").await;
    let academy = seed_academy(&world);
    let (anna, ben) = (academy.anna.to_string(), academy.ben.to_string());
    // (certificate, owner, course, completion date in Europe/Berlin)
    let past = [
        (
            complete(
                &world,
                &anna,
                "Datenschutz",
                at("2025-03-10T10:00:00Z"),
                true,
            ),
            academy.anna,
            "Datenschutz",
            NaiveDate::from_ymd_opt(2025, 3, 10),
        ),
        (
            // 23:30 UTC is already the next day in Berlin.
            complete(
                &world,
                &anna,
                "Arbeitssicherheit",
                at("2026-06-01T23:30:00Z"),
                true,
            ),
            academy.anna,
            "Arbeitssicherheit",
            NaiveDate::from_ymd_opt(2026, 6, 2),
        ),
        (
            complete(
                &world,
                &ben,
                "Datenschutz",
                at("2026-01-15T08:00:00Z"),
                true,
            ),
            academy.ben,
            "Datenschutz",
            NaiveDate::from_ymd_opt(2026, 1, 15),
        ),
    ];
    world
        .reteach
        .sim
        .add_participation(&ben, "Brandschutz", "STARTED", None);
    start_both(
        &world,
        json!({"timeZone": "Europe/Berlin"}),
        json!({"title": "Zertifikat: {course}"}),
    )
    .await;

    let backfilled = world
        .wait_certificate_sync(CERTIFICATES, "the backfill", |s| {
            is_ready(&s.common.conditions) && s.uploaded_total == 3
        })
        .await;
    let status = backfilled.status.expect("status");
    world
        .wait_event(
            CERTIFICATES,
            "Uploaded",
            "3 certificates handled (full pass): 3 uploaded, 0 already present",
        )
        .await;
    assert_eq!(status.category_id, Some(LEARNING_CERTIFICATES));
    assert_eq!(status.ledger.in_flight, None);
    let documents = world.personio.sim.documents();
    assert_eq!(documents.len(), 3);
    for (certificate, owner, course, date) in &past {
        assert_eq!(copies(&world, certificate), 1, "{certificate} exactly once");
        let document = documents
            .iter()
            .find(|d| has_marker(d.comment.as_deref(), certificate))
            .expect("uploaded");
        assert_eq!(document.owner_id, *owner);
        assert_eq!(document.category_id, LEARNING_CERTIFICATES);
        assert_eq!(document.title, format!("Zertifikat: {course}"));
        assert_eq!(document.date, *date, "date of {certificate}");
    }

    let new = complete(&world, &ben, "Brandschutz", Utc::now(), true);
    let later = world
        .wait_certificate_sync(CERTIFICATES, "the new certificate uploaded", |s| {
            s.uploaded_total == 4
        })
        .await;
    world
        .wait_event(
            CERTIFICATES,
            "Uploaded",
            "handled: 1 uploaded, 0 already present",
        )
        .await;
    let uploaded_at = later
        .status
        .and_then(|s| s.common.last_successful_sync_time)
        .expect("synced");
    let after = world
        .wait_certificate_sync(CERTIFICATES, "one more run", |s| {
            s.common.last_successful_sync_time > Some(uploaded_at)
        })
        .await;
    assert_eq!(after.status.expect("status").uploaded_total, 4);
    assert_eq!(world.personio.sim.documents().len(), 4);
    for certificate in past.iter().map(|p| &p.0).chain([&new]) {
        assert_eq!(copies(&world, certificate), 1, "{certificate} exactly once");
    }
}

fn stalled_condition(conditions: &[reteach_personio_operator::api::Condition]) -> (String, String) {
    condition(conditions, "Stalled")
        .filter(|c| c.status == "True")
        .map(|c| (c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

#[tokio::test]
async fn an_unknown_company_time_zone_stalls_the_certificate_sync_like_its_employee_sync() {
    let world = World::with_secrets("csync-time-zone").await;
    let academy = seed_academy(&world);
    let certificate = complete(
        &world,
        &academy.anna.to_string(),
        "Erste Hilfe",
        at("2026-02-02T12:00:00Z"),
        true,
    );
    // The schema's pattern allows it; only the code knows it is no IANA time zone.
    start_both(&world, json!({"timeZone": "Mars/Olympus"}), json!({})).await;

    let employees = world
        .wait_employee_sync(EMPLOYEES, "Stalled=True", |s| {
            !stalled_condition(&s.common.conditions).0.is_empty()
        })
        .await;
    let (reason, message) = stalled_condition(&employees.status.expect("status").common.conditions);
    assert_eq!(reason, "InvalidSpec");
    assert!(message.contains("spec.timeZone"), "{message}");
    assert!(message.contains("Mars/Olympus"), "{message}");

    let certificates = world
        .wait_certificate_sync(CERTIFICATES, "Stalled=True", has_stalled)
        .await;
    let status = certificates.status.expect("status");
    let (reason, message) = stalled_condition(&status.common.conditions);
    assert_eq!(
        reason, "InvalidSpec",
        "not waiting for an EmployeeSync that cannot succeed"
    );
    assert!(
        message.contains(&format!("EmployeeSync {EMPLOYEES}: spec.timeZone")),
        "names where to fix it: {message}"
    );
    assert!(message.contains("Mars/Olympus"), "{message}");
    assert!(!is_ready(&status.common.conditions));
    assert_eq!(status.uploaded_total, 0);
    assert_eq!(
        copies(&world, &certificate),
        0,
        "nothing uploaded in UTC instead"
    );
}

#[tokio::test]
async fn category_is_found_by_name_and_an_unknown_one_stalls_naming_the_existing_ones() {
    let world = World::with_secrets("csync-category").await;
    let academy = seed_academy(&world);
    let certificate = complete(
        &world,
        &academy.ben.to_string(),
        "Erste Hilfe",
        at("2026-02-02T12:00:00Z"),
        true,
    );
    world.apply(world.employee_sync(EMPLOYEES, json!({}))).await;
    world
        .apply(world.certificate_sync(
            "by-name",
            EMPLOYEES,
            json!({"documentCategory": {"name": "Other documents"}}),
        ))
        .await;
    world
        .apply(world.certificate_sync(
            "unknown",
            EMPLOYEES,
            json!({"documentCategory": {"name": "Zertifikate"}}),
        ))
        .await;

    let by_name = world
        .wait_certificate_sync("by-name", "uploaded", |s| {
            is_ready(&s.common.conditions) && s.uploaded_total == 1
        })
        .await;
    assert_eq!(by_name.status.expect("status").category_id, Some(2));
    let stalled = world
        .wait_certificate_sync("unknown", "Stalled=True", has_stalled)
        .await;
    let message = condition(
        &stalled.status.expect("status").common.conditions,
        "Stalled",
    )
    .expect("Stalled")
    .message
    .clone();
    for wanted in [
        "Zertifikate",
        "Learning Certificates",
        "Other documents",
        "Certificates of employment",
    ] {
        assert!(message.contains(wanted), "{wanted:?} in {message}");
    }
    assert_eq!(copies(&world, &certificate), 1);
    assert!(world
        .personio
        .sim
        .documents()
        .iter()
        .all(|d| d.category_id == 2));
}

#[tokio::test]
async fn pending_pdf_is_uploaded_once_ready_and_a_user_without_personio_id_is_counted() {
    let world = World::with_secrets("csync-pending").await;
    let academy = seed_academy(&world);
    let pending = complete(
        &world,
        &academy.anna.to_string(),
        "Compliance",
        at("2026-11-01T09:00:00Z"),
        false,
    );
    let guest = complete(
        &world,
        "guest@partner.example",
        "Compliance",
        at("2026-11-02T09:00:00Z"),
        true,
    );
    let ready = complete(
        &world,
        &academy.ben.to_string(),
        "Compliance",
        at("2026-11-03T09:00:00Z"),
        true,
    );
    start_both(&world, json!({}), json!({})).await;

    let first = world
        .wait_certificate_sync(CERTIFICATES, "the ready certificate uploaded", |s| {
            is_ready(&s.common.conditions) && s.uploaded_total == 1
        })
        .await;
    let status = first.status.expect("status");
    let run = status.last_run.clone().expect("lastRun");
    assert_eq!(
        (run.pending_pdf, run.unknown_employee),
        (1, 1),
        "counted: {run:?}"
    );
    // Waiting for reteach is Ready, and says so.
    let ready_condition = condition(&status.common.conditions, "Ready").expect("Ready");
    assert_eq!(ready_condition.reason, "WaitingForPdf");
    // The PDF waits in the bounded retry list; the guest is not owed to Personio until linked,
    // so it is not stored one by one.
    let waiting: BTreeSet<&str> = status
        .ledger
        .pending
        .iter()
        .map(|p| p.certificate_id.as_str())
        .collect();
    assert!(waiting.contains(pending.as_str()) && !waiting.contains(guest.as_str()));
    let status_text = serde_json::to_string(&status).expect("status serialises");
    assert!(!status_text.contains("guest@partner.example") && !status_text.contains("Gustav"));
    assert_eq!(copies(&world, &ready), 1);
    assert_eq!(copies(&world, &pending), 0);

    world.reteach.sim.finish_pdf(&pending);
    world
        .wait_certificate_sync(CERTIFICATES, "the finished PDF uploaded", |s| {
            s.uploaded_total == 2
        })
        .await;
    let settled = world
        .wait_certificate_sync(CERTIFICATES, "a run with nothing new", |s| {
            s.last_run.as_ref().is_some_and(|r| r.uploaded == 0)
        })
        .await;
    assert_eq!(settled.status.expect("status").uploaded_total, 2);
    assert_eq!(copies(&world, &pending), 1);
    assert_eq!(copies(&world, &ready), 1);
    assert_eq!(copies(&world, &guest), 0);
}

#[tokio::test]
async fn dry_run_reports_what_would_be_uploaded_and_uploads_nothing() {
    let world = World::with_secrets("csync-dryrun").await;
    let academy = seed_academy(&world);
    complete(
        &world,
        &academy.anna.to_string(),
        "Datenschutz",
        at("2026-05-05T10:00:00Z"),
        true,
    );
    complete(
        &world,
        &academy.ben.to_string(),
        "Datenschutz",
        at("2026-05-06T10:00:00Z"),
        true,
    );
    start_both(&world, json!({}), json!({"dryRun": true})).await;

    let sync = world
        .wait_certificate_sync(CERTIFICATES, "a dry run", |s| {
            is_ready(&s.common.conditions) && s.last_run.as_ref().is_some_and(|r| r.dry_run)
        })
        .await;
    let status = sync.status.expect("status");
    let run = status.last_run.clone().expect("lastRun");
    assert_eq!(run.found, 2, "{run:?}");
    assert_eq!(run.uploaded, 2, "would upload both: {run:?}");
    let message = condition(&status.common.conditions, "Ready")
        .expect("Ready")
        .message
        .clone();
    assert!(message.contains("dry run"), "{message}");
    assert_eq!(status.uploaded_total, 0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(world.personio.sim.documents().is_empty());
    assert_eq!(world.personio.sim.control().count(UPLOADS), 0);
}

#[tokio::test]
async fn upload_lost_after_personio_stored_it_is_not_uploaded_again() {
    let world = World::with_secrets("csync-lost-answer").await;
    let academy = seed_academy(&world);
    let first = complete(
        &world,
        &academy.anna.to_string(),
        "Datenschutz",
        at("2026-04-01T10:00:00Z"),
        true,
    );
    let second = complete(
        &world,
        &academy.ben.to_string(),
        "Datenschutz",
        at("2026-04-02T10:00:00Z"),
        true,
    );
    // Personio stores the first upload, then the connection breaks before the answer arrives.
    world
        .personio
        .sim
        .control()
        .inject(FaultRule::new(UPLOADS, Fault::ApplyThenReset, 1));
    start_both(&world, json!({}), json!({})).await;

    let done = world
        .wait_certificate_sync(CERTIFICATES, "both certificates accounted for", |s| {
            is_ready(&s.common.conditions) && s.uploaded_total == 2
        })
        .await;
    assert_eq!(done.status.expect("status").ledger.in_flight, None);
    assert_eq!(copies(&world, &first), 1, "no duplicate of the lost answer");
    assert_eq!(copies(&world, &second), 1);
    assert_eq!(world.personio.sim.documents().len(), 2);
}
