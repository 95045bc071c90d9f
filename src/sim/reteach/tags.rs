//! Tag routes (2022-12 spec, `Tag` / `CustomerToTag` controllers): `GET /tags`,
//! `PUT /customer/{identifier}/tags` (`{tag: {id?, name?}}`, 200 with the Tag),
//! `PUT /customer/{identifier}/multiple-tags` (`{tags: [...], mode: ADD|REPLACE}`, 201 with the
//! customer's assigned tags of the request) and `DELETE /customer/{identifier}/tags/{tagIdOrName}`
//! (200 with the Tag). A tag named in a request is created on first use; one given by id must
//! exist (404). An unknown customer, or a tag the customer does not have on delete, is a 404.
//!
//! Choices where the spec is silent: names are matched exactly (case-sensitive); assigning a tag
//! the customer already has changes nothing and answers as a success; `mode: null` counts as
//! `ADD`; an empty name is a 422.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::body::JsonBody;
use super::errors::{nest_error, nest_validation};
use super::model::SimTag;
use super::paging::Paging;
use super::state::State as SimState;
use super::ReteachSim;

/// A tag reference of a request body: `{id}` or `{name}`.
enum TagRef {
    Id(String),
    Name(String),
}

fn tag_ref(value: &Value, path: &str) -> Result<TagRef, Vec<String>> {
    let Some(object) = value.as_object() else {
        return Err(vec![format!("{path} must be an object")]);
    };
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::trim);
    match (text("id"), text("name")) {
        (Some(id), _) if !id.is_empty() => Ok(TagRef::Id(id.to_string())),
        (_, Some(name)) if !name.is_empty() => Ok(TagRef::Name(name.to_string())),
        _ => Err(vec![format!("{path}.name should not be empty")]),
    }
}

fn unprocessable(messages: Vec<String>) -> Response {
    nest_validation(StatusCode::UNPROCESSABLE_ENTITY, messages)
}

fn customer_not_found() -> Response {
    nest_error(StatusCode::NOT_FOUND, "Customer not found")
}

fn tag_not_found() -> Response {
    nest_error(StatusCode::NOT_FOUND, "Tag not found")
}

impl SimState {
    /// The academy tag a reference names: by id (must exist) or by name (created on first use).
    fn resolve_tag(&mut self, reference: &TagRef) -> Option<SimTag> {
        match reference {
            TagRef::Id(id) => self.tags.iter().find(|t| &t.id == id).cloned(),
            TagRef::Name(name) => {
                if let Some(tag) = self.tags.iter().find(|t| &t.name == name) {
                    return Some(tag.clone());
                }
                let tag = SimTag {
                    id: self.new_id("tag"),
                    name: name.clone(),
                };
                self.tags.push(tag.clone());
                Some(tag)
            }
        }
    }

    /// Gives the customer addressed by `identifier` the tags `references` name (none it had
    /// before when `replace`; a tag it has already changes nothing), as one write. The tags, or
    /// what makes the 404 of an unknown customer or tag id (nothing assigned then).
    fn tag_customer(
        &mut self,
        identifier: &str,
        references: &[TagRef],
        replace: bool,
    ) -> Result<Vec<SimTag>, fn() -> Response> {
        let Some(index) = self.customer_index(identifier) else {
            return Err(customer_not_found);
        };
        let mut tags = Vec::with_capacity(references.len());
        for reference in references {
            match self.resolve_tag(reference) {
                Some(tag) => tags.push(tag),
                None => return Err(tag_not_found),
            }
        }
        let id = self.customers[index].id.clone();
        self.count_write(&id);
        let customer = &mut self.customers[index];
        if replace {
            customer.tags.clear();
        }
        for tag in &tags {
            if !customer.tags.iter().any(|t| t.id == tag.id) {
                customer.tags.push(tag.clone());
            }
        }
        Ok(tags)
    }
}

/// `GET /tags?page&limit`.
pub(crate) async fn list(State(sim): State<ReteachSim>, paging: Paging) -> Response {
    let body = sim.with_state(|state| paging.render(state.tags.iter().collect(), SimTag::to_json));
    Json(body).into_response()
}

/// `PUT /customer/{identifier}/tags` `{tag: {id?, name?}}`.
pub(crate) async fn assign(
    State(sim): State<ReteachSim>,
    Path(identifier): Path<String>,
    JsonBody(value): JsonBody,
) -> Response {
    let reference = match value.get("tag") {
        Some(tag) => tag_ref(tag, "tag"),
        None => Err(vec!["tag should not be empty".to_string()]),
    };
    let reference = match reference {
        Ok(reference) => reference,
        Err(messages) => return unprocessable(messages),
    };
    let references = std::slice::from_ref(&reference);
    match sim.with_state(|state| state.tag_customer(&identifier, references, false)) {
        Ok(tags) => Json(tags.first().map(SimTag::to_json)).into_response(),
        Err(not_found) => not_found(),
    }
}

/// `PUT /customer/{identifier}/multiple-tags` `{tags: [{id?, name?}], mode: ADD|REPLACE}`.
pub(crate) async fn assign_many(
    State(sim): State<ReteachSim>,
    Path(identifier): Path<String>,
    JsonBody(value): JsonBody,
) -> Response {
    let mut errors = Vec::new();
    let replace = match value.get("mode") {
        Some(Value::String(mode)) if mode == "REPLACE" => true,
        Some(Value::String(mode)) if mode == "ADD" => false,
        Some(Value::Null) => false,
        _ => {
            errors.push("mode must be one of the following values: ADD, REPLACE".to_string());
            false
        }
    };
    let references: Vec<TagRef> = match value.get("tags").and_then(Value::as_array) {
        Some(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                tag_ref(item, &format!("tags.{i}"))
                    .map_err(|e| errors.extend(e))
                    .ok()
            })
            .collect(),
        None => {
            errors.push("tags must be an array".to_string());
            Vec::new()
        }
    };
    if !errors.is_empty() {
        return unprocessable(errors);
    }
    match sim.with_state(|state| state.tag_customer(&identifier, &references, replace)) {
        Ok(tags) => {
            let body: Vec<Value> = tags.iter().map(SimTag::to_json).collect();
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(not_found) => not_found(),
    }
}

/// `DELETE /customer/{identifier}/tags/{tagIdOrName}`.
pub(crate) async fn unassign(
    State(sim): State<ReteachSim>,
    Path((identifier, tag)): Path<(String, String)>,
) -> Response {
    sim.with_state(|state| {
        let Some(index) = state.customer_index(&identifier) else {
            return customer_not_found();
        };
        let customer = &mut state.customers[index];
        let position = customer
            .tags
            .iter()
            .position(|t| t.id == tag)
            .or_else(|| customer.tags.iter().position(|t| t.name == tag));
        let Some(position) = position else {
            return tag_not_found();
        };
        let removed = customer.tags.remove(position);
        let id = customer.id.clone();
        state.count_write(&id);
        Json(removed.to_json()).into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_tag_reference_needs_an_id_or_a_name() {
        assert!(matches!(
            tag_ref(&json!({"name": " Sales "}), "tag"),
            Ok(TagRef::Name(name)) if name == "Sales"
        ));
        assert!(matches!(
            tag_ref(&json!({"id": "tag_1"}), "tag"),
            Ok(TagRef::Id(_))
        ));
        assert_eq!(
            tag_ref(&json!({"name": ""}), "tag").err(),
            Some(vec!["tag.name should not be empty".to_string()])
        );
        assert!(tag_ref(&json!("Sales"), "tag").is_err());
    }
}
