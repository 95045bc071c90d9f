//! The channel from the receiver into the controllers' schedulers: a notified resource is marked
//! pending and handed to its controller once (`Controller::reconcile_on`); the due check then
//! treats "pending" as a reason to run (see `jobs::schedule`).
//!
//! Coalescing: while a resource is pending, more notifications for it send nothing; kube-runtime
//! holds at most one queued reconcile per object and never runs one object twice at a time. So a
//! burst costs one run (plus one after a run that was already going on).
//!
//! The person a Personio notification names is kept for the resource's next run (at most
//! [`MAX_NOTIFIED_PERSONS`]), which re-reads those persons by id: Personio's v2 change feed does
//! not see employment changes (`employment.updated`, or `employment.terminated` firing on the
//! termination date), so without the id the notified run would find nothing to do.

use std::collections::{BTreeSet, HashMap, HashSet};
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

/// Most person ids kept per resource between two runs; beyond it the notifications still wake
/// the resource, and the persons they name wait for its next full run.
pub const MAX_NOTIFIED_PERSONS: usize = 1_000;

/// Pending notifications and the wake-up channels.
#[derive(Default)]
pub struct Triggers {
    pending: Mutex<HashSet<ResourceKey>>,
    persons: Mutex<HashMap<ResourceKey, BTreeSet<String>>>,
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

    /// [`Triggers::notify`], keeping `person` (the id the notification named) for the next run's
    /// targeted re-read ([`Triggers::take_persons`]).
    pub fn notify_about(&self, key: &ResourceKey, person: Option<&str>) -> bool {
        if let Some(person) = person {
            let mut persons = self.persons.lock().unwrap_or_else(|p| p.into_inner());
            let named = persons.entry(key.clone()).or_default();
            if named.len() < MAX_NOTIFIED_PERSONS {
                named.insert(person.to_string());
            }
        }
        self.notify(key)
    }

    /// The person ids notifications named for `key` since the last take (a run starts).
    pub fn take_persons(&self, key: &ResourceKey) -> Vec<String> {
        let mut persons = self.persons.lock().unwrap_or_else(|p| p.into_inner());
        persons
            .remove(key)
            .map(|named| named.into_iter().collect())
            .unwrap_or_default()
    }

    /// Hands person ids back after a run that failed, so the retry re-reads them.
    pub fn restore_persons(&self, key: &ResourceKey, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let mut persons = self.persons.lock().unwrap_or_else(|p| p.into_inner());
        let named = persons.entry(key.clone()).or_default();
        for id in ids {
            if named.len() >= MAX_NOTIFIED_PERSONS {
                break;
            }
            named.insert(id);
        }
    }

    /// Forgets everything about `key` (the resource is gone).
    pub fn forget(&self, key: &ResourceKey) {
        self.clear(key);
        let mut persons = self.persons.lock().unwrap_or_else(|p| p.into_inner());
        persons.remove(key);
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

    #[test]
    fn named_persons_wait_for_the_next_run_bounded_and_survive_a_failed_one() {
        let triggers = Triggers::default();
        let key = ResourceKey::new(Source::Personio, "hr", "acme");
        let other = ResourceKey::new(Source::Personio, "hr", "other");
        assert!(triggers.notify_about(&key, Some("7")));
        assert!(
            !triggers.notify_about(&key, Some("9")),
            "coalesced, still kept"
        );
        triggers.notify_about(&key, Some("7"));
        triggers.notify_about(&key, None);
        triggers.clear(&key);
        assert_eq!(
            triggers.take_persons(&key),
            vec!["7", "9"],
            "a started run takes them"
        );
        assert!(triggers.take_persons(&key).is_empty());
        assert!(triggers.take_persons(&other).is_empty());
        triggers.restore_persons(&key, vec!["9".into()]);
        assert_eq!(triggers.take_persons(&key), vec!["9"]);
        for id in 0..(MAX_NOTIFIED_PERSONS + 50) {
            triggers.notify_about(&key, Some(&id.to_string()));
        }
        assert_eq!(triggers.take_persons(&key).len(), MAX_NOTIFIED_PERSONS);
        triggers.notify_about(&key, Some("1"));
        triggers.forget(&key);
        assert!(!triggers.is_pending(&key));
        assert!(triggers.take_persons(&key).is_empty());
    }
}
