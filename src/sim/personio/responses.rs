//! Personio's three error shapes, as the simulator sends them: v1 `{success: false, error}`,
//! v2 `application/problem+json` and the v2 OAuth error.

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// v1 error body: `{"success": false, "error": {"code": <status>, "message": …}}`.
pub fn v1_error(status: StatusCode, message: &str) -> Response {
    v1_error_with_code(status, status.as_u16(), message)
}

/// v1 error with an explicit `code` (Personio often sends `0`).
pub fn v1_error_with_code(status: StatusCode, code: u16, message: &str) -> Response {
    let body = json!({"success": false, "error": {"code": code, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// v1 validation error (422) with Laravel-style `error_data`.
pub fn v1_validation_error(errors: &BTreeMap<String, Vec<String>>) -> Response {
    let body = json!({"success": false, "error": {
        "code": 0,
        "message": "The given data was invalid.",
        "error_data": errors,
    }});
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}

/// v2 problem+json: `{personio_trace_id, timestamp, errors: [{title, detail, type, _meta}]}`.
pub fn v2_problem(status: StatusCode, error_code: &str, detail: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = json!({
        "personio_trace_id": trace_id(),
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "errors": [{
            "title": title,
            "detail": detail,
            "type": format!("https://developer.personio.de/reference/errors#{error_code}"),
            "_meta": {},
        }],
    });
    problem_response(status, body)
}

/// v2 OAuth error of `POST /v2/auth/token`.
pub fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({
        "error": error,
        "error_description": description,
        "error_uri": format!("https://developer.personio.de/reference/errors#{error}"),
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "trace_id": trace_id(),
        "meta": {},
    });
    problem_response(status, body)
}

fn problem_response(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// A random-looking trace id like Personio's.
fn trace_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    format!(
        "{:08x}-{:04x}-{:04x}-{:012x}",
        rng.random::<u32>(),
        rng.random::<u16>(),
        rng.random::<u16>(),
        rng.random::<u64>() & 0xffff_ffff_ffff
    )
}
