//! The reteach simulator against facts from reteach's OpenAPI spec and the reference README:
//! status codes, NestJS error shapes, page limits, find-or-create, partial updates, derived status.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use reqwest::StatusCode;
use reteach_personio_operator::clock::{Clock, ManualClock};
use reteach_personio_operator::sim::reteach::{RateLimit, ReteachSim, SimCustomer};
use reteach_personio_operator::sim::{Fault, FaultRule, RunningSim};
use serde_json::{json, Value};

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap()
}

struct Env {
    sim: ReteachSim,
    clock: ManualClock,
    server: RunningSim,
    http: reqwest::Client,
}

impl Env {
    async fn new() -> Self {
        let clock = ManualClock::new(start_time());
        let sim = ReteachSim::new(Arc::new(clock.clone()));
        let server = sim
            .start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        Self {
            sim,
            clock,
            server,
            http: reqwest::Client::new(),
        }
    }

    fn clock_now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    async fn authorize(&self, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url("/oauth/authorize"))
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn token(&self) -> String {
        let credentials = self.sim.credentials();
        let (status, body) = self
            .authorize(json!({
                "grant_type": "authorization_code",
                "code": credentials.client_code,
                "client_secret": credentials.client_secret,
                "client_id": credentials.client_id,
            }))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        body["access_token"].as_str().unwrap().to_string()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = self.token().await;
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }
}

/// `{statusCode, message, error}` with the given status.
fn assert_nest_error(body: &Value, status: u16) {
    assert_eq!(body["statusCode"], json!(status), "{body}");
    assert!(
        body["message"].is_string() || body["message"].is_array(),
        "{body}"
    );
    assert!(body["error"].is_string(), "{body}");
}

// --- auth -------------------------------------------------------------------------------------

#[tokio::test]
async fn token_exchange_follows_the_documented_shape() {
    let env = Env::new().await;
    let credentials = env.sim.credentials();
    let (status, body) = env
        .authorize(json!({
            "grant_type": "authorization_code",
            "code": credentials.client_code,
            "client_secret": credentials.client_secret,
            "client_id": credentials.client_id,
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(body["access_token"].is_string());
    assert!(body["refresh_token"].is_string());
    assert_eq!(body["expires_in"], json!(3600));

    let (status, body) = env
        .authorize(json!({
            "grant_type": "authorization_code",
            "code": "wrong",
            "client_secret": credentials.client_secret,
            "client_id": credentials.client_id,
        }))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_nest_error(&body, 401);
}

#[tokio::test]
async fn routes_need_a_valid_bearer() {
    let env = Env::new().await;
    let response = env.http.get(env.url("/me")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_nest_error(&response.json().await.unwrap(), 401);

    let token = env.token().await;
    let me = env.http.get(env.url("/me")).bearer_auth(&token);
    let body: Value = me.send().await.unwrap().json().await.unwrap();
    assert!(
        body["id"].is_string() && body["baseUrl"].is_string(),
        "{body}"
    );

    env.clock.advance(Duration::minutes(60));
    let response = env
        .http
        .get(env.url("/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let token = env.token().await;
    env.sim.expire_all_tokens();
    let response = env
        .http
        .get(env.url("/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

// --- customers --------------------------------------------------------------------------------

#[tokio::test]
async fn customer_pages_are_one_based_with_default_limit_25_and_max_250() {
    let env = Env::new().await;
    env.sim.generate(30, 0);
    let (status, first) = env.get("/customer").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["results"].as_array().unwrap().len(), 25);
    assert_eq!(first["resultCount"], json!(30));
    let (_, second) = env.get("/customer?page=2").await;
    assert_eq!(second["results"].as_array().unwrap().len(), 5);
    let (_, beyond) = env.get("/customer?page=3").await;
    assert_eq!(beyond["results"].as_array().unwrap().len(), 0);
    assert_eq!(beyond["resultCount"], json!(30));

    let (status, _) = env.get("/customer?limit=250").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = env.get("/customer?limit=251").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_nest_error(&body, 400);
    let (status, _) = env.get("/customer?page=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn customer_items_carry_the_required_spec_fields() {
    let env = Env::new().await;
    env.sim.generate(1, 0);
    let (_, page) = env.get("/customer").await;
    let customer = &page["results"][0];
    for field in [
        "id",
        "source",
        "authenticationMethod",
        "status",
        "registeredAt",
        "tags",
    ] {
        assert!(!customer[field].is_null(), "{field} missing in {customer}");
    }
    assert_eq!(customer["externalId"], json!("1000"));
}

#[tokio::test]
async fn customers_are_addressed_by_id_email_or_external_id() {
    let env = Env::new().await;
    let id = env.sim.add_customer(SimCustomer {
        external_id: Some("42".to_string()),
        email: Some("Ada@Acme.example".to_string()),
        ..SimCustomer::default()
    });
    for identifier in [id.as_str(), "ada@acme.example", "42"] {
        let (status, body) = env.get(&format!("/customer/{identifier}")).await;
        assert_eq!(status, StatusCode::OK, "{identifier}");
        assert_eq!(body["id"], json!(id));
    }
    let (status, body) = env.get("/customer/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_nest_error(&body, 404);
    assert_eq!(body["error"], json!("Not found"));

    let (_, filtered) = env.get("/customer?externalId=42").await;
    assert_eq!(filtered["resultCount"], json!(1));
    let (_, none) = env.get("/customer?externalId=43").await;
    assert_eq!(none["resultCount"], json!(0));
}

#[tokio::test]
async fn post_customer_finds_or_creates() {
    let env = Env::new().await;
    let body = json!({"externalId": "7", "email": "new@acme.example", "firstName": "Nia"});
    let (status, created) = env.post("/customer", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["source"], json!("REST_API"));
    assert_eq!(created["status"], json!("ADDED"));
    let (status, found) = env.post("/customer", body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["id"], created["id"]);

    // Without externalId the e-mail decides.
    let (status, by_email) = env
        .post("/customer", json!({"email": "NEW@acme.example"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_email["id"], created["id"]);

    // A new externalId with a taken e-mail is a conflict.
    let (status, body) = env
        .post(
            "/customer",
            json!({"externalId": "8", "email": "new@acme.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_nest_error(&body, 422);
    assert_eq!(env.sim.customers().len(), 1);
}

#[tokio::test]
async fn invalid_input_is_422_with_validation_messages() {
    let env = Env::new().await;
    let (status, body) = env
        .post(
            "/customer",
            json!({"externalId": "1", "email": "nope", "gender": "X"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_nest_error(&body, 422);
    let messages = body["message"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{body}");
    let (status, _) = env
        .post(
            "/customer",
            json!({"setActiveAt": "tomorrow", "email": "a@b.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn put_keeps_omitted_fields_and_clears_nulls() {
    let env = Env::new().await;
    let id = env.sim.add_customer(SimCustomer {
        external_id: Some("42".to_string()),
        email: Some("ada@acme.example".to_string()),
        first_name: Some("Ada".to_string()),
        department: Some("Sales".to_string()),
        gender: Some("FEMALE".to_string()),
        registered: true,
        ..SimCustomer::default()
    });
    env.sim.add_customer(SimCustomer {
        email: Some("other@acme.example".to_string()),
        ..SimCustomer::default()
    });
    let (status, body) = env
        .put(
            &format!("/customer/{id}"),
            json!({"department": null, "position": "CTO"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["department"], Value::Null);
    assert_eq!(body["position"], json!("CTO"));
    assert_eq!(body["firstName"], json!("Ada"));
    assert_eq!(body["gender"], json!("FEMALE"));
    assert_eq!(env.sim.writes(&id), 1);

    let (status, _) = env
        .put(
            &format!("/customer/{id}"),
            json!({"email": "other@acme.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = env.put("/customer/unknown", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // `status` is read-only: sending it changes nothing.
    let (_, body) = env
        .put(&format!("/customer/{id}"), json!({"status": "INACTIVE"}))
        .await;
    assert_eq!(body["status"], json!("ACTIVE"));
}

#[tokio::test]
async fn status_follows_the_activation_dates_and_the_clock() {
    let env = Env::new().await;
    let id = env.sim.add_customer(SimCustomer {
        email: Some("x@acme.example".to_string()),
        registered: true,
        ..SimCustomer::default()
    });
    let tomorrow = start_time() + Duration::days(1);
    let (_, body) = env
        .put(
            &format!("/customer/{id}"),
            json!({"setActiveAt": tomorrow.to_rfc3339(), "setInactiveAt": null}),
        )
        .await;
    assert_eq!(body["status"], json!("INACTIVE"));
    env.clock.advance(Duration::days(1));
    assert_eq!(env.sim.status_of(&id), Some("ACTIVE"));
    let (_, body) = env
        .put(
            &format!("/customer/{id}"),
            json!({"setInactiveAt": env.clock_now().to_rfc3339()}),
        )
        .await;
    assert_eq!(body["status"], json!("INACTIVE"));
    let (_, body) = env
        .put(&format!("/customer/{id}"), json!({"setInactiveAt": null}))
        .await;
    assert_eq!(body["status"], json!("ACTIVE"));
}

#[tokio::test]
async fn delete_exists_and_is_counted() {
    let env = Env::new().await;
    let id = env.sim.generate(1, 1).remove(0);
    let (status, body) = env
        .call(reqwest::Method::DELETE, &format!("/customer/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"isSucceeded": true}));
    assert_eq!(env.sim.delete_requests(), 1);
    assert!(env.sim.customers().is_empty());
}

// --- participations ---------------------------------------------------------------------------

#[tokio::test]
async fn participation_items_follow_the_spec_shape_and_filters() {
    let env = Env::new().await;
    let customer = env.sim.generate(1, 0).remove(0);
    let done = env
        .sim
        .add_completion(&customer, "Safety", start_time() - Duration::days(2), true)
        .unwrap();
    let pending = env
        .sim
        .add_completion(&customer, "Privacy", start_time(), false)
        .unwrap();
    env.sim
        .add_participation(&customer, "Running", "STARTED", None)
        .unwrap();

    let (status, all) = env.get("/participation").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["resultCount"], json!(3));
    let item = &all["results"][0];
    for field in ["id", "progress", "status", "customer", "course"] {
        assert!(!item[field].is_null(), "{field} missing in {item}");
    }
    assert_eq!(item["customer"]["externalId"], json!("1000"));
    assert_eq!(item["course"]["name"], json!("Safety"));
    assert_eq!(item["certificate"]["id"], json!(done.certificate_id));
    assert!(item["certificate"]["url"]
        .as_str()
        .unwrap()
        .starts_with("http://"));
    assert_eq!(all["results"][1]["certificate"]["url"], Value::Null);
    assert_eq!(all["results"][2]["certificate"], Value::Null);

    let (_, completed) = env.get("/participation?status=COMPLETED").await;
    assert_eq!(completed["resultCount"], json!(2));
    let (_, both) = env.get("/participation?status=COMPLETED,STARTED").await;
    assert_eq!(both["resultCount"], json!(3));
    let since =
        (start_time() - Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (_, recent) = env
        .get(&format!("/participation?completedAtSince={since}"))
        .await;
    assert_eq!(recent["resultCount"], json!(1));
    assert_eq!(recent["results"][0]["id"], json!(pending.participation_id));
    let (status, body) = env.get("/participation?completedAtSince=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_nest_error(&body, 400);
    let (_, mine) = env.get("/participation?customerIdentifier=1000").await;
    assert_eq!(mine["resultCount"], json!(3));
    let (_, nobody) = env.get("/participation?customerIdentifier=nobody").await;
    assert_eq!(nobody["resultCount"], json!(0));
    let (status, _) = env.get("/participation?limit=251").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, one) = env
        .get(&format!("/participation/{}", done.participation_id))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["id"], json!(done.participation_id));
    let (status, body) = env.get("/participation/par_missing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_nest_error(&body, 404);
}

#[tokio::test]
async fn certificate_download_needs_the_bearer_and_serves_a_pdf() {
    let env = Env::new().await;
    let customer = env.sim.generate(1, 0).remove(0);
    let seeded = env
        .sim
        .add_completion(&customer, "Safety", start_time(), false)
        .unwrap();
    let url = env.url(&format!("/certificates/{}/download", seeded.certificate_id));
    let token = env.token().await;
    let response = env.http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "not generated yet"
    );

    env.sim.finish_pdf(&seeded.certificate_id);
    let response = env.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = env.http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let length = response.content_length().unwrap();
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, length);
    assert!(bytes.starts_with(b"%PDF-1.4"));
}

// --- plumbing ---------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_routes_and_faults_use_the_nest_error_body() {
    let env = Env::new().await;
    let (status, body) = env.get("/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_nest_error(&body, 404);

    env.sim
        .control()
        .inject(FaultRule::new("GET /me", Fault::Status(502), 1));
    let (status, body) = env.get("/me").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_nest_error(&body, 502);
}

#[tokio::test]
async fn optional_rate_limit_answers_429() {
    let env = Env::new().await;
    let token = env.token().await;
    env.sim.set_rate_limit(Some(RateLimit {
        per_second: 1,
        burst: 2,
    }));
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = env
            .http
            .get(env.url("/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_nest_error(&response.json().await.unwrap(), 429);
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    env.sim.set_rate_limit(None);
    let response = env
        .http
        .get(env.url("/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn tags_are_assigned_listed_and_removed_as_the_spec_answers() {
    let env = Env::new().await;
    let id = env.sim.add_customer(SimCustomer {
        email: Some("ada@acme.example".into()),
        ..SimCustomer::default()
    });
    // One tag: created on first use, 200 with the Tag.
    let (status, tag) = env
        .put(
            &format!("/customer/{id}/tags"),
            json!({"tag": {"name": "Sales"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tag}");
    assert_eq!(tag["name"], "Sales");
    let sales_id = tag["id"].as_str().unwrap().to_string();
    // Several, mode ADD: 201 with the array; the existing tag is reused, nothing is removed.
    let (status, tags) = env
        .put(
            &format!("/customer/{id}/multiple-tags"),
            json!({"tags": [{"name": "Sales"}, {"name": "R&D / 50%"}], "mode": "ADD"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tags}");
    assert_eq!(tags[0]["id"], json!(sales_id));
    let (_, customer) = env.get(&format!("/customer/{id}")).await;
    let names: Vec<&str> = customer["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Sales", "R&D / 50%"]);
    let (status, page) = env.get("/tags?limit=250").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["resultCount"], 2);

    // Removed by name (percent-encoded) or id: 200 with the Tag; a second time 404.
    let (status, removed) = env
        .call(
            reqwest::Method::DELETE,
            &format!("/customer/{id}/tags/R%26D%20%2F%2050%25"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["name"], "R&D / 50%");
    let path = format!("/customer/{id}/tags/{sales_id}");
    let (status, _) = env.call(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = env.call(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_nest_error(&body, 404);
    assert_eq!(env.sim.customer(&id).unwrap().tags, []);
    assert_eq!(
        env.sim.delete_requests(),
        0,
        "removing a tag deletes no user"
    );

    // REPLACE drops every other tag (why the operator never sends it).
    env.put(
        &format!("/customer/{id}/tags"),
        json!({"tag": {"name": "First aider"}}),
    )
    .await;
    env.put(
        &format!("/customer/{id}/multiple-tags"),
        json!({"tags": [{"name": "Sales"}], "mode": "REPLACE"}),
    )
    .await;
    let names: Vec<String> = env
        .sim
        .customer(&id)
        .unwrap()
        .tags
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["Sales"]);
}

#[tokio::test]
async fn tag_requests_for_unknown_customers_or_tags_or_without_a_name_are_refused() {
    let env = Env::new().await;
    let id = env.sim.add_customer(SimCustomer::default());
    let (status, body) = env
        .put("/customer/nobody/tags", json!({"tag": {"name": "Sales"}}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_nest_error(&body, 404);
    let (status, _) = env
        .put(
            &format!("/customer/{id}/tags"),
            json!({"tag": {"id": "tag_unknown"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = env
        .put(
            &format!("/customer/{id}/tags"),
            json!({"tag": {"name": ""}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_nest_error(&body, 422);
    let (status, _) = env
        .put(
            &format!("/customer/{id}/multiple-tags"),
            json!({"tags": [{"name": "x"}], "mode": "MERGE"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(env.sim.customer(&id).unwrap().tags.is_empty());
}
