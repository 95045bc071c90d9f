//! Taking over a CertificateSync from another process without uploading a certificate twice.
//!
//! When a resource moves to another shard (or a new leader or a restarted pod picks it up), the
//! process that ran it may still be in the middle of a run: kube-runtime does not stop a reconcile
//! whose object left the watch. That run's ledger checkpoints are conditional on its writer token,
//! so once the new owner claims the ledger the old run stops at its next checkpoint — but an
//! upload it had already started (its `inFlight` entry) still lands. Checking Personio for that
//! certificate at once would miss it, and upload it again.
//!
//! So a run does not claim a ledger whose `inFlight` upload another run started until that entry
//! has stood still for the grace period (longer than one download and upload take): either the
//! other run finished the upload and moved on (the ledger changes, and the wait starts over), or
//! it is gone (crashed, fenced, stopped), and the upload has landed or failed by then, so the
//! marker check is conclusive. After the claim the ledger is compared with the one the run was
//! built on; a checkpoint that slipped in between ends the run before it uploads anything.
//!
//! Whose upload it is comes from the entry itself (`inFlight.uploader`, the writer token of the
//! run that saved the intent), never from `ledger.writer`: a claim that failed halfway leaves this
//! process's token next to another process's upload, and a rule that read the writer took that
//! upload for its own, found no document yet and uploaded again (the counterexample the model in
//! `upload_model` found, RELIABILITY.md "Certificates exactly once, model-checked"). Every run has
//! a token of its own, so an upload left by an earlier run of this same process is waited out
//! too: its document may not be listed yet.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::CertificateLedgerStatus;

/// Default of `--handover-grace`: one PDF download and one upload of 30 s each, with room.
pub const DEFAULT_HANDOVER_GRACE: Duration = Duration::from_secs(120);

/// The writer-token prefix of this process (`host/pid/`); tokens carry a random suffix per run.
pub fn process_writer_prefix() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "operator".into());
    let host: String = host.chars().take(200).collect();
    format!("{host}/{}/", std::process::id())
}

/// What the handover rule says about a ledger a run is about to claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Takeover {
    /// Nothing is in flight, or the upload is this run's own: claim now.
    Now,
    /// Another run's upload is in flight: claim once it has stood still for the grace period.
    /// The key names the upload (its uploader and certificate); when it changes, the wait starts
    /// over.
    WaitOut(String),
}

/// The handover rule (pure): may the run with writer token `run_token` claim `ledger` now? Only
/// the run that started an upload may treat it as its own (`inFlight.uploader`). A ledger of an
/// older version has no uploader: the writer stands in for the key, so a claim that changes the
/// writer makes the wait longer, never shorter.
pub fn takeover(ledger: &CertificateLedgerStatus, run_token: &str) -> Takeover {
    let Some(in_flight) = &ledger.in_flight else {
        return Takeover::Now;
    };
    let uploader = in_flight.uploader.as_deref();
    if uploader == Some(run_token) {
        return Takeover::Now;
    }
    let who = uploader.or(ledger.writer.as_deref()).unwrap_or_default();
    Takeover::WaitOut(format!("{who}|{}", in_flight.certificate_id))
}

/// Uploads of other runs this process is waiting out, by resource.
pub struct Handover {
    grace: Duration,
    waiting: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
}

impl Handover {
    /// Waits out in-flight uploads of other runs for `grace`.
    pub fn new(grace: Duration) -> Self {
        Self {
            grace,
            waiting: Mutex::default(),
        }
    }

    /// `None`: the run with writer token `run_token` may claim `ledger` now. `Some(delay)`: look
    /// again after `delay` ([`takeover`] decides, this keeps the time).
    pub fn wait(
        &self,
        resource: &str,
        ledger: &CertificateLedgerStatus,
        run_token: &str,
        now: DateTime<Utc>,
    ) -> Option<Duration> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let Takeover::WaitOut(upload) = takeover(ledger, run_token) else {
            waiting.remove(resource);
            return None;
        };
        let since = match waiting.get(resource) {
            Some((seen, since)) if *seen == upload => *since,
            _ => {
                waiting.insert(resource.to_string(), (upload, now));
                now
            }
        };
        let grace = chrono::Duration::from_std(self.grace).unwrap_or(chrono::Duration::MAX);
        let remaining = (since + grace - now).to_std().ok().filter(|d| !d.is_zero());
        if remaining.is_none() {
            waiting.remove(resource);
        }
        remaining
    }
}

/// Whether two ledgers are the same apart from the writer token (the claim changes only that).
pub fn same_checkpoint(a: &CertificateLedgerStatus, b: &CertificateLedgerStatus) -> bool {
    let strip = |ledger: &CertificateLedgerStatus| CertificateLedgerStatus {
        writer: None,
        ..ledger.clone()
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::InFlightCertificate;
    use chrono::TimeZone;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0)
            .single()
            .unwrap()
            + chrono::Duration::seconds(seconds)
    }

    fn ledger(writer: &str, in_flight: Option<(&str, &str)>) -> CertificateLedgerStatus {
        CertificateLedgerStatus {
            writer: Some(writer.to_string()),
            in_flight: in_flight.map(|(certificate, uploader)| InFlightCertificate {
                certificate_id: certificate.to_string(),
                personio_id: "10001".into(),
                started_at: at(-600),
                participation_id: None,
                completed_at: None,
                uploader: (!uploader.is_empty()).then(|| uploader.to_string()),
            }),
            ..CertificateLedgerStatus::default()
        }
    }

    fn handover() -> Handover {
        Handover::new(Duration::from_secs(120))
    }

    const RUN: &str = "pod-b/7/run2";

    #[test]
    fn a_ledger_without_an_upload_in_flight_is_claimed_at_once() {
        assert_eq!(
            handover().wait("ns/c", &ledger("pod-a/1/x", None), RUN, at(0)),
            None
        );
    }

    /// What the rule says to run `RUN` about a ledger with `writer` and the upload
    /// `(certificate, uploader)` in flight (an empty uploader: a ledger of an older version).
    #[test]
    fn only_the_run_that_started_an_upload_treats_it_as_its_own() {
        let cases = [
            (
                "the run's own upload",
                "pod-b/7/run2",
                ("cer_1", RUN),
                Takeover::Now,
            ),
            // Its document may not be listed yet.
            (
                "an upload of this process's earlier run",
                "pod-b/7/run1",
                ("cer_1", "pod-b/7/run1"),
                Takeover::WaitOut("pod-b/7/run1|cer_1".into()),
            ),
            // A claim that failed halfway left this process's token as the writer; the upload in
            // flight is another process's (the duplicate of issue 27).
            (
                "this run's token next to another process's upload",
                "pod-b/7/run1",
                ("cer_1", "pod-a/1/x"),
                Takeover::WaitOut("pod-a/1/x|cer_1".into()),
            ),
            (
                "a ledger of an older version, keyed by its writer",
                "pod-a/1/x",
                ("cer_1", ""),
                Takeover::WaitOut("pod-a/1/x|cer_1".into()),
            ),
        ];
        for (case, writer, in_flight, expected) in cases {
            let ledger = ledger(writer, Some(in_flight));
            assert_eq!(takeover(&ledger, RUN), expected, "{case}");
        }
    }

    #[test]
    fn this_runs_token_next_to_another_process_upload_is_waited_out() {
        let after_failed_claim = ledger("pod-b/7/run1", Some(("cer_1", "pod-a/1/x")));
        assert_eq!(
            handover().wait("ns/c", &after_failed_claim, RUN, at(0)),
            Some(Duration::from_secs(120))
        );
    }

    #[test]
    fn another_run_upload_is_waited_out_for_the_grace_period() {
        let handover = handover();
        let old = ledger("pod-a/1/x", Some(("cer_1", "pod-a/1/x")));
        assert_eq!(
            handover.wait("ns/c", &old, RUN, at(0)),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            handover.wait("ns/c", &old, "pod-b/7/run3", at(100)),
            Some(Duration::from_secs(20)),
            "a new run of this process goes on waiting"
        );
        assert_eq!(
            handover.wait("ns/c", &old, RUN, at(120)),
            None,
            "it stood still: claim it"
        );
    }

    #[test]
    fn progress_of_the_other_run_starts_the_wait_over_and_a_claim_does_not() {
        let handover = handover();
        assert!(handover
            .wait(
                "ns/c",
                &ledger("pod-a/1/x", Some(("cer_1", "pod-a/1/x"))),
                RUN,
                at(0)
            )
            .is_some());
        // A claim changes only the writer: the same upload, the wait goes on.
        let claimed = ledger("pod-b/7/run1", Some(("cer_1", "pod-a/1/x")));
        assert_eq!(
            handover.wait("ns/c", &claimed, RUN, at(60)),
            Some(Duration::from_secs(60))
        );
        let moved_on = ledger("pod-a/1/x", Some(("cer_2", "pod-a/1/x")));
        assert_eq!(
            handover.wait("ns/c", &moved_on, RUN, at(90)),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            handover.wait("other/c", &moved_on, RUN, at(90)),
            Some(Duration::from_secs(120))
        );
    }

    #[test]
    fn the_claim_alone_does_not_count_as_a_change() {
        let before = ledger("pod-a/1/x", Some(("cer_1", "pod-a/1/x")));
        let claimed = ledger("pod-b/7/y", Some(("cer_1", "pod-a/1/x")));
        assert!(same_checkpoint(&before, &claimed));
        assert!(!same_checkpoint(
            &before,
            &ledger("pod-a/1/x", Some(("cer_2", "pod-a/1/x")))
        ));
    }
}
