//! `POST /v1/company/documents`: multipart upload with Laravel-style validation (every problem
//! at once, 422 with `error_data`), 404 for unknown employees or categories, 201 with the document.
//! The file is counted and checksummed while streaming; its bytes are not kept.

use std::collections::BTreeMap;

use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde_json::{json, Value};

use super::auth::Dialect;
use super::gate::{Admitted, Gate};
use super::rate_limit::Limited;
use super::responses::{v1_error_with_code, v1_validation_error};
use super::state::{fnv1a, SimDocument, FNV_OFFSET};
use super::PersonioSim;

/// File extensions the upload accepts (from Personio's 422 message).
#[rustfmt::skip]
pub const ALLOWED_EXTENSIONS: [&str; 45] = [
    "pdf", "docx", "doc", "jpg", "zip", "png", "txt", "jpeg", "odt", "xlsx", "rtf", "htm", "xls",
    "p7s", "pptx", "pages", "rar", "ppt", "gif", "tif", "html", "msg", "asc", "tiff", "wps",
    "bmp", "7z", "csv", "ics", "vcf", "dotx", "numbers", "eps", "gz", "ods", "otf", "odp", "odg",
    "rtfd", "txz", "webarchive", "xml", "xps", "md", "fax",
];
const MAX_TITLE_CHARS: usize = 255;

/// The parts of an upload as received.
#[derive(Default)]
struct UploadParts {
    file_name: Option<String>,
    size: u64,
    checksum: u64,
    title: Option<String>,
    employee_id: Option<String>,
    category_id: Option<String>,
    date: Option<String>,
    comment: Option<String>,
}

/// The gate of the upload: the upload bucket, v1 errors.
pub(super) struct V1Uploads;

impl Gate for V1Uploads {
    const LIMITED: Option<Limited> = Some(Limited::Uploads);
    const DIALECT: Dialect = Dialect::V1;
}

pub(super) async fn upload(
    Admitted { sim, .. }: Admitted<V1Uploads>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if content_length.is_none() && sim.state().require_content_length {
        return v1_error_with_code(StatusCode::LENGTH_REQUIRED, 0, "Length Required");
    }
    // Fields sent any other way than as form parts are simply missing (→ 422 "required").
    let parts = match multipart {
        Ok(multipart) => match read_parts(multipart).await {
            Ok(parts) => parts,
            Err(message) => return v1_error_with_code(StatusCode::BAD_REQUEST, 0, &message),
        },
        Err(_) => UploadParts::default(),
    };
    let errors = validate(&parts, sim.config().max_upload_bytes);
    if !errors.is_empty() {
        return v1_validation_error(&errors);
    }
    let (Some(employee_id), Some(category_id)) = (
        parts.employee_id.as_deref().and_then(parse_id),
        parts.category_id.as_deref().and_then(parse_id),
    ) else {
        return v1_validation_error(&BTreeMap::new());
    };
    store_upload(&sim, parts, employee_id, category_id, content_length)
}

async fn read_parts(mut multipart: Multipart) -> Result<UploadParts, String> {
    let mut parts = UploadParts::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(parts),
            Err(_) => return Err("The request body is not valid multipart/form-data.".into()),
        };
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            parts.file_name = Some(field.file_name().unwrap_or_default().to_string());
            let (size, checksum) = count_bytes(field).await?;
            parts.size = size;
            parts.checksum = checksum;
            continue;
        }
        let text = field
            .text()
            .await
            .map_err(|_| "The request body is not valid multipart/form-data.".to_string())?;
        match name.as_str() {
            "title" => parts.title = Some(text),
            "employee_id" => parts.employee_id = Some(text),
            "category_id" => parts.category_id = Some(text),
            "date" => parts.date = Some(text),
            "comment" => parts.comment = Some(text),
            _ => {}
        }
    }
}

/// Reads the file part chunk by chunk, keeping only its size and checksum.
async fn count_bytes(mut field: Field<'_>) -> Result<(u64, u64), String> {
    let mut size = 0u64;
    let mut checksum = FNV_OFFSET;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                size += chunk.len() as u64;
                checksum = fnv1a(checksum, &chunk);
            }
            Ok(None) => return Ok((size, checksum)),
            Err(_) => return Err("The file upload was interrupted.".into()),
        }
    }
}

/// Laravel-style validation, every problem at once.
fn validate(parts: &UploadParts, max_bytes: u64) -> BTreeMap<String, Vec<String>> {
    let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut fail = |field: &str, message: String| {
        errors.entry(field.to_string()).or_default().push(message);
    };
    match parts.file_name.as_deref() {
        None => fail("file", "The file field is required.".into()),
        Some(name) => {
            if parts.size > max_bytes {
                let kilobytes = max_bytes / 1024;
                fail(
                    "file",
                    format!("The file may not be greater than {kilobytes} kilobytes."),
                );
            }
            let extension = name.rsplit_once('.').map(|(_, ext)| ext.to_lowercase());
            if !extension.is_some_and(|ext| ALLOWED_EXTENSIONS.contains(&ext.as_str())) {
                let list = ALLOWED_EXTENSIONS.join(", ");
                fail("file", format!("The file must be a file of type: {list}."));
            }
        }
    }
    match parts.title.as_deref().map(str::trim) {
        None | Some("") => fail("title", "The title field is required.".into()),
        Some(title) if title.chars().count() > MAX_TITLE_CHARS => fail(
            "title",
            format!("The title may not be greater than {MAX_TITLE_CHARS} characters."),
        ),
        Some(_) => {}
    }
    for (field, label, value) in [
        ("employee_id", "employee id", &parts.employee_id),
        ("category_id", "category id", &parts.category_id),
    ] {
        match value.as_deref() {
            None | Some("") => fail(field, format!("The {label} field is required.")),
            Some(text) if parse_id(text).is_none() => {
                fail(field, format!("The {label} must be an integer."))
            }
            Some(_) => {}
        }
    }
    if let Some(date) = parts.date.as_deref().filter(|d| !d.trim().is_empty()) {
        if NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").is_err() {
            fail("date", "The date does not match the format Y-m-d.".into());
        }
    }
    errors
}

pub(super) fn parse_id(text: &str) -> Option<i64> {
    text.trim().parse::<i64>().ok().filter(|id| *id > 0)
}

fn store_upload(
    sim: &PersonioSim,
    parts: UploadParts,
    employee_id: i64,
    category_id: i64,
    content_length: Option<u64>,
) -> Response {
    let now = sim.now();
    let mut state = sim.state();
    let Some(employee) = state.employees.get(&employee_id).cloned() else {
        let message = format!("No query results for model [Employee] {employee_id}");
        return v1_error_with_code(StatusCode::NOT_FOUND, 0, &message);
    };
    let Some(category) = state
        .categories
        .iter()
        .find(|c| c.id == category_id)
        .cloned()
    else {
        let message = format!("No query results for model [DocumentCategory] {category_id}");
        return v1_error_with_code(StatusCode::NOT_FOUND, 0, &message);
    };
    let id = state.next_document_id;
    state.next_document_id += 1;
    let document = SimDocument {
        id,
        owner_id: employee_id,
        category_id,
        title: parts.title.unwrap_or_default().trim().to_string(),
        date: parts
            .date
            .as_deref()
            .and_then(|d| NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").ok()),
        comment: parts.comment.filter(|c| !c.is_empty()),
        file_name: parts.file_name.unwrap_or_default(),
        size: parts.size,
        request_content_length: content_length,
        checksum: parts.checksum,
        created_at: now,
    };
    state.documents.push(document.clone());
    let attributes = employee.render_attributes();
    let pick = |key: &str| attributes.get(key).cloned().unwrap_or(Value::Null);
    let body = json!({"success": true, "data": {
        "id": id,
        "type": "Document",
        "attributes": {
            "title": document.title,
            "date": document.date.map(|d| d.format("%Y-%m-%d").to_string()),
            "comment": document.comment,
            "employee": {"type": "Employee", "attributes": {
                "id": pick("id"), "first_name": pick("first_name"),
                "last_name": pick("last_name"), "email": pick("email"),
            }},
            "category": {"id": category.id, "type": "DocumentCategory",
                         "attributes": {"name": category.name}},
        },
    }});
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_reports_every_problem() {
        let parts = UploadParts {
            file_name: Some("virus.exe".into()),
            size: 10,
            title: Some("x".repeat(256)),
            employee_id: Some("abc".into()),
            ..UploadParts::default()
        };
        let errors = validate(&parts, 100);
        assert!(errors["file"][0].starts_with("The file must be a file of type: pdf"));
        assert_eq!(
            errors["title"],
            vec!["The title may not be greater than 255 characters."]
        );
        assert_eq!(
            errors["employee_id"],
            vec!["The employee id must be an integer."]
        );
        assert_eq!(
            errors["category_id"],
            vec!["The category id field is required."]
        );
    }

    #[test]
    fn validation_refuses_large_files() {
        let parts = UploadParts {
            file_name: Some("c.PDF".into()),
            size: 101,
            title: Some("ok".into()),
            employee_id: Some("1".into()),
            category_id: Some("1".into()),
            ..UploadParts::default()
        };
        let errors = validate(&parts, 100);
        assert_eq!(errors.len(), 1);
        assert!(errors["file"][0].contains("may not be greater than"));
    }
}
