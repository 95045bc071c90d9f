//! Pauses of a run — a rate limiter's wait, a `Retry-After`, a retry backoff — during which the
//! run gives its run slot back, so a throttled tenant waits alone instead of holding a slot that
//! another academy's due run could use (issue 26).
//!
//! The controller owns the slots; this floor only knows that the current run *may* hold
//! something it can give back while it sleeps ([`SlotHolder`]), carried in a task-local
//! ([`hold_slot_while`]). Code that sleeps on an upstream wraps the sleep in [`paused`]: without a
//! holder (demo, bench, tests that do not care) it is just the sleep.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

/// Something a run holds that it gives back while it sleeps on an upstream (its run slot).
#[async_trait]
pub trait SlotHolder: Send + Sync {
    /// Gives the slot back (a no-op when it is not held).
    fn release(&self);
    /// Waits until the slot is held again (a no-op when it is held).
    async fn reacquire(&self);
}

tokio::task_local! {
    static HOLDER: Arc<dyn SlotHolder>;
}

/// Runs `run` with `holder` as the slot its pauses give back.
pub async fn hold_slot_while<F: Future>(holder: Arc<dyn SlotHolder>, run: F) -> F::Output {
    HOLDER.scope(holder, run).await
}

/// Awaits `sleep` without holding the current run's slot, and takes a slot again before
/// returning. Without a holder it is just `sleep`.
pub async fn paused<F: Future>(sleep: F) -> F::Output {
    let Ok(holder) = HOLDER.try_with(Arc::clone) else {
        return sleep.await;
    };
    holder.release();
    let output = sleep.await;
    holder.reacquire().await;
    output
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A slot holder that records the order of `release` and `reacquire` (shared with the
    /// server-limit tests).
    #[derive(Default)]
    pub(in crate::upstream) struct Recorder(pub(in crate::upstream) Mutex<Vec<&'static str>>);

    #[async_trait]
    impl SlotHolder for Recorder {
        fn release(&self) {
            self.0.lock().unwrap().push("release");
        }
        async fn reacquire(&self) {
            self.0.lock().unwrap().push("reacquire");
        }
    }

    #[tokio::test]
    async fn the_order_is_release_sleep_reacquire() {
        let recorder = Arc::new(Recorder::default());
        let holder: Arc<dyn SlotHolder> = recorder.clone();
        let inner = recorder.clone();
        hold_slot_while(holder, async move {
            paused(async move { inner.0.lock().unwrap().push("sleep") }).await;
        })
        .await;
        assert_eq!(
            *recorder.0.lock().unwrap(),
            vec!["release", "sleep", "reacquire"]
        );
    }

    #[tokio::test]
    async fn without_a_holder_a_pause_is_just_the_sleep() {
        assert_eq!(paused(async { 7 }).await, 7);
    }
}
