//! A model of the certificate upload protocol (issue 27), explored exhaustively by
//! `upload_model_check`: two replicas run one CertificateSync that owes two certificates, with
//! crashes at every step, the Lease moving away and back (the old holder's run goes on until a
//! checkpoint fails: a leader overlap or a shard move), claims and conditional ledger writes
//! that fail (applied or not), uploads that time out after landing, and document listings that
//! lag behind the uploads.
//!
//! The model owns only what the protocol persists and the order of the I/O steps of a run
//! (`controller::certificate::run` and `jobs::certificate::Run`). Every decision is the
//! production function: the handover rule ([`takeover`], or the rule under test),
//! [`same_checkpoint`], [`after_listing`], [`after_transfer`] with [`after_upload_error`],
//! [`settle_in_flight`] and [`Step::keeps_in_flight`] / [`Step::stops_run`]. The ledger handed
//! to them is the production `CertificateLedgerStatus`, built from the model's compact form.
//!
//! Time is one event, `Tick`: the handover grace period (and the failure backoff) has passed.
//! The assumptions it stands for: an upload on the wire has landed or failed by then, and a
//! landed document is listed by then. A run that failed waits for a tick (backoff); a run fenced
//! by another writer may start again at once (kube-runtime `await_change`).

use super::upload_model_state::{
    end, fresh_process, fresh_token, in_flight_status, land, set_pc, spend, Entry, InFlight,
    Ledger, Pc, Replica, Run, State, Wire, CERTS,
};
use crate::api::CertificateLedgerStatus;
use crate::controller::handover::{same_checkpoint, Takeover};
use crate::jobs::certificate_step::{
    after_listing, after_transfer, settle_in_flight, Listing, Markers, Step,
};
use crate::jobs::certificate_transfer::{after_upload_error, Transfer};
use crate::personio::PersonioError;

/// How the walk of a run meets each certificate while the ledger owes it: the first after the
/// cursor (uploaded without a listing), the second in the overlap window or a full pass (listed
/// first). A certificate waiting in `pending` is retried without a listing, as production does.
const VERIFIED: [bool; CERTS] = [false, true];

/// A handover rule: may the run with this writer token claim the ledger now?
pub(super) type Rule = fn(&CertificateLedgerStatus, &str) -> Takeover;

/// The protocol with a handover rule and a fault budget.
pub(super) struct Model {
    pub(super) rule: Rule,
    pub(super) faults: u8,
}

/// A step of the model, for traces: who did what.
pub(super) type Label = (u8, &'static str);

/// How a conditional ledger write ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    Saved,
    Fenced,
    /// An error; whether the write was applied is unknown to the run.
    Failed,
}

impl Model {
    pub(super) fn initial(&self) -> State {
        let replica = Replica {
            process: 0,
            backoff: false,
            waited: None,
            run: None,
            wire: None,
        };
        State {
            persisted: Ledger {
                writer: None,
                in_flight: None,
                certs: [Entry::Owed; CERTS],
            },
            documents: [0; CERTS],
            fresh: [false; CERTS],
            holder: 0,
            replicas: [replica; 2],
            faults: self.faults,
        }
    }

    /// Every step the state allows, with the state it leads to.
    pub(super) fn successors(&self, state: &State, out: &mut Vec<(Label, State)>) {
        out.clear();
        self.environment(state, out);
        for r in 0..2u8 {
            let replica = state.replicas[usize::from(r)];
            match replica.run {
                None => self.start(state, r, out),
                Some(run) => self.step(state, r, run, out),
            }
        }
    }

    fn environment(&self, state: &State, out: &mut Vec<(Label, State)>) {
        // Time passes (grace period, backoff): uploads on the wire end, documents are listed.
        let mut ticked = state.clone();
        ticked.fresh = [false; CERTS];
        for replica in &mut ticked.replicas {
            replica.backoff = false;
            if let Some((_, passed)) = &mut replica.waited {
                *passed = true;
            }
        }
        let mut ticks = vec![ticked];
        for r in 0..2 {
            if let Some(Wire::Sending(cert)) = state.replicas[r].wire {
                ticks = ticks
                    .into_iter()
                    .flat_map(|t| {
                        let mut landed = t.clone();
                        landed.replicas[r].wire = Some(Wire::Landed(cert));
                        landed.documents[usize::from(cert)] += 1;
                        let mut lost = t;
                        lost.replicas[r].wire = Some(Wire::Lost(cert));
                        let lost = spend(lost);
                        std::iter::once(landed).chain(lost)
                    })
                    .collect();
            }
        }
        out.extend(
            ticks
                .into_iter()
                .filter(|t| t != state)
                .map(|t| ((2, "tick: grace period passes"), t)),
        );
        let Some(faulty) = spend(state.clone()) else {
            return;
        };
        for r in 0..2u8 {
            let idle = state.replicas[usize::from(r)];
            if idle.run.is_none() && idle.wire.is_none() && idle.waited.is_none() && !idle.backoff {
                // Nothing to lose: a restart changes nothing but the process id.
                continue;
            }
            // The process dies wherever it is and restarts (a new process, same Lease).
            let mut crashed = faulty.clone();
            let replica = &mut crashed.replicas[usize::from(r)];
            let wire = replica.wire.take();
            replica.run = None;
            replica.waited = None;
            replica.backoff = false;
            crashed.replicas[usize::from(r)].process = fresh_process(&crashed, r);
            match wire {
                Some(Wire::Sending(cert)) => {
                    let mut landed = crashed.clone();
                    land(&mut landed, cert);
                    out.push(((r, "crash (its upload lands)"), landed));
                    out.push(((r, "crash (its upload is cut off)"), crashed));
                }
                _ => out.push(((r, "crash"), crashed)),
            }
        }
        // The Lease moves: the old holder is not told; its run goes on until a write fails.
        let mut moved = faulty;
        moved.holder = 1 - moved.holder;
        out.push(((moved.holder, "acquires the Lease"), moved));
    }

    /// A replica without a run: the holder starts one (after its backoff).
    fn start(&self, state: &State, r: u8, out: &mut Vec<(Label, State)>) {
        let replica = state.replicas[usize::from(r)];
        if state.holder != r || replica.backoff {
            return;
        }
        let token = fresh_token(state, r, replica.process);
        let previous = state.persisted;
        let mut next = state.clone();
        let me = &mut next.replicas[usize::from(r)];
        match (self.rule)(&previous.status(), &token.text()) {
            Takeover::Now => me.waited = None,
            Takeover::WaitOut(key) => {
                let seen = me.waited.filter(|(ledger, _)| {
                    (self.rule)(&ledger.status(), &token.text()) == Takeover::WaitOut(key.clone())
                });
                match seen {
                    Some((_, true)) => me.waited = None,
                    Some((_, false)) => return,
                    None => {
                        me.waited = Some((previous, false));
                        out.push((
                            (r, "reads the ledger: waits out the upload in flight"),
                            next,
                        ));
                        return;
                    }
                }
            }
        }
        me.run = Some(Run {
            token,
            pc: Pc::Claim,
            previous,
            mem: previous,
            listed: [None; CERTS],
            retry: [false; CERTS],
        });
        out.push(((r, "reads the ledger and starts a run"), next));
    }

    fn step(&self, state: &State, r: u8, run: Run, out: &mut Vec<(Label, State)>) {
        match run.pc {
            Pc::Claim => self.claim(state, r, run, out),
            Pc::Settle => self.settle(state, r, run, out),
            Pc::Next(at) => self.next(state, r, run, at, out),
            Pc::SaveIntent(at) => self.save_intent(state, r, run, at, out),
            Pc::Answer(at) => self.answer(state, r, run, at, out),
            Pc::Stop(tries) => {
                for (write, next) in persist(state, &run) {
                    let mut next = next;
                    match write {
                        Write::Saved => end(&mut next, r, true),
                        Write::Fenced => end(&mut next, r, false),
                        Write::Failed if tries > 1 => set_pc(&mut next, r, Pc::Stop(tries - 1)),
                        Write::Failed => end(&mut next, r, true),
                    }
                    out.push(((r, "saves the ledger after an error"), next));
                }
            }
            Pc::Final => {
                for (write, mut next) in persist(state, &run) {
                    end(&mut next, r, write == Write::Failed);
                    out.push(((r, "saves the ledger at the end of the run"), next));
                }
            }
        }
    }

    /// The claim: an unconditional merge patch of the writer token, then the comparison with
    /// the ledger the run was built on.
    fn claim(&self, state: &State, r: u8, run: Run, out: &mut Vec<(Label, State)>) {
        let mut claimed = state.clone();
        claimed.persisted.writer = Some(run.token);
        if same_checkpoint(&run.previous.status(), &claimed.persisted.status()) {
            let mut go = claimed.clone();
            let mut run = run;
            run.mem.writer = Some(run.token);
            run.pc = if run.mem.in_flight.is_some() {
                Pc::Settle
            } else {
                walk_from_start(&mut run);
                Pc::Next(0)
            };
            go.replicas[usize::from(r)].run = Some(run);
            out.push(((r, "claims the ledger"), go));
        } else {
            let mut fenced = claimed.clone();
            end(&mut fenced, r, false);
            out.push((
                (r, "claims the ledger, finds a newer checkpoint: fenced"),
                fenced,
            ));
        }
        if let Some(mut failed) = spend(state.clone()) {
            end(&mut failed, r, true);
            out.push(((r, "claim fails (not applied)"), failed));
        }
        if let Some(mut failed) = spend(claimed) {
            end(&mut failed, r, true);
            out.push(((r, "claim fails (applied)"), failed));
        }
    }

    /// The upload an earlier run left in flight, checked against the listing.
    fn settle(&self, state: &State, r: u8, run: Run, out: &mut Vec<(Label, State)>) {
        let Some(in_flight) = run.mem.in_flight else {
            return;
        };
        let cert = in_flight.cert;
        let production = in_flight_status(cert, Some(in_flight.uploader));
        for (label, listing, state) in listings(state, cert) {
            let label = settle_label(label);
            let mut run = run;
            if let Ok(present) = listing {
                run.listed[usize::from(cert)] = Some(present);
            }
            let step = settle_in_flight(&production, listing);
            let stops = step.stops_run();
            apply(&mut run, cert, &step);
            let mut next = state.clone();
            if stops {
                // `settle_in_flight` returns before its save: the run fails, the intent stays.
                end(&mut next, r, true);
                out.push(((r, label), next));
                continue;
            }
            next.replicas[usize::from(r)].run = Some(run);
            for (write, mut saved) in persist(&next, &run) {
                match write {
                    Write::Saved => {
                        let mut run = run;
                        walk_from_start(&mut run);
                        run.pc = Pc::Next(0);
                        saved.replicas[usize::from(r)].run = Some(run);
                    }
                    Write::Fenced => end(&mut saved, r, false),
                    Write::Failed => end(&mut saved, r, true),
                }
                out.push(((r, label), saved));
            }
        }
    }

    /// The next certificate to handle from position `at` on.
    fn next(&self, state: &State, r: u8, run: Run, at: u8, out: &mut Vec<(Label, State)>) {
        let Some(at) = (at..2 * CERTS as u8).find(|&at| {
            let cert = usize::from(at) % CERTS;
            if usize::from(at) < CERTS {
                run.mem.certs[cert] == Entry::Owed
            } else {
                run.retry[cert] && run.mem.certs[cert] == Entry::Pending
            }
        }) else {
            let mut next = state.clone();
            set_pc(&mut next, r, Pc::Final);
            out.push(((r, "has handled every certificate"), next));
            return;
        };
        let cert = at % CERTS as u8;
        let mut run = run;
        run.retry[usize::from(cert)] = false;
        let verify = usize::from(at) < CERTS && VERIFIED[usize::from(cert)];
        if !verify {
            let mut next = state.clone();
            run.pc = Pc::SaveIntent(at);
            next.replicas[usize::from(r)].run = Some(run);
            out.push((
                (
                    r,
                    "takes a certificate to upload (after the cursor, or pending)",
                ),
                next,
            ));
            return;
        }
        let cached = run.listed[usize::from(cert)]
            .map(|present| ("uses its listing", Ok(present), state.clone()));
        let listed = match cached {
            Some(cached) => vec![cached],
            None => listings(state, cert),
        };
        for (label, listing, state) in listed {
            let mut run = run;
            if let Ok(present) = listing {
                run.listed[usize::from(cert)] = Some(present);
            }
            let step = after_listing(listing);
            let mut next = state;
            if matches!(step, Step::Upload) {
                run.pc = Pc::SaveIntent(at);
            } else {
                apply(&mut run, cert, &step);
                run.pc = Pc::Next(at + 1);
            }
            next.replicas[usize::from(r)].run = Some(run);
            out.push(((r, label), next));
        }
    }

    /// Intent first: the in-flight entry is saved, then the upload goes out.
    fn save_intent(&self, state: &State, r: u8, run: Run, at: u8, out: &mut Vec<(Label, State)>) {
        let cert = at % CERTS as u8;
        let mut run = run;
        run.mem.in_flight = Some(InFlight {
            cert,
            uploader: run.token,
        });
        for (write, mut next) in persist(state, &run) {
            match write {
                Write::Saved => {
                    run.pc = Pc::Answer(at);
                    let me = &mut next.replicas[usize::from(r)];
                    me.run = Some(run);
                    me.wire = Some(Wire::Sending(cert));
                    out.push(((r, "saves the intent and sends the upload"), next));
                }
                Write::Fenced => {
                    end(&mut next, r, false);
                    out.push(((r, "saves the intent: fenced"), next));
                }
                Write::Failed => {
                    run.pc = Pc::Stop(1);
                    next.replicas[usize::from(r)].run = Some(run);
                    out.push(((r, "saves the intent: write fails"), next));
                }
            }
        }
    }

    /// Personio's answer to the upload (landing first when the wire is still open).
    fn answer(&self, state: &State, r: u8, run: Run, at: u8, out: &mut Vec<(Label, State)>) {
        let cert = at % CERTS as u8;
        let mut outcomes: Vec<(&'static str, State, Result<(), bool>)> = Vec::new();
        let mut base = state.clone();
        base.replicas[usize::from(r)].wire = None;
        match state.replicas[usize::from(r)].wire {
            Some(Wire::Sending(_)) => {
                let mut landed = base.clone();
                land(&mut landed, cert);
                outcomes.push(("upload confirmed", landed.clone(), Ok(())));
                if let Some(landed) = spend(landed) {
                    outcomes.push(("upload times out after landing", landed, Err(true)));
                }
                if let Some(lost) = spend(base) {
                    outcomes.push(("upload times out, not stored", lost.clone(), Err(true)));
                    outcomes.push(("upload refused (429)", lost, Err(false)));
                }
            }
            Some(Wire::Landed(_)) => {
                outcomes.push(("upload confirmed", base.clone(), Ok(())));
                if let Some(landed) = spend(base) {
                    outcomes.push(("upload times out after landing", landed, Err(true)));
                }
            }
            Some(Wire::Lost(_)) => {
                outcomes.push(("upload times out, not stored", base.clone(), Err(true)));
                outcomes.push(("upload refused (429)", base, Err(false)));
            }
            None => return,
        }
        for (label, mut next, answer) in outcomes {
            let transfer = match answer {
                Ok(()) => Transfer::Uploaded,
                Err(maybe_applied) => after_upload_error(PersonioError::Unavailable {
                    message: "model".into(),
                    maybe_applied,
                    trace_id: None,
                }),
            };
            let step = after_transfer(transfer);
            let mut run = run;
            let stops = step.stops_run();
            apply(&mut run, cert, &step);
            run.pc = if stops { Pc::Stop(2) } else { Pc::Next(at + 1) };
            next.replicas[usize::from(r)].run = Some(run);
            out.push(((r, label), next));
        }
    }
}

/// What the run does with a certificate's ledger entry after a decision (`Run::apply`).
fn apply(run: &mut Run, cert: u8, step: &Step) {
    if !step.keeps_in_flight() {
        run.mem.in_flight = None;
    }
    let entry = &mut run.mem.certs[usize::from(cert)];
    match step {
        Step::InPersonio(_) => {
            *entry = Entry::Recorded;
            run.listed[usize::from(cert)] = Some(true);
        }
        Step::Attempt { .. } | Step::Interrupted => *entry = Entry::Pending,
        Step::Upload | Step::StopUncertain(_) | Step::Stop(_) => {}
        other => unreachable!("the model never leads to {other:?}"),
    }
}

/// The walk starts: the certificates in `pending` now are retried after it.
fn walk_from_start(run: &mut Run) {
    for (retry, owed) in run.retry.iter_mut().zip(run.mem.certs) {
        *retry = owed == Entry::Pending;
    }
}

/// The label of a listing that checks the upload in flight.
fn settle_label(listing: &'static str) -> &'static str {
    match listing {
        LISTED_FOUND => "checks the upload in flight: marker found",
        LISTED_NONE => "checks the upload in flight: no marker (an interrupted attempt)",
        LISTED_LAGS => "checks the upload in flight: no marker yet (the listing lags)",
        _ => "checks the upload in flight: listing fails (503)",
    }
}

const LISTED_FOUND: &str = "lists the documents: marker found";
const LISTED_NONE: &str = "lists the documents: no marker";
const LISTED_LAGS: &str = "lists the documents: no marker yet (the listing lags)";

/// What a listing of the certificate's employee can show: a document that landed since the last
/// tick may be missing (lag), and the listing may fail.
fn listings(state: &State, cert: u8) -> Vec<(&'static str, Listing, State)> {
    let c = usize::from(cert);
    let mut shown = Vec::new();
    if state.documents[c] > 0 {
        shown.push((LISTED_FOUND, Ok(true), state.clone()));
    }
    if state.documents[c] == 0 || state.fresh[c] {
        let label = if state.documents[c] == 0 {
            LISTED_NONE
        } else {
            LISTED_LAGS
        };
        shown.push((label, Ok(false), state.clone()));
    }
    if let Some(failed) = spend(state.clone()) {
        let error = PersonioError::Unavailable {
            message: "model".into(),
            maybe_applied: false,
            trace_id: None,
        };
        shown.push((
            "listing fails (503)",
            Err(Markers::Transient(error)),
            failed,
        ));
    }
    shown
}

/// A conditional ledger write (JSON patch with a `test` of the writer token) of the run's
/// in-memory ledger, with every way it can end.
fn persist(state: &State, run: &Run) -> Vec<(Write, State)> {
    if state.persisted.writer != Some(run.token) {
        return vec![(Write::Fenced, state.clone())];
    }
    let mut saved = state.clone();
    saved.persisted = run.mem;
    saved.persisted.writer = Some(run.token);
    let mut outcomes = vec![(Write::Saved, saved.clone())];
    if let Some(failed) = spend(state.clone()) {
        outcomes.push((Write::Failed, failed));
    }
    if let Some(applied) = spend(saved) {
        outcomes.push((Write::Failed, applied));
    }
    outcomes
}
