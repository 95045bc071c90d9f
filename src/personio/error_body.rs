//! Personio's error bodies, read without trusting their shape:
//! v1 `{success: false, error: {code, message, error_data}}`, v2 problem+json
//! `{personio_trace_id, errors: [{title, detail}]}` and the v2 OAuth error
//! `{error, error_description, trace_id}`.

use serde_json::Value;

/// What an error body said, reduced to what may be shown to a user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorBody {
    /// A short human-readable message (Personio's, truncated).
    pub message: String,
    /// Keys of v1 `error_data` (field names only; their messages may repeat submitted values).
    pub fields: Vec<String>,
    /// `personio_trace_id` / `trace_id`, which Personio support asks for.
    pub trace_id: Option<String>,
}

/// Longest message taken over from an upstream body.
const MAX_MESSAGE_CHARS: usize = 200;

/// Reads any of Personio's error shapes; a body that is none of them yields a generic message.
pub fn parse_error_body(status: u16, body: &[u8]) -> ErrorBody {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return ErrorBody {
            message: format!("HTTP {status}"),
            ..ErrorBody::default()
        };
    };
    let trace_id = ["personio_trace_id", "trace_id"]
        .iter()
        .find_map(|key| json.get(key).and_then(Value::as_str))
        .map(str::to_string);
    let message = v1_message(&json)
        .or_else(|| v2_message(&json))
        .or_else(|| oauth_message(&json))
        .map(|message| truncate(message.trim()))
        .filter(|message| !message.is_empty())
        .unwrap_or_else(|| format!("HTTP {status}"));
    let fields = json
        .pointer("/error/error_data")
        .and_then(Value::as_object)
        .map(|data| data.keys().cloned().collect())
        .unwrap_or_default();
    ErrorBody {
        message,
        fields,
        trace_id,
    }
}

fn v1_message(json: &Value) -> Option<String> {
    json.pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn v2_message(json: &Value) -> Option<String> {
    let errors = json.get("errors")?.as_array()?;
    let parts: Vec<String> = errors
        .iter()
        .filter_map(|error| {
            let title = error.get("title").and_then(Value::as_str);
            let detail = error.get("detail").and_then(Value::as_str);
            match (title, detail) {
                (Some(title), Some(detail)) => Some(format!("{title}: {detail}")),
                (one, other) => one.or(other).map(str::to_string),
            }
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn oauth_message(json: &Value) -> Option<String> {
    let error = json.get("error").and_then(Value::as_str);
    let description = json.get("error_description").and_then(Value::as_str);
    match (error, description) {
        (Some(error), Some(description)) => Some(format!("{error}: {description}")),
        (one, other) => one.or(other).map(str::to_string),
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(MAX_MESSAGE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v1_error_with_error_data_keys() {
        let body = br#"{"success":false,"error":{"code":0,"message":"The given data was invalid.","error_data":{"file":["The file must be a file of type: pdf"],"title":["too long"]}}}"#;
        let parsed = parse_error_body(422, body);
        assert_eq!(parsed.message, "The given data was invalid.");
        assert_eq!(parsed.fields, vec!["file".to_string(), "title".to_string()]);
        assert_eq!(parsed.trace_id, None);
    }

    #[test]
    fn reads_v2_problem_with_trace_id() {
        let body = br#"{"personio_trace_id":"abc-123","timestamp":"2021-05-28T11:17:30.000Z","errors":[{"title":"Bad request","detail":"owner_id is required"}]}"#;
        let parsed = parse_error_body(400, body);
        assert_eq!(parsed.message, "Bad request: owner_id is required");
        assert_eq!(parsed.trace_id.as_deref(), Some("abc-123"));
    }

    #[test]
    fn reads_oauth_error() {
        let body = br#"{"error":"invalid_client","error_description":"Client authentication failed","trace_id":"t-1"}"#;
        let parsed = parse_error_body(401, body);
        assert_eq!(
            parsed.message,
            "invalid_client: Client authentication failed"
        );
        assert_eq!(parsed.trace_id.as_deref(), Some("t-1"));
    }

    #[test]
    fn falls_back_to_status_for_unknown_bodies() {
        assert_eq!(
            parse_error_body(502, b"<html>bad gateway</html>").message,
            "HTTP 502"
        );
        assert_eq!(parse_error_body(500, b"{}").message, "HTTP 500");
    }
}
