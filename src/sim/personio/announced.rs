//! Limits the v2 person endpoints announce in their answers (`x-ratelimit-limit`,
//! `x-ratelimit-remaining`, `x-ratelimit-reset`), as a gateway in front of endpoints whose limits
//! Personio does not publish would: a fixed window per endpoint, `limit` requests each; the
//! answer that takes the last one says `remaining: 0`, and a request beyond it gets `429` with
//! the same headers (and, as on Personio, no `Retry-After`).
//!
//! The reset is sent in seconds, with a fraction when the window is shorter than a second (the
//! simulator's time scale); the client accepts both.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::responses::v2_problem;
use super::PersonioSim;

/// One window's shape: `limit` requests per `window` (before the time scale).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowLimit {
    /// Requests per window and endpoint.
    pub limit: u32,
    /// Length of a window.
    pub window: Duration,
}

impl Default for WindowLimit {
    /// About what was observed on `/v2/persons` (30 requests per second), per minute.
    fn default() -> Self {
        Self {
            limit: 1_800,
            window: Duration::from_secs(60),
        }
    }
}

/// The windows of every announced endpoint.
#[derive(Debug, Default)]
pub(super) struct Windows {
    open: Mutex<HashMap<&'static str, (Instant, u32)>>,
}

/// What one request got: whether it may pass, and the headers to send.
struct Admission {
    admitted: bool,
    limit: u32,
    remaining: u32,
    reset: Duration,
}

impl Windows {
    fn admit(&self, endpoint: &'static str, limit: WindowLimit, scale: f64) -> Admission {
        let window = Duration::from_secs_f64(limit.window.as_secs_f64() / scale);
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (started, used) = open.entry(endpoint).or_insert((now, 0));
        if now.duration_since(*started) >= window {
            *started = now;
            *used = 0;
        }
        let admitted = *used < limit.limit;
        if admitted {
            *used += 1;
        }
        Admission {
            admitted,
            limit: limit.limit,
            remaining: limit.limit.saturating_sub(*used),
            reset: window.saturating_sub(now.duration_since(*started)),
        }
    }
}

/// The endpoint (for its window) of a v2 person path.
fn endpoint(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    Some(match segments.as_slice() {
        ["v2", "persons"] => "GET /v2/persons",
        ["v2", "persons", _] => "GET /v2/persons/{id}",
        ["v2", "persons", _, "employments", ..] => "GET /v2/persons/{id}/employments",
        ["v2", "org-units", _] => "GET /v2/org-units/{id}",
        ["v2", "workplaces"] => "GET /v2/workplaces",
        _ => return None,
    })
}

fn seconds(reset: Duration) -> String {
    if reset >= Duration::from_secs(1) {
        reset.as_secs_f64().ceil().to_string()
    } else {
        format!("{:.3}", reset.as_secs_f64())
    }
}

/// Middleware of the v2 person, employment, org-unit and workplace routes.
pub(super) async fn announce_limits(
    State(sim): State<PersonioSim>,
    request: Request,
    next: Next,
) -> Response {
    let config = sim.config();
    let (Some(limits), Some(endpoint)) = (config.rate_limits, endpoint(request.uri().path()))
    else {
        return next.run(request).await;
    };
    let scale = if config.time_scale.is_finite() && config.time_scale > 0.0 {
        config.time_scale
    } else {
        1.0
    };
    let admission = sim.shared.windows.admit(endpoint, limits.v2_window, scale);
    let mut response = if admission.admitted {
        next.run(request).await
    } else {
        v2_problem(
            StatusCode::TOO_MANY_REQUESTS,
            "common.rate_limit_exceeded",
            "Rate limit exceeded.",
        )
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", admission.limit.to_string()),
        ("x-ratelimit-remaining", admission.remaining.to_string()),
        ("x-ratelimit-reset", seconds(admission.reset)),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_admits_its_limit_and_counts_down() {
        let windows = Windows::default();
        let limit = WindowLimit {
            limit: 2,
            window: Duration::from_secs(3600),
        };
        let first = windows.admit("GET /v2/persons", limit, 1.0);
        assert!(first.admitted && first.remaining == 1);
        let second = windows.admit("GET /v2/persons", limit, 1.0);
        assert!(second.admitted && second.remaining == 0);
        let third = windows.admit("GET /v2/persons", limit, 1.0);
        assert!(!third.admitted && third.remaining == 0);
        assert!(third.reset <= Duration::from_secs(3600));
        assert!(
            windows.admit("GET /v2/workplaces", limit, 1.0).admitted,
            "one window per endpoint"
        );
    }

    #[test]
    fn paths_map_to_their_endpoints() {
        assert_eq!(endpoint("/v2/persons"), Some("GET /v2/persons"));
        assert_eq!(
            endpoint("/v2/persons/7/employments"),
            Some("GET /v2/persons/{id}/employments")
        );
        assert_eq!(endpoint("/v2/org-units/5"), Some("GET /v2/org-units/{id}"));
        assert_eq!(endpoint("/v2/webhooks"), None);
        assert_eq!(seconds(Duration::from_millis(250)), "0.250");
        assert_eq!(seconds(Duration::from_millis(1500)), "2");
    }
}
