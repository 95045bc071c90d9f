//! Employees through Personio's v2 APIs (`spec.personio.api: v2`): `GET /v2/persons` (cursor
//! pages of 50, `updated_at.gt` for incremental runs), the most recent employment of each person
//! (`GET /v2/persons/{id}/employments?limit=1`), department names through `GET /v2/org-units/{id}`
//! and office names through `GET /v2/workplaces` (both cached for the run).
//!
//! Each person and employment is turned into the record the v1 listing would have sent — the same
//! attribute names, absent where v2 left a field out (not whitelisted) — and read by the same
//! lenient parser, so the mapping, selector, tags, locking rule and the write path see no
//! difference. The person id is the v1 employee id, so switching APIs keeps every reteach link.
//!
//! What v2 cannot do cheaply: `updated_at` of a person moves with the person's own attributes
//! (names, e-mail, gender, custom attributes), not with its employment (position, department,
//! office, dates); there is no company-wide employment listing to filter instead. An incremental
//! v2 run therefore sees person changes only; employment changes arrive with the next full run
//! (`fullResyncInterval`). docs/credentials.md ("Personio API v1 or v2") says which API to choose.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::NaiveDateTime;
use serde_json::{json, Map, Value};
use url::Url;

use super::auth::TokenKind;
use super::client::PersonioClient;
use super::config::Lane;
use super::employee_record::{attribute_names, id_text, parse_employee};
use super::employees::check_required_attributes;
use super::{AttributeRequest, EmployeeList, PersonioError};
use crate::sync::SkippedRecord;

pub(super) const PERSONS: &str = "GET /v2/persons";
const EMPLOYMENTS: &str = "GET /v2/persons/{id}/employments";
const ORG_UNIT: &str = "GET /v2/org-units/{id}";
const WORKPLACES: &str = "GET /v2/workplaces";
/// Largest page of the person listing.
pub const V2_PAGE_SIZE: usize = 50;
/// Upper bound on pages of one listing (500,000 persons).
const MAX_PAGES: usize = 10_000;

impl PersonioClient {
    /// Every person (or those updated after `updated_since`, read as UTC) with its most recent
    /// employment, as v1-shaped employees.
    pub(super) async fn fetch_persons(
        &self,
        updated_since: Option<NaiveDateTime>,
        attributes: &AttributeRequest,
    ) -> Result<EmployeeList, PersonioError> {
        let mut reader = PersonReader::new(self);
        reader
            .read_listing(self.persons_url(updated_since)?)
            .await?;
        reader.finish(attributes)
    }

    /// The persons with these ids (`GET /v2/persons?id=…`, 50 ids a request) with their most
    /// recent employment, as v1-shaped employees; unknown ids are left out. A webhook's targeted
    /// re-read: an employment change does not move the person's `updated_at`.
    pub(super) async fn fetch_persons_by_id(
        &self,
        ids: &[String],
        attributes: &AttributeRequest,
    ) -> Result<EmployeeList, PersonioError> {
        let mut reader = PersonReader::new(self);
        reader.read_ids(ids).await?;
        reader.finish(attributes)
    }

    /// The persons changed since `updated_since` and those `named` (by notifications) that the
    /// change feed left out, read in one go (department and office names looked up once).
    pub(super) async fn fetch_changed_persons(
        &self,
        updated_since: NaiveDateTime,
        named: &[String],
        attributes: &AttributeRequest,
    ) -> Result<EmployeeList, PersonioError> {
        let mut reader = PersonReader::new(self);
        reader
            .read_listing(self.persons_url(Some(updated_since))?)
            .await?;
        let missing: Vec<String> = named
            .iter()
            .filter(|id| !reader.seen_ids.contains(id.trim()))
            .cloned()
            .collect();
        reader.read_ids(&missing).await?;
        reader.finish(attributes)
    }

    /// `GET /v2/persons`, pages of 50, only those updated after `updated_since` when given.
    fn persons_url(&self, updated_since: Option<NaiveDateTime>) -> Result<Url, PersonioError> {
        let mut url = self.url("/v2/persons")?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &V2_PAGE_SIZE.to_string());
            if let Some(since) = updated_since {
                let since = since
                    .and_utc()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                query.append_pair("updated_at.gt", &since);
            }
        }
        Ok(url)
    }

    /// The `_data` of every page from `url` on (see [`Pages`]).
    pub(super) async fn all_pages(
        &self,
        endpoint: &'static str,
        url: Url,
    ) -> Result<Vec<Value>, PersonioError> {
        let mut items = Vec::new();
        let mut pages = Pages::new(endpoint, url);
        while let Some(data) = pages.next(self).await? {
            items.extend(data);
        }
        Ok(items)
    }

    /// The v1-shaped record of `person` with its most recent employment; `Ok(Err(reason))` when
    /// this person cannot be read now (skipped, the rest goes on).
    async fn employment_record(
        &self,
        id: &str,
        person: &Value,
        names: &mut UnitNames,
    ) -> Result<Result<Value, &'static str>, PersonioError> {
        let employment = match self.latest_employment(id).await {
            Ok(employment) => employment,
            // Personio answers 404 for some persons now and then (reference README §4.3).
            Err(PersonioError::NotFound { .. }) => return Ok(Err("employments: not found")),
            Err(error) => return Err(error),
        };
        let Some(employment) = employment else {
            return Ok(Err("person without an employment"));
        };
        let (department, office) = match names.of(self, &employment).await? {
            Ok(found) => found,
            Err(reason) => return Ok(Err(reason)),
        };
        Ok(Ok(v1_record(id, person, &employment, department, office)))
    }

    /// The most recent employment of person `id` (`GET /v2/persons/{id}/employments?limit=1`);
    /// `None` when it has none.
    pub(super) async fn latest_employment(&self, id: &str) -> Result<Option<Value>, PersonioError> {
        let mut url = self.url("/v2/persons")?;
        url.path_segments_mut()
            .map_err(|_| PersonioError::Config("Personio base URL cannot have a path".into()))?
            .push(id)
            .push("employments");
        url.query_pairs_mut().append_pair("limit", "1");
        let page = self
            .get_json(EMPLOYMENTS, TokenKind::V2, Lane::Employees, &url)
            .await?;
        Ok(page.pointer("/_data/0").cloned())
    }
}

/// The pages of a v2 listing, read one at a time by following `_meta.links.next.href`.
pub(super) struct Pages {
    endpoint: &'static str,
    next: Option<Url>,
    visited: HashSet<String>,
    read: usize,
}

impl Pages {
    /// The listing of `endpoint` whose first page is `url`.
    pub(super) fn new(endpoint: &'static str, url: Url) -> Self {
        Self {
            endpoint,
            next: Some(url),
            visited: HashSet::new(),
            read: 0,
        }
    }

    /// The `_data` of the next page; `None` after the last one, after [`MAX_PAGES`], or when a
    /// `next` link points back to a page already read (a known v2 bug).
    pub(super) async fn next(
        &mut self,
        client: &PersonioClient,
    ) -> Result<Option<Vec<Value>>, PersonioError> {
        let endpoint = self.endpoint;
        let Some(url) = self.next.take().filter(|_| self.read < MAX_PAGES) else {
            return Ok(None);
        };
        if !self.visited.insert(url.to_string()) {
            tracing::warn!(endpoint, "Personio's next link repeats a page; stopping");
            return Ok(None);
        }
        self.read += 1;
        let mut page = client
            .get_json(endpoint, TokenKind::V2, Lane::Employees, &url)
            .await?;
        let data = match page.get_mut("_data").map(Value::take) {
            Some(Value::Array(data)) => data,
            _ => {
                let message = "response has no _data array".to_string();
                return Err(PersonioError::Malformed { endpoint, message });
            }
        };
        let href = page
            .pointer("/_meta/links/next/href")
            .and_then(Value::as_str)
            .filter(|href| !href.trim().is_empty() && !data.is_empty());
        if let Some(href) = href {
            self.next = Some(client.follow_link(endpoint, href)?);
        }
        Ok(Some(data))
    }
}

/// Turns persons into v1-shaped employees page by page, so that a run holds one page of raw
/// persons at a time rather than the whole listing (department and office names looked up once).
struct PersonReader<'a> {
    client: &'a PersonioClient,
    names: UnitNames,
    list: EmployeeList,
    seen_attributes: BTreeSet<String>,
    /// Ids of the persons read so far (a person listed twice is read once).
    seen_ids: HashSet<String>,
    /// Records built (persons with an employment Personio could name): only these show which
    /// attributes the credential may read.
    records: usize,
}

impl<'a> PersonReader<'a> {
    fn new(client: &'a PersonioClient) -> Self {
        Self {
            client,
            names: UnitNames::default(),
            list: EmployeeList::default(),
            seen_attributes: BTreeSet::new(),
            seen_ids: HashSet::new(),
            records: 0,
        }
    }

    /// Every page of the person listing at `url`.
    async fn read_listing(&mut self, url: Url) -> Result<(), PersonioError> {
        let mut pages = Pages::new(PERSONS, url);
        while let Some(persons) = pages.next(self.client).await? {
            self.read(persons).await?;
        }
        Ok(())
    }

    /// `GET /v2/persons?id=…` for these ids (numbers only: anything else names no person).
    async fn read_ids(&mut self, ids: &[String]) -> Result<(), PersonioError> {
        let wanted: Vec<&str> = ids
            .iter()
            .map(|id| id.trim())
            .filter(|id| !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for chunk in wanted.chunks(V2_PAGE_SIZE) {
            let mut url = self.client.url("/v2/persons")?;
            url.query_pairs_mut()
                .append_pair("limit", &V2_PAGE_SIZE.to_string())
                .append_pair("id", &chunk.join(","));
            self.read_listing(url).await?;
        }
        Ok(())
    }

    /// `persons` with their most recent employment, as v1-shaped employees.
    async fn read(&mut self, persons: Vec<Value>) -> Result<(), PersonioError> {
        for person in persons {
            let Some(id) = person.get("id").and_then(id_text) else {
                self.list
                    .skipped
                    .push(skipped(None, "id: missing or unusable"));
                continue;
            };
            if !self.seen_ids.insert(id.clone()) {
                continue;
            }
            let record = self
                .client
                .employment_record(&id, &person, &mut self.names)
                .await?;
            let record = match record {
                Ok(record) => record,
                Err(reason) => {
                    self.list.skipped.push(skipped(Some(&id), reason));
                    continue;
                }
            };
            self.records += 1;
            self.seen_attributes
                .extend(attribute_names(&record).map(str::to_string));
            match parse_employee(&record) {
                Ok(employee) => self.list.employees.push(employee),
                Err(skipped) => self.list.skipped.push(skipped),
            }
        }
        Ok(())
    }

    /// The employees read; fails when an attribute the run requires was in no record (persons
    /// skipped before a record was built, e.g. without an employment, say nothing about it).
    fn finish(self, attributes: &AttributeRequest) -> Result<EmployeeList, PersonioError> {
        check_required_attributes(attributes.required(), self.records, &self.seen_attributes)?;
        Ok(self.list)
    }
}

/// Department and office names, looked up once per run.
#[derive(Default)]
pub(super) struct UnitNames {
    departments: HashMap<String, Option<String>>,
    workplaces: Option<HashMap<String, String>>,
}

impl UnitNames {
    /// The department and office (`{id, name}`) of `employment`; `Ok(Err(reason))` when it names
    /// an org unit or workplace Personio does not know.
    pub(super) async fn of(
        &mut self,
        client: &PersonioClient,
        employment: &Value,
    ) -> Result<Result<(Option<Value>, Option<Value>), &'static str>, PersonioError> {
        let department = match department_id(employment) {
            Some(unit) => match self.department(client, &unit).await? {
                Some(name) => Some(json!({"id": unit, "name": name})),
                None => return Ok(Err("department: unknown org unit")),
            },
            None => None,
        };
        let office = match employment.pointer("/office/id").and_then(id_text) {
            Some(office) => match self.workplace(client, &office).await? {
                Some(name) => Some(json!({"id": office, "name": name})),
                None => return Ok(Err("office: unknown workplace")),
            },
            None => None,
        };
        Ok(Ok((department, office)))
    }

    pub(super) async fn department(
        &mut self,
        client: &PersonioClient,
        id: &str,
    ) -> Result<Option<String>, PersonioError> {
        if let Some(name) = self.departments.get(id) {
            return Ok(name.clone());
        }
        let mut url = client.url("/v2/org-units")?;
        url.path_segments_mut()
            .map_err(|_| PersonioError::Config("Personio base URL cannot have a path".into()))?
            .push(id);
        url.query_pairs_mut().append_pair("type", "department");
        let name = match client
            .get_json(ORG_UNIT, TokenKind::V2, Lane::Employees, &url)
            .await
        {
            Ok(unit) => unit.get("name").and_then(Value::as_str).map(str::to_string),
            Err(PersonioError::NotFound { .. }) => None,
            Err(error) => return Err(error),
        };
        self.departments.insert(id.to_string(), name.clone());
        Ok(name)
    }

    pub(super) async fn workplace(
        &mut self,
        client: &PersonioClient,
        id: &str,
    ) -> Result<Option<String>, PersonioError> {
        if self.workplaces.is_none() {
            let mut url = client.url("/v2/workplaces")?;
            url.query_pairs_mut()
                .append_pair("limit", &V2_PAGE_SIZE.to_string());
            let places = client.all_pages(WORKPLACES, url).await?;
            let map = places
                .iter()
                .filter_map(|place| {
                    let id = place.get("id").and_then(id_text)?;
                    let name = place.get("name").and_then(Value::as_str)?;
                    Some((id, name.to_string()))
                })
                .collect();
            self.workplaces = Some(map);
        }
        Ok(self
            .workplaces
            .as_ref()
            .and_then(|places| places.get(id).cloned()))
    }
}

/// The id of the employment's department (`org_units[]` of type `department`).
pub(super) fn department_id(employment: &Value) -> Option<String> {
    employment
        .get("org_units")?
        .as_array()?
        .iter()
        .find(|unit| unit.get("type").and_then(Value::as_str) == Some("department"))
        .and_then(|unit| unit.get("id"))
        .and_then(id_text)
}

fn skipped(id: Option<&str>, reason: &str) -> SkippedRecord {
    SkippedRecord {
        id: id.map(str::to_string),
        reason: reason.to_string(),
    }
}

/// The record the v1 listing would send for `person` and `employment`: only the attributes v2
/// sent (a field left out means "not whitelisted"), each in the `{value}` envelope.
pub(super) fn v1_record(
    id: &str,
    person: &Value,
    employment: &Value,
    department: Option<Value>,
    office: Option<Value>,
) -> Value {
    let mut attributes = Map::new();
    let mut put = |name: &str, value: Value| {
        attributes.insert(name.to_string(), json!({ "value": value }));
    };
    put("id", json!(id));
    for name in ["first_name", "last_name", "email"] {
        if let Some(value) = person.get(name) {
            put(name, value.clone());
        }
    }
    if let Some(gender) = person.get("gender") {
        put("gender", lower_unless_unspecified(gender));
    }
    if let Some(status) = employment.get("status") {
        put("status", lower_unless_unspecified(status));
    }
    if let Some(position) = employment.get("position") {
        put(
            "position",
            position.get("title").cloned().unwrap_or(Value::Null),
        );
    }
    if employment.get("org_units").is_some() {
        put("department", department.unwrap_or(Value::Null));
    }
    if employment.get("office").is_some() {
        put("office", office.unwrap_or(Value::Null));
    }
    if let Some(start) = employment.get("employment_start_date") {
        put("hire_date", start.clone());
    }
    if let Some(termination) = termination_date(employment) {
        put("termination_date", termination);
    }
    if let Some(end) = employment.get("contract_end_date") {
        put("contract_end_date", end.clone());
    }
    if let Some(kind) = employment.get("type") {
        put("employment_type", lower_unless_unspecified(kind));
    }
    let updated = [person, employment]
        .iter()
        .filter_map(|v| v.get("updated_at").and_then(Value::as_str))
        .max()
        .map(|t| json!(t));
    if let Some(updated) = updated {
        put("last_modified_at", updated);
    }
    for (key, value) in custom_attributes(person) {
        put(&key, value);
    }
    json!({ "type": "Employee", "attributes": attributes })
}

/// `termination.termination_date`, else `employment_end_date`; `None` when v2 sent neither field.
fn termination_date(employment: &Value) -> Option<Value> {
    let termination = employment.get("termination");
    let end = employment.get("employment_end_date");
    if termination.is_none() && end.is_none() {
        return None;
    }
    let date = termination
        .and_then(|t| t.get("termination_date"))
        .filter(|d| !d.is_null())
        .or(end.filter(|d| !d.is_null()));
    Some(date.cloned().unwrap_or(Value::Null))
}

/// `ACTIVE` → `active`; `UNSPECIFIED` (v2's "no value") → null.
fn lower_unless_unspecified(value: &Value) -> Value {
    match value.as_str() {
        Some(text) if text.eq_ignore_ascii_case("UNSPECIFIED") => Value::Null,
        Some(text) => json!(text.to_ascii_lowercase()),
        None => value.clone(),
    }
}

/// Custom attributes under their v1 names `dynamic_<id>` (v2's `global_id` when it has that
/// form, else built from `id`).
fn custom_attributes(person: &Value) -> Vec<(String, Value)> {
    let Some(custom) = person.get("custom_attributes").and_then(Value::as_array) else {
        return Vec::new();
    };
    custom
        .iter()
        .filter_map(|attribute| {
            let global = attribute.get("global_id").and_then(Value::as_str);
            let key = match global.filter(|g| g.starts_with("dynamic_")) {
                Some(global) => global.to_string(),
                None => format!("dynamic_{}", attribute.get("id").and_then(id_text)?),
            };
            Some((key, attribute.get("value").cloned().unwrap_or(Value::Null)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::personio::employee_record::assert_attributes;

    #[test]
    fn a_person_and_employment_read_like_the_v1_record() {
        let person = json!({
            "id": "7", "first_name": "Ada", "last_name": "King", "email": "ada@x.example",
            "gender": "FEMALE", "updated_at": "2026-12-01T10:00:00Z",
            "custom_attributes": [{"id": "44101", "global_id": "dynamic_44101", "value": "E-7"}]
        });
        let employment = json!({
            "status": "ONBOARDING", "position": {"title": "Engineer"},
            "org_units": [{"type": "team", "id": "1"}, {"type": "department", "id": "5"}],
            "office": {"id": "9"}, "employment_start_date": "2027-01-01",
            "termination": {"termination_date": null}, "employment_end_date": "2027-06-30",
            "type": "EXTERNAL", "updated_at": "2026-12-02T10:00:00Z"
        });
        assert_eq!(department_id(&employment), Some("5".into()));
        let record = v1_record(
            "7",
            &person,
            &employment,
            Some(json!({"id": "5", "name": "R&D"})),
            Some(json!({"id": "9", "name": "Berlin"})),
        );
        let employee = parse_employee(&record).unwrap();
        assert_eq!(employee.id, "7");
        assert_attributes(
            &employee,
            &[
                ("gender", Some("female")),
                ("status", Some("onboarding")),
                ("position", Some("Engineer")),
                ("department", Some("R&D")),
                ("office", Some("Berlin")),
                ("dynamic_44101", Some("E-7")),
                ("employment_type", Some("external")),
            ],
        );
        assert_eq!(
            employee.hire_date.map(|d| d.to_string()).as_deref(),
            Some("2027-01-01")
        );
        assert_eq!(
            employee.termination_date.map(|d| d.to_string()).as_deref(),
            Some("2027-06-30"),
            "the end of employment when no termination date is set"
        );
    }

    #[test]
    fn fields_v2_left_out_are_missing_attributes_not_empty_values() {
        let person = json!({"id": "7", "first_name": "Ada"});
        let employment = json!({"status": "UNSPECIFIED"});
        let record = v1_record("7", &person, &employment, None, None);
        let names: BTreeSet<&str> = attribute_names(&record).collect();
        assert_eq!(names, BTreeSet::from(["id", "first_name", "status"]));
        let employee = parse_employee(&record).unwrap();
        assert_eq!(employee.status, None, "UNSPECIFIED is no value");
    }
}
