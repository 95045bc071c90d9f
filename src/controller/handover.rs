//! Taking over a CertificateSync from another process without uploading a certificate twice.
//!
//! When a resource moves to another shard (or a new leader or a restarted pod picks it up), the
//! process that ran it may still be in the middle of a run: kube-runtime does not stop a reconcile
//! whose object left the watch. That run's ledger checkpoints are conditional on its writer token,
//! so once the new owner claims the ledger the old run stops at its next checkpoint — but an
//! upload it had already started (its `inFlight` entry) still lands. Checking Personio for that
//! certificate at once would miss it, and upload it again.
//!
//! So a run does not claim a ledger whose `inFlight` upload belongs to another process until that
//! entry has stood still for the grace period (longer than one download and upload take): either
//! the other process finished the upload and moved on (the ledger changes, and the wait starts
//! over), or it is gone (crashed, fenced, stopped), and the upload has landed or failed by then,
//! so the marker check is conclusive. After the claim the ledger is compared with the one the run
//! was built on; a checkpoint that slipped in between ends the run before it uploads anything.

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

/// In-flight entries of other processes this process is waiting out, by resource.
pub struct Handover {
    grace: Duration,
    own_prefix: String,
    waiting: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
}

impl Handover {
    /// Waits out foreign in-flight uploads for `grace`; tokens starting with `own_prefix` are this
    /// process's own (its earlier runs of a resource have ended when a new one starts).
    pub fn new(grace: Duration, own_prefix: String) -> Self {
        Self {
            grace,
            own_prefix,
            waiting: Mutex::default(),
        }
    }

    /// `None`: the run may claim `ledger` now. `Some(delay)`: look again after `delay`.
    pub fn wait(
        &self,
        resource: &str,
        ledger: &CertificateLedgerStatus,
        now: DateTime<Utc>,
    ) -> Option<Duration> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let foreign = ledger.in_flight.is_some()
            && ledger
                .writer
                .as_deref()
                .is_some_and(|writer| !writer.starts_with(&self.own_prefix));
        if !foreign {
            waiting.remove(resource);
            return None;
        }
        // What identifies "the same checkpoint": the writer and its in-flight certificate.
        let state = format!(
            "{:?}|{:?}",
            ledger.writer,
            ledger.in_flight.as_ref().map(|f| &f.certificate_id)
        );
        let since = match waiting.get(resource) {
            Some((seen, since)) if *seen == state => *since,
            _ => {
                waiting.insert(resource.to_string(), (state, now));
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

    fn ledger(writer: &str, in_flight: Option<&str>) -> CertificateLedgerStatus {
        CertificateLedgerStatus {
            writer: Some(writer.to_string()),
            in_flight: in_flight.map(|certificate| InFlightCertificate {
                certificate_id: certificate.to_string(),
                personio_id: "10001".into(),
                started_at: at(-600),
                participation_id: None,
                completed_at: None,
            }),
            ..CertificateLedgerStatus::default()
        }
    }

    fn handover() -> Handover {
        Handover::new(Duration::from_secs(120), "pod-b/7/".into())
    }

    #[test]
    fn a_ledger_without_an_upload_in_flight_is_claimed_at_once() {
        assert_eq!(
            handover().wait("ns/c", &ledger("pod-a/1/x", None), at(0)),
            None
        );
    }

    #[test]
    fn this_process_never_waits_for_its_own_earlier_run() {
        assert_eq!(
            handover().wait("ns/c", &ledger("pod-b/7/x", Some("cer_1")), at(0)),
            None
        );
    }

    #[test]
    fn another_process_upload_is_waited_out_for_the_grace_period() {
        let handover = handover();
        let old = ledger("pod-a/1/x", Some("cer_1"));
        assert_eq!(
            handover.wait("ns/c", &old, at(0)),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            handover.wait("ns/c", &old, at(100)),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            handover.wait("ns/c", &old, at(120)),
            None,
            "it stood still: claim it"
        );
    }

    #[test]
    fn progress_of_the_other_process_starts_the_wait_over() {
        let handover = handover();
        assert!(handover
            .wait("ns/c", &ledger("pod-a/1/x", Some("cer_1")), at(0))
            .is_some());
        let moved_on = ledger("pod-a/1/x", Some("cer_2"));
        assert_eq!(
            handover.wait("ns/c", &moved_on, at(90)),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            handover.wait("other/c", &moved_on, at(90)),
            Some(Duration::from_secs(120))
        );
    }

    #[test]
    fn the_claim_alone_does_not_count_as_a_change() {
        let before = ledger("pod-a/1/x", Some("cer_1"));
        let claimed = ledger("pod-b/7/y", Some("cer_1"));
        assert!(same_checkpoint(&before, &claimed));
        assert!(!same_checkpoint(
            &before,
            &ledger("pod-a/1/x", Some("cer_2"))
        ));
    }
}
