//! Why a run did not succeed, typed by what has to happen next (as Flux does): a human fixes the
//! configuration (Stalled), a dependency becomes ready (Waiting), or time heals it (Transient).

use super::credentials::CredentialsError;
use crate::personio::PersonioError;
use crate::reteach::ReteachError;

/// A failed or blocked run. `message` is the user-facing sentence for the condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunFailure {
    /// Needs a human: `Stalled=True`, retried slowly and whenever the resource or a Secret changes.
    Stalled { reason: String, message: String },
    /// Waits for another resource: `Ready=False`, re-checked when it changes.
    Waiting { reason: String, message: String },
    /// Upstream outage or similar: `Ready=False`, retried with exponential backoff.
    Transient { reason: String, message: String },
}

impl RunFailure {
    pub fn stalled(reason: &str, message: impl Into<String>) -> Self {
        Self::Stalled {
            reason: reason.into(),
            message: message.into(),
        }
    }

    pub fn transient(reason: &str, message: impl Into<String>) -> Self {
        Self::Transient {
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// Condition reason.
    pub fn reason(&self) -> &str {
        match self {
            Self::Stalled { reason, .. }
            | Self::Waiting { reason, .. }
            | Self::Transient { reason, .. } => reason,
        }
    }

    /// Condition message.
    pub fn message(&self) -> &str {
        match self {
            Self::Stalled { message, .. }
            | Self::Waiting { message, .. }
            | Self::Transient { message, .. } => message,
        }
    }
}

impl From<CredentialsError> for RunFailure {
    fn from(error: CredentialsError) -> Self {
        if error.is_config() {
            Self::stalled(error.reason(), error.to_string())
        } else {
            Self::transient(error.reason(), error.to_string())
        }
    }
}

impl From<PersonioError> for RunFailure {
    fn from(error: PersonioError) -> Self {
        let reason = match &error {
            PersonioError::Unauthorized { .. } => "PersonioCredentialsRejected",
            PersonioError::AttributesNotWhitelisted(_) => "AttributesNotWhitelisted",
            PersonioError::Forbidden { .. } => "PersonioAccessDenied",
            PersonioError::Config(_) => "InvalidSpec",
            PersonioError::NotFound { .. } | PersonioError::Rejected { .. } => "PersonioRejected",
            PersonioError::Unavailable { .. } | PersonioError::Malformed { .. } => {
                "PersonioUnavailable"
            }
        };
        if error.is_transient() {
            Self::transient(reason, error.to_string())
        } else {
            Self::stalled(reason, error.to_string())
        }
    }
}

impl From<ReteachError> for RunFailure {
    fn from(error: ReteachError) -> Self {
        let reason = match &error {
            ReteachError::Unauthorized { .. } => "ReteachCredentialsRejected",
            ReteachError::Forbidden { .. } => "ReteachAccessDenied",
            ReteachError::Config(_) => "InvalidSpec",
            ReteachError::NotFound { .. } | ReteachError::Rejected { .. } => "ReteachRejected",
            ReteachError::Unavailable { .. } | ReteachError::Malformed { .. } => {
                "ReteachUnavailable"
            }
        };
        if error.is_transient() {
            Self::transient(reason, error.to_string())
        } else {
            Self::stalled(reason, error.to_string())
        }
    }
}
