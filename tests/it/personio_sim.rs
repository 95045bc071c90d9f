//! The Personio simulator against facts from the saved specs and README
//! (`shared/reference/personio/`): status codes, error shapes, limits, no `Retry-After` on 429,
//! query-string credentials refused.

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use reteach_personio_operator::sim::personio::{
    BucketLimit, EmployeeSeed, PersonioSim, PersonioSimConfig, SimRateLimits,
};
use reteach_personio_operator::sim::{Fault, FaultRule, RunningSim};
use serde_json::{json, Value};

struct Api {
    sim: PersonioSim,
    running: RunningSim,
    http: reqwest::Client,
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.base_url())
    }

    async fn token(&self) -> String {
        let (id, secret) = self.sim.credentials();
        let response = self
            .http
            .post(self.url("/v1/auth"))
            .json(&json!({"client_id": id, "client_secret": secret}))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        body["data"]["token"].as_str().unwrap().to_string()
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let token = self.token().await;
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn upload(&self, form: Form) -> (StatusCode, Value) {
        let token = self.token().await;
        let response = self
            .http
            .post(self.url("/v1/company/documents"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

async fn api_with(config: PersonioSimConfig) -> Api {
    let sim = PersonioSim::new(config);
    let running = sim.start(([127, 0, 0, 1], 0).into()).await.unwrap();
    Api {
        sim,
        running,
        http: reqwest::Client::new(),
    }
}

async fn api() -> Api {
    api_with(PersonioSimConfig {
        rate_limits: None,
        ..PersonioSimConfig::default()
    })
    .await
}

fn add(sim: &PersonioSim, count: usize) -> Vec<i64> {
    (0..count)
        .map(|i| sim.add_employee(EmployeeSeed::new("A", "B", &format!("p{i}@example.com"))))
        .collect()
}

fn assert_v1_error(body: &Value) {
    assert_eq!(body["success"], json!(false), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(body["error"]["code"].is_number(), "{body}");
}

fn form(employee_id: &str, category_id: &str, file_name: &str, title: &str) -> Form {
    Form::new()
        .part(
            "file",
            Part::bytes(b"%PDF-1.4".to_vec())
                .file_name(file_name.to_string())
                .mime_str("application/pdf")
                .unwrap(),
        )
        .text("title", title.to_string())
        .text("employee_id", employee_id.to_string())
        .text("category_id", category_id.to_string())
        .text("date", "2026-11-20")
        .text("comment", "marker")
}

// --- auth -------------------------------------------------------------------------------------

#[tokio::test]
async fn v1_auth_accepts_json_and_form_bodies() {
    let api = api().await;
    let (id, secret) = api.sim.credentials();
    for request in [
        api.http
            .post(api.url("/v1/auth"))
            .json(&json!({"client_id": id, "client_secret": secret})),
        api.http
            .post(api.url("/v1/auth"))
            .form(&[("client_id", &id), ("client_secret", &secret)]),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["success"], json!(true));
        assert!(body["data"]["token"].as_str().unwrap().starts_with("papi-"));
        // 24 h; the second request gets the same stable token with its remaining lifetime.
        let expires_in = body["data"]["expires_in"].as_i64().unwrap();
        assert!((86_000..=86_400).contains(&expires_in), "{expires_in}");
    }
}

#[tokio::test]
async fn v1_auth_returns_the_same_stable_token() {
    let api = api().await;
    assert_eq!(api.token().await, api.token().await);
}

#[tokio::test]
async fn v1_auth_refuses_query_string_credentials() {
    let api = api().await;
    let (id, secret) = api.sim.credentials();
    let response = api
        .http
        .post(api.url(&format!("/v1/auth?client_id={id}&client_secret={secret}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_v1_error(&response.json().await.unwrap());
}

#[tokio::test]
async fn v1_auth_rejects_wrong_credentials() {
    let api = api().await;
    let response = api
        .http
        .post(api.url("/v1/auth"))
        .json(&json!({"client_id": "x", "client_secret": "y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_v1_error(&body);
    assert_eq!(body["error"]["message"], json!("Wrong credentials"));
}

#[tokio::test]
async fn v2_token_uses_form_client_credentials() {
    let api = api().await;
    let (id, secret) = api.sim.credentials();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let response = api
        .http
        .post(api.url("/v2/auth/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body["access_token"].as_str().unwrap().starts_with("papi-"));
    assert_eq!(body["token_type"], json!("Bearer"));
    assert_eq!(body["expires_in"], json!(86400));

    let json_body = api
        .http
        .post(api.url("/v2/auth/token"))
        .json(
            &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), StatusCode::BAD_REQUEST);
    let body: Value = json_body.json().await.unwrap();
    assert_eq!(body["error"], json!("invalid_request"));

    let wrong_grant = api
        .http
        .post(api.url("/v2/auth/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_grant.status(), StatusCode::BAD_REQUEST);
    let body: Value = wrong_grant.json().await.unwrap();
    assert_eq!(body["error"], json!("unsupported_grant_type"));
}

#[tokio::test]
async fn missing_unknown_and_expired_tokens_get_401() {
    let api = api().await;
    let missing = api
        .http
        .get(api.url("/v1/company/employees"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_v1_error(&missing.json().await.unwrap());
    let unknown = api
        .http
        .get(api.url("/v1/company/employees"))
        .bearer_auth("papi-made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

    let token = api.token().await;
    api.sim.expire_all_tokens();
    let expired = api
        .http
        .get(api.url("/v1/company/employees"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert_ne!(api.token().await, token, "a new token after expiry");
}

// --- employees ----------------------------------------------------------------------------------

#[tokio::test]
async fn limit_must_be_between_1_and_100() {
    let api = api().await;
    for limit in ["0", "101", "abc"] {
        let (status, body) = api
            .get(&format!("/v1/company/employees?limit={limit}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "limit={limit}");
        assert_v1_error(&body);
        assert_eq!(
            body["error"]["message"],
            json!("The limit must be between 1 and 100.")
        );
    }
    let (status, _) = api.get("/v1/company/employees?limit=100").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn offset_is_a_record_offset_with_metadata() {
    let api = api().await;
    let ids = add(&api.sim, 5);
    let (status, body) = api.get("/v1/company/employees?limit=2&offset=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], json!(true));
    let page: Vec<Value> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attributes"]["id"]["value"].clone())
        .collect();
    assert_eq!(page, vec![json!(ids[2]), json!(ids[3])]);
    assert_eq!(body["metadata"]["total_elements"], json!(5));
    assert_eq!(body["metadata"]["current_page"], json!(1));
    assert_eq!(body["metadata"]["total_pages"], json!(3));
    // Passed paging values are echoed as strings, like the real API.
    assert_eq!(body["offset"], json!("2"));
    assert_eq!(body["limit"], json!("2"));
}

#[tokio::test]
async fn paging_echo_can_be_numbers() {
    let api = api_with(PersonioSimConfig {
        rate_limits: None,
        echo_paging_as_strings: false,
        ..PersonioSimConfig::default()
    })
    .await;
    let (_, body) = api.get("/v1/company/employees?limit=2&offset=0").await;
    assert_eq!(body["offset"], json!(0));
    assert_eq!(body["limit"], json!(2));
}

#[tokio::test]
async fn attributes_come_in_the_envelope() {
    let api = api().await;
    add(&api.sim, 1);
    let (_, body) = api.get("/v1/company/employees?limit=10").await;
    let email = &body["data"][0]["attributes"]["email"];
    assert_eq!(email["label"], json!("Email"));
    assert_eq!(email["type"], json!("standard"));
    assert_eq!(email["universal_id"], json!("email"));
    assert_eq!(email["value"], json!("p0@example.com"));
    assert_eq!(body["data"][0]["type"], json!("Employee"));
    let hire = &body["data"][0]["attributes"]["hire_date"];
    assert_eq!(hire["type"], json!("date"));
}

#[tokio::test]
async fn whitelist_omits_attributes_silently_but_keeps_id() {
    let api = api().await;
    add(&api.sim, 1);
    api.sim.set_whitelist(Some(&["first_name"]));
    let (_, body) = api.get("/v1/company/employees?limit=10").await;
    let attributes = body["data"][0]["attributes"].as_object().unwrap();
    let mut keys: Vec<&str> = attributes.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, vec!["first_name", "id"]);
}

#[tokio::test]
async fn attributes_parameter_projects() {
    let api = api().await;
    add(&api.sim, 1);
    let (_, body) = api
        .get("/v1/company/employees?limit=10&attributes[]=email&attributes%5B%5D=gender")
        .await;
    let attributes = body["data"][0]["attributes"].as_object().unwrap();
    let mut keys: Vec<&str> = attributes.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, vec!["email", "gender", "id"]);
}

#[tokio::test]
async fn updated_since_ignores_limit_and_offset() {
    let api = api().await;
    add(&api.sim, 7);
    for since in ["2000-01-01T00:00:00", "2000-01-01"] {
        let (status, body) = api
            .get(&format!(
                "/v1/company/employees?limit=2&offset=4&updated_since={since}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["data"].as_array().unwrap().len(), 7, "{since}");
    }
    let (_, body) = api
        .get("/v1/company/employees?limit=2&updated_since=2999-01-01T00:00:00")
        .await;
    assert!(body["data"].as_array().unwrap().is_empty());
    let (status, _) = api
        .get("/v1/company/employees?updated_since=last-week")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn email_filters_exactly() {
    let api = api().await;
    let ids = add(&api.sim, 3);
    let (_, body) = api
        .get("/v1/company/employees?limit=10&email=p1@example.com")
        .await;
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["attributes"]["id"]["value"], json!(ids[1]));
}

#[tokio::test]
async fn single_employee_and_404() {
    let api = api().await;
    let id = add(&api.sim, 1)[0];
    let (status, body) = api.get(&format!("/v1/company/employees/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["attributes"]["id"]["value"], json!(id));
    let (status, body) = api.get("/v1/company/employees/424242").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v1_error(&body);
}

// --- rate limits --------------------------------------------------------------------------------

#[tokio::test]
async fn rate_limit_answers_429_without_retry_after() {
    let tight = BucketLimit {
        capacity: 2,
        per_minute: 0.001,
    };
    let api = api_with(PersonioSimConfig {
        rate_limits: Some(SimRateLimits {
            employees: tight,
            ..SimRateLimits::default()
        }),
        ..PersonioSimConfig::default()
    })
    .await;
    let token = api.token().await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let response = api
            .http
            .get(api.url("/v1/company/employees"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        last = Some(response);
    }
    assert_eq!(statuses, vec![200, 200, 429]);
    let last = last.unwrap();
    assert!(last.headers().get("retry-after").is_none());
    assert_v1_error(&last.json().await.unwrap());
}

#[tokio::test]
async fn default_limits_follow_the_readme() {
    let limits = SimRateLimits::default();
    assert_eq!(limits.employees.per_minute, 300.0);
    assert_eq!(limits.employees.capacity, 15);
    assert_eq!(limits.uploads.per_minute, 60.0);
    assert_eq!(limits.auth.per_minute, 60.0);
}

// --- documents ----------------------------------------------------------------------------------

#[tokio::test]
async fn categories_are_listed() {
    let api = api().await;
    let (status, body) = api.get("/v1/company/document-categories").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], json!(true));
    let first = &body["data"][0];
    assert_eq!(first["type"], json!("DocumentCategory"));
    assert!(first["id"].is_number());
    assert!(first["attributes"]["name"].is_string());
}

#[tokio::test]
async fn upload_answers_201_with_the_document() {
    let api = api().await;
    let id = add(&api.sim, 1)[0];
    let (status, body) = api
        .upload(form(&id.to_string(), "1", "certificate.pdf", "Certificate"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["success"], json!(true));
    assert!(body["data"]["id"].is_number());
    assert_eq!(body["data"]["type"], json!("Document"));
    assert_eq!(body["data"]["attributes"]["title"], json!("Certificate"));
    assert_eq!(body["data"]["attributes"]["date"], json!("2026-11-20"));
    assert_eq!(body["data"]["attributes"]["category"]["id"], json!(1));
    let stored = api.sim.documents();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].size, 8);
}

#[tokio::test]
async fn upload_without_parts_is_422_with_error_data() {
    let api = api().await;
    let (status, body) = api
        .upload(Form::new().text("comment", "only a comment"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_v1_error(&body);
    assert_eq!(
        body["error"]["message"],
        json!("The given data was invalid.")
    );
    let data = body["error"]["error_data"].as_object().unwrap();
    for field in ["file", "title", "employee_id", "category_id"] {
        assert!(data.contains_key(field), "{field} missing in {body}");
    }
}

#[tokio::test]
async fn upload_refuses_other_file_types_and_long_titles() {
    let api = api().await;
    let id = add(&api.sim, 1)[0].to_string();
    let (status, body) = api.upload(form(&id, "1", "tool.exe", "ok")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = body["error"]["error_data"]["file"][0].as_str().unwrap();
    assert!(message.starts_with("The file must be a file of type: pdf, docx"));
    let (status, body) = api.upload(form(&id, "1", "c.pdf", &"t".repeat(256))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["error_data"]["title"].is_array());
    assert!(api.sim.documents().is_empty());
}

#[tokio::test]
async fn upload_refuses_files_over_the_limit() {
    let api = api_with(PersonioSimConfig {
        rate_limits: None,
        max_upload_bytes: 4,
        ..PersonioSimConfig::default()
    })
    .await;
    let id = add(&api.sim, 1)[0].to_string();
    let (status, body) = api.upload(form(&id, "1", "c.pdf", "ok")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = body["error"]["error_data"]["file"][0].as_str().unwrap();
    assert!(message.contains("may not be greater than"));
}

#[tokio::test]
async fn upload_for_unknown_employee_or_category_is_404() {
    let api = api().await;
    let id = add(&api.sim, 1)[0].to_string();
    let (status, body) = api.upload(form("999", "1", "c.pdf", "ok")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"]["message"],
        json!("No query results for model [Employee] 999")
    );
    let (status, body) = api.upload(form(&id, "55", "c.pdf", "ok")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"]["message"],
        json!("No query results for model [DocumentCategory] 55")
    );
}

#[tokio::test]
async fn v2_listing_requires_owner_id_and_valid_limit() {
    let api = api().await;
    let token = api.token().await;
    let huge_cursor = api
        .http
        .get(api.url("/v2/document-management/documents?owner_id=1&cursor=cur_0000000000000000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        huge_cursor.status(),
        StatusCode::OK,
        "a cursor past the end is an empty page"
    );
    for query in [
        "",
        "?owner_id=1&limit=201",
        "?owner_id=1&limit=0",
        "?owner_id=1&cursor=nope",
    ] {
        let response = api
            .http
            .get(api.url(&format!("/v2/document-management/documents{query}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body: Value = response.json().await.unwrap();
        assert!(body["personio_trace_id"].is_string());
        assert!(body["errors"][0]["title"].is_string());
        assert!(body["errors"][0]["detail"].is_string());
    }
}

#[tokio::test]
async fn v2_listing_paginates_with_a_next_link() {
    let api = api().await;
    let owner = add(&api.sim, 1)[0];
    for i in 0..3 {
        api.sim
            .insert_document(owner, 1, &format!("Doc {i}"), Some("c"));
    }
    let token = api.token().await;
    let first: Value = api
        .http
        .get(api.url(&format!(
            "/v2/document-management/documents?owner_id={owner}&limit=2"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["_data"].as_array().unwrap().len(), 2);
    assert!(first["_data"][0]["id"].is_string());
    let next = first["_meta"]["links"]["next"]["href"].as_str().unwrap();
    assert!(next.starts_with("/v2/document-management/documents?"));
    let second: Value = api
        .http
        .get(api.url(next))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["_data"].as_array().unwrap().len(), 1);
    assert!(second["_meta"]["links"].get("next").is_none());
}

// --- faults -------------------------------------------------------------------------------------

#[tokio::test]
async fn injected_faults_use_the_v1_error_shape() {
    let api = api().await;
    api.sim.control().inject(FaultRule::new(
        "GET /v1/company/employees",
        Fault::Status(503),
        1,
    ));
    let (status, body) = api.get("/v1/company/employees").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_v1_error(&body);
    let (status, _) = api.get("/v1/company/employees").await;
    assert_eq!(status, StatusCode::OK, "the fault applied once");
}

#[tokio::test]
async fn token_ttl_is_configurable() {
    let api = api_with(PersonioSimConfig {
        rate_limits: None,
        token_ttl: Duration::from_secs(600),
        ..PersonioSimConfig::default()
    })
    .await;
    let (id, secret) = api.sim.credentials();
    let body: Value = api
        .http
        .post(api.url("/v1/auth"))
        .json(&json!({"client_id": id, "client_secret": secret}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["expires_in"], json!(600));
}

#[tokio::test]
async fn updated_since_with_attributes_selects_employees_changed_in_them() {
    let clock = reteach_personio_operator::clock::ManualClock::new(
        chrono::Utc::now() - chrono::Duration::days(1),
    );
    let api = api_with(PersonioSimConfig {
        rate_limits: None,
        clock: std::sync::Arc::new(clock.clone()),
        ..PersonioSimConfig::default()
    })
    .await;
    let ids = add(&api.sim, 3);
    clock.advance(chrono::Duration::hours(2));
    api.sim
        .update_employee(ids[0], |e| e.position = Some("CTO".into()));
    api.sim
        .update_employee(ids[1], |e| e.supervisor_id = Some(ids[2]));
    let since = (clock_now(&clock) - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S");
    let changed = |body: Value| -> Vec<Value> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["attributes"]["id"]["value"].clone())
            .collect()
    };
    let (_, all) = api
        .get(&format!("/v1/company/employees?updated_since={since}"))
        .await;
    assert_eq!(changed(all), vec![json!(ids[0]), json!(ids[1])]);
    let (_, by_position) = api
        .get(&format!(
            "/v1/company/employees?updated_since={since}&attributes[]=position&attributes[]=email"
        ))
        .await;
    assert_eq!(changed(by_position), vec![json!(ids[0])]);
}

fn clock_now(
    clock: &reteach_personio_operator::clock::ManualClock,
) -> chrono::DateTime<chrono::Utc> {
    use reteach_personio_operator::clock::Clock;
    clock.now()
}

/// What a webhook receiver got: the `Authorization` header and the body.
type Received = (Option<String>, Value);

#[tokio::test]
async fn webhooks_are_managed_through_v2_and_deliver_dataless_events_with_the_token() {
    let api = api().await;
    let bearer = api.v2_token().await;

    // A receiver that records headers and bodies.
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Received>>> = std::sync::Arc::default();
    let sink = seen.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::Json<Value>| {
                let sink = sink.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    sink.lock().unwrap().push((auth, body.0));
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let receiver = reteach_personio_operator::sim::serve(
        router,
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let url = format!("{}/hook", receiver.base_url());

    let create = |status: &'static str| {
        api.http
            .post(api.url("/v2/webhooks"))
            .bearer_auth(&bearer)
            .json(&json!({
                "url": url, "description": "operator", "status": status,
                "auth_type": "TOKEN", "token": "Bearer hook-token",
                "enabled_events": ["person.created", "person.updated"]
            }))
            .send()
    };
    let created = create("ENABLED").await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert!(created.get("token").is_none(), "the token is never echoed");
    assert_eq!(
        create("DISABLED").await.unwrap().status(),
        StatusCode::CREATED
    );
    let unauthenticated = api.http.get(api.url("/v2/webhooks")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);

    let employee = api
        .sim
        .add_employee(EmployeeSeed::new("Ada", "Lovelace", "ada@acme.example"));
    api.sim
        .update_employee(employee, |seed| seed.last_name = "King".into());
    for _ in 0..250 {
        if seen.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = seen.lock().unwrap().clone();
    let events: Vec<&str> = seen
        .iter()
        .map(|(_, body)| body["event_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        seen.len(),
        2,
        "only the enabled webhook, only its events: {events:?}"
    );
    assert!(events.contains(&"person.created") && events.contains(&"person.updated"));
    for (auth, body) in &seen {
        assert_eq!(auth.as_deref(), Some("Bearer hook-token"));
        for key in ["company_id", "event_name", "occurred_at", "payload"] {
            assert!(body.get(key).is_some(), "{key} missing in {body}");
        }
        assert_eq!(body["payload"], json!({"id": employee.to_string()}));
    }

    let id = created["id"].as_str().unwrap();
    let deleted = api
        .http
        .delete(api.url(&format!("/v2/webhooks/{id}")))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let listed: Value = api
        .http
        .get(api.url("/v2/webhooks"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["_data"].as_array().unwrap().len(), 1);
}

/// The operator's receiver for EmployeeSync `hr/staff`, served on loopback, accepting only
/// deliveries signed with one of `secrets`; returns its URL and the shared state.
async fn signing_receiver(
    secrets: &[&str],
) -> (
    String,
    std::sync::Arc<reteach_personio_operator::webhook::Webhooks>,
    RunningSim,
) {
    use reteach_personio_operator::webhook::{
        KeysFrom, ReceiverKeys, RequestKeys, ResourceKey, Source, Webhooks,
    };
    let webhooks = std::sync::Arc::new(Webhooks::default());
    let token = "p".repeat(32);
    let clock = reteach_personio_operator::clock::SystemClock;
    webhooks.receivers.open(
        ResourceKey::new(Source::Personio, "hr", "staff"),
        ReceiverKeys {
            current: RequestKeys::new(token.clone(), None),
            signing_secrets: secrets.iter().map(|s| s.to_string()).collect(),
            ..ReceiverKeys::default()
        },
        Some(1),
        chrono::Utc::now(),
        KeysFrom::Reconcile,
    );
    let state = reteach_personio_operator::webhook::ReceiverState {
        webhooks: webhooks.clone(),
        metrics: std::sync::Arc::new(reteach_personio_operator::metrics::Metrics::new()),
        clock: std::sync::Arc::new(clock),
    };
    let running = reteach_personio_operator::sim::serve(
        reteach_personio_operator::webhook::router(state),
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let url = format!("{}/personio/hr/staff/{token}", running.base_url());
    (url, webhooks, running)
}

/// Waits until the simulator has finished `count` deliveries; their status codes.
async fn delivered(sim: &PersonioSim, count: usize) -> Vec<Option<u16>> {
    for _ in 0..500 {
        let deliveries = sim.webhook_deliveries();
        if deliveries.len() >= count {
            return deliveries.iter().map(|d| d.status).collect();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "{count} deliveries expected, got {:?}",
        sim.webhook_deliveries()
    );
}

#[tokio::test]
async fn signed_deliveries_are_verified_across_a_rotation_and_a_forged_secret_is_refused() {
    let api = api().await;
    let (url, _webhooks, _receiver) = signing_receiver(&["secret-two", "secret-one"]).await;
    let id = api.sim.add_webhook(&url, "unused", &["person.updated"]);
    let employee = api
        .sim
        .add_employee(EmployeeSeed::new("Ada", "Lovelace", "ada@acme.example"));
    let edit = |n: usize| {
        api.sim
            .update_employee(employee, |seed| seed.last_name = format!("King {n}"));
    };

    // Without a signing secret the simulator sends no signature: refused.
    edit(1);
    assert_eq!(delivered(&api.sim, 1).await, vec![Some(401)]);
    // Signed with the (old) current secret: accepted.
    assert!(api.sim.set_signing_secret(&id, "secret-one"));
    edit(2);
    assert_eq!(delivered(&api.sim, 2).await[1], Some(202));
    // Rotated: signed with the new secret while the old one retires; the receiver knows both.
    assert!(api.sim.set_signing_secret(&id, "secret-two"));
    edit(3);
    assert_eq!(delivered(&api.sim, 3).await[2], Some(202));
    // A secret the receiver does not know (someone else's webhook, a forgery): refused.
    assert!(api.sim.set_signing_secret(&id, "not-ours"));
    edit(4);
    assert_eq!(delivered(&api.sim, 4).await[3], Some(401));
}

impl Api {
    /// A v2 bearer token.
    async fn v2_token(&self) -> String {
        let (id, secret) = self.sim.credentials();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ];
        let token: Value = self
            .http
            .post(self.url("/v2/auth/token"))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        token["access_token"].as_str().unwrap().to_string()
    }

    /// A v2 GET of `path_or_link` (relative or absolute): status and body.
    async fn v2_get(&self, bearer: &str, path_or_link: &str) -> (StatusCode, Value) {
        let url = if path_or_link.starts_with("http") {
            path_or_link.to_string()
        } else {
            self.url(path_or_link)
        };
        let response = self.http.get(url).bearer_auth(bearer).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Every item of a v2 listing, following `next` links; and the number of pages.
    async fn v2_all(&self, bearer: &str, first: &str) -> (Vec<Value>, usize) {
        let mut items = Vec::new();
        let mut link = Some(first.to_string());
        let mut pages = 0;
        while let Some(current) = link.take() {
            let (status, body) = self.v2_get(bearer, &current).await;
            assert_eq!(status, StatusCode::OK, "{current}: {body}");
            items.extend(body["_data"].as_array().unwrap().iter().cloned());
            link = body
                .pointer("/_meta/links/next/href")
                .and_then(Value::as_str)
                .map(str::to_string);
            pages += 1;
            assert!(pages < 100, "next links loop");
        }
        (items, pages)
    }
}

fn assert_v2_problem(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert!(body["personio_trace_id"].is_string(), "{body}");
    assert!(body["errors"][0]["detail"].is_string(), "{body}");
}

#[tokio::test]
async fn v2_persons_page_by_cursor_with_the_v1_ids_and_refuse_bad_queries() {
    let api = api().await;
    let ids = add(&api.sim, 23);
    let bearer = api.v2_token().await;
    let (persons, pages) = api.v2_all(&bearer, "/v2/persons?limit=10").await;
    assert_eq!(pages, 3);
    let listed: Vec<String> = persons
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    assert_eq!(listed, expected, "every person once, ids as v1 ids");
    let (_, default_page) = api.v2_get(&bearer, "/v2/persons").await;
    assert_eq!(
        default_page["_data"].as_array().unwrap().len(),
        10,
        "default limit 10"
    );
    let first = &persons[0];
    assert_eq!(first["email"], json!("p0@example.com"));
    assert_eq!(first["status"], json!("ACTIVE"));
    assert_eq!(first["gender"], json!("FEMALE"));
    assert_eq!(first["employments"].as_array().unwrap().len(), 1);
    for bad in [
        "/v2/persons?limit=51",
        "/v2/persons?limit=0",
        "/v2/persons?cursor=42",
        "/v2/persons?updated_at.gt=yesterday",
        "/v2/persons?status=SLEEPING",
        "/v2/persons?id=abc",
    ] {
        let (status, body) = api.v2_get(&bearer, bad).await;
        assert_v2_problem(status, &body, StatusCode::BAD_REQUEST);
    }
    let unauthenticated = api.http.get(api.url("/v2/persons")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = api.v2_get(&bearer, "/v2/persons/999999").await;
    assert_v2_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, one) = api
        .v2_get(&bearer, &format!("/v2/persons/{}", ids[3]))
        .await;
    assert_eq!(
        (status, &one["id"]),
        (StatusCode::OK, &json!(ids[3].to_string()))
    );
}

#[tokio::test]
async fn v2_filters_select_by_id_email_status_and_person_updates_only() {
    let api = api().await;
    let ids = add(&api.sim, 5);
    let bearer = api.v2_token().await;
    // Whole seconds on the wire: the creations lie more than a second before `since`.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    api.sim
        .update_employee(ids[1], |seed| seed.last_name = "Renamed".into());
    api.sim
        .update_employee(ids[2], |seed| seed.position = Some("Captain".into()));
    api.sim
        .update_employee(ids[4], |seed| seed.status = "inactive".into());
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("updated_at.gt", &since)
        .finish();
    let (changed, _) = api.v2_all(&bearer, &format!("/v2/persons?{query}")).await;
    let changed: Vec<&str> = changed.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(
        changed,
        vec![ids[1].to_string().as_str()],
        "a position change is the employment's"
    );
    let (status, employments) = api
        .v2_get(
            &bearer,
            &format!("/v2/persons/{}/employments?{query}", ids[2]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        employments["_data"][0]["position"]["title"],
        json!("Captain")
    );
    let (_, inactive) = api.v2_get(&bearer, "/v2/persons?status=INACTIVE").await;
    assert_eq!(inactive["_data"].as_array().unwrap().len(), 1);
    assert_eq!(inactive["_data"][0]["id"], json!(ids[4].to_string()));
    let by_ids = format!("/v2/persons?id={},{}&email=p3@example.com", ids[0], ids[3]);
    let (_, selected) = api.v2_get(&bearer, &by_ids).await;
    assert_eq!(selected["_data"].as_array().unwrap().len(), 1, "{selected}");
}

#[tokio::test]
async fn v2_employments_carry_ids_and_names_come_from_org_units_and_workplaces() {
    let api = api().await;
    let id = api.sim.add_employee(
        EmployeeSeed::new("Grace", "Hopper", "grace@acme.example")
            .with_department(501, "Engineering")
            .with_office(77, "Berlin")
            .with_hire_date(chrono::NaiveDate::from_ymd_opt(2020, 1, 2).unwrap())
            .with_termination_date(chrono::NaiveDate::from_ymd_opt(2027, 3, 31).unwrap()),
    );
    api.sim.add_employee(
        EmployeeSeed::new("Alan", "Turing", "alan@acme.example").with_office(78, "Munich"),
    );
    let bearer = api.v2_token().await;
    let (employments, _) = api
        .v2_all(&bearer, &format!("/v2/persons/{id}/employments"))
        .await;
    assert_eq!(employments.len(), 1);
    let employment = &employments[0];
    assert_eq!(employment["person"]["id"], json!(id.to_string()));
    assert_eq!(employment["employment_start_date"], json!("2020-01-02"));
    assert_eq!(
        employment["termination"]["termination_date"],
        json!("2027-03-31")
    );
    assert_eq!(
        employment["org_units"],
        json!([{"type": "department", "id": "501"}])
    );
    assert_eq!(employment["office"], json!({"id": "77"}));
    assert_eq!(employment["status"], json!("ACTIVE"));
    let employment_id = employment["id"].as_str().unwrap();
    let (status, one) = api
        .v2_get(
            &bearer,
            &format!("/v2/persons/{id}/employments/{employment_id}"),
        )
        .await;
    assert_eq!(
        (status, &one["id"]),
        (StatusCode::OK, &json!(employment_id))
    );
    let (status, unit) = api
        .v2_get(&bearer, "/v2/org-units/501?type=department")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unit["name"], json!("Engineering"));
    let (status, body) = api.v2_get(&bearer, "/v2/org-units/501").await;
    assert_v2_problem(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = api.v2_get(&bearer, "/v2/org-units/9?type=department").await;
    assert_v2_problem(status, &body, StatusCode::NOT_FOUND);
    let (places, pages) = api.v2_all(&bearer, "/v2/workplaces?limit=1").await;
    assert_eq!(pages, 2);
    assert_eq!(
        places,
        vec![
            json!({"id": "77", "name": "Berlin"}),
            json!({"id": "78", "name": "Munich"})
        ]
    );
    let (status, body) = api.v2_get(&bearer, "/v2/persons/424242/employments").await;
    assert_v2_problem(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn v2_persons_leave_out_what_the_whitelist_does_not_allow() {
    let api = api().await;
    let ids = add(&api.sim, 1);
    api.sim
        .set_whitelist(Some(&["first_name", "last_name", "hire_date"]));
    let bearer = api.v2_token().await;
    let (_, person) = api
        .v2_get(&bearer, &format!("/v2/persons/{}", ids[0]))
        .await;
    assert_eq!(person["first_name"], json!("A"));
    assert!(person.get("email").is_none(), "{person}");
    assert!(person.get("gender").is_none(), "{person}");
    let (_, employments) = api
        .v2_get(&bearer, &format!("/v2/persons/{}/employments", ids[0]))
        .await;
    let employment = &employments["_data"][0];
    assert!(employment.get("position").is_none(), "{employment}");
    assert!(employment.get("org_units").is_none(), "{employment}");
}
