//! `page`/`limit` query parameters as reteach validates them: 1-based pages, default limit 25,
//! at most 250.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::errors::nest_validation;

/// Largest page reteach serves.
pub const MAX_LIMIT: usize = 250;
/// Page size when none is asked for.
pub const DEFAULT_LIMIT: usize = 25;

/// A validated page request; as an extractor, an invalid one is answered before the handler runs.
pub(crate) struct Paging {
    page: usize,
    limit: usize,
}

impl Paging {
    /// Reads `page` and `limit`; invalid values → 400 with class-validator style messages.
    fn from_query(query: &HashMap<String, String>) -> Result<Self, Box<Response>> {
        let mut errors = Vec::new();
        let mut number = |key: &str, default: usize, max: Option<usize>| -> usize {
            let Some(raw) = query.get(key) else {
                return default;
            };
            match raw.parse::<usize>() {
                Ok(0) => {
                    errors.push(format!("{key} must not be less than 1"));
                    default
                }
                Ok(n) if max.is_some_and(|max| n > max) => {
                    errors.push(format!("{key} must not be greater than {}", MAX_LIMIT));
                    default
                }
                Ok(n) => n,
                Err(_) => {
                    errors.push(format!(
                        "{key} must be a number conforming to the specified constraints"
                    ));
                    default
                }
            }
        };
        let page = number("page", 1, None);
        let limit = number("limit", DEFAULT_LIMIT, Some(MAX_LIMIT));
        if errors.is_empty() {
            Ok(Self { page, limit })
        } else {
            Err(Box::new(nest_validation(StatusCode::BAD_REQUEST, errors)))
        }
    }

    /// `{results, resultCount}`: only the items of the requested page are rendered, so listing a
    /// large academy page by page stays linear.
    pub fn render<T>(&self, all: Vec<T>, render: impl FnMut(T) -> Value) -> Value {
        let total = all.len();
        let start = (self.page - 1).saturating_mul(self.limit);
        let results: Vec<Value> = all
            .into_iter()
            .skip(start)
            .take(self.limit)
            .map(render)
            .collect();
        json!({ "results": results, "resultCount": total })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Query(query) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Self::from_query(&query).map_err(|response| *response)
    }
}
