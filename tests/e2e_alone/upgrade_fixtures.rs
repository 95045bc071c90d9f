//! Objects written against an earlier release's CRDs still work (issue 29, docs/api-policy.md):
//! for every `tests/fixtures/vX.Y.Z/`, the release's own CRDs are installed, its objects applied,
//! and the current operator must read and sync them; then the CRDs are upgraded to the current
//! ones (what `kubectl apply -f crds/` does on an upgrade) and the next scheduled runs must find
//! nothing lost: spec as written, Ready still true, the EmployeeSync's next run incremental (a
//! requested run would be a full one by design), no certificate uploaded twice, the ledger's
//! cursor kept.
//! Run: `scripts/test.sh --test e2e_alone -- upgrade_fixtures::`.
//!
//! CRDs are cluster-wide: this test holds `ALONE` in the `e2e_alone` binary, so no other test sees
//! the older schema, and it leaves the current CRDs installed (as every test installs them).

use crate::support;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, Utc};
use reteach_personio_operator::api::SyncMode;
use reteach_personio_operator::sim::personio::EmployeeSeed;
use reteach_personio_operator::sim::reteach::SimCustomer;
use reteach_personio_operator::sync::has_marker;
use support::operator::{install_crds, is_ready, World};

const EMPLOYEES: &str = "personio";
const CERTIFICATES: &str = "certificates";
/// The resources' interval here: scheduled runs within the test (the operator's minimum is 1 s).
const INTERVAL: &str = "3s";

/// Every `tests/fixtures/v*` directory: one per release with fixtures.
fn release_fixtures() -> Vec<PathBuf> {
    let root = support::repo_root().join("tests/fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.is_dir()
                && path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('v'))
        })
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no release fixtures under {}",
        root.display()
    );
    dirs
}

/// Installs the CRDs of `fixture` over whatever is installed and waits until they are served.
async fn install_release_crds(world: &World, fixture: &Path) {
    support::apply_path(&world.client, fixture.join("crds"), None).await;
    for name in [
        "employeesyncs.sync.reteach.io",
        "certificatesyncs.sync.reteach.io",
    ] {
        support::wait_crd_established(&world.client, name).await;
    }
}

/// Two employees who are reteach users already, one with a certificate (PDF ready).
fn seed_academy(world: &World) -> String {
    world.personio.clock.set_behind(chrono::Duration::hours(2));
    let hired = Utc::now().date_naive() - Days::new(300);
    let mut ids = Vec::new();
    for (first, email) in [("Anna", "anna@acme.example"), ("Ben", "ben@acme.example")] {
        let seed = EmployeeSeed::new(first, "Fixture", email)
            .with_hire_date(hired)
            .with_department(7, "Sales")
            .with_office(3, "Berlin");
        ids.push(world.personio.sim.add_employee(seed));
    }
    world.personio.clock.set_behind(chrono::Duration::zero());
    for (id, email) in ids.iter().zip(["anna@acme.example", "ben@acme.example"]) {
        world.reteach.sim.add_customer(SimCustomer {
            external_id: Some(id.to_string()),
            email: Some(email.into()),
            registered: true,
            ..SimCustomer::default()
        });
    }
    let completed: DateTime<Utc> = "2026-03-10T10:00:00Z".parse().unwrap_or_default();
    world
        .reteach
        .sim
        .add_completion(&ids[0].to_string(), "Datenschutz", completed, true)
        .unwrap_or_else(|| panic!("unknown reteach customer {}", ids[0]))
        .certificate_id
}

fn copies(world: &World, certificate_id: &str) -> usize {
    world
        .personio
        .sim
        .documents()
        .iter()
        .filter(|d| has_marker(d.comment.as_deref(), certificate_id))
        .count()
}

async fn apply_release_objects(world: &World, fixture: &Path) {
    let text = std::fs::read_to_string(fixture.join("objects.yaml"))
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", fixture.display()))
        .replace("${PERSONIO_URL}", &world.personio.url)
        .replace("${RETEACH_URL}", &world.reteach.url)
        .replace("${INTERVAL}", INTERVAL);
    support::try_apply_yaml(&world.client, &text, Some(&world.namespace))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{}: the release's CRDs reject its own objects: {e}",
                fixture.display()
            )
        });
}

/// Waits for a scheduled run of both resources that started after `after` and left them Ready.
async fn next_scheduled_runs(world: &World, after: DateTime<Utc>) {
    world
        .wait_employee_sync(
            EMPLOYEES,
            &format!("a run started after {after}, Ready"),
            |s| {
                is_ready(&s.common.conditions)
                    && s.last_run
                        .as_ref()
                        .is_some_and(|r| r.started_at > after && r.finished_at.is_some())
            },
        )
        .await;
    world
        .wait_certificate_sync(
            CERTIFICATES,
            &format!("a run started after {after}, Ready"),
            |s| {
                is_ready(&s.common.conditions)
                    && s.last_run
                        .as_ref()
                        .is_some_and(|r| r.started_at > after && r.finished_at.is_some())
            },
        )
        .await;
}

async fn check_release(fixture: &Path) {
    let release = fixture
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let release = release.unwrap_or_default();
    let world = World::with_secrets(&format!("upgrade-{}", release.replace('.', "-"))).await;
    install_release_crds(&world, fixture).await;
    let certificate = seed_academy(&world);
    apply_release_objects(&world, fixture).await;

    // The current operator reads the objects stored under the release's CRDs and syncs them.
    let employees = world
        .wait_employee_sync(EMPLOYEES, "Ready after the first run", |s| {
            is_ready(&s.common.conditions) && s.common.last_successful_sync_time.is_some()
        })
        .await;
    let spec = &employees.spec;
    assert_eq!(
        spec.time_zone, "Europe/Berlin",
        "{release}: spec read as written"
    );
    let webhook = spec.webhook.as_ref();
    assert_eq!(
        webhook.and_then(|w| w.url.as_deref()),
        Some("https://hooks.example.com"),
        "{release}: a deprecated field is still accepted and kept"
    );
    world
        .wait_certificate_sync(CERTIFICATES, "the certificate uploaded", |s| {
            is_ready(&s.common.conditions) && s.uploaded_total == 1
        })
        .await;
    assert_eq!(copies(&world, &certificate), 1, "{release}: one upload");
    assert_eq!(
        world.reteach.sim.customers().len(),
        2,
        "{release}: no user created twice"
    );
    let cursor_before = world
        .certificate_sync_now(CERTIFICATES)
        .await
        .status
        .map(|s| s.ledger.cursor);

    // The upgrade: the current CRDs over the stored objects, then a run of each.
    install_crds(&world.client).await;
    next_scheduled_runs(&world, Utc::now()).await;
    let employees = world.employee_sync_now(EMPLOYEES).await;
    let status = employees.status.unwrap_or_default();
    let last_run = status
        .last_run
        .unwrap_or_else(|| panic!("{release}: no lastRun"));
    assert_eq!(
        last_run.mode,
        SyncMode::Incremental,
        "{release}: the next run is incremental"
    );
    assert_eq!(last_run.created, 0, "{release}: nothing created again");
    let certificates = world.certificate_sync_now(CERTIFICATES).await;
    let status = certificates.status.unwrap_or_default();
    assert_eq!(status.uploaded_total, 1, "{release}: uploadedTotal kept");
    assert_eq!(
        Some(status.ledger.cursor),
        cursor_before,
        "{release}: ledger cursor kept"
    );
    assert_eq!(
        copies(&world, &certificate),
        1,
        "{release}: no certificate uploaded twice"
    );
    assert_eq!(
        certificates.spec.title, "Certificate: {course}",
        "{release}: spec read as written"
    );
    support::delete_namespace(&world.client, &world.namespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_of_earlier_releases_are_read_and_synced() {
    let _alone = crate::ALONE.lock().await;
    for fixture in release_fixtures() {
        check_release(&fixture).await;
    }
    // Whatever happened above, leave the current CRDs for the targets that run next.
    install_crds(&support::client().await).await;
}
