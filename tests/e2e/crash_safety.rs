//! The operator binary killed with SIGKILL at random points of a certificate backfill and of an
//! employee sync, restarted each time, then left to finish: nothing lost, nothing duplicated
//! (issues 5 and 9). Also a SIGTERM in the middle of a backfill: clean exit, consistent status.
//! Runs against the real apiserver: `scripts/test.sh --test e2e -- crash_safety::`.

use crate::support;

use std::time::Duration;

use rand::Rng;
use support::process::{
    install_crds, log_dir, OperatorOptions, OperatorProcess, Tenant, TenantCredentials, LONG_WAIT,
};

/// How often each test kills the operator.
const KILLS: usize = 5;

/// A tenant whose employees are in reteach and whose certificates wait for the CertificateSync:
/// the operator has run the EmployeeSync once; the CertificateSync is applied but the returned
/// operator is already killed.
async fn tenant_with_certificates(
    client: &kube::Client,
    prefix: &str,
    certificates: usize,
    logs: &std::path::Path,
) -> (Tenant, Vec<(String, i64)>) {
    let namespace = support::fresh_namespace(client, prefix).await;
    let tenant = Tenant::start(client, &namespace, TenantCredentials::default()).await;
    let employees = tenant.seed_employees(8, prefix);
    // A long interval: restarts must not re-run the EmployeeSync in the middle of the backfill.
    tenant.apply_employee_sync(client, "10m").await;
    let mut operator = OperatorProcess::spawn(&OperatorOptions::new(&namespace), logs);
    tenant
        .wait_employee_sync_succeeded(client, support::WAIT)
        .await;
    operator.kill().await;
    let seeded = tenant.seed_certificates(&employees, certificates);
    tenant.apply_certificate_sync(client, "2s").await;
    // Every request takes time, so kills land in downloads, listings and uploads alike.
    tenant
        .personio
        .control()
        .set_latency(Duration::from_millis(100));
    tenant
        .reteach
        .control()
        .set_latency(Duration::from_millis(100));
    (tenant, seeded)
}

/// Waits until Personio holds at least `count` documents (or the process exits).
async fn wait_for_documents(tenant: &Tenant, operator: &mut OperatorProcess, count: usize) {
    support::poll_until(&format!("{count} documents in Personio"), LONG_WAIT, || {
        let exited = operator.exited();
        let documents = tenant.personio.documents().len();
        async move {
            assert!(exited.is_none(), "the operator exited early: {exited:?}");
            (documents >= count).then_some(())
        }
    })
    .await
}

/// SIGKILLs the operator as soon as Personio holds `count` documents (checked every millisecond).
async fn kill_when_documents_reach(tenant: &Tenant, operator: &mut OperatorProcess, count: usize) {
    let reached = tokio::time::timeout(LONG_WAIT, async {
        while tenant.personio.documents().len() < count {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    operator.kill().await;
    assert!(
        reached.is_ok(),
        "Personio never held {count} documents; logs:\n{}",
        operator.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_backfill_killed_five_times_uploads_every_certificate_exactly_once() {
    let client = support::client().await;
    install_crds(&client).await;
    let logs = log_dir("backfill-kill");
    let (tenant, certificates) =
        tenant_with_certificates(&client, "backfill-kill", 40, &logs).await;
    let mut rng = rand::rng();
    let options = OperatorOptions::new(&tenant.namespace);
    for kill in 1..=KILLS {
        let mut operator = OperatorProcess::spawn(&options, &logs);
        let before = tenant.personio.documents().len();
        let target = before + rng.random_range(1..=3);
        if kill % 2 == 1 {
            // The moment Personio has stored a document, before the operator can record it in
            // its ledger: the restart must find the upload by its marker, not upload it again.
            kill_when_documents_reach(&tenant, &mut operator, target).await;
        } else {
            // At least one new upload proves the backfill is under way; the random pause moves
            // the kill anywhere in the next download → intent → upload → ledger cycle.
            wait_for_documents(&tenant, &mut operator, target).await;
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..1200))).await;
            operator.kill().await;
        }
        let uploaded = tenant.personio.documents().len();
        assert!(
            uploaded < certificates.len(),
            "kill {kill} came after the backfill had finished ({uploaded} documents); logs in {}",
            logs.display()
        );
    }
    let _operator = OperatorProcess::spawn(&options, &logs);
    let sync = tenant
        .wait_certificate_sync_succeeded_after(&client, None, LONG_WAIT)
        .await;
    // One more complete run after the backfill must upload nothing again.
    let finished = sync["status"]["lastSuccessfulSyncTime"]
        .as_str()
        .map(str::to_owned);
    tenant
        .wait_certificate_sync_succeeded_after(&client, finished.as_deref(), LONG_WAIT)
        .await;
    tenant.assert_each_certificate_once(&certificates);
    let sync = tenant.certificate_sync(&client).await;
    assert!(
        sync["status"]["ledger"]["inFlight"].is_null(),
        "no upload may be left in flight: {}",
        sync["status"]
    );
    // Every upload counted once although no killed run reached its final status write.
    assert_eq!(
        sync["status"]["uploadedTotal"].as_i64(),
        Some(certificates.len() as i64),
        "{}",
        sync["status"]
    );
    support::delete_namespace(&client, &tenant.namespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn employee_sync_killed_five_times_ends_with_one_reteach_user_per_employee() {
    let client = support::client().await;
    install_crds(&client).await;
    let logs = log_dir("employees-kill");
    let namespace = support::fresh_namespace(&client, "employees-kill").await;
    let tenant = Tenant::start(&client, &namespace, TenantCredentials::default()).await;
    // Enough employees that five kills always land before the end (reteach writes run 4 at once).
    let employees = tenant.seed_employees(200, "ek");
    tenant
        .reteach
        .control()
        .set_latency(Duration::from_millis(100));
    tenant.apply_employee_sync(&client, "2s").await;
    let mut rng = rand::rng();
    let options = OperatorOptions::new(&namespace);
    for kill in 1..=KILLS {
        let mut operator = OperatorProcess::spawn(&options, &logs);
        let before = tenant.reteach.total_writes();
        let target = before + rng.random_range(1..=4);
        support::poll_until("the employee sync to write to reteach", LONG_WAIT, || {
            let exited = operator.exited();
            let writes = tenant.reteach.total_writes();
            async move {
                assert!(exited.is_none(), "the operator exited early: {exited:?}");
                (writes >= target).then_some(())
            }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..150))).await;
        operator.kill().await;
        let synced = tenant.reteach.customers().len();
        assert!(
            synced < employees.len(),
            "kill {kill} came after the sync had finished ({synced} users); logs in {}",
            logs.display()
        );
    }
    let _operator = OperatorProcess::spawn(&options, &logs);
    tenant
        .wait_employee_sync_succeeded(&client, LONG_WAIT)
        .await;
    let customers = tenant.reteach.customers();
    assert_eq!(
        customers.len(),
        employees.len(),
        "one reteach user per Personio employee"
    );
    for id in employees {
        let employee = tenant
            .personio
            .employee(id)
            .unwrap_or_else(|| panic!("employee {id} vanished from Personio"));
        let email = employee.seed.email.clone();
        let by_external_id = tenant.customers_with_external_id(id);
        assert_eq!(by_external_id.len(), 1, "users with externalId {id}");
        let by_email = customers.iter().filter(|c| c.email == email).count();
        assert_eq!(by_email, 1, "users with the e-mail of employee {id}");
        let user = &by_external_id[0];
        assert_eq!(user.email, email, "e-mail of employee {id}");
        assert_eq!(
            user.first_name.as_deref(),
            Some(employee.seed.first_name.as_str())
        );
        assert_eq!(
            user.last_name.as_deref(),
            Some(employee.seed.last_name.as_str())
        );
    }
    support::delete_namespace(&client, &namespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_backfill_exits_cleanly_and_a_restart_finishes_without_duplicates() {
    let client = support::client().await;
    install_crds(&client).await;
    let logs = log_dir("backfill-term");
    let (tenant, certificates) =
        tenant_with_certificates(&client, "backfill-term", 20, &logs).await;
    let options = OperatorOptions::new(&tenant.namespace);
    let mut operator = OperatorProcess::spawn(&options, &logs);
    wait_for_documents(&tenant, &mut operator, 3).await;
    let status = operator.terminate(Duration::from_secs(30)).await;
    assert!(
        status.success(),
        "SIGTERM must end the operator with exit code 0, got {status}; logs:\n{}",
        operator.logs()
    );
    assert!(
        tenant.personio.documents().len() < certificates.len(),
        "SIGTERM came after the backfill had finished"
    );
    let sync = tenant.certificate_sync(&client).await;
    let in_flight = &sync["status"]["ledger"]["inFlight"];
    if let Some(certificate) = in_flight["certificateId"].as_str() {
        assert_eq!(
            tenant.document_owners(certificate).len(),
            1,
            "after SIGTERM the in-flight certificate {certificate} must be in Personio"
        );
    }
    let before_restart = sync["status"]["lastSuccessfulSyncTime"]
        .as_str()
        .map(str::to_owned);
    let _operator = OperatorProcess::spawn(&options, &logs);
    tenant
        .wait_certificate_sync_succeeded_after(&client, before_restart.as_deref(), LONG_WAIT)
        .await;
    support::poll_until("every certificate in Personio", LONG_WAIT, || async {
        (tenant.personio.documents().len() >= certificates.len()).then_some(())
    })
    .await;
    tenant.assert_each_certificate_once(&certificates);
    support::delete_namespace(&client, &tenant.namespace).await;
}
