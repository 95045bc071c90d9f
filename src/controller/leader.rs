//! Leader election on a `coordination.k8s.io` Lease via kube-lease-manager: only the holder syncs;
//! a replica that loses the lease stops, so two replicas never upload the same certificate. On
//! shutdown the holder releases the Lease, so a standby does not wait for it to expire.
//!
//! kube-lease-manager reports a lost Lease only when it reads another holder; renewals that fail
//! with errors are logged and retried, and the replica would go on believing it leads while the
//! Lease expires under it. [`confirm_renewals`] therefore reads the Lease itself and feeds every
//! renewal it sees to the [`Fence`], which closes once the last confirmed renewal is older than
//! the lease duration (the moment a standby may take over).

use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::jobs::Fence;

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

/// What one read of the Lease showed.
#[derive(Debug)]
pub enum LeaseReading {
    /// This process holds it, last renewed this long ago.
    Held {
        /// Age of the Lease's `renewTime`.
        renewed_ago: Duration,
    },
    /// Another identity holds it (or nobody).
    NotHeld,
    /// The Lease could not be read: nothing is confirmed.
    Unreadable(String),
}

/// Reads the Lease this process leads with.
#[async_trait]
pub trait LeaseReader: Send + Sync {
    /// One read.
    async fn read(&self) -> LeaseReading;
}

/// The Lease in the API server.
pub struct KubeLease {
    api: Api<Lease>,
    settings: LeaseSettings,
}

impl KubeLease {
    /// The Lease of `settings`.
    pub fn new(client: Client, settings: LeaseSettings) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
        }
    }
}

#[async_trait]
impl LeaseReader for KubeLease {
    async fn read(&self) -> LeaseReading {
        let lease = match self.api.get(&self.settings.name).await {
            Ok(lease) => lease,
            Err(error) => return LeaseReading::Unreadable(error.to_string()),
        };
        let spec = lease.spec.unwrap_or_default();
        match (spec.holder_identity, spec.renew_time) {
            (Some(holder), Some(renewed)) if holder == self.settings.identity => {
                let ago = k8s_openapi::jiff::Timestamp::now().duration_since(renewed.0);
                LeaseReading::Held {
                    renewed_ago: Duration::try_from(ago).unwrap_or(Duration::ZERO),
                }
            }
            _ => LeaseReading::NotHeld,
        }
    }
}

/// How often the leader reads its Lease: a sixth of the lease duration, so a renewal (every two
/// thirds of it) is seen well before the duration has passed.
pub fn confirmation_interval(lease_duration: Duration) -> Duration {
    (lease_duration / 6).max(Duration::from_millis(100))
}

/// Confirms the Lease's renewals to `fence` every `every`, until the fence closes: an
/// unreadable Lease confirms nothing (the fence closes a lease duration after the last renewal
/// seen), another holder closes it at once.
pub async fn confirm_renewals(reader: &dyn LeaseReader, fence: &Fence, every: Duration) {
    loop {
        match reader.read().await {
            LeaseReading::Held { renewed_ago } => fence.renewal_confirmed(renewed_ago),
            LeaseReading::NotHeld => fence.close("the Lease is held by another replica"),
            LeaseReading::Unreadable(error) => {
                tracing::warn!(%error, "could not confirm the renewal of the leader Lease");
            }
        }
        if !fence.holds() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio_util::sync::CancellationToken;

    /// A Lease whose renewals succeed for the first `renewed` reads and then fail with an error;
    /// each read moves the injected clock on by 2.5 s (the read interval of a 15 s Lease).
    struct FailingRenewals {
        clock: Arc<AtomicU64>,
        reads: AtomicUsize,
        renewed: usize,
    }

    #[async_trait]
    impl LeaseReader for FailingRenewals {
        async fn read(&self) -> LeaseReading {
            self.clock.fetch_add(2500, Ordering::SeqCst);
            if self.reads.fetch_add(1, Ordering::SeqCst) < self.renewed {
                LeaseReading::Held {
                    renewed_ago: Duration::ZERO,
                }
            } else {
                LeaseReading::Unreadable("connection refused (injected)".into())
            }
        }
    }

    #[tokio::test]
    async fn a_leader_whose_renewals_fail_is_told_it_lost_the_lease_after_the_lease_duration() {
        let clock = Arc::new(AtomicU64::new(0));
        let read = clock.clone();
        let lost = CancellationToken::new();
        let fence = Fence::with_clock(
            Arc::new(move || Duration::from_millis(read.load(Ordering::SeqCst))),
            Duration::from_secs(3600),
            Some(Duration::from_secs(15)),
            lost.clone(),
        );
        let lease = FailingRenewals {
            clock: clock.clone(),
            reads: AtomicUsize::new(0),
            renewed: 4,
        };
        confirm_renewals(&lease, &fence, Duration::ZERO).await;
        // Last renewal confirmed at 10 s; at 25 s it is exactly 15 s old (still held), the read
        // at 27.5 s finds it older than the lease duration.
        assert_eq!(clock.load(Ordering::SeqCst), 27_500);
        assert_eq!(lease.reads.load(Ordering::SeqCst), 11);
        assert!(lost.is_cancelled(), "the operator stops and hands over");
        assert!(!fence.holds());
    }

    #[tokio::test]
    async fn another_holder_closes_the_fence_at_once() {
        struct Taken;
        #[async_trait]
        impl LeaseReader for Taken {
            async fn read(&self) -> LeaseReading {
                LeaseReading::NotHeld
            }
        }
        let lost = CancellationToken::new();
        let fence = Fence::with_clock(
            Arc::new(|| Duration::ZERO),
            Duration::from_secs(3600),
            Some(Duration::from_secs(15)),
            lost.clone(),
        );
        confirm_renewals(&Taken, &fence, Duration::ZERO).await;
        assert!(lost.is_cancelled());
    }

    #[test]
    fn the_lease_is_read_often_enough_to_see_each_renewal_in_time() {
        let lease = Duration::from_secs(15);
        // kube-lease-manager renews a third before expiry (grace = duration / 3).
        let renew_every = lease - lease / 3;
        assert!(renew_every + confirmation_interval(lease) < lease);
    }
}
