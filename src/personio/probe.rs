//! Read-only probes for `preflight`: small, single-page reads that tell whether the credential has
//! what a sync needs, without reading the whole company. Nothing here writes to Personio.

use std::collections::BTreeSet;

use serde_json::Value;

use super::auth::{TokenKind, V1_AUTH as AUTH};
use super::client::{json_array, PersonioClient};
use super::config::Lane;
use super::employee_record::{attribute_names, record_id};
use super::{AttributeRequest, PersonioError, OPTIONAL_ATTRIBUTES};

use super::documents::DOCUMENTS;
use super::employees::ENDPOINT as EMPLOYEES;

/// Employees in the sample page: enough to see which attributes the whitelist lets through
/// (Personio omits a non-whitelisted attribute from every record, and keeps a whitelisted one even
/// when its value is empty).
const SAMPLE_SIZE: usize = 10;

/// First employees of the company as the credential sees them. Holds ids and attribute names
/// only; the records themselves are dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmployeeSample {
    /// Records in the page.
    pub records: usize,
    /// Employee ids, in the order Personio sent them.
    pub ids: Vec<String>,
    /// Attribute names seen in any record.
    pub attributes: BTreeSet<String>,
    /// The attributes the sample was asked for and requires (the resource's
    /// [`AttributeRequest::required`]).
    pub required: Vec<String>,
}

impl EmployeeSample {
    /// Required attributes no record carried (empty when there are no records).
    pub fn missing_required(&self) -> Vec<&str> {
        self.absent(self.required.iter().map(String::as_str))
    }

    /// Optional attributes no record carried (empty when there are no records).
    pub fn missing_optional(&self) -> Vec<&str> {
        self.absent(OPTIONAL_ATTRIBUTES.iter().copied())
    }

    fn absent<'a>(&self, names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
        if self.records == 0 {
            return Vec::new();
        }
        names
            .filter(|name| !self.attributes.contains(*name))
            .collect()
    }
}

/// One page of the v2 document listing of one owner.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DocumentListingSample {
    /// Documents on the first page.
    pub documents: usize,
    /// Documents whose `owner.id` is not the requested `owner_id` (a listing that does not filter
    /// by the v1 employee id would show them).
    pub other_owners: usize,
}

impl PersonioClient {
    /// The scopes `POST /v1/auth` reports for the credential (`None` when Personio sends none).
    /// Personio hands out the same token for 24 h, so this is a second look at the same token.
    pub async fn probe_token_scope(&self) -> Result<Option<String>, PersonioError> {
        let response = self.post_v1_auth().await?;
        let (status, bytes) = self.read_body(AUTH, response).await?;
        if !status.is_success() {
            return Err(super::client::resource_error(AUTH, status.as_u16(), &bytes));
        }
        let json: Value = serde_json::from_slice(&bytes).map_err(|_| PersonioError::Malformed {
            endpoint: AUTH,
            message: "auth response is not JSON".to_string(),
        })?;
        Ok(json
            .pointer("/data/scope")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|scope| !scope.is_empty())
            .map(str::to_string))
    }

    /// The first page of employees (at most [`SAMPLE_SIZE`]), asking for the attributes a sync
    /// reads.
    pub async fn sample_employees(
        &self,
        attributes: &AttributeRequest,
    ) -> Result<EmployeeSample, PersonioError> {
        let url = self.employees_url(SAMPLE_SIZE, 0, attributes)?;
        let json = self
            .get_json(EMPLOYEES, TokenKind::V1, Lane::Employees, &url)
            .await?;
        let records = json_array(&json, "data", EMPLOYEES)?;
        let mut sample = EmployeeSample {
            records: records.len(),
            required: attributes.required().to_vec(),
            ..EmployeeSample::default()
        };
        for record in records {
            sample
                .attributes
                .extend(attribute_names(record).map(str::to_string));
            sample.ids.extend(record_id(record));
        }
        Ok(sample)
    }

    /// The first page of the v2 document listing for `owner_id` (the v1 employee id), in
    /// `category_id` when given.
    pub async fn sample_documents(
        &self,
        owner_id: &str,
        category_id: Option<i64>,
    ) -> Result<DocumentListingSample, PersonioError> {
        let mut url = self.url("/v2/document-management/documents")?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("owner_id", owner_id);
            if let Some(category_id) = category_id {
                query.append_pair("category_id", &category_id.to_string());
            }
            query.append_pair("limit", "50");
        }
        let json = self
            .get_json(DOCUMENTS, TokenKind::V2, Lane::Documents, &url)
            .await?;
        let data = json_array(&json, "_data", DOCUMENTS)?;
        let other_owners = data
            .iter()
            .filter_map(|document| document.pointer("/owner/id"))
            .filter(|owner| owner_text(owner).as_deref() != Some(owner_id))
            .count();
        Ok(DocumentListingSample {
            documents: data.len(),
            other_owners,
        })
    }
}

fn owner_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.trim().to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::personio::REQUIRED_ATTRIBUTES;

    #[test]
    fn an_empty_sample_misses_nothing() {
        let sample = EmployeeSample::default();
        assert!(sample.missing_required().is_empty());
    }

    #[test]
    fn names_required_attributes_absent_from_every_record() {
        let sample = EmployeeSample {
            records: 2,
            ids: vec!["1".into(), "2".into()],
            required: REQUIRED_ATTRIBUTES.iter().map(|s| s.to_string()).collect(),
            attributes: REQUIRED_ATTRIBUTES
                .iter()
                .filter(|name| **name != "gender")
                .map(|name| name.to_string())
                .collect(),
        };
        assert_eq!(sample.missing_required(), vec!["gender"]);
        assert_eq!(sample.missing_optional(), OPTIONAL_ATTRIBUTES.to_vec());
    }
}
