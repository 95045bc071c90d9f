//! Run-level failures of a job: the run stopped. Per-record problems are counted in the outcome
//! instead and never end up here.

use crate::personio::PersonioError;
use crate::reteach::ReteachError;
use crate::sync::mass_change::HeldPlan;

use super::certificate_input::CertificateJobOutcome;
use super::ledger_store::LedgerError;
use super::reason::{Classification, Classify, Disposition, Reason};

/// Why a run stopped. `Display` is the sentence shown to the user in the `Ready` condition: it
/// names the side that failed and what was being done.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A Personio call the whole run depends on failed (auth, listing, category lookup).
    #[error("{action}: {source}")]
    Personio {
        /// What the job was doing, e.g. `could not read employees from Personio`.
        action: &'static str,
        /// The client error.
        #[source]
        source: PersonioError,
    },
    /// A reteach call the whole run depends on failed.
    #[error("{action}: {source}")]
    Reteach {
        /// What the job was doing, e.g. `could not list users in reteach`.
        action: &'static str,
        /// The client error.
        #[source]
        source: ReteachError,
    },
    /// The configured Personio document category does not exist.
    #[error("the Personio document category {wanted} does not exist; {}", available_sentence(.available))]
    UnknownCategory {
        /// The category asked for (`"Name"` or `id 42`).
        wanted: String,
        /// The categories that do exist (`Name (id 42)`).
        available: Vec<String>,
    },
    /// `spec.documentCategory` sets neither or both of `id` and `name`.
    #[error("spec.documentCategory must set exactly one of id or name")]
    InvalidCategoryRef,
    /// The certificate ledger could not be persisted; nothing is uploaded without a recorded intent.
    #[error("could not record certificate progress, so nothing was uploaded: {0}")]
    Ledger(#[from] LedgerError),
    /// The mass-change guard held the run: nothing was written.
    #[error("{message}")]
    MassChangeHeld {
        /// Counts and plan id.
        plan: Box<HeldPlan>,
        /// The sentence for the condition (how to approve).
        message: String,
    },
    /// A certificate run stopped part-way. What it did before stopping is in `partial` (its ledger
    /// is the in-memory state; the store holds what was saved). Classified like `error`.
    #[error("{error}")]
    Interrupted {
        /// Why the run stopped.
        error: Box<JobError>,
        /// Counters, failures and upload count of the part that ran.
        partial: Box<CertificateJobOutcome>,
    },
}

fn available_sentence(available: &[String]) -> String {
    if available.is_empty() {
        "the credential sees no document categories (check its access rights in Personio)".into()
    } else {
        format!("existing categories: {}", available.join(", "))
    }
}

impl JobError {
    /// For `map_err`: a Personio call the run depends on failed while doing `action`.
    pub fn personio(action: &'static str) -> impl Fn(PersonioError) -> Self + Copy {
        move |source| Self::Personio { action, source }
    }

    /// For `map_err`: a reteach call the run depends on failed while doing `action`.
    pub fn reteach(action: &'static str) -> impl Fn(ReteachError) -> Self + Copy {
        move |source| Self::Reteach { action, source }
    }

    /// Needs a human to change configuration or credentials (→ `Stalled`, retried slowly); the
    /// same answer as [`Classify::classify`], which also gives the reason.
    pub fn is_config(&self) -> bool {
        self.classify().disposition == Disposition::Stalled
    }

    /// The error that stopped the run, looking through [`JobError::Interrupted`].
    pub fn root(&self) -> &JobError {
        match self {
            Self::Interrupted { error, .. } => error.root(),
            other => other,
        }
    }

    /// What an interrupted certificate run did before it stopped.
    pub fn partial_outcome(&self) -> Option<&CertificateJobOutcome> {
        match self {
            Self::Interrupted { partial, .. } => Some(partial),
            _ => None,
        }
    }

    /// May succeed when retried later without changes (→ exponential backoff).
    pub fn is_transient(&self) -> bool {
        !self.is_config()
    }
}

impl Classify for JobError {
    fn classify(&self) -> Classification {
        match self {
            Self::Personio { source, .. } => source.classify(),
            Self::Reteach { source, .. } => source.classify(),
            Self::UnknownCategory { .. } => {
                Classification::stalled(Reason::UnknownDocumentCategory)
            }
            Self::InvalidCategoryRef => Classification::stalled(Reason::InvalidSpec),
            Self::MassChangeHeld { .. } => Classification::stalled(Reason::MassChangeHeld),
            Self::Ledger(_) => Classification::retry(Reason::StatusWriteFailed),
            Self::Interrupted { error, .. } => error.classify(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_failing_side_and_what_to_fix() {
        let error = JobError::Personio {
            action: "could not read employees from Personio",
            source: PersonioError::Unauthorized {
                message: "invalid client".into(),
            },
        };
        assert_eq!(
            error.to_string(),
            "could not read employees from Personio: Personio rejected the credentials: invalid client"
        );
        assert!(error.is_config());
        assert!(!error.is_transient());
    }

    #[test]
    fn treats_unavailable_upstream_as_transient() {
        let error = JobError::Reteach {
            action: "could not list users in reteach",
            source: ReteachError::Unavailable {
                message: "HTTP 503".into(),
            },
        };
        assert!(error.is_transient());
        assert!(!error.is_config());
    }

    #[test]
    fn lists_existing_categories_for_an_unknown_one() {
        let error = JobError::UnknownCategory {
            wanted: "\"Certificates\"".into(),
            available: vec!["Contracts (id 1)".into(), "Learning (id 2)".into()],
        };
        assert_eq!(
            error.to_string(),
            "the Personio document category \"Certificates\" does not exist; existing categories: Contracts (id 1), Learning (id 2)"
        );
        assert!(error.is_config());
    }
}
