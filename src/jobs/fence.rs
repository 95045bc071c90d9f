//! Fencing of a replica that may have lost its Lease without noticing.
//!
//! A replica frozen past its Lease (SIGSTOP, a stalled node, a long GC-like pause) resumes in the
//! middle of a run while another replica already holds the Lease. Its ledger writes are rejected
//! (they are conditional on its writer token), but an upload it had already started would go on.
//! The [`Fence`] notices the pause itself: a heartbeat ticks a monotonic clock (which keeps
//! running while a process is stopped), and once a gap longer than the safe bound is seen — by
//! the heartbeat or by whoever asks first after the pause — the fence stays closed for good and
//! its token is cancelled, so the replica stops and hands over.
//!
//! A replica that keeps running but whose Lease renewals fail (the API server unreachable, a
//! network partition) is not paused, yet it loses the Lease all the same once the lease duration
//! has passed since its last renewal. Renewals are therefore confirmed from outside
//! ([`Fence::renewal_confirmed`], fed by `controller::leader::confirm_renewals`), and a fence with
//! a renewal bound closes when the last confirmed renewal is older than the bound.
//!
//! Upload bodies are read through [`Fence::guard`] in pieces of at most [`GUARD_CHUNK_BYTES`],
//! the fence checked before each: a transfer cut by a pause or a lost Lease is aborted mid-body
//! and never completes, whatever the spool handed over (a PDF held in memory is one chunk).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// Largest piece of an upload body sent between two checks of the fence.
pub const GUARD_CHUNK_BYTES: usize = 64 * 1024;

/// Time since an origin on a monotonic clock (injected in tests).
pub type Clock = Arc<dyn Fn() -> Duration + Send + Sync>;

/// Whether this replica may still write upstream. Cheap to clone.
#[derive(Clone, Default)]
pub struct Fence(Option<Arc<Heartbeat>>);

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fence")
            .field("guarded", &self.0.is_some())
            .field("holds", &self.holds())
            .finish()
    }
}

struct Heartbeat {
    clock: Clock,
    /// Milliseconds on `clock` at the last tick.
    last_tick: AtomicI64,
    max_gap: Duration,
    /// Milliseconds on `clock` of the last confirmed Lease renewal.
    last_renewal: AtomicI64,
    /// How old the last confirmed renewal may get (the lease duration); `None`: not checked.
    renewal_bound: Option<Duration>,
    tripped: AtomicBool,
    /// Cancelled when the fence closes.
    lost: CancellationToken,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Heartbeat {
    fn elapsed_ms(&self) -> i64 {
        millis((self.clock)())
    }

    fn trip(&self, why: &'static str, ms: i64) {
        self.tripped.store(true, Ordering::SeqCst);
        tracing::error!(ms, "{why}; this replica stops writing");
        self.lost.cancel();
    }

    /// Checks the gap since the last tick and the age of the last confirmed renewal; either
    /// beyond its bound closes the fence for good.
    fn check(&self) -> bool {
        if self.tripped.load(Ordering::SeqCst) || self.lost.is_cancelled() {
            return false;
        }
        let now = self.elapsed_ms();
        let gap = now.saturating_sub(self.last_tick.load(Ordering::SeqCst));
        if gap > millis(self.max_gap) {
            self.trip("this replica was paused longer than its Lease allows", gap);
            return false;
        }
        if let Some(bound) = self.renewal_bound {
            let age = now.saturating_sub(self.last_renewal.load(Ordering::SeqCst));
            if age > millis(bound) {
                self.trip(
                    "no Lease renewal was confirmed for longer than the lease duration",
                    age,
                );
                return false;
            }
        }
        true
    }

    fn tick(&self) -> bool {
        if !self.check() {
            return false;
        }
        self.last_tick.store(self.elapsed_ms(), Ordering::SeqCst);
        true
    }
}

impl Fence {
    /// A fence that never closes (no leader election: a single replica).
    pub fn open() -> Self {
        Self(None)
    }

    /// A fence with a heartbeat every `max_gap / 4`; a pause longer than `max_gap` (choose at
    /// most half the Lease duration) closes it and cancels `lost`. With `renewal_bound` (the
    /// lease duration) it also closes once no renewal has been confirmed for that long; the Lease
    /// counts as renewed when the fence is made. Needs a Tokio runtime.
    pub fn heartbeat(
        max_gap: Duration,
        renewal_bound: Option<Duration>,
        lost: CancellationToken,
    ) -> Self {
        let origin = Instant::now();
        let fence = Self::with_clock(
            Arc::new(move || origin.elapsed()),
            max_gap,
            renewal_bound,
            lost,
        );
        if let Some(beat) = fence.0.clone() {
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(beat.max_gap / 4);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = interval.tick() => {}
                        _ = beat.lost.cancelled() => return,
                    }
                    if !beat.tick() {
                        return;
                    }
                }
            });
        }
        fence
    }

    /// A fence on an injected monotonic `clock`, without a heartbeat task (tests: the caller
    /// moves the clock).
    pub fn with_clock(
        clock: Clock,
        max_gap: Duration,
        renewal_bound: Option<Duration>,
        lost: CancellationToken,
    ) -> Self {
        let now = millis(clock());
        Self(Some(Arc::new(Heartbeat {
            clock,
            last_tick: AtomicI64::new(now),
            max_gap: max_gap.max(Duration::from_millis(100)),
            last_renewal: AtomicI64::new(now),
            renewal_bound,
            tripped: AtomicBool::new(false),
            lost,
        })))
    }

    /// Whether writes may go on.
    pub fn holds(&self) -> bool {
        self.0.as_ref().is_none_or(|beat| beat.check())
    }

    /// The Lease was renewed `renewed_ago` ago (as the Lease object shows it). Never moves the
    /// last renewal backwards, and never reopens a closed fence.
    pub fn renewal_confirmed(&self, renewed_ago: Duration) {
        if let Some(beat) = &self.0 {
            let at = beat.elapsed_ms().saturating_sub(millis(renewed_ago));
            beat.last_renewal.fetch_max(at, Ordering::SeqCst);
        }
    }

    /// Closes the fence for good (another replica holds the Lease).
    pub fn close(&self, why: &'static str) {
        if let Some(beat) = &self.0 {
            if !beat.tripped.load(Ordering::SeqCst) {
                beat.trip(why, 0);
            }
        }
    }

    /// `body`, in pieces of at most [`GUARD_CHUNK_BYTES`], cut off with an error as soon as the
    /// fence closes.
    pub fn guard(
        &self,
        body: BoxStream<'static, Result<Bytes, std::io::Error>>,
    ) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
        let fence = self.clone();
        body.flat_map(|chunk| futures::stream::iter(pieces(chunk)))
            .map(move |piece| {
                if fence.holds() {
                    piece
                } else {
                    Err(std::io::Error::other(
                        "transfer aborted: this replica no longer holds the Lease",
                    ))
                }
            })
            .boxed()
    }
}

/// A chunk split into pieces of at most [`GUARD_CHUNK_BYTES`] (cheap: `Bytes` slices share it).
fn pieces(chunk: Result<Bytes, std::io::Error>) -> Vec<Result<Bytes, std::io::Error>> {
    match chunk {
        Ok(bytes) if bytes.len() > GUARD_CHUNK_BYTES => (0..bytes.len())
            .step_by(GUARD_CHUNK_BYTES)
            .map(|start| Ok(bytes.slice(start..(start + GUARD_CHUNK_BYTES).min(bytes.len()))))
            .collect(),
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// A fence with `bound` and `lease` on a clock the test moves by hand (milliseconds in the
    /// returned cell), and the token it cancels when it closes.
    fn manual_fence(
        bound: Duration,
        lease: Option<Duration>,
    ) -> (Fence, Arc<AtomicU64>, CancellationToken) {
        let now = Arc::new(AtomicU64::new(0));
        let read = now.clone();
        let clock: Clock = Arc::new(move || Duration::from_millis(read.load(Ordering::SeqCst)));
        let lost = CancellationToken::new();
        let fence = Fence::with_clock(clock, bound, lease, lost.clone());
        (fence, now, lost)
    }

    #[tokio::test]
    async fn open_fence_always_holds() {
        assert!(Fence::open().holds());
    }

    #[tokio::test]
    async fn a_pause_longer_than_the_bound_closes_the_fence_for_good() {
        let (fence, now, lost) = manual_fence(Duration::from_secs(5), None);
        assert!(fence.holds());
        now.store(60_000, Ordering::SeqCst);
        assert!(!fence.holds());
        assert!(lost.is_cancelled());
        now.store(60_001, Ordering::SeqCst);
        assert!(!fence.holds(), "stays closed");
    }

    #[tokio::test]
    async fn a_fresh_heartbeat_fence_with_a_renewal_bound_holds() {
        let lost = CancellationToken::new();
        let fence = Fence::heartbeat(Duration::from_secs(5), Some(Duration::from_secs(15)), lost);
        assert!(fence.holds());
    }

    #[tokio::test]
    async fn guarded_body_breaks_off_once_the_fence_closes() {
        let (fence, _, lost) = manual_fence(Duration::from_secs(5), None);
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

    #[tokio::test]
    async fn a_pdf_held_in_memory_as_one_chunk_is_cut_off_mid_body() {
        let (fence, _, lost) = manual_fence(Duration::from_secs(5), None);
        // What the memory spool hands over: the whole PDF in one piece.
        let pdf = Bytes::from(vec![b'x'; 5 * GUARD_CHUNK_BYTES + 10]);
        let mut guarded = fence.guard(futures::stream::iter(vec![Ok(pdf)]).boxed());
        let first = guarded.next().await.unwrap().unwrap();
        assert_eq!(first.len(), GUARD_CHUNK_BYTES);
        assert!(guarded.next().await.unwrap().is_ok());
        lost.cancel();
        let cut = guarded.next().await.unwrap();
        assert!(cut.is_err(), "the rest of the body is not sent");
    }

    #[tokio::test]
    async fn an_open_body_passes_whole_in_order() {
        let (fence, _, _) = manual_fence(Duration::from_secs(5), None);
        let pdf: Vec<u8> = (0..(3 * GUARD_CHUNK_BYTES + 7))
            .map(|i| (i % 251) as u8)
            .collect();
        let guarded =
            fence.guard(futures::stream::iter(vec![Ok(Bytes::from(pdf.clone()))]).boxed());
        let pieces: Vec<Bytes> = futures::TryStreamExt::try_collect(guarded).await.unwrap();
        assert_eq!(pieces.len(), 4);
        assert_eq!(pieces.concat(), pdf);
    }

    #[tokio::test]
    async fn unconfirmed_renewals_close_the_fence_after_the_lease_duration() {
        let (fence, now, lost) =
            manual_fence(Duration::from_secs(7), Some(Duration::from_secs(15)));
        // Renewals are confirmed every 5 s, the heartbeat ticks: the fence holds.
        for second in (5..=30).step_by(5) {
            now.store(second * 1000, Ordering::SeqCst);
            fence.renewal_confirmed(Duration::ZERO);
            assert!(fence.0.as_ref().unwrap().tick());
        }
        // From 30 s on every renewal fails: nothing is confirmed any more.
        for second in [35, 40, 45] {
            now.store(second * 1000, Ordering::SeqCst);
            assert!(fence.holds(), "within the lease duration at {second} s");
            assert!(fence.0.as_ref().unwrap().tick());
        }
        now.store(45_001, Ordering::SeqCst);
        assert!(!fence.holds(), "the Lease may be another replica's now");
        assert!(lost.is_cancelled(), "the replica is told it lost the Lease");
        fence.renewal_confirmed(Duration::ZERO);
        assert!(!fence.holds(), "a late confirmation does not reopen it");
    }

    #[tokio::test]
    async fn a_renewal_is_dated_when_it_happened_not_when_it_was_seen() {
        let (fence, now, _) = manual_fence(Duration::from_secs(60), Some(Duration::from_secs(15)));
        now.store(20_000, Ordering::SeqCst);
        // Seen at 20 s, renewed 10 s before: at 10 s.
        fence.renewal_confirmed(Duration::from_secs(10));
        now.store(25_000, Ordering::SeqCst);
        assert!(fence.holds());
        now.store(25_001, Ordering::SeqCst);
        assert!(!fence.holds());
    }
}
