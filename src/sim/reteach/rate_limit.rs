//! Optional server-side rate limit (reteach documents none; off by default). A token bucket that
//! answers 429 with NestJS' throttler body.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::errors::nest_error;
use super::ReteachSim;

/// Requests per second and burst of the simulated limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained rate.
    pub per_second: u32,
    /// Bucket size.
    pub burst: u32,
}

/// Answers 429 once the bucket is empty.
pub(crate) async fn enforce(
    State(sim): State<ReteachSim>,
    request: Request,
    next: Next,
) -> Response {
    let limiter = sim.with_state(|state| state.rate_limiter.clone());
    match limiter {
        Some(limiter) if limiter.check().is_err() => nest_error(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlerException: Too Many Requests",
        ),
        _ => next.run(request).await,
    }
}
