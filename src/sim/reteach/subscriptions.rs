//! REST hooks (`GET/POST /subscription`, `GET/DELETE /subscription/{id}`, 2022 spec) and their
//! delivery. reteach documents neither payload nor signature (lms README §1.8); the simulator
//! posts `{"event": <event>, "data": {<ids>}}` once, without retries, and the operator relies on
//! none of it (any JSON object on a resource's path wakes it).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use super::errors::{nest_error, nest_validation};
use super::ReteachSim;
use crate::sim::hooks::Outgoing;

/// The event enum of the spec.
pub const EVENTS: [&str; 18] = [
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "participation.created",
    "participation.completed",
    "certificate.processed",
    "customer_export.processed",
    "customer_import.processed",
    "course.created",
    "course.updated",
    "course.deleted",
    "live_course.created",
    "live_course.updated",
    "live_course.deleted",
    "customer_to_tag.assigned",
    "customer_to_tag.removed",
    "tag.created",
    "order.committed",
];

/// One subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimSubscription {
    /// Id.
    pub id: String,
    /// Where to post.
    pub target: String,
    /// Which event.
    pub event: String,
}

fn render(s: &SimSubscription) -> Value {
    json!({"id": s.id, "target": s.target, "event": s.event})
}

/// `GET /subscription`: a bare array, as the spec declares.
pub(crate) async fn list(State(sim): State<ReteachSim>) -> Response {
    let items: Vec<Value> =
        sim.with_state(|state| state.subscriptions.iter().map(render).collect());
    Json(Value::Array(items)).into_response()
}

/// `POST /subscription` with `{target, event}` (both required, `event` from the enum).
pub(crate) async fn create(State(sim): State<ReteachSim>, body: axum::body::Bytes) -> Response {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut problems = Vec::new();
    let target = value
        .get("target")
        .and_then(Value::as_str)
        .map(str::to_string);
    if target.is_none() {
        problems.push("target must be a string".to_string());
    }
    let event = value
        .get("event")
        .and_then(Value::as_str)
        .map(str::to_string);
    if !event.as_deref().is_some_and(|e| EVENTS.contains(&e)) {
        problems.push(format!(
            "event must be one of the following values: {}",
            EVENTS.join(", ")
        ));
    }
    let (Some(target), Some(event), true) = (target, event, problems.is_empty()) else {
        return nest_validation(StatusCode::BAD_REQUEST, problems);
    };
    let created = sim.with_state(|state| {
        let subscription = SimSubscription {
            id: state.new_id("sub"),
            target,
            event,
        };
        state.subscriptions.push(subscription.clone());
        subscription
    });
    (StatusCode::CREATED, Json(render(&created))).into_response()
}

/// `GET /subscription/{id}`.
pub(crate) async fn get_one(State(sim): State<ReteachSim>, Path(id): Path<String>) -> Response {
    let found = sim.with_state(|state| state.subscriptions.iter().find(|s| s.id == id).cloned());
    match found {
        Some(subscription) => Json(render(&subscription)).into_response(),
        None => nest_error(StatusCode::NOT_FOUND, "Subscription not found"),
    }
}

/// `DELETE /subscription/{id}`: answers the deleted subscription.
pub(crate) async fn delete(State(sim): State<ReteachSim>, Path(id): Path<String>) -> Response {
    let removed = sim.with_state(|state| {
        let index = state.subscriptions.iter().position(|s| s.id == id)?;
        Some(state.subscriptions.remove(index))
    });
    match removed {
        Some(subscription) => Json(render(&subscription)).into_response(),
        None => nest_error(StatusCode::NOT_FOUND, "Subscription not found"),
    }
}

impl ReteachSim {
    /// The academy's subscriptions.
    pub fn subscriptions(&self) -> Vec<SimSubscription> {
        self.with_state(|state| state.subscriptions.clone())
    }

    /// Deletes a subscription as an admin might (`false` if unknown).
    pub fn remove_subscription(&self, id: &str) -> bool {
        self.with_state(|state| {
            let before = state.subscriptions.len();
            state.subscriptions.retain(|s| s.id != id);
            before != state.subscriptions.len()
        })
    }

    /// Every webhook delivery so far.
    pub fn webhook_deliveries(&self) -> Vec<crate::sim::Delivery> {
        self.hooks.deliveries()
    }

    /// Posts `event` with `data` to every subscription of it.
    pub(super) fn emit(&self, event: &str, data: Value) {
        let targets: Vec<String> = self.with_state(|state| {
            state
                .subscriptions
                .iter()
                .filter(|s| s.event == event)
                .map(|s| s.target.clone())
                .collect()
        });
        let occurred_at = self.clock.now();
        for target in targets {
            self.hooks.send(Outgoing {
                target,
                headers: Vec::new(),
                event: event.to_string(),
                body: json!({"event": event, "data": data, "sentAt": Utc::now().to_rfc3339()}),
                occurred_at,
                tries: 1,
            });
        }
    }
}
