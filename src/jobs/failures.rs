//! Bounded list of per-record failures for status: the count stays complete, the list stays small.

use crate::api::{RecordFailure, SyncStatusCommon, MAX_STATUS_FAILURES};

/// What a run did that names the records it skipped or failed: a run's outcome, or what a failed
/// run did before it stopped. The generic reconcile path records them in the common status.
pub trait FailedRecords {
    /// The skipped and failed records, ids only.
    fn failed_records(&self) -> &[RecordFailure];
}

impl FailedRecords for () {
    fn failed_records(&self) -> &[RecordFailure] {
        &[]
    }
}

/// Writes the records `run` skipped or failed into `status.failures`: the first
/// [`MAX_STATUS_FAILURES`] (the counters in `lastRun` are complete).
pub fn record_failures(status: &mut SyncStatusCommon, run: &impl FailedRecords) {
    status.failures = run
        .failed_records()
        .iter()
        .take(MAX_STATUS_FAILURES)
        .cloned()
        .collect();
}

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

    struct Run(Vec<RecordFailure>);

    impl FailedRecords for Run {
        fn failed_records(&self) -> &[RecordFailure] {
            &self.0
        }
    }

    #[test]
    fn the_common_status_keeps_the_first_failures_and_forgets_the_previous_run() {
        let failure = |i: usize| RecordFailure {
            personio_id: Some(i.to_string()),
            certificate_id: None,
            reason: "no e-mail address".into(),
        };
        let mut status = SyncStatusCommon::default();
        record_failures(
            &mut status,
            &Run((0..MAX_STATUS_FAILURES + 3).map(failure).collect()),
        );
        assert_eq!(status.failures.len(), MAX_STATUS_FAILURES);
        assert_eq!(status.failures[0], failure(0));
        record_failures(&mut status, &());
        assert!(status.failures.is_empty());
    }
}
