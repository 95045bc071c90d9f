//! NestJS error bodies: `{"statusCode": 404, "message": "…", "error": "Not found"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// The `error` text NestJS puts next to a status (the spec spells 404 as "Not found").
fn error_name(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "Not found",
        other => other.canonical_reason().unwrap_or("Error"),
    }
}

/// An error response with a single message (usable as the fault middleware's `ErrorBody`).
pub fn nest_error(status: StatusCode, message: &str) -> Response {
    nest_error_value(status, Value::String(message.to_string()))
}

/// A validation error: NestJS' ValidationPipe sends `message` as an array.
pub fn nest_validation(status: StatusCode, messages: Vec<String>) -> Response {
    nest_error_value(status, json!(messages))
}

fn nest_error_value(status: StatusCode, message: Value) -> Response {
    let body = json!({
        "statusCode": status.as_u16(),
        "message": message,
        "error": error_name(status),
    });
    (status, Json(body)).into_response()
}
