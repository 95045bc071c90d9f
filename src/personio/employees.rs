//! `GET /v1/company/employees`: offset pagination (`limit=100`), attribute projection and the
//! `updated_since` change feed.
//!
//! Stop rules follow the README (§4.1): a page shorter than `limit`, or `offset >=
//! metadata.total_elements` (`total_pages` is unreliable). With `updated_since` Personio may ignore
//! `limit`/`offset` and send every change at once; a page repeating the previous one ends the loop
//! instead of looping forever.

use std::collections::{BTreeSet, HashSet};

use chrono::NaiveDateTime;
use serde_json::Value;
use url::Url;

use super::auth::TokenKind;
use super::client::PersonioClient;
use super::config::Lane;
use super::dates::format_updated_since;
use super::employee_record::{attribute_names, parse_employee};
use super::{AttributeRequest, EmployeeList, PersonioError};
use crate::upstream::{MAX_CHANGE_FEED_BYTES, MAX_JSON_BYTES};

pub const ENDPOINT: &str = "GET /v1/company/employees";
/// Personio's maximum page size since 2025-01-31.
pub const PAGE_SIZE: usize = 100;
/// Upper bound on pages, against a server that never stops (1 million employees).
const MAX_PAGES: usize = 10_000;

/// One page as received.
struct Page {
    records: Vec<Value>,
    total_elements: Option<u64>,
}

impl PersonioClient {
    pub(super) async fn fetch_employees(
        &self,
        updated_since: Option<NaiveDateTime>,
        attributes: &AttributeRequest,
    ) -> Result<EmployeeList, PersonioError> {
        let mut list = EmployeeList::default();
        let mut seen_ids = HashSet::new();
        let mut seen_attributes = BTreeSet::new();
        let mut records_total = 0usize;
        let mut previous_ids: Option<Vec<String>> = None;
        let mut offset = 0usize;
        for _ in 0..MAX_PAGES {
            let page = self
                .employee_page(offset, updated_since, attributes)
                .await?;
            let page_ids: Vec<String> = page
                .records
                .iter()
                .map(|record| super::employee_record::record_id(record).unwrap_or_default())
                .collect();
            if !page_ids.is_empty() && previous_ids.as_ref() == Some(&page_ids) {
                tracing::warn!(
                    offset,
                    "Personio repeated the previous employee page; stopping"
                );
                break;
            }
            let received = page.records.len();
            for record in &page.records {
                records_total += 1;
                seen_attributes.extend(attribute_names(record).map(str::to_string));
                match parse_employee(record) {
                    Ok(employee) => {
                        // A record seen on an earlier page (the list shifted) is kept once.
                        if seen_ids.insert(employee.id.clone()) {
                            list.employees.push(employee);
                        }
                    }
                    Err(skipped) => list.skipped.push(skipped),
                }
            }
            offset += received;
            let ignored_paging = received > PAGE_SIZE;
            let short_page = received < PAGE_SIZE;
            let past_total = page
                .total_elements
                .is_some_and(|total| offset as u64 >= total);
            if ignored_paging || short_page || past_total {
                break;
            }
            previous_ids = Some(page_ids);
        }
        check_required_attributes(attributes.required(), records_total, &seen_attributes)?;
        Ok(list)
    }

    /// `GET /v1/company/employees` for `limit` employees from `offset` on, asking for
    /// `attributes`.
    pub(super) fn employees_url(
        &self,
        limit: usize,
        offset: usize,
        attributes: &AttributeRequest,
    ) -> Result<Url, PersonioError> {
        let mut url = self.url("/v1/company/employees")?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("limit", &limit.to_string())
                .append_pair("offset", &offset.to_string());
            for attribute in attributes.requested() {
                query.append_pair("attributes[]", attribute);
            }
        }
        Ok(url)
    }

    async fn employee_page(
        &self,
        offset: usize,
        updated_since: Option<NaiveDateTime>,
        attributes: &AttributeRequest,
    ) -> Result<Page, PersonioError> {
        let mut url = self.employees_url(PAGE_SIZE, offset, attributes)?;
        if let Some(since) = updated_since {
            url.query_pairs_mut()
                .append_pair("updated_since", &format_updated_since(since));
        }
        // With `updated_since` Personio ignores paging and sends every change at once.
        let max_bytes = if updated_since.is_some() {
            MAX_CHANGE_FEED_BYTES
        } else {
            MAX_JSON_BYTES
        };
        let json = self
            .get_json_within(ENDPOINT, TokenKind::V1, Lane::Employees, &url, max_bytes)
            .await?;
        parse_page(&json)
    }
}

fn parse_page(json: &Value) -> Result<Page, PersonioError> {
    if json.get("success").and_then(Value::as_bool) == Some(false) {
        return Err(PersonioError::Malformed {
            endpoint: ENDPOINT,
            message: "response says success: false".to_string(),
        });
    }
    let records = json
        .get("data")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| PersonioError::Malformed {
            endpoint: ENDPOINT,
            message: "response has no data array".to_string(),
        })?;
    let total_elements = json
        .pointer("/metadata/total_elements")
        .and_then(lenient_u64);
    Ok(Page {
        records,
        total_elements,
    })
}

/// A count sent as a number or, like `offset`/`limit` on some requests, as a string.
fn lenient_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// A required attribute missing from every record means the credential does not whitelist it
/// (Personio omits such attributes silently).
pub(super) fn check_required_attributes(
    required: &[String],
    records: usize,
    seen: &BTreeSet<String>,
) -> Result<(), PersonioError> {
    if records == 0 {
        return Ok(());
    }
    let missing: Vec<String> = required
        .iter()
        .filter(|name| !seen.contains(name.as_str()))
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PersonioError::AttributesNotWhitelisted(missing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_total_elements_as_number_or_string() {
        let page =
            parse_page(&json!({"success": true, "metadata": {"total_elements": "17"}, "data": []}))
                .unwrap();
        assert_eq!(page.total_elements, Some(17));
        let page =
            parse_page(&json!({"success": true, "metadata": {"total_elements": 3}, "data": []}))
                .unwrap();
        assert_eq!(page.total_elements, Some(3));
        let page = parse_page(&json!({"data": []})).unwrap();
        assert_eq!(page.total_elements, None);
    }

    #[test]
    fn page_without_data_is_malformed() {
        assert!(matches!(
            parse_page(&json!({"success": true})),
            Err(PersonioError::Malformed { .. })
        ));
    }

    #[test]
    fn names_missing_required_attributes() {
        let request = AttributeRequest::default();
        let seen: BTreeSet<String> = request
            .required()
            .iter()
            .filter(|name| *name != "email")
            .cloned()
            .collect();
        match check_required_attributes(request.required(), 1, &seen) {
            Err(PersonioError::AttributesNotWhitelisted(names)) => {
                assert_eq!(names, vec!["email".to_string()])
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(check_required_attributes(request.required(), 0, &BTreeSet::new()).is_ok());
        let custom = AttributeRequest::new(["email".to_string(), "dynamic_7".to_string()]);
        match check_required_attributes(custom.required(), 1, &seen) {
            Err(PersonioError::AttributesNotWhitelisted(names)) => {
                assert_eq!(names, vec!["email".to_string(), "dynamic_7".to_string()])
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn the_default_request_is_todays_fixed_set_and_a_custom_one_keeps_the_order() {
        let request = AttributeRequest::default();
        let requested: Vec<&str> = request.requested().collect();
        let today: Vec<&str> = super::super::REQUIRED_ATTRIBUTES
            .iter()
            .chain(super::super::OPTIONAL_ATTRIBUTES.iter())
            .copied()
            .collect();
        assert_eq!(requested, today);
        let custom = AttributeRequest::new(
            ["dynamic_7", "status", "office", "email", "office"].map(String::from),
        );
        assert_eq!(custom.required(), ["email", "office", "dynamic_7"]);
    }
}
