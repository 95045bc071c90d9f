//! Arbitrary JSON for the clients' "never panics" property tests: any value nested a few levels,
//! with object keys drawn mostly from the field names a parser looks for, so the values reach it.

use proptest::prelude::*;
use serde_json::Value;

/// How [`any_json`] draws its values.
pub struct JsonShape {
    /// Pattern of the plain strings.
    pub text: &'static str,
    /// Pattern of the date-like strings (the upstream's date format, sometimes broken).
    pub date: &'static str,
    /// Nesting levels at most (`prop_recursive`'s depth).
    pub depth: u32,
    /// Values in one tree, about (`prop_recursive`'s desired size).
    pub size: u32,
}

/// Null, booleans, numbers, strings and date-like strings, in arrays of up to 3 and objects of up
/// to 5 entries keyed by `keys`.
pub fn any_json(shape: JsonShape, keys: BoxedStrategy<String>) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        shape.text.prop_map(Value::String),
        shape.date.prop_map(Value::String),
    ];
    leaf.prop_recursive(shape.depth, shape.size, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}
