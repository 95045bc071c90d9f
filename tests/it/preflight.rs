//! `preflight` against both simulators: each capability row is right for a tenant that has it and
//! for simulator configurations that lack it, and no probe ever writes to either upstream.

use crate::listener;
use crate::preflight_support;

use std::sync::Arc;

use reteach_personio_operator::clock::SystemClock;
use reteach_personio_operator::jobs::allowlist::UpstreamPolicy;
use reteach_personio_operator::preflight::report::{EXIT_MISSING, EXIT_READY, EXIT_UNDECIDED};
use reteach_personio_operator::preflight::source::{
    PERSONIO_CLIENT_SECRET, RETEACH_CLIENT_CODE, RETEACH_CLIENT_ID,
};
use reteach_personio_operator::preflight::{
    from_file, preflight, Capability, ProbeOptions, State, EXIT_ERROR,
};
use reteach_personio_operator::reteach::DownloadPolicy;
use reteach_personio_operator::sim::personio::{PersonioSim, PersonioSimConfig};
use reteach_personio_operator::sim::reteach::{CertificateUrls, ReteachSim};
use reteach_personio_operator::sim::{Fault, FaultRule};

use listener::{Listener, OUTSIDE_IP};

use preflight_support::{action, detail, probe_options, state, Tenant, CATEGORY};

const CERTIFICATE_ROWS: [Capability; 11] = [
    Capability::PersonioToken,
    Capability::PersonioAttributes,
    Capability::PersonioApi,
    Capability::PersonioDocumentCategory,
    Capability::PersonioDocumentListing,
    Capability::PersonioDocumentUpload,
    Capability::ReteachToken,
    Capability::ReteachCustomerRead,
    Capability::ReteachParticipationRead,
    Capability::ReteachParticipationFilters,
    Capability::ReteachCertificateDownload,
];

#[tokio::test]
async fn complete_tenant_is_ready_and_nothing_is_written() {
    let tenant = Tenant::start().await;
    let report = tenant.check_certificates().await;
    let rows: Vec<Capability> = report.findings.iter().map(|f| f.capability).collect();
    assert_eq!(rows, CERTIFICATE_ROWS.to_vec());
    for capability in CERTIFICATE_ROWS {
        assert_eq!(state(&report, capability), State::Ok, "{}", report.table());
    }
    assert_eq!(report.exit_code(), EXIT_READY);
    assert!(detail(&report, Capability::PersonioDocumentCategory).contains("category id 3"));
    let listing = detail(&report, Capability::PersonioDocumentListing);
    assert!(
        listing.contains(&format!(
            "employee {}: 1 document(s), all of that owner",
            tenant.first_employee
        )),
        "{listing}"
    );
    let download = detail(&report, Capability::ReteachCertificateDownload);
    assert!(download.contains("HEAD 200"), "{download}");
    assert!(download.contains("application/pdf"), "{download}");
    assert!(
        tenant
            .certificate_ids
            .iter()
            .any(|id| download.contains(id)),
        "{download}"
    );
    // Headers only: the download route saw a HEAD and no GET.
    let control = tenant.reteach.control();
    assert_eq!(control.count("HEAD /certificates/"), 1);
    assert_eq!(control.count("GET /certificates/"), 0);
}

#[tokio::test]
async fn employee_sync_is_checked_for_what_it_needs_only() {
    let tenant = Tenant::start().await;
    let report = tenant
        .check(
            &tenant
                .manifests(CATEGORY)
                .replace("kind: CertificateSync", "kind: Other"),
            None,
            &tenant.environment(),
        )
        .await;
    let rows: Vec<Capability> = report.findings.iter().map(|f| f.capability).collect();
    assert_eq!(
        rows,
        vec![
            Capability::PersonioToken,
            Capability::PersonioAttributes,
            Capability::PersonioApi,
            Capability::ReteachToken,
            Capability::ReteachCustomerRead,
        ]
    );
    assert!(detail(&report, Capability::PersonioApi).contains("recommended: v1"));
    assert!(report.resource.starts_with("EmployeeSync personio"));
    assert_eq!(report.exit_code(), EXIT_READY);
    assert_eq!(tenant.personio.control().count("GET /v2/"), 0);
    assert_eq!(tenant.reteach.control().count("GET /participation"), 0);
}

#[tokio::test]
async fn names_required_attributes_the_whitelist_leaves_out() {
    let tenant = Tenant::start().await;
    tenant.personio.set_whitelist(Some(&[
        "first_name",
        "last_name",
        "position",
        "department",
        "office",
        "hire_date",
        "termination_date",
        "last_modified_at",
    ]));
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::PersonioAttributes),
        State::Missing
    );
    assert_eq!(
        detail(&report, Capability::PersonioAttributes),
        "not returned: email, gender"
    );
    assert!(action(&report, Capability::PersonioAttributes).contains("add email, gender"));
    assert_eq!(report.exit_code(), EXIT_MISSING);
}

#[tokio::test]
async fn optional_attributes_left_out_are_noted_but_ok() {
    let tenant = Tenant::start().await;
    let mut readable: Vec<&str> = reteach_personio_operator::personio::REQUIRED_ATTRIBUTES.to_vec();
    readable.retain(|name| *name != "status");
    tenant.personio.set_whitelist(Some(&readable));
    let report = tenant.check_certificates().await;
    assert_eq!(state(&report, Capability::PersonioAttributes), State::Ok);
    assert!(detail(&report, Capability::PersonioAttributes)
        .contains("optional, not returned: status, contract_end_date"));
}

#[tokio::test]
async fn forbidden_v2_listing_is_missing() {
    let tenant = Tenant::start().await;
    tenant.personio.control().inject(FaultRule::new(
        "GET /v2/document-management/documents",
        Fault::Status(403),
        100,
    ));
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::PersonioDocumentListing),
        State::Missing
    );
    assert!(detail(&report, Capability::PersonioDocumentListing).contains("denied"));
    assert!(action(&report, Capability::PersonioDocumentListing).contains("documents:read"));
    // Required: without it no certificate of the backfill can be checked, so none is uploaded.
    assert_eq!(report.exit_code(), EXIT_MISSING);
}

#[tokio::test]
async fn v2_listing_that_does_not_know_the_owner_is_named() {
    let tenant = Tenant::start().await;
    tenant.personio.control().inject(FaultRule::new(
        "GET /v2/document-management/documents",
        Fault::Status(404),
        100,
    ));
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::PersonioDocumentListing),
        State::Missing
    );
    let detail = detail(&report, Capability::PersonioDocumentListing);
    assert!(
        detail.contains(&format!("owner_id={}", tenant.first_employee)),
        "{detail}"
    );
    assert!(
        action(&report, Capability::PersonioDocumentListing).contains("owner_id takes another id")
    );
}

#[tokio::test]
async fn unknown_document_category_is_missing_and_lists_the_existing_ones() {
    let tenant = Tenant::start().await;
    let report = tenant
        .check(
            &tenant.manifests("Zertifikate"),
            None,
            &tenant.environment(),
        )
        .await;
    assert_eq!(
        state(&report, Capability::PersonioDocumentCategory),
        State::Missing
    );
    let category = detail(&report, Capability::PersonioDocumentCategory);
    assert!(
        category.contains("\"Zertifikate\" does not exist"),
        "{category}"
    );
    assert!(
        category.contains("Learning Certificates (id 3)"),
        "{category}"
    );
    // The listing is still probed, across all categories.
    let listing = detail(&report, Capability::PersonioDocumentListing);
    assert!(
        listing.contains("1 document(s)") && !listing.contains("in category"),
        "{listing}"
    );
    assert_eq!(report.exit_code(), EXIT_MISSING);
}

#[tokio::test]
async fn rejected_personio_credentials_skip_the_other_personio_probes() {
    let tenant = Tenant::start().await;
    let mut env = tenant.environment();
    env.insert(PERSONIO_CLIENT_SECRET.into(), "wrong".into());
    let report = tenant.check(&tenant.manifests(CATEGORY), None, &env).await;
    assert_eq!(state(&report, Capability::PersonioToken), State::Missing);
    assert!(action(&report, Capability::PersonioToken).contains(PERSONIO_CLIENT_SECRET));
    for capability in [
        Capability::PersonioAttributes,
        Capability::PersonioDocumentCategory,
        Capability::PersonioDocumentListing,
        Capability::PersonioDocumentUpload,
    ] {
        assert_eq!(state(&report, capability), State::Unknown);
        assert!(detail(&report, capability).contains("personio-token is not ok"));
    }
    assert_eq!(state(&report, Capability::ReteachToken), State::Ok);
    assert_eq!(report.exit_code(), EXIT_MISSING);
}

#[tokio::test]
async fn rejected_reteach_credentials_are_missing() {
    let tenant = Tenant::start().await;
    let mut env = tenant.environment();
    env.insert(RETEACH_CLIENT_CODE.into(), "wrong".into());
    let report = tenant.check(&tenant.manifests(CATEGORY), None, &env).await;
    assert_eq!(state(&report, Capability::ReteachToken), State::Missing);
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Unknown
    );
    assert_eq!(state(&report, Capability::PersonioToken), State::Ok);
}

#[tokio::test]
async fn unset_environment_variables_are_named() {
    let tenant = Tenant::start().await;
    let mut env = tenant.environment();
    env.remove(RETEACH_CLIENT_ID);
    env.remove(RETEACH_CLIENT_CODE);
    let report = tenant.check(&tenant.manifests(CATEGORY), None, &env).await;
    assert_eq!(state(&report, Capability::ReteachToken), State::Missing);
    assert_eq!(
        detail(&report, Capability::ReteachToken),
        "environment variable(s) RETEACH_CLIENT_ID, RETEACH_CLIENT_CODE not set"
    );
    assert_eq!(tenant.reteach.control().requests(), vec![]);
}

#[tokio::test]
async fn forbidden_customer_read_is_missing() {
    let tenant = Tenant::start().await;
    tenant
        .reteach
        .control()
        .inject(FaultRule::new("GET /customer", Fault::Status(403), 100));
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::ReteachCustomerRead),
        State::Missing
    );
    assert_eq!(report.exit_code(), EXIT_MISSING);
}

#[tokio::test]
async fn ignored_participation_filters_are_named_without_blocking() {
    let tenant = Tenant::start().await;
    tenant.reteach.set_ignore_participation_filters(true);
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::ReteachParticipationFilters),
        State::Missing
    );
    assert!(detail(&report, Capability::ReteachParticipationFilters)
        .contains("status=COMPLETED ignored: 2 of 4"));
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Ok
    );
    assert_eq!(report.exit_code(), EXIT_READY);
}

#[tokio::test]
async fn certificate_url_serving_a_page_is_missing() {
    let tenant = Tenant::start().await;
    for id in &tenant.certificate_ids {
        tenant.reteach.break_certificate(id);
    }
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Missing
    );
    assert!(detail(&report, Capability::ReteachCertificateDownload).contains("text/html"));
    assert_eq!(report.exit_code(), EXIT_MISSING);
}

#[tokio::test]
async fn forbidden_certificate_download_is_missing() {
    let tenant = Tenant::start().await;
    tenant.reteach.control().inject(FaultRule::new(
        "HEAD /certificates/",
        Fault::Status(403),
        100,
    ));
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Missing
    );
    assert!(detail(&report, Capability::ReteachCertificateDownload).contains("HEAD 403"));
}

#[tokio::test]
async fn host_refusing_head_is_asked_with_a_get_whose_body_is_dropped() {
    let tenant = Tenant::start().await;
    tenant.reteach.control().inject(FaultRule::new(
        "HEAD /certificates/",
        Fault::Status(405),
        100,
    ));
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Ok
    );
    assert!(detail(&report, Capability::ReteachCertificateDownload).contains("GET 200"));
}

#[tokio::test]
async fn empty_tenant_is_undecided_rather_than_ready() {
    let personio = PersonioSim::new(PersonioSimConfig {
        rate_limits: None,
        ..PersonioSimConfig::default()
    });
    let reteach = ReteachSim::new(Arc::new(SystemClock));
    let tenant = Tenant {
        personio_server: personio.start(([127, 0, 0, 1], 0).into()).await.unwrap(),
        reteach_server: reteach.start(([127, 0, 0, 1], 0).into()).await.unwrap(),
        personio,
        reteach,
        first_employee: 0,
        certificate_ids: Vec::new(),
    };
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::PersonioAttributes),
        State::Unknown
    );
    assert_eq!(
        state(&report, Capability::PersonioDocumentListing),
        State::Unknown
    );
    assert!(action(&report, Capability::PersonioDocumentListing).contains("--employee-id"));
    assert_eq!(
        state(&report, Capability::ReteachParticipationFilters),
        State::Unknown
    );
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Unknown
    );
    assert_eq!(state(&report, Capability::ReteachCustomerRead), State::Ok);
    assert_eq!(report.exit_code(), EXIT_UNDECIDED);
}

#[tokio::test]
async fn write_counters_see_every_non_read_request_but_token_requests() {
    let tenant = Tenant::start().await;
    let http = reqwest::Client::new();
    let reteach = tenant.reteach_server.base_url();
    let personio = tenant.personio_server.base_url();
    // Refused for want of a token, yet each one reached the simulator and counts.
    http.post(format!("{reteach}/customer"))
        .send()
        .await
        .unwrap();
    http.delete(format!("{reteach}/customer/x"))
        .send()
        .await
        .unwrap();
    http.post(format!("{reteach}/oauth/authorize"))
        .send()
        .await
        .unwrap();
    http.post(format!("{personio}/v1/company/documents"))
        .send()
        .await
        .unwrap();
    http.post(format!("{personio}/v1/auth"))
        .send()
        .await
        .unwrap();
    let reteach_writes: Vec<String> = tenant
        .reteach
        .write_requests()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(reteach_writes, vec!["POST /customer", "DELETE /customer/x"]);
    assert_eq!(tenant.personio.write_requests().len(), 1);
}

/// `preflight --file FILE` with `flags`, the environment `env` only.
fn run_subcommand(
    file: &std::path::Path,
    flags: &[&str],
    env: std::collections::HashMap<String, String>,
) -> tokio::task::JoinHandle<std::process::Output> {
    let file = file.to_path_buf();
    let flags: Vec<String> = flags.iter().map(|flag| flag.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_reteach-personio-operator"))
            .arg("preflight")
            .arg("--file")
            .arg(&file)
            .args(&flags)
            .env_clear()
            .envs(env)
            .output()
            .unwrap()
    })
}

/// What the simulators' tenant needs from an operator's administrator: the loopback host and
/// plain http (the same flags `run` takes).
const SIMULATOR_FLAGS: [&str; 3] = [
    "--allowed-upstream-hosts",
    "127.0.0.1",
    "--allow-insecure-http",
];

/// The subcommand itself: reads the file and the environment, prints the table, and its exit
/// code says whether a required capability is missing.
#[tokio::test]
async fn subcommand_prints_the_table_and_exits_by_the_verdict() {
    let tenant = Tenant::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.yaml");
    std::fs::write(&file, tenant.manifests(CATEGORY)).unwrap();
    let run = |env| run_subcommand(&file, &SIMULATOR_FLAGS, env);
    let ready = run(tenant.environment()).await.unwrap();
    let table = String::from_utf8_lossy(&ready.stdout);
    assert_eq!(ready.status.code(), Some(0), "{table}");
    assert!(table.contains("CAPABILITY"), "{table}");
    assert!(
        table.contains("Ready: every required capability is ok."),
        "{table}"
    );

    let mut wrong = tenant.environment();
    wrong.insert(RETEACH_CLIENT_CODE.into(), "wrong".into());
    let refused = run(wrong).await.unwrap();
    let table = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(1), "{table}");
    assert!(
        !table.contains("wrong"),
        "a credential value was printed:\n{table}"
    );
    tenant.assert_nothing_written(&reteach_personio_operator::preflight::Report::default());
}

#[tokio::test]
async fn credential_without_document_read_cannot_resolve_the_category() {
    let tenant = Tenant::start().await;
    tenant.personio.control().inject(FaultRule::new(
        "GET /v1/company/document-categories",
        Fault::Status(403),
        100,
    ));
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::PersonioDocumentCategory),
        State::Missing
    );
    assert!(action(&report, Capability::PersonioDocumentCategory).contains("Documents: read"));
    assert_eq!(report.exit_code(), EXIT_MISSING);
}

#[tokio::test]
async fn plain_http_base_url_without_the_opt_in_points_at_the_spec() {
    let tenant = Tenant::start().await;
    let manifests = tenant.manifests(CATEGORY).replacen(
        "allowInsecureHttp: true",
        "allowInsecureHttp: false",
        1,
    );
    let report = tenant.check(&manifests, None, &tenant.environment()).await;
    assert_eq!(state(&report, Capability::PersonioToken), State::Missing);
    assert!(detail(&report, Capability::PersonioToken).contains("https"));
    assert!(action(&report, Capability::PersonioToken).contains("fix spec.personio"));
    assert_eq!(tenant.personio.control().requests(), vec![]);
    assert_eq!(state(&report, Capability::ReteachToken), State::Ok);
}

#[tokio::test]
async fn employee_without_documents_leaves_owner_id_semantics_unconfirmed() {
    let tenant = Tenant::start().await;
    let second = tenant.first_employee + 1;
    let subject = tenant.subject(&tenant.manifests(CATEGORY), None, &tenant.environment());
    let report = preflight(&subject, Some(&second.to_string()), &probe_options()).await;
    tenant.assert_nothing_written(&report);
    assert_eq!(
        state(&report, Capability::PersonioDocumentListing),
        State::Unknown
    );
    let listing = detail(&report, Capability::PersonioDocumentListing);
    assert!(
        listing.contains(&format!("employee(s) {second} have no documents")),
        "{listing}"
    );
    assert!(action(&report, Capability::PersonioDocumentListing).contains("--employee-id"));
    assert_eq!(report.exit_code(), EXIT_UNDECIDED);
}

#[tokio::test]
async fn listing_probe_tries_the_next_employees_until_one_has_a_document() {
    let tenant = Tenant::start_with_document_of(1).await;
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::PersonioDocumentListing),
        State::Ok
    );
    let second = tenant.first_employee + 1;
    assert!(
        detail(&report, Capability::PersonioDocumentListing).contains(&format!(
            "employee {second}: 1 document(s), all of that owner"
        ))
    );
    assert_eq!(report.exit_code(), EXIT_READY);
}

#[tokio::test]
async fn listing_that_returns_other_owners_documents_is_missing() {
    let tenant = Tenant::start().await;
    tenant
        .personio
        .insert_document(tenant.first_employee + 1, 3, "Someone else's", None);
    tenant.personio.set_ignore_owner_filter(true);
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::PersonioDocumentListing),
        State::Missing
    );
    assert!(detail(&report, Capability::PersonioDocumentListing)
        .contains("1 document(s) of other owners"));
}

#[tokio::test]
async fn resources_split_over_several_files_are_read_together() {
    let tenant = Tenant::start().await;
    let manifests = tenant.manifests(CATEGORY);
    let (employee_part, certificate_part) = manifests
        .rsplit_once("---\n")
        .expect("the certificate sync is the last document");
    let dir = tempfile::tempdir().unwrap();
    let employee_file = dir.path().join("employeesync.yaml");
    let certificate_file = dir.path().join("certificatesync.yaml");
    std::fs::write(&employee_file, employee_part).unwrap();
    std::fs::write(&certificate_file, certificate_part).unwrap();
    let env = tenant.environment();
    let lookup = |key: &str| env.get(key).cloned();
    let subject = from_file(
        &[employee_file, certificate_file],
        None,
        &lookup,
        &probe_options().upstream,
    )
    .unwrap();
    assert!(subject
        .resource
        .starts_with("CertificateSync certificates (EmployeeSync personio) from "));
    assert!(subject.category.is_some());
    let report = preflight(&subject, None, &probe_options()).await;
    tenant.assert_nothing_written(&report);
    assert_eq!(report.findings.len(), 11);
}

#[test]
fn a_certificate_sync_without_its_employee_sync_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("certificatesync.yaml");
    std::fs::write(
        &file,
        "apiVersion: sync.reteach.io/v1alpha1\nkind: CertificateSync\nmetadata: {name: c}\nspec:\n  employeeSyncRef: {name: personio}\n  documentCategory: {id: 3}\n",
    )
    .unwrap();
    let error = from_file(&[file], None, &|_: &str| None, &probe_options().upstream).unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("holds no matching EmployeeSync named \"personio\""),
        "{error}"
    );
}

#[test]
fn subcommand_that_cannot_run_exits_with_3() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_reteach-personio-operator"))
        .args(["preflight", "--file", "/nonexistent/sync.yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read /nonexistent/sync.yaml"),
        "{stderr}"
    );
}

/// The EmployeeSync of `tenant` with `spec.mapping` set to `mapping` (YAML flow mapping).
fn with_mapping(tenant: &Tenant, mapping: &str) -> String {
    tenant.manifests(CATEGORY).replacen(
        "  reteach:\n",
        &format!("  mapping: {mapping}\n  reteach:\n"),
        1,
    )
}

#[tokio::test]
async fn the_whitelist_is_checked_against_the_resources_own_attributes() {
    let tenant = Tenant::start().await;
    // Location from a custom attribute, position not mapped at all.
    let manifests = with_mapping(
        &tenant,
        "{location: {attribute: dynamic_33400}, position: {unmapped: true}}",
    );
    let mut readable: Vec<&str> = reteach_personio_operator::personio::REQUIRED_ATTRIBUTES.to_vec();
    readable.retain(|name| !matches!(*name, "position" | "office"));
    tenant.personio.set_whitelist(Some(&readable));
    let report = tenant.check(&manifests, None, &tenant.environment()).await;
    assert_eq!(
        state(&report, Capability::PersonioAttributes),
        State::Missing,
        "{}",
        report.table()
    );
    assert_eq!(
        detail(&report, Capability::PersonioAttributes),
        "not returned: dynamic_33400",
        "an unmapped position and an unused office are not required"
    );
    assert!(action(&report, Capability::PersonioAttributes).contains("add dynamic_33400"));

    readable.push("dynamic_33400");
    tenant.personio.set_whitelist(Some(&readable));
    let report = tenant.check(&manifests, None, &tenant.environment()).await;
    assert_eq!(
        state(&report, Capability::PersonioAttributes),
        State::Ok,
        "{}",
        report.table()
    );
    let listing = tenant
        .personio
        .control()
        .requests()
        .into_iter()
        .rev()
        .find(|request| request.path.starts_with("/v1/company/employees"))
        .and_then(|request| request.query)
        .expect("a listing");
    assert!(listing.contains("dynamic_33400"), "{listing}");
    assert!(
        !listing.contains("office"),
        "asks for what it reads: {listing}"
    );
}

#[tokio::test]
async fn an_invalid_mapping_is_named_in_the_attribute_row() {
    let tenant = Tenant::start().await;
    let manifests = with_mapping(&tenant, "{position: {constant: Staff, unmapped: true}}");
    let report = tenant.check(&manifests, None, &tenant.environment()).await;
    assert_eq!(
        state(&report, Capability::PersonioAttributes),
        State::Missing
    );
    assert!(
        detail(&report, Capability::PersonioAttributes).contains("spec.mapping.position"),
        "{}",
        report.table()
    );
}

/// The command takes `run`'s policy flags with `run`'s defaults (the official hosts, https only):
/// a resource outside them is refused with the sentence a run's condition carries, before any
/// credential is read or any request is made.
#[tokio::test]
async fn subcommand_refuses_a_resource_outside_the_allowlist_like_a_run() {
    let tenant = Tenant::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.yaml");
    std::fs::write(&file, tenant.manifests(CATEGORY)).unwrap();
    let port = tenant.personio_server.addr.port();

    let defaults = run_subcommand(&file, &[], tenant.environment())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&defaults.stderr);
    assert_eq!(defaults.status.code(), Some(EXIT_ERROR), "{stderr}");
    let expected = UpstreamPolicy::default()
        .check("personio", &tenant.personio_server.base_url(), true)
        .unwrap_err();
    assert!(stderr.contains(expected.message()), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}"))
            && stderr.contains("allowed: api.personio.de, api.reteach.io"),
        "{stderr}"
    );
    assert!(defaults.stdout.is_empty(), "no table without probes");

    // The host allowed, plain http not: the run's InsecureHttpNotAllowed sentence.
    let no_http = run_subcommand(
        &file,
        &["--allowed-upstream-hosts", "127.0.0.1"],
        tenant.environment(),
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&no_http.stderr);
    assert_eq!(no_http.status.code(), Some(EXIT_ERROR), "{stderr}");
    assert!(
        stderr.contains("spec.personio.allowInsecureHttp")
            && stderr.contains("--allow-insecure-http"),
        "{stderr}"
    );

    // Only the Personio port allowed: reteach is refused, Personio never asked.
    let personio_only = format!("127.0.0.1:{port}");
    let one_host = run_subcommand(
        &file,
        &[
            "--allowed-upstream-hosts",
            &personio_only,
            "--allow-insecure-http",
        ],
        tenant.environment(),
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&one_host.stderr);
    assert_eq!(one_host.status.code(), Some(EXIT_ERROR), "{stderr}");
    assert!(stderr.contains("spec.reteach.baseUrl"), "{stderr}");

    assert_eq!(tenant.personio.control().requests(), vec![]);
    assert_eq!(tenant.reteach.control().requests(), vec![]);
}

/// `preflight` checks the policy itself, whoever assembled the subject: a side it refuses is
/// never contacted and its rows say why.
#[tokio::test]
async fn probes_never_contact_a_side_the_policy_refuses() {
    let tenant = Tenant::start().await;
    let subject = tenant.subject(&tenant.manifests(CATEGORY), None, &tenant.environment());
    let personio_only = format!("127.0.0.1:{}", tenant.personio_server.addr.port());
    let options = ProbeOptions {
        upstream: UpstreamPolicy::new(&[&personio_only], true).unwrap(),
        ..probe_options()
    };
    let report = preflight(&subject, None, &options).await;
    tenant.assert_nothing_written(&report);
    assert_eq!(state(&report, Capability::PersonioToken), State::Ok);
    assert_eq!(state(&report, Capability::ReteachToken), State::Missing);
    let why = detail(&report, Capability::ReteachToken);
    assert!(
        why.contains("spec.reteach.baseUrl") && why.contains("--allowed-upstream-hosts"),
        "{why}"
    );
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Unknown
    );
    assert_eq!(tenant.reteach.control().requests(), vec![]);
}

/// The certificate URL is the academy's data: a URL on a host outside the download allowlist is
/// refused before anything is sent to it, and the row says so in a fixed sentence (no status,
/// length, content type or error of that host: the probe is no scanner of the network).
#[tokio::test]
async fn a_certificate_url_outside_the_download_allowlist_reveals_nothing() {
    let tenant = Tenant::start().await;
    let outside = Listener::outside().await;
    tenant.reteach.set_public_base_url(Some(outside.url()));
    let report = tenant.check_certificates().await;
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Missing
    );
    let row = detail(&report, Capability::ReteachCertificateDownload);
    assert!(
        row.ends_with(": certificate URL points at a host that is not an allowed download host"),
        "{row}"
    );
    assert_reveals_nothing_about(&report, &outside.url());
    outside.assert_untouched();
    assert!(action(&report, Capability::ReteachCertificateDownload)
        .contains("--allowed-download-hosts"));
}

/// A download host the administrator allowed, but whose name resolves to a loopback address (here
/// `localhost`): refused before connecting unless private addresses are allowed too.
#[tokio::test]
async fn a_download_host_resolving_to_a_private_address_reveals_nothing() {
    let tenant = Tenant::start().await;
    tenant
        .reteach
        .set_certificate_urls(CertificateUrls::SignedStorage);
    let allowed_storage = ProbeOptions {
        downloads: DownloadPolicy {
            allowed_hosts: vec!["localhost".into()],
            ..DownloadPolicy::default()
        },
        ..probe_options()
    };
    let subject = tenant.subject(&tenant.manifests(CATEGORY), None, &tenant.environment());
    let report = preflight(&subject, None, &allowed_storage).await;
    tenant.assert_nothing_written(&report);
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Missing
    );
    let row = detail(&report, Capability::ReteachCertificateDownload);
    assert!(
        row.ends_with(": certificate URL points at a loopback, private or link-local address"),
        "{row}"
    );
    assert_reveals_nothing_about(&report, &tenant.reteach_server.base_url());
    assert_eq!(tenant.reteach.storage_requests(), vec![]);

    // With private addresses allowed (tests, demo) the same host is asked, without the token.
    let private_too = ProbeOptions {
        downloads: DownloadPolicy {
            allow_private_addresses: true,
            ..allowed_storage.downloads.clone()
        },
        ..probe_options()
    };
    let report = preflight(&subject, None, &private_too).await;
    let row = detail(&report, Capability::ReteachCertificateDownload);
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Ok,
        "{row}"
    );
    assert!(row.contains("another host, without the token"), "{row}");
    let storage = tenant.reteach.storage_requests();
    assert_eq!(storage.len(), 1);
    assert!(!storage[0].had_authorization);
}

/// Redirects of a certificate URL are followed by hand and each target is checked like the URL:
/// a chain ending on a storage host outside the download allowlist is refused there.
#[tokio::test]
async fn each_redirect_of_a_certificate_url_passes_the_download_policy() {
    let tenant = Tenant::start().await;
    tenant
        .reteach
        .set_certificate_urls(CertificateUrls::Redirects(2));
    let report = tenant.check_certificates().await;
    let row = detail(&report, Capability::ReteachCertificateDownload);
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Missing,
        "{row}"
    );
    assert!(row.ends_with("not an allowed download host"), "{row}");
    assert_eq!(tenant.reteach.storage_requests(), vec![]);

    let subject = tenant.subject(&tenant.manifests(CATEGORY), None, &tenant.environment());
    let storage_allowed = ProbeOptions {
        downloads: DownloadPolicy {
            allowed_hosts: vec!["localhost".into()],
            allow_private_addresses: true,
            ..DownloadPolicy::default()
        },
        ..probe_options()
    };
    let report = preflight(&subject, None, &storage_allowed).await;
    let row = detail(&report, Capability::ReteachCertificateDownload);
    assert_eq!(
        state(&report, Capability::ReteachCertificateDownload),
        State::Ok,
        "{row}"
    );
    assert!(
        row.contains("HEAD 200 after 2 redirects (another host, without the token)"),
        "{row}"
    );
    assert!(tenant
        .reteach
        .storage_requests()
        .iter()
        .all(|request| !request.had_authorization));
}

/// Nothing in the report (the table, and `status.capabilities` made from it) names the host or
/// port of `url`, or anything its answer would have told.
fn assert_reveals_nothing_about(report: &reteach_personio_operator::preflight::Report, url: &str) {
    let table = report.table();
    let host_and_port = url.trim_start_matches("http://");
    let status = serde_json::to_string(
        &reteach_personio_operator::preflight::status::capability_status(report),
    )
    .unwrap();
    for text in [&table, &status] {
        assert!(!text.contains(host_and_port), "{host_and_port} in\n{text}");
        assert!(!text.contains(&OUTSIDE_IP.to_string()), "{text}");
        assert!(
            !text.contains("HEAD "),
            "a status of the refused host in\n{text}"
        );
    }
}

// ---- Personio v2 for employees (issue 30) ----

/// The EmployeeSync of [`Tenant::manifests`] reading employees through v2.
fn employee_sync_on_v2(tenant: &Tenant) -> String {
    tenant
        .manifests(CATEGORY)
        .replace("kind: CertificateSync", "kind: Other")
        .replace(
            "    credentialsSecretRef: {name: personio-api}",
            "    credentialsSecretRef: {name: personio-api}\n    api: v2",
        )
}

#[tokio::test]
async fn a_v2_resource_is_checked_through_v2_and_told_v1_is_cheaper() {
    let tenant = Tenant::start().await;
    let report = tenant
        .check(&employee_sync_on_v2(&tenant), None, &tenant.environment())
        .await;
    let rows: Vec<Capability> = report.findings.iter().map(|f| f.capability).collect();
    assert_eq!(
        rows,
        vec![
            Capability::PersonioToken,
            Capability::PersonioAttributes,
            Capability::PersonioV2Persons,
            Capability::PersonioV2Employments,
            Capability::PersonioV2OrgUnits,
            Capability::PersonioApi,
            Capability::ReteachToken,
            Capability::ReteachCustomerRead,
        ],
        "{}",
        report.table()
    );
    for finding in &report.findings {
        assert_eq!(finding.state, State::Ok, "{}", report.table());
    }
    assert!(detail(&report, Capability::PersonioAttributes).contains("through v2"));
    assert!(detail(&report, Capability::PersonioApi).contains("v1 can too"));
    for row in [
        Capability::PersonioV2Persons,
        Capability::PersonioV2Employments,
        Capability::PersonioV2OrgUnits,
    ] {
        let finding = report.get(row).unwrap();
        assert_eq!(
            finding.need,
            reteach_personio_operator::preflight::Need::Required,
            "a v2 resource needs {}",
            row.name()
        );
    }
    assert!(report.table().contains("personio-v2-employments  required"));
    assert_eq!(report.exit_code(), EXIT_READY);
}

#[tokio::test]
async fn a_v2_resource_without_the_employments_scope_is_not_ready_and_names_it() {
    let tenant = Tenant::start().await;
    tenant
        .personio
        .control()
        .inject(FaultRule::new("GET /v2/persons/", Fault::Status(403), 100));
    let report = tenant
        .check(&employee_sync_on_v2(&tenant), None, &tenant.environment())
        .await;
    assert_eq!(state(&report, Capability::PersonioV2Persons), State::Ok);
    assert_eq!(
        state(&report, Capability::PersonioV2Employments),
        State::Missing
    );
    assert!(
        action(&report, Capability::PersonioV2Employments).contains("personio:employments:read")
    );
    assert_eq!(
        state(&report, Capability::PersonioV2OrgUnits),
        State::Unknown,
        "not probed"
    );
    assert_eq!(state(&report, Capability::PersonioApi), State::Missing);
    assert!(action(&report, Capability::PersonioApi).contains("spec.personio.api: v1"));
    assert_eq!(report.exit_code(), EXIT_MISSING);
}

#[tokio::test]
async fn a_v1_resource_whose_credential_cannot_read_v1_employees_is_told_to_use_v2() {
    let tenant = Tenant::start().await;
    tenant.personio.control().inject(FaultRule::new(
        "GET /v1/company/employees",
        Fault::Status(403),
        100,
    ));
    let report = tenant
        .check(
            &tenant
                .manifests(CATEGORY)
                .replace("kind: CertificateSync", "kind: Other"),
            None,
            &tenant.environment(),
        )
        .await;
    assert_eq!(
        state(&report, Capability::PersonioAttributes),
        State::Missing
    );
    for row in [
        Capability::PersonioV2Persons,
        Capability::PersonioV2Employments,
        Capability::PersonioV2OrgUnits,
    ] {
        assert_eq!(state(&report, row), State::Ok, "{}", report.table());
        assert_eq!(
            report.get(row).unwrap().need,
            reteach_personio_operator::preflight::Need::Recommended
        );
    }
    assert_eq!(state(&report, Capability::PersonioApi), State::Missing);
    assert!(action(&report, Capability::PersonioApi).contains("spec.personio.api: v2"));
    assert_eq!(report.exit_code(), EXIT_MISSING, "v1 is what it reads now");
}
