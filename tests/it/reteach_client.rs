//! The reteach client against the reteach simulator: auth, pagination, lookups, writes,
//! participations, certificate downloads and every fault the simulator can inject.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::get;
use chrono::{DateTime, TimeZone, Utc};
use futures::{StreamExt, TryStreamExt};
use reteach_personio_operator::clock::ManualClock;
use reteach_personio_operator::reteach::{
    DownloadPolicy, ReteachApi, ReteachClient, ReteachConfig, ReteachCredentials, ReteachError,
    ReteachSubscriptions,
};
use reteach_personio_operator::sim::reteach::{
    BadTokenAnswer, CertificateUrls, ReteachSim, SimCustomer, StorageRequest,
};
use reteach_personio_operator::sim::{serve, Fault, FaultRule, RunningSim};
use reteach_personio_operator::sync::{CustomerFields, CustomerPatch, Gender};
use reteach_personio_operator::upstream::{RequestLog, RetryPolicy, TlsOptions};

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap()
}

struct Env {
    sim: ReteachSim,
    clock: ManualClock,
    server: RunningSim,
    log: RequestLog,
}

impl Env {
    async fn new() -> Self {
        let clock = ManualClock::new(start_time());
        let sim = ReteachSim::new(Arc::new(clock.clone()));
        let server = sim.start(loopback()).await.unwrap();
        Self {
            sim,
            clock,
            server,
            log: RequestLog::default(),
        }
    }

    fn config(&self) -> ReteachConfig {
        let credentials = self.sim.credentials();
        let mut config = ReteachConfig::new(
            self.server.base_url(),
            ReteachCredentials::new(
                credentials.client_id,
                credentials.client_secret,
                credentials.client_code,
            ),
        );
        config.tls = TlsOptions {
            allow_insecure_http: true,
            timeout: Some(Duration::from_secs(5)),
            ..TlsOptions::default()
        };
        config.requests_per_second = 10_000;
        config.retry = RetryPolicy {
            max_attempts: 4,
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        };
        config.observer = Arc::new(self.log.clone());
        config
    }

    fn client(&self) -> ReteachClient {
        ReteachClient::new(self.config()).unwrap()
    }

    /// Requests the simulator saw for exactly `METHOD path`.
    fn requests_to(&self, method: &str, path: &str) -> Vec<Option<String>> {
        self.sim
            .control()
            .requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .map(|r| r.query)
            .collect()
    }

    fn authorizations(&self) -> usize {
        self.sim.control().count("POST /oauth/authorize")
    }

    fn seed_customer(&self, external_id: &str, email: &str) -> String {
        self.sim.add_customer(SimCustomer {
            external_id: Some(external_id.to_string()),
            email: Some(email.to_string()),
            first_name: Some("Ada".to_string()),
            last_name: Some("Lovelace".to_string()),
            position: Some("Engineer".to_string()),
            department: Some("Sales".to_string()),
            registered: true,
            ..SimCustomer::default()
        })
    }
}

fn fields(external_id: &str, email: &str) -> CustomerFields {
    CustomerFields {
        external_id: external_id.to_string(),
        email: email.to_string(),
        first_name: Some("Grace".to_string()),
        last_name: Some("Hopper".to_string()),
        gender: Some(Gender::Female),
        ..CustomerFields::default()
    }
}

// --- auth -------------------------------------------------------------------------------------

#[tokio::test]
async fn exchanges_credentials_once_and_reuses_the_token() {
    let env = Env::new().await;
    let client = env.client();
    let academy = client.me().await.unwrap();
    assert_eq!(academy.id, "academy-sim");
    client.me().await.unwrap();
    client.list_customers().await.unwrap();
    assert_eq!(env.authorizations(), 1);
    assert_eq!(env.log.count("POST /oauth/authorize"), 1);
    assert_eq!(env.log.count("GET /me"), 2);
}

#[tokio::test]
async fn concurrent_first_calls_share_one_exchange() {
    let env = Env::new().await;
    let client = Arc::new(env.client());
    let calls = (0..8).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.me().await })
    });
    for call in futures::future::join_all(calls).await {
        call.unwrap().unwrap();
    }
    assert_eq!(env.authorizations(), 1);
}

#[tokio::test]
async fn wrong_credentials_are_unauthorized_with_reteachs_message() {
    let env = Env::new().await;
    let mut config = env.config();
    config.credentials.client.secret = "wrong-secret-value".into();
    let client = ReteachClient::new(config).unwrap();
    let error = client.me().await.unwrap_err();
    match &error {
        ReteachError::Unauthorized { message } => {
            assert!(message.contains("Invalid client credentials"), "{message}")
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(!error.to_string().contains("wrong-secret-value"));
    assert!(!error.is_transient());
    assert_eq!(env.requests_to("GET", "/me").len(), 0);
}

#[tokio::test]
async fn expired_tokens_mid_run_trigger_one_new_exchange() {
    let env = Env::new().await;
    let client = env.client();
    client.me().await.unwrap();
    env.sim.expire_all_tokens();
    client.list_customers().await.unwrap();
    assert_eq!(env.authorizations(), 2);

    // Tokens also expire by the simulator's clock (one hour).
    env.clock.advance(chrono::Duration::minutes(61));
    client.me().await.unwrap();
    assert_eq!(env.authorizations(), 3);

    // And the fault middleware's "expired token" answer.
    env.sim
        .control()
        .inject(FaultRule::new("GET /me", Fault::ExpiredToken, 1));
    client.me().await.unwrap();
    assert_eq!(env.authorizations(), 4);
}

#[tokio::test]
async fn a_second_401_after_a_fresh_token_is_unauthorized() {
    let env = Env::new().await;
    let client = env.client();
    env.sim
        .control()
        .inject(FaultRule::new("GET /me", Fault::ExpiredToken, 2));
    let error = client.me().await.unwrap_err();
    assert!(
        matches!(error, ReteachError::Unauthorized { .. }),
        "{error:?}"
    );
    assert_eq!(env.authorizations(), 2);
}

#[tokio::test]
async fn a_revoked_token_answered_403_is_exchanged_once_and_the_call_retried() {
    let env = Env::new().await;
    env.sim.set_bad_token_answer(BadTokenAnswer::Forbidden);
    let client = env.client();
    client.me().await.unwrap();
    env.sim.expire_all_tokens();
    client.list_customers().await.unwrap();
    assert_eq!(env.authorizations(), 2);
    let answered_403 = env
        .sim
        .control()
        .requests()
        .iter()
        .filter(|r| r.status == 403)
        .count();
    assert_eq!(answered_403, 1, "only the dead token was refused");
}

#[tokio::test]
async fn a_token_expired_by_the_clock_and_answered_403_is_replaced() {
    let env = Env::new().await;
    env.sim.set_bad_token_answer(BadTokenAnswer::Forbidden);
    let client = env.client();
    client.me().await.unwrap();
    env.clock.advance(chrono::Duration::minutes(61));
    client.me().await.unwrap();
    assert_eq!(env.authorizations(), 2);
}

#[tokio::test]
async fn a_403_to_a_freshly_issued_token_is_access_denied_without_another_exchange() {
    let env = Env::new().await;
    env.sim.set_bad_token_answer(BadTokenAnswer::Forbidden);
    env.sim
        .control()
        .inject(FaultRule::new("GET /me", Fault::Status(403), 2));
    let error = env.client().me().await.unwrap_err();
    assert!(matches!(error, ReteachError::Forbidden { .. }), "{error:?}");
    assert!(!error.is_transient());
    assert_eq!(env.authorizations(), 1);
    assert_eq!(env.requests_to("GET", "/me").len(), 1);
}

#[tokio::test]
async fn a_403_that_persists_with_a_fresh_token_is_access_denied() {
    let env = Env::new().await;
    let client = env.client();
    client.me().await.unwrap();
    env.sim
        .control()
        .inject(FaultRule::new("GET /me", Fault::Status(403), 2));
    let error = client.me().await.unwrap_err();
    assert!(matches!(error, ReteachError::Forbidden { .. }), "{error:?}");
    assert_eq!(env.authorizations(), 2, "one refresh, no more");
    assert_eq!(env.requests_to("GET", "/me").len(), 3);
}

#[tokio::test]
async fn a_401_to_a_cached_token_is_exchanged_once_in_the_default_mode() {
    let env = Env::new().await;
    let client = env.client();
    client.me().await.unwrap();
    env.sim.expire_all_tokens();
    client.me().await.unwrap();
    assert_eq!(env.authorizations(), 2);
    let answered_401 = env
        .sim
        .control()
        .requests()
        .iter()
        .filter(|r| r.status == 401)
        .count();
    assert_eq!(answered_401, 1);
}

// --- customers --------------------------------------------------------------------------------

async fn listing_with(customers: usize) -> (usize, Vec<Option<String>>) {
    let env = Env::new().await;
    env.sim.generate(customers, 0);
    let listed = env.client().list_customers().await.unwrap();
    let mut ids: Vec<_> = listed.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), listed.len());
    (listed.len(), env.requests_to("GET", "/customer"))
}

#[tokio::test]
async fn empty_academy_takes_one_page() {
    let (count, requests) = listing_with(0).await;
    assert_eq!(count, 0);
    assert_eq!(requests.len(), 1);
}

#[tokio::test]
async fn exactly_one_full_page_takes_one_request() {
    let (count, requests) = listing_with(250).await;
    assert_eq!(count, 250);
    assert_eq!(requests.len(), 1);
    let query = requests[0].clone().unwrap();
    assert!(
        query.contains("page=1") && query.contains("limit=250"),
        "{query}"
    );
}

#[tokio::test]
async fn one_more_than_a_page_takes_two_requests() {
    let (count, requests) = listing_with(251).await;
    assert_eq!(count, 251);
    assert_eq!(requests.len(), 2);
    assert!(requests[1].clone().unwrap().contains("page=2"));
}

#[tokio::test]
async fn customers_are_parsed_with_all_owned_fields() {
    let env = Env::new().await;
    let active = start_time() - chrono::Duration::days(10);
    let inactive = start_time() - chrono::Duration::days(1);
    env.sim.add_customer(SimCustomer {
        external_id: Some("77".to_string()),
        email: Some("left@acme.example".to_string()),
        gender: Some("DIVERSE".to_string()),
        location: Some("Berlin".to_string()),
        set_active_at: Some(active),
        set_inactive_at: Some(inactive),
        registered: true,
        ..SimCustomer::default()
    });
    let customer = env
        .client()
        .find_by_external_id("77")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(customer.gender, Some(Gender::Diverse));
    assert_eq!(customer.location.as_deref(), Some("Berlin"));
    assert_eq!(customer.set_active_at, Some(active));
    assert_eq!(customer.set_inactive_at, Some(inactive));
    assert_eq!(customer.status.as_deref(), Some("INACTIVE"));
}

#[tokio::test]
async fn lookups_by_external_id_and_email() {
    let env = Env::new().await;
    let id = env.seed_customer("42", "ada+test@acme.example");
    env.seed_customer("43", "other@acme.example");
    let client = env.client();

    let by_external = client.find_by_external_id("42").await.unwrap().unwrap();
    assert_eq!(by_external.id, id);
    assert!(client.find_by_external_id("999").await.unwrap().is_none());

    let by_email = client
        .find_by_email("ada+test@acme.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_email.id, id);
    assert!(client
        .find_by_email("nobody@acme.example")
        .await
        .unwrap()
        .is_none());
    // The path segment is encoded: a value with a slash cannot reach another route.
    assert!(client
        .find_by_email("a/b@acme.example")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn find_or_create_creates_once() {
    let env = Env::new().await;
    let client = env.client();
    let created = client
        .create_customer(&fields("100", "grace@acme.example"))
        .await
        .unwrap();
    assert_eq!(created.external_id.as_deref(), Some("100"));
    assert_eq!(created.gender, Some(Gender::Female));
    let again = client
        .create_customer(&fields("100", "grace@acme.example"))
        .await
        .unwrap();
    assert_eq!(again.id, created.id);
    assert_eq!(env.sim.customers().len(), 1);
    assert_eq!(env.sim.writes(&created.id), 1);
    assert_eq!(env.sim.customer("100").unwrap().source, "REST_API");
}

#[tokio::test]
async fn email_of_another_customer_is_rejected_without_echoing_it() {
    let env = Env::new().await;
    env.seed_customer("1", "taken@acme.example");
    let error = env
        .client()
        .create_customer(&fields("2", "taken@acme.example"))
        .await
        .unwrap_err();
    match &error {
        ReteachError::Rejected { message, .. } => assert!(message.contains("422"), "{message}"),
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(!error.to_string().contains("taken@acme.example"), "{error}");
    assert!(!error.to_string().contains('@'), "{error}");
}

#[tokio::test]
async fn invalid_email_is_rejected() {
    let env = Env::new().await;
    let error = env
        .client()
        .create_customer(&fields("3", "not-an-address"))
        .await
        .unwrap_err();
    match error {
        ReteachError::Rejected { message, .. } => {
            assert!(message.contains("email must be an email"), "{message}");
            assert!(!message.contains("not-an-address"));
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn update_sends_only_changed_fields_and_null_clears() {
    let env = Env::new().await;
    let id = env.seed_customer("42", "ada@acme.example");
    let patch = CustomerPatch {
        first_name: Some(Some("Augusta".to_string())),
        department: Some(None),
        set_inactive_at: Some(Some(start_time() + chrono::Duration::days(30))),
        ..CustomerPatch::default()
    };
    let body = serde_json::to_value(&patch).unwrap();
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    assert!(body["department"].is_null());

    let updated = env.client().update_customer(&id, &patch).await.unwrap();
    assert_eq!(updated.first_name.as_deref(), Some("Augusta"));
    assert_eq!(updated.department, None);
    assert_eq!(updated.last_name.as_deref(), Some("Lovelace"));
    assert_eq!(updated.position.as_deref(), Some("Engineer"));
    assert_eq!(updated.status.as_deref(), Some("ACTIVE"));
    assert_eq!(env.sim.writes(&id), 1);
    assert_eq!(env.sim.delete_requests(), 0);
}

#[tokio::test]
async fn update_of_unknown_customer_is_not_found() {
    let env = Env::new().await;
    let error = env
        .client()
        .update_customer("cus_missing", &CustomerPatch::default())
        .await
        .unwrap_err();
    assert!(matches!(error, ReteachError::NotFound { .. }), "{error:?}");
}

// --- participations ---------------------------------------------------------------------------

#[tokio::test]
async fn completions_since_a_date_across_pages() {
    let env = Env::new().await;
    let customer = env.seed_customer("42", "ada@acme.example");
    let since = start_time() - chrono::Duration::days(30);
    for i in 0..260 {
        let at = since + chrono::Duration::hours(i);
        env.sim
            .add_completion(&customer, "Safety", at, true)
            .unwrap();
    }
    for i in 1..=5 {
        let at = since - chrono::Duration::days(i);
        env.sim.add_completion(&customer, "Old", at, true).unwrap();
    }
    let pending = env
        .sim
        .add_completion(&customer, "Pending", start_time(), false)
        .unwrap();
    env.sim
        .add_participation(&customer, "Running", "STARTED", None)
        .unwrap();

    let completions = env
        .client()
        .completed_participations(Some(since))
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(completions.len(), 261);
    assert!(completions.iter().all(|c| c.completed_at >= since));
    assert!(completions
        .iter()
        .all(|c| c.customer_external_id.as_deref() == Some("42") && c.customer_id == customer));
    let pending_item = completions
        .iter()
        .find(|c| c.participation_id == pending.participation_id)
        .unwrap();
    assert_eq!(
        pending_item.certificate_id.as_deref(),
        Some(pending.certificate_id.as_str())
    );
    assert_eq!(pending_item.certificate_url, None);
    assert!(completions
        .iter()
        .filter(|c| c.participation_id != pending.participation_id)
        .all(|c| c.certificate_url.is_some()));

    let requests = env.requests_to("GET", "/participation");
    assert_eq!(requests.len(), 2);
    let query = requests[0].clone().unwrap();
    assert!(query.contains("status=COMPLETED"), "{query}");
    assert!(query.contains("completedAtSince="), "{query}");

    let all = env
        .client()
        .completed_participations(None)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(all.len(), 266);
}

#[tokio::test]
async fn pending_pdf_appears_after_generation() {
    let env = Env::new().await;
    let customer = env.seed_customer("42", "ada@acme.example");
    let seeded = env
        .sim
        .add_completion(&customer, "Safety", start_time(), false)
        .unwrap();
    let client = env.client();
    let before = client
        .participation(&seeded.participation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.certificate_url, None);
    assert!(env.sim.finish_pdf(&seeded.certificate_id));
    let after = client
        .participation(&seeded.participation_id)
        .await
        .unwrap()
        .unwrap();
    assert!(after.certificate_url.unwrap().ends_with("/download"));
    assert!(client.participation("par_missing").await.unwrap().is_none());
}

// --- downloads --------------------------------------------------------------------------------

async fn drain(stream: reteach_personio_operator::upstream::PdfStream) -> (Vec<u8>, u64) {
    let mut body = stream.body;
    let mut head = Vec::new();
    let mut total = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        if head.len() < 16 {
            head.extend_from_slice(&chunk[..chunk.len().min(16)]);
        }
        total += chunk.len() as u64;
    }
    (head, total)
}

async fn ready_certificate(env: &Env) -> (String, String) {
    let customer = env.seed_customer("42", "ada@acme.example");
    let seeded = env
        .sim
        .add_completion(&customer, "Safety", start_time(), true)
        .unwrap();
    let completion = env
        .client()
        .participation(&seeded.participation_id)
        .await
        .unwrap()
        .unwrap();
    (seeded.certificate_id, completion.certificate_url.unwrap())
}

#[tokio::test]
async fn downloads_a_pdf_with_the_token_on_the_same_origin() {
    let env = Env::new().await;
    let (_, url) = ready_certificate(&env).await;
    // The simulator requires the bearer on the download route: success proves it was sent.
    let pdf = env.client().download_certificate(&url).await.unwrap();
    let length = pdf.length.unwrap();
    let (head, total) = drain(pdf).await;
    assert!(head.starts_with(b"%PDF-1.4"));
    assert_eq!(total, length);
}

fn rejection(error: ReteachError) -> String {
    match error {
        ReteachError::Rejected { message, .. } => message,
        other => panic!("expected a per-certificate refusal, got {other:?}"),
    }
}

/// A policy letting the simulator's storage host (`localhost`, a loopback name) serve PDFs.
fn storage_allowed() -> DownloadPolicy {
    DownloadPolicy {
        allowed_hosts: vec!["localhost".to_string()],
        allow_private_addresses: true,
        ..DownloadPolicy::default()
    }
}

fn client_with(env: &Env, downloads: DownloadPolicy) -> ReteachClient {
    let mut config = env.config();
    config.downloads = downloads;
    ReteachClient::new(config).unwrap()
}

#[tokio::test]
async fn refuses_a_certificate_announced_larger_than_30_mb() {
    let env = Env::new().await;
    let (certificate, url) = ready_certificate(&env).await;
    env.sim.set_certificate_size(&certificate, 31 * 1024 * 1024);
    let error = env.client().download_certificate(&url).await.unwrap_err();
    assert!(rejection(error).contains("larger than"));
}

#[tokio::test]
async fn refuses_a_chunked_certificate_once_more_than_30_mb_arrived() {
    let env = Env::new().await;
    let (certificate, url) = ready_certificate(&env).await;
    env.sim.set_announce_pdf_length(false);
    env.sim.set_certificate_size(&certificate, 31 * 1024 * 1024);
    let error = env.client().download_certificate(&url).await.unwrap_err();
    assert!(!error.is_transient());
    assert!(rejection(error).contains("larger than"));
}

#[tokio::test]
async fn a_chunked_certificate_gets_its_exact_length() {
    let env = Env::new().await;
    let (certificate, url) = ready_certificate(&env).await;
    env.sim.set_announce_pdf_length(false);
    env.sim.set_certificate_size(&certificate, 300_000);
    let pdf = env.client().download_certificate(&url).await.unwrap();
    assert_eq!(pdf.length, Some(300_000));
    let (head, total) = drain(pdf).await;
    assert!(head.starts_with(b"%PDF"));
    assert_eq!(total, 300_000);
}

#[tokio::test]
async fn a_certificate_is_spooled_in_the_scratch_directory_and_leaves_nothing_behind() {
    let env = Env::new().await;
    let (certificate, url) = ready_certificate(&env).await;
    env.sim.set_announce_pdf_length(false);
    env.sim.set_certificate_size(&certificate, 2 * 1024 * 1024);
    let scratch = tempfile::tempdir().unwrap();
    let client = client_with(
        &env,
        DownloadPolicy {
            scratch_dir: Some(scratch.path().to_path_buf()),
            ..DownloadPolicy::default()
        },
    );
    let pdf = client.download_certificate(&url).await.unwrap();
    assert_eq!(pdf.length, Some(2 * 1024 * 1024));
    let (head, total) = drain(pdf).await;
    assert!(head.starts_with(b"%PDF"));
    assert_eq!(total, 2 * 1024 * 1024);
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn an_unusable_scratch_directory_is_transient_and_named() {
    let env = Env::new().await;
    let (_, url) = ready_certificate(&env).await;
    let client = client_with(
        &env,
        DownloadPolicy {
            scratch_dir: Some("/nonexistent/scratch".into()),
            ..DownloadPolicy::default()
        },
    );
    let error = client.download_certificate(&url).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(
        error.to_string().contains("/nonexistent/scratch"),
        "{error}"
    );
}

#[tokio::test]
async fn signed_storage_url_on_another_host_never_gets_the_token() {
    let env = Env::new().await;
    env.sim.set_certificate_urls(CertificateUrls::SignedStorage);
    let (certificate, url) = ready_certificate(&env).await;
    assert!(url.starts_with("http://localhost:"), "{url}");
    let client = client_with(&env, storage_allowed());
    client.me().await.unwrap(); // a token exists and could leak
    let pdf = client.download_certificate(&url).await.unwrap();
    let (head, _) = drain(pdf).await;
    assert!(head.starts_with(b"%PDF"));
    assert_eq!(
        env.sim.storage_requests(),
        vec![StorageRequest {
            certificate_id: certificate,
            had_authorization: false,
        }]
    );
}

#[tokio::test]
async fn a_storage_host_outside_the_allowlist_is_refused_before_any_request() {
    let env = Env::new().await;
    env.sim.set_certificate_urls(CertificateUrls::SignedStorage);
    let (_, url) = ready_certificate(&env).await;
    let strict = client_with(
        &env,
        DownloadPolicy {
            allow_private_addresses: true,
            ..DownloadPolicy::default()
        },
    );
    let message = rejection(strict.download_certificate(&url).await.unwrap_err());
    assert!(
        message.contains("not an allowed download host"),
        "{message}"
    );
    assert!(
        !message.contains("signature"),
        "no URL in the reason: {message}"
    );
    assert!(env.sim.storage_requests().is_empty());
}

#[tokio::test]
async fn a_download_host_resolving_to_loopback_is_refused_unless_allowed() {
    let env = Env::new().await;
    env.sim.set_certificate_urls(CertificateUrls::SignedStorage);
    let (_, url) = ready_certificate(&env).await;
    let guarded = client_with(
        &env,
        DownloadPolicy {
            allowed_hosts: vec!["localhost".to_string()],
            ..DownloadPolicy::default()
        },
    );
    let message = rejection(guarded.download_certificate(&url).await.unwrap_err());
    assert!(
        message.contains("loopback, private or link-local"),
        "{message}"
    );
    assert!(env.sim.storage_requests().is_empty());

    // A literal address is refused without a lookup (another port: not the API origin).
    let other_port = format!(
        "http://127.0.0.1:{}/storage/x.pdf",
        env.server.addr.port().wrapping_add(1)
    );
    let guarded = client_with(
        &env,
        DownloadPolicy {
            allowed_hosts: vec!["127.0.0.1".to_string()],
            ..DownloadPolicy::default()
        },
    );
    let message = rejection(guarded.download_certificate(&other_port).await.unwrap_err());
    assert!(
        message.contains("loopback, private or link-local"),
        "{message}"
    );
}

#[tokio::test]
async fn a_web_page_instead_of_a_pdf_is_refused_with_its_content_type() {
    let env = Env::new().await;
    env.sim.set_certificate_urls(CertificateUrls::NotPdfPage);
    let (_, url) = ready_certificate(&env).await;
    let message = rejection(env.client().download_certificate(&url).await.unwrap_err());
    assert!(message.contains("not a PDF"), "{message}");
    assert!(message.contains("text/html"), "{message}");
}

#[tokio::test]
async fn a_redirect_chain_keeps_the_token_inside_the_api_only() {
    let env = Env::new().await;
    env.sim.set_certificate_urls(CertificateUrls::Redirects(3));
    let (certificate, url) = ready_certificate(&env).await;
    let client = client_with(&env, storage_allowed());
    let pdf = client.download_certificate(&url).await.unwrap();
    let (head, _) = drain(pdf).await;
    assert!(head.starts_with(b"%PDF"));
    // The hops inside the API need the bearer (the simulator checks it) ...
    let hops = env
        .sim
        .control()
        .count(&format!("GET /certificates/{certificate}/hop/"));
    assert_eq!(hops, 2);
    // ... the storage host never sees it.
    assert_eq!(
        env.sim.storage_requests(),
        vec![StorageRequest {
            certificate_id: certificate,
            had_authorization: false,
        }]
    );
}

#[tokio::test]
async fn more_than_three_redirects_are_refused() {
    let env = Env::new().await;
    env.sim.set_certificate_urls(CertificateUrls::Redirects(4));
    let (_, url) = ready_certificate(&env).await;
    let client = client_with(&env, storage_allowed());
    let message = rejection(client.download_certificate(&url).await.unwrap_err());
    assert!(message.contains("more than 3"), "{message}");
    assert!(env.sim.storage_requests().is_empty());
}

#[tokio::test]
async fn a_redirect_to_a_host_outside_the_allowlist_is_refused() {
    let env = Env::new().await;
    env.sim.set_certificate_urls(CertificateUrls::Redirects(1));
    let (_, url) = ready_certificate(&env).await;
    let message = rejection(env.client().download_certificate(&url).await.unwrap_err());
    assert!(
        message.contains("not an allowed download host"),
        "{message}"
    );
    assert!(env.sim.storage_requests().is_empty());
}

#[tokio::test]
async fn non_pdf_and_missing_certificates() {
    let env = Env::new().await;
    let (certificate, url) = ready_certificate(&env).await;
    env.sim.break_certificate(&certificate);
    let error = env.client().download_certificate(&url).await.unwrap_err();
    assert!(matches!(error, ReteachError::Rejected { .. }), "{error:?}");

    let missing = format!(
        "{}/certificates/cer_missing/download",
        env.server.base_url()
    );
    let error = env
        .client()
        .download_certificate(&missing)
        .await
        .unwrap_err();
    assert!(matches!(error, ReteachError::NotFound { .. }), "{error:?}");
}

/// A storage host on another origin that records the Authorization header it receives.
async fn storage_server(seen: Arc<Mutex<Vec<Option<String>>>>) -> RunningSim {
    let router = axum::Router::new().route(
        "/signed/cert.pdf",
        get(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_string());
                seen.lock().unwrap().push(auth);
                b"%PDF-1.4\n%%EOF\n".to_vec()
            }
        }),
    );
    serve(router, loopback()).await.unwrap()
}

#[tokio::test]
async fn cross_origin_download_gets_no_token() {
    let env = Env::new().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let storage = storage_server(seen.clone()).await;
    assert_ne!(storage.addr.port(), env.server.addr.port());
    let client = client_with(
        &env,
        DownloadPolicy {
            allowed_hosts: vec![format!("127.0.0.1:{}", storage.addr.port())],
            allow_private_addresses: true,
            ..DownloadPolicy::default()
        },
    );
    client.me().await.unwrap(); // a token exists and could leak
    let url = format!("{}/signed/cert.pdf?sig=abc", storage.base_url());
    let pdf = client.download_certificate(&url).await.unwrap();
    let (head, _) = drain(pdf).await;
    assert!(head.starts_with(b"%PDF"));
    assert_eq!(seen.lock().unwrap().clone(), vec![None]);
}

#[tokio::test]
async fn refused_signed_urls_and_plain_http_storage() {
    let env = Env::new().await;
    let router = axum::Router::new().route(
        "/expired.pdf",
        get(|| async {
            (
                axum::http::StatusCode::FORBIDDEN,
                "<Error>AccessDenied</Error>",
            )
        }),
    );
    let storage = serve(router, loopback()).await.unwrap();
    let client = client_with(
        &env,
        DownloadPolicy {
            allowed_hosts: vec!["127.0.0.1".to_string()],
            allow_private_addresses: true,
            ..DownloadPolicy::default()
        },
    );
    let error = client
        .download_certificate(&format!("{}/expired.pdf", storage.base_url()))
        .await
        .unwrap_err();
    assert!(rejection(error).contains("storage host refused"));
    assert_eq!(
        env.authorizations(),
        0,
        "no token involved for another origin"
    );

    let mut config = env.config();
    config.base_url = "https://api.reteach.example".to_string();
    config.tls.allow_insecure_http = false;
    let strict = ReteachClient::new(config).unwrap();
    let error = strict
        .download_certificate(&format!("{}/expired.pdf", storage.base_url()))
        .await
        .unwrap_err();
    assert!(matches!(error, ReteachError::Rejected { .. }), "{error:?}");
}

// --- faults -----------------------------------------------------------------------------------

#[tokio::test]
async fn a_429_storm_then_success() {
    let env = Env::new().await;
    let client = env.client();
    client.me().await.unwrap();
    env.sim
        .control()
        .inject(FaultRule::new("GET /customer", Fault::Status(429), 3));
    client.list_customers().await.unwrap();
    assert_eq!(env.requests_to("GET", "/customer").len(), 4);
}

#[tokio::test]
async fn permanent_429_is_unavailable_after_the_retry_budget() {
    let env = Env::new().await;
    let client = env.client();
    client.me().await.unwrap();
    env.sim
        .control()
        .inject(FaultRule::new("GET /customer", Fault::Status(429), 100));
    let error = client.list_customers().await.unwrap_err();
    assert!(
        matches!(error, ReteachError::Unavailable { .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert_eq!(env.requests_to("GET", "/customer").len(), 4);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let env = Env::new().await;
    env.sim
        .control()
        .inject(FaultRule::new("GET /me", Fault::Status(503), 2));
    env.client().me().await.unwrap();
    assert_eq!(env.requests_to("GET", "/me").len(), 3);
}

#[tokio::test]
async fn a_delay_beyond_the_timeout_is_retried() {
    let env = Env::new().await;
    let mut config = env.config();
    config.tls.timeout = Some(Duration::from_millis(300));
    let client = ReteachClient::new(config).unwrap();
    client.me().await.unwrap();
    env.sim.control().inject(FaultRule::new(
        "GET /me",
        Fault::Delay(Duration::from_secs(3)),
        1,
    ));
    client.me().await.unwrap();
    let timeouts = env
        .log
        .records()
        .iter()
        .filter(|r| r.endpoint == "GET /me" && r.status == 0)
        .count();
    assert_eq!(timeouts, 1);
}

#[tokio::test]
async fn a_reset_connection_is_retried() {
    let env = Env::new().await;
    let client = env.client();
    client.me().await.unwrap();
    env.sim
        .control()
        .inject(FaultRule::new("GET /customer", Fault::Reset, 1));
    env.sim.generate(3, 0);
    assert_eq!(client.list_customers().await.unwrap().len(), 3);
    assert_eq!(env.requests_to("GET", "/customer").len(), 2);
}

#[tokio::test]
async fn a_write_whose_answer_is_lost_is_sent_again_safely() {
    let env = Env::new().await;
    let client = env.client();
    client.me().await.unwrap();

    env.sim
        .control()
        .inject(FaultRule::new("POST /customer", Fault::ApplyThenReset, 1));
    let created = client
        .create_customer(&fields("100", "grace@acme.example"))
        .await
        .unwrap();
    assert_eq!(env.requests_to("POST", "/customer").len(), 2);
    assert_eq!(
        env.sim.customers().len(),
        1,
        "find-or-create must not duplicate"
    );

    env.sim
        .control()
        .inject(FaultRule::new("PUT /customer", Fault::ApplyThenReset, 1));
    let patch = CustomerPatch {
        position: Some(Some("Admiral".to_string())),
        ..CustomerPatch::default()
    };
    let updated = client.update_customer(&created.id, &patch).await.unwrap();
    assert_eq!(updated.position.as_deref(), Some("Admiral"));
    assert_eq!(env.sim.writes(&created.id), 3);
}

#[tokio::test]
async fn broken_bodies_exhaust_into_unavailable_without_personal_data() {
    let env = Env::new().await;
    let client = env.client();
    client.me().await.unwrap();
    env.sim
        .control()
        .inject(FaultRule::new("GET /customer/", Fault::Reset, 100));
    let error = client
        .find_by_email("private.person@acme.example")
        .await
        .unwrap_err();
    assert!(
        matches!(error, ReteachError::Unavailable { .. }),
        "{error:?}"
    );
    assert!(
        !format!("{error} {error:?}").contains("private.person"),
        "{error:?}"
    );
    assert_eq!(env.sim.control().count("GET /customer/"), 4);
}

#[tokio::test]
async fn a_large_academy_lists_in_as_many_requests_as_pages() {
    let env = Env::new().await;
    env.sim.generate(1001, 0);
    let customers = env.client().list_customers().await.unwrap();
    assert_eq!(customers.len(), 1001);
    assert_eq!(env.requests_to("GET", "/customer").len(), 5);
}

#[tokio::test]
async fn malformed_json_is_malformed() {
    let env = Env::new().await;
    let client = env.client();
    client.me().await.unwrap();
    env.sim.control().inject(FaultRule::new(
        "GET /participation",
        Fault::MalformedJson,
        1,
    ));
    let error = client
        .completed_participations(None)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(error, ReteachError::Malformed { .. }), "{error:?}");
}

#[tokio::test]
async fn forbidden_is_typed() {
    let env = Env::new().await;
    let client = env.client();
    env.sim
        .control()
        .inject(FaultRule::new("GET /me", Fault::Status(403), 1));
    let error = client.me().await.unwrap_err();
    assert!(matches!(error, ReteachError::Forbidden { .. }), "{error:?}");
}

#[tokio::test]
async fn plain_http_needs_the_opt_in() {
    let env = Env::new().await;
    let mut config = env.config();
    config.tls.allow_insecure_http = false;
    assert!(matches!(
        ReteachClient::new(config),
        Err(ReteachError::Config(_))
    ));
}

// --- body caps --------------------------------------------------------------------------------

/// A fake reteach whose token endpoint works and whose `/me` answers `status` with a body that
/// never ends (chunked, no Content-Length).
async fn endless_server(status: u16) -> RunningSim {
    let router = axum::Router::new()
        .route(
            "/oauth/authorize",
            axum::routing::post(|| async {
                axum::Json(serde_json::json!({"access_token": "t", "expires_in": 3600}))
            }),
        )
        .route(
            "/me",
            get(move || async move {
                let endless = futures::stream::repeat(bytes::Bytes::from_static(
                    br#"{"id":"academy","name":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},"#,
                ))
                .map(Ok::<_, std::io::Error>);
                let mut response = axum::response::Response::new(axum::body::Body::from_stream(endless));
                *response.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                response
            }),
        );
    serve(router, loopback()).await.unwrap()
}

fn client_for(server: &RunningSim) -> ReteachClient {
    let mut config = ReteachConfig::new(
        server.base_url(),
        ReteachCredentials::new("id", "secret", "code"),
    );
    config.tls = TlsOptions {
        allow_insecure_http: true,
        timeout: Some(Duration::from_secs(30)),
        ..TlsOptions::default()
    };
    config.retry = RetryPolicy {
        max_attempts: 2,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(5),
    };
    ReteachClient::new(config).unwrap()
}

/// Fails instead of hanging when a client reads an endless body.
async fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), future)
        .await
        .expect("the client kept reading an endless body")
}

#[tokio::test]
async fn an_endless_json_body_is_cut_at_the_cap_and_reported() {
    let server = endless_server(200).await;
    let error = bounded(client_for(&server).me()).await.unwrap_err();
    match error {
        ReteachError::Malformed { message, .. } => {
            assert!(
                message.contains("larger than the 8388608-byte limit"),
                "{message}"
            )
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[tokio::test]
async fn an_endless_error_body_is_read_only_up_to_the_cap() {
    let server = endless_server(400).await;
    let error = bounded(client_for(&server).me()).await.unwrap_err();
    assert!(matches!(error, ReteachError::Rejected { .. }), "{error:?}");
}

// --- download into upload ---------------------------------------------------------------------

#[tokio::test]
async fn a_chunked_download_reaches_personio_with_a_content_length() {
    use reteach_personio_operator::personio::{
        DocumentUpload, PersonioApi, PersonioClient, PersonioConfig, PersonioCredentials,
        PersonioRateLimits,
    };
    use reteach_personio_operator::sim::personio::{EmployeeSeed, PersonioSim, PersonioSimConfig};

    let env = Env::new().await;
    let (certificate, url) = ready_certificate(&env).await;
    env.sim.set_announce_pdf_length(false);
    env.sim.set_certificate_size(&certificate, 1024 * 1024);

    let personio = PersonioSim::new(PersonioSimConfig {
        rate_limits: None,
        ..PersonioSimConfig::default()
    });
    personio.set_require_content_length(true);
    let employee = personio.add_employee(EmployeeSeed::new("Ada", "Lovelace", "ada@acme.example"));
    let running = personio.start(loopback()).await.unwrap();
    let (id, secret) = personio.credentials();
    let mut config = PersonioConfig::new(running.base_url(), PersonioCredentials::new(id, secret));
    config.tls.allow_insecure_http = true;
    config.limits = PersonioRateLimits::unlimited();
    let uploader = PersonioClient::new(config).unwrap();

    let pdf = env.client().download_certificate(&url).await.unwrap();
    uploader
        .upload_document(DocumentUpload {
            employee_id: employee.to_string(),
            category_id: 3,
            title: "Certificate".to_string(),
            date: chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            comment: format!("reteach-certificate:{certificate}"),
            file_name: "certificate.pdf".to_string(),
            pdf,
        })
        .await
        .unwrap();
    let stored = personio.documents();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].size, 1024 * 1024);
    assert!(stored[0].request_content_length.is_some());
}

/// A loopback receiver that records every body it is sent.
async fn recording_receiver() -> (RunningSim, Arc<Mutex<Vec<serde_json::Value>>>) {
    let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let sink = seen.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<serde_json::Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body.0);
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    (serve(router, loopback()).await.unwrap(), seen)
}

#[tokio::test]
async fn subscriptions_are_created_listed_and_deleted_and_deliver_completions() {
    let env = Env::new().await;
    let client = env.client();
    let (receiver, seen) = recording_receiver().await;
    let target = format!("{}/hook", receiver.base_url());
    assert!(client.list_subscriptions().await.unwrap().is_empty());
    client
        .create_subscription(&target, "participation.completed")
        .await
        .unwrap();
    let refused = client.create_subscription(&target, "course.exploded").await;
    assert!(
        matches!(refused, Err(ReteachError::Rejected { .. })),
        "{refused:?}"
    );
    let listed = client.list_subscriptions().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].target.as_str(), listed[0].event.as_str()),
        (target.as_str(), "participation.completed")
    );

    let customer = env.seed_customer("10001", "ada@acme.example");
    env.sim
        .add_completion(&customer, "Safety", start_time(), false)
        .unwrap();
    for _ in 0..250 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bodies = seen.lock().unwrap().clone();
    assert_eq!(
        bodies.len(),
        1,
        "one event subscribed, one delivery: {bodies:?}"
    );
    assert_eq!(bodies[0]["event"], "participation.completed");

    client.delete_subscription(&listed[0].id).await.unwrap();
    client
        .delete_subscription(&listed[0].id)
        .await
        .expect("an unknown id counts as deleted");
    assert!(client.list_subscriptions().await.unwrap().is_empty());
}

#[tokio::test]
async fn tags_are_added_in_one_request_and_removed_one_by_one_with_encoded_names() {
    let env = Env::new().await;
    let client = env.client();
    let user = client
        .create_customer(&fields("100", "grace@acme.example"))
        .await
        .unwrap();
    assert!(user.tags.is_empty());
    let names = ["Sales".to_string(), "R&D / 50%".to_string()];
    client.add_tags(&user.id, &names).await.unwrap();
    client.add_tags(&user.id, &names[..1]).await.unwrap();
    assert_eq!(
        env.requests_to("PUT", &format!("/customer/{}/multiple-tags", user.id))
            .len(),
        1
    );
    assert_eq!(
        env.requests_to("PUT", &format!("/customer/{}/tags", user.id))
            .len(),
        1
    );
    let listed = client.find_by_external_id("100").await.unwrap().unwrap();
    let mut held: Vec<&str> = listed.tags.iter().map(|t| t.name.as_str()).collect();
    held.sort_unstable();
    assert_eq!(held, ["R&D / 50%", "Sales"]);
    let odd = listed
        .tags
        .iter()
        .find(|t| t.name.starts_with("R&D"))
        .unwrap();
    client.remove_tag(&user.id, &odd.name).await.unwrap();
    let sales = listed.tags.iter().find(|t| t.name == "Sales").unwrap();
    client.remove_tag(&user.id, sales.address()).await.unwrap();
    assert!(env.sim.customer("100").unwrap().tags.is_empty());
    let error = client.remove_tag(&user.id, "Sales").await.unwrap_err();
    assert!(matches!(error, ReteachError::NotFound { .. }), "{error}");
}
