//! Simulated employees and how they are rendered in Personio's v1 attribute envelope, including
//! the awkward shapes the real API sends (ids as strings, three date shapes, nested or plain
//! department/office, extra attributes).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use serde_json::{json, Map, Value};

/// How a record's dates are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DateStyle {
    /// `2014-11-09T00:00:00+01:00` (the employee list example).
    #[default]
    OffsetWithColon,
    /// `2012-02-01T00:00:00+0100` (the schema example).
    OffsetWithoutColon,
    /// `2021-01-01`.
    Plain,
}

/// How `department` and `office` values are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OrgUnitStyle {
    /// `{type, attributes: {id, name}}`.
    #[default]
    Nested,
    /// A plain string.
    Plain,
}

/// A department or office.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgUnit {
    /// Personio's id of the unit.
    pub id: i64,
    /// Display name (what the operator transfers).
    pub name: String,
}

/// The data of one employee, as a test or the generator describes it. Build with
/// [`EmployeeSeed::new`] and the `with_…` methods.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EmployeeSeed {
    /// `first_name`.
    pub first_name: String,
    /// `last_name`.
    pub last_name: String,
    /// `email`; `None` renders as `null`.
    pub email: Option<String>,
    /// `position`, a plain string.
    pub position: Option<String>,
    /// `department`.
    pub department: Option<OrgUnit>,
    /// `office` (reteach's location).
    pub office: Option<OrgUnit>,
    /// `gender`, lowercase as Personio sends it (`male`, `female`, `diverse`, …).
    pub gender: Option<String>,
    /// `active`, `inactive`, `onboarding`, `leave`.
    pub status: String,
    /// `hire_date`.
    pub hire_date: Option<NaiveDate>,
    /// `termination_date`.
    pub termination_date: Option<NaiveDate>,
    /// `contract_end_date` (fixed-term contracts).
    pub contract_end_date: Option<NaiveDate>,
    /// `last_working_day`.
    pub last_working_day: Option<NaiveDate>,
    /// `supervisor` (an employee id).
    pub supervisor_id: Option<i64>,
    /// Send `id` as a string instead of a number.
    pub id_as_string: bool,
    /// How this record's dates are written.
    pub date_style: DateStyle,
    /// How this record's department and office are written.
    pub org_unit_style: OrgUnitStyle,
    /// Raw `value`s that replace the rendered ones (e.g. an impossible date) — edge cases.
    pub raw_values: BTreeMap<String, Value>,
    /// Custom attributes (`dynamic_<id>` → text), sent like Personio sends them: label, value,
    /// `type` `standard`, `universal_id` `null`.
    pub custom: BTreeMap<String, String>,
    /// `employment_type` (`internal` or `external`); `internal` when `None`.
    pub employment_type: Option<String>,
}

impl EmployeeSeed {
    /// An active employee with a name and e-mail address.
    pub fn new(first_name: &str, last_name: &str, email: &str) -> Self {
        Self {
            first_name: first_name.to_string(),
            last_name: last_name.to_string(),
            email: Some(email.to_string()),
            status: "active".to_string(),
            gender: Some("female".to_string()),
            position: Some("Engineer".to_string()),
            ..Self::default()
        }
    }

    /// Sets or clears the e-mail address.
    pub fn with_email(mut self, email: Option<&str>) -> Self {
        self.email = email.map(str::to_string);
        self
    }

    /// Sets a custom attribute (`key` is `dynamic_<id>`).
    pub fn with_custom(mut self, key: &str, value: &str) -> Self {
        self.custom.insert(key.to_string(), value.to_string());
        self
    }

    /// Sets the employment type (`internal`, `external`).
    pub fn with_employment_type(mut self, value: &str) -> Self {
        self.employment_type = Some(value.to_string());
        self
    }

    /// Sets the position.
    pub fn with_position(mut self, position: &str) -> Self {
        self.position = Some(position.to_string());
        self
    }

    /// Sets the department.
    pub fn with_department(mut self, id: i64, name: &str) -> Self {
        self.department = Some(OrgUnit {
            id,
            name: name.to_string(),
        });
        self
    }

    /// Sets the office.
    pub fn with_office(mut self, id: i64, name: &str) -> Self {
        self.office = Some(OrgUnit {
            id,
            name: name.to_string(),
        });
        self
    }

    /// Sets or clears the gender.
    pub fn with_gender(mut self, gender: Option<&str>) -> Self {
        self.gender = gender.map(str::to_string);
        self
    }

    /// Sets the status (`active`, `inactive`, `onboarding`, `leave`).
    pub fn with_status(mut self, status: &str) -> Self {
        self.status = status.to_string();
        self
    }

    /// Sets the hire date.
    pub fn with_hire_date(mut self, date: NaiveDate) -> Self {
        self.hire_date = Some(date);
        self
    }

    /// Sets the termination date.
    pub fn with_termination_date(mut self, date: NaiveDate) -> Self {
        self.termination_date = Some(date);
        self
    }

    /// Sets the end of a fixed-term contract.
    pub fn with_contract_end_date(mut self, date: NaiveDate) -> Self {
        self.contract_end_date = Some(date);
        self
    }

    /// Chooses how dates are written.
    pub fn with_date_style(mut self, style: DateStyle) -> Self {
        self.date_style = style;
        self
    }

    /// Chooses how department and office are written.
    pub fn with_org_unit_style(mut self, style: OrgUnitStyle) -> Self {
        self.org_unit_style = style;
        self
    }

    /// Sends the id as a string.
    pub fn with_id_as_string(mut self) -> Self {
        self.id_as_string = true;
        self
    }

    /// Replaces the rendered `value` of `attribute` with `value` as is.
    pub fn with_raw_value(mut self, attribute: &str, value: Value) -> Self {
        self.raw_values.insert(attribute.to_string(), value);
        self
    }
}

/// An employee as the simulator stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEmployee {
    /// Personio employee id.
    pub id: i64,
    /// The employee's data.
    pub seed: EmployeeSeed,
    /// When it was added (simulator clock).
    pub created_at: DateTime<Utc>,
    /// Last change (simulator clock); drives `updated_since`.
    pub last_modified_at: DateTime<Utc>,
    /// When each attribute last changed by an update (absent = since `created_at`). With
    /// `updated_since`, `attributes[]` selects employees with a change in a listed attribute.
    pub changed_at: BTreeMap<String, DateTime<Utc>>,
}

/// Every attribute key the simulator can send (besides `dynamic_…` ones), in response order.
pub const ATTRIBUTE_KEYS: [&str; 21] = [
    "id",
    "first_name",
    "last_name",
    "preferred_name",
    "email",
    "gender",
    "status",
    "position",
    "supervisor",
    "employment_type",
    "weekly_working_hours",
    "hire_date",
    "contract_end_date",
    "termination_date",
    "last_working_day",
    "department",
    "office",
    "subcompany",
    "created_at",
    "last_modified_at",
    "dynamic_33400",
];

impl StoredEmployee {
    /// Whether the employee changed at or after `since` — in one of `attributes` when given.
    pub fn changed_since(&self, since: DateTime<Utc>, attributes: &[String]) -> bool {
        if self.created_at >= since || attributes.is_empty() {
            return self.last_modified_at >= since;
        }
        attributes
            .iter()
            .filter_map(|name| self.changed_at.get(name))
            .any(|changed| *changed >= since)
    }

    /// Applies `change` and records which attributes it changed, at `now`.
    pub fn update(&mut self, now: DateTime<Utc>, change: impl FnOnce(&mut EmployeeSeed)) {
        let before = self.render_attributes();
        change(&mut self.seed);
        let after = self.render_attributes();
        for (key, value) in &after {
            if key != "last_modified_at" && before.get(key) != Some(value) {
                self.changed_at.insert(key.clone(), now);
            }
        }
        self.last_modified_at = now;
    }

    /// All attributes in the v1 envelope `{label, value, type, universal_id}`.
    pub fn render_attributes(&self) -> Map<String, Value> {
        let seed = &self.seed;
        let custom = seed
            .custom
            .iter()
            .map(|(key, value)| (key.as_str(), "Custom attribute", "standard", json!(value)));
        let mut attributes = Map::new();
        for (key, label, kind, value) in self.standard_attributes().into_iter().chain(custom) {
            let value = seed.raw_values.get(key).cloned().unwrap_or(value);
            let universal = if key.starts_with("dynamic_") {
                Value::Null
            } else {
                json!(key)
            };
            attributes.insert(
                key.to_string(),
                json!({"label": label, "value": value, "type": kind, "universal_id": universal}),
            );
        }
        attributes
    }

    /// The attributes every employee has: key, label, type and value (a table, one row a line).
    #[rustfmt::skip]
    fn standard_attributes(&self) -> Vec<(&str, &'static str, &'static str, Value)> {
        let seed = &self.seed;
        let style = seed.date_style;
        let id = if seed.id_as_string {
            json!(self.id.to_string())
        } else {
            json!(self.id)
        };
        let unit = |kind: &str, unit: Option<&OrgUnit>| org_unit(kind, unit, seed.org_unit_style);
        let subcompany =
            json!({"type": "Subcompany", "attributes": {"id": 7033, "name": "Demo GmbH"}});
        let employment_type = seed.employment_type.as_deref().unwrap_or("internal");
        vec![
            ("id", "ID", "integer", id),
            ("first_name", "First name", "standard", json!(seed.first_name)),
            ("last_name", "Last name", "standard", json!(seed.last_name)),
            ("preferred_name", "Preferred name", "standard", json!("")),
            ("email", "Email", "standard", json!(seed.email)),
            ("gender", "Gender", "standard", json!(seed.gender)),
            ("status", "Status", "standard", json!(seed.status)),
            ("position", "Position", "standard", json!(seed.position)),
            ("supervisor", "Supervisor", "standard", supervisor(seed.supervisor_id)),
            ("employment_type", "Employment type", "standard", json!(employment_type)),
            // Personio sends this number as a string in one example and as a number in another.
            ("weekly_working_hours", "Weekly hours", "standard", json!("40")),
            ("hire_date", "Hire date", "date", date(seed.hire_date, style)),
            ("contract_end_date", "Contract ends", "date", date(seed.contract_end_date, style)),
            ("termination_date", "Termination date", "date", date(seed.termination_date, style)),
            ("last_working_day", "Last day of work", "date", date(seed.last_working_day, style)),
            ("department", "Department", "standard", unit("Department", seed.department.as_ref())),
            ("office", "Office", "standard", unit("Office", seed.office.as_ref())),
            ("subcompany", "Subcompany", "standard", subcompany),
            ("created_at", "Created at", "date", instant(self.created_at, style)),
            ("last_modified_at", "Last modified", "date", instant(self.last_modified_at, style)),
            ("dynamic_33400", "Anniversary Date", "date", json!("2021-01-01")),
        ]
    }
}

fn supervisor(id: Option<i64>) -> Value {
    match id {
        None => Value::Null,
        Some(id) => json!({"type": "Employee", "attributes": {
            "id": {"label": "ID", "value": id, "type": "integer", "universal_id": "id"}
        }}),
    }
}

fn org_unit(kind: &str, unit: Option<&OrgUnit>, style: OrgUnitStyle) -> Value {
    match (unit, style) {
        (None, _) => Value::Null,
        (Some(unit), OrgUnitStyle::Plain) => json!(unit.name),
        (Some(unit), OrgUnitStyle::Nested) => {
            json!({"type": kind, "attributes": {"id": unit.id, "name": unit.name}})
        }
    }
}

/// A calendar date as local midnight in Berlin, in the record's style.
fn date(date: Option<NaiveDate>, style: DateStyle) -> Value {
    let Some(date) = date else {
        return Value::Null;
    };
    if style == DateStyle::Plain {
        return json!(date.format("%Y-%m-%d").to_string());
    }
    let offset = Berlin.offset_from_utc_date(&date).fix().local_minus_utc();
    json!(format!(
        "{}T00:00:00{}",
        date.format("%Y-%m-%d"),
        offset_text(offset, style)
    ))
}

/// An instant in Berlin local time, in the record's style (plain dates keep the offset form).
fn instant(at: DateTime<Utc>, style: DateStyle) -> Value {
    let local = at.with_timezone(&Berlin);
    let offset = local.offset().fix().local_minus_utc();
    json!(format!(
        "{}{}",
        local.format("%Y-%m-%dT%H:%M:%S"),
        offset_text(offset, style)
    ))
}

fn offset_text(seconds: i32, style: DateStyle) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.abs() / 60;
    let (hours, minutes) = (minutes / 60, minutes % 60);
    match style {
        DateStyle::OffsetWithoutColon => format!("{sign}{hours:02}{minutes:02}"),
        _ => format!("{sign}{hours:02}:{minutes:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(seed: EmployeeSeed) -> StoredEmployee {
        let at = Utc.with_ymd_and_hms(2020, 11, 18, 16, 33, 55).unwrap();
        StoredEmployee {
            id: 1,
            seed,
            created_at: at,
            last_modified_at: at,
            changed_at: BTreeMap::new(),
        }
    }

    #[test]
    fn renders_dates_in_each_style() {
        let hire = NaiveDate::from_ymd_opt(2014, 11, 9).unwrap();
        let seed = EmployeeSeed::new("A", "B", "a@example.com").with_hire_date(hire);
        let render = |style| {
            stored(seed.clone().with_date_style(style)).render_attributes()["hire_date"]["value"]
                .clone()
        };
        assert_eq!(
            render(DateStyle::OffsetWithColon),
            json!("2014-11-09T00:00:00+01:00")
        );
        assert_eq!(
            render(DateStyle::OffsetWithoutColon),
            json!("2014-11-09T00:00:00+0100")
        );
        assert_eq!(render(DateStyle::Plain), json!("2014-11-09"));
        let modified = stored(seed).render_attributes()["last_modified_at"]["value"].clone();
        assert_eq!(modified, json!("2020-11-18T17:33:55+01:00"));
    }

    #[test]
    fn renders_org_units_nested_plain_or_null() {
        let seed = EmployeeSeed::new("A", "B", "a@example.com").with_department(5, "Sales");
        let nested = stored(seed.clone()).render_attributes();
        assert_eq!(
            nested["department"]["value"]["attributes"]["name"],
            json!("Sales")
        );
        assert_eq!(nested["office"]["value"], Value::Null);
        let plain = stored(seed.with_org_unit_style(OrgUnitStyle::Plain)).render_attributes();
        assert_eq!(plain["department"]["value"], json!("Sales"));
    }

    #[test]
    fn updated_since_with_attributes_selects_by_changed_attribute() {
        let mut employee = stored(EmployeeSeed::new("A", "B", "a@example.com"));
        let later = employee.created_at + chrono::Duration::hours(1);
        employee.update(later, |seed| seed.position = Some("CTO".into()));
        let since = employee.created_at + chrono::Duration::minutes(30);
        assert!(employee.changed_since(since, &[]));
        assert!(employee.changed_since(since, &["position".to_string()]));
        assert!(!employee.changed_since(since, &["email".to_string()]));
        assert_eq!(employee.last_modified_at, later);
    }

    #[test]
    fn raw_values_override_rendering() {
        let seed = EmployeeSeed::new("A", "B", "a@example.com")
            .with_raw_value("hire_date", json!("2023-02-30"))
            .with_id_as_string();
        let attributes = stored(seed).render_attributes();
        assert_eq!(attributes["hire_date"]["value"], json!("2023-02-30"));
        assert_eq!(attributes["id"]["value"], json!("1"));
    }
}
