//! A request budget shared by every tenant of the process (issue 26): Personio allows 2,000 v1
//! requests per minute per IP address across all endpoints, and every academy of one operator
//! replica leaves through the same egress IP. The per-credential limiters cannot see each other;
//! this one sits on top of them.
//!
//! Fair: waiting requests are served round-robin by tenant (one credential is one tenant), so a
//! tenant with a large backfill gets one turn per round like every other waiting tenant, and a
//! tenant that sends one request now and then never queues behind a busy one's whole backlog.
//! The pace comes from a governor limiter; whoever waits first hands out the turns while it waits
//! (no background task).
//!
//! [`metered`] counts the budgeted requests of one run, so the controller can tell how much of
//! the budget a resource's interval needs (and stretch the interval when the sum is too much).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::oneshot;

/// Default budget: Personio's 2,000 requests per minute per IP address.
pub const DEFAULT_BUDGET_PER_MINUTE: u32 = 2_000;

/// Share of the budget the limiter paces at: with its burst, no 60-second window ever sees
/// more than the budget (`0.95 × 2,000 + burst 20 = 1,920`).
const PACE_SHARE: f64 = 0.95;
/// Requests the limiter lets through back to back.
const BURST: u32 = 20;

/// Requests waiting for their turn, by tenant, and the round-robin order of the tenants.
#[derive(Debug, Default)]
struct Queue {
    order: VecDeque<u64>,
    waiting: HashMap<u64, VecDeque<oneshot::Sender<()>>>,
}

impl Queue {
    fn push(&mut self, tenant: u64, turn: oneshot::Sender<()>) {
        let waiting = self.waiting.entry(tenant).or_default();
        if waiting.is_empty() {
            self.order.push_back(tenant);
        }
        waiting.push_back(turn);
    }

    /// The next tenant's oldest waiter; the tenant goes to the back of the round.
    fn pop(&mut self) -> Option<oneshot::Sender<()>> {
        while let Some(tenant) = self.order.pop_front() {
            let Some(waiting) = self.waiting.get_mut(&tenant) else {
                continue;
            };
            let Some(turn) = waiting.pop_front() else {
                self.waiting.remove(&tenant);
                continue;
            };
            if waiting.is_empty() {
                self.waiting.remove(&tenant);
            } else {
                self.order.push_back(tenant);
            }
            return Some(turn);
        }
        None
    }

    fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[derive(Debug)]
struct Inner {
    per_minute: u32,
    limiter: DefaultDirectRateLimiter,
    queue: Mutex<Queue>,
    /// Held by the waiter that hands out the turns.
    dispatcher: tokio::sync::Mutex<()>,
    granted: AtomicU64,
}

/// The process-wide budget (`--personio-budget-per-minute`); cheap to clone.
#[derive(Clone, Debug)]
pub struct SharedBudget {
    inner: Arc<Inner>,
}

impl SharedBudget {
    /// A budget of `per_minute` requests (at least one), paced a little below it.
    pub fn new(per_minute: u32) -> Self {
        Self::paced(per_minute, f64::from(per_minute.max(1)) * PACE_SHARE)
    }

    /// A budget of `per_minute` requests paced at `pace_per_minute` (the benchmark runs time
    /// faster than real time and scales the pace; the budget it reports stays in real minutes).
    pub fn paced(per_minute: u32, pace_per_minute: f64) -> Self {
        let pace = if pace_per_minute.is_finite() && pace_per_minute > 0.0 {
            pace_per_minute
        } else {
            1.0
        };
        let period = Duration::from_secs_f64((60.0 / pace).max(1e-6));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(BURST).unwrap_or(NonZeroU32::MIN));
        Self {
            inner: Arc::new(Inner {
                per_minute: per_minute.max(1),
                limiter: RateLimiter::direct(quota),
                queue: Mutex::default(),
                dispatcher: tokio::sync::Mutex::new(()),
                granted: AtomicU64::new(0),
            }),
        }
    }

    /// The budget in requests per minute.
    pub fn per_minute(&self) -> u32 {
        self.inner.per_minute
    }

    /// Requests let through so far.
    pub fn granted(&self) -> u64 {
        self.inner.granted.load(Ordering::Relaxed)
    }

    /// The share of one tenant, identified by `tenant` (e.g. its credential's cache key).
    pub fn share(&self, tenant: &[u8]) -> BudgetShare {
        let tenant = tenant.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        BudgetShare {
            budget: self.clone(),
            tenant,
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.inner.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for `tenant`'s turn.
    async fn take(&self, tenant: u64) {
        {
            // Nobody waiting and a token at hand: go at once.
            let queue = self.queue();
            if queue.is_empty() && self.inner.limiter.check().is_ok() {
                self.inner.granted.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let (turn, mut my_turn) = oneshot::channel();
        self.queue().push(tenant, turn);
        tokio::select! {
            biased;
            _ = &mut my_turn => {}
            _dispatching = self.inner.dispatcher.lock() => {
                // This waiter hands out turns (its own included) until its own came.
                while matches!(
                    my_turn.try_recv(),
                    Err(oneshot::error::TryRecvError::Empty)
                ) {
                    self.inner.limiter.until_ready().await;
                    self.hand_out_one_turn();
                }
            }
        }
    }

    /// Gives the token just taken to the next waiting tenant (skipping waiters that left).
    fn hand_out_one_turn(&self) {
        let mut queue = self.queue();
        while let Some(turn) = queue.pop() {
            if turn.send(()).is_ok() {
                self.inner.granted.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// One tenant's access to the [`SharedBudget`].
#[derive(Clone, Debug)]
pub struct BudgetShare {
    budget: SharedBudget,
    tenant: u64,
}

impl BudgetShare {
    /// Waits for this tenant's turn for one request, and counts it for the current run
    /// ([`metered`]).
    pub async fn take(&self) {
        self.budget.take(self.tenant).await;
        let _ = METER.try_with(|meter| meter.fetch_add(1, Ordering::Relaxed));
    }

    /// The budget this share belongs to.
    pub fn budget(&self) -> &SharedBudget {
        &self.budget
    }
}

tokio::task_local! {
    static METER: Arc<AtomicU64>;
}

/// Runs `run` and returns its output with the number of budgeted requests it sent.
pub async fn metered<F: Future>(run: F) -> (F::Output, u64) {
    let meter = Arc::new(AtomicU64::new(0));
    let output = METER.scope(meter.clone(), run).await;
    (output, meter.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn tenants_take_turns_round_robin() {
        let mut queue = Queue::default();
        let mut receivers = Vec::new();
        for tenant in [1, 1, 1, 2, 3] {
            let (turn, receiver) = oneshot::channel();
            queue.push(tenant, turn);
            receivers.push((tenant, receiver));
        }
        let mut served = Vec::new();
        while let Some(turn) = queue.pop() {
            let _ = turn.send(());
            for (tenant, receiver) in &mut receivers {
                if receiver.try_recv().is_ok() {
                    served.push(*tenant);
                }
            }
        }
        assert_eq!(served, vec![1, 2, 3, 1, 1]);
    }

    #[tokio::test]
    async fn a_busy_tenant_gets_no_more_than_its_turn_while_another_waits() {
        // 6,000/min = 100/s: the burst of 20 goes at once, then one every 10 ms.
        let budget = SharedBudget::paced(6_000, 6_000.0);
        let busy = budget.share(b"busy");
        let quiet = budget.share(b"quiet");
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..60 {
            let (busy, order) = (busy.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                busy.take().await;
                order.lock().unwrap().push('b');
            }));
        }
        tokio::task::yield_now().await;
        for _ in 0..5 {
            let (quiet, order) = (quiet.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                quiet.take().await;
                order.lock().unwrap().push('q');
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let order: String = order.lock().unwrap().iter().collect();
        let last_quiet = order.rfind('q').unwrap();
        // The quiet tenant came after the busy one queued 60 requests; alternating turns serve
        // it within ~10 grants after the busy one's burst, not after all 60.
        assert!(last_quiet < 40, "{order}");
        assert_eq!(budget.granted(), 65);
    }

    #[tokio::test]
    async fn the_pace_keeps_every_minute_below_the_budget() {
        // Scaled: a "minute" of 600 ms with a budget of 60 per minute.
        let budget = SharedBudget::paced(60, 60.0 * PACE_SHARE * 100.0);
        let share = budget.share(b"t");
        let started = Instant::now();
        let (_, counted) = metered(async {
            for _ in 0..(BURST + 57) {
                share.take().await;
            }
        })
        .await;
        assert_eq!(counted, u64::from(BURST + 57));
        // 57 paced requests at 57/600 ms take at least ~600 ms: no burst beyond the bucket.
        assert!(
            started.elapsed() >= Duration::from_millis(550),
            "{:?}",
            started.elapsed()
        );
    }
}
