//! Lenient reading of reteach's JSON: unknown fields are ignored, fields of the wrong type count as
//! absent, and nothing panics. Parsing goes through `serde_json::Value` on purpose: one odd field
//! in one record must not make a whole page unreadable.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::ReteachError;
use crate::sync::field_table::{FieldValue, Kind, FIELDS};
use crate::sync::{Completion, CustomerTag, Gender, ReteachCustomer};

/// A string field; numbers are accepted as text (ids), everything else is absent.
pub(crate) fn text(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An RFC 3339 timestamp field; unparseable values count as absent.
pub(crate) fn timestamp(value: &Value, key: &str) -> Option<DateTime<Utc>> {
    let raw = value.get(key)?.as_str()?;
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// reteach's gender enum; any other value (including new ones reteach may add) is `None`.
pub(crate) fn gender(value: &Value, key: &str) -> Option<Gender> {
    match value.get(key)?.as_str()? {
        "MALE" => Some(Gender::Male),
        "FEMALE" => Some(Gender::Female),
        "DIVERSE" => Some(Gender::Diverse),
        _ => None,
    }
}

/// A customer object; `None` when it has no id (then it cannot be addressed anyway).
pub(crate) fn customer(value: &Value) -> Option<ReteachCustomer> {
    let mut customer = ReteachCustomer {
        id: text(value, "id")?,
        external_id: text(value, "externalId"),
        status: text(value, "status"),
        tags: tags(value),
        ..ReteachCustomer::default()
    };
    for row in FIELDS {
        let name = row.field.name();
        let field_value = match row.kind {
            Kind::Text => FieldValue::Text(text(value, name)),
            Kind::Gender => FieldValue::Gender(gender(value, name)),
            Kind::Instant => FieldValue::Instant(timestamp(value, name)),
        };
        customer.put(row.field, field_value);
    }
    Some(customer)
}

/// A customer's `tags: [{id, name}]`; entries without a name are left out (they cannot be
/// compared), a missing or odd list is no tags.
pub(crate) fn tags(value: &Value) -> Vec<CustomerTag> {
    value
        .get("tags")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(tag).collect())
        .unwrap_or_default()
}

/// One `Tag` object `{id, name}`; `None` without a name.
pub(crate) fn tag(value: &Value) -> Option<CustomerTag> {
    Some(CustomerTag {
        id: text(value, "id").unwrap_or_default(),
        name: text(value, "name")?,
    })
}

/// A list page `{results, resultCount}`: the items and the total, when given; `Malformed` (for
/// `endpoint`) without results.
pub(crate) fn page<'a>(
    value: &'a Value,
    endpoint: &'static str,
) -> Result<(&'a Vec<Value>, Option<u64>), ReteachError> {
    let results = value
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| ReteachError::malformed(endpoint, "no results"))?;
    let count = value.get("resultCount").and_then(Value::as_u64);
    Ok((results, count))
}

/// A participation as a [`Completion`]; `None` unless it is COMPLETED with a completion time and
/// belongs to a customer with an id.
pub(crate) fn completion(value: &Value) -> Option<Completion> {
    if value.get("status")?.as_str()? != "COMPLETED" {
        return None;
    }
    let completed_at = timestamp(value, "completedAt")?;
    let customer = value.get("customer")?;
    let course = value.get("course");
    let certificate = value.get("certificate").filter(|c| c.is_object());
    Some(Completion {
        participation_id: text(value, "id")?,
        certificate_id: certificate.and_then(|c| text(c, "id")),
        certificate_url: certificate
            .and_then(|c| text(c, "url"))
            .filter(|url| !url.is_empty()),
        course_name: course.and_then(|c| text(c, "name")).unwrap_or_default(),
        completed_at,
        customer_external_id: text(customer, "externalId"),
        customer_id: text(customer, "id")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn customer_parses_leniently() {
        let value = json!({
            "id": 17, "externalId": "42", "email": "a@b.example", "gender": "OTHER",
            "setActiveAt": "not a date", "setInactiveAt": "2026-01-31T23:00:00.000Z",
            "status": "ACTIVE", "tags": [{"id": "t", "name": "x"}], "somethingNew": {"a": 1},
            "firstName": null, "lastName": ["wrong type"]
        });
        let customer = customer(&value).unwrap();
        assert_eq!(customer.id, "17");
        assert_eq!(customer.gender, None);
        assert_eq!(customer.set_active_at, None);
        assert!(customer.set_inactive_at.is_some());
        assert_eq!(customer.first_name, None);
        assert_eq!(customer.last_name, None);
        assert_eq!(customer.tags.len(), 1);
        assert_eq!(customer.tags[0].name, "x");
        assert_eq!(customer.tags[0].address(), "t");
    }

    #[test]
    fn tags_without_a_name_or_in_odd_shapes_are_left_out() {
        let value = json!({"id": "c", "tags": [{"id": "t1"}, {"name": "Sales"}, 3, null]});
        let tags = customer(&value).unwrap().tags;
        assert_eq!(tags.len(), 1);
        assert_eq!(tags[0].address(), "Sales", "no id: addressed by name");
        assert!(customer(&json!({"id": "c", "tags": "x"}))
            .unwrap()
            .tags
            .is_empty());
    }

    #[test]
    fn customer_without_id_is_skipped() {
        assert!(customer(&json!({"email": "x"})).is_none());
    }

    #[test]
    fn completion_requires_completed_status_and_time() {
        let base = json!({
            "id": "p1", "status": "COMPLETED", "completedAt": "2026-11-01T10:00:00Z",
            "customer": {"id": "c1", "externalId": "7"}, "course": {"id": "k", "name": "Safety"},
            "certificate": {"id": "cert1", "url": null}
        });
        let done = completion(&base).unwrap();
        assert_eq!(done.certificate_id.as_deref(), Some("cert1"));
        assert_eq!(done.certificate_url, None);
        assert_eq!(done.course_name, "Safety");
        let mut started = base.clone();
        started["status"] = json!("STARTED");
        assert!(completion(&started).is_none());
        let mut no_time = base.clone();
        no_time["completedAt"] = Value::Null;
        assert!(completion(&no_time).is_none());
        let mut no_cert = base;
        no_cert["certificate"] = Value::Null;
        assert_eq!(completion(&no_cert).unwrap().certificate_id, None);
    }

    mod never_panics {
        use super::super::*;
        use proptest::prelude::*;

        use crate::upstream::arbitrary_json::{self, JsonShape};

        /// Any JSON value, nested a few levels.
        fn any_json() -> impl Strategy<Value = Value> {
            let shape = JsonShape {
                text: ".{0,20}",
                date: "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,3})?(Z|[+-][0-9]{2}:[0-9]{2})?",
                depth: 3,
                size: 32,
            };
            arbitrary_json::any_json(shape, field_name().boxed())
        }

        /// Mostly the field names the parsers look for, so the values reach them.
        fn field_name() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(vec![
                    "id",
                    "externalId",
                    "email",
                    "firstName",
                    "lastName",
                    "position",
                    "department",
                    "location",
                    "gender",
                    "setActiveAt",
                    "setInactiveAt",
                    "status",
                    "tags",
                    "results",
                    "resultCount",
                    "completedAt",
                    "customer",
                    "course",
                    "certificate",
                    "url",
                    "name",
                ])
                .prop_map(str::to_string),
                "[a-zA-Z]{1,8}",
            ]
        }

        proptest! {
            #[test]
            fn customer_and_page_parsing_never_panics(value in any_json()) {
                let _ = customer(&value);
                if let Ok((items, _)) = page(&value, "test") {
                    for item in items {
                        let _ = customer(item);
                        let _ = completion(item);
                    }
                }
            }

            #[test]
            fn completion_parsing_never_panics(
                status in prop::sample::select(vec!["COMPLETED", "STARTED", ""]),
                rest in any_json(),
            ) {
                let mut value = rest;
                if let Value::Object(map) = &mut value {
                    map.insert("status".into(), Value::String(status.into()));
                }
                let _ = completion(&value);
            }

            #[test]
            fn parsing_a_whole_body_never_panics(body in ".{0,200}") {
                if let Ok(value) = serde_json::from_str::<Value>(&body) {
                    let _ = customer(&value);
                    let _ = completion(&value);
                    let _ = page(&value, "test");
                }
            }
        }
    }
}
