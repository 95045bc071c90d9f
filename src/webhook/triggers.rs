//! The channel from the receiver into the controllers' schedulers: a notified resource is marked
//! pending and handed to its controller once (`Controller::reconcile_on`); the due check then
//! treats "pending" as a reason to run (see `controller::schedule`).
//!
//! Coalescing: while a resource is pending, more notifications for it send nothing; kube-runtime
//! holds at most one queued reconcile per object and never runs one object twice at a time. So a
//! burst costs one run (plus one after a run that was already going on).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use kube::runtime::reflector::ObjectRef;

use super::{ResourceKey, Source};
use crate::api::{CertificateSync, EmployeeSync};

/// The wake-up channel of one controller and the namespace it watches (`None`: all).
type Waker<K> = (Option<String>, UnboundedSender<ObjectRef<K>>);

/// Senders of one kind.
struct Wakers<K: kube::Resource<DynamicType = ()>> {
    senders: Mutex<Vec<Waker<K>>>,
}

impl<K: kube::Resource<DynamicType = ()>> Default for Wakers<K> {
    fn default() -> Self {
        Self {
            senders: Mutex::default(),
        }
    }
}

impl<K: kube::Resource<DynamicType = ()>> Wakers<K> {
    fn subscribe(&self, scope: Option<&str>) -> UnboundedReceiver<ObjectRef<K>> {
        let (sender, receiver) = unbounded();
        let mut senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        senders.push((scope.map(str::to_string), sender));
        receiver
    }

    fn wake(&self, key: &ResourceKey) {
        let senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        for (scope, sender) in senders.iter() {
            if scope.as_deref().is_none_or(|ns| ns == key.namespace) {
                let object = ObjectRef::new(&key.name).within(&key.namespace);
                // A closed channel means the controller stopped (shutdown): nothing to wake.
                let _ = sender.unbounded_send(object);
            }
        }
    }
}

/// Pending notifications and the wake-up channels.
#[derive(Default)]
pub struct Triggers {
    pending: Mutex<HashSet<ResourceKey>>,
    employee: Wakers<EmployeeSync>,
    certificate: Wakers<CertificateSync>,
}

impl Triggers {
    /// The stream an EmployeeSync controller watching `scope` reconciles on.
    pub fn employee_stream(
        &self,
        scope: Option<&str>,
    ) -> UnboundedReceiver<ObjectRef<EmployeeSync>> {
        self.employee.subscribe(scope)
    }

    /// The stream a CertificateSync controller watching `scope` reconciles on.
    pub fn certificate_stream(
        &self,
        scope: Option<&str>,
    ) -> UnboundedReceiver<ObjectRef<CertificateSync>> {
        self.certificate.subscribe(scope)
    }

    /// Marks `key` notified and wakes its controller, unless it is pending already. Returns
    /// whether this call woke it.
    pub fn notify(&self, key: &ResourceKey) -> bool {
        let newly = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.insert(key.clone())
        };
        if newly {
            match key.source {
                Source::Personio => self.employee.wake(key),
                Source::Reteach => self.certificate.wake(key),
            }
        }
        newly
    }

    /// Hands `key` to its controller without marking it notified: its reconcile refreshes the
    /// receiver keys and reteach subscriptions, and runs only if a run is due anyway.
    pub fn poke(&self, key: &ResourceKey) {
        match key.source {
            Source::Personio => self.employee.wake(key),
            Source::Reteach => self.certificate.wake(key),
        }
    }

    /// Whether `key` was notified since its last run started.
    pub fn is_pending(&self, key: &ResourceKey) -> bool {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.contains(key)
    }

    /// Clears the notification of `key` (its run starts now, or it is gone).
    pub fn clear(&self, key: &ResourceKey) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.remove(key);
    }
}

/// What the due check of one resource gets to know about notifications.
pub struct Notification<'a> {
    /// Where the pending flag lives.
    pub triggers: &'a Triggers,
    /// The resource.
    pub key: ResourceKey,
    /// Shortest time between the starts of two notified runs.
    pub min_gap: Duration,
}

impl Notification<'_> {
    /// Whether the resource was notified.
    pub fn pending(&self) -> bool {
        self.triggers.is_pending(&self.key)
    }

    /// The notification is being served: a run starts.
    pub fn served(&self) {
        self.triggers.clear(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn a_burst_wakes_the_controller_once_until_the_run_starts() {
        let triggers = Triggers::default();
        let mut all = triggers.employee_stream(None);
        let mut other = triggers.employee_stream(Some("elsewhere"));
        let key = ResourceKey::new(Source::Personio, "hr", "acme");
        assert!(triggers.notify(&key));
        for _ in 0..100 {
            assert!(!triggers.notify(&key));
        }
        assert!(triggers.is_pending(&key));
        let woken = all.next().await.unwrap();
        assert_eq!(
            (woken.name.as_str(), woken.namespace.as_deref()),
            ("acme", Some("hr"))
        );
        assert!(all.try_recv().is_err(), "one wake-up for the burst");
        assert!(other.try_recv().is_err(), "other namespaces are not woken");
        triggers.clear(&key);
        assert!(
            triggers.notify(&key),
            "after the run started, the next one wakes again"
        );
        assert!(all.next().await.is_some());
    }
}
