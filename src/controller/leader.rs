//! Leader election on a `coordination.k8s.io` Lease via kube-lease-manager: only the holder syncs;
//! a replica that loses the lease stops, so two replicas never upload the same certificate. On
//! shutdown the holder releases the Lease, so a standby does not wait for it to expire.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Lease settings.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// Seconds a lease is valid without renewal.
    pub duration_seconds: u64,
}

/// The Lease this process holds: `changes` turns `false` when it is lost; [`Leadership::release`]
/// gives it up.
pub struct Leadership {
    /// Whether this process still holds the Lease.
    pub changes: watch::Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

impl Leadership {
    /// A receiver of the holder state, for a task that watches for a lost Lease.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.changes.clone()
    }

    /// Gives the Lease up (clears its holder) so a standby takes over at once. Call only after
    /// this process has stopped its work. kube-lease-manager releases the Lease when the last
    /// receiver of its state channel is gone, so every [`Leadership::subscribe`] receiver must
    /// be dropped first; waits at most `bound`.
    pub async fn release(self, bound: Duration) {
        drop(self.changes);
        match tokio::time::timeout(bound, self.task).await {
            Ok(Ok(Ok(_))) => tracing::info!("released the leader Lease"),
            Ok(Ok(Err(error))) => tracing::warn!(%error, "could not release the leader Lease"),
            Ok(Err(error)) => tracing::warn!(%error, "the Lease task failed"),
            Err(_) => tracing::warn!(?bound, "releasing the leader Lease timed out"),
        }
    }
}

/// Blocks until this process holds the lease.
pub async fn become_leader(client: Client, settings: &LeaseSettings) -> anyhow::Result<Leadership> {
    let manager = LeaseManagerBuilder::new(client, settings.name.clone())
        .with_namespace(settings.namespace.clone())
        .with_identity(settings.identity.clone())
        .with_duration(settings.duration_seconds)
        .with_grace(settings.duration_seconds.div_ceil(3).max(1))
        .build()
        .await?;
    let (mut leader, task) = manager.watch().await;
    tracing::info!(
        identity = settings.identity,
        lease = settings.name,
        "waiting for leadership"
    );
    while !*leader.borrow_and_update() {
        leader.changed().await?;
    }
    tracing::info!(identity = settings.identity, "became leader");
    Ok(Leadership {
        changes: leader,
        task,
    })
}
