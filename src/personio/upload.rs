//! `POST /v1/company/documents`: multipart upload of one certificate.
//!
//! The request always carries a `Content-Length`: whether Personio accepts a chunked upload is
//! undocumented, while every server accepts a known length. A PDF of known length (the reteach
//! client spools every download and knows its exact size) is streamed through; one of unknown
//! length is first read into memory, at most [`MAX_FILE_BYTES`].
//!
//! Personio has no idempotency key, so the request is sent exactly once. The error says whether
//! Personio may have stored the document anyway (`maybe_applied`): a timeout, reset or 5xx after
//! the body went out may have been processed; a 429 or other 4xx was refused before processing.

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::Value;

use super::auth::TokenKind;
use super::client::{with_fields, PersonioClient};
use super::error_body::parse_error_body;
use super::{DocumentUpload, PersonioError};
use crate::upstream::{
    read_capped, read_error_body, spool, PdfStream, RetryPolicy, SpoolError, SpoolOptions,
    MAX_ERROR_BODY_BYTES, MAX_JSON_BYTES,
};

pub const UPLOAD: &str = "POST /v1/company/documents";
/// Personio's title limit.
pub const MAX_TITLE_CHARS: usize = 255;
/// Personio's file size limit (30 MB).
pub const MAX_FILE_BYTES: u64 = crate::upstream::MAX_PDF_BYTES;
/// reqwest's timeout covers the whole request, and the body streams at the pace of the reteach
/// download feeding it: a 30 MB certificate needs more than the 30 s of an API call (the reteach
/// download allows the same).
pub(super) const UPLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

impl PersonioClient {
    pub(super) async fn send_document(
        &self,
        upload: DocumentUpload,
    ) -> Result<String, PersonioError> {
        validate(&upload)?;
        let upload = with_known_length(upload).await?;
        let token = self.token(TokenKind::V1).await?;
        let url = self.url("/v1/company/documents")?;
        let mut form = Some(build_form(upload)?);
        let sent = self
            .send_with_policy(
                UPLOAD,
                &RetryPolicy::once(),
                Some(&self.limiters.uploads),
                || {
                    let request = self
                        .http
                        .post(url.clone())
                        .timeout(self.upload_timeout)
                        .bearer_auth(&token.0);
                    match form.take() {
                        Some(form) => request.multipart(form),
                        // Only reachable if the policy allowed a second attempt: send nothing.
                        None => request,
                    }
                },
            )
            .await;
        let response = sent.map_err(|failure| failure.into_personio(true))?;
        let status = response.status();
        let body = if status.is_success() {
            match read_capped(response, MAX_JSON_BYTES).await {
                Ok(body) => body,
                Err(error) => {
                    return Err(PersonioError::Unavailable {
                        message: format!(
                            "{UPLOAD}: HTTP {status} but the answer was unusable: {error}"
                        ),
                        maybe_applied: true,
                        trace_id: None,
                    })
                }
            }
        } else {
            read_error_body(response, MAX_ERROR_BODY_BYTES).await
        };
        if status.is_success() {
            return document_id(&body).ok_or_else(|| PersonioError::Unavailable {
                message: format!("{UPLOAD}: HTTP {status} without a readable document id"),
                maybe_applied: true,
                trace_id: None,
            });
        }
        if status == StatusCode::UNAUTHORIZED {
            // The stream is spent, so it cannot be re-sent here; the next attempt uploads again.
            // Re-authenticating now tells an expired token (transient) from revoked credentials,
            // which must stop the sync as a configuration problem rather than look like an outage.
            self.invalidate(TokenKind::V1, &token).await;
            self.token(TokenKind::V1).await?;
        }
        Err(upload_error(status.as_u16(), &body))
    }
}

fn validate(upload: &DocumentUpload) -> Result<(), PersonioError> {
    let reject = |message: String| PersonioError::Rejected {
        endpoint: UPLOAD,
        message,
    };
    let title_chars = upload.title.chars().count();
    if upload.title.trim().is_empty() {
        return Err(reject("the document title is empty".to_string()));
    }
    if title_chars > MAX_TITLE_CHARS {
        return Err(reject(format!(
            "the document title has {title_chars} characters; Personio allows {MAX_TITLE_CHARS}"
        )));
    }
    if let Some(length) = upload.pdf.length.filter(|length| *length > MAX_FILE_BYTES) {
        return Err(reject(format!(
            "the file has {length} bytes; Personio allows {MAX_FILE_BYTES}"
        )));
    }
    if upload.employee_id.trim().is_empty() {
        return Err(reject("the employee id is empty".to_string()));
    }
    Ok(())
}

/// The upload with a PDF of known length: as it is, or read into memory (bounded) when its length
/// is unknown. Nothing is sent to Personio before this succeeds.
async fn with_known_length(mut upload: DocumentUpload) -> Result<DocumentUpload, PersonioError> {
    if upload.pdf.length.is_some() {
        return Ok(upload);
    }
    let pdf = std::mem::replace(&mut upload.pdf, PdfStream::from_bytes(Vec::new()));
    upload.pdf = spool(pdf.body, MAX_FILE_BYTES, &SpoolOptions::default())
        .await
        .map_err(|error| match error {
            SpoolError::TooLarge { .. } => PersonioError::Rejected {
                endpoint: UPLOAD,
                message: format!("the file has more than {MAX_FILE_BYTES} bytes; Personio allows {MAX_FILE_BYTES}"),
            },
            other => PersonioError::Unavailable {
                message: format!("{UPLOAD}: the file could not be read before the upload: {other}"),
                maybe_applied: false,
                trace_id: None,
            },
        })?;
    Ok(upload)
}

fn build_form(upload: DocumentUpload) -> Result<Form, PersonioError> {
    let DocumentUpload {
        employee_id,
        category_id,
        title,
        date,
        comment,
        file_name,
        pdf,
    } = upload;
    let body = reqwest::Body::wrap_stream(pdf.body);
    // Every part has a length, so reqwest sends the request's `Content-Length`.
    let part = Part::stream_with_length(body, pdf.length.unwrap_or_default());
    let file_name = if file_name.trim().is_empty() {
        "certificate.pdf".to_string()
    } else {
        file_name
    };
    let file = part
        .file_name(file_name)
        .mime_str("application/pdf")
        .map_err(|e| PersonioError::Config(format!("cannot build the upload: {e}")))?;
    Ok(Form::new()
        .part("file", file)
        .text("title", title)
        .text("employee_id", employee_id.trim().to_string())
        .text("category_id", category_id.to_string())
        .text("date", date.format("%Y-%m-%d").to_string())
        .text("comment", comment))
}

/// `data.id` of the 201 body, a number or a string.
fn document_id(body: &[u8]) -> Option<String> {
    let json: Value = serde_json::from_slice(body).ok()?;
    match json.pointer("/data/id")? {
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_string()),
        _ => None,
    }
}

/// A refused upload: nothing was stored.
fn upload_error(status: u16, body: &[u8]) -> PersonioError {
    let parsed = parse_error_body(status, body);
    match status {
        403 => PersonioError::Forbidden {
            endpoint: UPLOAD,
            message: parsed.message,
        },
        404 => PersonioError::NotFound {
            what: "the employee or document category".to_string(),
            message: parsed.message,
        },
        400 | 413 | 422 => PersonioError::Rejected {
            endpoint: UPLOAD,
            message: with_fields(parsed.message, &parsed.fields),
        },
        _ => PersonioError::Unavailable {
            message: format!("{UPLOAD}: HTTP {status}: {}", parsed.message),
            maybe_applied: false,
            trace_id: parsed.trace_id,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_document_id_as_number_or_string() {
        assert_eq!(
            document_id(br#"{"success":true,"data":{"id":17,"type":"Document"}}"#),
            Some("17".to_string())
        );
        assert_eq!(
            document_id(br#"{"success":true,"data":{"id":"abc"}}"#),
            Some("abc".to_string())
        );
        assert_eq!(document_id(br#"{"success":true,"data":{}}"#), None);
        assert_eq!(document_id(b"not json"), None);
    }

    #[test]
    fn rejection_names_fields_but_not_values() {
        let body = br#"{"success":false,"error":{"code":0,"message":"The given data was invalid.","error_data":{"title":["The title Max Mustermann is invalid"]}}}"#;
        match upload_error(422, body) {
            PersonioError::Rejected { message, .. } => {
                assert_eq!(message, "The given data was invalid. (fields: title)");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn refusals_are_not_applied() {
        for status in [401, 408, 429] {
            match upload_error(status, b"{}") {
                PersonioError::Unavailable { maybe_applied, .. } => assert!(!maybe_applied),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(matches!(
            upload_error(404, b"{}"),
            PersonioError::NotFound { .. }
        ));
    }
}
