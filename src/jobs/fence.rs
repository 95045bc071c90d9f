//! Fencing of a replica that may have lost its Lease without noticing.
//!
//! A replica frozen past its Lease (SIGSTOP, a stalled node, a long GC-like pause) resumes in the
//! middle of a run while another replica already holds the Lease. Its ledger writes are rejected
//! (they are conditional on its writer token), but an upload it had already started would go on.
//! The [`Fence`] notices the pause itself: a heartbeat ticks a monotonic clock (which keeps
//! running while a process is stopped), and once a gap longer than the safe bound is seen — by
//! the heartbeat or by whoever asks first after the pause — the fence stays closed for good and
//! its token is cancelled, so the replica stops and hands over. Upload bodies are read through
//! [`Fence::guard`], so a transfer cut by a pause is aborted mid-body and never completes.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// Whether this replica may still write upstream. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Fence(Option<Arc<Heartbeat>>);

#[derive(Debug)]
struct Heartbeat {
    origin: Instant,
    /// Milliseconds since `origin` at the last tick.
    last_tick: AtomicI64,
    max_gap: Duration,
    tripped: AtomicBool,
    /// Cancelled when the fence closes.
    lost: CancellationToken,
}

impl Heartbeat {
    fn elapsed_ms(&self) -> i64 {
        i64::try_from(self.origin.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Checks the gap since the last tick; a gap beyond the bound closes the fence for good.
    fn check(&self) -> bool {
        if self.tripped.load(Ordering::SeqCst) || self.lost.is_cancelled() {
            return false;
        }
        let gap = self
            .elapsed_ms()
            .saturating_sub(self.last_tick.load(Ordering::SeqCst));
        if i128::from(gap) > i128::try_from(self.max_gap.as_millis()).unwrap_or(i128::MAX) {
            self.tripped.store(true, Ordering::SeqCst);
            tracing::error!(
                paused_ms = gap,
                "this replica was paused longer than its Lease allows; it stops writing"
            );
            self.lost.cancel();
            return false;
        }
        true
    }
}

impl Fence {
    /// A fence that never closes (no leader election: a single replica).
    pub fn open() -> Self {
        Self(None)
    }

    /// A fence with a heartbeat every `max_gap / 4`; a pause longer than `max_gap` (choose at
    /// most half the Lease duration) closes it and cancels `lost`. Needs a Tokio runtime.
    pub fn heartbeat(max_gap: Duration, lost: CancellationToken) -> Self {
        let beat = Arc::new(Heartbeat {
            origin: Instant::now(),
            last_tick: AtomicI64::new(0),
            max_gap: max_gap.max(Duration::from_millis(100)),
            tripped: AtomicBool::new(false),
            lost,
        });
        let ticker = beat.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(ticker.max_gap / 4);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = ticker.lost.cancelled() => return,
                }
                if !ticker.check() {
                    return;
                }
                ticker
                    .last_tick
                    .store(ticker.elapsed_ms(), Ordering::SeqCst);
            }
        });
        Self(Some(beat))
    }

    /// Whether writes may go on.
    pub fn holds(&self) -> bool {
        self.0.as_ref().is_none_or(|beat| beat.check())
    }

    /// `body`, cut off with an error as soon as the fence closes.
    pub fn guard(
        &self,
        body: BoxStream<'static, Result<Bytes, std::io::Error>>,
    ) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
        let fence = self.clone();
        body.map(move |chunk| {
            if fence.holds() {
                chunk
            } else {
                Err(std::io::Error::other(
                    "transfer aborted: this replica no longer holds the Lease",
                ))
            }
        })
        .boxed()
    }

    /// Simulates a pause of `by` (tests).
    #[cfg(test)]
    fn pause_for_test(&self, by: Duration) {
        if let Some(beat) = &self.0 {
            let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            beat.last_tick
                .store(beat.elapsed_ms().saturating_sub(ms), Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_fence_always_holds() {
        assert!(Fence::open().holds());
    }

    #[tokio::test]
    async fn a_pause_longer_than_the_bound_closes_the_fence_for_good() {
        let lost = CancellationToken::new();
        let fence = Fence::heartbeat(Duration::from_secs(5), lost.clone());
        assert!(fence.holds());
        fence.pause_for_test(Duration::from_secs(60));
        assert!(!fence.holds());
        assert!(lost.is_cancelled());
        assert!(!fence.holds(), "stays closed");
    }

    #[tokio::test]
    async fn guarded_body_breaks_off_once_the_fence_closes() {
        let lost = CancellationToken::new();
        let fence = Fence::heartbeat(Duration::from_secs(5), lost.clone());
        let body = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"%PDF-")),
            Ok(Bytes::from_static(b"rest")),
        ])
        .boxed();
        let mut guarded = fence.guard(body);
        assert!(guarded.next().await.unwrap().is_ok());
        lost.cancel();
        assert!(guarded.next().await.unwrap().is_err());
    }
}
