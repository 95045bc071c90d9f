//! Which registrations a resource needs upstream — reteach REST hook subscriptions
//! (`/subscription`, `{target, event}`) for a CertificateSync, one Personio webhook for an
//! EmployeeSync — compared with what the upstream lists: pure, so the repair logic is tested
//! without HTTP. URLs are compared by meaning ([`normalize_url`]): an upstream that stores
//! `HOOKS.example.com:443/…` for our `hooks.example.com/…` still lists our registration, not a
//! stranger's.

use super::identity::{normalize_url, url_is_under};
use crate::personio::PersonioWebhook;
use crate::reteach::ReteachSubscription;

fn same_url(a: &str, b: Option<&str>) -> bool {
    b.is_some_and(|b| normalize_url(a) == normalize_url(b))
}

/// The reteach events that mean "a certificate may be ready": a course was completed, or its
/// certificate PDF was generated (lms README §1.8).
pub const RETEACH_EVENTS: [&str; 2] = ["participation.completed", "certificate.processed"];

/// The Personio events that mean "an employee may have changed" (the person and employment
/// events of Personio's event catalog). `employment.started` and `employment.terminated` fire on
/// the dates themselves, so a lock or unlock happens on the day, not at the next full run.
pub const PERSONIO_EVENTS: [&str; 8] = [
    "person.created",
    "person.updated",
    "person.deleted",
    "employment.created",
    "employment.updated",
    "employment.deleted",
    "employment.started",
    "employment.terminated",
];

/// What to change upstream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscriptionPlan {
    /// Events to register `target` for (reteach: one subscription each; Personio: one webhook
    /// with all of them).
    pub create: Vec<&'static str>,
    /// Ids of our registrations that must go (an old token, a duplicate, an event we no longer
    /// want, or all of them when the resource is deleted).
    pub delete: Vec<String>,
}

/// A registration as an upstream lists it: a reteach subscription (one event each) or a
/// Personio webhook (all events in one).
pub trait Registration {
    /// The events a resource needs registered.
    const EVENTS: &'static [&'static str];
    /// What [`plan_registrations`] looks at.
    fn listed(&self) -> Listed<'_>;
}

/// A registration as [`plan_registrations`] sees it.
pub struct Listed<'a> {
    id: &'a str,
    url: &'a str,
    /// The wanted events it delivers, all or nothing; `None`: it lacks some (or has none).
    delivers: Option<&'static [&'static str]>,
}

impl Registration for ReteachSubscription {
    const EVENTS: &'static [&'static str] = &RETEACH_EVENTS;
    fn listed(&self) -> Listed<'_> {
        let wanted = Self::EVENTS.iter().find(|event| **event == self.event);
        Listed {
            id: &self.id,
            url: &self.target,
            delivers: wanted.map(std::slice::from_ref),
        }
    }
}

impl Registration for PersonioWebhook {
    const EVENTS: &'static [&'static str] = &PERSONIO_EVENTS;
    /// A webhook missing an event (registered by an older version) delivers none: it is
    /// replaced by a complete one. A listing that does not name the events is taken as complete.
    fn listed(&self) -> Listed<'_> {
        let complete = self.enabled_events.as_ref().is_none_or(|events| {
            Self::EVENTS
                .iter()
                .all(|wanted| events.iter().any(|event| event == wanted))
        });
        Listed {
            id: &self.id,
            url: &self.url,
            delivers: complete.then_some(Self::EVENTS),
        }
    }
}

/// Compares `existing` with the wanted state: `target` registered for each of `R::EVENTS`
/// exactly once (`None`: nothing). Of ours (URL under `ours`, the resource's own
/// `<url>/<source>/<namespace>/<name>/`), the first at `target` that delivers events not yet
/// delivered is kept; every other one (another URL such as an old path token, a duplicate, an
/// unwanted or incomplete one) is deleted, and the events no kept one delivers are created.
/// Other integrations' registrations are left alone.
pub fn plan_registrations<R: Registration>(
    existing: &[R],
    ours: &str,
    target: Option<&str>,
) -> SubscriptionPlan {
    let mut plan = SubscriptionPlan::default();
    let mut delivered: Vec<&str> = Vec::new();
    let listed = existing.iter().map(Registration::listed);
    for registration in listed.filter(|r| url_is_under(r.url, ours)) {
        let keep = registration.delivers.filter(|events| {
            same_url(registration.url, target)
                && !events.iter().any(|event| delivered.contains(event))
        });
        match keep {
            Some(events) => delivered.extend(events),
            None => plan.delete.push(registration.id.to_string()),
        }
    }
    if target.is_some() {
        plan.create = R::EVENTS
            .iter()
            .filter(|event| !delivered.contains(event))
            .copied()
            .collect();
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "https://hooks.example.com/reteach/hr/certs/";

    fn sub(id: &str, target: &str, event: &str) -> ReteachSubscription {
        ReteachSubscription {
            id: id.into(),
            target: target.into(),
            event: event.into(),
        }
    }

    #[test]
    fn a_fresh_academy_gets_both_events() {
        let target = format!("{OURS}tok");
        let plan = plan_registrations::<ReteachSubscription>(&[], OURS, Some(&target));
        assert_eq!(plan.create, RETEACH_EVENTS.to_vec());
        assert!(plan.delete.is_empty());
    }

    #[test]
    fn a_vanished_subscription_is_repaired_and_nothing_else_changes() {
        let target = format!("{OURS}tok");
        let existing = [
            sub("1", &target, "participation.completed"),
            sub("2", "https://zapier.example/hook", "certificate.processed"),
        ];
        let plan = plan_registrations(&existing, OURS, Some(&target));
        assert_eq!(plan.create, vec!["certificate.processed"]);
        assert!(plan.delete.is_empty(), "other integrations' hooks stay");
    }

    #[test]
    fn old_tokens_duplicates_and_foreign_events_of_ours_go() {
        let target = format!("{OURS}new");
        let existing = [
            sub("1", &format!("{OURS}old"), "participation.completed"),
            sub("2", &target, "participation.completed"),
            sub("3", &target, "participation.completed"),
            sub("4", &target, "customer.created"),
            sub("5", &target, "certificate.processed"),
        ];
        let plan = plan_registrations(&existing, OURS, Some(&target));
        assert!(plan.create.is_empty());
        assert_eq!(plan.delete, vec!["1", "3", "4"]);
    }

    #[test]
    fn one_personio_webhook_per_target_and_old_tokens_go() {
        const PERSONIO: &str = "https://hooks.example.com/personio/hr/staff/";
        let hook = |id: &str, url: &str| PersonioWebhook {
            id: id.into(),
            url: url.into(),
            enabled_events: None,
        };
        let target = format!("{PERSONIO}new");
        let fresh = plan_registrations::<PersonioWebhook>(&[], PERSONIO, Some(&target));
        assert_eq!(fresh.create, PERSONIO_EVENTS.to_vec());
        let existing = [
            hook("1", &format!("{PERSONIO}old")),
            hook("2", &target),
            hook("3", &target),
            hook("4", "https://other.example/hook"),
        ];
        let plan = plan_registrations(&existing, PERSONIO, Some(&target));
        assert!(plan.create.is_empty());
        assert_eq!(plan.delete, vec!["1", "3"]);
        let removal = plan_registrations(&existing, PERSONIO, None);
        assert_eq!(removal.delete, vec!["1", "2", "3"]);
    }

    #[test]
    fn registrations_are_recognised_by_meaning_not_spelling() {
        let target = format!("{OURS}tok");
        let existing = [
            sub(
                "1",
                "HTTPS://Hooks.Example.com:443/reteach/hr/certs/tok/",
                "participation.completed",
            ),
            sub(
                "2",
                "https://hooks.example.com/%72eteach/hr/certs/tok",
                "certificate.processed",
            ),
        ];
        let plan = plan_registrations(&existing, OURS, Some(&target));
        assert_eq!(plan, SubscriptionPlan::default(), "nothing to do");
        let hook = |id: &str, url: &str| PersonioWebhook {
            id: id.into(),
            url: url.into(),
            enabled_events: None,
        };
        const PERSONIO: &str = "https://hooks.example.com/personio/hr/staff/";
        let target = format!("{PERSONIO}tok");
        let existing = [
            hook("1", "https://HOOKS.example.com:443/personio/hr/staff/tok"),
            hook("2", "https://hooks.example.com/personio/hr/staff/tok/"),
        ];
        let plan = plan_registrations(&existing, PERSONIO, Some(&target));
        assert!(plan.create.is_empty(), "no new webhook every refresh");
        assert_eq!(plan.delete, vec!["2"], "at most one per resource");
    }

    #[test]
    fn a_webhook_registered_without_the_newer_events_is_replaced() {
        const PERSONIO: &str = "https://hooks.example.com/personio/hr/staff/";
        let target = format!("{PERSONIO}tok");
        let older: Vec<String> = PERSONIO_EVENTS[..6].iter().map(|e| e.to_string()).collect();
        let hook = |id: &str, events: Vec<String>| PersonioWebhook {
            id: id.into(),
            url: target.clone(),
            enabled_events: Some(events),
        };
        let plan = plan_registrations(&[hook("1", older)], PERSONIO, Some(&target));
        assert_eq!(
            plan.delete,
            vec!["1"],
            "the one missing employment.started goes"
        );
        assert_eq!(
            plan.create,
            PERSONIO_EVENTS.to_vec(),
            "and comes back complete"
        );
        let mut complete: Vec<String> = PERSONIO_EVENTS.iter().map(|e| e.to_string()).collect();
        complete.push("person.archived".into());
        let plan = plan_registrations(&[hook("2", complete)], PERSONIO, Some(&target));
        assert_eq!(
            plan,
            SubscriptionPlan::default(),
            "extra events are no reason"
        );
    }

    #[test]
    fn deletion_removes_all_of_ours_only() {
        let existing = [
            sub("1", &format!("{OURS}tok"), "participation.completed"),
            sub(
                "2",
                "https://hooks.example.com/reteach/hr/certs-2/tok",
                "certificate.processed",
            ),
        ];
        let plan = plan_registrations(&existing, OURS, None);
        assert!(plan.create.is_empty());
        assert_eq!(plan.delete, vec!["1"]);
    }
}
