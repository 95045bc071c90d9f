//! kube-runtime wiring: the two controllers, due checks, status writes, events, backoff, metrics,
//! health endpoints and leader election.

pub mod admission;
mod announce;
/// The upstream allowlist lives with the jobs (the `preflight` command checks it too).
pub use crate::jobs::allowlist;
pub mod budget;
pub mod capabilities;
pub mod certificate;
pub mod clients;
pub mod context;
pub mod employee;
pub mod events;
pub mod handover;
pub mod http;
pub mod leader;
mod ledger_claim;
pub mod lifecycle;
pub mod operator;
mod options;
pub mod pacing;
pub mod panic_guard;
pub mod process;
pub mod receiver_endpoints;
pub mod reconcile;
pub mod shard;
pub mod status;
pub mod tenant_cache;
#[cfg(test)]
mod upload_model;
#[cfg(test)]
mod upload_model_check;
#[cfg(test)]
mod upload_model_state;
pub mod upstreams;
pub mod watch_cache;
pub mod webhook;
pub mod webhook_key;
pub mod webhook_registration;

pub use context::{Context, Tunables};
pub use operator::{Operator, RunOptions};
pub use process::run;

/// A reconcile that could not even record its outcome (the apiserver refused a status write).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
}
