//! The state of the upload model (`upload_model`): what the protocol persists, what each
//! replica holds in memory, and Personio's documents, in a compact, hashable form.

use chrono::{DateTime, Utc};

use crate::api::CertificateLedgerStatus;
use crate::sync::certificate_ledger_state::{
    InFlightCertificate, PendingCertificate, RecentUpload,
};

/// Certificates the academy owes Personio.
pub(super) const CERTS: usize = 2;

/// What the ledger says about one certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Entry {
    /// Not handled yet (the cursor is before it).
    Owed,
    /// In `pending`: a failed attempt, retried by the next run.
    Pending,
    /// In `recent`: known to be in Personio.
    Recorded,
}

/// A run's writer token: replica, process (a restart is a new process), run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Token {
    pub(super) replica: u8,
    pub(super) process: u8,
    pub(super) run: u8,
}

impl Token {
    /// The token as production writes it, `<process prefix>/<run>`: `A0/run1` is run 1 of the
    /// first process of replica A.
    pub(super) fn text(self) -> String {
        let replica = if self.replica == 0 { 'A' } else { 'B' };
        format!("{replica}{}/run{}", self.process, self.run)
    }
}

/// `ledger.inFlight`: the certificate and the run that started the upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct InFlight {
    pub(super) cert: u8,
    pub(super) uploader: Token,
}

/// `status.ledger` in compact form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Ledger {
    pub(super) writer: Option<Token>,
    pub(super) in_flight: Option<InFlight>,
    pub(super) certs: [Entry; CERTS],
}

pub(super) fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

impl Ledger {
    /// The production form, for the production decisions.
    pub(super) fn status(&self) -> CertificateLedgerStatus {
        let mut ledger = CertificateLedgerStatus {
            writer: self.writer.map(Token::text),
            in_flight: self
                .in_flight
                .map(|f| in_flight_status(f.cert, Some(f.uploader))),
            ..CertificateLedgerStatus::default()
        };
        for (cert, owed) in self.certs.iter().enumerate() {
            match owed {
                Entry::Owed => {}
                Entry::Pending => ledger.pending.push(PendingCertificate {
                    certificate_id: format!("cer_{cert}"),
                    participation_id: format!("par_{cert}"),
                    completed_at: epoch(),
                    reason: crate::sync::certificate_ledger::REASON_FAILED.into(),
                    attempts: 1,
                    last_error: None,
                }),
                Entry::Recorded => ledger.recent.push(RecentUpload {
                    certificate_id: format!("cer_{cert}"),
                    completed_at: epoch(),
                    participation_id: Some(format!("par_{cert}")),
                }),
            }
        }
        ledger
    }

    /// The writer and the upload in flight, for traces.
    pub(super) fn describe(&self) -> String {
        let writer = self.writer.map_or_else(|| "-".into(), Token::text);
        match self.in_flight {
            Some(f) => format!(
                "writer {writer}, in flight cer_{} by {}",
                f.cert,
                f.uploader.text()
            ),
            None => format!("writer {writer}, nothing in flight"),
        }
    }

    fn tokens(&self) -> impl Iterator<Item = Token> {
        self.writer
            .into_iter()
            .chain(self.in_flight.map(|f| f.uploader))
    }
}

pub(super) fn in_flight_status(cert: u8, uploader: Option<Token>) -> InFlightCertificate {
    InFlightCertificate {
        certificate_id: format!("cer_{cert}"),
        personio_id: format!("1000{cert}"),
        started_at: epoch(),
        participation_id: Some(format!("par_{cert}")),
        completed_at: Some(epoch()),
        uploader: uploader.map(Token::text),
    }
}

/// An upload request on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Wire {
    /// The body is going out; its fate is open.
    Sending(u8),
    /// Personio stored it; the answer has not come back yet.
    Landed(u8),
    /// It will never land; the answer has not come back yet.
    Lost(u8),
}

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Pc {
    /// The ledger was read and the handover rule let the run go on: claim it.
    Claim,
    /// Check the upload an earlier run left in flight.
    Settle,
    /// Handle the next certificate from this position on (walk, then retries of `pending`).
    Next(u8),
    /// Save the intent for the certificate at this position, then send it.
    SaveIntent(u8),
    /// Wait for Personio's answer to the upload of the certificate at this position.
    Answer(u8),
    /// The run stops with an error: persist what it knows (up to `tries` times).
    Stop(u8),
    /// Save the ledger at the end of the run.
    Final,
}

/// One run of the CertificateSync in a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Run {
    pub(super) token: Token,
    pub(super) pc: Pc,
    /// The ledger the run was built on (`previous.ledger`).
    pub(super) previous: Ledger,
    /// The run's ledger in memory.
    pub(super) mem: Ledger,
    /// What this run's document listings showed, per certificate (`MarkerCache`).
    pub(super) listed: [Option<bool>; CERTS],
    /// Certificates in `pending` when the walk started, retried after it.
    pub(super) retry: [bool; CERTS],
}

/// One operator replica (its current process).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Replica {
    pub(super) process: u8,
    /// The last run failed: the next one starts after the backoff (a tick).
    pub(super) backoff: bool,
    /// `Handover`'s memory: the ledger whose in-flight upload is being waited out, and whether
    /// the grace period has passed since it was first seen.
    pub(super) waited: Option<(Ledger, bool)>,
    pub(super) run: Option<Run>,
    pub(super) wire: Option<Wire>,
}

/// Everything the protocol acts on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct State {
    /// `status.ledger` in the API server.
    pub(super) persisted: Ledger,
    /// Personio documents per certificate (by marker).
    pub(super) documents: [u8; CERTS],
    /// A landed document the listing may not show yet.
    pub(super) fresh: [bool; CERTS],
    /// The replica holding the Lease (the only one that starts runs).
    pub(super) holder: u8,
    pub(super) replicas: [Replica; 2],
    /// Faults the environment may still inject (crashes, Lease moves, failed writes and claims,
    /// failed and uncertain uploads, failed listings).
    pub(super) faults: u8,
}

impl State {
    /// What the persisted ledger says about a certificate.
    pub(super) fn persisted_owed(&self, cert: usize) -> Entry {
        self.persisted.certs[cert]
    }

    /// Everything is in Personio once, the ledger records it, nothing is in flight or running.
    pub(super) fn settled(&self) -> bool {
        self.persisted.certs.iter().all(|o| *o == Entry::Recorded)
            && self.persisted.in_flight.is_none()
            && self.documents.iter().all(|&n| n == 1)
            && self
                .replicas
                .iter()
                .all(|r| r.run.is_none() && r.wire.is_none())
    }
}

pub(super) fn set_pc(state: &mut State, r: u8, pc: Pc) {
    if let Some(run) = &mut state.replicas[usize::from(r)].run {
        run.pc = pc;
    }
}

/// The run ends; after an error the next one waits for the backoff.
pub(super) fn end(state: &mut State, r: u8, failed: bool) {
    let replica = &mut state.replicas[usize::from(r)];
    replica.run = None;
    replica.backoff = failed;
}

pub(super) fn land(state: &mut State, cert: u8) {
    state.documents[usize::from(cert)] += 1;
    state.fresh[usize::from(cert)] = true;
}

/// The state with one fault spent, if any is left.
pub(super) fn spend(mut state: State) -> Option<State> {
    state.faults = state.faults.checked_sub(1)?;
    Some(state)
}

/// Every writer token the state refers to.
pub(super) fn tokens(state: &State) -> Vec<Token> {
    let mut all: Vec<Token> = state.persisted.tokens().collect();
    for replica in &state.replicas {
        if let Some(run) = &replica.run {
            all.push(run.token);
            all.extend(run.previous.tokens());
            all.extend(run.mem.tokens());
        }
        if let Some((ledger, _)) = &replica.waited {
            all.extend(ledger.tokens());
        }
    }
    all
}

/// A token no part of the state refers to (the smallest, so equal histories meet).
pub(super) fn fresh_token(state: &State, replica: u8, process: u8) -> Token {
    let used = tokens(state);
    let run = (0..)
        .find(|&run| {
            !used.contains(&Token {
                replica,
                process,
                run,
            })
        })
        .unwrap_or_default();
    Token {
        replica,
        process,
        run,
    }
}

/// A process id for a restarted replica that no token in the state carries.
pub(super) fn fresh_process(state: &State, replica: u8) -> u8 {
    let used = tokens(state);
    let current = state.replicas[usize::from(replica)].process;
    (0..)
        .find(|&process| {
            process != current
                && !used
                    .iter()
                    .any(|t| t.replica == replica && t.process == process)
        })
        .unwrap_or_default()
}
