//! One v1 employee record → [`PersonioEmployee`], leniently.
//!
//! Every attribute arrives in the envelope `{label, value, type, universal_id}`; ids come as numbers
//! or strings; `department`/`office` are `{type, attributes: {id, name}}`, a plain string or `null`.
//! A record that cannot be trusted (no usable id, an impossible date) becomes a [`SkippedRecord`]
//! whose reason names the attribute, never its value.

use serde_json::{Map, Value};

use super::dates::{parse_instant_value, parse_local_date_value, DateError};
use super::{OPTIONAL_ATTRIBUTES, REQUIRED_ATTRIBUTES};
use crate::sync::{PersonioEmployee, SkippedRecord};

/// Parses one element of the `data` array.
pub fn parse_employee(record: &Value) -> Result<PersonioEmployee, SkippedRecord> {
    let attributes = record
        .get("attributes")
        .and_then(Value::as_object)
        .ok_or_else(|| skipped(None, "record without attributes"))?;
    let id = attribute_value(attributes, "id")
        .and_then(id_text)
        .ok_or_else(|| skipped(None, "id: missing or unusable"))?;
    let date = |name: &'static str| {
        parse_local_date_value(attribute_value(attributes, name))
            .map_err(|error| skipped(Some(&id), &date_reason(name, error)))
    };
    let hire_date = date("hire_date")?;
    let termination_date = date("termination_date")?;
    let contract_end_date = date("contract_end_date")?;
    // Informative only: an unreadable value must not cost the employee its sync.
    let last_modified_at =
        parse_instant_value(attribute_value(attributes, "last_modified_at")).unwrap_or(None);
    let text = |name: &str| attribute_value(attributes, name).and_then(plain_text);
    Ok(PersonioEmployee {
        first_name: text("first_name"),
        last_name: text("last_name"),
        email: text("email"),
        position: text("position"),
        department: attribute_value(attributes, "department").and_then(named_object),
        office: attribute_value(attributes, "office").and_then(named_object),
        gender: text("gender").map(|g| g.to_lowercase()),
        status: text("status").map(|s| s.to_lowercase()),
        hire_date,
        termination_date,
        contract_end_date,
        last_modified_at,
        other: other_attributes(attributes),
        id,
    })
}

/// Whether `name` is read into a typed field of [`PersonioEmployee`]: the id and every attribute
/// the sync asks for by default, required or optional.
fn is_typed(name: &str) -> bool {
    name == "id" || REQUIRED_ATTRIBUTES.contains(&name) || OPTIONAL_ATTRIBUTES.contains(&name)
}

/// The other attributes the request asked for (custom `dynamic_…`, `employment_type`,
/// `subcompany`, …) as text; objects such as `subcompany` by their name.
fn other_attributes(attributes: &Map<String, Value>) -> std::collections::BTreeMap<String, String> {
    attributes
        .keys()
        .filter(|key| !is_typed(key))
        .filter_map(|key| {
            let value = attribute_value(attributes, key).and_then(named_object)?;
            Some((key.clone(), value))
        })
        .collect()
}

/// Attribute names a record carries (whitelisted ones appear even when their value is `null`).
pub fn attribute_names(record: &Value) -> impl Iterator<Item = &str> {
    record
        .get("attributes")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|attributes| attributes.iter())
        .flat_map(|(key, envelope)| {
            let universal = envelope.get("universal_id").and_then(Value::as_str);
            std::iter::once(key.as_str()).chain(universal)
        })
}

/// The id of a record even when the rest does not parse (for PII-free skip reasons).
pub fn record_id(record: &Value) -> Option<String> {
    let attributes = record.get("attributes").and_then(Value::as_object)?;
    attribute_value(attributes, "id").and_then(id_text)
}

fn skipped(id: Option<&str>, reason: &str) -> SkippedRecord {
    SkippedRecord {
        id: id.map(str::to_string),
        reason: reason.to_string(),
    }
}

fn date_reason(name: &str, error: DateError) -> String {
    format!("{name}: {error}")
}

/// The `value` of an attribute: looked up by key, then by `universal_id`; a bare value (no
/// envelope) is accepted as the value itself.
fn attribute_value<'a>(attributes: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let envelope = attributes.get(name).or_else(|| {
        attributes
            .values()
            .find(|envelope| envelope.get("universal_id").and_then(Value::as_str) == Some(name))
    })?;
    match envelope {
        Value::Object(fields) if fields.contains_key("value") => fields.get("value"),
        Value::Object(fields) if fields.contains_key("label") => None,
        other => Some(other),
    }
}

/// An id as text: a non-negative integer number, or a non-blank string.
pub(super) fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(number) => {
            if let Some(id) = number.as_u64() {
                return Some(id.to_string());
            }
            let float = number.as_f64()?;
            let integral = float.fract() == 0.0 && (0.0..9.0e15).contains(&float);
            integral.then(|| format!("{float:.0}"))
        }
        Value::String(text) => {
            let text = text.trim();
            let usable = !text.is_empty()
                && text.len() <= 64
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            usable.then(|| text.to_string())
        }
        _ => None,
    }
}

/// A string value, trimmed; blank → `None`. Numbers become their text (types drift upstream).
fn plain_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(text) => text.trim().to_string(),
        Value::Number(number) => number.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// The name of a department/office: `{type, attributes: {id, name}}`, `{name}` or a plain string.
fn named_object(value: &Value) -> Option<String> {
    match value {
        Value::Object(object) => object
            .get("attributes")
            .and_then(|attributes| attributes.get("name"))
            .or_else(|| object.get("name"))
            .and_then(plain_text),
        other => plain_text(other),
    }
}

/// Asserts the text attributes of `employee` ([`PersonioEmployee::attribute`]), `None` where
/// one must be absent.
#[cfg(test)]
#[track_caller]
pub(super) fn assert_attributes(employee: &PersonioEmployee, expected: &[(&str, Option<&str>)]) {
    for (name, value) in expected {
        assert_eq!(employee.attribute(name), *value, "{name}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use serde_json::json;

    fn envelope(value: Value) -> Value {
        json!({"label": "X", "value": value, "type": "standard", "universal_id": null})
    }

    fn record(pairs: &[(&str, Value)]) -> Value {
        let attributes: Map<String, Value> = pairs
            .iter()
            .map(|(key, value)| (key.to_string(), envelope(value.clone())))
            .collect();
        json!({"type": "Employee", "attributes": attributes})
    }

    /// The employee of a record of these attribute values; panics when it is skipped.
    fn parsed(pairs: &[(&str, Value)]) -> PersonioEmployee {
        parse_employee(&record(pairs)).unwrap()
    }

    #[test]
    fn reads_the_spec_example() {
        let record = json!({"type": "Employee", "attributes": {
            "id": {"label": "ID", "value": 1, "type": "integer", "universal_id": "id"},
            "first_name": {"label": "First name", "value": " Alexander ", "type": "standard", "universal_id": "first_name"},
            "email": {"label": "Email", "value": "a@demo.email", "type": "standard", "universal_id": "email"},
            "gender": {"label": "Gender", "value": "Male", "type": "standard", "universal_id": "gender"},
            "department": {"label": "Department", "value": {"type": "Department", "attributes": {"id": 281521, "name": "Customer Support"}}, "type": "standard", "universal_id": "department"},
            "office": {"label": "Office", "value": {"type": "Office", "attributes": {"id": 131014, "name": "Munich"}}, "type": "standard", "universal_id": "office"},
            "hire_date": {"label": "Hire date", "value": "2014-11-09T00:00:00+01:00", "type": "date", "universal_id": "hire_date"},
            "termination_date": {"label": "Termination date", "value": null, "type": "date", "universal_id": "termination_date"},
            "last_modified_at": {"label": "Last modified", "value": "2020-11-18T17:33:55+01:00", "type": "date", "universal_id": "last_modified_at"}
        }});
        let employee = parse_employee(&record).unwrap();
        assert_eq!(employee.id, "1");
        assert_eq!(employee.first_name.as_deref(), Some("Alexander"));
        assert_eq!(employee.gender.as_deref(), Some("male"));
        assert_eq!(employee.department.as_deref(), Some("Customer Support"));
        assert_eq!(employee.office.as_deref(), Some("Munich"));
        assert_eq!(employee.hire_date, NaiveDate::from_ymd_opt(2014, 11, 9));
        assert_eq!(employee.termination_date, None);
        assert_eq!(
            employee.last_modified_at.unwrap().to_rfc3339(),
            "2020-11-18T16:33:55+00:00"
        );
    }

    #[test]
    fn keeps_custom_and_other_attributes_as_text() {
        let record = json!({"type": "Employee", "attributes": {
            "id": {"label": "ID", "value": 1, "type": "integer", "universal_id": "id"},
            "dynamic_33400": {"label": "Employee no", "value": " E-17 ", "type": "standard", "universal_id": null},
            "subcompany": {"label": "Subcompany", "value": {"type": "Subcompany", "attributes": {"id": 7, "name": "Demo GmbH"}}, "type": "standard", "universal_id": "subcompany"},
            "employment_type": {"label": "Employment type", "value": "internal", "type": "standard", "universal_id": "employment_type"},
            "cost_centers": {"label": "Cost centers", "value": [], "type": "list", "universal_id": "cost_centers"}
        }});
        let employee = parse_employee(&record).unwrap();
        assert_attributes(
            &employee,
            &[
                ("dynamic_33400", Some("E-17")),
                ("subcompany", Some("Demo GmbH")),
                ("employment_type", Some("internal")),
                ("cost_centers", None),
            ],
        );
    }

    #[test]
    fn an_unreadable_or_missing_last_modified_at_does_not_skip_the_employee() {
        let odd = record(&[
            ("id", json!(7)),
            ("last_modified_at", json!("last tuesday")),
        ]);
        let employee = parse_employee(&odd).unwrap();
        assert_eq!(employee.id, "7");
        assert_eq!(employee.last_modified_at, None);
        let without = parsed(&[("id", json!(8))]);
        assert_eq!(without.last_modified_at, None);
    }

    #[test]
    fn every_required_attribute_feeds_a_field_of_the_employee() {
        let base = parsed(&[("id", json!(1))]);
        for name in crate::personio::REQUIRED_ATTRIBUTES {
            let value = match name {
                "hire_date" | "termination_date" => json!("2024-05-01"),
                "department" | "office" => {
                    json!({"type": "Department", "attributes": {"id": 1, "name": "Sales"}})
                }
                _ => json!("x@example.com"),
            };
            let with = parsed(&[("id", json!(1)), (name, value)]);
            assert_ne!(with, base, "{name} must change what is synced");
        }
    }

    #[test]
    fn reads_id_given_as_string() {
        let employee = parsed(&[("id", json!(" 42 "))]);
        assert_eq!(employee.id, "42");
    }

    #[test]
    fn reads_department_as_plain_string_or_null() {
        let plain = parsed(&[("id", json!(1)), ("department", json!("Sales"))]);
        assert_attributes(&plain, &[("department", Some("Sales"))]);
        let null = parsed(&[
            ("id", json!(1)),
            ("department", Value::Null),
            ("office", json!("")),
        ]);
        assert_attributes(&null, &[("department", None), ("office", None)]);
    }

    #[test]
    fn reads_every_date_shape() {
        let employee = parsed(&[
            ("id", json!(7)),
            ("hire_date", json!("2012-02-01T00:00:00+0100")),
            ("termination_date", json!("2021-01-01")),
            ("contract_end_date", json!("")),
        ]);
        assert_eq!(employee.hire_date, NaiveDate::from_ymd_opt(2012, 2, 1));
        assert_eq!(
            employee.termination_date,
            NaiveDate::from_ymd_opt(2021, 1, 1)
        );
        assert_eq!(employee.contract_end_date, None);
    }

    #[test]
    fn blank_strings_become_none() {
        let employee = parsed(&[
            ("id", json!(7)),
            ("email", json!("   ")),
            ("position", json!(null)),
        ]);
        assert_attributes(&employee, &[("email", None), ("position", None)]);
    }

    #[test]
    fn skips_impossible_date_without_echoing_it() {
        let skipped = parse_employee(&record(&[
            ("id", json!(9)),
            ("hire_date", json!("2023-02-30")),
        ]))
        .unwrap_err();
        assert_eq!(skipped.id.as_deref(), Some("9"));
        assert_eq!(skipped.reason, "hire_date: unparseable date");
        assert!(!skipped.reason.contains("2023"));
    }

    #[test]
    fn skips_record_without_usable_id() {
        for id in [Value::Null, json!(""), json!(true), json!(-3), json!(1.5)] {
            let skipped = parse_employee(&record(&[("id", id)])).unwrap_err();
            assert_eq!(skipped.id, None);
            assert_eq!(skipped.reason, "id: missing or unusable");
        }
        assert!(parse_employee(&json!({"type": "Employee"})).is_err());
        assert!(parse_employee(&json!("nonsense")).is_err());
    }

    #[test]
    fn accepts_values_without_envelope() {
        let record = json!({"attributes": {"id": 5, "email": "x@example.com"}});
        let employee = parse_employee(&record).unwrap();
        assert_eq!(employee.id, "5");
        assert_eq!(employee.email.as_deref(), Some("x@example.com"));
    }

    #[test]
    fn lists_attribute_names_including_null_ones() {
        let record = record(&[("id", json!(1)), ("email", Value::Null)]);
        let names: Vec<&str> = attribute_names(&record).collect();
        assert!(names.contains(&"email"));
    }

    mod never_panics {
        use super::super::*;
        use proptest::prelude::*;

        use crate::upstream::arbitrary_json::{self, JsonShape};

        fn any_json() -> impl Strategy<Value = Value> {
            let shape = JsonShape {
                text: ".{0,24}",
                date:
                    "[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}[+-][0-9]{2}:?[0-9]{2})?",
                depth: 4,
                size: 48,
            };
            let keys = prop_oneof![
                Just("id".to_string()),
                Just("value".to_string()),
                Just("attributes".to_string()),
                Just("hire_date".to_string()),
                Just("department".to_string()),
                Just("name".to_string()),
                Just("last_modified_at".to_string()),
                Just("universal_id".to_string()),
                "[a-z_]{1,12}",
            ];
            arbitrary_json::any_json(shape, keys.boxed())
        }

        proptest! {
            #[test]
            fn on_arbitrary_json(value in any_json()) {
                let _ = parse_employee(&value);
                let _ = record_id(&value);
                let _ = attribute_names(&value).count();
                let wrapped = serde_json::json!({"attributes": value});
                let _ = parse_employee(&wrapped);
            }
        }
    }
}
