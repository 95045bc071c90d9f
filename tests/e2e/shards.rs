//! Sharding on the real apiserver (issue 18): two operator processes, the default shard
//! (`--watch-label-selector '!sync.reteach.io/shard'`) and shard `b`, each sync only their own
//! academies; relabelling an academy in the middle of its certificate backfill hands it to the
//! other shard without uploading anything twice: the old shard's run goes on to its end, the new
//! shard waits until that run's in-flight upload stood still (`--handover-grace`), then carries on
//! from the ledger, and from then on only the new shard syncs the academy.
//! Run: `scripts/test.sh --test e2e -- shards::`.

use crate::support;

use kube::api::{Api, Patch, PatchParams};
use kube::Client;
use reteach_personio_operator::api::{CertificateSync, EmployeeSync};
use serde_json::{json, Value};

use support::process::{
    install_crds, log_dir, OperatorOptions, OperatorProcess, Tenant, TenantCredentials,
    CERTIFICATE_SYNC, EMPLOYEE_SYNC, LONG_WAIT,
};

const SHARD_LABEL: &str = "sync.reteach.io/shard";
const LAST_SUCCESS: &str = "reteach_personio_last_success_timestamp_seconds{";
/// Certificates of the academy that moves: uploads are paced at Personio's 60/min, so the backfill
/// is still running when it moves.
const CERTIFICATES: usize = 24;

/// Sets (or with `None` removes) the shard label of both resources of `namespace`.
async fn label_academy(client: &Client, namespace: &str, shard: Option<&str>) {
    let patch = json!({"metadata": {"labels": {SHARD_LABEL: shard}}});
    let params = PatchParams::default();
    Api::<EmployeeSync>::namespaced(client.clone(), namespace)
        .patch(EMPLOYEE_SYNC, &params, &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("cannot label the EmployeeSync: {e}"));
    Api::<CertificateSync>::namespaced(client.clone(), namespace)
        .patch(CERTIFICATE_SYNC, &params, &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("cannot label the CertificateSync: {e}"));
}

/// Namespaces of the resources this process has synced successfully (its per-resource gauge;
/// forgotten when a resource leaves the process's watch).
async fn synced_namespaces(operator: &OperatorProcess) -> Vec<String> {
    let metrics = operator.metrics().await;
    let mut namespaces: Vec<String> = metrics
        .lines()
        .filter(|line| line.starts_with(LAST_SUCCESS))
        .filter_map(|line| {
            let rest = line.split("namespace=\"").nth(1)?;
            Some(rest.split('"').next()?.to_string())
        })
        .collect();
    namespaces.sort();
    namespaces.dedup();
    namespaces
}

/// The value of this process's last-success gauge of the `kind` resource in `namespace`.
async fn last_success_of(
    operator: &OperatorProcess,
    namespace: &str,
    kind: &str,
) -> Option<String> {
    let metrics = operator.metrics().await;
    metrics
        .lines()
        .filter(|line| line.starts_with(LAST_SUCCESS))
        .filter(|line| line.contains(&format!("namespace=\"{namespace}\"")))
        .find(|line| line.contains(&format!("kind=\"{kind}\"")))
        .and_then(|line| line.rsplit(' ').next())
        .map(str::to_string)
}

fn last_success(sync: &Value) -> Option<String> {
    sync["status"]["lastSuccessfulSyncTime"]
        .as_str()
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_shard_syncs_only_its_academies_and_a_moved_one_is_uploaded_once() {
    let client = support::client().await;
    install_crds(&client).await;
    let logs = log_dir("shards");
    let home = support::fresh_namespace(&client, "shard-default").await;
    let other = support::fresh_namespace(&client, "shard-b").await;

    // Academy `home` has no shard label (default shard); academy `other` belongs to shard b.
    // Both exist and are labelled before the operators start, so no shard ever sees the other's.
    let moving = Tenant::start(&client, &home, TenantCredentials::default()).await;
    let staying = Tenant::start(&client, &other, TenantCredentials::default()).await;
    let people = moving.seed_employees(6, "home");
    staying.seed_employees(3, "other");
    moving.apply_employee_sync(&client, "2s").await;
    staying.apply_employee_sync(&client, "2s").await;
    staying.apply_certificate_sync(&client, "2s").await;
    label_academy(&client, &other, Some("b")).await;

    let watched = format!("{home},{other}");
    let default_shard = OperatorProcess::spawn(
        &OperatorOptions::new(&watched).label_selector(&format!("!{SHARD_LABEL}")),
        &logs,
    );
    let shard_b = OperatorProcess::spawn(
        &OperatorOptions::new(&watched).label_selector(&format!("{SHARD_LABEL}=b")),
        &logs,
    );
    moving
        .wait_employee_sync_succeeded(&client, support::WAIT)
        .await;
    staying
        .wait_employee_sync_succeeded(&client, support::WAIT)
        .await;
    staying
        .wait_certificate_sync_succeeded_after(&client, None, support::WAIT)
        .await;
    assert_eq!(
        synced_namespaces(&default_shard).await,
        vec![home.clone()],
        "the default shard syncs the unlabelled academy only; logs:\n{}",
        default_shard.logs()
    );
    assert_eq!(
        synced_namespaces(&shard_b).await,
        vec![other.clone()],
        "shard b syncs its own academy only; logs:\n{}",
        shard_b.logs()
    );

    // A backfill starts in the default shard; the academy moves to shard b while it uploads.
    let certificates = moving.seed_certificates(&people, CERTIFICATES);
    moving.apply_certificate_sync(&client, "2s").await;
    support::poll_until(
        "the default shard to upload a few certificates",
        LONG_WAIT,
        || async { (moving.personio.documents().len() >= 3).then_some(()) },
    )
    .await;
    let moved_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    label_academy(&client, &home, Some("b")).await;
    assert!(
        moving.personio.documents().len() < CERTIFICATES,
        "the backfill finished before the move; the test would show nothing"
    );

    // The default shard's run goes on to its end (kube-runtime does not stop a reconcile whose
    // object left the watch); shard b waits until that run's in-flight upload stood still and
    // then carries on from the ledger.
    let taken_over = moving
        .wait_certificate_sync_succeeded_after(&client, Some(&moved_at), LONG_WAIT)
        .await;
    support::poll_until(
        "shard b to run the moved CertificateSync",
        LONG_WAIT,
        || async {
            let ran = last_success_of(&shard_b, &home, "CertificateSync").await;
            ran.is_some().then_some(())
        },
    )
    .await;
    let default_last = last_success_of(&default_shard, &home, "CertificateSync").await;

    // New certificates of the moved academy are shard b's alone. They are back-dated (before the
    // cursor), so a requested run (a full pass against the markers in Personio) picks them up.
    let later = moving.seed_certificates(&people[..2], 3);
    let request =
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "after-move"}}});
    Api::<CertificateSync>::namespaced(client.clone(), &home)
        .patch(
            CERTIFICATE_SYNC,
            &PatchParams::default(),
            &Patch::Merge(&request),
        )
        .await
        .unwrap_or_else(|e| panic!("cannot request a run: {e}"));
    support::poll_until(
        "shard b to upload the new certificates",
        LONG_WAIT,
        // Personio's documents are the truth; `status.uploadedTotal` may undercount here: the
        // default shard's run, fenced off by the takeover, does not write its last counters.
        || async { (moving.personio.documents().len() == CERTIFICATES + 3).then_some(()) },
    )
    .await;
    let all: Vec<(String, i64)> = certificates.iter().chain(&later).cloned().collect();
    moving.assert_each_certificate_once(&all);
    let before = last_success(&moving.employee_sync(&client).await);
    support::poll_until(
        "shard b to run the moved EmployeeSync again",
        support::WAIT,
        || async {
            let now = last_success(&moving.employee_sync(&client).await);
            (now > before).then_some(())
        },
    )
    .await;
    assert!(last_success(&taken_over).is_some());
    assert_eq!(
        last_success_of(&default_shard, &home, "CertificateSync").await,
        default_last,
        "the default shard ran the moved CertificateSync again; logs:\n{}",
        default_shard.logs()
    );
    for (certificate, _) in &later {
        assert!(
            !default_shard
                .logs()
                .contains(&format!("certificate_id=\"{certificate}\"")),
            "the default shard uploaded {certificate} after the move"
        );
    }
    moving.assert_each_certificate_once(&all);
    support::delete_namespace(&client, &home).await;
    support::delete_namespace(&client, &other).await;
}
