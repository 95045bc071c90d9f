//! Both syncs end to end without Kubernetes: real clients, real jobs, both simulators, a manual
//! clock. The scenarios of issues 4 (EmployeeSync) and 5 (CertificateSync) that need no apiserver.

use crate::support;

use chrono::{Duration, NaiveDate};
use reteach_personio_operator::clock::Clock;
use reteach_personio_operator::sim::reteach::SimCustomer;
use reteach_personio_operator::sync::certificate_marker;
use reteach_personio_operator::sync::lock_window::start_of_day;

use support::sims::{date, employee, Sims, CATEGORY, TZ};

/// The company day of [`support::sims::start_time`] in Berlin.
fn today() -> NaiveDate {
    date(2026, 11, 26)
}

fn user_is_locked(sims: &Sims, personio_id: i64) -> bool {
    sims.reteach.status_of(&personio_id.to_string()) == Some("INACTIVE")
}

// ---- EmployeeSync: volumes ----

async fn syncs_a_company_of(size: usize) {
    let sims = Sims::start().await;
    sims.add_employees(size);
    let first = sims.sync_employees().await;
    assert_eq!(first.summary.seen, size as i64);
    assert_eq!(first.summary.created, size as i64, "{:?}", first.failures);
    assert_eq!(sims.reteach.customers().len(), size);
    sims.assert_one_user_per_employee();

    let writes = sims.reteach.total_writes();
    sims.clock.advance(Duration::minutes(5));
    let again = sims.sync_employees().await;
    assert_eq!(
        again.summary.unchanged, size as i64,
        "a second full run changes nothing"
    );
    assert_eq!(sims.reteach.total_writes(), writes, "and writes nothing");
}

#[tokio::test]
async fn syncs_an_empty_company_without_writing() {
    syncs_a_company_of(0).await;
}

#[tokio::test]
async fn syncs_a_company_of_one() {
    syncs_a_company_of(1).await;
}

#[tokio::test]
async fn syncs_250_employees_across_the_reteach_page_boundary() {
    syncs_a_company_of(250).await;
}

#[tokio::test]
async fn syncs_1000_employees_across_many_pages() {
    syncs_a_company_of(1_000).await;
}

// ---- EmployeeSync: changes ----

#[tokio::test]
async fn follows_an_email_change_on_the_same_user() {
    let sims = Sims::start().await;
    let id = sims.add_employees(1)[0];
    sims.sync_employees().await;
    let user_id = sims.reteach.customer(&id.to_string()).expect("user").id;
    sims.clock.advance(Duration::minutes(10));
    sims.personio.update_employee(id, |seed| {
        seed.email = Some("new.address@example.com".into())
    });
    let outcome = sims.employee_run(false).await.expect("incremental run");
    assert_eq!(outcome.summary.updated, 1, "{outcome:?}");
    let user = sims.reteach.customer(&id.to_string()).expect("user");
    assert_eq!(user.id, user_id, "the same reteach user, not a new one");
    assert_eq!(user.email.as_deref(), Some("new.address@example.com"));
    sims.assert_one_user_per_employee();
}

#[tokio::test]
async fn unlocks_a_rehired_employee_on_the_same_user() {
    let sims = Sims::start().await;
    let id = sims.personio.add_employee(
        employee(1)
            .with_hire_date(date(2020, 1, 1))
            .with_termination_date(date(2025, 6, 30))
            .with_status("inactive"),
    );
    sims.sync_employees().await;
    assert!(user_is_locked(&sims, id), "left in 2025: locked");
    let user_id = sims.reteach.customer(&id.to_string()).expect("user").id;

    sims.clock.advance(Duration::minutes(10));
    sims.personio.update_employee(id, |seed| {
        seed.hire_date = Some(date(2026, 11, 1));
        seed.termination_date = None;
        seed.status = "active".into();
    });
    let outcome = sims.employee_run(false).await.expect("incremental run");
    assert_eq!(outcome.summary.unlocked, 1, "{outcome:?}");
    assert!(!user_is_locked(&sims, id), "rehired: unlocked");
    assert_eq!(
        sims.reteach.customer(&id.to_string()).expect("user").id,
        user_id,
        "learning history stays with the same user"
    );
}

async fn with_contract_end(end: NaiveDate) -> (Sims, i64) {
    let sims = Sims::start().await;
    let id = sims
        .personio
        .add_employee(employee(1).with_termination_date(end));
    sims.sync_employees().await;
    (sims, id)
}

#[tokio::test]
async fn keeps_active_an_employee_whose_contract_ends_tomorrow_and_locks_after() {
    let tomorrow = today() + Duration::days(1);
    let (sims, id) = with_contract_end(tomorrow).await;
    assert!(!user_is_locked(&sims, id));
    let user = sims.reteach.customer(&id.to_string()).expect("user");
    assert_eq!(
        user.set_inactive_at,
        Some(start_of_day(tomorrow + Duration::days(1), TZ)),
        "reteach locks on its own at the start of the day after the last day"
    );
    sims.clock
        .set(start_of_day(tomorrow + Duration::days(1), TZ) + Duration::minutes(1));
    assert!(user_is_locked(&sims, id), "locked without another run");
}

#[tokio::test]
async fn keeps_active_an_employee_whose_last_day_is_today() {
    let (sims, id) = with_contract_end(today()).await;
    assert!(
        !user_is_locked(&sims, id),
        "the last day is still a working day"
    );
}

#[tokio::test]
async fn locks_an_employee_whose_contract_ended_yesterday() {
    let (sims, id) = with_contract_end(today() - Duration::days(1)).await;
    assert!(user_is_locked(&sims, id));
}

#[tokio::test]
async fn uses_contract_end_date_when_there_is_no_termination_date() {
    let sims = Sims::start().await;
    let id = sims
        .personio
        .add_employee(employee(1).with_contract_end_date(today() - Duration::days(1)));
    sims.sync_employees().await;
    assert!(user_is_locked(&sims, id));
}

#[tokio::test]
async fn locks_a_future_hire_until_the_first_day() {
    let first_day = today() + Duration::days(5);
    let sims = Sims::start().await;
    let id = sims
        .personio
        .add_employee(employee(1).with_hire_date(first_day));
    sims.sync_employees().await;
    assert!(user_is_locked(&sims, id));
    let user = sims.reteach.customer(&id.to_string()).expect("user");
    assert_eq!(user.set_active_at, Some(start_of_day(first_day, TZ)));
    sims.clock.set(start_of_day(first_day, TZ));
    assert!(
        !user_is_locked(&sims, id),
        "unlocked on the first day by reteach itself"
    );
}

#[tokio::test]
async fn repairs_a_hand_edited_user_on_the_next_full_run_only() {
    let sims = Sims::start().await;
    let id = sims.add_employees(3)[1];
    sims.sync_employees().await;
    sims.clock.advance(Duration::hours(1));
    sims.employee_run(false).await.expect("incremental run");
    sims.reteach.edit_customer(&id.to_string(), |customer| {
        customer.position = Some("Edited by hand".into());
        customer.set_inactive_at = Some(sims.clock.now());
    });

    sims.clock.advance(Duration::minutes(10));
    let incremental = sims.employee_run(false).await.expect("incremental run");
    assert_eq!(incremental.summary.seen, 0, "nothing changed in Personio");
    assert_eq!(
        sims.reteach
            .customer(&id.to_string())
            .expect("user")
            .position
            .as_deref(),
        Some("Edited by hand")
    );

    let full = sims.sync_employees().await;
    assert_eq!(full.summary.updated, 1, "{full:?}");
    let user = sims.reteach.customer(&id.to_string()).expect("user");
    assert_eq!(user.position.as_deref(), Some("Engineer"));
    assert!(
        !user_is_locked(&sims, id),
        "drift in the lock dates repaired too"
    );
}

#[tokio::test]
async fn links_an_existing_reteach_user_by_email_instead_of_creating_one() {
    let sims = Sims::start().await;
    let existing = sims.reteach.add_customer(SimCustomer {
        email: Some("person0@example.com".into()),
        registered: true,
        ..SimCustomer::default()
    });
    let id = sims.add_employees(1)[0];
    sims.sync_employees().await;
    let user = sims.reteach.customer(&id.to_string()).expect("linked");
    assert_eq!(
        user.id, existing,
        "the existing user, now carrying the Personio id"
    );
    assert_eq!(sims.reteach.customers().len(), 1);
}

// ---- CertificateSync ----

async fn backfills(certificates: usize) {
    let sims = Sims::start().await;
    let ids = sims.employees_with_certificates(certificates).await;
    let outcome = sims.sync_certificates().await;
    assert!(outcome.summary.backfill);
    assert_eq!(outcome.summary.found, certificates as i64);
    assert_eq!(
        outcome.summary.uploaded, certificates as i64,
        "{:?}",
        outcome.failures
    );
    sims.assert_each_certificate_once(&ids);
    assert!(sims
        .personio
        .documents()
        .iter()
        .all(|d| d.category_id == sims.category_id));

    sims.clock.advance(Duration::minutes(30));
    let again = sims.sync_certificates().await;
    assert_eq!(
        again.summary.uploaded, 0,
        "nothing uploaded twice: {again:?}"
    );
    assert_eq!(sims.personio.documents().len(), certificates);
    assert_eq!(
        *sims.uploaded_total.lock().expect("total"),
        certificates as i64
    );
}

#[tokio::test]
async fn backfill_of_no_certificates_uploads_nothing() {
    backfills(0).await;
}

#[tokio::test]
async fn backfill_of_one_certificate_uploads_it_once() {
    backfills(1).await;
}

#[tokio::test]
async fn backfill_of_500_certificates_uploads_each_once() {
    backfills(500).await;
}

#[tokio::test]
async fn backfill_in_small_passes_uploads_in_completion_order_whatever_the_listing_order() {
    // reteach lists in no documented order; the simulator lists in creation order, so completion
    // times are scrambled against it. Passes of 64 over 600 completions cross the 250-item page
    // boundaries many times.
    let sims = Sims::start().await;
    sims.batch_size
        .store(64, std::sync::atomic::Ordering::Relaxed);
    let employees = sims.add_employees(600);
    sims.sync_employees().await;
    let start = sims.clock.now() - Duration::days(30);
    let mut completed_at = std::collections::HashMap::new();
    for (i, id) in employees.iter().enumerate() {
        let at = start + Duration::minutes(((i * 7919) % 600 / 2) as i64);
        let seeded = sims
            .reteach
            .add_completion(&id.to_string(), "Safety Basics", at, true)
            .expect("customer synced");
        completed_at.insert(certificate_marker(&seeded.certificate_id), at);
    }

    let outcome = sims.sync_certificates().await;
    assert_eq!(
        (outcome.summary.found, outcome.summary.uploaded),
        (600, 600)
    );
    let order: Vec<_> = sims
        .personio
        .documents()
        .iter()
        .map(|d| completed_at[d.comment.as_deref().expect("marker")])
        .collect();
    assert_eq!(order.len(), 600);
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "uploaded in completion order"
    );
    assert_eq!(outcome.ledger.cursor, order.last().copied());

    sims.clock.advance(Duration::minutes(30));
    let again = sims.sync_certificates().await;
    assert_eq!(again.summary.uploaded, 0, "{again:?}");
    assert_eq!(sims.personio.documents().len(), 600);
}

#[tokio::test]
async fn uploads_only_new_certificates_after_the_backfill() {
    let sims = Sims::start().await;
    let old = sims.employees_with_certificates(3).await;
    sims.sync_certificates().await;
    sims.clock.advance(Duration::minutes(30));
    let new = sims
        .reteach
        .add_completion(
            &sims.personio.employee_ids()[0].to_string(),
            "Fire Safety",
            sims.clock.now() - Duration::minutes(1),
            true,
        )
        .expect("customer");
    let outcome = sims.sync_certificates().await;
    assert!(!outcome.summary.backfill);
    assert_eq!(outcome.summary.uploaded, 1, "{outcome:?}");
    sims.assert_each_certificate_once(&old);
    sims.assert_each_certificate_once(&[new.certificate_id]);
}

#[tokio::test]
async fn uploads_a_certificate_once_its_pdf_is_ready() {
    let sims = Sims::start().await;
    let id = sims.add_employees(1)[0];
    sims.sync_employees().await;
    let pending = sims
        .reteach
        .add_completion(&id.to_string(), "Safety", sims.clock.now(), false)
        .expect("customer");
    let first = sims.sync_certificates().await;
    assert_eq!(first.summary.pending_pdf, 1);
    assert_eq!(sims.documents_for(&pending.certificate_id), 0);

    // Long after the cursor passed it: it is remembered, not dropped.
    sims.clock.advance(Duration::days(2));
    let still = sims.sync_certificates().await;
    assert_eq!(still.summary.pending_pdf, 1, "{still:?}");

    sims.reteach.finish_pdf(&pending.certificate_id);
    sims.clock.advance(Duration::minutes(30));
    let ready = sims.sync_certificates().await;
    assert_eq!(ready.summary.uploaded, 1, "{ready:?}");
    assert!(ready.ledger.pending.is_empty());
    sims.assert_each_certificate_once(&[pending.certificate_id]);
}

#[tokio::test]
async fn uploads_the_certificate_of_an_unknown_employee_once_the_employee_is_synced() {
    let sims = Sims::start().await;
    sims.reteach.add_customer(SimCustomer {
        email: Some("person0@example.com".into()),
        registered: true,
        ..SimCustomer::default()
    });
    let early = sims
        .reteach
        .add_completion("person0@example.com", "Onboarding", sims.clock.now(), true)
        .expect("customer");
    let before = sims.sync_certificates().await;
    assert_eq!(before.summary.unknown_employee, 1, "{before:?}");
    assert_eq!(sims.personio.documents().len(), 0);

    // The employee appears in Personio; EmployeeSync links the user by e-mail.
    sims.add_employees(1);
    sims.clock.advance(Duration::hours(3));
    sims.sync_employees().await;
    let after = sims.sync_certificates().await;
    assert_eq!(after.summary.uploaded, 1, "{after:?}");
    sims.assert_each_certificate_once(&[early.certificate_id]);
}

#[tokio::test]
async fn uploads_into_the_category_named_in_the_spec() {
    let sims = Sims::start().await;
    let ids = sims.employees_with_certificates(2).await;
    sims.sync_certificates().await;
    let expected = sims
        .personio
        .categories()
        .into_iter()
        .find(|c| c.name == CATEGORY)
        .expect("category")
        .id;
    let documents = sims.personio.documents();
    assert_eq!(documents.len(), ids.len());
    assert!(documents.iter().all(|d| d.category_id == expected));
    assert!(documents
        .iter()
        .all(|d| d.title == "Certificate: Safety Basics"));
}

#[tokio::test]
async fn refuses_a_certificate_one_byte_over_30_mb() {
    let sims = Sims::start().await;
    let id = sims.add_employees(1)[0];
    sims.sync_employees().await;
    let big = sims
        .reteach
        .add_completion(&id.to_string(), "Big", sims.clock.now(), true)
        .expect("customer");
    sims.reteach
        .set_certificate_size(&big.certificate_id, 30 * 1024 * 1024 + 1);
    let outcome = sims.sync_certificates().await;
    assert_eq!(outcome.summary.failed, 1, "{outcome:?}");
    assert_eq!(sims.personio.documents().len(), 0);
}

// ---- Personio v2 (issue 30) ----

/// A client for the same Personio simulator that reads employees through v2.
fn v2_client(sims: &Sims) -> reteach_personio_operator::personio::PersonioClient {
    let mut config = support::sims::personio_config(&sims.personio, &sims.personio_server);
    config.employee_api = reteach_personio_operator::personio::EmployeeApi::V2;
    reteach_personio_operator::personio::PersonioClient::new(config).expect("v2 client")
}

#[tokio::test]
async fn a_tenant_switching_from_v1_to_v2_keeps_every_user_linked_and_writes_nothing() {
    let sims = Sims::start().await;
    let ids = sims.add_employees(120);
    let first = sims.sync_employees().await;
    assert_eq!(first.summary.created, 120, "{:?}", first.failures);
    let writes = sims.reteach.total_writes();

    let v2 = v2_client(&sims);
    sims.clock.advance(Duration::minutes(30));
    let switched = sims
        .employee_run_with(&v2, true)
        .await
        .expect("v2 full run");
    assert_eq!(switched.summary.seen, 120);
    assert_eq!(switched.summary.unchanged, 120, "{:?}", switched.failures);
    assert_eq!(switched.summary.created, 0);
    assert_eq!(
        sims.reteach.total_writes(),
        writes,
        "the same data, no write"
    );
    sims.assert_one_user_per_employee();

    // A person change reaches reteach through an incremental v2 run; nobody else is touched.
    sims.clock.advance(Duration::minutes(5));
    sims.personio
        .update_employee(ids[7], |seed| seed.last_name = "Renamed".into());
    let incremental = sims.employee_run_with(&v2, false).await.expect("v2 run");
    assert_eq!(
        incremental.summary.mode,
        reteach_personio_operator::api::SyncMode::Incremental
    );
    assert_eq!(incremental.summary.updated, 1, "{:?}", incremental.summary);
    assert_eq!(incremental.summary.seen, 1);

    // Back to v1: still linked, nothing to write.
    sims.clock.advance(Duration::minutes(5));
    let back = sims.sync_employees().await;
    assert_eq!(back.summary.unchanged, 120, "{:?}", back.failures);
    sims.assert_one_user_per_employee();
}

#[tokio::test]
async fn the_v2_path_locks_leavers_like_v1() {
    let sims = Sims::start().await;
    let ids = sims.add_employees(3);
    sims.personio.update_employee(ids[0], |seed| {
        seed.termination_date = Some(today() - Duration::days(1));
        seed.status = "inactive".into();
    });
    sims.personio.update_employee(ids[1], |seed| {
        seed.hire_date = Some(today() + Duration::days(10))
    });
    let outcome = sims
        .employee_run_with(&v2_client(&sims), true)
        .await
        .expect("v2 run");
    assert_eq!(outcome.summary.created, 3, "{:?}", outcome.failures);
    assert!(user_is_locked(&sims, ids[0]), "contract ended yesterday");
    assert!(user_is_locked(&sims, ids[1]), "starts in ten days");
    assert!(!user_is_locked(&sims, ids[2]));
}

#[tokio::test]
async fn certificates_go_through_v1_uploads_when_employees_are_read_through_v2() {
    let sims = Sims::start().await;
    let ids = sims.add_employees(3);
    let v2 = v2_client(&sims);
    let synced = sims.employee_run_with(&v2, true).await.expect("v2 run");
    assert_eq!(synced.summary.created, 3, "{:?}", synced.failures);
    let completed = sims.clock.now() - Duration::hours(1);
    let certificates: Vec<String> = ids
        .iter()
        .map(|id| {
            sims.reteach
                .add_completion(&id.to_string(), "Safety Basics", completed, true)
                .expect("linked through v2")
                .certificate_id
        })
        .collect();
    let outcome = sims
        .certificate_run_with(&v2)
        .await
        .expect("certificate run with the v2 client");
    assert_eq!(outcome.summary.uploaded, 3, "{outcome:?}");
    sims.assert_each_certificate_once(&certificates);
    let owners: Vec<i64> = sims
        .personio
        .documents()
        .iter()
        .map(|d| d.owner_id)
        .collect();
    assert_eq!(owners, ids, "each upload to the employee v2 read");
    let uploads = sims
        .personio
        .control()
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/company/documents")
        .count();
    assert_eq!(uploads, 3, "documents go through the v1 upload");
}

#[tokio::test]
async fn an_employment_terminated_notification_locks_the_user_in_the_notified_v2_run() {
    use reteach_personio_operator::metrics::Metrics;
    use reteach_personio_operator::webhook::{
        serve_on, KeysFrom, ReceiverKeys, ReceiverState, RequestKeys, ResourceKey, Source, Webhooks,
    };
    use std::sync::Arc;

    const TOKEN: &str = "0123456789abcdefghijklmnopqrstuv";
    const AUTHORIZATION: &str = "Bearer personio-hook";
    let sims = Sims::start().await;
    let ids = sims.add_employees(5);
    let v2 = v2_client(&sims);
    let first = sims.employee_run_with(&v2, true).await.expect("v2 run");
    assert_eq!(first.summary.created, 5, "{:?}", first.failures);

    // The operator's receiver for this EmployeeSync, and Personio's webhook to it.
    let webhooks = Arc::new(Webhooks::default());
    let key = ResourceKey::new(Source::Personio, "hr", "personio");
    webhooks.receivers.open(
        key.clone(),
        ReceiverKeys {
            current: RequestKeys::new(TOKEN, Some(AUTHORIZATION.into())),
            ..ReceiverKeys::default()
        },
        Some(1),
        sims.clock.now(),
        KeysFrom::Reconcile,
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let receiver = format!("http://{}", listener.local_addr().expect("address"));
    let state = ReceiverState {
        webhooks: webhooks.clone(),
        metrics: Arc::new(Metrics::new()),
        clock: Arc::new(sims.clock.clone()),
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(serve_on(listener, state, shutdown.clone()));
    sims.personio.add_webhook(
        &key.target(&receiver, TOKEN),
        AUTHORIZATION,
        &["employment.terminated"],
    );

    // A polled run moves the cursor past the creation of everyone.
    sims.clock.advance(Duration::minutes(10));
    sims.employee_run_with(&v2, false).await.expect("v2 run");
    // HR ends an employment as of yesterday: only the employment changes, not the person.
    sims.clock.advance(Duration::minutes(10));
    let leaver = ids[2];
    sims.personio.update_employee(leaver, |seed| {
        seed.termination_date = Some(today() - Duration::days(1));
        seed.status = "inactive".into();
    });
    // The change feed does not see it: the person's updated_at did not move.
    let polled = sims.employee_run_with(&v2, false).await.expect("v2 run");
    assert_eq!(polled.summary.seen, 0, "{:?}", polled.summary);
    assert!(!user_is_locked(&sims, leaver));

    support::poll_until(
        "the notification",
        std::time::Duration::from_secs(10),
        || async { webhooks.triggers.is_pending(&key).then_some(()) },
    )
    .await;
    let notified = webhooks.triggers.take_persons(&key);
    assert_eq!(notified, vec![leaver.to_string()]);
    sims.clock.advance(Duration::minutes(1));
    let run = sims
        .employee_run_notified(&v2, false, notified)
        .await
        .expect("notified run");
    assert_eq!(
        run.summary.mode,
        reteach_personio_operator::api::SyncMode::Incremental
    );
    assert_eq!(run.summary.seen, 1, "the named person, re-read by id");
    assert!(user_is_locked(&sims, leaver), "locked in the notified run");
    for other in ids.iter().filter(|id| **id != leaver) {
        assert!(!user_is_locked(&sims, *other));
    }
    let by_id = sims
        .personio
        .control()
        .requests()
        .iter()
        .filter(|r| {
            r.path == "/v2/persons"
                && r.query
                    .as_deref()
                    .is_some_and(|q| q.contains(&format!("id={leaver}")))
        })
        .count();
    assert_eq!(by_id, 1, "one targeted person request");
    shutdown.cancel();
}
