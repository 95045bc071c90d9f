//! Fair run admission (issue 26): the run slots shared by both controllers
//! (`--max-concurrent-runs`), handed out
//!
//! - **by priority**: spec changes and requested runs (`reconcile.fluxcd.io/requestedAt`) first,
//!   then runs resuming after a pause, then everything else (due by interval, first runs, webhook
//!   notifications, re-checks), each class first come, first served;
//! - **with a cap per namespace** (`--max-namespace-run-share`, a share of the slots): one academy
//!   with many resources, or many resources on one throttled credential, never holds every slot;
//! - **only while a run works**: a run sleeping on a rate limiter or a `Retry-After` gives its
//!   slot back ([`crate::upstream::paused`]) and queues again (as `Resumed`) when it wakes.
//!
//! A waiter whose namespace is at its cap is passed over, not blocking the queue behind it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::jobs::schedule::DueReason;
use crate::upstream::SlotHolder;

/// Which runs get a free slot first (lower first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// A spec change or a requested run: someone is waiting for it.
    Urgent,
    /// A run that paused (rate limiter, `Retry-After`) and goes on: it holds state.
    Resumed,
    /// Interval elapsed, first run, notification, re-check.
    Routine,
}

impl Priority {
    /// The priority of a run due for `reason`.
    pub fn of(reason: DueReason) -> Self {
        match reason {
            DueReason::SpecChanged | DueReason::Requested => Self::Urgent,
            DueReason::FirstRun
            | DueReason::IntervalElapsed
            | DueReason::Blocked
            | DueReason::Notified => Self::Routine,
        }
    }
}

/// The default of `--max-namespace-run-share`: a namespace holds at most a quarter of the slots.
pub const DEFAULT_NAMESPACE_SHARE_PERCENT: u8 = 25;

/// Slots per namespace for `limit` slots and a share in percent: at least one, at most `limit`.
pub fn namespace_cap(limit: usize, share_percent: u8) -> usize {
    let share = usize::from(share_percent.clamp(1, 100));
    limit
        .saturating_mul(share)
        .div_ceil(100)
        .clamp(1, limit.max(1))
}

/// One queued request for a slot.
struct Waiter {
    namespace: Arc<str>,
    grant: oneshot::Sender<()>,
}

/// The bookkeeping behind the slots.
struct Ledger {
    free: usize,
    per_namespace_cap: usize,
    held: HashMap<Arc<str>, usize>,
    queue: BTreeMap<(Priority, u64), Waiter>,
    next_ticket: u64,
}

impl Ledger {
    fn held_by(&self, namespace: &str) -> usize {
        self.held.get(namespace).copied().unwrap_or(0)
    }

    fn take(&mut self, namespace: &Arc<str>) {
        self.free -= 1;
        *self.held.entry(namespace.clone()).or_insert(0) += 1;
    }

    fn give_back(&mut self, namespace: &str) {
        self.free += 1;
        if let Some(count) = self.held.get_mut(namespace) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.held.remove(namespace);
            }
        }
        self.grant();
    }

    /// Hands free slots to the first waiters whose namespace is below its cap.
    fn grant(&mut self) {
        while self.free > 0 {
            let cap = self.per_namespace_cap;
            let Some(ticket) = self
                .queue
                .iter()
                .find(|(_, waiter)| self.held_by(&waiter.namespace) < cap)
                .map(|(ticket, _)| *ticket)
            else {
                return;
            };
            let Some(waiter) = self.queue.remove(&ticket) else {
                return;
            };
            self.take(&waiter.namespace);
            if waiter.grant.send(()).is_err() {
                // The waiter went away between queueing and now: the slot is free again.
                self.free += 1;
                if let Some(count) = self.held.get_mut(&waiter.namespace) {
                    *count -= 1;
                    if *count == 0 {
                        self.held.remove(&waiter.namespace);
                    }
                }
            }
        }
    }
}

/// Run slots shared by every controller of the process, with the peak of runs in flight.
#[derive(Clone)]
pub struct RunSlots {
    ledger: Option<Arc<Mutex<Ledger>>>,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl std::fmt::Debug for RunSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSlots")
            .field("running", &self.running())
            .field("peak", &self.peak())
            .finish_non_exhaustive()
    }
}

impl RunSlots {
    /// At most `limit` runs at a time, at most a quarter of them from one namespace; `0` means
    /// no limit.
    pub fn new(limit: usize) -> Self {
        Self::with_namespace_share(limit, DEFAULT_NAMESPACE_SHARE_PERCENT)
    }

    /// At most `limit` runs at a time (`0`: no limit), at most `share_percent` % of them (at
    /// least one) from one namespace.
    pub fn with_namespace_share(limit: usize, share_percent: u8) -> Self {
        let ledger = (limit > 0).then(|| {
            Arc::new(Mutex::new(Ledger {
                free: limit,
                per_namespace_cap: namespace_cap(limit, share_percent),
                held: HashMap::new(),
                queue: BTreeMap::new(),
                next_ticket: 0,
            }))
        });
        Self {
            ledger,
            running: Arc::default(),
            peak: Arc::default(),
        }
    }

    /// Waits for a slot for a run in `namespace`; the run holds it until the returned value is
    /// dropped (and gives it back while paused, see [`RunSlot`]).
    pub async fn acquire(&self, namespace: &str, priority: Priority) -> Arc<RunSlot> {
        let namespace: Arc<str> = Arc::from(namespace);
        self.wait_for_slot(&namespace, priority).await;
        Arc::new(RunSlot {
            slots: self.clone(),
            namespace,
            held: Mutex::new(true),
        })
    }

    /// Queues for a slot and waits until it is granted (then it is counted as held).
    async fn wait_for_slot(&self, namespace: &Arc<str>, priority: Priority) {
        if let Some(ledger) = &self.ledger {
            let (grant, granted) = oneshot::channel();
            let ticket = {
                let mut ledger = lock(ledger);
                let ticket = (priority, ledger.next_ticket);
                ledger.next_ticket += 1;
                let namespace = namespace.clone();
                ledger.queue.insert(ticket, Waiter { namespace, grant });
                ledger.grant();
                ticket
            };
            let mut queued = Queued {
                ledger,
                ticket,
                namespace,
                done: false,
            };
            // The sender is only dropped with the ledger entry, which `Queued` owns until here.
            let _ = granted.await;
            queued.done = true;
        }
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }

    fn give_back(&self, namespace: &str) {
        self.running.fetch_sub(1, Ordering::SeqCst);
        if let Some(ledger) = &self.ledger {
            lock(ledger).give_back(namespace);
        }
    }

    /// Runs holding a slot now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Most runs that held a slot at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

fn lock(ledger: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|p| p.into_inner())
}

/// A place in the queue; leaving it early (the waiting future dropped) takes the request back,
/// or gives back a slot granted in the meantime.
struct Queued<'a> {
    ledger: &'a Arc<Mutex<Ledger>>,
    ticket: (Priority, u64),
    namespace: &'a Arc<str>,
    done: bool,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut ledger = lock(self.ledger);
        if ledger.queue.remove(&self.ticket).is_none() {
            ledger.give_back(self.namespace);
        }
    }
}

/// One run's slot (see [`RunSlots::acquire`]). The run holds it from start to end except while
/// it is paused on an upstream ([`crate::upstream::paused`]).
pub struct RunSlot {
    slots: RunSlots,
    namespace: Arc<str>,
    held: Mutex<bool>,
}

impl std::fmt::Debug for RunSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSlot")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl RunSlot {
    fn set_held(&self, value: bool) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *held, value)
    }
}

#[async_trait]
impl SlotHolder for RunSlot {
    fn release(&self) {
        if self.set_held(false) {
            self.slots.give_back(&self.namespace);
        }
    }

    async fn reacquire(&self) {
        let held = *self.held.lock().unwrap_or_else(|p| p.into_inner());
        if !held {
            self.slots
                .wait_for_slot(&self.namespace, Priority::Resumed)
                .await;
            self.set_held(true);
        }
    }
}

impl Drop for RunSlot {
    fn drop(&mut self) {
        if self.set_held(false) {
            self.slots.give_back(&self.namespace);
        }
    }
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
