//! `POST /v1/auth`, `POST /v2/auth/token`, bearer-token checks and the rate-limit gate shared by
//! all handlers.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use serde_json::{json, Value};

use super::rate_limit::Limited;
use super::responses::{oauth_error, v1_error, v2_problem};
use super::state::{IssuedToken, TokenOrigin};
use super::PersonioSim;

/// Which error shape an endpoint speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dialect {
    V1,
    V2,
}

const SCOPE: &str = "employees:read documents:read documents:write";

/// `POST /v1/auth`: credentials in a JSON or form body; the query string is refused (403) as
/// Personio does from 2026-12-04.
pub(super) async fn v1_auth(
    State(sim): State<PersonioSim>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = sim.rate_limit(Limited::Auth, Dialect::V1) {
        return refused;
    }
    let query_has_credentials = uri.query().is_some_and(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .any(|(key, _)| key == "client_id" || key == "client_secret")
    });
    if query_has_credentials {
        return v1_error(
            StatusCode::FORBIDDEN,
            "Passing credentials as query parameters is no longer supported. Send client_id and client_secret in the request body.",
        );
    }
    let Some((client_id, client_secret)) = credentials_from_body(&headers, &body) else {
        return v1_error(
            StatusCode::BAD_REQUEST,
            "The client_id and client_secret fields are required.",
        );
    };
    if !sim.accepts(&client_id, &client_secret) {
        return v1_error(StatusCode::UNAUTHORIZED, "Wrong credentials");
    }
    let (token, expires_in) = sim.issue_token(TokenOrigin::V1Auth);
    let body = json!({"success": true, "data": {
        "token": token, "expires_in": expires_in, "scope": SCOPE,
    }});
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// `POST /v2/auth/token`: OAuth2 client credentials, form-encoded only.
pub(super) async fn v2_token(
    State(sim): State<PersonioSim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = sim.rate_limit(Limited::Auth, Dialect::V2) {
        return refused;
    }
    if !is_form(&headers) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body must be application/x-www-form-urlencoded.",
        );
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    if field("grant_type").as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only the client_credentials grant type is supported.",
        );
    }
    let (Some(client_id), Some(client_secret)) = (field("client_id"), field("client_secret"))
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id and client_secret are required.",
        );
    };
    if !sim.accepts(&client_id, &client_secret) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed.",
        );
    }
    let (token, expires_in) = sim.issue_token(TokenOrigin::V2Token);
    let body = json!({
        "access_token": token, "token_type": "Bearer", "expires_in": expires_in,
        "scope": SCOPE, "refresh_token": null,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

fn credentials_from_body(headers: &HeaderMap, body: &[u8]) -> Option<(String, String)> {
    if is_form(headers) {
        let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
        let field = |name: &str| {
            form.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        return Some((field("client_id")?, field("client_secret")?));
    }
    let json: Value = serde_json::from_slice(body).ok()?;
    let field = |name: &str| json.get(name).and_then(Value::as_str).map(str::to_string);
    Some((field("client_id")?, field("client_secret")?))
}

impl PersonioSim {
    fn accepts(&self, client_id: &str, client_secret: &str) -> bool {
        let config = self.config();
        client_id == config.client_id && client_secret == config.client_secret
    }

    /// Issues (or, like Personio's stable tokens, re-issues) a token; returns it and `expires_in`.
    fn issue_token(&self, origin: TokenOrigin) -> (String, i64) {
        let now = self.now();
        let ttl = Duration::from_std(self.config().token_ttl).unwrap_or(Duration::days(1));
        let mut state = self.state();
        let existing = state
            .tokens
            .iter()
            .find(|(_, issued)| issued.origin == origin && issued.expires_at > now)
            .map(|(token, issued)| (token.clone(), issued.expires_at));
        if let Some((token, expires_at)) = existing {
            return (token, (expires_at - now).num_seconds().max(1));
        }
        let token = new_token();
        state.tokens.insert(
            token.clone(),
            IssuedToken {
                origin,
                expires_at: now
                    .checked_add_signed(ttl)
                    .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC),
            },
        );
        (token, ttl.num_seconds().max(1))
    }

    /// Checks the bearer token (any token the simulator issued and that has not expired);
    /// `Some(401 response)` when it is missing, unknown or expired.
    pub(super) fn refuse_unauthorized(
        &self,
        headers: &HeaderMap,
        dialect: Dialect,
    ) -> Option<Response> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = token else {
            return Some(unauthorized(dialect, "Authorization is not provided"));
        };
        let now = self.now();
        let mut state = self.state();
        let valid = state
            .tokens
            .get(token)
            .is_some_and(|issued| issued.expires_at > now);
        if !valid {
            return Some(unauthorized(
                dialect,
                "The access token is invalid or has expired",
            ));
        }
        state.count_authorized_request(now);
        None
    }

    /// 429 when the endpoint's bucket is empty — with no `Retry-After`, as Personio.
    pub(super) fn rate_limit(&self, endpoint: Limited, dialect: Dialect) -> Option<Response> {
        let mut state = self.state();
        let buckets = state.buckets.as_mut()?;
        if buckets.try_take(endpoint) {
            return None;
        }
        Some(match dialect {
            Dialect::V1 => v1_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
            Dialect::V2 => v2_problem(
                StatusCode::TOO_MANY_REQUESTS,
                "common.rate_limit_exceeded",
                "Rate limit exceeded.",
            ),
        })
    }
}

fn unauthorized(dialect: Dialect, message: &str) -> Response {
    match dialect {
        Dialect::V1 => v1_error(StatusCode::UNAUTHORIZED, message),
        Dialect::V2 => v2_problem(StatusCode::UNAUTHORIZED, "common.unauthorized", message),
    }
}

fn new_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    format!(
        "papi-{:016x}{:016x}",
        rng.random::<u64>(),
        rng.random::<u64>()
    )
}
