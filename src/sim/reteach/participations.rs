//! `/participation` routes: items shaped per README §1.6, with the newer filters `status`
//! (comma-separated), `completedAtSince`, `customerIdentifier` and `hasCertificate`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::errors::{nest_error, nest_validation};
use super::model::{iso, SimParticipation};
use super::paging::Paging;
use super::state::State as SimState;
use super::storage::certificate_url;
use super::ReteachSim;

/// Where certificate URLs point: the configured public URL or the address the client used.
pub(crate) fn public_base(state: &SimState, headers: &HeaderMap) -> String {
    if let Some(base) = &state.public_base_url {
        return base.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// One participation in the `CustomerCourseParticipationReadDto` shape.
fn render(state: &SimState, p: &SimParticipation, base: &str, now: DateTime<Utc>) -> Value {
    let customer = state
        .customer_index(&p.customer_id)
        .map(|i| state.render_customer(&state.customers[i], now))
        .unwrap_or(Value::Null);
    let certificate = p
        .certificate_id
        .as_ref()
        .and_then(|id| state.certificates.get(id))
        .map(|c| {
            let url = c
                .pdf_ready
                .then(|| certificate_url(state.certificate_urls, base, &state.storage_host, &c.id));
            json!({ "id": c.id, "url": url })
        })
        .unwrap_or(Value::Null);
    let completed = p.status == "COMPLETED";
    json!({
        "id": p.id,
        "status": p.status,
        "progress": if completed { 100 } else { 40 },
        "startedAt": p.completed_at.map(iso),
        "completedAt": p.completed_at.map(iso),
        "invitedAt": null,
        "joinedAt": null,
        "invitationAcceptedAt": null,
        "timeSpentToComplete": null,
        "acceptedCompleteConfirmationText": null,
        "customer": customer,
        "course": {
            "id": p.course_id,
            "name": p.course_name,
            "description": null,
            "status": "PUBLIC",
            "type": "ONLINE_COURSE",
            "startsAt": null,
            "endsAt": null,
            "image": null,
            "url": format!("https://academy-sim.reteach.io/courses/{}", p.course_id),
            "editUrl": format!("https://academy-sim.reteach.io/admin/courses/{}", p.course_id),
        },
        "certificate": certificate,
    })
}

/// `GET /participation`.
pub(crate) async fn list(
    State(sim): State<ReteachSim>,
    Query(query): Query<HashMap<String, String>>,
    paging: Paging,
    headers: HeaderMap,
) -> Response {
    let since = match query.get("completedAtSince") {
        None => None,
        Some(raw) => match DateTime::parse_from_rfc3339(raw) {
            Ok(at) => Some(at.with_timezone(&Utc)),
            Err(_) => {
                return nest_validation(
                    StatusCode::BAD_REQUEST,
                    vec!["completedAtSince must be a valid ISO 8601 date string".to_string()],
                )
            }
        },
    };
    let statuses: Option<Vec<&str>> = query.get("status").map(|s| s.split(',').collect());
    let has_certificate = query.get("hasCertificate").map(|v| v == "true");
    let now = sim.clock.now();
    let body = sim.with_state(|state| {
        let (statuses, since, has_certificate) = if state.ignore_participation_filters {
            (None, None, None)
        } else {
            (statuses.clone(), since, has_certificate)
        };
        let customer_id = query.get("customerIdentifier").map(|ident| {
            state
                .customer_index(ident)
                .map(|i| state.customers[i].id.clone())
        });
        let base = public_base(state, &headers);
        let matching: Vec<&SimParticipation> = state
            .participations
            .iter()
            .filter(|p| {
                statuses
                    .as_ref()
                    .is_none_or(|s| s.contains(&p.status.as_str()))
            })
            .filter(|p| since.is_none_or(|since| p.completed_at.is_some_and(|at| at >= since)))
            .filter(|p| has_certificate.is_none_or(|want| p.certificate_id.is_some() == want))
            .filter(|p| {
                customer_id
                    .as_ref()
                    .is_none_or(|id| id.as_deref() == Some(p.customer_id.as_str()))
            })
            .collect();
        paging.render(matching, |p| render(state, p, &base, now))
    });
    Json(body).into_response()
}

/// `GET /participation/{id}`.
pub(crate) async fn get_one(
    State(sim): State<ReteachSim>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let now = sim.clock.now();
    let found = sim.with_state(|state| {
        let base = public_base(state, &headers);
        state
            .participations
            .iter()
            .find(|p| p.id == id)
            .map(|p| render(state, p, &base, now))
    });
    match found {
        Some(item) => Json(item).into_response(),
        None => nest_error(StatusCode::NOT_FOUND, "Participation not found"),
    }
}
