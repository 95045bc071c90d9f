//! Fencing: a leader frozen (SIGSTOP) past its Lease while it uploads certificates, the standby
//! taking over, and the old leader resuming. Nothing may be uploaded twice and the old leader
//! must not roll the ledger back. Runs against the real apiserver:
//! `scripts/test.sh --test e2e -- fencing::`.

use crate::support;

use std::time::Duration;

use support::process::{
    install_crds, lease_holder, log_dir, OperatorOptions, OperatorProcess, Tenant,
    TenantCredentials, LONG_WAIT,
};

const CERTIFICATES: usize = 40;

fn signal(operator: &OperatorProcess, name: &str) {
    let pid = operator.pid().to_string();
    let sent = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
    assert!(sent.success(), "kill -{name} {pid} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_frozen_past_its_lease_uploads_nothing_twice_after_it_resumes() {
    let client = support::client().await;
    install_crds(&client).await;
    let logs = log_dir("fencing");
    let namespace = support::fresh_namespace(&client, "fencing").await;
    let tenant = Tenant::start(&client, &namespace, TenantCredentials::default()).await;
    let employees = tenant.seed_employees(6, "fe");
    tenant.apply_employee_sync(&client, "10m").await;

    let options = OperatorOptions::new(&namespace);
    let mut old = OperatorProcess::spawn(&options.clone().leader("operator-a"), &logs);
    support::poll_until("operator-a to lead", support::WAIT, || async {
        (lease_holder(&client, &namespace).await.as_deref() == Some("operator-a")).then_some(())
    })
    .await;
    tenant
        .wait_employee_sync_succeeded(&client, support::WAIT)
        .await;
    let certificates = tenant.seed_certificates(&employees, CERTIFICATES);
    // Slow uploads: the freeze lands in the middle of the backfill.
    tenant
        .personio
        .control()
        .set_latency(Duration::from_millis(150));
    tenant.apply_certificate_sync(&client, "2s").await;
    let standby = OperatorProcess::spawn(&options.clone().leader("operator-b"), &logs);
    support::poll_until("the backfill to start", LONG_WAIT, || async {
        (tenant.personio.documents().len() >= 4).then_some(())
    })
    .await;

    signal(&old, "STOP");
    let frozen_at = tenant.personio.documents().len();
    support::poll_until("operator-b to take over the lease", LONG_WAIT, || async {
        (lease_holder(&client, &namespace).await.as_deref() == Some("operator-b")).then_some(())
    })
    .await;
    support::poll_until("the new leader to upload", LONG_WAIT, || async {
        (tenant.personio.documents().len() >= frozen_at + 3).then_some(())
    })
    .await;
    signal(&old, "CONT");

    // The old leader notices it was paused past its Lease and stops without writing.
    support::poll_until("the old leader to stop", LONG_WAIT, || {
        let exited = old.exited();
        async move { exited.map(|_| ()) }
    })
    .await;
    let sync = tenant
        .wait_certificate_sync_succeeded_after(&client, None, LONG_WAIT)
        .await;
    let finished = sync["status"]["lastSuccessfulSyncTime"]
        .as_str()
        .map(str::to_owned);
    let sync = tenant
        .wait_certificate_sync_succeeded_after(&client, finished.as_deref(), LONG_WAIT)
        .await;
    tenant.assert_each_certificate_once(&certificates);
    assert_eq!(
        sync["status"]["uploadedTotal"].as_i64(),
        Some(CERTIFICATES as i64),
        "the total was not rolled back: {}",
        sync["status"]
    );
    assert!(sync["status"]["ledger"]["inFlight"].is_null());
    assert!(
        old.logs().contains("lost"),
        "the old leader says why it stopped:\n{}",
        old.logs()
    );
    drop(standby);
    support::delete_namespace(&client, &tenant.namespace).await;
}
