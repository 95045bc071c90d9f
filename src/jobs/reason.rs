//! The one error vocabulary of the operator: every condition and Event reason as an enum, and one
//! classification per error type saying what has to happen next (as Flux separates stalling and
//! waiting errors): a human fixes the configuration (stalled), time heals it (retry), or another
//! resource becomes ready (waiting). The disposition decides the condition, the Event type, the
//! log level and the requeue; the reconciler never looks at an error's text.

use std::fmt;

use crate::personio::PersonioError;
use crate::reteach::ReteachError;

/// A condition or Event reason (one CamelCase word, as Kubernetes conventions ask).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Ready=True: the latest run succeeded.
    Succeeded,
    /// Ready=True while `spec.suspend` is true.
    Suspended,
    /// A run is in progress (`Reconciling`).
    Progressing,
    /// Ready=True: progress made, some certificates failed and are retried.
    PartiallySucceeded,
    /// Ready=True: everything owed is in Personio except PDFs reteach has not generated yet.
    WaitingForPdf,
    /// Ready=False: a run could not deliver any certificate.
    NoProgress,
    /// Ready=False: certificates were set aside and wait for a human.
    CertificatesSetAside,
    /// Ready=False: Personio's document list cannot be read, so nothing can be checked.
    DocumentListingUnavailable,
    /// Ready=False while the referenced EmployeeSync has not succeeded yet.
    WaitingForEmployeeSync,
    /// The referenced EmployeeSync does not exist.
    EmployeeSyncNotFound,
    /// A spec value is invalid.
    InvalidSpec,
    /// The base URL points at a host the operator's admin has not allowed.
    UpstreamNotAllowed,
    /// Plain http asked for, but the operator does not allow it.
    InsecureHttpNotAllowed,
    /// An upstream answered an API call with a redirect, which is never followed.
    UpstreamRedirected,
    /// A referenced Secret does not exist.
    SecretNotFound,
    /// A referenced Secret key is missing or not UTF-8.
    SecretKeyMissing,
    /// A referenced Secret lacks the opt-in label.
    SecretNotOptedIn,
    /// A Secret could not be read.
    SecretUnreadable,
    /// Personio refused the credentials.
    PersonioCredentialsRejected,
    /// reteach refused the credentials.
    ReteachCredentialsRejected,
    /// The Personio credential does not return required attributes.
    AttributesNotWhitelisted,
    /// The Personio credential lacks an access right.
    PersonioAccessDenied,
    /// The reteach credential lacks an access right.
    ReteachAccessDenied,
    /// Personio rejected a request the run depends on.
    PersonioRejected,
    /// reteach rejected a request the run depends on.
    ReteachRejected,
    /// Personio is unavailable (429, 5xx, timeouts) or answered unreadably.
    PersonioUnavailable,
    /// reteach is unavailable (429, 5xx, timeouts) or answered unreadably.
    ReteachUnavailable,
    /// The configured Personio document category does not exist.
    UnknownDocumentCategory,
    /// The mass-change guard held the run.
    MassChangeHeld,
    /// A status write (the certificate ledger, `Reconciling`) failed.
    StatusWriteFailed,
    /// Reading from the Kubernetes API failed.
    KubernetesApiError,
    /// The run was interrupted (shutdown, deadline).
    Interrupted,
    /// Another replica's run owns the resource's ledger now (never written by the fenced one).
    LedgerFenced,
    /// The reconciler panicked.
    InternalError,
    /// Event: employees were synced.
    Synced,
    /// Event: certificates were uploaded.
    Uploaded,
    /// Event: a required upstream capability is missing.
    PreflightMissing,
    /// Ready=True: the run succeeded, but mapped fields the academy refuses or does not keep are
    /// left out (`status.unsupportedFields`); also the Warning Event when one is first found.
    UnsupportedFields,
}

impl Reason {
    /// The reason as written into conditions and Events.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "Succeeded",
            Self::Suspended => "Suspended",
            Self::Progressing => "Progressing",
            Self::PartiallySucceeded => "PartiallySucceeded",
            Self::WaitingForPdf => "WaitingForPdf",
            Self::NoProgress => "NoProgress",
            Self::CertificatesSetAside => "CertificatesSetAside",
            Self::DocumentListingUnavailable => "DocumentListingUnavailable",
            Self::WaitingForEmployeeSync => "WaitingForEmployeeSync",
            Self::EmployeeSyncNotFound => "EmployeeSyncNotFound",
            Self::InvalidSpec => "InvalidSpec",
            Self::UpstreamNotAllowed => "UpstreamNotAllowed",
            Self::InsecureHttpNotAllowed => "InsecureHttpNotAllowed",
            Self::UpstreamRedirected => "UpstreamRedirected",
            Self::SecretNotFound => "SecretNotFound",
            Self::SecretKeyMissing => "SecretKeyMissing",
            Self::SecretNotOptedIn => "SecretNotOptedIn",
            Self::SecretUnreadable => "SecretUnreadable",
            Self::PersonioCredentialsRejected => "PersonioCredentialsRejected",
            Self::ReteachCredentialsRejected => "ReteachCredentialsRejected",
            Self::AttributesNotWhitelisted => "AttributesNotWhitelisted",
            Self::PersonioAccessDenied => "PersonioAccessDenied",
            Self::ReteachAccessDenied => "ReteachAccessDenied",
            Self::PersonioRejected => "PersonioRejected",
            Self::ReteachRejected => "ReteachRejected",
            Self::PersonioUnavailable => "PersonioUnavailable",
            Self::ReteachUnavailable => "ReteachUnavailable",
            Self::UnknownDocumentCategory => "UnknownDocumentCategory",
            Self::MassChangeHeld => "MassChangeHeld",
            Self::StatusWriteFailed => "StatusWriteFailed",
            Self::KubernetesApiError => "KubernetesApiError",
            Self::Interrupted => "Interrupted",
            Self::LedgerFenced => "LedgerFenced",
            Self::InternalError => "InternalError",
            Self::Synced => "Synced",
            Self::Uploaded => "Uploaded",
            Self::PreflightMissing => "PreflightMissing",
            Self::UnsupportedFields => "UnsupportedFields",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Reason {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Reason> for String {
    fn eq(&self, other: &Reason) -> bool {
        self.as_str() == other.as_str()
    }
}

/// What has to happen before a failed run can succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// A human must change the configuration: `Stalled=True`, Warning Event, retried slowly and
    /// whenever the resource or a Secret changes.
    Stalled,
    /// Time may heal it (outage, rate limit): `Ready=False`, Warning Event, exponential backoff.
    Retry,
    /// Another resource must become ready first: `Ready=False`, Normal Event, re-checked when it
    /// changes; not counted as a failed run.
    Waiting,
}

impl Disposition {
    /// Whether the Event is a Warning (otherwise Normal).
    pub fn is_warning(self) -> bool {
        !matches!(self, Self::Waiting)
    }

    /// The level the failure is logged at.
    pub fn log_level(self) -> tracing::Level {
        match self {
            Self::Stalled | Self::Retry => tracing::Level::WARN,
            Self::Waiting => tracing::Level::INFO,
        }
    }

    /// Whether the run counts as failed in the metrics.
    pub fn counts_as_failed_run(self) -> bool {
        !matches!(self, Self::Waiting)
    }
}

/// The classification of an error: its reason and what has to happen next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classification {
    /// Condition and Event reason.
    pub reason: Reason,
    /// Stalled, retry or waiting.
    pub disposition: Disposition,
}

impl Classification {
    /// A configuration error.
    pub const fn stalled(reason: Reason) -> Self {
        Self {
            reason,
            disposition: Disposition::Stalled,
        }
    }

    /// An error a retry may heal.
    pub const fn retry(reason: Reason) -> Self {
        Self {
            reason,
            disposition: Disposition::Retry,
        }
    }

    /// An unmet dependency.
    pub const fn waiting(reason: Reason) -> Self {
        Self {
            reason,
            disposition: Disposition::Waiting,
        }
    }

    /// An upstream error: retried when `transient`, else a configuration error.
    const fn upstream(reason: Reason, transient: bool) -> Self {
        if transient {
            Self::retry(reason)
        } else {
            Self::stalled(reason)
        }
    }
}

/// An error that knows its reason and disposition. Each error type has exactly one of these.
pub trait Classify {
    /// Reason and disposition of this error.
    fn classify(&self) -> Classification;
}

impl Classify for PersonioError {
    fn classify(&self) -> Classification {
        let reason = match self {
            Self::Unauthorized { .. } => Reason::PersonioCredentialsRejected,
            Self::AttributesNotWhitelisted(_) => Reason::AttributesNotWhitelisted,
            Self::Forbidden { .. } => Reason::PersonioAccessDenied,
            Self::Config(_) => Reason::InvalidSpec,
            Self::Redirected { .. } => Reason::UpstreamRedirected,
            Self::NotFound { .. } | Self::Rejected { .. } => Reason::PersonioRejected,
            Self::Unavailable { .. } | Self::Malformed { .. } => Reason::PersonioUnavailable,
        };
        Classification::upstream(reason, self.is_transient())
    }
}

impl Classify for ReteachError {
    fn classify(&self) -> Classification {
        let reason = match self {
            Self::Unauthorized { .. } => Reason::ReteachCredentialsRejected,
            Self::Forbidden { .. } => Reason::ReteachAccessDenied,
            Self::Config(_) => Reason::InvalidSpec,
            Self::Redirected { .. } => Reason::UpstreamRedirected,
            Self::NotFound { .. } | Self::Rejected { .. } => Reason::ReteachRejected,
            Self::Unavailable { .. } | Self::Malformed { .. } => Reason::ReteachUnavailable,
        };
        Classification::upstream(reason, self.is_transient())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobError;

    #[test]
    fn rejected_credentials_stall_and_an_outage_retries() {
        let rejected = PersonioError::Unauthorized {
            message: "invalid client".into(),
        };
        assert_eq!(
            rejected.classify(),
            Classification::stalled(Reason::PersonioCredentialsRejected)
        );
        let outage = ReteachError::Unavailable {
            message: "HTTP 503".into(),
        };
        assert_eq!(
            outage.classify(),
            Classification::retry(Reason::ReteachUnavailable)
        );
    }

    #[test]
    fn a_job_error_is_classified_by_its_upstream_error() {
        let error = JobError::Personio {
            action: "could not read employees from Personio",
            source: PersonioError::AttributesNotWhitelisted(vec!["office".into()]),
        };
        assert_eq!(
            error.classify(),
            Classification::stalled(Reason::AttributesNotWhitelisted)
        );
        assert_eq!(
            JobError::InvalidCategoryRef.classify(),
            Classification::stalled(Reason::InvalidSpec)
        );
    }

    #[test]
    fn only_waiting_is_a_normal_event_logged_at_info() {
        assert!(Disposition::Stalled.is_warning());
        assert!(Disposition::Retry.is_warning());
        assert!(!Disposition::Waiting.is_warning());
        assert_eq!(Disposition::Waiting.log_level(), tracing::Level::INFO);
        assert_eq!(Disposition::Retry.log_level(), tracing::Level::WARN);
        assert!(!Disposition::Waiting.counts_as_failed_run());
    }

    #[test]
    fn reasons_are_single_camel_case_words() {
        for reason in [
            Reason::WaitingForEmployeeSync,
            Reason::InvalidSpec,
            Reason::Synced,
        ] {
            let text = reason.as_str();
            assert!(text.chars().all(|c| c.is_ascii_alphanumeric()), "{text}");
            assert!(text.starts_with(|c: char| c.is_ascii_uppercase()), "{text}");
            assert_eq!(reason.to_string(), text);
        }
    }
}
