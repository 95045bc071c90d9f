//! A loopback listener that records every request it gets (the line, whether an `Authorization`
//! header came along, the body) and answers as an upstream would: tokens for the token endpoints,
//! `{}` otherwise, or a redirect for the routes it is told to redirect. Tests of issue 25 ("No new
//! ways out") use it as the host outside the allowlist, which must receive nothing.

// Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use reteach_personio_operator::sim::RunningSim;
use serde_json::json;

/// The address of hosts outside the allowlists of the tests (which allow `127.0.0.1`): another
/// loopback address, so nothing leaves the machine.
pub const OUTSIDE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// One request a listener received.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `METHOD /path`.
    pub line: String,
    /// Whether an `Authorization` header came along.
    pub authorization: bool,
    /// The body, as text.
    pub body: String,
}

/// A loopback listener that records every request; `redirects` lists the `METHOD /path` it answers
/// with a redirect (status, to `target` + the same path), every other request as an upstream
/// would (tokens for the token endpoints, `{}` otherwise).
pub struct Listener {
    seen: Arc<Mutex<Vec<Seen>>>,
    running: RunningSim,
}

impl Listener {
    /// A listener on [`OUTSIDE_IP`] that redirects nothing.
    pub async fn outside() -> Self {
        Self::start(IpAddr::V4(OUTSIDE_IP), Vec::new(), None).await
    }

    /// A listener on 127.0.0.1 answering `redirects` with a redirect to `target`.
    pub async fn redirecting(redirects: Vec<(&'static str, u16)>, target: &str) -> Self {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Self::start(ip, redirects, Some(target.to_string())).await
    }

    async fn start(
        ip: IpAddr,
        redirects: Vec<(&'static str, u16)>,
        target: Option<String>,
    ) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let router = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let record = record.clone();
                let redirects = redirects.clone();
                let target = target.clone();
                async move {
                    let line = format!("{method} {}", uri.path());
                    record.lock().unwrap().push(Seen {
                        line: line.clone(),
                        authorization: headers.contains_key(header::AUTHORIZATION),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    let redirect = redirects.iter().find(|(route, _)| *route == line);
                    match (redirect, target) {
                        (Some((_, status)), Some(target)) => redirect_to(*status, &target, &uri),
                        _ => answer(uri.path()),
                    }
                }
            },
        );
        let running = reteach_personio_operator::sim::serve(router, SocketAddr::new(ip, 0))
            .await
            .unwrap();
        Self { seen, running }
    }

    pub fn url(&self) -> String {
        self.running.base_url()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn lines(&self) -> Vec<String> {
        self.seen().into_iter().map(|seen| seen.line).collect()
    }

    /// Nothing at all arrived, so no credential, token or Secret value either.
    pub fn assert_untouched(&self) {
        let seen = self.seen();
        assert!(
            seen.is_empty(),
            "the host outside the allowlist received {seen:?}"
        );
    }
}

fn redirect_to(status: u16, target: &str, uri: &Uri) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    (
        status,
        [(header::LOCATION, format!("{target}{}", uri.path()))],
    )
        .into_response()
}

fn answer(path: &str) -> Response {
    let body = match path {
        "/v1/auth" => json!({"success": true, "data": {"token": "v1-token", "expires_in": 86400}}),
        "/v2/auth/token" => json!({"access_token": "v2-token", "expires_in": 86400}),
        "/oauth/authorize" => json!({"access_token": "reteach-token", "expires_in": 3600}),
        _ => json!({}),
    };
    axum::Json(body).into_response()
}
