//! [`PersonioClient`]: the HTTP side of [`PersonioApi`]. The calls themselves live in
//! `employees.rs`, `documents.rs` and `upload.rs`; this file holds construction and the request
//! plumbing they share (headers, retries, token refresh on 401, error mapping).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::NaiveDateTime;
use governor::DefaultDirectRateLimiter;
use reqwest::header::HeaderValue;
use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::ExposeSecret;
use serde_json::Value;
use url::Url;

use super::auth::{TokenCache, TokenKind};
use super::config::{EmployeeApi, Lane, Limiters, PersonioConfig};
use super::error_body::parse_error_body;
use super::{
    AttributeRequest, ChangedEmployees, DocumentUpload, EmployeeList, PersonioApi, PersonioError,
    PersonioWebhooks,
};
use crate::sync::{DocumentCategory, StoredDocument};
use crate::upstream::{
    build_http_client, debug_client, read_capped, read_error_body, redirect_status, send_paced,
    BodyReadError, BudgetShare, Pace, RequestObserver, RetryPolicy, SendError, ServerLimits,
    MAX_ERROR_BODY_BYTES, MAX_JSON_BYTES,
};

/// Name of the API in request records and metrics.
pub(super) const API: &str = "personio";
/// Header Personio asks every integration to send.
const APP_ID_HEADER: &str = "X-Personio-App-ID";

/// Personio client for one credential. Cache it per tenant: it holds the token and the rate
/// limiters, so limits span runs.
pub struct PersonioClient {
    pub(super) http: reqwest::Client,
    base: Url,
    pub(super) client_id: String,
    pub(super) client_secret: String,
    app_id: HeaderValue,
    pub(super) limiters: Limiters,
    pub(super) retry: RetryPolicy,
    pub(super) observer: Arc<dyn RequestObserver>,
    /// This credential's share of the process-wide Personio budget (per egress IP).
    pub(super) budget: Option<BudgetShare>,
    /// Whole-request timeout of an upload (see [`super::upload::UPLOAD_TIMEOUT`]).
    pub(super) upload_timeout: std::time::Duration,
    pub(super) v1_token: TokenCache,
    pub(super) v2_token: TokenCache,
    /// Which API employees are read through.
    employee_api: EmployeeApi,
    /// What Personio announced about its limits per endpoint (`x-ratelimit-*`): a spent endpoint
    /// waits for its reset (the v2 endpoints, whose limits are not published).
    server_limits: ServerLimits,
}

impl std::fmt::Debug for PersonioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_client(f, "PersonioClient", &self.base)
    }
}

impl PersonioClient {
    /// Builds a client; fails on an unusable base URL, CA bundle or app id.
    pub fn new(config: PersonioConfig) -> Result<Self, PersonioError> {
        let (http, base) = build_http_client(&config.base_url, &config.tls)
            .map_err(|e| PersonioError::Config(format!("Personio: {e}")))?;
        let app_id = HeaderValue::from_str(config.app_id.trim()).map_err(|_| {
            PersonioError::Config("Personio app id is not a valid header value".to_string())
        })?;
        let client_id = config.credentials.id.expose_secret().trim();
        let client_secret = config.credentials.secret.expose_secret().trim();
        if client_id.is_empty() || client_secret.is_empty() {
            return Err(PersonioError::Config(
                "Personio client id and client secret must not be empty".to_string(),
            ));
        }
        Ok(Self {
            http,
            base,
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            app_id,
            limiters: Limiters::new(&config.limits),
            retry: config.retry,
            observer: config.observer,
            budget: config.budget,
            upload_timeout: config
                .tls
                .timeout
                .unwrap_or_default()
                .max(super::upload::UPLOAD_TIMEOUT),
            v1_token: TokenCache::new(TokenKind::V1),
            v2_token: TokenCache::new(TokenKind::V2),
            employee_api: config.employee_api,
            server_limits: ServerLimits::default(),
        })
    }

    /// How often a request waited for a rate-limit reset Personio announced.
    pub fn rate_limit_waits(&self) -> u64 {
        self.server_limits.waits()
    }

    /// Which API employees are read through.
    pub fn employee_api(&self) -> EmployeeApi {
        self.employee_api
    }

    /// `path` (starting with `/`) below the base URL, keeping a base path prefix.
    pub(super) fn url(&self, path: &str) -> Result<Url, PersonioError> {
        let base = self.base.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}"))
            .map_err(|_| PersonioError::Config(format!("cannot build a Personio URL for {path}")))
    }

    /// A link from a response (absolute or relative). Refuses other hosts: the bearer token must
    /// only ever go to the configured Personio.
    pub(super) fn follow_link(
        &self,
        endpoint: &'static str,
        href: &str,
    ) -> Result<Url, PersonioError> {
        let url = self.base.join(href).map_err(|_| PersonioError::Malformed {
            endpoint,
            message: "pagination link is not a URL".to_string(),
        })?;
        if url.origin() != self.base.origin() {
            return Err(PersonioError::Malformed {
                endpoint,
                message: "pagination link points to another host".to_string(),
            });
        }
        Ok(url)
    }

    /// Sends with the app-id header, the endpoint's limiter and the retry policy.
    pub(super) async fn send(
        &self,
        endpoint: &'static str,
        limiter: Option<&DefaultDirectRateLimiter>,
        make: impl FnMut() -> RequestBuilder,
    ) -> Result<Response, PersonioError> {
        self.send_with_policy(endpoint, &self.retry, limiter, make)
            .await
            .map_err(|error| error.into_personio(false))
    }

    /// [`Self::send`] with an explicit policy, keeping the raw [`SendError`].
    pub(super) async fn send_with_policy(
        &self,
        endpoint: &'static str,
        policy: &RetryPolicy,
        limiter: Option<&DefaultDirectRateLimiter>,
        mut make: impl FnMut() -> RequestBuilder,
    ) -> Result<Response, SendFailure> {
        let pace = Pace {
            limiter,
            budget: self.budget.as_ref(),
            server: Some(&self.server_limits),
        };
        let sent = send_paced(API, endpoint, policy, self.observer.as_ref(), pace, || {
            make().header(APP_ID_HEADER, self.app_id.clone())
        })
        .await;
        match sent {
            // Never followed (see `build_http_client`): one request to the base URL, nothing to
            // the target, and the caller learns the base URL is wrong.
            Ok(response) => match redirect_status(response.status()) {
                Some(status) => Err(SendFailure::Redirected { endpoint, status }),
                None => Ok(response),
            },
            Err(error) => Err(SendFailure::read(error).await),
        }
    }

    /// Reads the body: a success of at most [`MAX_JSON_BYTES`], an error body cut at
    /// [`MAX_ERROR_BODY_BYTES`]. A broken connection is an outage, a larger success body
    /// `Malformed`.
    pub(super) async fn read_body(
        &self,
        endpoint: &'static str,
        response: Response,
    ) -> Result<(StatusCode, Bytes), PersonioError> {
        self.read_body_within(endpoint, response, MAX_JSON_BYTES)
            .await
    }

    /// [`Self::read_body`] with another cap for a success body.
    pub(super) async fn read_body_within(
        &self,
        endpoint: &'static str,
        response: Response,
        max_bytes: usize,
    ) -> Result<(StatusCode, Bytes), PersonioError> {
        let status = response.status();
        if !status.is_success() {
            return Ok((
                status,
                read_error_body(response, MAX_ERROR_BODY_BYTES).await,
            ));
        }
        match read_capped(response, max_bytes).await {
            Ok(bytes) => Ok((status, bytes)),
            Err(BodyReadError::Broken(_)) => Err(PersonioError::Unavailable {
                message: format!("{endpoint}: connection broke while reading the response"),
                maybe_applied: false,
                trace_id: None,
            }),
            Err(too_large @ BodyReadError::TooLarge { .. }) => Err(PersonioError::Malformed {
                endpoint,
                message: too_large.to_string(),
            }),
        }
    }

    /// An authorized, idempotent GET in `lane` returning JSON of at most [`MAX_JSON_BYTES`].
    pub(super) async fn get_json(
        &self,
        endpoint: &'static str,
        kind: TokenKind,
        lane: Lane,
        url: &Url,
    ) -> Result<Value, PersonioError> {
        self.get_json_within(endpoint, kind, lane, url, MAX_JSON_BYTES)
            .await
    }

    /// An authorized, idempotent GET returning JSON of at most `max_bytes`: refreshes the token
    /// once on a 401 and retries a response whose body broke off.
    pub(super) async fn get_json_within(
        &self,
        endpoint: &'static str,
        kind: TokenKind,
        lane: Lane,
        url: &Url,
        max_bytes: usize,
    ) -> Result<Value, PersonioError> {
        let limiter = self.limiters.of(lane);
        let mut refreshed = false;
        let mut broken_bodies = 0;
        loop {
            let token = self.token(kind).await?;
            let response = self
                .send(endpoint, limiter, || {
                    self.http.get(url.clone()).bearer_auth(&token.0)
                })
                .await?;
            let (status, bytes) = match self.read_body_within(endpoint, response, max_bytes).await {
                Ok(read) => read,
                Err(error @ PersonioError::Unavailable { .. }) => {
                    broken_bodies += 1;
                    if broken_bodies >= self.retry.max_attempts {
                        return Err(error);
                    }
                    tokio::time::sleep(self.retry.min_delay).await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                // Tokens live 24 h but may be revoked or expire early: fetch a new one once.
                self.invalidate(kind, &token).await;
                refreshed = true;
                continue;
            }
            if !status.is_success() {
                return Err(resource_error(endpoint, status.as_u16(), &bytes));
            }
            return serde_json::from_slice(&bytes).map_err(|_| PersonioError::Malformed {
                endpoint,
                message: "response is not JSON".to_string(),
            });
        }
    }
}

/// A request that got no usable response, with the last error body already read.
#[derive(Debug)]
pub(super) enum SendFailure {
    /// No response at all.
    Transport {
        endpoint: &'static str,
        message: String,
        /// The connection was never made, so nothing reached Personio.
        never_connected: bool,
    },
    /// A redirect, which is never followed.
    Redirected { endpoint: &'static str, status: u16 },
    /// 429 or 5xx until the policy gave up.
    Status {
        endpoint: &'static str,
        status: u16,
        attempts: usize,
        message: String,
        trace_id: Option<String>,
    },
}

impl SendFailure {
    async fn read(error: SendError) -> Self {
        match error {
            SendError::Transport {
                endpoint,
                connected,
                message,
                ..
            } => Self::Transport {
                endpoint,
                never_connected: !connected,
                message,
            },
            SendError::Status {
                endpoint,
                status,
                attempts,
                response,
            } => {
                let body = read_error_body(response.0, MAX_ERROR_BODY_BYTES).await;
                let parsed = parse_error_body(status, &body);
                Self::Status {
                    endpoint,
                    status,
                    attempts,
                    message: parsed.message,
                    trace_id: parsed.trace_id,
                }
            }
        }
    }

    /// The caller-facing error; `maybe_applied` says whether a write may have happened.
    pub fn into_personio(self, maybe_applied: bool) -> PersonioError {
        match self {
            Self::Redirected { endpoint, status } => PersonioError::Redirected { endpoint, status },
            Self::Transport {
                endpoint,
                message,
                never_connected,
            } => PersonioError::Unavailable {
                message: format!("{endpoint}: {message}"),
                maybe_applied: maybe_applied && !never_connected,
                trace_id: None,
            },
            Self::Status {
                endpoint,
                status,
                attempts,
                message,
                trace_id,
            } => PersonioError::Unavailable {
                message: status_message(endpoint, status, attempts, &message),
                maybe_applied: maybe_applied && status != 429,
                trace_id,
            },
        }
    }
}

fn status_message(endpoint: &str, status: u16, attempts: usize, message: &str) -> String {
    let what = if status == 429 {
        "rate limited"
    } else {
        "server error"
    };
    let mut text = format!("{endpoint}: {what} (HTTP {status}) after {attempts} attempt(s)");
    if !message.is_empty() {
        text.push_str(": ");
        text.push_str(message);
    }
    text
}

/// Maps a non-success status of a resource call to the error the caller acts on.
pub(super) fn resource_error(endpoint: &'static str, status: u16, body: &[u8]) -> PersonioError {
    let parsed = parse_error_body(status, body);
    match status {
        401 => PersonioError::Unauthorized {
            message: parsed.message,
        },
        403 => PersonioError::Forbidden {
            endpoint,
            message: parsed.message,
        },
        404 => PersonioError::NotFound {
            what: endpoint.to_string(),
            message: parsed.message,
        },
        429 | 500..=599 => PersonioError::Unavailable {
            message: status_message(endpoint, status, 1, &parsed.message),
            maybe_applied: false,
            trace_id: parsed.trace_id,
        },
        _ => PersonioError::Rejected {
            endpoint,
            message: with_fields(parsed.message, &parsed.fields),
        },
    }
}

/// `message (fields: a, b)` — field names only, never the values Personio complains about.
pub(super) fn with_fields(message: String, fields: &[String]) -> String {
    if fields.is_empty() {
        message
    } else {
        format!("{message} (fields: {})", fields.join(", "))
    }
}

#[async_trait]
impl PersonioApi for PersonioClient {
    async fn check_credentials(&self) -> Result<(), PersonioError> {
        self.token(TokenKind::V1).await.map(|_| ())
    }

    async fn list_employees_with(
        &self,
        updated_since: Option<NaiveDateTime>,
        attributes: &AttributeRequest,
    ) -> Result<EmployeeList, PersonioError> {
        match self.employee_api {
            EmployeeApi::V1 => self.fetch_employees(updated_since, attributes).await,
            EmployeeApi::V2 => self.fetch_persons(updated_since, attributes).await,
        }
    }

    fn change_feed_sees_everything(&self) -> bool {
        self.employee_api == EmployeeApi::V1
    }

    async fn employees_by_id(
        &self,
        ids: &[String],
        attributes: &AttributeRequest,
    ) -> Result<EmployeeList, PersonioError> {
        match self.employee_api {
            // One listing of pages of 100 reads them all; the filter keeps the named ones.
            EmployeeApi::V1 => super::named_in_full_listing(self, ids, attributes).await,
            EmployeeApi::V2 => self.fetch_persons_by_id(ids, attributes).await,
        }
    }

    async fn list_changed_employees(
        &self,
        read: ChangedEmployees<'_>,
    ) -> Result<EmployeeList, PersonioError> {
        match (self.employee_api, read.updated_since) {
            // One read of the change feed and the named persons, sharing the unit names.
            (EmployeeApi::V2, Some(since)) if !read.named.is_empty() => {
                self.fetch_changed_persons(since, read.named, read.attributes)
                    .await
            }
            _ => {
                self.list_employees_with(read.updated_since, read.attributes)
                    .await
            }
        }
    }

    async fn document_categories(&self) -> Result<Vec<DocumentCategory>, PersonioError> {
        self.fetch_document_categories().await
    }

    async fn list_documents(
        &self,
        employee_id: &str,
        category_id: i64,
    ) -> Result<Vec<StoredDocument>, PersonioError> {
        self.fetch_documents(employee_id, category_id).await
    }

    async fn upload_document(&self, upload: DocumentUpload) -> Result<String, PersonioError> {
        self.send_document(upload).await
    }

    fn webhooks(&self) -> Result<&dyn PersonioWebhooks, PersonioError> {
        Ok(self)
    }
}

/// The array under `key` of a response body (`data` in v1, `_data` in v2); a body without it is
/// malformed.
pub(super) fn json_array<'a>(
    json: &'a Value,
    key: &str,
    endpoint: &'static str,
) -> Result<&'a Vec<Value>, PersonioError> {
    json.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| PersonioError::Malformed {
            endpoint,
            message: format!("response has no {key} array"),
        })
}
