//! Why a run did not succeed, typed by what has to happen next (as Flux does): a human fixes the
//! configuration (Stalled), a dependency becomes ready (Waiting), or time heals it (Transient).

use super::credentials::CredentialsError;
use crate::jobs::JobError;
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
    /// Another replica's run owns the resource's ledger now: this replica writes nothing more.
    Fenced,
}

/// Condition reason of [`RunFailure::Fenced`] (never written by the fenced replica itself).
const FENCED: &str = "LedgerFenced";
const FENCED_MESSAGE: &str = "another replica has taken over this resource";

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

    /// Says which Secret keys to fix when an upstream rejected the credentials (the upstream's
    /// own message cannot know where they came from). Other failures pass unchanged.
    pub fn naming_credentials(self, personio_keys: &str, reteach_keys: &str) -> Self {
        match self {
            Self::Stalled { reason, message } => {
                let keys = match reason.as_str() {
                    PERSONIO_CREDENTIALS_REJECTED => Some(personio_keys),
                    RETEACH_CREDENTIALS_REJECTED => Some(reteach_keys),
                    _ => None,
                };
                let message = match keys {
                    Some(keys) => format!("{message}; check {keys}"),
                    None => message,
                };
                Self::Stalled { reason, message }
            }
            other => other,
        }
    }

    /// Condition reason.
    pub fn reason(&self) -> &str {
        match self {
            Self::Stalled { reason, .. }
            | Self::Waiting { reason, .. }
            | Self::Transient { reason, .. } => reason,
            Self::Fenced => FENCED,
        }
    }

    /// Condition message.
    pub fn message(&self) -> &str {
        match self {
            Self::Stalled { message, .. }
            | Self::Waiting { message, .. }
            | Self::Transient { message, .. } => message,
            Self::Fenced => FENCED_MESSAGE,
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

/// Condition reason when Personio refuses the credentials.
pub const PERSONIO_CREDENTIALS_REJECTED: &str = "PersonioCredentialsRejected";
/// Condition reason when reteach refuses the credentials.
pub const RETEACH_CREDENTIALS_REJECTED: &str = "ReteachCredentialsRejected";

/// Condition reason of a Personio error.
fn personio_reason(error: &PersonioError) -> &'static str {
    match error {
        PersonioError::Unauthorized { .. } => PERSONIO_CREDENTIALS_REJECTED,
        PersonioError::AttributesNotWhitelisted(_) => "AttributesNotWhitelisted",
        PersonioError::Forbidden { .. } => "PersonioAccessDenied",
        PersonioError::Config(_) => "InvalidSpec",
        PersonioError::NotFound { .. } | PersonioError::Rejected { .. } => "PersonioRejected",
        PersonioError::Unavailable { .. } | PersonioError::Malformed { .. } => {
            "PersonioUnavailable"
        }
    }
}

impl From<PersonioError> for RunFailure {
    fn from(error: PersonioError) -> Self {
        let reason = personio_reason(&error);
        if error.is_transient() {
            Self::transient(reason, error.to_string())
        } else {
            Self::stalled(reason, error.to_string())
        }
    }
}

/// Condition reason of a reteach error.
fn reteach_reason(error: &ReteachError) -> &'static str {
    match error {
        ReteachError::Unauthorized { .. } => RETEACH_CREDENTIALS_REJECTED,
        ReteachError::Forbidden { .. } => "ReteachAccessDenied",
        ReteachError::Config(_) => "InvalidSpec",
        ReteachError::NotFound { .. } | ReteachError::Rejected { .. } => "ReteachRejected",
        ReteachError::Unavailable { .. } | ReteachError::Malformed { .. } => "ReteachUnavailable",
    }
}

impl From<ReteachError> for RunFailure {
    fn from(error: ReteachError) -> Self {
        let reason = reteach_reason(&error);
        if error.is_transient() {
            Self::transient(reason, error.to_string())
        } else {
            Self::stalled(reason, error.to_string())
        }
    }
}

impl From<JobError> for RunFailure {
    fn from(error: JobError) -> Self {
        let message = error.to_string();
        let (reason, transient) = match error.root() {
            JobError::Personio { source, .. } => {
                (personio_reason(source).to_string(), source.is_transient())
            }
            JobError::Reteach { source, .. } => {
                (reteach_reason(source).to_string(), source.is_transient())
            }
            JobError::UnknownCategory { .. } => ("UnknownDocumentCategory".into(), false),
            JobError::InvalidCategoryRef => ("InvalidSpec".into(), false),
            JobError::Ledger(_) => ("StatusWriteFailed".into(), true),
            JobError::Interrupted { .. } => ("Interrupted".into(), true),
        };
        if transient {
            Self::Transient { reason, message }
        } else {
            Self::Stalled { reason, message }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_credentials_name_the_secret_keys_to_check() {
        let failure = RunFailure::stalled(
            RETEACH_CREDENTIALS_REJECTED,
            "reteach rejected the credentials: 401",
        )
        .naming_credentials(
            "personio keys",
            "the keys clientId of Secret ns/reteach-api",
        );
        assert_eq!(
            failure.message(),
            "reteach rejected the credentials: 401; check the keys clientId of Secret ns/reteach-api"
        );
    }

    #[test]
    fn other_failures_keep_their_message() {
        let failure = RunFailure::stalled("UnknownDocumentCategory", "no such category")
            .naming_credentials("personio keys", "reteach keys");
        assert_eq!(failure.message(), "no such category");
        let transient = RunFailure::transient(PERSONIO_CREDENTIALS_REJECTED, "503")
            .naming_credentials("personio keys", "reteach keys");
        assert_eq!(transient.message(), "503");
    }
}
