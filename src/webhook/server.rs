//! The receiver's HTTP server (axum) on its own port: `POST /<personio|reteach>/<namespace>/
//! <name>/<token>`. Every answer is counted in `reteach_personio_webhook_requests_total`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tokio_util::sync::CancellationToken;

use super::check::{check_personio, check_reteach, PersonioDelivery, Verdict};
use super::rejection::Rejection;
use super::signature::SignedHeaders;
use super::{ResourceKey, Source, Webhooks, MAX_BODY_BYTES};
use crate::clock::Clock;
use crate::listener::ListenerLimits;
use crate::metrics::Metrics;

/// What the receiver works with.
#[derive(Clone)]
pub struct ReceiverState {
    /// Registry, replay guard and triggers.
    pub webhooks: Arc<Webhooks>,
    /// Where requests are counted.
    pub metrics: Arc<Metrics>,
    /// For event ages and the replay window.
    pub clock: Arc<dyn Clock>,
}

/// The receiver's routes (separate from [`serve`] so tests can call it without a socket).
pub fn router(state: ReceiverState) -> Router {
    Router::new()
        .route(
            "/personio/{namespace}/{name}/{token}",
            notified_by(Source::Personio),
        )
        .route(
            "/reteach/{namespace}/{name}/{token}",
            notified_by(Source::Reteach),
        )
        .route("/healthz", get(|| async { "ok" }))
        .fallback(unknown)
        .with_state(state)
}

/// Serves the receiver on `addr` until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    state: ReceiverState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(%addr, "webhook receiver listening");
    crate::listener::bind_and_serve(addr, router(state), ListenerLimits::RECEIVER, shutdown).await
}

/// Serves the receiver on an already bound `listener` until `shutdown` (no window in which
/// another socket could take the port between choosing it and listening on it).
pub async fn serve_on(
    listener: std::net::TcpListener,
    state: ReceiverState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tracing::info!(addr = %listener.local_addr()?, "webhook receiver listening");
    crate::listener::serve(
        listener,
        router(state),
        ListenerLimits::RECEIVER,
        crate::listener::OpenConnections::default(),
        shutdown,
    )
    .await
}

/// The route of `source`'s notifications: the path names the resource and carries its token.
fn notified_by(source: Source) -> MethodRouter<ReceiverState> {
    post(
        move |State(state): State<ReceiverState>,
              Path((namespace, name, token)): Path<(String, String, String)>,
              headers: HeaderMap,
              body: Body| async move {
            let key = ResourceKey::new(source, &namespace, &name);
            receive(&state, &key, &token, &headers, body).await
        },
    )
}

async fn unknown(state: State<ReceiverState>) -> Response {
    state.metrics.webhook_request("unknown", "unauthenticated");
    StatusCode::NOT_FOUND.into_response()
}

async fn receive(
    state: &ReceiverState,
    key: &ResourceKey,
    token: &str,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let source = key.source.as_str();
    let Some(keys) = state
        .webhooks
        .receivers
        .keys(key)
        .filter(|keys| keys.accepts_token(token))
    else {
        // Unknown resource and wrong token look the same: nobody learns which resources exist.
        state.metrics.webhook_request(source, "unauthenticated");
        return StatusCode::NOT_FOUND.into_response();
    };
    let (verdict, person) = match verify(state, key, &keys, headers, body).await {
        Ok(checked) => checked,
        Err(rejection) => {
            state.metrics.webhook_request(source, rejection.outcome());
            tracing::debug!(
                source,
                namespace = key.namespace,
                resource = key.name,
                outcome = rejection.outcome(),
                "webhook request refused"
            );
            return rejection.status().into_response();
        }
    };
    match verdict {
        Verdict::Wake => {
            state.metrics.webhook_request(source, "accepted");
            let woke = state.webhooks.triggers.notify_about(key, person.as_deref());
            tracing::debug!(
                source,
                namespace = key.namespace,
                resource = key.name,
                coalesced = !woke,
                "webhook notification accepted"
            );
        }
        Verdict::Ignore => state.metrics.webhook_request(source, "ignored"),
    }
    StatusCode::ACCEPTED.into_response()
}

async fn verify(
    state: &ReceiverState,
    key: &ResourceKey,
    keys: &super::ReceiverKeys,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Verdict, Option<String>), Rejection> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(Rejection::UnsupportedMediaType);
    }
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if announced.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(Rejection::Oversized);
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| Rejection::Oversized)?;
    let now = state.clock.now();
    let mut person = None;
    let verdict = match key.source {
        Source::Personio => {
            let text =
                |name: &header::HeaderName| headers.get(name).and_then(|value| value.to_str().ok());
            let scheme = &state.webhooks.signatures;
            let delivery = PersonioDelivery {
                authorization: text(&header::AUTHORIZATION),
                signed: SignedHeaders {
                    signature: text(&scheme.signature_header),
                    timestamp: text(&scheme.timestamp_header),
                },
                body: &bytes,
            };
            let verdict = check_personio(keys, scheme, delivery, now)?;
            person = super::check::personio_subject(&bytes);
            verdict
        }
        Source::Reteach => check_reteach(&bytes)?,
    };
    state.webhooks.replays.first_time(key, &bytes, now)?;
    Ok((verdict, person))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{at, ManualClock};
    use crate::webhook::{KeysFrom, ReceiverKeys, RequestKeys};
    use axum::http::Request;
    use tower::ServiceExt;

    const TOKEN: &str = "0123456789abcdefghijklmnopqrstuv";

    fn setup() -> (Router, Arc<Webhooks>, Arc<Metrics>) {
        let webhooks = Arc::new(Webhooks::default());
        let metrics = Arc::new(Metrics::new());
        let clock = ManualClock::new(at("2026-12-02T10:00:00Z"));
        let now = clock.now();
        webhooks.receivers.open(
            ResourceKey::new(Source::Personio, "hr", "acme"),
            ReceiverKeys {
                current: RequestKeys::new(TOKEN, Some("secret-header".into())),
                ..ReceiverKeys::default()
            },
            Some(1),
            now,
            KeysFrom::Reconcile,
        );
        webhooks.receivers.open(
            ResourceKey::new(Source::Reteach, "hr", "certs"),
            ReceiverKeys {
                current: RequestKeys::new(TOKEN, None),
                ..ReceiverKeys::default()
            },
            Some(1),
            now,
            KeysFrom::Reconcile,
        );
        let state = ReceiverState {
            webhooks: webhooks.clone(),
            metrics: metrics.clone(),
            clock: Arc::new(clock),
        };
        (router(state), webhooks, metrics)
    }

    fn person_event() -> String {
        serde_json::json!({
            "company_id": "1", "event_name": "person.updated",
            "occurred_at": "2026-12-02T09:59:59Z", "payload": {"id": "7"}
        })
        .to_string()
    }

    async fn post(
        app: &Router,
        path: &str,
        content_type: &str,
        authorization: Option<&str>,
        body: impl Into<Body>,
    ) -> StatusCode {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, content_type);
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        let response = app
            .clone()
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        response.status()
    }

    fn count(metrics: &Metrics, source: &str, outcome: &str) -> u64 {
        let needle = format!(
            "reteach_personio_webhook_requests_total{{source=\"{source}\",outcome=\"{outcome}\"}} "
        );
        metrics
            .encode()
            .lines()
            .find_map(|line| line.strip_prefix(needle.as_str()))
            .map_or(0, |value| value.trim().parse().unwrap())
    }

    #[tokio::test]
    async fn an_authentic_personio_event_wakes_its_employee_sync_once() {
        let (app, webhooks, metrics) = setup();
        let path = format!("/personio/hr/acme/{TOKEN}");
        let auth = Some("secret-header");
        let status = post(&app, &path, "application/json", auth, person_event()).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let key = ResourceKey::new(Source::Personio, "hr", "acme");
        assert!(webhooks.triggers.is_pending(&key));
        assert_eq!(
            post(&app, &path, "application/json", auth, person_event()).await,
            StatusCode::CONFLICT,
            "the same delivery again is a replay"
        );
        assert_eq!(count(&metrics, "personio", "accepted"), 1);
        assert_eq!(count(&metrics, "personio", "replayed"), 1);
    }

    #[tokio::test]
    async fn refused_requests_are_counted_and_wake_nothing() {
        let (app, webhooks, metrics) = setup();
        let good = format!("/personio/hr/acme/{TOKEN}");
        let json = "application/json";
        let auth = Some("secret-header");
        // A wrong token, resource or source: no receiver answers.
        for path in [
            format!("/personio/hr/acme/{}", "x".repeat(32)),
            format!("/personio/hr/other/{TOKEN}"),
            format!("/reteach/hr/acme/{TOKEN}"),
        ] {
            let status = post(&app, &path, json, auth, person_event()).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
        for authorization in [Some("wrong"), None] {
            let status = post(&app, &good, json, authorization, person_event()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        }
        let status = post(&app, &good, "text/plain", auth, person_event()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let status = post(&app, &good, json, auth, "{\"event_name\":1}").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let status = post(&app, &good, json, auth, vec![b' '; MAX_BODY_BYTES + 1]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(!webhooks
            .triggers
            .is_pending(&ResourceKey::new(Source::Personio, "hr", "acme")));
        for (source, outcome, expected) in [
            ("personio", "unauthenticated", 4),
            ("reteach", "unauthenticated", 1),
            ("personio", "unsupported_media_type", 1),
            ("personio", "malformed", 1),
            ("personio", "oversized", 1),
            ("personio", "accepted", 0),
        ] {
            let counted = count(&metrics, source, outcome);
            assert_eq!(counted, expected, "{source} {outcome}");
        }
    }

    #[tokio::test]
    async fn any_json_object_on_the_reteach_path_wakes_the_certificate_sync() {
        let (app, webhooks, metrics) = setup();
        let path = format!("/reteach/hr/certs/{TOKEN}");
        let body = r#"{"event":"participation.completed","data":{"id":"par-1"}}"#;
        let status = post(&app, &path, "application/json; charset=utf-8", None, body).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert!(webhooks
            .triggers
            .is_pending(&ResourceKey::new(Source::Reteach, "hr", "certs")));
        assert_eq!(count(&metrics, "reteach", "accepted"), 1);
    }
}
