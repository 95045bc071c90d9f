//! Reading documents: v1 `GET /v1/company/document-categories` (no v2 equivalent) and v2
//! `GET /v2/document-management/documents` (cursor pagination via `_meta.links.next.href`).

use std::collections::HashSet;

use serde_json::Value;

use super::auth::TokenKind;
use super::client::{json_array, PersonioClient};
use super::config::Lane;
use super::PersonioError;
use crate::sync::{DocumentCategory, StoredDocument};

pub const CATEGORIES: &str = "GET /v1/company/document-categories";
pub const DOCUMENTS: &str = "GET /v2/document-management/documents";
/// Page size of the v2 listing.
const DOCUMENT_PAGE_SIZE: u32 = 100;
/// Upper bound on pages of one employee's documents.
const MAX_DOCUMENT_PAGES: usize = 1_000;

impl PersonioClient {
    pub(super) async fn fetch_document_categories(
        &self,
    ) -> Result<Vec<DocumentCategory>, PersonioError> {
        let url = self.url("/v1/company/document-categories")?;
        let json = self
            .get_json(CATEGORIES, TokenKind::V1, Lane::Documents, &url)
            .await?;
        let data = json_array(&json, "data", CATEGORIES)?;
        Ok(data.iter().filter_map(parse_category).collect())
    }

    pub(super) async fn fetch_documents(
        &self,
        employee_id: &str,
        category_id: i64,
    ) -> Result<Vec<StoredDocument>, PersonioError> {
        let mut url = self.url("/v2/document-management/documents")?;
        url.query_pairs_mut()
            .append_pair("owner_id", employee_id)
            .append_pair("category_id", &category_id.to_string())
            .append_pair("limit", &DOCUMENT_PAGE_SIZE.to_string());
        let mut documents = Vec::new();
        let mut visited = HashSet::new();
        for _ in 0..MAX_DOCUMENT_PAGES {
            visited.insert(url.to_string());
            let json = self
                .get_json(DOCUMENTS, TokenKind::V2, Lane::Documents, &url)
                .await?;
            let data = json_array(&json, "_data", DOCUMENTS)?;
            documents.extend(data.iter().filter_map(parse_document));
            let Some(next) = next_link(&json) else {
                break;
            };
            url = self.follow_link(DOCUMENTS, next)?;
            if visited.contains(url.as_str()) {
                // Personio has been seen to return a `next` link to the same page.
                tracing::warn!("Personio repeated a document page cursor; stopping");
                break;
            }
        }
        Ok(documents)
    }
}

fn next_link(json: &Value) -> Option<&str> {
    json.pointer("/_meta/links/next/href")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|href| !href.is_empty())
}

/// `{id, type: "DocumentCategory", attributes: {name}}`; unreadable entries are dropped.
fn parse_category(value: &Value) -> Option<DocumentCategory> {
    let id = lenient_i64(value.get("id")?)?;
    let name = value
        .pointer("/attributes/name")
        .or_else(|| value.get("name"))
        .and_then(Value::as_str)?
        .trim()
        .to_string();
    Some(DocumentCategory { id, name })
}

/// A v2 document: `id` (string), `name`, `comment`, `category.id`.
fn parse_document(value: &Value) -> Option<StoredDocument> {
    let id = match value.get("id")? {
        Value::String(text) if !text.trim().is_empty() => text.trim().to_string(),
        Value::Number(number) => number.to_string(),
        _ => return None,
    };
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    Some(StoredDocument {
        id,
        name: text("name").or_else(|| text("title")).unwrap_or_default(),
        comment: text("comment"),
        category_id: value
            .pointer("/category/id")
            .or_else(|| value.get("category_id"))
            .and_then(lenient_i64),
    })
}

fn lenient_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_categories_with_number_or_string_ids() {
        assert_eq!(
            parse_category(
                &json!({"id": 1, "type": "DocumentCategory", "attributes": {"name": "Other documents"}})
            ),
            Some(DocumentCategory {
                id: 1,
                name: "Other documents".into()
            })
        );
        assert_eq!(
            parse_category(&json!({"id": "7", "attributes": {"name": " Certificates "}})),
            Some(DocumentCategory {
                id: 7,
                name: "Certificates".into()
            })
        );
        assert_eq!(parse_category(&json!({"attributes": {"name": "x"}})), None);
    }

    #[test]
    fn reads_v2_documents() {
        let document = parse_document(&json!({
            "id": "doc-1", "name": "Certificate", "comment": "reteach-certificate:9",
            "category": {"id": "12"}, "owner": {"id": "3"}
        }))
        .unwrap();
        assert_eq!(document.id, "doc-1");
        assert_eq!(document.comment.as_deref(), Some("reteach-certificate:9"));
        assert_eq!(document.category_id, Some(12));
        assert_eq!(parse_document(&json!({"name": "no id"})), None);
    }

    #[test]
    fn next_link_ignores_blank_href() {
        assert_eq!(
            next_link(&json!({"_meta": {"links": {"next": {"href": ""}}}})),
            None
        );
        assert_eq!(
            next_link(&json!({"_meta": {"links": {"next": {"href": "/v2/x?cursor=a"}}}})),
            Some("/v2/x?cursor=a")
        );
    }
}
