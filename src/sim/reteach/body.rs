//! Request bodies, read and checked before a handler runs the way NestJS does it: a body that is
//! not JSON is a 400 from the body parser, a customer body is screened by the academy's field
//! modes and then validated (422).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::errors::{nest_error, nest_validation};
use super::input::CustomerInput;
use super::ReteachSim;

/// Parses a JSON body, answering 400 like NestJS' body parser otherwise.
fn json_body(body: &Bytes) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body).map_err(|_| {
        Box::new(nest_error(
            StatusCode::BAD_REQUEST,
            "Unexpected token in JSON body",
        ))
    })
}

/// The body as JSON (extractor; see [`json_body`]).
pub(crate) struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        json_body(&body).map(Self).map_err(|response| *response)
    }
}

/// A customer body after the academy's field modes (see [`super::FieldMode`]) and validation
/// (extractor): a refused field is NestJS' 400 whitelist error, a dropped one is removed before
/// validation, an invalid body is a 422.
pub(crate) struct CustomerBody(pub CustomerInput);

impl FromRequest<ReteachSim> for CustomerBody {
    type Rejection = Response;

    async fn from_request(request: Request, sim: &ReteachSim) -> Result<Self, Response> {
        let JsonBody(mut value) = JsonBody::from_request(request, sim).await?;
        sim.with_state(|state| state.screen_fields(&mut value))
            .map_err(|messages| nest_validation(StatusCode::BAD_REQUEST, messages))?;
        CustomerInput::parse(&value)
            .map(Self)
            .map_err(|e| nest_validation(StatusCode::UNPROCESSABLE_ENTITY, e))
    }
}
