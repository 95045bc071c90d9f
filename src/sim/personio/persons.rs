//! Personio's v2 Person and Employment APIs over the same employees the v1 endpoints serve
//! (`shared/reference/personio/v2/persons-service-api-v2.json`, `employment-contract-v2.json`),
//! plus the org-unit and workplace look-ups that turn the ids of an employment into names.
//!
//! - `GET /v2/persons`: `limit` 1..=50 (default 10), an opaque `cursor` that is only found in the
//!   `next` link, filters `id` and `email` (repeatable or comma-separated), `first_name`,
//!   `last_name`, `created_at`/`updated_at` with `.gt`/`.lt`, `status` (`ACTIVE` = the latest
//!   employment is active, on leave or onboarding). A bad value is a 400 problem+json.
//! - `GET /v2/persons/{id}`, `GET /v2/persons/{person_id}/employments[/{id}]` (same paging and
//!   `updated_at` filters; 404 for an unknown person).
//! - `GET /v2/org-units/{id}?type=department` and `GET /v2/workplaces` (their specs are not saved:
//!   shapes from Personio's reference pages, `{id, type, name}` and `{id, name}`).
//!
//! The person id is the v1 employee id, so a tenant moving from v1 to v2 keeps every link. A
//! person's `updated_at` moves with its own attributes (names, e-mail, gender, custom attributes),
//! an employment's with the rest, as in Personio; attributes outside the credential's whitelist
//! are left out (v1 names, e.g. `email`, `position`).

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value};

use super::auth::Dialect;
use super::employee::StoredEmployee;
use super::gate::{Admitted, Gate};
use super::rate_limit::Limited;
use super::responses::v2_problem;
use super::PersonioSim;

/// Largest and default `limit` of the person and employment listings.
const MAX_LIMIT: usize = 50;
const DEFAULT_LIMIT: usize = 10;
/// Offset between a person's id and its (only) employment's id in the simulator.
const EMPLOYMENT_ID_OFFSET: i64 = 1_000_000_000;
/// The attributes of the person object; the others belong to the employment.
const PERSON_ATTRIBUTES: [&str; 5] = [
    "first_name",
    "last_name",
    "preferred_name",
    "email",
    "gender",
];

type Query = Vec<(String, String)>;

/// The gate of every v2 person endpoint: the employee bucket, v2 problems.
pub(super) struct V2Persons;

impl Gate for V2Persons {
    const LIMITED: Option<Limited> = Some(Limited::Employees);
    const DIALECT: Dialect = Dialect::V2;
}

/// A query Personio refuses with 400 (kept small; turned into the problem+json at the end).
struct Invalid(String);

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        v2_problem(StatusCode::BAD_REQUEST, "common.invalid_filter", &self.0)
    }
}

fn bad_request(detail: &str) -> Invalid {
    Invalid(detail.to_string())
}

fn not_found(what: &str) -> Response {
    v2_problem(
        StatusCode::NOT_FOUND,
        "common.requested_resource_not_found",
        &format!("The requested {what} was not found."),
    )
}

/// The values of a repeatable filter (`id=1&id=2` or `id=1,2`).
fn values<'a>(query: &'a Query, key: &str) -> Vec<&'a str> {
    query
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

/// A time filter: `key` (equal to the second), `key.gt`, `key.lt`.
#[derive(Default)]
struct TimeFilter {
    at: Option<DateTime<Utc>>,
    after: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
}

impl TimeFilter {
    fn read(query: &Query, key: &str) -> Result<Self, Invalid> {
        let parse = |suffix: &str| -> Result<Option<DateTime<Utc>>, Invalid> {
            let name = format!("{key}{suffix}");
            match query.iter().find(|(k, _)| *k == name) {
                None => Ok(None),
                Some((_, value)) => DateTime::parse_from_rfc3339(value)
                    .map(|t| Some(t.with_timezone(&Utc)))
                    .map_err(|_| bad_request(&format!("Invalid filter format for {name}."))),
            }
        };
        Ok(Self {
            at: parse("")?,
            after: parse(".gt")?,
            before: parse(".lt")?,
        })
    }

    fn matches(&self, time: DateTime<Utc>) -> bool {
        let second = time.timestamp();
        self.at.is_none_or(|at| at.timestamp() == second)
            && self.after.is_none_or(|after| time > after)
            && self.before.is_none_or(|before| time < before)
    }
}

/// `limit` and the keyset cursor (the last id of the previous page).
fn page(query: &Query) -> Result<(usize, i64), Invalid> {
    let limit = match query.iter().find(|(k, _)| k == "limit") {
        None => DEFAULT_LIMIT,
        Some((_, value)) => match value.trim().parse::<usize>() {
            Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
            _ => return Err(bad_request("Invalid limit: it must be between 1 and 50.")),
        },
    };
    let after = match query.iter().find(|(k, _)| k == "cursor") {
        None => i64::MIN,
        Some((_, cursor)) => decode_cursor(cursor).ok_or_else(|| bad_request("Invalid cursor."))?,
    };
    Ok((limit, after))
}

/// Cursor = the last id of the page, disguised so clients treat it as opaque.
const CURSOR_KEY: i64 = 0x2b1d_93a7_5c4e_0f61;

fn encode_cursor(last_id: i64) -> String {
    format!("p2_{:016x}", last_id ^ CURSOR_KEY)
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let hex = cursor.strip_prefix("p2_")?;
    Some(u64::from_str_radix(hex, 16).ok()? as i64 ^ CURSOR_KEY)
}

/// When an employee's person attributes (`person: true`) or the others last changed.
fn updated_at(employee: &StoredEmployee, person: bool) -> DateTime<Utc> {
    let of_person = |key: &str| PERSON_ATTRIBUTES.contains(&key) || key.starts_with("dynamic_");
    employee
        .changed_at
        .iter()
        .filter(|(key, _)| of_person(key) == person)
        .map(|(_, at)| *at)
        .fold(employee.created_at, DateTime::max)
}

fn date(value: Option<NaiveDate>) -> Value {
    value.map_or(Value::Null, |d| json!(d.format("%Y-%m-%d").to_string()))
}

fn active(employee: &StoredEmployee) -> bool {
    matches!(
        employee.seed.status.as_str(),
        "active" | "leave" | "onboarding"
    )
}

/// The employment id of `person`.
pub(super) fn employment_id(person: i64) -> String {
    (person + EMPLOYMENT_ID_OFFSET).to_string()
}

/// The v2 `Person` of `employee`, with what the whitelist lets the credential read.
fn person_json(employee: &StoredEmployee, may_read: &dyn Fn(&str) -> bool) -> Value {
    let seed = &employee.seed;
    let mut person = Map::new();
    person.insert("id".into(), json!(employee.id.to_string()));
    let mut put = |attribute: &str, key: &str, value: Value| {
        if may_read(attribute) {
            person.insert(key.into(), value);
        }
    };
    put("first_name", "first_name", json!(seed.first_name));
    put("last_name", "last_name", json!(seed.last_name));
    put("preferred_name", "preferred_name", json!(""));
    put(
        "email",
        "email",
        json!(seed.email.clone().unwrap_or_default()),
    );
    let gender = match seed
        .gender
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("male") => "MALE",
        Some("female") => "FEMALE",
        Some("diverse") => "DIVERSE",
        _ => "UNSPECIFIED",
    };
    put("gender", "gender", json!(gender));
    let status = if active(employee) {
        "ACTIVE"
    } else {
        "INACTIVE"
    };
    person.insert("status".into(), json!(status));
    person.insert("created_at".into(), json!(employee.created_at.to_rfc3339()));
    person.insert(
        "updated_at".into(),
        json!(updated_at(employee, true).to_rfc3339()),
    );
    let custom: Vec<Value> = seed
        .custom
        .iter()
        .filter(|(key, _)| may_read(key))
        .map(|(key, value)| {
            let id = key.trim_start_matches("dynamic_");
            json!({"id": id, "global_id": key, "type": "string", "label": key, "value": value})
        })
        .collect();
    person.insert("custom_attributes".into(), json!(custom));
    person.insert(
        "employments".into(),
        json!([{"id": employment_id(employee.id)}]),
    );
    Value::Object(person)
}

/// The v2 `Employment` of `employee`.
fn employment_json(employee: &StoredEmployee, may_read: &dyn Fn(&str) -> bool) -> Value {
    let seed = &employee.seed;
    let mut employment = Map::new();
    employment.insert("id".into(), json!(employment_id(employee.id)));
    let mut put = |attribute: &str, key: &str, value: Value| {
        if may_read(attribute) {
            employment.insert(key.into(), value);
        }
    };
    put("position", "position", json!({"title": seed.position}));
    put("status", "status", json!(seed.status.to_ascii_uppercase()));
    put("hire_date", "employment_start_date", date(seed.hire_date));
    put(
        "termination_date",
        "employment_end_date",
        date(seed.termination_date),
    );
    put(
        "contract_end_date",
        "contract_end_date",
        date(seed.contract_end_date),
    );
    let kind = seed.employment_type.as_deref().unwrap_or("internal");
    put("employment_type", "type", json!(kind.to_ascii_uppercase()));
    put("weekly_working_hours", "weekly_working_hours", json!(40));
    put(
        "supervisor",
        "supervisor",
        json!(seed.supervisor_id.map(|id| json!({"id": id.to_string()}))),
    );
    put(
        "office",
        "office",
        json!(seed
            .office
            .as_ref()
            .map(|o| json!({"id": o.id.to_string()}))),
    );
    let units: Vec<Value> = seed
        .department
        .iter()
        .map(|d| json!({"type": "department", "id": d.id.to_string()}))
        .collect();
    put("department", "org_units", json!(units));
    put(
        "termination_date",
        "termination",
        json!({
            "termination_date": date(seed.termination_date),
            "last_working_day": date(seed.last_working_day),
        }),
    );
    employment.insert("person".into(), json!({"id": employee.id.to_string()}));
    employment.insert("created_at".into(), json!(employee.created_at.to_rfc3339()));
    employment.insert(
        "updated_at".into(),
        json!(updated_at(employee, false).to_rfc3339()),
    );
    Value::Object(employment)
}

/// A page of `data` with `self` and, when more follow, `next` links.
fn listing(
    sim: &PersonioSim,
    path: &str,
    query: &Query,
    data: Vec<Value>,
    next: Option<i64>,
) -> Response {
    let pairs = || query.iter().map(|(k, v)| (k, v));
    let mut links = json!({"self": {"href": sim.v2_link(path, pairs(), None)}});
    if let Some(last) = next {
        let cursor = encode_cursor(last);
        links["next"] = json!({"href": sim.v2_link(path, pairs(), Some(&cursor))});
    }
    (
        StatusCode::OK,
        axum::Json(json!({"_data": data, "_meta": {"links": links}})),
    )
        .into_response()
}

/// Which persons a listing query selects.
struct PersonFilter<'a> {
    ids: Vec<&'a str>,
    emails: Vec<&'a str>,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    status: Option<bool>,
    created: TimeFilter,
    updated: TimeFilter,
}

impl<'a> PersonFilter<'a> {
    fn read(query: &'a Query) -> Result<Self, Invalid> {
        let one = |key: &str| {
            query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let status = match one("status") {
            None => None,
            Some("ACTIVE") => Some(true),
            Some("INACTIVE") => Some(false),
            Some(_) => return Err(bad_request("Invalid filter value for status.")),
        };
        let ids = values(query, "id");
        if ids.iter().any(|id| id.parse::<i64>().is_err()) {
            return Err(bad_request("Invalid filter value for id."));
        }
        Ok(Self {
            ids,
            emails: values(query, "email"),
            first_name: one("first_name"),
            last_name: one("last_name"),
            status,
            created: TimeFilter::read(query, "created_at")?,
            updated: TimeFilter::read(query, "updated_at")?,
        })
    }

    fn matches(&self, employee: &StoredEmployee) -> bool {
        let seed = &employee.seed;
        let id = employee.id.to_string();
        let email = seed.email.as_deref().unwrap_or_default();
        (self.ids.is_empty() || self.ids.contains(&id.as_str()))
            && (self.emails.is_empty() || self.emails.iter().any(|e| e.eq_ignore_ascii_case(email)))
            && self.first_name.is_none_or(|n| n == seed.first_name)
            && self.last_name.is_none_or(|n| n == seed.last_name)
            && self.status.is_none_or(|wanted| wanted == active(employee))
            && self.created.matches(employee.created_at)
            && self.updated.matches(updated_at(employee, true))
    }
}

/// `GET /v2/persons`.
pub(super) async fn list(Admitted { sim, query, .. }: Admitted<V2Persons>) -> Response {
    let (limit, after) = match page(&query) {
        Ok(page) => page,
        Err(bad) => return bad.into_response(),
    };
    let filter = match PersonFilter::read(&query) {
        Ok(filter) => filter,
        Err(bad) => return bad.into_response(),
    };
    let state = sim.state();
    let may_read = |attribute: &str| state.may_read(attribute);
    let mut selected = state
        .employees
        .range(after.saturating_add(1)..)
        .map(|(_, employee)| employee)
        .filter(|employee| filter.matches(employee));
    let page: Vec<&StoredEmployee> = selected.by_ref().take(limit).collect();
    let more = selected.next().is_some();
    let next = page.last().map(|e| e.id).filter(|_| more);
    let data = page.iter().map(|e| person_json(e, &may_read)).collect();
    drop(state);
    listing(&sim, "/v2/persons", &query, data, next)
}

/// `GET /v2/persons/{id}`.
pub(super) async fn one(
    Path(id): Path<String>,
    Admitted { sim, .. }: Admitted<V2Persons>,
) -> Response {
    let state = sim.state();
    let may_read = |attribute: &str| state.may_read(attribute);
    match id
        .parse::<i64>()
        .ok()
        .and_then(|id| state.employees.get(&id))
    {
        Some(employee) => axum::Json(person_json(employee, &may_read)).into_response(),
        None => not_found("person"),
    }
}

/// `GET /v2/persons/{person_id}/employments`.
pub(super) async fn employments(
    Path(person): Path<String>,
    Admitted { sim, query, .. }: Admitted<V2Persons>,
) -> Response {
    if let Err(bad) = page(&query) {
        return bad.into_response();
    }
    let updated = match TimeFilter::read(&query, "updated_at") {
        Ok(filter) => filter,
        Err(bad) => return bad.into_response(),
    };
    let ids = values(&query, "id");
    let state = sim.state();
    let may_read = |attribute: &str| state.may_read(attribute);
    let Some(employee) = person
        .parse::<i64>()
        .ok()
        .and_then(|id| state.employees.get(&id))
    else {
        return not_found("person");
    };
    let employment = employment_id(employee.id);
    let selected = updated.matches(updated_at(employee, false))
        && (ids.is_empty() || ids.contains(&employment.as_str()));
    let data = if selected {
        vec![employment_json(employee, &may_read)]
    } else {
        Vec::new()
    };
    drop(state);
    let path = format!("/v2/persons/{person}/employments");
    listing(&sim, &path, &query, data, None)
}

/// `GET /v2/persons/{person_id}/employments/{id}`.
pub(super) async fn employment(
    Path((person, id)): Path<(String, String)>,
    Admitted { sim, .. }: Admitted<V2Persons>,
) -> Response {
    let state = sim.state();
    let may_read = |attribute: &str| state.may_read(attribute);
    let employee = person
        .parse::<i64>()
        .ok()
        .and_then(|p| state.employees.get(&p));
    match employee.filter(|e| employment_id(e.id) == id) {
        Some(employee) => axum::Json(employment_json(employee, &may_read)).into_response(),
        None => not_found("employment"),
    }
}

/// Every department or office named by an employee: id → name.
fn units(sim: &PersonioSim, department: bool) -> BTreeMap<i64, String> {
    sim.state()
        .employees
        .values()
        .filter_map(|e| {
            if department {
                e.seed.department.clone()
            } else {
                e.seed.office.clone()
            }
        })
        .map(|unit| (unit.id, unit.name))
        .collect()
}

/// `GET /v2/org-units/{id}?type=department|team`.
pub(super) async fn org_unit(
    Path(id): Path<String>,
    Admitted { sim, query, .. }: Admitted<V2Persons>,
) -> Response {
    match query
        .iter()
        .find(|(k, _)| k == "type")
        .map(|(_, v)| v.as_str())
    {
        Some("department") => {}
        Some("team") => return not_found("org unit"),
        _ => {
            return bad_request("The type query parameter must be department or team.")
                .into_response()
        }
    }
    let found = id
        .parse::<i64>()
        .ok()
        .and_then(|id| units(&sim, true).remove(&id));
    match found {
        Some(name) => {
            axum::Json(json!({"id": id, "type": "department", "name": name})).into_response()
        }
        None => not_found("org unit"),
    }
}

/// `GET /v2/workplaces`: every office, with the same keyset paging.
pub(super) async fn workplaces(Admitted { sim, query, .. }: Admitted<V2Persons>) -> Response {
    let (limit, after) = match page(&query) {
        Ok(page) => page,
        Err(bad) => return bad.into_response(),
    };
    let offices = units(&sim, false);
    let mut selected = offices.range(after.saturating_add(1)..);
    let page: Vec<(&i64, &String)> = selected.by_ref().take(limit).collect();
    let more = selected.next().is_some();
    let next = page.last().map(|(id, _)| **id).filter(|_| more);
    let data = page
        .iter()
        .map(|(id, name)| json!({"id": id.to_string(), "name": name}))
        .collect();
    listing(&sim, "/v2/workplaces", &query, data, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        for id in [i64::MIN, -1, 0, 7, 1_000_000, i64::MAX] {
            assert_eq!(decode_cursor(&encode_cursor(id)), Some(id));
        }
        assert_eq!(decode_cursor("7"), None);
        assert_eq!(decode_cursor("p2_zz"), None);
    }
}
