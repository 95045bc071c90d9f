//! What both simulators share: injected latency, scripted faults and a log of every request.
//! Applied as an axum middleware, so handlers stay about the API itself.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// A misbehaviour the simulator can be told to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (429, 500, 502, 503…) and the API's error body.
    Status(u16),
    /// Wait this long before answering normally (beyond the client's timeout = a timeout).
    Delay(Duration),
    /// Send the headers, then break the connection mid-body.
    Reset,
    /// Answer 200 with a body that is not JSON.
    MalformedJson,
    /// Process the request normally, then break the connection before the response is complete
    /// (the write happened, the client never learns it did).
    ApplyThenReset,
    /// Answer 401 as if the token had expired (the client must re-authenticate).
    ExpiredToken,
}

/// Apply `fault` to the next `times` requests whose `"METHOD /path"` starts with `prefix`.
#[derive(Clone, Debug)]
pub struct FaultRule {
    pub prefix: String,
    pub fault: Fault,
    pub times: usize,
}

impl FaultRule {
    pub fn new(prefix: impl Into<String>, fault: Fault, times: usize) -> Self {
        Self {
            prefix: prefix.into(),
            fault,
            times,
        }
    }
}

/// One request the simulator received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRequest {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    pub query: Option<String>,
    /// Status the simulator answered with (before a reset, the status it had started to send).
    pub status: u16,
}

#[derive(Default, Debug)]
struct Inner {
    rules: Vec<FaultRule>,
    log: Vec<SimRequest>,
    latency: Duration,
}

/// Handle to steer a running simulator and read what it saw. Cheap to clone.
#[derive(Clone, Default, Debug)]
pub struct SimControl {
    inner: Arc<Mutex<Inner>>,
}

impl SimControl {
    /// Adds a fault rule (rules are matched in the order added).
    pub fn inject(&self, rule: FaultRule) {
        self.with(|inner| inner.rules.push(rule));
    }

    /// Removes all pending faults.
    pub fn clear_faults(&self) {
        self.with(|inner| inner.rules.clear());
    }

    /// Latency added to every request.
    pub fn set_latency(&self, latency: Duration) {
        self.with(|inner| inner.latency = latency);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<SimRequest> {
        self.with(|inner| inner.log.clone())
    }

    /// Requests whose `"METHOD /path"` starts with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.with(|inner| {
            inner
                .log
                .iter()
                .filter(|r| format!("{} {}", r.method, r.path).starts_with(prefix))
                .count()
        })
    }

    /// Requests that could change upstream data (any method but GET, HEAD and OPTIONS), leaving
    /// out the token endpoints in `token_paths` (a token request changes nothing a sync owns).
    pub fn write_requests(&self, token_paths: &[&str]) -> Vec<SimRequest> {
        self.with(|inner| {
            inner
                .log
                .iter()
                .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD" | "OPTIONS"))
                .filter(|r| !token_paths.contains(&r.path.as_str()))
                .cloned()
                .collect()
        })
    }

    /// Forgets the request log.
    pub fn clear_log(&self) {
        self.with(|inner| inner.log.clear());
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    fn take_fault(&self, key: &str) -> (Option<Fault>, Duration) {
        self.with(|inner| {
            let latency = inner.latency;
            let Some(index) = inner.rules.iter().position(|r| key.starts_with(&r.prefix)) else {
                return (None, latency);
            };
            let rule = &mut inner.rules[index];
            let fault = rule.fault.clone();
            rule.times = rule.times.saturating_sub(1);
            if rule.times == 0 {
                inner.rules.remove(index);
            }
            (Some(fault), latency)
        })
    }

    fn record(&self, request: SimRequest) {
        self.with(|inner| inner.log.push(request));
    }
}

/// Builds the error body an API uses for a status code.
pub type ErrorBody = fn(StatusCode, &str) -> Response;

/// State of the fault middleware: the control handle and the API's error-body shape.
#[derive(Clone)]
pub struct FaultLayerState {
    pub control: SimControl,
    pub error_body: ErrorBody,
}

/// axum middleware: logs the request, adds latency and applies the next matching fault.
pub async fn fault_middleware(
    State(state): State<FaultLayerState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let key = format!("{method} {path}");
    let (fault, latency) = state.control.take_fault(&key);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match fault {
        None => next.run(request).await,
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (state.error_body)(status, "simulated fault")
        }
        Some(Fault::ExpiredToken) => (state.error_body)(StatusCode::UNAUTHORIZED, "token expired"),
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some(Fault::Reset) => broken_body(StatusCode::OK),
        Some(Fault::ApplyThenReset) => {
            let applied = next.run(request).await;
            broken_body(applied.status())
        }
        Some(Fault::MalformedJson) => {
            let mut response = (StatusCode::OK, "{\"success\": tru").into_response();
            response.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
    };
    state.control.record(SimRequest {
        method,
        path,
        query,
        status: response.status().as_u16(),
    });
    response
}

/// A response whose body fails after the headers: the client sees a broken connection.
fn broken_body(status: StatusCode) -> Response {
    let stream = futures::stream::iter(vec![
        Ok(bytes::Bytes::from_static(b"{\"partial\":")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        )),
    ]);
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
