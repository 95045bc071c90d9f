//! End-to-end (issue 25, "No new ways out"): the operator's preflight probes go only where a run
//! may go. Run with `scripts/test.sh --test e2e -- egress::`.
//!
//! - A CertificateSync whose `employeeSyncRef` is flipped, again and again during requested runs,
//!   to an EmployeeSync that once succeeded and now points at a host outside the allowlist: the
//!   probes use the EmployeeSync the run checked (never a second read), so that host receives
//!   nothing, and the condition and a Warning Event say why.
//! - A certificate URL on a host outside the download allowlist, or on an allowed download host
//!   with a private address: the probe refuses it before sending anything, and
//!   `status.capabilities` says so in a fixed sentence (nothing the host would have answered).

use crate::listener;
use crate::support;

use chrono::{Days, Utc};
use kube::api::{Patch, PatchParams};
use reteach_personio_operator::api::{
    CapabilityCheck, CertificateSyncStatus, EmployeeSyncStatus, REQUESTED_AT_ANNOTATION,
};
use reteach_personio_operator::reteach::DownloadPolicy;
use reteach_personio_operator::sim::personio::EmployeeSeed;
use reteach_personio_operator::sim::reteach::SimCustomer;
use serde_json::json;

use listener::{Listener, OUTSIDE_IP};
use support::operator::{condition, is_ready, World};

const GOOD: &str = "personio";
const TURNED: &str = "turned";
const CERTIFICATES: &str = "certificates";

fn stalled_reason(conditions: &[reteach_personio_operator::api::Condition]) -> Option<String> {
    condition(conditions, "Stalled")
        .filter(|c| c.status == "True")
        .map(|c| c.reason.clone())
}

/// One employee in Personio, linked in reteach with one completed course whose certificate is
/// generated; returns the reteach customer id.
fn seed_linked_employee(world: &World) -> String {
    world.personio.clock.set_behind(chrono::Duration::hours(2));
    let hired = Utc::now().date_naive() - Days::new(300);
    let id = world.personio.sim.add_employee(
        EmployeeSeed::new("Anna", "Example", "anna@acme.example").with_hire_date(hired),
    );
    world.personio.clock.set_behind(chrono::Duration::zero());
    let customer = world.reteach.sim.add_customer(SimCustomer {
        external_id: Some(id.to_string()),
        email: Some("anna@acme.example".into()),
        registered: true,
        ..SimCustomer::default()
    });
    world
        .reteach
        .sim
        .add_completion(
            &customer,
            "Datenschutz",
            Utc::now() - chrono::Duration::hours(1),
            true,
        )
        .expect("the customer exists");
    customer
}

async fn set_employee_sync_ref(world: &World, to: &str) {
    let patch = json!({"spec": {"employeeSyncRef": {"name": to}}});
    world
        .certificate_syncs()
        .patch(CERTIFICATES, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("cannot flip employeeSyncRef: {e}"));
}

#[tokio::test]
async fn a_flipped_employee_sync_ref_never_carries_a_credential_outside_the_allowlist() {
    let world = World::with_preflight("egress-flip").await;
    let outside = Listener::outside().await;
    seed_linked_employee(&world);
    // Both EmployeeSyncs succeed once against the simulators...
    for name in [GOOD, TURNED] {
        world.apply(world.employee_sync(name, json!({}))).await;
        world
            .wait_employee_sync(name, "Ready=True", |s| is_ready(&s.common.conditions))
            .await;
    }
    // ...then one of them is turned to a host outside the allowlist: its status still says it
    // succeeded, which is what a CertificateSync waits for.
    world
        .apply(world.employee_sync_to(
            TURNED,
            &outside.url(),
            json!({"reteach": {"baseUrl": outside.url()}}),
        ))
        .await;
    world
        .apply(world.certificate_sync(CERTIFICATES, GOOD, json!({})))
        .await;
    world
        .wait_certificate_sync(CERTIFICATES, "capabilities and a run", |s| {
            !s.common.capabilities.is_empty() && s.common.last_sync_time.is_some()
        })
        .await;

    // Flip the reference back and forth while requesting runs (each one probes again): whatever
    // the run checked is what the probes use. (A probe that read the resource again would, in
    // some round, read the flipped reference between the run's check and the probes.)
    for round in 0..30 {
        let target = if round % 2 == 0 { TURNED } else { GOOD };
        set_employee_sync_ref(&world, target).await;
        let request = format!("flip-{round}");
        let certificates = world.certificate_syncs();
        world
            .annotate(
                &certificates,
                CERTIFICATES,
                REQUESTED_AT_ANNOTATION,
                &request,
            )
            .await;
        // The turned EmployeeSync's own requested runs probe too.
        let employees = world.employee_syncs();
        world
            .annotate(&employees, TURNED, REQUESTED_AT_ANNOTATION, &request)
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    set_employee_sync_ref(&world, TURNED).await;
    world
        .annotate(
            &world.certificate_syncs(),
            CERTIFICATES,
            REQUESTED_AT_ANNOTATION,
            "final",
        )
        .await;
    let stalled = world
        .wait_certificate_sync(CERTIFICATES, "the final request stalled", |s| {
            s.common.last_handled_reconcile_at.as_deref() == Some("final")
                && stalled_reason(&s.common.conditions).is_some()
        })
        .await;
    let status: CertificateSyncStatus = stalled.status.expect("status");
    assert_eq!(
        stalled_reason(&status.common.conditions).as_deref(),
        Some("UpstreamNotAllowed")
    );
    let message = condition(&status.common.conditions, "Stalled")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("spec.personio.baseUrl")
            && message.contains(&OUTSIDE_IP.to_string())
            && message.contains("--allowed-upstream-hosts"),
        "{message}"
    );
    world
        .wait_event(CERTIFICATES, "UpstreamNotAllowed", "spec.personio.baseUrl")
        .await;
    let turned = world.employee_sync_now(TURNED).await;
    let turned: EmployeeSyncStatus = turned.status.expect("status");
    assert_eq!(
        stalled_reason(&turned.common.conditions).as_deref(),
        Some("UpstreamNotAllowed")
    );
    // Not one request, so no credential, token or Secret value reached the host outside.
    outside.assert_untouched();
}

/// The certificate row of a CertificateSync's `status.capabilities`, once recorded.
async fn certificate_row(world: &World) -> (CapabilityCheck, Vec<CapabilityCheck>) {
    let synced = world
        .wait_certificate_sync(CERTIFICATES, "capabilities and a finished run", |s| {
            s.common
                .capabilities
                .iter()
                .any(|c| c.name == "reteach-certificate-download")
                && s.common.last_sync_time.is_some()
        })
        .await;
    let rows = synced.status.expect("status").common.capabilities;
    let row = rows
        .iter()
        .find(|c| c.name == "reteach-certificate-download")
        .cloned()
        .expect("the row");
    (row, rows)
}

/// Nothing in `status.capabilities` names the listener or anything it would have answered.
fn assert_reveals_nothing(rows: &[CapabilityCheck], outside: &Listener) {
    let text = serde_json::to_string(rows).expect("serialises");
    let port = outside
        .url()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    for leak in [OUTSIDE_IP.to_string(), format!(":{port}"), "HEAD ".into()] {
        assert!(!text.contains(&leak), "{leak:?} in {text}");
    }
}

#[tokio::test]
async fn a_certificate_url_outside_the_download_allowlist_reveals_nothing_in_capabilities() {
    let world = World::with_preflight("egress-cert-host").await;
    let outside = Listener::outside().await;
    seed_linked_employee(&world);
    world.reteach.sim.set_public_base_url(Some(outside.url()));
    world.apply(world.employee_sync(GOOD, json!({}))).await;
    world
        .wait_employee_sync(GOOD, "Ready=True", |s| is_ready(&s.common.conditions))
        .await;
    world
        .apply(world.certificate_sync(CERTIFICATES, GOOD, json!({})))
        .await;
    let (row, rows) = certificate_row(&world).await;
    assert_eq!(row.state, "Missing", "{rows:?}");
    assert!(
        row.message
            .contains("certificate URL points at a host that is not an allowed download host"),
        "{}",
        row.message
    );
    assert_reveals_nothing(&rows, &outside);
    // Neither the probe nor the run's download sent anything there.
    outside.assert_untouched();
}

#[tokio::test]
async fn a_certificate_url_on_a_private_address_reveals_nothing_in_capabilities() {
    // The administrator allowed the host, but not private addresses.
    let downloads = DownloadPolicy {
        allowed_hosts: vec![OUTSIDE_IP.to_string()],
        ..DownloadPolicy::default()
    };
    let world = World::with_preflight_and_downloads("egress-cert-private", downloads).await;
    let outside = Listener::outside().await;
    seed_linked_employee(&world);
    world.reteach.sim.set_public_base_url(Some(outside.url()));
    world.apply(world.employee_sync(GOOD, json!({}))).await;
    world
        .wait_employee_sync(GOOD, "Ready=True", |s| is_ready(&s.common.conditions))
        .await;
    world
        .apply(world.certificate_sync(CERTIFICATES, GOOD, json!({})))
        .await;
    let (row, rows) = certificate_row(&world).await;
    assert_eq!(row.state, "Missing", "{rows:?}");
    assert!(
        row.message
            .contains("certificate URL points at a loopback, private or link-local address"),
        "{}",
        row.message
    );
    assert_reveals_nothing(&rows, &outside);
    outside.assert_untouched();
}
