//! Why a run did not succeed: the reason and disposition of the error that stopped it (see
//! [`crate::jobs::reason`], the one vocabulary) and the user-facing sentence for the condition.

use super::{Classification, Classify, Disposition, Reason};

/// A failed or blocked run. `message` is the user-facing sentence for the condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFailure {
    /// Condition reason.
    pub reason: Reason,
    /// Stalled, retry or waiting: decides condition, Event type, log level and requeue.
    pub disposition: Disposition,
    /// Condition message.
    pub message: String,
}

impl RunFailure {
    /// A failure classified as `classification`.
    pub fn new(classification: Classification, message: impl Into<String>) -> Self {
        Self {
            reason: classification.reason,
            disposition: classification.disposition,
            message: message.into(),
        }
    }

    /// A configuration error: a human must act.
    pub fn stalled(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(Classification::stalled(reason), message)
    }

    /// A failure a retry may heal.
    pub fn transient(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(Classification::retry(reason), message)
    }

    /// An unmet dependency.
    pub fn waiting(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(Classification::waiting(reason), message)
    }

    /// The failure of `error`, classified by its one classification.
    pub fn of(error: &(impl Classify + std::fmt::Display)) -> Self {
        Self::new(error.classify(), error.to_string())
    }

    /// Says which Secret keys to fix when an upstream rejected the credentials (the upstream's
    /// own message cannot know where they came from). Other failures pass unchanged.
    pub fn naming_credentials(self, personio_keys: &str, reteach_keys: &str) -> Self {
        if self.disposition != Disposition::Stalled {
            return self;
        }
        let keys = match self.reason {
            Reason::PersonioCredentialsRejected => personio_keys,
            Reason::ReteachCredentialsRejected => reteach_keys,
            _ => return self,
        };
        Self {
            message: format!("{}; check {keys}", self.message),
            ..self
        }
    }

    /// Condition reason.
    pub fn reason(&self) -> &'static str {
        self.reason.as_str()
    }

    /// Condition message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Every error with its one classification becomes the failure it stands for (`?` in a run).
impl<E: Classify + std::fmt::Display> From<E> for RunFailure {
    fn from(error: E) -> Self {
        Self::of(&error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobError;

    #[test]
    fn rejected_credentials_name_the_secret_keys_to_check() {
        let failure = RunFailure::stalled(
            Reason::ReteachCredentialsRejected,
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
        let failure = RunFailure::stalled(Reason::UnknownDocumentCategory, "no such category")
            .naming_credentials("personio keys", "reteach keys");
        assert_eq!(failure.message(), "no such category");
        let transient = RunFailure::transient(Reason::PersonioCredentialsRejected, "503")
            .naming_credentials("personio keys", "reteach keys");
        assert_eq!(transient.message(), "503");
    }

    #[test]
    fn a_job_error_keeps_its_sentence_and_its_classification() {
        let failure = RunFailure::from(JobError::InvalidCategoryRef);
        assert_eq!(failure.reason, Reason::InvalidSpec);
        assert_eq!(failure.disposition, Disposition::Stalled);
        assert_eq!(
            failure.message,
            "spec.documentCategory must set exactly one of id or name"
        );
    }
}
