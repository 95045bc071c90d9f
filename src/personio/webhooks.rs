//! Personio's Webhooks management API (`GET/POST /v2/webhooks`, `DELETE /v2/webhooks/{id}`,
//! `POST /v2/webhooks/{id}/signing-secret`; developer.personio.de "Create new webhook" and "Rotate
//! the webhook's signing secret", scope `personio:webhooks:write`): used only when an
//! EmployeeSync asks the operator to register its receiver (`spec.webhook.register`). The
//! token and signing secret sent are the operator's own, derived values (see
//! `webhook::identity`), never a value from a resource's Secret.

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{json, Value};

use super::auth::TokenKind;
use super::client::{json_array, resource_error, PersonioClient};
use super::config::Lane;
use super::PersonioError;

const LIST: &str = "GET /v2/webhooks";
const CREATE: &str = "POST /v2/webhooks";
const DELETE: &str = "DELETE /v2/webhooks/{id}";
const SIGNING_SECRET: &str = "POST /v2/webhooks/{id}/signing-secret";
/// Pages followed at most (a company has a handful of webhooks).
const MAX_PAGES: usize = 20;

/// One Personio webhook as `GET /v2/webhooks` lists it (the token is never listed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonioWebhook {
    /// Personio's id.
    pub id: String,
    /// Where Personio posts.
    pub url: String,
    /// The events it is enabled for, when the listing says (`None`: not listed, taken as
    /// complete). A webhook registered by an older version lacks newer events and is replaced.
    pub enabled_events: Option<Vec<String>>,
}

fn webhook(value: &Value) -> Option<PersonioWebhook> {
    let enabled_events = value
        .get("enabled_events")
        .and_then(Value::as_array)
        .map(|events| {
            events
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        });
    Some(PersonioWebhook {
        id: value.get("id")?.as_str()?.to_string(),
        url: value.get("url")?.as_str()?.to_string(),
        enabled_events,
    })
}

impl PersonioClient {
    /// Sends with a v2 token, fetching a fresh one once on a 401.
    async fn v2_request(
        &self,
        endpoint: &'static str,
        make: impl Fn(&str) -> RequestBuilder,
    ) -> Result<(StatusCode, Bytes), PersonioError> {
        let mut refreshed = false;
        loop {
            let token = self.token(TokenKind::V2).await?;
            let response = self.send(endpoint, None, || make(&token.0)).await?;
            let (status, bytes) = self.read_body(endpoint, response).await?;
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                self.invalidate(TokenKind::V2, &token).await;
                refreshed = true;
                continue;
            }
            return Ok((status, bytes));
        }
    }
}

/// Webhook management (`/v2/webhooks`), offered by the HTTP client through
/// [`super::PersonioApi::webhooks`].
#[async_trait]
pub trait PersonioWebhooks: Send + Sync {
    /// The company's webhooks (`GET /v2/webhooks`).
    async fn list_webhooks(&self) -> Result<Vec<PersonioWebhook>, PersonioError>;

    /// Creates an enabled webhook of `events` posting to `target` with `token` as its
    /// `Authorization` value (`POST /v2/webhooks`, auth type `TOKEN`); returns its id when the
    /// answer names it.
    async fn create_webhook(
        &self,
        target: &str,
        token: &str,
        events: &[&str],
    ) -> Result<Option<String>, PersonioError>;

    /// Sets the signing secret of webhook `id` to `value` (`POST /v2/webhooks/{id}/signing-secret`;
    /// Personio keeps the previous one valid for 7 days).
    async fn set_webhook_signing_secret(&self, id: &str, value: &str) -> Result<(), PersonioError>;

    /// Deletes a webhook (`DELETE /v2/webhooks/{id}`); an unknown id counts as deleted.
    async fn delete_webhook(&self, id: &str) -> Result<(), PersonioError>;
}

#[async_trait]
impl PersonioWebhooks for PersonioClient {
    async fn list_webhooks(&self) -> Result<Vec<PersonioWebhook>, PersonioError> {
        let mut url = self.url("/v2/webhooks")?;
        let mut webhooks = Vec::new();
        for _ in 0..MAX_PAGES {
            let json = self
                .get_json(LIST, TokenKind::V2, Lane::Unlimited, &url)
                .await?;
            let data = json_array(&json, "_data", LIST)?;
            webhooks.extend(data.iter().filter_map(webhook));
            let next = json
                .pointer("/_meta/links/next/href")
                .and_then(Value::as_str)
                .filter(|href| !href.trim().is_empty());
            let Some(next) = next else {
                break;
            };
            url = self.follow_link(LIST, next)?;
        }
        Ok(webhooks)
    }

    async fn create_webhook(
        &self,
        target: &str,
        token: &str,
        events: &[&str],
    ) -> Result<Option<String>, PersonioError> {
        let url = self.url("/v2/webhooks")?;
        let body = json!({
            "url": target,
            "description": "reteach-personio-operator",
            "status": "ENABLED",
            "auth_type": "TOKEN",
            "token": token,
            "enabled_events": events,
        });
        let (status, bytes) = self
            .v2_request(CREATE, |bearer| {
                self.http.post(url.clone()).bearer_auth(bearer).json(&body)
            })
            .await?;
        if !status.is_success() {
            return Err(resource_error(CREATE, status.as_u16(), &bytes));
        }
        // The answer is the created webhook (or `{_data: …}`); its id, when named.
        let created: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let id = created
            .get("id")
            .or_else(|| created.pointer("/_data/id"))
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(id)
    }

    async fn set_webhook_signing_secret(&self, id: &str, value: &str) -> Result<(), PersonioError> {
        let mut url = self.url("/v2/webhooks")?;
        url.path_segments_mut()
            .map_err(|_| PersonioError::Config("Personio base URL cannot have a path".into()))?
            .push(id)
            .push("signing-secret");
        let body = json!({ "value": value });
        let (status, bytes) = self
            .v2_request(SIGNING_SECRET, |bearer| {
                self.http.post(url.clone()).bearer_auth(bearer).json(&body)
            })
            .await?;
        if status.is_success() {
            // The answer repeats the secret once; it is dropped unread.
            return Ok(());
        }
        Err(resource_error(SIGNING_SECRET, status.as_u16(), &bytes))
    }

    async fn delete_webhook(&self, id: &str) -> Result<(), PersonioError> {
        let mut url = self.url("/v2/webhooks")?;
        url.path_segments_mut()
            .map_err(|_| PersonioError::Config("Personio base URL cannot have a path".into()))?
            .push(id);
        let (status, bytes) = self
            .v2_request(DELETE, |bearer| {
                self.http.delete(url.clone()).bearer_auth(bearer)
            })
            .await?;
        // Already gone counts as deleted.
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(resource_error(DELETE, status.as_u16(), &bytes))
    }
}
