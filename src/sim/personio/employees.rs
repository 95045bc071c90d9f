//! `GET /v1/company/employees` and `GET /v1/company/employees/{id}`.
//!
//! As on the real API: `limit` 1..=100 (else 400), `offset` is a record offset, `attributes[]` is a
//! projection on top of the credential's whitelist (`id` always returned), `updated_since` returns
//! every changed employee in one response (limit/offset ignored) and, with `attributes[]`, only
//! those with a change in a listed attribute; `email` filters exactly.

use axum::extract::Path;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::{json, Map, Value};

use super::auth::Dialect;
use super::employee::StoredEmployee;
use super::gate::{Admitted, Gate};
use super::rate_limit::Limited;
use super::responses::v1_error;
use super::state::SimState;

/// The gate of both endpoints: the employee bucket, v1 errors.
pub(super) struct V1Employees;

impl Gate for V1Employees {
    const LIMITED: Option<Limited> = Some(Limited::Employees);
    const DIALECT: Dialect = Dialect::V1;
}

/// Largest `limit` since 2025-01-31.
const MAX_LIMIT: usize = 100;

/// The query of one list request.
#[derive(Debug, Default)]
struct ListQuery {
    limit: Option<String>,
    offset: Option<String>,
    email: Option<String>,
    updated_since: Option<String>,
    attributes: Vec<String>,
}

fn read_query(uri: &Uri) -> ListQuery {
    let mut query = ListQuery::default();
    let raw = uri.query().unwrap_or_default();
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let value = value.into_owned();
        match key.as_ref() {
            "limit" => query.limit = Some(value),
            "offset" => query.offset = Some(value),
            "email" => query.email = Some(value),
            "updated_since" => query.updated_since = Some(value),
            "attributes[]" | "attributes" => query.attributes.push(value),
            _ => {}
        }
    }
    query
}

/// `limit`, `offset` and `updated_since` of a listing, or Personio's message for a bad one.
fn paging(
    query: &ListQuery,
    default_limit: usize,
) -> Result<(usize, usize, Option<NaiveDateTime>), &'static str> {
    let number = |text: &Option<String>| text.as_deref().map(str::trim).map(str::parse::<usize>);
    let limit = match number(&query.limit) {
        None => default_limit,
        Some(Ok(limit)) if (1..=MAX_LIMIT).contains(&limit) => limit,
        Some(_) => return Err("The limit must be between 1 and 100."),
    };
    let offset = match number(&query.offset) {
        None => 0,
        Some(Ok(offset)) => offset,
        Some(Err(_)) => return Err("The offset must be a positive integer."),
    };
    let since = match query.updated_since.as_deref().map(parse_updated_since) {
        None => None,
        Some(Some(since)) => Some(since),
        Some(None) => {
            return Err("The updated since does not match the format Y-m-d\\TH:i:s.");
        }
    };
    Ok((limit, offset, since))
}

pub(super) async fn list(uri: Uri, Admitted { sim, .. }: Admitted<V1Employees>) -> Response {
    let query = read_query(&uri);
    let (limit, offset, since) = match paging(&query, sim.config().default_limit) {
        Ok(paging) => paging,
        Err(message) => return v1_error(StatusCode::BAD_REQUEST, message),
    };
    let state = sim.state();
    let selected: Vec<&StoredEmployee> = state
        .employees
        .values()
        .filter(|e| since.is_none_or(|since| e.changed_since(since.and_utc(), &query.attributes)))
        .filter(|e| {
            // `email` is ignored together with `updated_since`.
            since.is_some()
                || query
                    .email
                    .as_deref()
                    .is_none_or(|email| e.seed.email.as_deref() == Some(email))
        })
        .collect();
    let total = selected.len();
    let page: Vec<&StoredEmployee> = if since.is_some() {
        selected
    } else {
        selected.into_iter().skip(offset).take(limit).collect()
    };
    let data: Vec<Value> = page
        .iter()
        .map(|employee| employee_json(&state, employee, &query.attributes))
        .collect();
    let (shown_offset, shown_limit) = if since.is_some() {
        (0, total.max(1))
    } else {
        (offset, limit)
    };
    let echo = |passed: bool, number: usize| {
        if passed && sim.config().echo_paging_as_strings {
            json!(number.to_string())
        } else {
            json!(number)
        }
    };
    let body = json!({
        "success": true,
        "metadata": {
            "total_elements": total,
            "current_page": shown_offset / shown_limit,
            "total_pages": total.div_ceil(shown_limit),
        },
        "offset": echo(query.offset.is_some(), shown_offset),
        "limit": echo(query.limit.is_some(), shown_limit),
        "data": data,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

pub(super) async fn one(
    Path(id): Path<String>,
    Admitted { sim, .. }: Admitted<V1Employees>,
) -> Response {
    let state = sim.state();
    let employee = id
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|id| state.employees.get(&id));
    match employee {
        Some(employee) => {
            let body = json!({"success": true, "data": employee_json(&state, employee, &[])});
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        None => v1_error(StatusCode::NOT_FOUND, "Employee not found"),
    }
}

/// `YYYY-MM-DDTHH:MM:SS` or `YYYY-MM-DD`, read in the simulator clock's UTC.
fn parse_updated_since(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .map(|date| date.and_time(NaiveTime::MIN))
        })
}

/// `{type: "Employee", attributes}` with the whitelist and the requested projection applied.
fn employee_json(state: &SimState, employee: &StoredEmployee, requested: &[String]) -> Value {
    let attributes: Map<String, Value> = employee
        .render_attributes()
        .into_iter()
        .filter(|(key, _)| state.may_read(key))
        .filter(|(key, _)| key == "id" || requested.is_empty() || requested.contains(key))
        .collect();
    json!({"type": "Employee", "attributes": attributes})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_updated_since_forms() {
        assert!(parse_updated_since("2026-11-24T10:00:00").is_some());
        assert!(parse_updated_since("2026-11-24").is_some());
        assert!(parse_updated_since("2026-11-24T10:00:00+01:00").is_none());
        assert!(parse_updated_since("yesterday").is_none());
    }

    #[test]
    fn reads_repeated_attribute_keys() {
        let uri: Uri = "/v1/company/employees?limit=5&attributes%5B%5D=email&attributes[]=gender"
            .parse()
            .unwrap();
        let query = read_query(&uri);
        assert_eq!(query.limit.as_deref(), Some("5"));
        assert_eq!(
            query.attributes,
            vec!["email".to_string(), "gender".to_string()]
        );
    }
}
