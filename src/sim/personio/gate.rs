//! The admission of an API request before its handler's work: the endpoint's rate-limit bucket,
//! then the bearer token, each refused in the endpoint's dialect.
//!
//! A handler names its endpoint's gate as an extractor (`Admitted<V1Employees>`), after the
//! extractors that are read before the checks (a path), and before nothing that could be refused
//! on its own: a handler that reads its body before the checks (token requests, webhook creation
//! and rotation) checks in its body instead, so that every answer stays in the same order.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Response;

use super::auth::Dialect;
use super::rate_limit::Limited;
use super::PersonioSim;

/// What the endpoints behind one gate check.
pub(super) trait Gate {
    /// The bucket each request takes a turn from; `None`: not rate limited.
    const LIMITED: Option<Limited>;
    /// The error shape of the refusals.
    const DIALECT: Dialect;
}

/// A request that passed gate `G` (extractor; the refusal is the answer otherwise).
pub(super) struct Admitted<G> {
    /// The simulator it is for.
    pub sim: PersonioSim,
    /// Its query pairs, in order.
    pub query: Vec<(String, String)>,
    gate: PhantomData<fn() -> G>,
}

impl<G: Gate> FromRequestParts<PersonioSim> for Admitted<G> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, sim: &PersonioSim) -> Result<Self, Response> {
        let refused = G::LIMITED
            .and_then(|limited| sim.rate_limit(limited, G::DIALECT))
            .or_else(|| sim.refuse_unauthorized(&parts.headers, G::DIALECT));
        if let Some(refused) = refused {
            return Err(refused);
        }
        let query = parts.uri.query().unwrap_or_default();
        Ok(Self {
            sim: sim.clone(),
            query: url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
            gate: PhantomData,
        })
    }
}
