//! The optional webhook receiver: notifications from Personio (person and employment events) and
//! reteach (REST hooks) wake the matching resource's next incremental run at once.
//!
//! A notification is a hint, never data: the receiver checks who sent it (an unguessable path
//! token per resource, plus Personio's `Authorization` token and signature; derived from the
//! operator's own key when the operator registers the receiver, see [`KeyRing`]), that it is
//! small, well-formed and not seen before, and then only marks the resource as notified
//! ([`Triggers`]), keeping the id of the person a Personio notification names
//! ([`personio_subject`]). The run that follows reads the upstream as every polled run does, and
//! re-reads those persons by id where the change feed cannot see their change (Personio v2). A burst of notifications coalesces into
//! one run (kube-runtime queues at most one pending reconcile per object, and the due check keeps
//! a minimum gap between notified runs). Polling stays as the safety net.
//!
//! The receiver listens on its own port (`--webhook-addr`), so the Service and NetworkPolicy can
//! expose it without exposing `/metrics`.

mod check;
mod identity;
mod receivers;
mod registrations;
mod rejection;
mod server;
pub mod signature;
mod subscriptions;
mod triggers;

pub use check::{
    check_personio, check_reteach, personio_subject, tokens_match, PersonioDelivery, ReceiverKeys,
    ReplayGuard, RequestKeys, Verdict, MAX_BODY_BYTES, MAX_EVENT_AGE,
};
pub use identity::{
    normalize_url, scrub, url_is_under, DerivedSecrets, KeyRing, KeyTooShort, OperatorKey,
    PublicUrl, PublicUrlError, MIN_KEY_BYTES,
};
pub use receivers::{KeysFrom, Receivers, REFRESH_AFTER};
pub use registrations::{Registrations, FIRST_BACKOFF, MAX_BACKOFF};
pub use rejection::Rejection;
pub use server::{router, serve, serve_on, ReceiverState};
pub use signature::SignatureScheme;
pub use subscriptions::{
    plan_registrations, Listed, Registration, SubscriptionPlan, PERSONIO_EVENTS, RETEACH_EVENTS,
};
pub use triggers::{Notification, Triggers, MAX_NOTIFIED_PERSONS};

use std::time::Duration;

/// The upstream a notification comes from; it decides which kind it wakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Personio v2 webhooks → EmployeeSync.
    Personio,
    /// reteach REST hooks → CertificateSync.
    Reteach,
}

impl Source {
    /// Path segment and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Personio => "personio",
            Source::Reteach => "reteach",
        }
    }
}

/// A resource a notification may wake.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceKey {
    /// Who notifies it.
    pub source: Source,
    /// Namespace of the resource.
    pub namespace: String,
    /// Name of the resource.
    pub name: String,
}

impl ResourceKey {
    /// The key of a resource notified by `source`.
    pub fn new(source: Source, namespace: &str, name: &str) -> Self {
        Self {
            source,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// The path below the receiver's root: `<source>/<namespace>/<name>/<token>`.
    pub fn path(&self, token: &str) -> String {
        format!(
            "{}/{}/{}/{}",
            self.source.as_str(),
            self.namespace,
            self.name,
            token
        )
    }

    /// The full target URL under the public base `url`.
    pub fn target(&self, url: &str, token: &str) -> String {
        format!("{}/{}", url.trim_end_matches('/'), self.path(token))
    }
}

/// Everything the receiver and the controllers share about webhooks.
pub struct Webhooks {
    /// Which resources were notified, and the wake-up channels into the controllers.
    pub triggers: Triggers,
    /// The keys each resource's receiver accepts (derived from the operator's key, or loaded
    /// from the resource's Secret for manual registration).
    pub receivers: Receivers,
    /// Bodies seen recently, to refuse replays.
    pub replays: ReplayGuard,
    /// When each resource's upstream registration is checked next.
    pub registrations: Registrations,
    /// Shortest time between the starts of two runs of one resource caused by notifications.
    pub min_gap: Duration,
    /// How Personio signs its deliveries.
    pub signatures: SignatureScheme,
}

/// Default of `--webhook-min-gap`: a bulk edit in Personio (hundreds of events in a minute) costs
/// a handful of incremental runs, not hundreds.
pub const DEFAULT_MIN_GAP: Duration = Duration::from_secs(10);

impl Default for Webhooks {
    fn default() -> Self {
        Self::new(DEFAULT_MIN_GAP)
    }
}

impl Webhooks {
    /// Empty state with `min_gap` between notified runs.
    pub fn new(min_gap: Duration) -> Self {
        Self {
            triggers: Triggers::default(),
            receivers: Receivers::default(),
            replays: ReplayGuard::default(),
            registrations: Registrations::default(),
            min_gap,
            signatures: SignatureScheme::default(),
        }
    }

    /// The same, checking Personio's signatures with `signatures`.
    pub fn with_signatures(mut self, signatures: SignatureScheme) -> Self {
        self.signatures = signatures;
        self
    }

    /// What the due check of `key` needs to know about notifications.
    pub fn notification(&self, key: ResourceKey) -> Notification<'_> {
        Notification {
            triggers: &self.triggers,
            key,
            min_gap: self.min_gap,
        }
    }
}
