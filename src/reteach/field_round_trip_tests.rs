//! Proves the field table's promise ([`crate::sync::field_table`]): every row reaches every type
//! that carries reteach fields — read from a reteach answer, written in a create and an update
//! body, mapped from Personio, configured in `spec.mapping`. A row added to the table that one of
//! them misses fails here (most such omissions do not even compile: the members are generated
//! from the rows).

use chrono::DateTime;

use super::wire;
use crate::api::EmployeeMappingSpec;
use crate::sync::employee_config::EmployeeMapping;
use crate::sync::field_source::FieldSource;
use crate::sync::field_table::{Cleaning, FieldValue, Gender, Kind, ReteachField, FIELDS};
use crate::sync::{CustomerFields, CustomerPatch, DesiredEmployee, ReteachCustomer};

fn sample(kind: Kind, index: usize) -> FieldValue {
    match kind {
        Kind::Text => FieldValue::Text(Some(format!("value-{index}"))),
        Kind::Gender => FieldValue::Gender(Some(Gender::Diverse)),
        Kind::Instant => FieldValue::Instant(Some(
            DateTime::from_timestamp(1_700_000_000 + index as i64, 0).unwrap(),
        )),
    }
}

fn json_of(value: &FieldValue) -> serde_json::Value {
    match value {
        FieldValue::Text(text) => serde_json::json!(text),
        FieldValue::Gender(gender) => serde_json::json!(gender),
        FieldValue::Instant(at) => serde_json::json!(at),
    }
}

#[test]
fn every_row_round_trips_through_the_wire_types() {
    for (index, row) in FIELDS.iter().enumerate() {
        let field = row.field;
        let name = field.name();
        let value = sample(row.kind, index);
        let wire_value = json_of(&value);

        let answer = serde_json::json!({ "id": "c1", name: wire_value });
        let parsed = wire::customer(&answer).unwrap();
        assert!(parsed.value(field) == value, "reteach answer: {name}");
        let mut customer = ReteachCustomer {
            id: "c1".into(),
            ..ReteachCustomer::default()
        };
        customer.put(field, value.clone());
        assert!(customer == parsed, "ReteachCustomer: {name}");

        let mut patch = CustomerPatch::default();
        patch.put(field, value.clone());
        assert!(
            patch.value(field) == Some(value.clone()),
            "CustomerPatch: {name}"
        );
        let body = serde_json::to_value(&patch).unwrap();
        assert_eq!(
            body,
            serde_json::json!({ name: wire_value }),
            "PUT body: {name}"
        );
        patch.leave_out(field);
        assert!(
            patch == CustomerPatch::default(),
            "CustomerPatch::leave_out: {name}"
        );

        if field != ReteachField::Email {
            let mut fields = CustomerFields::default();
            fields.put(field, value.clone());
            assert!(fields.value(field) == value, "CustomerFields: {name}");
            let body = serde_json::to_value(&fields).unwrap();
            assert_eq!(body[name], wire_value, "POST body: {name}");
        }

        assert_eq!(
            row.cleaning == Cleaning::Gender,
            row.kind == Kind::Gender,
            "cleaning and type agree: {name}"
        );
        if row.configurable {
            let mut desired = DesiredEmployee::default();
            desired.put(field, value.clone());
            assert!(desired.value(field) == value, "DesiredEmployee: {name}");

            let mut mapping = EmployeeMapping::default();
            let configured = FieldSource::Constant("x".into());
            *mapping.source_mut(field).unwrap() = configured.clone();
            assert_eq!(mapping.source(field), Some(&configured), "mapping: {name}");

            let spec: EmployeeMappingSpec =
                serde_json::from_value(serde_json::json!({ name: { "constant": "x" } })).unwrap();
            assert!(spec.source(field).is_some(), "spec.mapping.{name}");
        } else {
            assert!(EmployeeMapping::default().source(field).is_none(), "{name}");
        }
    }
}

/// The default mapping is the table's source column, and the attributes it reads are what the
/// setup guide tells customers to whitelist.
#[test]
fn the_default_mapping_is_the_source_column() {
    let mapping = EmployeeMapping::default();
    for row in FIELDS.iter().filter(|row| row.configurable) {
        let expected = match row.source {
            crate::sync::field_table::Source::Attribute(name) => FieldSource::attribute(name),
            _ => FieldSource::Unmapped,
        };
        assert_eq!(
            mapping.source(row.field),
            Some(&expected),
            "{}",
            row.field.name()
        );
    }
}
