//! The operator's own HTTP listeners (metrics and probes, webhook receiver), bounded: a client
//! that sends its request slowly or not at all, or opens connections by the thousand, costs a
//! fixed amount of memory and never a growing one.
//!
//! `axum::serve` has neither a header read timeout nor a connection limit, so connections are
//! served here with hyper's own HTTP/1 builder (its `header_read_timeout` also bounds idle
//! keep-alive connections), a whole-request deadline (which covers a body sent slowly), and a
//! semaphore that stops accepting while `max_connections` are open (further clients wait in the
//! kernel's accept queue, not in our memory). Shutdown stops accepting and lets open requests
//! finish (`hyper_util`'s graceful shutdown).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long open requests get to finish after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Bounds of one listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Longest wait for a request's headers, on a new or an idle keep-alive connection.
    pub header_read_timeout: Duration,
    /// Longest time from a request's headers to its answer, body included; then 408 and close.
    pub request_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl ListenerLimits {
    /// The webhook receiver: notifications are a few hundred bytes and must be acknowledged
    /// within 3 s (Personio), so anything slow is an attacker or a broken peer.
    pub const RECEIVER: Self = Self {
        header_read_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        max_connections: 256,
    };
    /// `/metrics`, `/healthz`, `/readyz`: a few scrapers and the kubelet.
    pub const METRICS: Self = Self {
        header_read_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(30),
        max_connections: 64,
    };
}

/// How many connections a listener holds open now (for tests and the benchmark).
#[derive(Clone, Debug, Default)]
pub struct OpenConnections(Arc<AtomicUsize>);

impl OpenConnections {
    /// Connections open now.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Decrements the count when a connection ends, however it ends.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(open: &OpenConnections) -> Self {
        open.0.fetch_add(1, Ordering::Relaxed);
        Self(open.0.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Binds `addr` and serves `router` within `limits` until `shutdown`.
pub async fn bind_and_serve(
    addr: SocketAddr,
    router: Router,
    limits: ListenerLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    serve(
        listener,
        router,
        limits,
        OpenConnections::default(),
        shutdown,
    )
    .await
}

/// Serves `router` on `listener` within `limits` until `shutdown`; `open` counts the connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ListenerLimits,
    open: OpenConnections,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let counted = Counted::new(&open);
        let service = hyper::service::service_fn({
            let router = router.clone();
            move |request: Request<hyper::body::Incoming>| {
                answer_within(
                    router.clone(),
                    request.map(Body::new),
                    limits.request_timeout,
                )
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _held = (permit, counted);
            // A peer that breaks off or times out is normal traffic, not an operator error.
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    Ok(())
}

/// Runs the request through `router`, answering 408 (and closing) when it takes longer than
/// `deadline`, e.g. because the body arrives a byte at a time.
async fn answer_within(
    router: Router,
    request: Request<Body>,
    deadline: Duration,
) -> Result<Response<Body>, std::convert::Infallible> {
    match tokio::time::timeout(deadline, router.oneshot(request)).await {
        Ok(answer) => answer,
        Err(_) => Ok(Response::builder()
            .status(StatusCode::REQUEST_TIMEOUT)
            .header(header::CONNECTION, "close")
            .body(Body::empty())
            .unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const SHORT: ListenerLimits = ListenerLimits {
        header_read_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(600),
        max_connections: 20,
    };

    async fn start(limits: ListenerLimits) -> (SocketAddr, OpenConnections, CancellationToken) {
        let router = Router::new().route(
            "/echo",
            post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = OpenConnections::default();
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(
            listener,
            router,
            limits,
            open.clone(),
            shutdown.clone(),
        ));
        (addr, open, shutdown)
    }

    /// Sends `request` on a new connection and reads until the server closes it.
    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        read_until_closed(&mut stream).await
    }

    /// Reads until the server closes the connection; what it sent.
    async fn read_until_closed(stream: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
        read.await
            .expect("the server must close the connection")
            .ok();
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// What a listener with the [`SHORT`] limits answers to `request` on a new connection.
    async fn answer_to(request: &[u8]) -> String {
        let (addr, _, shutdown) = start(SHORT).await;
        let answer = exchange(addr, request).await;
        shutdown.cancel();
        answer
    }

    #[tokio::test]
    async fn a_complete_request_is_answered() {
        let answer = answer_to(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("\r\n\r\n3"), "{answer}");
    }

    #[tokio::test]
    async fn half_sent_headers_are_closed_after_the_header_timeout() {
        let (addr, open, shutdown) = start(SHORT).await;
        let answer = exchange(addr, b"POST /echo HTTP/1.1\r\nHost: x\r\n").await;
        assert!(!answer.contains("200"), "{answer}");
        tokio::time::timeout(Duration::from_secs(5), async {
            while open.get() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the connection is released");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_half_sent_body_gets_408_and_the_connection_is_closed() {
        let answer =
            answer_to(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a part")
                .await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }

    #[tokio::test]
    async fn a_thousand_idle_connections_hold_at_most_the_limit_and_are_all_closed() {
        let limits = ListenerLimits {
            max_connections: 50,
            ..SHORT
        };
        let (addr, open, shutdown) = start(limits).await;
        let peak = Arc::new(AtomicUsize::new(0));
        let sampler = tokio::spawn({
            let (open, peak) = (open.clone(), peak.clone());
            async move {
                loop {
                    peak.fetch_max(open.get(), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        });
        let mut clients = Vec::new();
        for _ in 0..1000 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        // Each client is accepted in turn as earlier ones time out, and closed by the server.
        let all_closed = async {
            for client in &mut clients {
                let mut buf = [0u8; 1];
                let _ = client.read(&mut buf).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), all_closed)
            .await
            .expect("every idle connection is closed by the server");
        sampler.abort();
        let peak = peak.load(Ordering::Relaxed);
        assert!(peak <= limits.max_connections, "peak {peak}");
        assert!(peak > 0, "the sampler saw the connections");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn shutdown_stops_accepting() {
        let (addr, _, shutdown) = start(SHORT).await;
        shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let refused = TcpStream::connect(addr).await;
        assert!(refused.is_err(), "the socket is closed after shutdown");
    }
}
