//! Bounded list of per-record failures for status: the count stays complete, the list stays small.

use crate::api::{RecordFailure, MAX_STATUS_FAILURES};

/// Collects [`RecordFailure`]s up to [`MAX_STATUS_FAILURES`]; later ones are only counted.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    kept: Vec<RecordFailure>,
    total: usize,
}

impl FailureLog {
    /// Records one failure. `reason` must be free of personal data.
    pub(crate) fn push(
        &mut self,
        personio_id: Option<String>,
        certificate_id: Option<String>,
        reason: impl Into<String>,
    ) {
        let reason = reason.into();
        tracing::debug!(
            personio_id = personio_id.as_deref(),
            certificate_id = certificate_id.as_deref(),
            reason = reason.as_str(),
            "record not synced"
        );
        self.total += 1;
        if self.kept.len() < MAX_STATUS_FAILURES {
            self.kept.push(RecordFailure {
                personio_id,
                certificate_id,
                reason,
            });
        }
    }

    /// All failures recorded, including those not kept.
    #[cfg(test)]
    pub(crate) fn total(&self) -> usize {
        self.total
    }

    /// The kept failures.
    pub(crate) fn into_vec(self) -> Vec<RecordFailure> {
        self.kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_the_status_bound_but_counts_all() {
        let mut log = FailureLog::default();
        for i in 0..(MAX_STATUS_FAILURES + 7) {
            log.push(Some(i.to_string()), None, "no e-mail address");
        }
        assert_eq!(log.total(), MAX_STATUS_FAILURES + 7);
        assert_eq!(log.into_vec().len(), MAX_STATUS_FAILURES);
    }
}
