//! `/customer` routes.
//!
//! `POST /customer` is find-or-create. The simulator's matching rule (reteach does not document
//! one, README §1.11 item 3): with an `externalId` in the body, the customer with that externalId
//! is returned unchanged (200); without one, the customer with that e-mail is returned (200).
//! Otherwise a new customer is created (201) — unless the e-mail already belongs to another
//! customer, which is a 422. The operator therefore looks up by externalId, then e-mail, and only
//! then creates.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::body::CustomerBody;
use super::errors::{nest_error, nest_validation};
use super::input::Change;
use super::model::SimCustomer;
use super::paging::Paging;
use super::state::State as SimState;
use super::ReteachSim;

fn not_found() -> Response {
    nest_error(StatusCode::NOT_FOUND, "Customer not found")
}

/// A 422 when `email` or `external_id` is used by a customer other than `except`. The message
/// echoes the value like a real backend might, so clients must scrub it.
fn conflict(
    state: &SimState,
    except: Option<&str>,
    email: Option<&str>,
    external_id: Option<&str>,
) -> Option<Response> {
    let others = || {
        state
            .customers
            .iter()
            .filter(move |c| Some(c.id.as_str()) != except)
    };
    if let Some(email) = email {
        let taken = others().any(|c| {
            c.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        });
        if taken {
            return Some(nest_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("Customer with email {email} already exists"),
            ));
        }
    }
    if let Some(external_id) = external_id {
        if others().any(|c| c.external_id.as_deref() == Some(external_id)) {
            return Some(nest_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("Customer with externalId {external_id} already exists"),
            ));
        }
    }
    None
}

/// `GET /customer?page&limit&externalId`.
pub(crate) async fn list(
    State(sim): State<ReteachSim>,
    Query(query): Query<HashMap<String, String>>,
    paging: Paging,
) -> Response {
    let now = sim.clock.now();
    let external_id = query.get("externalId");
    let body = sim.with_state(|state| {
        let matching: Vec<&SimCustomer> = state
            .customers
            .iter()
            .filter(|c| external_id.is_none_or(|id| c.external_id.as_ref() == Some(id)))
            .collect();
        paging.render(matching, |c| state.render_customer(c, now))
    });
    Json(body).into_response()
}

/// `GET /customer/{identifier}` (id, e-mail, username or externalId).
pub(crate) async fn get_one(
    State(sim): State<ReteachSim>,
    Path(identifier): Path<String>,
) -> Response {
    let now = sim.clock.now();
    let found = sim.with_state(|state| {
        state
            .customer_index(&identifier)
            .map(|i| state.render_customer(&state.customers[i], now))
    });
    match found {
        Some(customer) => Json(customer).into_response(),
        None => not_found(),
    }
}

/// `POST /customer`: find-or-create (rule in the module docs).
pub(crate) async fn create(
    State(sim): State<ReteachSim>,
    CustomerBody(input): CustomerBody,
) -> Response {
    let now = sim.clock.now();
    sim.with_state(|state| {
        let set = |change: &Change<String>| match change {
            Change::Set(value) if !value.is_empty() => Some(value.clone()),
            _ => None,
        };
        let external_id = set(input.text("externalId"));
        let email = set(input.text("email"));
        let existing = match (&external_id, &email) {
            (Some(external_id), _) => state
                .customers
                .iter()
                .position(|c| c.external_id.as_ref() == Some(external_id)),
            (None, Some(email)) => state.customers.iter().position(|c| {
                c.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            }),
            (None, None) => None,
        };
        if let Some(index) = existing {
            let body = state.render_customer(&state.customers[index], now);
            return (StatusCode::OK, Json(body)).into_response();
        }
        if email.is_none() && set(input.text("userName")).is_none() {
            return nest_validation(
                StatusCode::UNPROCESSABLE_ENTITY,
                vec!["email must be an email".to_string()],
            );
        }
        if let Some(response) = conflict(state, None, email.as_deref(), external_id.as_deref()) {
            return response;
        }
        let mut customer = SimCustomer {
            id: state.new_id("cus"),
            source: "REST_API".to_string(),
            created_at: now,
            ..SimCustomer::default()
        };
        input.apply(&mut customer);
        state.count_write(&customer.id);
        state.customers.push(customer);
        state.fire_lock_dates(now);
        let body = match state.customers.last() {
            Some(created) => state.render_customer(created, now),
            None => serde_json::Value::Null,
        };
        (StatusCode::CREATED, Json(body)).into_response()
    })
}

/// `PUT /customer/{identifier}`: omitted fields stay, `null` clears.
pub(crate) async fn update(
    State(sim): State<ReteachSim>,
    Path(identifier): Path<String>,
    CustomerBody(input): CustomerBody,
) -> Response {
    let now = sim.clock.now();
    sim.with_state(|state| {
        let Some(index) = state.customer_index(&identifier) else {
            return not_found();
        };
        let current = &state.customers[index];
        let email = input.text("email").result(&current.email);
        let external_id = input.text("externalId").result(&current.external_id);
        let id = current.id.clone();
        if let Some(response) = conflict(state, Some(&id), email.as_deref(), external_id.as_deref())
        {
            return response;
        }
        state.count_write(&id);
        input.apply(&mut state.customers[index]);
        state.fire_lock_dates(now);
        Json(state.render_customer(&state.customers[index], now)).into_response()
    })
}

/// `DELETE /customer/{identifier}`: exists in reteach; the operator must never call it.
pub(crate) async fn delete(
    State(sim): State<ReteachSim>,
    Path(identifier): Path<String>,
) -> Response {
    sim.with_state(|state| {
        let Some(index) = state.customer_index(&identifier) else {
            return not_found();
        };
        let removed = state.customers.remove(index);
        state.participations.retain(|p| p.customer_id != removed.id);
        Json(json!({ "isSucceeded": true })).into_response()
    })
}
