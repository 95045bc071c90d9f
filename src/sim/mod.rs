//! Stateful simulators of the Personio and reteach APIs (axum), used by tests, the demo and the
//! benchmark. Both share the fault injection, latency and request log in [`faults`].

pub mod faults;
pub mod hooks;
pub mod personio;
pub mod reteach;

pub use faults::{Fault, FaultRule, SimControl, SimRequest};
pub use hooks::{Delivery, HookSender};

use std::net::SocketAddr;

use tokio::task::JoinHandle;

/// A simulator listening on a loopback port; stops when dropped.
#[derive(Debug)]
pub struct RunningSim {
    /// Bound address (port chosen by the OS unless asked otherwise).
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl RunningSim {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on `addr` (use port 0 for any free port).
pub async fn serve(router: axum::Router, addr: SocketAddr) -> std::io::Result<RunningSim> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "simulator stopped");
        }
    });
    Ok(RunningSim { addr, task })
}
