//! Leader election on a `coordination.k8s.io` Lease via kube-lease-manager: only the holder syncs;
//! a replica that loses the lease stops, so two replicas never upload the same certificate.

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

/// Lease settings.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// Seconds a lease is valid without renewal.
    pub duration_seconds: u64,
}

/// Blocks until this process holds the lease; the returned receiver turns `false` when it is lost.
pub async fn become_leader(
    client: Client,
    settings: &LeaseSettings,
) -> anyhow::Result<watch::Receiver<bool>> {
    let manager = LeaseManagerBuilder::new(client, settings.name.clone())
        .with_namespace(settings.namespace.clone())
        .with_identity(settings.identity.clone())
        .with_duration(settings.duration_seconds)
        .with_grace(settings.duration_seconds.div_ceil(3).max(1))
        .build()
        .await?;
    let (mut leader, _task) = manager.watch().await;
    tracing::info!(
        identity = settings.identity,
        lease = settings.name,
        "waiting for leadership"
    );
    while !*leader.borrow_and_update() {
        leader.changed().await?;
    }
    tracing::info!(identity = settings.identity, "became leader");
    Ok(leader)
}
