//! Which reteach REST hook subscriptions (`/subscription`, `{target, event}`) a CertificateSync
//! needs, compared with what reteach lists: pure, so the repair logic is tested without HTTP.

/// The reteach events that mean "a certificate may be ready": a course was completed, or its
/// certificate PDF was generated (lms README §1.8).
pub const RETEACH_EVENTS: [&str; 2] = ["participation.completed", "certificate.processed"];

/// One subscription as reteach lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReteachSubscription {
    /// reteach's id.
    pub id: String,
    /// Where reteach posts.
    pub target: String,
    /// The event.
    pub event: String,
}

/// What to change in reteach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscriptionPlan {
    /// Events to subscribe `target` to.
    pub create: Vec<&'static str>,
    /// Ids of our subscriptions that must go (an old token, a duplicate, an event we no longer
    /// want, or all of them when the resource is deleted).
    pub delete: Vec<String>,
}

/// Compares `existing` with the wanted state: `target` subscribed to each of [`RETEACH_EVENTS`]
/// exactly once (`None`: nothing). Only subscriptions whose target starts with `ours` (the
/// resource's own `<url>/reteach/<namespace>/<name>/`) are ever deleted; other integrations'
/// subscriptions are left alone.
pub fn plan_subscriptions(
    existing: &[ReteachSubscription],
    ours: &str,
    target: Option<&str>,
) -> SubscriptionPlan {
    let mut plan = SubscriptionPlan::default();
    let mut kept: Vec<&str> = Vec::new();
    for subscription in existing.iter().filter(|s| s.target.starts_with(ours)) {
        let wanted = target == Some(subscription.target.as_str())
            && RETEACH_EVENTS.contains(&subscription.event.as_str())
            && !kept.contains(&subscription.event.as_str());
        if wanted {
            kept.push(subscription.event.as_str());
        } else {
            plan.delete.push(subscription.id.clone());
        }
    }
    if target.is_some() {
        plan.create = RETEACH_EVENTS
            .into_iter()
            .filter(|event| !kept.contains(event))
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
        let plan = plan_subscriptions(&[], OURS, Some(&target));
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
        let plan = plan_subscriptions(&existing, OURS, Some(&target));
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
        let plan = plan_subscriptions(&existing, OURS, Some(&target));
        assert!(plan.create.is_empty());
        assert_eq!(plan.delete, vec!["1", "3", "4"]);
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
        let plan = plan_subscriptions(&existing, OURS, None);
        assert!(plan.create.is_empty());
        assert_eq!(plan.delete, vec!["1"]);
    }
}
