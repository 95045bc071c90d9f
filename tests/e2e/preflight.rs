//! End-to-end: `preflight` reads a CertificateSync, the EmployeeSync it references and their
//! Secrets from a real kube-apiserver, probes the simulators and writes nothing upstream.

use crate::preflight_support;
use crate::support;

use kube::Client;
use reteach_personio_operator::preflight::report::{EXIT_MISSING, EXIT_READY};
use reteach_personio_operator::preflight::{from_cluster, preflight, Capability, Kind, State};

use preflight_support::{detail, probe_options, state, Tenant, CATEGORY};

const CRD_NAMES: [&str; 2] = [
    "employeesyncs.sync.reteach.io",
    "certificatesyncs.sync.reteach.io",
];

async fn install_crds(client: &Client) {
    support::apply_path(client, support::repo_root().join("crds"), None).await;
    for name in CRD_NAMES {
        support::wait_crd_established(client, name).await;
    }
}

/// The tenant's manifests with the simulators' credentials filled into the Secrets.
fn manifests_with_secrets(tenant: &Tenant, personio_secret: &str) -> String {
    let (personio_id, _) = tenant.personio.credentials();
    let reteach = tenant.reteach.credentials();
    let secrets = format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: personio-api, labels: {{sync.reteach.io/credentials: "true"}}}}
stringData: {{clientId: {personio_id}, clientSecret: {personio_secret}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: reteach-api, labels: {{sync.reteach.io/credentials: "true"}}}}
stringData: {{clientId: {}, clientSecret: {}, clientCode: {}}}
---
"#,
        reteach.client_id, reteach.client_secret, reteach.client_code
    );
    // The tenant's own file starts with a placeholder Secret; replace it with real ones.
    let manifests = tenant.manifests(CATEGORY);
    let rest = manifests
        .split_once("---\n")
        .map(|(_, rest)| rest.to_string())
        .unwrap_or(manifests);
    format!("{secrets}{rest}")
}

#[tokio::test]
async fn certificate_sync_in_the_cluster_is_checked_with_its_secrets() {
    let client = support::client().await;
    install_crds(&client).await;
    let namespace = support::fresh_namespace(&client, "preflight").await;
    let tenant = Tenant::start().await;
    let (_, personio_secret) = tenant.personio.credentials();
    support::try_apply_yaml(
        &client,
        &manifests_with_secrets(&tenant, &personio_secret),
        Some(&namespace),
    )
    .await
    .unwrap();

    let subject = from_cluster(
        client.clone(),
        &namespace,
        Kind::CertificateSync,
        "certificates",
        &probe_options().upstream,
    )
    .await
    .unwrap();
    assert_eq!(
        subject.resource,
        format!("CertificateSync {namespace}/certificates (EmployeeSync {namespace}/personio)")
    );
    let report = preflight(&subject, None, &probe_options()).await;
    tenant.assert_nothing_written(&report);
    for finding in &report.findings {
        assert_eq!(finding.state, State::Ok, "{}", report.table());
    }
    assert_eq!(report.findings.len(), 11);
    assert_eq!(report.exit_code(), EXIT_READY);
    support::delete_namespace(&client, &namespace).await;
}

#[tokio::test]
async fn missing_secret_and_wrong_secret_value_are_named_with_the_keys_to_fix() {
    let client = support::client().await;
    install_crds(&client).await;
    let namespace = support::fresh_namespace(&client, "preflight-bad").await;
    let tenant = Tenant::start().await;
    let manifests = manifests_with_secrets(&tenant, "not-the-secret");
    // Drop the reteach Secret: its absence must show up as a row, not as a crash.
    let without_reteach: Vec<&str> = manifests
        .split("---\n")
        .filter(|document| !document.contains("name: reteach-api,"))
        .collect();
    support::try_apply_yaml(&client, &without_reteach.join("---\n"), Some(&namespace))
        .await
        .unwrap();

    let subject = from_cluster(
        client.clone(),
        &namespace,
        Kind::EmployeeSync,
        "personio",
        &probe_options().upstream,
    )
    .await
    .unwrap();
    let report = preflight(&subject, None, &probe_options()).await;
    tenant.assert_nothing_written(&report);
    assert_eq!(state(&report, Capability::PersonioToken), State::Missing);
    let personio_action = report
        .get(Capability::PersonioToken)
        .map(|f| f.action.clone())
        .unwrap_or_default();
    assert!(
        personio_action.contains(&format!(
            "the keys clientId and clientSecret of Secret {namespace}/personio-api"
        )),
        "{personio_action}"
    );
    assert_eq!(state(&report, Capability::ReteachToken), State::Missing);
    assert_eq!(
        detail(&report, Capability::ReteachToken),
        format!(
            "Secret {namespace}/reteach-api not found; create it with the keys clientId, clientSecret, clientCode"
        )
    );
    assert_eq!(
        state(&report, Capability::ReteachCustomerRead),
        State::Unknown
    );
    assert_eq!(report.exit_code(), EXIT_MISSING);
    assert!(!report.table().contains("not-the-secret"));
    support::delete_namespace(&client, &namespace).await;
}

#[tokio::test]
async fn a_resource_that_does_not_exist_is_an_error_not_a_report() {
    let client = support::client().await;
    install_crds(&client).await;
    let namespace = support::fresh_namespace(&client, "preflight-none").await;
    let error = from_cluster(
        client.clone(),
        &namespace,
        Kind::CertificateSync,
        "nope",
        &probe_options().upstream,
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("CertificateSync {namespace}/nope not found")
    );
    support::delete_namespace(&client, &namespace).await;
}

/// The report as `status.capabilities` is accepted by the apiserver's schema and merges by name
/// under server-side apply: a second apply of one entry changes that entry only.
#[tokio::test]
async fn capabilities_status_is_accepted_and_merges_by_name() {
    use kube::api::{Api, Patch, PatchParams};
    use reteach_personio_operator::api::CertificateSync;
    use reteach_personio_operator::preflight::status::capability_status;
    use reteach_personio_operator::preflight::{Finding, Report};

    let client = support::client().await;
    install_crds(&client).await;
    let namespace = support::fresh_namespace(&client, "preflight-status").await;
    let tenant = Tenant::start().await;
    let (_, personio_secret) = tenant.personio.credentials();
    support::try_apply_yaml(
        &client,
        &manifests_with_secrets(&tenant, &personio_secret),
        Some(&namespace),
    )
    .await
    .unwrap();
    let subject = from_cluster(
        client.clone(),
        &namespace,
        Kind::CertificateSync,
        "certificates",
        &probe_options().upstream,
    )
    .await
    .unwrap();
    let report = preflight(&subject, None, &probe_options()).await;
    tenant.assert_nothing_written(&report);
    let api: Api<CertificateSync> = Api::namespaced(client.clone(), &namespace);
    let params = PatchParams::apply("rpo-preflight-test").force();
    let status = serde_json::json!({
        "apiVersion": "sync.reteach.io/v1alpha1",
        "kind": "CertificateSync",
        "status": {"capabilities": capability_status(&report)},
    });
    api.patch_status("certificates", &params, &Patch::Apply(&status))
        .await
        .unwrap();
    let changed = Report {
        resource: report.resource.clone(),
        findings: vec![Finding::missing(
            Capability::PersonioAttributes,
            "not returned: email",
            "whitelist email",
        )],
    };
    let status = serde_json::json!({
        "apiVersion": "sync.reteach.io/v1alpha1",
        "kind": "CertificateSync",
        "status": {"capabilities": capability_status(&changed)},
    });
    api.patch_status(
        "certificates",
        &PatchParams::apply("rpo-preflight-other").force(),
        &Patch::Apply(&status),
    )
    .await
    .unwrap();
    let stored = api.get_status("certificates").await.unwrap();
    let capabilities = stored.status.unwrap_or_default().common.capabilities;
    assert_eq!(capabilities.len(), 11);
    let attributes = capabilities
        .iter()
        .find(|c| c.name == "personio-attributes")
        .unwrap();
    assert_eq!(attributes.state, "Missing");
    assert!(attributes.required);
    assert!(capabilities
        .iter()
        .filter(|c| c.name != "personio-attributes")
        .all(|c| c.state == "Ok"));
    support::delete_namespace(&client, &namespace).await;
}

/// The command checks the resource against the operator's policy options (here their defaults:
/// the official hosts) before it reads any Secret: with no Secret in the namespace at all, the
/// answer is the run's `UpstreamNotAllowed` sentence, not a missing Secret.
#[tokio::test]
async fn a_resource_outside_the_allowlist_is_refused_before_its_secrets_are_read() {
    use reteach_personio_operator::jobs::allowlist::UpstreamPolicy;
    use reteach_personio_operator::preflight::source::SourceError;

    let client = support::client().await;
    install_crds(&client).await;
    let namespace = support::fresh_namespace(&client, "preflight-allowlist").await;
    let tenant = Tenant::start().await;
    // The resources only: no Secrets.
    let manifests = tenant.manifests(CATEGORY);
    let resources = manifests
        .split_once("---\n")
        .map(|(_, rest)| rest.to_string())
        .unwrap_or(manifests);
    support::try_apply_yaml(&client, &resources, Some(&namespace))
        .await
        .unwrap();

    let error = from_cluster(
        client.clone(),
        &namespace,
        Kind::CertificateSync,
        "certificates",
        &UpstreamPolicy::default(),
    )
    .await
    .unwrap_err();
    let expected = UpstreamPolicy::default()
        .check("personio", &tenant.personio_server.base_url(), true)
        .unwrap_err();
    assert!(matches!(error, SourceError::NotAllowed(_)), "{error}");
    assert_eq!(error.to_string(), expected.message());
    assert_eq!(expected.reason(), "UpstreamNotAllowed");
    assert_eq!(tenant.personio.control().requests(), vec![]);
    assert_eq!(tenant.reteach.control().requests(), vec![]);
    support::delete_namespace(&client, &namespace).await;
}

/// An EmployeeSync reading through v2 (`spec.personio.api: v2`) from the cluster: the CRD keeps
/// the field, the probes check the v2 rows as required, and `status.capabilities` carries them
/// with the recommendation.
#[tokio::test]
async fn a_v2_employee_sync_in_the_cluster_gets_the_v2_rows_and_the_recommendation() {
    use kube::api::{Api, Patch, PatchParams};
    use reteach_personio_operator::api::EmployeeSync;
    use reteach_personio_operator::preflight::status::capability_status;

    let client = support::client().await;
    install_crds(&client).await;
    let namespace = support::fresh_namespace(&client, "preflight-v2").await;
    let tenant = Tenant::start().await;
    let (_, personio_secret) = tenant.personio.credentials();
    let manifests = manifests_with_secrets(&tenant, &personio_secret).replace(
        "    credentialsSecretRef: {name: personio-api}",
        "    credentialsSecretRef: {name: personio-api}\n    api: v2",
    );
    support::try_apply_yaml(&client, &manifests, Some(&namespace))
        .await
        .unwrap();
    let subject = from_cluster(
        client.clone(),
        &namespace,
        Kind::EmployeeSync,
        "personio",
        &probe_options().upstream,
    )
    .await
    .unwrap();
    let report = preflight(&subject, None, &probe_options()).await;
    tenant.assert_nothing_written(&report);
    assert_eq!(report.exit_code(), EXIT_READY, "{}", report.table());
    assert!(detail(&report, Capability::PersonioApi).contains("v1 can too"));
    let api: Api<EmployeeSync> = Api::namespaced(client.clone(), &namespace);
    let status = serde_json::json!({
        "apiVersion": "sync.reteach.io/v1alpha1",
        "kind": "EmployeeSync",
        "status": {"capabilities": capability_status(&report)},
    });
    api.patch_status(
        "personio",
        &PatchParams::apply("rpo-preflight-test").force(),
        &Patch::Apply(&status),
    )
    .await
    .unwrap();
    let stored = api.get_status("personio").await.unwrap();
    let capabilities = stored.status.unwrap_or_default().common.capabilities;
    for name in [
        "personio-v2-persons",
        "personio-v2-employments",
        "personio-v2-org-units",
    ] {
        let row = capabilities.iter().find(|c| c.name == name).unwrap();
        assert!(row.required, "{name} is required of a v2 resource");
        assert_eq!(row.state, "Ok");
    }
    let recommendation = capabilities
        .iter()
        .find(|c| c.name == "personio-api")
        .unwrap();
    assert!(!recommendation.required);
    assert!(recommendation.message.contains("recommended"));
    support::delete_namespace(&client, &namespace).await;
}
