//! The Personio client against the Personio simulator: auth, pagination, the change feed,
//! whitelists, rate limits, faults and uploads.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use futures::StreamExt;
use reteach_personio_operator::clock::ManualClock;
use reteach_personio_operator::personio::{
    DocumentUpload, EmployeeApi, PersonioApi, PersonioClient, PersonioConfig, PersonioCredentials,
    PersonioError, PersonioRateLimits, MAX_FILE_BYTES, REQUIRED_ATTRIBUTES,
};
use reteach_personio_operator::sim::personio::{
    BucketLimit, EmployeeSeed, PersonioSim, PersonioSimConfig, SimRateLimits, WindowLimit,
};
use reteach_personio_operator::sim::{Fault, FaultRule, RunningSim};
use reteach_personio_operator::upstream::{PdfStream, RequestLog, RetryPolicy, TlsOptions};

const EMPLOYEES: &str = "GET /v1/company/employees";
const UPLOAD: &str = "POST /v1/company/documents";
const AUTH: &str = "POST /v1/auth";

struct Harness {
    sim: PersonioSim,
    running: RunningSim,
    client: PersonioClient,
    log: RequestLog,
}

fn config_for(sim: &PersonioSim, running: &RunningSim, log: &RequestLog) -> PersonioConfig {
    let (client_id, client_secret) = sim.credentials();
    let mut config = PersonioConfig::new(
        running.base_url(),
        PersonioCredentials::new(client_id, client_secret),
    );
    config.tls = TlsOptions {
        allow_insecure_http: true,
        timeout: Some(Duration::from_millis(600)),
        ..TlsOptions::default()
    };
    config.limits = PersonioRateLimits::unlimited();
    config.retry = RetryPolicy {
        max_attempts: 4,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    config.observer = Arc::new(log.clone());
    config
}

async fn start(sim: PersonioSim) -> Harness {
    let running = sim.start(([127, 0, 0, 1], 0).into()).await.unwrap();
    let log = RequestLog::default();
    let client = PersonioClient::new(config_for(&sim, &running, &log)).unwrap();
    Harness {
        sim,
        running,
        client,
        log,
    }
}

fn sim_without_limits() -> PersonioSim {
    PersonioSim::new(PersonioSimConfig {
        rate_limits: None,
        ..PersonioSimConfig::default()
    })
}

fn add_employees(sim: &PersonioSim, count: usize) -> Vec<i64> {
    (0..count)
        .map(|i| {
            sim.add_employee(
                EmployeeSeed::new("Test", "Person", &format!("person{i}@example.com"))
                    .with_department(1, "Engineering")
                    .with_office(2, "Berlin")
                    .with_hire_date(NaiveDate::from_ymd_opt(2020, 1, 1).unwrap()),
            )
        })
        .collect()
}

fn upload(employee_id: i64, category_id: i64, pdf: PdfStream) -> DocumentUpload {
    DocumentUpload {
        employee_id: employee_id.to_string(),
        category_id,
        title: "Certificate: Safety Basics".to_string(),
        date: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        comment: "reteach-certificate:cert-1".to_string(),
        file_name: "certificate-cert-1.pdf".to_string(),
        pdf,
    }
}

fn small_pdf() -> PdfStream {
    PdfStream::from_bytes(&b"%PDF-1.4 certificate"[..])
}

fn unavailable(result: Result<String, PersonioError>) -> bool {
    match result {
        Err(PersonioError::Unavailable { maybe_applied, .. }) => maybe_applied,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

// --- auth -------------------------------------------------------------------------------------

#[tokio::test]
async fn authenticates_with_body_credentials_and_sends_app_id_everywhere() {
    let h = start(sim_without_limits()).await;
    add_employees(&h.sim, 2);
    h.client.check_credentials().await.unwrap();
    let list = h.client.list_employees(None).await.unwrap();
    assert_eq!(list.employees.len(), 2);
    h.client.document_categories().await.unwrap();

    let requests = h.sim.control().requests();
    let auth = requests.iter().find(|r| r.path == "/v1/auth").unwrap();
    assert_eq!(
        auth.query, None,
        "credentials must not be in the query string"
    );
    assert_eq!(h.sim.control().count(AUTH), 1, "token is cached");
    let app_ids = h.sim.app_ids();
    assert!(app_ids.len() >= 3);
    assert!(app_ids
        .iter()
        .all(|id| id.as_deref() == Some("RETEACH_PERSONIO_OPERATOR")));
}

#[tokio::test]
async fn wrong_credentials_are_unauthorized_with_personios_message() {
    let sim = sim_without_limits();
    let running = sim.start(([127, 0, 0, 1], 0).into()).await.unwrap();
    let mut config = config_for(&sim, &running, &RequestLog::default());
    config.credentials.secret = "wrong".into();
    let client = PersonioClient::new(config).unwrap();
    match client.check_credentials().await {
        Err(PersonioError::Unauthorized { message }) => assert_eq!(message, "Wrong credentials"),
        other => panic!("unexpected {other:?}"),
    }
    let error = client.list_employees(None).await.unwrap_err();
    assert!(!error.is_transient());
    assert!(
        !error.to_string().contains("wrong"),
        "secret must not be echoed"
    );
}

#[tokio::test]
async fn reauthenticates_when_the_token_expires_between_pages() {
    let h = start(sim_without_limits()).await;
    add_employees(&h.sim, 150);
    h.client.check_credentials().await.unwrap();
    h.sim.expire_tokens_after(1);
    let list = h.client.list_employees(None).await.unwrap();
    assert_eq!(list.employees.len(), 150);
    assert_eq!(h.sim.control().count(AUTH), 2);
    // page 1, page 2 refused with 401, page 2 again
    assert_eq!(h.sim.control().count(EMPLOYEES), 3);
}

#[tokio::test]
async fn reauthenticates_after_an_expired_token_fault() {
    let h = start(sim_without_limits()).await;
    add_employees(&h.sim, 3);
    h.client.check_credentials().await.unwrap();
    h.sim
        .control()
        .inject(FaultRule::new(EMPLOYEES, Fault::ExpiredToken, 1));
    let list = h.client.list_employees(None).await.unwrap();
    assert_eq!(list.employees.len(), 3);
    assert_eq!(h.sim.control().count(AUTH), 2);
}

// --- pagination -------------------------------------------------------------------------------

async fn pages_for(count: usize) -> (usize, usize) {
    let h = start(sim_without_limits()).await;
    add_employees(&h.sim, count);
    let list = h.client.list_employees(None).await.unwrap();
    (list.employees.len(), h.sim.control().count(EMPLOYEES))
}

#[tokio::test]
async fn no_employees_take_one_request() {
    assert_eq!(pages_for(0).await, (0, 1));
}

#[tokio::test]
async fn exactly_one_full_page_takes_one_request() {
    assert_eq!(pages_for(100).await, (100, 1));
}

#[tokio::test]
async fn one_more_than_a_page_takes_two_requests() {
    assert_eq!(pages_for(101).await, (101, 2));
}

#[tokio::test]
async fn requests_the_attributes_and_page_size() {
    let h = start(sim_without_limits()).await;
    add_employees(&h.sim, 1);
    h.client.list_employees(None).await.unwrap();
    let request = h
        .sim
        .control()
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/company/employees")
        .unwrap();
    let query = request.query.unwrap();
    assert!(query.contains("limit=100"));
    assert!(query.contains("offset=0"));
    for attribute in REQUIRED_ATTRIBUTES {
        assert!(
            query.contains(&format!("attributes%5B%5D={attribute}")),
            "{attribute} not requested"
        );
    }
}

#[tokio::test]
async fn updated_since_returns_only_changed_employees() {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap());
    let sim = PersonioSim::new(PersonioSimConfig {
        rate_limits: None,
        clock: Arc::new(clock.clone()),
        ..PersonioSimConfig::default()
    });
    let ids = add_employees(&sim, 3);
    clock.advance(chrono::Duration::hours(1));
    sim.update_employee(ids[1], |e| e.position = Some("Team Lead".into()));
    add_employees(&sim, 1);
    let h = start(sim).await;

    let since = NaiveDate::from_ymd_opt(2026, 11, 24)
        .unwrap()
        .and_hms_opt(9, 30, 0)
        .unwrap();
    let list = h.client.list_employees(Some(since)).await.unwrap();
    let mut changed: Vec<String> = list.employees.iter().map(|e| e.id.clone()).collect();
    changed.sort();
    assert_eq!(changed.len(), 2);
    assert!(changed.contains(&ids[1].to_string()));
    let request = h
        .sim
        .control()
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/company/employees")
        .unwrap();
    assert!(request
        .query
        .unwrap()
        .contains("updated_since=2026-11-24T09%3A30%3A00"));
}

#[tokio::test]
async fn updated_since_accepts_everything_in_one_response() {
    let h = start(sim_without_limits()).await;
    add_employees(&h.sim, 150);
    let since = NaiveDate::from_ymd_opt(2000, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let list = h.client.list_employees(Some(since)).await.unwrap();
    assert_eq!(list.employees.len(), 150);
    assert_eq!(h.sim.control().count(EMPLOYEES), 1);
}

#[tokio::test]
async fn exactly_a_page_of_changes_does_not_repeat() {
    // With updated_since the simulator ignores offset; total_elements ends the loop after one
    // full page (a repeating page is covered by `stops_when_personio_repeats_a_page`).
    let h = start(sim_without_limits()).await;
    add_employees(&h.sim, 100);
    let since = NaiveDate::from_ymd_opt(2000, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let list = h.client.list_employees(Some(since)).await.unwrap();
    assert_eq!(list.employees.len(), 100);
    assert_eq!(
        h.sim.control().count(EMPLOYEES),
        1,
        "total_elements says there is no more"
    );
}

// --- whitelist and lenient parsing --------------------------------------------------------------

#[tokio::test]
async fn missing_email_in_the_whitelist_is_named() {
    let h = start(sim_without_limits()).await;
    add_employees(&h.sim, 2);
    let allowed: Vec<&str> = REQUIRED_ATTRIBUTES
        .iter()
        .copied()
        .filter(|a| *a != "email")
        .collect();
    h.sim.set_whitelist(Some(&allowed));
    match h.client.list_employees(None).await {
        Err(PersonioError::AttributesNotWhitelisted(names)) => {
            assert_eq!(names, vec!["email".to_string()])
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_credential_without_last_modified_at_syncs() {
    let h = start(sim_without_limits()).await;
    add_employees(&h.sim, 2);
    assert!(!REQUIRED_ATTRIBUTES.contains(&"last_modified_at"));
    h.sim.set_whitelist(Some(&REQUIRED_ATTRIBUTES));
    let list = h.client.list_employees(None).await.unwrap();
    assert_eq!(list.employees.len(), 2);
    assert!(list.skipped.is_empty());
    assert!(list.employees.iter().all(|e| e.last_modified_at.is_none()));
}

#[tokio::test]
async fn status_and_contract_end_are_optional() {
    let h = start(sim_without_limits()).await;
    add_employees(&h.sim, 2);
    h.sim.set_whitelist(Some(&REQUIRED_ATTRIBUTES));
    let list = h.client.list_employees(None).await.unwrap();
    assert_eq!(list.employees.len(), 2);
    assert!(list.employees.iter().all(|e| e.status.is_none()));
    assert!(list.employees[0].email.is_some());
}

#[tokio::test]
async fn generated_company_parses_with_edge_cases_skipped() {
    let sim = PersonioSim::new(PersonioSimConfig {
        rate_limits: None,
        ..PersonioSimConfig::default()
    });
    sim.populate(250, 3);
    let h = start(sim).await;
    let list = h.client.list_employees(None).await.unwrap();
    assert_eq!(list.employees.len() + list.skipped.len(), 250);
    assert_eq!(
        list.skipped.len(),
        3,
        "records 47, 147 and 247: {:?}",
        list.skipped
    );
    assert!(list
        .skipped
        .iter()
        .all(|s| s.reason == "hire_date: unparseable date" && s.id.is_some()));
    assert!(list.employees.iter().any(|e| e.department.is_none()));
    assert!(list.employees.iter().all(|e| e.last_modified_at.is_some()));
    assert_eq!(h.sim.control().count(EMPLOYEES), 3);
}

// --- rate limits and faults on listing ----------------------------------------------------------

#[tokio::test]
async fn a_short_429_storm_is_ridden_out() {
    let h = start(sim_without_limits()).await;
    add_employees(&h.sim, 2);
    h.sim
        .control()
        .inject(FaultRule::new(EMPLOYEES, Fault::Status(429), 3));
    let list = h.client.list_employees(None).await.unwrap();
    assert_eq!(list.employees.len(), 2);
    assert_eq!(h.sim.control().count(EMPLOYEES), 4);
    assert_eq!(h.log.count(EMPLOYEES), 4);
}

#[tokio::test]
async fn a_permanent_429_is_unavailable() {
    let h = start(sim_without_limits()).await;
    add_employees(&h.sim, 2);
    h.sim
        .control()
        .inject(FaultRule::new(EMPLOYEES, Fault::Status(429), 100));
    match h.client.list_employees(None).await {
        Err(error @ PersonioError::Unavailable { .. }) => {
            assert!(error.is_transient());
            assert!(error.to_string().contains("429"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(h.sim.control().count(EMPLOYEES), 4, "max_attempts");
}

#[tokio::test]
async fn client_side_limits_keep_personios_limit() {
    // The default simulator enforces Personio's 300/min with a burst of 15; a client limited
    // client-side sends 20 listings without a single 429.
    let sim = PersonioSim::default();
    add_employees(&sim, 1);
    let running = sim.start(([127, 0, 0, 1], 0).into()).await.unwrap();
    let mut config = config_for(&sim, &running, &RequestLog::default());
    // Slightly under Personio's 300/min, so network jitter between the two clocks cannot turn
    // into a 429.
    config.limits = PersonioRateLimits::default();
    config.limits.employees.per_minute = 270.0;
    let client = PersonioClient::new(config).unwrap();
    for _ in 0..20 {
        client.list_employees(None).await.unwrap();
    }
    assert_eq!(sim.control().count(EMPLOYEES), 20);
    assert!(sim.control().requests().iter().all(|r| r.status != 429));
}

#[tokio::test]
async fn listing_survives_one_fault_of_each_kind() {
    for fault in [
        Fault::Status(500),
        Fault::Status(503),
        Fault::Delay(Duration::from_secs(2)),
        Fault::Reset,
        Fault::ExpiredToken,
    ] {
        let h = start(sim_without_limits()).await;
        add_employees(&h.sim, 2);
        h.sim
            .control()
            .inject(FaultRule::new(EMPLOYEES, fault.clone(), 1));
        let list = h.client.list_employees(None).await;
        assert_eq!(list.map(|l| l.employees.len()).ok(), Some(2), "{fault:?}");
    }
}

#[tokio::test]
async fn persistent_faults_on_listing_are_transient_errors() {
    for fault in [Fault::Status(502), Fault::Reset, Fault::MalformedJson] {
        let h = start(sim_without_limits()).await;
        add_employees(&h.sim, 2);
        h.sim
            .control()
            .inject(FaultRule::new(EMPLOYEES, fault.clone(), 100));
        let error = h.client.list_employees(None).await.unwrap_err();
        assert!(error.is_transient(), "{fault:?}: {error:?}");
    }
}

#[tokio::test]
async fn malformed_json_is_reported_as_malformed() {
    let h = start(sim_without_limits()).await;
    add_employees(&h.sim, 1);
    h.sim
        .control()
        .inject(FaultRule::new(EMPLOYEES, Fault::MalformedJson, 1));
    assert!(matches!(
        h.client.list_employees(None).await,
        Err(PersonioError::Malformed { .. })
    ));
}

// --- uploads ------------------------------------------------------------------------------------

#[tokio::test]
async fn uploads_a_streamed_certificate() {
    let h = start(sim_without_limits()).await;
    // Like a server that refuses chunked bodies: the upload must announce its length.
    h.sim.set_require_content_length(true);
    let employee = add_employees(&h.sim, 1)[0];
    let chunks = vec![
        Ok(bytes::Bytes::from_static(b"%PDF-1.4 ")),
        Ok(bytes::Bytes::from_static(b"streamed")),
    ];
    let pdf = PdfStream {
        length: None,
        body: futures::stream::iter(chunks).boxed(),
    };
    let id = h
        .client
        .upload_document(upload(employee, 3, pdf))
        .await
        .unwrap();
    let documents = h.sim.documents();
    assert_eq!(documents.len(), 1);
    assert_eq!(documents[0].id.to_string(), id);
    assert_eq!(documents[0].owner_id, employee);
    assert_eq!(documents[0].category_id, 3);
    assert_eq!(documents[0].size, 17);
    let announced = documents[0].request_content_length.unwrap();
    assert!(
        announced > 17,
        "multipart envelope plus the file: {announced}"
    );
    assert_eq!(documents[0].file_name, "certificate-cert-1.pdf");
    assert_eq!(documents[0].date, NaiveDate::from_ymd_opt(2026, 11, 20));
    assert_eq!(
        h.sim
            .count_documents_with_comment("reteach-certificate:cert-1"),
        1
    );
    assert_eq!(h.log.count(UPLOAD), 1);
}

#[tokio::test]
async fn upload_with_known_length_is_sent_with_it() {
    let h = start(sim_without_limits()).await;
    h.sim.set_require_content_length(true);
    let employee = add_employees(&h.sim, 1)[0];
    h.client
        .upload_document(upload(employee, 3, small_pdf()))
        .await
        .unwrap();
    assert_eq!(h.sim.documents()[0].size, 20);
    assert!(h.sim.documents()[0].request_content_length.is_some());
}

#[tokio::test]
async fn a_server_requiring_a_length_refuses_a_chunked_upload() {
    // The simulator mode the client is tested against does refuse chunked bodies.
    let h = start(sim_without_limits()).await;
    h.sim.set_require_content_length(true);
    let employee = add_employees(&h.sim, 1)[0];
    let token = {
        let (id, secret) = h.sim.credentials();
        let auth: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/v1/auth", h.running.base_url()))
            .json(&serde_json::json!({"client_id": id, "client_secret": secret}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        auth["data"]["token"].as_str().unwrap().to_string()
    };
    let file =
        reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(futures::stream::iter(vec![
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"%PDF-1.4")),
        ])))
        .file_name("c.pdf");
    let form = reqwest::multipart::Form::new()
        .part("file", file)
        .text("title", "t")
        .text("employee_id", employee.to_string())
        .text("category_id", "3");
    let response = reqwest::Client::new()
        .post(format!("{}/v1/company/documents", h.running.base_url()))
        .bearer_auth(token)
        .header("X-Personio-App-ID", "TEST")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 411);
    assert!(h.sim.documents().is_empty());
}

#[tokio::test]
async fn refuses_files_over_30_mb_before_sending() {
    let h = start(sim_without_limits()).await;
    let employee = add_employees(&h.sim, 1)[0];
    let pdf = PdfStream {
        length: Some(MAX_FILE_BYTES + 1),
        body: futures::stream::empty().boxed(),
    };
    let result = h.client.upload_document(upload(employee, 3, pdf)).await;
    assert!(matches!(result, Err(PersonioError::Rejected { .. })));
    assert_eq!(h.sim.control().count(UPLOAD), 0);
}

#[tokio::test]
async fn an_oversized_stream_of_unknown_length_is_refused_before_sending() {
    let h = start(sim_without_limits()).await;
    let employee = add_employees(&h.sim, 1)[0];
    let chunk = bytes::Bytes::from(vec![b'x'; 1024 * 1024]);
    let chunks = (0..31).map(move |_| Ok(chunk.clone()));
    let pdf = PdfStream {
        length: None,
        body: futures::stream::iter(chunks).boxed(),
    };
    let client = {
        // A longer timeout: 31 MB through a debug build takes a moment.
        let mut config = config_for(&h.sim, &h.running, &h.log);
        config.tls.timeout = Some(Duration::from_secs(30));
        PersonioClient::new(config).unwrap()
    };
    match client.upload_document(upload(employee, 3, pdf)).await {
        Err(PersonioError::Rejected { message, .. }) => assert!(message.contains("file")),
        other => panic!("unexpected {other:?}"),
    }
    assert!(h.sim.documents().is_empty());
    assert_eq!(h.sim.control().count(UPLOAD), 0, "refused before sending");
}

#[tokio::test]
async fn refuses_titles_over_255_characters() {
    let h = start(sim_without_limits()).await;
    let employee = add_employees(&h.sim, 1)[0];
    let mut too_long = upload(employee, 3, small_pdf());
    too_long.title = "é".repeat(256);
    assert!(matches!(
        h.client.upload_document(too_long).await,
        Err(PersonioError::Rejected { .. })
    ));
    let mut longest = upload(employee, 3, small_pdf());
    longest.title = "é".repeat(255);
    h.client.upload_document(longest).await.unwrap();
}

#[tokio::test]
async fn unknown_employee_or_category_is_not_found() {
    let h = start(sim_without_limits()).await;
    let employee = add_employees(&h.sim, 1)[0];
    let result = h.client.upload_document(upload(999, 3, small_pdf())).await;
    assert!(
        matches!(result, Err(PersonioError::NotFound { .. })),
        "{result:?}"
    );
    let result = h
        .client
        .upload_document(upload(employee, 77, small_pdf()))
        .await;
    match result {
        Err(PersonioError::NotFound { message, .. }) => {
            assert!(message.contains("[DocumentCategory] 77"))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(h.sim.documents().is_empty());
}

#[tokio::test]
async fn upload_faults_say_whether_the_document_may_exist() {
    let cases = [
        (Fault::Status(429), false),
        (Fault::Status(500), true),
        (Fault::Status(502), true),
        // No `Fault::Delay` row: an upload streams up to 30 MB and gets 300 s, not the API
        // timeout; a timeout is a transport error like the reset below.
        (Fault::Reset, true),
        (Fault::ApplyThenReset, true),
        (Fault::MalformedJson, true),
        (Fault::ExpiredToken, false),
    ];
    for (fault, expected) in cases {
        let h = start(sim_without_limits()).await;
        let employee = add_employees(&h.sim, 1)[0];
        h.client.check_credentials().await.unwrap();
        h.sim
            .control()
            .inject(FaultRule::new(UPLOAD, fault.clone(), 1));
        let result = h
            .client
            .upload_document(upload(employee, 3, small_pdf()))
            .await;
        assert_eq!(unavailable(result), expected, "{fault:?}");
        assert_eq!(h.log.count(UPLOAD), 1, "{fault:?}: sent once");
        if fault == Fault::ApplyThenReset {
            assert_eq!(
                h.sim.documents().len(),
                1,
                "stored although the client never heard"
            );
        }
        // The next upload works (after an expired token: with a fresh one).
        h.client
            .upload_document(upload(employee, 3, small_pdf()))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn upload_to_an_unreachable_personio_was_not_applied() {
    let sim = sim_without_limits();
    let employee = add_employees(&sim, 1)[0];
    let running = sim.start(([127, 0, 0, 1], 0).into()).await.unwrap();
    let mut config = config_for(&sim, &running, &RequestLog::default());
    // A port nobody listens on: nothing can reach Personio.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    config.base_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let client = PersonioClient::new(config).unwrap();
    let result = client
        .upload_document(upload(employee, 3, small_pdf()))
        .await;
    assert!(!unavailable(result));
}

// --- documents and categories ---------------------------------------------------------------------

#[tokio::test]
async fn lists_documents_across_pages_of_one_category() {
    let h = start(sim_without_limits()).await;
    let employee = add_employees(&h.sim, 2)[0];
    for i in 0..250 {
        h.sim
            .insert_document(employee, 3, "Certificate", Some(&format!("marker-{i}")));
    }
    h.sim.insert_document(employee, 2, "Other", None);
    h.sim
        .insert_document(employee + 1, 3, "Someone else's", None);
    let documents = h
        .client
        .list_documents(&employee.to_string(), 3)
        .await
        .unwrap();
    assert_eq!(documents.len(), 250);
    assert!(documents.iter().all(|d| d.category_id == Some(3)));
    assert_eq!(documents[249].comment.as_deref(), Some("marker-249"));
    assert_eq!(
        h.sim
            .control()
            .count("GET /v2/document-management/documents"),
        3
    );
    assert_eq!(h.sim.control().count("POST /v2/auth/token"), 1);
}

#[tokio::test]
async fn follows_absolute_next_links() {
    let sim = PersonioSim::new(PersonioSimConfig {
        rate_limits: None,
        absolute_next_links: true,
        ..PersonioSimConfig::default()
    });
    let h = start(sim).await;
    let employee = add_employees(&h.sim, 1)[0];
    for _ in 0..120 {
        h.sim.insert_document(employee, 3, "Certificate", None);
    }
    let documents = h
        .client
        .list_documents(&employee.to_string(), 3)
        .await
        .unwrap();
    assert_eq!(documents.len(), 120);
}

#[tokio::test]
async fn an_employee_without_documents_has_none() {
    let h = start(sim_without_limits()).await;
    let employee = add_employees(&h.sim, 1)[0];
    let documents = h
        .client
        .list_documents(&employee.to_string(), 3)
        .await
        .unwrap();
    assert!(documents.is_empty());
}

#[tokio::test]
async fn reads_document_categories() {
    let h = start(sim_without_limits()).await;
    let id = h.sim.add_category("Weiterbildung");
    let categories = h.client.document_categories().await.unwrap();
    assert!(categories
        .iter()
        .any(|c| c.id == id && c.name == "Weiterbildung"));
    assert!(categories.iter().any(|c| c.name == "Learning Certificates"));
}

// --- a misbehaving Personio ---------------------------------------------------------------------

/// A server that ignores `offset` and claims more employees than it ever sends, and whose v2
/// `next` link always points to the same page.
async fn stuck_personio() -> RunningSim {
    use axum::routing::{get, post};
    use serde_json::json;
    let employee = |id: u32| {
        let mut attributes = serde_json::Map::new();
        attributes.insert(
            "id".into(),
            json!({"label": "ID", "value": id, "type": "integer", "universal_id": "id"}),
        );
        for name in REQUIRED_ATTRIBUTES {
            attributes.insert(
                name.into(),
                json!({"label": name, "value": null, "type": "standard", "universal_id": name}),
            );
        }
        json!({"type": "Employee", "attributes": attributes})
    };
    let page: Vec<serde_json::Value> = (1..=100).map(employee).collect();
    let router = axum::Router::new()
        .route(
            "/v1/auth",
            post(|| async { axum::Json(json!({"success": true, "data": {"token": "papi-x", "expires_in": 86400}})) }),
        )
        .route(
            "/v2/auth/token",
            post(|| async { axum::Json(json!({"access_token": "papi-y", "token_type": "Bearer", "expires_in": 86400})) }),
        )
        .route(
            "/v1/company/employees",
            get(move || {
                let page = page.clone();
                async move {
                    axum::Json(json!({"success": true, "metadata": {"total_elements": 100000, "current_page": 0, "total_pages": 1000}, "data": page}))
                }
            }),
        )
        .route(
            "/v2/document-management/documents",
            get(|| async {
                axum::Json(json!({"_data": [{"id": "1", "name": "x"}], "_meta": {"links": {"next": {"href": "/v2/document-management/documents?owner_id=1&cursor=same"}}}}))
            }),
        )
        .route(
            "/v2/persons",
            get(|| async {
                axum::Json(json!({"_data": [{"id": "1"}], "_meta": {"links": {"next": {"href": "/v2/persons?limit=50&cursor=same"}}}}))
            }),
        )
        .route(
            "/v2/persons/{id}/employments",
            get(|| async { axum::Json(json!({"_data": []})) }),
        );
    reteach_personio_operator::sim::serve(router, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap()
}

/// A client reading employees through `api` from [`stuck_personio`], with its request log.
async fn stuck_client(api: EmployeeApi) -> (RunningSim, PersonioClient, RequestLog) {
    let running = stuck_personio().await;
    let mut config =
        PersonioConfig::new(running.base_url(), PersonioCredentials::new("id", "secret"));
    config.tls.allow_insecure_http = true;
    config.limits = PersonioRateLimits::unlimited();
    config.employee_api = api;
    let log = RequestLog::default();
    config.observer = Arc::new(log.clone());
    (running, PersonioClient::new(config).unwrap(), log)
}

#[tokio::test]
async fn stops_when_personio_repeats_a_page() {
    let (_running, client, log) = stuck_client(EmployeeApi::V1).await;
    let list = client.list_employees(None).await.unwrap();
    assert_eq!(list.employees.len(), 100);
    assert_eq!(log.count(EMPLOYEES), 2, "second page repeated the first");
}

#[tokio::test]
async fn stops_when_personio_repeats_a_cursor() {
    let (_running, client, log) = stuck_client(EmployeeApi::V1).await;
    let documents = client.list_documents("1", 3).await.unwrap();
    assert_eq!(documents.len(), 2);
    assert_eq!(log.count("GET /v2/document-management/documents"), 2);
}

#[tokio::test]
async fn v2_stops_when_personio_repeats_a_person_page() {
    // One person without an employment, on a page whose next link points back at itself: read
    // once, skipped with its reason (not taken for attributes the credential cannot read).
    let (_running, client, log) = stuck_client(EmployeeApi::V2).await;
    let list = client.list_employees(None).await.unwrap();
    assert!(list.employees.is_empty());
    assert_eq!(list.skipped.len(), 1, "{:?}", list.skipped);
    assert_eq!(list.skipped[0].reason, "person without an employment");
    assert_eq!(
        log.count("GET /v2/persons"),
        2,
        "the second page's next link repeated it"
    );
    assert_eq!(
        log.count("GET /v2/persons/{id}/employments"),
        1,
        "the person listed on both pages is read once"
    );
}

#[tokio::test]
async fn refuses_to_follow_a_next_link_to_another_host() {
    use axum::routing::{get, post};
    use serde_json::json;
    let router = axum::Router::new()
        .route(
            "/v2/auth/token",
            post(|| async { axum::Json(json!({"access_token": "papi-y", "expires_in": 86400})) }),
        )
        .route(
            "/v2/document-management/documents",
            get(|| async {
                axum::Json(json!({"_data": [], "_meta": {"links": {"next": {"href": "https://elsewhere.example/v2/document-management/documents?cursor=a"}}}}))
            }),
        );
    let running = reteach_personio_operator::sim::serve(router, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let mut config =
        PersonioConfig::new(running.base_url(), PersonioCredentials::new("id", "secret"));
    config.tls.allow_insecure_http = true;
    let client = PersonioClient::new(config).unwrap();
    assert!(matches!(
        client.list_documents("1", 3).await,
        Err(PersonioError::Malformed { .. })
    ));
}

#[tokio::test]
async fn concurrent_calls_share_one_token_request() {
    let h = start(sim_without_limits()).await;
    add_employees(&h.sim, 1);
    let calls = (0..8).map(|_| h.client.document_categories());
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(h.sim.control().count(AUTH), 1);
}

/// A fake Personio whose `route` answers `status` with a body that never ends (chunked, no
/// Content-Length); `/v1/auth` works unless it is the route.
async fn endless_personio(route: &'static str, status: u16) -> RunningSim {
    use axum::routing::{get, post};
    use serde_json::json;
    let endless = move || async move {
        let chunks = futures::stream::repeat(bytes::Bytes::from_static(
            br#"{"type":"Employee","attributes":{"first_name":{"value":"xxxxxxxxxxxxxxxxxxxxxxxx"}}},"#,
        ))
        .map(Ok::<_, std::io::Error>);
        let mut response = axum::response::Response::new(axum::body::Body::from_stream(chunks));
        *response.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
        response
    };
    let mut router = axum::Router::new().route(route, get(endless).post(endless));
    if route != "/v1/auth" {
        router = router.route(
            "/v1/auth",
            post(|| async {
                axum::Json(
                    json!({"success": true, "data": {"token": "papi-x", "expires_in": 86400}}),
                )
            }),
        );
    }
    reteach_personio_operator::sim::serve(router, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap()
}

fn plain_client(running: &RunningSim) -> PersonioClient {
    let mut config =
        PersonioConfig::new(running.base_url(), PersonioCredentials::new("id", "secret"));
    config.tls.allow_insecure_http = true;
    config.tls.timeout = Some(Duration::from_secs(60));
    config.limits = PersonioRateLimits::unlimited();
    config.retry = RetryPolicy {
        max_attempts: 2,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(5),
    };
    PersonioClient::new(config).unwrap()
}

/// Fails instead of hanging when the client reads an endless body.
async fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), future)
        .await
        .expect("the client kept reading an endless body")
}

#[tokio::test]
async fn an_endless_employee_page_is_cut_at_the_cap_and_reported() {
    let running = endless_personio("/v1/company/employees", 200).await;
    let error = bounded(plain_client(&running).list_employees(None))
        .await
        .unwrap_err();
    match error {
        PersonioError::Malformed { message, .. } => {
            assert!(message.contains("8388608-byte limit"), "{message}")
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[tokio::test]
async fn an_endless_change_feed_is_cut_at_its_larger_cap() {
    let running = endless_personio("/v1/company/employees", 200).await;
    let since = NaiveDate::from_ymd_opt(2026, 11, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let error = bounded(plain_client(&running).list_employees(Some(since)))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("67108864-byte limit"), "{error}");
}

#[tokio::test]
async fn an_endless_token_answer_is_cut_and_an_endless_error_body_is_read_only_in_part() {
    let running = endless_personio("/v1/auth", 200).await;
    let error = bounded(plain_client(&running).check_credentials())
        .await
        .unwrap_err();
    assert!(
        matches!(error, PersonioError::Malformed { .. }),
        "{error:?}"
    );

    let running = endless_personio("/v1/auth", 401).await;
    let error = bounded(plain_client(&running).check_credentials())
        .await
        .unwrap_err();
    assert!(
        matches!(error, PersonioError::Unauthorized { .. }),
        "{error:?}"
    );
}

// ---- v2 employee reading (issue 30) ----

async fn start_v2(sim: PersonioSim) -> Harness {
    let running = sim.start(([127, 0, 0, 1], 0).into()).await.unwrap();
    let log = RequestLog::default();
    let mut config = config_for(&sim, &running, &log);
    config.employee_api = EmployeeApi::V2;
    let client = PersonioClient::new(config).unwrap();
    Harness {
        sim,
        running,
        client,
        log,
    }
}

#[tokio::test]
async fn v2_reads_the_same_employees_as_v1_with_the_expected_requests() {
    let sim = sim_without_limits();
    add_employees(&sim, 120);
    sim.add_employee(
        EmployeeSeed::new("Solo", "Office", "solo@example.com")
            .with_department(3, "Sales")
            .with_office(4, "Munich")
            .with_custom("dynamic_33400", "E-1"),
    );
    let v1 = start(sim.clone()).await;
    let v2 = start_v2(sim).await;
    let from_v1 = v1.client.list_employees(None).await.unwrap();
    let from_v2 = v2.client.list_employees(None).await.unwrap();
    assert!(from_v2.skipped.is_empty(), "{:?}", from_v2.skipped);
    assert_eq!(from_v2.employees.len(), 121);
    for (a, b) in from_v1.employees.iter().zip(&from_v2.employees) {
        assert_eq!(a.id, b.id);
        assert_eq!(
            (
                &a.first_name,
                &a.last_name,
                &a.email,
                &a.position,
                &a.gender
            ),
            (
                &b.first_name,
                &b.last_name,
                &b.email,
                &b.position,
                &b.gender
            )
        );
        assert_eq!((&a.department, &a.office), (&b.department, &b.office));
        assert_eq!(
            (a.hire_date, a.termination_date),
            (b.hire_date, b.termination_date)
        );
        assert_eq!(a.status, b.status);
    }
    let solo = from_v2.employees.last().unwrap();
    assert_eq!(
        solo.other.get("dynamic_33400").map(String::as_str),
        Some("E-1")
    );
    // 121 persons: 3 pages of 50, one employment request each, 2 departments, 1 workplace page.
    assert_eq!(v2.log.count("GET /v2/persons"), 3);
    assert_eq!(v2.log.count("GET /v2/persons/{id}/employments"), 121);
    assert_eq!(v2.log.count("GET /v2/org-units/{id}"), 2);
    assert_eq!(v2.log.count("GET /v2/workplaces"), 1);
    assert_eq!(v2.log.count(EMPLOYEES), 0, "no v1 employee request");
}

#[tokio::test]
async fn v2_without_whitelisted_attributes_names_them() {
    let sim = sim_without_limits();
    add_employees(&sim, 2);
    sim.set_whitelist(Some(&["first_name", "last_name", "email", "hire_date"]));
    let h = start_v2(sim).await;
    let error = h.client.list_employees(None).await.unwrap_err();
    match error {
        PersonioError::AttributesNotWhitelisted(missing) => {
            for name in [
                "position",
                "department",
                "office",
                "gender",
                "termination_date",
            ] {
                assert!(missing.iter().any(|m| m == name), "{name} in {missing:?}");
            }
        }
        other => panic!("expected AttributesNotWhitelisted, got {other:?}"),
    }
}

/// A Personio whose v2 person endpoints announce a tight limit (`x-ratelimit-*`: 20 requests per
/// one-second window and endpoint), every other limit open.
fn sim_announcing_a_tight_v2_limit() -> PersonioSim {
    let open = BucketLimit {
        capacity: 100_000,
        per_minute: 6_000_000.0,
    };
    PersonioSim::new(PersonioSimConfig {
        rate_limits: Some(SimRateLimits {
            employees: open,
            uploads: open,
            auth: open,
            documents: open,
            v2_window: WindowLimit {
                limit: 20,
                window: Duration::from_secs(1),
            },
        }),
        ..PersonioSimConfig::default()
    })
}

#[tokio::test]
async fn v2_waits_for_the_announced_reset_instead_of_running_into_429s() {
    let sim = sim_announcing_a_tight_v2_limit();
    add_employees(&sim, 60);
    let h = start_v2(sim).await;
    let list = h.client.list_employees(None).await.unwrap();
    assert_eq!(list.employees.len(), 60, "{:?}", list.skipped);
    let requests = h.sim.control().requests();
    let refused = requests.iter().filter(|r| r.status == 429).count();
    assert_eq!(refused, 0, "no 429 storm: the client waited for each reset");
    // 60 employment requests at 20 per window: the client waited for a reset.
    assert!(
        h.client.rate_limit_waits() >= 1,
        "{}",
        h.client.rate_limit_waits()
    );
    let v2_answers = requests
        .iter()
        .filter(|r| r.path.starts_with("/v2/persons"))
        .count();
    assert_eq!(v2_answers, 2 + 60, "each request sent once");
}
