//! End-to-end: what real academies do to the CertificateSync, on a real kube-apiserver with the
//! operator in-process: thousands of completions of users without a Personio id, a user linked
//! later, a resource deleted and applied again, a completion back-dated after the backfill.
//! Run with `scripts/test.sh --test e2e -- certificate_tenants::`.

use crate::support;

use std::collections::BTreeSet;

use chrono::{DateTime, Days, Utc};
use kube::api::DeleteParams;
use reteach_personio_operator::api::{CertificateSyncStatus, REQUESTED_AT_ANNOTATION};
use reteach_personio_operator::sim::personio::EmployeeSeed;
use reteach_personio_operator::sim::reteach::SimCustomer;
use reteach_personio_operator::sync::has_marker;
use serde_json::json;
use support::operator::{condition, is_ready, World};

const EMPLOYEES: &str = "personio";
const CERTIFICATES: &str = "certificates";
const UPLOADS: &str = "POST /v1/company/documents";

fn copies(world: &World, certificate_id: &str) -> usize {
    world
        .personio
        .sim
        .documents()
        .iter()
        .filter(|d| has_marker(d.comment.as_deref(), certificate_id))
        .count()
}

fn complete(world: &World, customer: &str, course: &str, at: DateTime<Utc>) -> String {
    world
        .reteach
        .sim
        .add_completion(customer, course, at, true)
        .unwrap_or_else(|| panic!("unknown reteach customer {customer}"))
        .certificate_id
}

/// One employee in Personio, linked in reteach; returns the Personio id.
fn seed_employee(world: &World, first: &str, email: &str) -> String {
    world.personio.clock.set_behind(chrono::Duration::hours(2));
    let hired = Utc::now().date_naive() - Days::new(300);
    let id = world
        .personio
        .sim
        .add_employee(EmployeeSeed::new(first, "Example", email).with_hire_date(hired));
    world.personio.clock.set_behind(chrono::Duration::zero());
    world.reteach.sim.add_customer(SimCustomer {
        external_id: Some(id.to_string()),
        email: Some(email.into()),
        registered: true,
        ..SimCustomer::default()
    });
    id.to_string()
}

fn ran_after(status: &CertificateSyncStatus, after: Option<DateTime<Utc>>) -> bool {
    status.common.last_sync_time > after && status.common.last_sync_time.is_some()
}

#[tokio::test]
async fn thousands_of_unlinked_users_never_hold_back_an_employee_and_a_linked_one_is_delivered_once(
) {
    let world = World::with_secrets("csync-unlinked").await;
    let anna = seed_employee(&world, "Anna", "anna@acme.example");
    // 5,000 completions of 500 external trainers and guests, all before Anna's certificate.
    let start: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
    let mut guest_certificates: Vec<Vec<String>> = Vec::new();
    for guest in 0..500 {
        let email = format!("guest{guest}@partner.example");
        world.reteach.sim.add_customer(SimCustomer {
            email: Some(email.clone()),
            registered: true,
            ..SimCustomer::default()
        });
        let ids = (0..10)
            .map(|course| {
                let at = start + chrono::Duration::minutes(guest * 10 + course);
                complete(&world, &email, &format!("Course {course}"), at)
            })
            .collect();
        guest_certificates.push(ids);
    }
    world.apply(world.employee_sync(EMPLOYEES, json!({}))).await;
    world
        .apply(world.certificate_sync(CERTIFICATES, EMPLOYEES, json!({})))
        .await;
    let first = world
        .wait_certificate_sync(CERTIFICATES, "the first full pass", |s| {
            is_ready(&s.common.conditions) && s.ledger.last_full_pass_time.is_some()
        })
        .await;
    let status = first.status.expect("status");
    let run = status.last_run.clone().expect("last run");
    // The first run (a full pass) counts them; later incremental runs do not look at them again.
    if run.full_pass {
        assert_eq!(run.unknown_employee, 5_000);
    } else {
        assert_eq!(run.unknown_employee, 0);
    }
    assert!(status.ledger.pending.is_empty());
    assert!(
        serde_json::to_vec(&status).unwrap().len() < 64 * 1024,
        "status stays small"
    );

    // Anna's certificate, completed after all of them: uploaded by the next run.
    let annas = complete(
        &world,
        &anna,
        "Datenschutz",
        Utc::now() - chrono::Duration::minutes(1),
    );
    world
        .wait_certificate_sync(CERTIFICATES, "Anna's certificate uploaded", |s| {
            s.uploaded_total == 1
        })
        .await;
    assert_eq!(copies(&world, &annas), 1);

    // HR enters guest 7 as an employee: the EmployeeSync links the reteach user by e-mail, and
    // the next certificate run is a full pass that delivers exactly their 10 certificates (Personio
    // takes 60 uploads a minute).
    // Entered now, so the EmployeeSync's change feed reports it.
    world.personio.sim.add_employee(
        EmployeeSeed::new("Gina", "Guest", "guest7@partner.example")
            .with_hire_date(Utc::now().date_naive() - Days::new(30)),
    );
    let linked = world
        .wait_certificate_sync(CERTIFICATES, "guest 7's certificates uploaded", |s| {
            s.uploaded_total == 11 && is_ready(&s.common.conditions)
        })
        .await;
    for certificate in &guest_certificates[7] {
        assert_eq!(copies(&world, certificate), 1, "{certificate} exactly once");
    }
    for (guest, certificates) in guest_certificates.iter().enumerate() {
        if guest != 7 {
            assert!(certificates.iter().all(|c| copies(&world, c) == 0));
        }
    }
    assert_eq!(world.personio.sim.control().count(UPLOADS), 11);
    let after_link = linked.status.and_then(|s| s.common.last_sync_time);
    let later = world
        .wait_certificate_sync(CERTIFICATES, "another run", |s| ran_after(s, after_link))
        .await;
    assert_eq!(later.status.expect("status").uploaded_total, 11);
    assert_eq!(world.personio.sim.control().count(UPLOADS), 11);
}

#[tokio::test]
async fn a_deleted_and_reapplied_certificate_sync_uploads_no_document_again() {
    let world = World::with_secrets("csync-recreate").await;
    let anna = seed_employee(&world, "Anna", "anna@acme.example");
    let ben = seed_employee(&world, "Ben", "ben@acme.example");
    let start: DateTime<Utc> = "2026-01-05T08:00:00Z".parse().unwrap();
    let certificates: BTreeSet<String> = (0..12)
        .map(|i| {
            let who = if i % 3 == 0 { &ben } else { &anna };
            complete(
                &world,
                who,
                &format!("Course {i}"),
                start + chrono::Duration::days(i),
            )
        })
        .collect();
    world.apply(world.employee_sync(EMPLOYEES, json!({}))).await;
    world
        .apply(world.certificate_sync(CERTIFICATES, EMPLOYEES, json!({})))
        .await;
    world
        .wait_certificate_sync(CERTIFICATES, "the backfill", |s| s.uploaded_total == 12)
        .await;
    assert_eq!(world.personio.sim.control().count(UPLOADS), 12);

    // A GitOps prune and re-apply: the new object starts without a ledger.
    world
        .certificate_syncs()
        .delete(CERTIFICATES, &DeleteParams::default())
        .await
        .expect("delete");
    // The operator removes its finalizer first; on a loaded machine that can take a while, and
    // re-applying before the object is gone would only patch the old one.
    let mut gone = false;
    for _ in 0..600 {
        if world
            .certificate_syncs()
            .get_opt(CERTIFICATES)
            .await
            .expect("get")
            .is_none()
        {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        gone,
        "the deleted CertificateSync was still there after 60 s"
    );
    world
        .apply(world.certificate_sync(CERTIFICATES, EMPLOYEES, json!({})))
        .await;
    let again = world
        .wait_certificate_sync(CERTIFICATES, "the first run of the new object", |s| {
            is_ready(&s.common.conditions) && s.ledger.last_full_pass_time.is_some()
        })
        .await;
    let run = again.status.expect("status").last_run.expect("last run");
    assert_eq!(run.already_present, 12);
    assert_eq!(run.uploaded, 0);
    assert_eq!(world.personio.sim.control().count(UPLOADS), 12);
    for certificate in &certificates {
        assert_eq!(copies(&world, certificate), 1, "{certificate} exactly once");
    }
}

#[tokio::test]
async fn a_completion_back_dated_after_the_backfill_is_delivered_by_the_full_pass() {
    let world = World::with_secrets("csync-backdated").await;
    let anna = seed_employee(&world, "Anna", "anna@acme.example");
    let first = complete(
        &world,
        &anna,
        "Brandschutz",
        Utc::now() - chrono::Duration::hours(1),
    );
    world.apply(world.employee_sync(EMPLOYEES, json!({}))).await;
    world
        .apply(world.certificate_sync(CERTIFICATES, EMPLOYEES, json!({})))
        .await;
    let backfilled = world
        .wait_certificate_sync(CERTIFICATES, "the backfill", |s| s.uploaded_total == 1)
        .await;
    // An admin records a course completed three days ago.
    let late = complete(
        &world,
        &anna,
        "Erste Hilfe",
        Utc::now() - chrono::Duration::days(3),
    );
    let before = backfilled.status.and_then(|s| s.common.last_sync_time);
    let incremental = world
        .wait_certificate_sync(CERTIFICATES, "an incremental run", |s| {
            ran_after(s, before) && s.last_run.as_ref().is_some_and(|r| !r.full_pass)
        })
        .await;
    assert_eq!(copies(&world, &late), 0, "the cursor has passed it");
    assert_eq!(incremental.status.expect("status").uploaded_total, 1);

    world
        .annotate(
            &world.certificate_syncs(),
            CERTIFICATES,
            REQUESTED_AT_ANNOTATION,
            "compare-everything",
        )
        .await;
    let compared = world
        .wait_certificate_sync(CERTIFICATES, "the requested full pass", |s| {
            s.common.last_handled_reconcile_at.as_deref() == Some("compare-everything")
        })
        .await;
    let status = compared.status.expect("status");
    let run = status.last_run.expect("last run");
    assert!(run.full_pass);
    assert_eq!(run.uploaded, 1);
    assert_eq!(status.uploaded_total, 2);
    assert_eq!(copies(&world, &late), 1);
    assert_eq!(copies(&world, &first), 1);
    let ready = condition(&status.common.conditions, "Ready").expect("Ready");
    assert_eq!(ready.reason, "Succeeded");
}

#[tokio::test]
async fn the_preflight_probes_run_before_the_first_run_and_name_what_is_missing() {
    let world = World::with_preflight("csync-preflight").await;
    let anna = seed_employee(&world, "Anna", "anna@acme.example");
    complete(
        &world,
        &anna,
        "Datenschutz",
        Utc::now() - chrono::Duration::hours(1),
    );
    // The credential may read employees but not the attribute `position`.
    world.personio.sim.set_whitelist(Some(&[
        "first_name",
        "last_name",
        "email",
        "department",
        "office",
        "gender",
        "hire_date",
        "termination_date",
    ]));
    world.apply(world.employee_sync(EMPLOYEES, json!({}))).await;
    let employees = world
        .wait_employee_sync(EMPLOYEES, "capabilities recorded", |s| {
            !s.common.capabilities.is_empty()
        })
        .await;
    let capabilities = employees.status.expect("status").common.capabilities;
    let attributes = capabilities
        .iter()
        .find(|c| c.name == "personio-attributes")
        .expect("an attribute row");
    assert_eq!(attributes.state, "Missing", "{capabilities:?}");
    assert!(
        attributes.message.contains("position"),
        "{}",
        attributes.message
    );
    assert!(capabilities
        .iter()
        .any(|c| c.name == "personio-token" && c.state == "Ok"));
    world
        .wait_event(EMPLOYEES, "PreflightMissing", "personio-attributes")
        .await;

    // With the whitelist fixed, the CertificateSync records its own rows before its first run.
    world.personio.sim.set_whitelist(None);
    world
        .annotate(
            &world.employee_syncs(),
            EMPLOYEES,
            REQUESTED_AT_ANNOTATION,
            "fixed",
        )
        .await;
    world
        .apply(world.certificate_sync(CERTIFICATES, EMPLOYEES, json!({})))
        .await;
    let certificates = world
        .wait_certificate_sync(CERTIFICATES, "capabilities and the upload", |s| {
            !s.common.capabilities.is_empty() && s.uploaded_total == 1
        })
        .await;
    let rows = certificates.status.expect("status").common.capabilities;
    for name in ["personio-document-category", "reteach-certificate-download"] {
        assert!(rows.iter().any(|c| c.name == name), "{name} in {rows:?}");
    }
    assert!(!serde_json::to_string(&rows)
        .unwrap()
        .contains("anna@acme.example"));
}
