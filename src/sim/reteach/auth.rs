//! `POST /oauth/authorize` and the bearer check in front of every other route.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::errors::nest_error;
use super::ReteachSim;

/// How the simulator answers a request whose bearer token is missing, unknown, expired or revoked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BadTokenAnswer {
    /// `401 Unauthorized` (NestJS' default for a failed `AuthGuard`).
    #[default]
    Unauthorized,
    /// `403 Forbidden resource`, the only error reteach's published spec declares on its
    /// operations (a guard returning `false` answers this way).
    Forbidden,
}

/// Exchanges the app credentials for a bearer token (201, as NestJS answers POSTs).
pub(crate) async fn authorize(State(sim): State<ReteachSim>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return nest_error(StatusCode::BAD_REQUEST, "Unexpected token in JSON body");
    };
    let field = |key: &str| request.get(key).and_then(Value::as_str).unwrap_or_default();
    if field("grant_type") != "authorization_code" {
        return nest_error(StatusCode::BAD_REQUEST, "unsupported grant_type");
    }
    let now = sim.clock.now();
    let issued = sim.with_state(|state| {
        let credentials = &state.credentials;
        let valid = field("client_id") == credentials.client_id
            && field("client_secret") == credentials.client_secret
            && field("code") == credentials.client_code;
        if !valid {
            return None;
        }
        let token = format!("sim-access-{:032x}", rand::random::<u128>());
        state.tokens.insert(token.clone(), now + state.token_ttl);
        Some((token, state.token_ttl.num_seconds()))
    });
    match issued {
        None => nest_error(StatusCode::UNAUTHORIZED, "Invalid client credentials"),
        Some((token, expires_in)) => (
            StatusCode::CREATED,
            Json(json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": expires_in,
                "refresh_token": format!("sim-refresh-{:032x}", rand::random::<u128>()),
            })),
        )
            .into_response(),
    }
}

/// Lets a request through only with a known, unexpired bearer token.
pub(crate) async fn require_bearer(
    State(sim): State<ReteachSim>,
    request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let now = sim.clock.now();
    let (valid, answer) = sim.with_state(|state| {
        let valid = token
            .as_ref()
            .is_some_and(|token| state.tokens.get(token).is_some_and(|exp| now < *exp));
        (valid, state.bad_token_answer)
    });
    if valid {
        return next.run(request).await;
    }
    match answer {
        BadTokenAnswer::Unauthorized => nest_error(StatusCode::UNAUTHORIZED, "Unauthorized"),
        BadTokenAnswer::Forbidden => nest_error(StatusCode::FORBIDDEN, "Forbidden resource"),
    }
}
