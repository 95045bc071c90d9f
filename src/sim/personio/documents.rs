//! Reading documents: v1 `GET /v1/company/document-categories` and the v2
//! `GET /v2/document-management/documents` listing (`owner_id` required, `limit` 1..=200, opaque
//! cursor, `_data` / `_meta.links.next.href`).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::auth::Dialect;
use super::gate::{Admitted, Gate};
use super::rate_limit::Limited;
use super::responses::v2_problem;
use super::state::SimDocument;
use super::upload::parse_id;
use super::PersonioSim;

/// v2 page size bounds (common `Pagination` component).
const V2_MAX_LIMIT: usize = 200;
const V2_DEFAULT_LIMIT: usize = 100;

/// The gate of the v1 category listing: a token, no bucket of its own, v1 errors.
pub(super) struct V1Categories;

impl Gate for V1Categories {
    const LIMITED: Option<Limited> = None;
    const DIALECT: Dialect = Dialect::V1;
}

/// The gate of the v2 document listing: the document bucket, v2 problems.
pub(super) struct V2Documents;

impl Gate for V2Documents {
    const LIMITED: Option<Limited> = Some(Limited::Documents);
    const DIALECT: Dialect = Dialect::V2;
}

pub(super) async fn categories(Admitted { sim, .. }: Admitted<V1Categories>) -> Response {
    let data: Vec<Value> = sim
        .categories()
        .iter()
        .map(|c| json!({"id": c.id, "type": "DocumentCategory", "attributes": {"name": c.name}}))
        .collect();
    (
        StatusCode::OK,
        axum::Json(json!({"success": true, "data": data})),
    )
        .into_response()
}

/// Cursor = the offset, disguised so clients treat it as opaque.
const CURSOR_KEY: u64 = 0x5eed_c0de_f00d_cafe;

fn encode_cursor(offset: usize) -> String {
    format!("cur_{:016x}", offset as u64 ^ CURSOR_KEY)
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let hex = cursor.strip_prefix("cur_")?;
    let value = u64::from_str_radix(hex, 16).ok()? ^ CURSOR_KEY;
    usize::try_from(value).ok()
}

pub(super) async fn list_v2(Admitted { sim, query, .. }: Admitted<V2Documents>) -> Response {
    let query: BTreeMap<String, String> = query.into_iter().collect();
    let bad = |detail: &str| v2_problem(StatusCode::BAD_REQUEST, "common.invalid_request", detail);
    let Some(owner_id) = query.get("owner_id").and_then(|o| parse_id(o)) else {
        return bad("The owner_id query parameter is required and must be an id.");
    };
    let category_id = match query.get("category_id").map(|c| parse_id(c)) {
        None => None,
        Some(Some(id)) => Some(id),
        Some(None) => return bad("The category_id query parameter must be an id."),
    };
    let limit = match query.get("limit").map(|l| l.trim().parse::<usize>()) {
        None => V2_DEFAULT_LIMIT,
        Some(Ok(limit)) if (1..=V2_MAX_LIMIT).contains(&limit) => limit,
        Some(_) => return bad("Invalid limit: it must be between 1 and 200."),
    };
    let offset = match query.get("cursor").map(|c| decode_cursor(c)) {
        None => 0,
        Some(Some(offset)) => offset,
        Some(None) => return bad("Invalid cursor."),
    };
    let any_owner = sim.state().ignore_owner_filter;
    let documents: Vec<SimDocument> = sim
        .documents()
        .into_iter()
        .filter(|d| any_owner || d.owner_id == owner_id)
        .filter(|d| category_id.is_none_or(|c| d.category_id == c))
        .collect();
    let data: Vec<Value> = documents
        .iter()
        .skip(offset)
        .take(limit)
        .map(document_json)
        .collect();
    let mut links = json!({"self": {"href": sim.link(&query, None)}});
    if offset.saturating_add(limit) < documents.len() {
        links["next"] = json!({"href": sim.link(&query, Some(offset.saturating_add(limit)))});
    }
    (
        StatusCode::OK,
        axum::Json(json!({"_data": data, "_meta": {"links": links}})),
    )
        .into_response()
}

fn document_json(document: &SimDocument) -> Value {
    json!({
        "id": document.id.to_string(),
        "name": document.title,
        "date": document.date.map(|d| d.format("%Y-%m-%d").to_string()),
        "comment": document.comment,
        "category": {"id": document.category_id.to_string()},
        "owner": {"id": document.owner_id.to_string()},
        "document_type": "pdf",
        "size": document.size,
        "created_at": document.created_at.to_rfc3339(),
        "virus_scan": {"status": "safe"},
        "esignature": {"status": "not_requested"},
    })
}

impl PersonioSim {
    /// The listing URL with `cursor` for `offset` (relative or absolute as configured).
    fn link(&self, query: &BTreeMap<String, String>, offset: Option<usize>) -> String {
        let cursor = offset.map(encode_cursor);
        let path = "/v2/document-management/documents";
        self.v2_link(path, query.iter(), cursor.as_deref())
    }

    /// A v2 listing link: `path` with `query` (without its `cursor`) and `cursor`, relative or
    /// absolute as configured (Personio has sent both).
    pub(super) fn v2_link<'a>(
        &self,
        path: &str,
        query: impl Iterator<Item = (&'a String, &'a String)>,
        cursor: Option<&str>,
    ) -> String {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in query.filter(|(key, _)| key.as_str() != "cursor") {
            serializer.append_pair(key, value);
        }
        if let Some(cursor) = cursor {
            serializer.append_pair("cursor", cursor);
        }
        let path = format!("{path}?{}", serializer.finish());
        match self
            .base_url()
            .filter(|_| self.config().absolute_next_links)
        {
            Some(base) => format!("{base}{path}"),
            None => path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(300)), Some(300));
        assert_eq!(decode_cursor("300"), None);
        assert_eq!(decode_cursor("cur_xyz"), None);
    }
}
