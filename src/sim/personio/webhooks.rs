//! Personio v2 webhooks (developer.personio.de "Webhooks" and "Create new webhook"): the
//! management API `GET/POST /v2/webhooks`, `DELETE /v2/webhooks/{id}`, and delivery of person and
//! employment events to every `ENABLED` webhook that lists the event. `POST
//! /v2/webhooks/{id}/signing-secret` ("Rotate the webhook's signing secret") generates a new
//! signing secret or sets the given `value`, moves the previous one into a 7-day retiring window,
//! and returns the new value once.
//!
//! Delivery as documented: a `POST` with the JSON envelope `{company_id, event_name, occurred_at,
//! payload, meta}`, auth type `TOKEN` sending the configured token verbatim in `Authorization`
//! (`CUSTOM`: up to 3 headers; `NONE`: nothing), no redirects followed, 3 s to acknowledge, a second
//! request at once after a failure. The payload is dataless: the person's id of a person event;
//! the employment's id and its person's id (`{"id", "person": {"id"}}`, the shape of Personio's
//! `Employment.person`) of an employment event. `employment.started` and `employment.terminated`
//! fire on the dates themselves ([`PersonioSim::emit_dated_events`], Personio's daily run) and at
//! once when a termination is entered with a date that has already come. Relaxed: plain `http`
//! targets are accepted on loopback (tests); Personio demands HTTPS.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Dialect;
use super::gate::{Admitted, Gate};
use super::rate_limit::Limited;
use super::responses::v2_problem;
use super::PersonioSim;
use crate::sim::hooks::Outgoing;

/// The company id the simulator reports in webhook envelopes.
pub const SIM_COMPANY_ID: &str = "7033";

/// Events a webhook may enable, by resource and action as Personio's event catalog lists them
/// (`<resource>.<action>`): the person and employment events, and the document events. Stated
/// here on its own, not taken from the operator's list, so that a wrong name is not hidden on
/// both sides.
const CATALOG: [(&str, &[&str]); 3] = [
    ("person", &["created", "updated", "deleted"]),
    (
        "employment",
        &["created", "updated", "deleted", "started", "terminated"],
    ),
    ("document", &["created", "updated", "signed", "deleted"]),
];

/// Whether `event` is in the [`CATALOG`].
fn in_catalog(event: &str) -> bool {
    event.split_once('.').is_some_and(|(resource, action)| {
        CATALOG
            .iter()
            .any(|(known, actions)| *known == resource && actions.contains(&action))
    })
}

/// One configured webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimWebhook {
    /// Id (UUID-shaped).
    pub id: String,
    /// Target URL.
    pub url: String,
    /// Free text.
    pub description: String,
    /// `ENABLED` or `DISABLED` (Personio's default).
    pub status: String,
    /// `NONE`, `TOKEN` (default) or `CUSTOM`.
    pub auth_type: String,
    /// Sent verbatim as `Authorization` with `TOKEN`.
    pub token: Option<String>,
    /// Sent with `CUSTOM`.
    pub custom_headers: BTreeMap<String, String>,
    /// Enabled events.
    pub enabled_events: Vec<String>,
    /// Signing secrets: the active one first, then the retiring ones. Deliveries are signed with
    /// the active one (HMAC-SHA256 over timestamp and body, `crate::webhook::signature`).
    pub signing_secrets: Vec<String>,
    /// When the retiring secret's 7-day grace window ends (set by the rotation endpoint).
    pub retiring_until: Option<DateTime<Utc>>,
}

/// How long a replaced signing secret stays valid.
pub const SIGNING_SECRET_RETIREMENT: chrono::Duration = chrono::Duration::days(7);

#[derive(Deserialize)]
pub(super) struct CreateWebhook {
    url: Option<String>,
    description: Option<String>,
    status: Option<String>,
    auth_type: Option<String>,
    token: Option<String>,
    #[serde(default)]
    custom_headers: BTreeMap<String, String>,
    enabled_events: Option<Vec<String>>,
}

fn render(webhook: &SimWebhook) -> Value {
    // The token is write-only: it is never listed back.
    json!({
        "id": webhook.id,
        "url": webhook.url,
        "description": webhook.description,
        "status": webhook.status,
        "auth_type": webhook.auth_type,
        "enabled_events": webhook.enabled_events,
    })
}

fn target_allowed(url: &str) -> bool {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.scheme() == "https" => true,
        Ok(parsed) if parsed.scheme() == "http" => matches!(
            parsed.host_str(),
            Some("127.0.0.1") | Some("localhost") | Some("[::1]")
        ),
        _ => false,
    }
}

impl CreateWebhook {
    fn into_webhook(self, id: String) -> Result<SimWebhook, String> {
        let url = self.url.ok_or("url is required")?;
        if !target_allowed(&url) {
            return Err("url must be an HTTPS endpoint".into());
        }
        let description = self.description.ok_or("description is required")?;
        let enabled_events = self.enabled_events.ok_or("enabled_events is required")?;
        if let Some(unknown) = enabled_events.iter().find(|e| !in_catalog(e)) {
            return Err(format!("unknown event {unknown:?}"));
        }
        let status = self.status.unwrap_or_else(|| "DISABLED".into());
        if !matches!(status.as_str(), "ENABLED" | "DISABLED") {
            return Err("status must be ENABLED or DISABLED".into());
        }
        let auth_type = self.auth_type.unwrap_or_else(|| "TOKEN".into());
        match auth_type.as_str() {
            "TOKEN" if self.token.as_deref().is_none_or(str::is_empty) => {
                return Err("token is required for auth_type TOKEN".into())
            }
            "CUSTOM" if self.custom_headers.is_empty() || self.custom_headers.len() > 3 => {
                return Err("custom_headers needs 1 to 3 headers for auth_type CUSTOM".into())
            }
            "TOKEN" | "CUSTOM" | "NONE" => {}
            _ => return Err("auth_type must be NONE, TOKEN or CUSTOM".into()),
        }
        Ok(SimWebhook {
            id,
            url,
            description,
            status,
            auth_type,
            token: self.token,
            custom_headers: self.custom_headers,
            enabled_events,
            signing_secrets: Vec::new(),
            retiring_until: None,
        })
    }
}

/// `POST /v2/webhooks`.
pub(super) async fn create(
    State(sim): State<PersonioSim>,
    headers: HeaderMap,
    Json(request): Json<CreateWebhook>,
) -> Response {
    if let Some(denied) = sim.refuse_unauthorized(&headers, Dialect::V2) {
        return denied;
    }
    let mut state = sim.state();
    state.next_webhook_id += 1;
    let id = format!("00000000-0000-4000-8000-{:012}", state.next_webhook_id);
    match request.into_webhook(id) {
        Ok(webhook) => {
            let body = render(&webhook);
            state.webhooks.push(webhook);
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(detail) => v2_problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "common.invalid_request",
            &detail,
        ),
    }
}

/// The gate of the webhook management endpoints: a token, no bucket of its own, v2 problems.
/// Creation and rotation check the token in their bodies: they read the body first.
pub(super) struct V2Webhooks;

impl Gate for V2Webhooks {
    const LIMITED: Option<Limited> = None;
    const DIALECT: Dialect = Dialect::V2;
}

/// `GET /v2/webhooks`.
pub(super) async fn list(Admitted { sim, .. }: Admitted<V2Webhooks>) -> Response {
    let data: Vec<Value> = sim.state().webhooks.iter().map(render).collect();
    Json(json!({"_data": data, "_meta": {"links": {}}})).into_response()
}

/// `DELETE /v2/webhooks/{id}`.
pub(super) async fn delete(
    Path(id): Path<String>,
    Admitted { sim, .. }: Admitted<V2Webhooks>,
) -> Response {
    let mut state = sim.state();
    let before = state.webhooks.len();
    state.webhooks.retain(|w| w.id != id);
    if state.webhooks.len() == before {
        return v2_problem(
            StatusCode::NOT_FOUND,
            "common.not_found",
            "webhook not found",
        );
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Body of `POST /v2/webhooks/{id}/signing-secret` (optional).
#[derive(Deserialize, Default)]
pub(super) struct SigningSecretRequest {
    value: Option<String>,
}

/// `POST /v2/webhooks/{id}/signing-secret`: a new active secret (generated, or the given
/// `value`), the old one retiring for 7 days; the value is in this answer only.
pub(super) async fn rotate_signing_secret(
    State(sim): State<PersonioSim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(denied) = sim.refuse_unauthorized(&headers, Dialect::V2) {
        return denied;
    }
    let request: SigningSecretRequest = if body.is_empty() {
        SigningSecretRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(_) => {
                return v2_problem(
                    StatusCode::BAD_REQUEST,
                    "common.invalid_request",
                    "body must be a JSON object",
                )
            }
        }
    };
    let now = sim.now();
    let mut state = sim.state();
    let Some(webhook) = state.webhooks.iter_mut().find(|w| w.id == id) else {
        return v2_problem(
            StatusCode::NOT_FOUND,
            "common.not_found",
            "webhook not found",
        );
    };
    match webhook.rotate_signing_secret(request.value, now) {
        Ok(value) => Json(json!({ "id": id, "value": value })).into_response(),
        Err(detail) => v2_problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "common.invalid_request",
            detail,
        ),
    }
}

impl SimWebhook {
    /// Makes `value` (or a generated secret) the active signing secret; the active one retires
    /// for [`SIGNING_SECRET_RETIREMENT`]. Returns the new value.
    pub fn rotate_signing_secret(
        &mut self,
        value: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<String, &'static str> {
        let value = match value {
            Some(value) if value.trim().is_empty() => return Err("value must not be empty"),
            Some(value) => value,
            None => {
                let bytes: [u8; 32] = rand::random();
                bytes.iter().map(|b| format!("{b:02x}")).collect()
            }
        };
        if !self.signing_secrets.is_empty() {
            self.retiring_until = Some(now + SIGNING_SECRET_RETIREMENT);
        }
        self.signing_secrets.truncate(1);
        self.signing_secrets.insert(0, value.clone());
        Ok(value)
    }
}

/// The event Personio sends for a change from `before` to `after`: `person.updated` for the
/// person attributes its catalog lists (names, gender, e-mail), `employment.updated` for the
/// rest; `None` when nothing changed.
pub(super) fn event_for_change(
    before: &super::EmployeeSeed,
    after: &super::EmployeeSeed,
) -> Option<&'static str> {
    if before == after {
        return None;
    }
    let person = before.first_name != after.first_name
        || before.last_name != after.last_name
        || before.email != after.email
        || before.gender != after.gender;
    Some(if person {
        "person.updated"
    } else {
        "employment.updated"
    })
}

/// The dated event a change from `before` to `after` fires at once: `employment.terminated` when
/// a termination date that has already come (`today` or earlier) is entered or moved.
pub(super) fn dated_event_for_change(
    before: &super::EmployeeSeed,
    after: &super::EmployeeSeed,
    today: chrono::NaiveDate,
) -> Option<&'static str> {
    let ended = after.termination_date.is_some_and(|date| date <= today);
    (ended && before.termination_date != after.termination_date).then_some("employment.terminated")
}

impl PersonioSim {
    /// Personio's daily run for `today` (the simulator's date): `employment.started` for every
    /// employee hired on that day, `employment.terminated` for every one whose termination date
    /// it is. Returns how many events were emitted (each once per employee and date).
    pub fn emit_dated_events(&self) -> usize {
        let now = self.now();
        let today = now.date_naive();
        let due: Vec<(&'static str, i64)> = {
            let mut state = self.state();
            let mut due = Vec::new();
            for (id, employee) in &state.employees {
                if employee.seed.hire_date == Some(today) {
                    due.push(("employment.started", *id));
                }
                if employee.seed.termination_date == Some(today) {
                    due.push(("employment.terminated", *id));
                }
            }
            due.retain(|(event, id)| state.dated_events.insert((*event, *id, today)));
            due
        };
        for (event, id) in &due {
            self.emit(event, *id, now);
        }
        due.len()
    }

    /// Configures a webhook as an admin would in Personio's UI (or the management API), enabled.
    pub fn add_webhook(&self, url: &str, token: &str, events: &[&str]) -> String {
        let mut state = self.state();
        state.next_webhook_id += 1;
        let id = format!("00000000-0000-4000-8000-{:012}", state.next_webhook_id);
        state.webhooks.push(SimWebhook {
            id: id.clone(),
            url: url.to_string(),
            description: "added by a test".to_string(),
            status: "ENABLED".to_string(),
            auth_type: "TOKEN".to_string(),
            token: Some(token.to_string()),
            custom_headers: BTreeMap::new(),
            enabled_events: events.iter().map(|e| e.to_string()).collect(),
            signing_secrets: Vec::new(),
            retiring_until: None,
        });
        id
    }

    /// Sets the signing secret of webhook `id` as `POST /v2/webhooks/{id}/signing-secret` with a
    /// value does: the previous one stays valid beside it (Personio's grace window) until
    /// [`Self::retire_signing_secrets`]. Returns whether the webhook exists.
    pub fn set_signing_secret(&self, id: &str, secret: &str) -> bool {
        let mut state = self.state();
        let Some(webhook) = state.webhooks.iter_mut().find(|w| w.id == id) else {
            return false;
        };
        webhook.signing_secrets.truncate(1);
        webhook.signing_secrets.insert(0, secret.to_string());
        true
    }

    /// Ends the grace window of every retiring signing secret.
    pub fn retire_signing_secrets(&self) {
        for webhook in self.state().webhooks.iter_mut() {
            webhook.signing_secrets.truncate(1);
        }
    }

    /// The configured webhooks.
    pub fn webhooks(&self) -> Vec<SimWebhook> {
        self.state().webhooks.clone()
    }

    /// Every webhook delivery so far.
    pub fn webhook_deliveries(&self) -> Vec<crate::sim::Delivery> {
        self.shared.hooks.deliveries()
    }

    /// Sends `event` about person `id` to every enabled webhook that subscribed to it.
    pub(super) fn emit(&self, event: &str, id: i64, occurred_at: DateTime<Utc>) {
        let webhooks: Vec<SimWebhook> = self
            .state()
            .webhooks
            .iter()
            .filter(|w| w.status == "ENABLED" && w.enabled_events.iter().any(|e| e == event))
            .cloned()
            .collect();
        for webhook in webhooks {
            let mut headers: Vec<(String, String)> = webhook.custom_headers.into_iter().collect();
            if webhook.auth_type == "TOKEN" {
                if let Some(token) = webhook.token {
                    headers = vec![("Authorization".to_string(), token)];
                }
            } else if webhook.auth_type == "NONE" {
                headers.clear();
            }
            let payload = if event.starts_with("employment.") {
                json!({"id": super::persons::employment_id(id), "person": {"id": id.to_string()}})
            } else {
                json!({"id": id.to_string()})
            };
            let body = json!({
                "company_id": SIM_COMPANY_ID,
                "event_name": event,
                "occurred_at": occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "payload": payload,
                "meta": {},
            });
            if let Some(secret) = webhook.signing_secrets.first() {
                headers.extend(signature_headers(secret, occurred_at, &body));
            }
            self.shared.hooks.send(Outgoing {
                target: webhook.url,
                headers,
                event: event.to_string(),
                body,
                occurred_at,
                tries: 2,
            });
        }
    }
}

/// The signature and timestamp headers of a delivery of `body` at `at`, signed with `secret` in
/// the operator's default scheme (the body is signed as the sender serialises it).
fn signature_headers(secret: &str, at: DateTime<Utc>, body: &Value) -> [(String, String); 2] {
    let scheme = crate::webhook::SignatureScheme::default();
    let timestamp = at.timestamp().to_string();
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let signature = crate::webhook::signature::sign(&scheme, secret, &timestamp, &bytes);
    [
        (
            scheme.signature_header.to_string(),
            format!("sha256={signature}"),
        ),
        (scheme.timestamp_header.to_string(), timestamp),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: Value) -> CreateWebhook {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_signing_secret_is_set_or_generated_and_the_old_one_retires_for_a_week() {
        let now: DateTime<Utc> = "2026-12-07T10:00:00Z".parse().unwrap();
        let mut webhook = request(json!({
            "url": "https://hooks.example.com/x", "description": "d",
            "token": "Bearer t", "enabled_events": ["person.updated"]
        }))
        .into_webhook("1".into())
        .unwrap();
        assert_eq!(
            webhook.rotate_signing_secret(Some("first".into()), now),
            Ok("first".to_string())
        );
        assert_eq!(webhook.retiring_until, None);
        let generated = webhook.rotate_signing_secret(None, now).unwrap();
        assert_eq!(generated.len(), 64);
        assert_eq!(
            webhook.signing_secrets,
            [generated.clone(), "first".to_string()]
        );
        assert_eq!(
            webhook.retiring_until,
            Some(now + SIGNING_SECRET_RETIREMENT)
        );
        webhook
            .rotate_signing_secret(Some("third".into()), now)
            .unwrap();
        assert_eq!(
            webhook.signing_secrets,
            ["third".to_string(), generated],
            "one retiring secret at a time"
        );
        assert!(webhook
            .rotate_signing_secret(Some(" ".into()), now)
            .is_err());
    }

    #[test]
    fn the_catalog_knows_the_operators_events_and_no_made_up_ones() {
        for event in crate::webhook::PERSONIO_EVENTS {
            assert!(in_catalog(event), "{event}");
        }
        assert!(in_catalog("document.signed"));
        for wrong in [
            "person",
            "person.",
            ".created",
            "employment.signed",
            "document.started",
            "person.created.x",
        ] {
            assert!(!in_catalog(wrong), "{wrong}");
        }
    }

    #[test]
    fn creation_follows_the_documented_rules() {
        let ok = request(json!({
            "url": "https://hooks.example.com/x", "description": "d",
            "token": "Bearer t", "enabled_events": ["person.updated"]
        }))
        .into_webhook("1".into())
        .unwrap();
        assert_eq!(
            (ok.status.as_str(), ok.auth_type.as_str()),
            ("DISABLED", "TOKEN")
        );
        for bad in [
            json!({"url": "http://hooks.example.com/x", "description": "d", "token": "t", "enabled_events": []}),
            json!({"url": "https://h/x", "description": "d", "enabled_events": []}),
            json!({"url": "https://h/x", "description": "d", "token": "t", "enabled_events": ["person.exploded"]}),
            json!({"url": "https://h/x", "token": "t", "enabled_events": []}),
        ] {
            assert!(
                request(bad.clone()).into_webhook("1".into()).is_err(),
                "{bad}"
            );
        }
        assert!(request(json!({
            "url": "http://127.0.0.1:9/x", "description": "d", "auth_type": "NONE", "enabled_events": []
        }))
        .into_webhook("1".into())
        .is_ok());
    }

    #[test]
    fn dated_events_fire_on_their_day_once_and_an_entered_past_termination_at_once() {
        use crate::clock::ManualClock;
        use crate::sim::personio::{EmployeeSeed, PersonioSim, PersonioSimConfig};
        let clock = ManualClock::new("2026-12-07T06:00:00Z".parse().unwrap());
        let sim = PersonioSim::new(PersonioSimConfig {
            clock: std::sync::Arc::new(clock.clone()),
            ..PersonioSimConfig::default()
        });
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let tomorrow = today.succ_opt().unwrap();
        sim.add_employee(EmployeeSeed::new("A", "Starts", "a@x.example").with_hire_date(today));
        sim.add_employee(
            EmployeeSeed::new("B", "Leaves", "b@x.example").with_termination_date(tomorrow),
        );
        assert_eq!(sim.emit_dated_events(), 1, "the start today");
        assert_eq!(sim.emit_dated_events(), 0, "once per day");
        clock.advance(chrono::Duration::days(1));
        assert_eq!(sim.emit_dated_events(), 1, "the termination on its date");

        let before = EmployeeSeed::new("C", "Stays", "c@x.example");
        let mut ended = before.clone();
        ended.termination_date = Some(today);
        assert_eq!(
            dated_event_for_change(&before, &ended, today),
            Some("employment.terminated")
        );
        let mut later = before.clone();
        later.termination_date = Some(tomorrow);
        assert_eq!(
            dated_event_for_change(&before, &later, today),
            None,
            "a future date fires on the day"
        );
        assert_eq!(dated_event_for_change(&ended, &ended, today), None);
    }
}
