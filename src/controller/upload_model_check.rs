//! Exhaustive check of the certificate upload protocol (`upload_model`), as a plain `cargo test`.
//!
//! A breadth-first search visits every state the model can reach and checks the safety
//! properties in each (the first violation comes with a shortest trace). Then, on the whole state
//! graph, the liveness property: from every reachable state a state where every certificate is in
//! Personio can still be reached. On a finite graph that means every certificate is eventually
//! uploaded under fair scheduling (no step stays enabled forever without being taken), whatever
//! crashes, Lease moves and failures came before.
//!
//! Hand-written rather than `stateright`: stateright has no fairness and checks its `eventually`
//! properties only on paths that end, so a livelock (two replicas handing a certificate back and
//! forth forever) would pass; the check needed is reachability of the goal from every state,
//! which needs the state graph itself. The search is 100 lines over the same model and adds no
//! dependency.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::handover::{takeover, Takeover};
use super::upload_model::{Label, Model, Rule};
use super::upload_model_state::{Entry, State, CERTS};
use crate::api::CertificateLedgerStatus;

/// What the search found.
#[derive(Debug)]
struct Checked {
    states: usize,
    transitions: usize,
    elapsed: Duration,
    /// A state where everything is done and the ledger records it was reached.
    settled: bool,
}

/// A property violated, with the steps from the initial state.
#[derive(Debug)]
struct Counterexample {
    property: &'static str,
    trace: Vec<(Label, State)>,
}

impl Counterexample {
    fn render(&self) -> String {
        let mut text = format!("violated: {}\n", self.property);
        for (step, ((who, what), state)) in self.trace.iter().enumerate() {
            let who = match who {
                0 => "replica A",
                1 => "replica B",
                _ => "environment",
            };
            text.push_str(&format!(
                "{:>2}. {who}: {what}\n      ledger: {}; documents {:?}\n",
                step + 1,
                state.persisted.describe(),
                state.documents
            ));
        }
        text
    }
}

/// Never two documents for one certificate; never a certificate recorded as in Personio that is
/// not there (no certificate lost).
fn safety(state: &State) -> Option<&'static str> {
    if state.documents.iter().any(|&n| n > 1) {
        return Some("never two documents for one certificate");
    }
    let recorded_but_missing =
        (0..CERTS).any(|c| state.persisted_owed(c) == Entry::Recorded && state.documents[c] == 0);
    recorded_but_missing.then_some("no certificate lost (recorded as uploaded, not in Personio)")
}

fn uploaded(state: &State) -> bool {
    state.documents.iter().all(|&n| n >= 1)
}

fn check(model: &Model) -> Result<Checked, Counterexample> {
    let started = Instant::now();
    let initial = model.initial();
    let mut index: HashMap<State, u32> = HashMap::new();
    let mut states = vec![initial.clone()];
    let mut parent = vec![u32::MAX];
    index.insert(initial, 0);
    let mut edges: Vec<(u32, u32)> = Vec::new();
    let mut successors = Vec::new();
    let mut next = 0usize;
    while next < states.len() {
        let from = u32::try_from(next).expect("fewer than 2^32 states");
        let state = states[next].clone();
        next += 1;
        model.successors(&state, &mut successors);
        for (_, successor) in successors.drain(..) {
            let to = match index.get(&successor) {
                Some(&to) => to,
                None => {
                    let to = u32::try_from(states.len()).expect("fewer than 2^32 states");
                    states.push(successor.clone());
                    parent.push(from);
                    if let Some(property) = safety(&successor) {
                        return Err(counterexample(model, &states, &parent, to, property));
                    }
                    index.insert(successor, to);
                    to
                }
            };
            edges.push((from, to));
        }
    }
    // Liveness: walk the edges backwards from every state where everything is uploaded.
    let mut incoming: Vec<Vec<u32>> = vec![Vec::new(); states.len()];
    for &(from, to) in &edges {
        incoming[to as usize].push(from);
    }
    let mut reaches: Vec<bool> = states.iter().map(uploaded).collect();
    let mut queue: Vec<u32> = (0..states.len() as u32)
        .filter(|&s| reaches[s as usize])
        .collect();
    while let Some(state) = queue.pop() {
        for &from in &incoming[state as usize] {
            if !reaches[from as usize] {
                reaches[from as usize] = true;
                queue.push(from);
            }
        }
    }
    if let Some(stuck) = reaches.iter().position(|&r| !r) {
        let property = "every completed certificate is eventually uploaded";
        return Err(counterexample(
            model,
            &states,
            &parent,
            stuck as u32,
            property,
        ));
    }
    let settled = states.iter().any(|s| s.settled());
    Ok(Checked {
        states: states.len(),
        transitions: edges.len(),
        elapsed: started.elapsed(),
        settled,
    })
}

fn counterexample(
    model: &Model,
    states: &[State],
    parent: &[u32],
    last: u32,
    property: &'static str,
) -> Counterexample {
    let mut path = vec![last];
    while let Some(&up) = parent.get(*path.last().unwrap_or(&0) as usize) {
        if up == u32::MAX {
            break;
        }
        path.push(up);
    }
    path.reverse();
    let mut trace = Vec::new();
    let mut successors = Vec::new();
    for pair in path.windows(2) {
        model.successors(&states[pair[0] as usize], &mut successors);
        let target = &states[pair[1] as usize];
        if let Some((label, state)) = successors.iter().find(|(_, s)| s == target) {
            trace.push((*label, state.clone()));
        }
    }
    Counterexample { property, trace }
}

/// The handover rule before issue 27, kept as the witness the model must catch: whose upload is
/// in flight was read from `ledger.writer` (this process's token prefix: its own).
fn writer_rule(ledger: &CertificateLedgerStatus, run_token: &str) -> Takeover {
    let own_prefix = &run_token[..=run_token.rfind('/').unwrap_or_default()];
    let foreign = ledger.in_flight.is_some()
        && ledger
            .writer
            .as_deref()
            .is_some_and(|writer| !writer.starts_with(own_prefix));
    if !foreign {
        return Takeover::Now;
    }
    Takeover::WaitOut(format!(
        "{:?}|{:?}",
        ledger.writer,
        ledger.in_flight.as_ref().map(|f| &f.certificate_id)
    ))
}

/// The uploader recorded, but owned per process: an upload of an earlier run of this process
/// counts as this run's own.
fn per_process_rule(ledger: &CertificateLedgerStatus, run_token: &str) -> Takeover {
    let prefix = |token: &str| token[..=token.rfind('/').unwrap_or_default()].to_string();
    match ledger
        .in_flight
        .as_ref()
        .and_then(|f| f.uploader.as_deref())
    {
        Some(uploader) if prefix(uploader) == prefix(run_token) => Takeover::Now,
        _ => takeover(ledger, run_token),
    }
}

/// Faults per explored history: every combination of up to three crashes, Lease moves, failed
/// claims and writes, failed or uncertain uploads and failed listings.
const FAULTS: u8 = 3;

#[test]
fn the_upload_protocol_puts_every_certificate_into_personio_exactly_once() {
    let model = Model {
        rule: takeover,
        faults: FAULTS,
    };
    match check(&model) {
        Ok(checked) => {
            println!(
                "upload model: {} states, {} transitions, checked in {:.1?}",
                checked.states, checked.transitions, checked.elapsed
            );
            assert!(
                checked.settled,
                "the model never finishes: it checks nothing"
            );
        }
        Err(counterexample) => panic!("{}", counterexample.render()),
    }
}

/// The duplicate upload `rule` allows with up to `faults` faults (the model must find one).
fn duplicate_under(rule: Rule, faults: u8, why_unsafe: &str) -> Counterexample {
    let counterexample = check(&Model { rule, faults }).expect_err(why_unsafe);
    println!("{}", counterexample.render());
    assert_eq!(
        counterexample.property,
        "never two documents for one certificate"
    );
    counterexample
}

#[test]
fn the_writer_based_handover_rule_uploads_twice_after_a_failed_claim() {
    let counterexample =
        duplicate_under(writer_rule, FAULTS, "the rule of before issue 27 is unsafe");
    let steps: Vec<&str> = counterexample
        .trace
        .iter()
        .map(|((_, what), _)| *what)
        .collect();
    assert!(
        steps.contains(&"claims the ledger, finds a newer checkpoint: fenced"),
        "the duplicate follows a failed claim: {steps:?}"
    );
}

#[test]
fn a_takeover_that_never_waits_is_caught_too() {
    duplicate_under(|_, _| Takeover::Now, 1, "claiming at once is unsafe");
}

#[test]
fn an_uploader_owned_per_process_is_not_enough() {
    duplicate_under(
        per_process_rule,
        FAULTS,
        "an earlier run's upload may not be listed yet",
    );
}
