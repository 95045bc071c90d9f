//! Condition bookkeeping with the Flux/kstatus contract: `Ready` always present, `Reconciling` and
//! `Stalled` only while true, `lastTransitionTime` kept while the status does not change.

use chrono::{DateTime, Utc};

use crate::api::Condition;
use crate::jobs::Reason;

/// The one-line state of a resource after a reconcile, from which all conditions follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// The latest run succeeded.
    Ready { reason: Reason, message: String },
    /// A run is in progress.
    Reconciling { message: String },
    /// Needs a human: the message says what to fix.
    Stalled { reason: Reason, message: String },
    /// Waits for something outside (a dependency, an upstream outage); retried by itself.
    NotReady { reason: Reason, message: String },
}

impl Health {
    /// The condition message.
    pub fn message(&self) -> &str {
        match self {
            Health::Ready { message, .. }
            | Health::Reconciling { message }
            | Health::Stalled { message, .. }
            | Health::NotReady { message, .. } => message,
        }
    }
}

/// Condition types.
pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
/// Reason of `Ready=True` while `spec.suspend` is true.
pub const SUSPENDED: &str = crate::jobs::Reason::Suspended.as_str();

/// The conditions for `health`, keeping `lastTransitionTime` of conditions whose status is
/// unchanged compared with `previous`.
pub fn conditions_for(
    health: &Health,
    previous: &[Condition],
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Vec<Condition> {
    let make = |type_: &str, status: &str, reason: Reason, message: &str| {
        let last_transition_time = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time)
            .unwrap_or(now);
        Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
            last_transition_time,
            observed_generation: generation,
        }
    };
    match health {
        Health::Ready { reason, message } => vec![make(READY, "True", *reason, message)],
        Health::Reconciling { message } => {
            let ready = previous
                .iter()
                .find(|c| c.type_ == READY)
                .cloned()
                .unwrap_or_else(|| make(READY, "Unknown", Reason::Progressing, message));
            vec![
                ready,
                make(RECONCILING, "True", Reason::Progressing, message),
            ]
        }
        Health::Stalled { reason, message } => vec![
            make(READY, "False", *reason, message),
            make(STALLED, "True", *reason, message),
        ],
        Health::NotReady { reason, message } => vec![make(READY, "False", *reason, message)],
    }
}

/// The `Ready` condition, if any.
pub fn ready(conditions: &[Condition]) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == READY)
}

/// Whether the resource is blocked on a human (Stalled) or a dependency (`waiting_reason`).
pub fn is_blocked(conditions: &[Condition], waiting_reason: Option<Reason>) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == STALLED && c.status == "True")
        || ready(conditions)
            .is_some_and(|c| c.status == "False" && waiting_reason.is_some_and(|w| c.reason == w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 10, minute, 0)
            .single()
            .unwrap()
    }

    fn ready_health() -> Health {
        Health::Ready {
            reason: Reason::Succeeded,
            message: "ok".into(),
        }
    }

    fn stalled(reason: Reason, message: &str) -> Health {
        Health::Stalled {
            reason,
            message: message.into(),
        }
    }

    fn not_ready(reason: Reason, message: &str) -> Health {
        Health::NotReady {
            reason,
            message: message.into(),
        }
    }

    /// The first conditions of generation 1 with `health`.
    fn first_conditions(health: &Health) -> Vec<Condition> {
        conditions_for(health, &[], Some(1), t(0))
    }

    #[test]
    fn ready_is_the_only_condition_when_healthy() {
        let conditions = first_conditions(&ready_health());
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].type_, READY);
        assert_eq!(conditions[0].status, "True");
    }

    #[test]
    fn stalled_sets_ready_false_and_stalled_true() {
        let conditions = first_conditions(&stalled(Reason::SecretNotFound, "Secret x not found"));
        assert_eq!(conditions.len(), 2);
        assert!(is_blocked(&conditions, None));
    }

    #[test]
    fn keeps_transition_time_while_status_unchanged() {
        let first = first_conditions(&ready_health());
        let second = conditions_for(&ready_health(), &first, Some(1), t(5));
        assert_eq!(second[0].last_transition_time, t(0));
        let failed = not_ready(Reason::PersonioUnavailable, "503");
        let third = conditions_for(&failed, &second, Some(1), t(9));
        assert_eq!(third[0].last_transition_time, t(9));
    }

    #[test]
    fn waiting_reason_counts_as_blocked() {
        let waiting = not_ready(Reason::WaitingForEmployeeSync, "waiting");
        let conditions = first_conditions(&waiting);
        assert!(is_blocked(
            &conditions,
            Some(Reason::WaitingForEmployeeSync)
        ));
        assert!(!is_blocked(&conditions, None));
    }
}
