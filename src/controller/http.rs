//! The operator's HTTP endpoints: `/metrics` (Prometheus text format), `/healthz` (the process
//! runs) and `/readyz` (the replica can serve).
//!
//! Readiness means "can serve", not "is leader": a replica that works is ready once its watches
//! have synced; a standby (leader election on, Lease held by another replica) is ready once its
//! Kubernetes client has proved to work, so a rolling update of two replicas can complete. Who
//! holds the Lease is reported by the `reteach_personio_leader` gauge and the `/readyz` body.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::listener::ListenerLimits;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Readiness shared between the controllers, the leader election and the HTTP server.
#[derive(Clone, Default)]
pub struct Readiness {
    ready: Arc<AtomicBool>,
    standby: Arc<AtomicBool>,
}

impl Readiness {
    /// Marks the operator ready (its watches have synced, or it stands by with a working client).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Whether the operator is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Records whether this replica waits for the Lease (`true`) or does the work (`false`).
    pub fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::SeqCst);
    }

    /// Whether this replica waits for the Lease.
    pub fn is_standby(&self) -> bool {
        self.standby.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct ServerState {
    metrics: Arc<Metrics>,
    readiness: Readiness,
}

/// The router (separate from [`serve`] so tests can call it without a socket).
pub fn router(metrics: Arc<Metrics>, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(ServerState { metrics, readiness })
}

async fn metrics_handler(State(state): State<ServerState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn readyz(State(state): State<ServerState>) -> impl IntoResponse {
    if !state.readiness.is_ready() {
        (StatusCode::SERVICE_UNAVAILABLE, "watches not synced yet")
    } else if state.readiness.is_standby() {
        (StatusCode::OK, "ok: standby, waiting for the leader Lease")
    } else {
        (StatusCode::OK, "ok")
    }
}

/// Serves the endpoints on `addr` until `shutdown` is cancelled.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    let router = router(metrics, readiness);
    crate::listener::bind_and_serve(addr, router, ListenerLimits::METRICS, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(router: Router, path: &str) -> (StatusCode, String) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn standby_with_a_working_client_is_ready_and_says_so() {
        let readiness = Readiness::default();
        let metrics = Arc::new(Metrics::new());
        let app = router(metrics, readiness.clone());
        assert_eq!(
            get(app.clone(), "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        readiness.set_standby(true);
        readiness.set_ready();
        let (status, body) = get(app.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("standby"), "{body}");
        readiness.set_standby(false);
        assert_eq!(get(app, "/readyz").await, (StatusCode::OK, "ok".into()));
    }

    #[tokio::test]
    async fn leader_gauge_reports_whether_this_replica_works() {
        let metrics = Arc::new(Metrics::new());
        let app = router(metrics.clone(), Readiness::default());
        assert!(get(app.clone(), "/metrics")
            .await
            .1
            .contains("reteach_personio_leader 0"));
        metrics.set_leader(true);
        assert!(get(app, "/metrics")
            .await
            .1
            .contains("reteach_personio_leader 1"));
    }
}
