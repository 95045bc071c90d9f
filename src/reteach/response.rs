//! Turning reteach's HTTP answers into values or typed errors. reteach is a NestJS backend: error
//! bodies are `{statusCode, message, error}` where `message` is a string or (for validation
//! errors) an array of strings.

use reqwest::{Response, StatusCode};
use serde_json::Value;

use super::ReteachError;
use crate::upstream::{
    read_capped, read_error_body, redirect_status, BodyReadError, SendError, MAX_ERROR_BODY_BYTES,
    MAX_JSON_BYTES,
};

/// Replacement for any e-mail address or submitted value found in an upstream message.
const REDACTED: &str = "<redacted>";

/// The human-readable message of a NestJS error body, or the status text when the body is not one.
pub(crate) fn nest_message(status: StatusCode, body: &[u8]) -> String {
    let fallback = || status.canonical_reason().unwrap_or("error").to_string();
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return fallback();
    };
    match value.get("message") {
        Some(Value::String(message)) => message.clone(),
        Some(Value::Array(items)) => {
            let parts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            if parts.is_empty() {
                fallback()
            } else {
                parts.join("; ")
            }
        }
        _ => value
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(fallback),
    }
}

/// Removes e-mail addresses and the values we submitted from an upstream message, so errors,
/// logs and status never echo personal data (reteach validation messages may quote the input).
pub(crate) fn scrub(message: &str, submitted: &[&str]) -> String {
    let mut text = message.to_string();
    for value in submitted.iter().filter(|v| v.trim().len() >= 2) {
        text = text.replace(value, REDACTED);
    }
    text.split(' ')
        .map(|word| if word.contains('@') { REDACTED } else { word })
        .collect::<Vec<_>>()
        .join(" ")
}

/// [`scrub`] for each `; `-separated part, except parts that only say `property <name> should
/// not exist`: they name our own field names, never a value, and the job reads them to leave a
/// field the academy refuses out of the write (see [`crate::sync::unsupported_fields`]).
pub(crate) fn scrub_keeping_properties(message: &str, submitted: &[&str]) -> String {
    message
        .split("; ")
        .map(|part| {
            if crate::sync::unsupported_fields::only_refused_properties(part) {
                part.to_string()
            } else {
                scrub(part, submitted)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Maps a non-success status (after retries) to an error; `submitted` are values to scrub.
pub(crate) async fn error_for(
    endpoint: &'static str,
    response: Response,
    submitted: &[&str],
) -> ReteachError {
    let status = response.status();
    if let Some(status) = redirect_status(status) {
        // Never followed (see `build_http_client`); the body is not read.
        return ReteachError::Redirected { endpoint, status };
    }
    let body = read_error_body(response, MAX_ERROR_BODY_BYTES).await;
    let message = scrub_keeping_properties(&nest_message(status, &body), submitted);
    match status {
        StatusCode::UNAUTHORIZED => ReteachError::Unauthorized { message },
        StatusCode::FORBIDDEN => ReteachError::Forbidden { endpoint, message },
        StatusCode::NOT_FOUND => ReteachError::NotFound {
            what: format!("the resource of {endpoint}"),
        },
        StatusCode::TOO_MANY_REQUESTS => ReteachError::Unavailable {
            message: format!("{endpoint}: rate limited (HTTP 429)"),
        },
        s if s.is_server_error() => ReteachError::Unavailable {
            message: format!("{endpoint}: HTTP {}", s.as_u16()),
        },
        _ => ReteachError::Rejected {
            endpoint,
            message: format!("HTTP {}: {message}", status.as_u16()),
        },
    }
}

/// Maps a request that got no usable response even after retries.
pub(crate) fn unavailable(error: SendError) -> ReteachError {
    ReteachError::Unavailable {
        message: error.to_string(),
    }
}

/// Reads a JSON body of at most [`MAX_JSON_BYTES`]; a body that breaks off mid-way is transient,
/// one that is not JSON or too large is `Malformed`.
pub(crate) async fn read_json(
    endpoint: &'static str,
    response: Response,
) -> Result<Value, BodyError> {
    let bytes = read_capped(response, MAX_JSON_BYTES)
        .await
        .map_err(|error| match error {
            BodyReadError::Broken(message) => {
                BodyError::Broken(format!("{endpoint}: response body broken: {message}"))
            }
            too_large @ BodyReadError::TooLarge { .. } => {
                BodyError::Final(ReteachError::Malformed {
                    endpoint,
                    message: too_large.to_string(),
                })
            }
        })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        BodyError::Final(ReteachError::Malformed {
            endpoint,
            message: format!("not JSON: {e}"),
        })
    })
}

/// Why a response body could not be used.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The connection broke while reading; worth another attempt.
    Broken(String),
    /// Retrying will not help.
    Final(ReteachError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_may_be_an_array() {
        let body = br#"{"statusCode":422,"message":["email must be an email","gender must be one of"],"error":"Unprocessable Entity"}"#;
        assert_eq!(
            nest_message(StatusCode::UNPROCESSABLE_ENTITY, body),
            "email must be an email; gender must be one of"
        );
    }

    #[test]
    fn non_json_body_falls_back_to_status_text() {
        assert_eq!(
            nest_message(StatusCode::BAD_GATEWAY, b"<html>"),
            "Bad Gateway"
        );
    }

    #[test]
    fn scrub_removes_emails_and_submitted_values() {
        let text = scrub(
            "email jane.doe@example.com already used by Jane Doe",
            &["Jane Doe"],
        );
        assert_eq!(text, "email <redacted> already used by <redacted>");
    }

    #[test]
    fn refused_properties_survive_scrubbing_other_parts_do_not() {
        let text = scrub_keeping_properties(
            "property position should not exist; email jane@example.com taken by Jane Doe",
            &["Jane Doe", "on", "position"],
        );
        assert_eq!(
            text,
            "property position should not exist; email <redacted> taken by <redacted>"
        );
    }

    mod never_panics {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn reading_an_error_body_never_panics(
                status in 100u16..600,
                body in prop::collection::vec(any::<u8>(), 0..200),
            ) {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                let _ = nest_message(status, &body);
            }

            #[test]
            fn reading_a_nest_shaped_body_never_panics(
                message in ".{0,40}",
                parts in prop::collection::vec(".{0,20}", 0..4),
            ) {
                let body = serde_json::json!({"statusCode": 400, "message": parts, "error": message});
                let _ = nest_message(StatusCode::BAD_REQUEST, body.to_string().as_bytes());
            }

            #[test]
            fn scrubbing_never_panics_and_removes_the_submitted_values(
                message in ".{0,60}",
                // Upper case: a value can never be part of the lower-case replacement text.
                value in "[A-Z0-9]{2,12}",
            ) {
                let text = format!("{message} {value} {message}");
                let scrubbed = scrub(&text, &[value.as_str()]);
                prop_assert!(!scrubbed.contains(&value));
            }
        }
    }
}
