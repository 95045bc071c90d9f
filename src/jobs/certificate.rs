//! One CertificateSync run: every completed reteach certificate becomes exactly one Personio
//! document (DESIGN §4).
//!
//! Personio uploads have no idempotency key, so the run records its intent (`ledger.inFlight`)
//! through the [`LedgerStore`] before each upload and, on the next run, looks for the marker of an
//! unconfirmed upload in Personio before uploading anything else. Completions after the cursor
//! are new; anything else (no ledger yet, a full pass, the overlap window) is compared with the
//! markers of the employee's documents first, one listing per employee and run
//! (`sync::certificate_ledger`). Nothing holds the cursor: users without a Personio id, PDFs not
//! generated yet and failing certificates are counted, retried from a bounded list or found
//! again by the next full pass.
//!
//! reteach lists completions in no documented order, so the run walks the listing in passes of
//! at most `batch_size` completions (`sync::candidate_batch`): memory stays flat however many
//! certificates a backfill has.

use std::collections::{HashMap, HashSet};

use futures::TryStreamExt;

use crate::api::{
    CertificateLedgerStatus, CertificateRunSummary, InFlightCertificate, SetAsideCertificate,
};
use crate::personio::PersonioApi;
use crate::reteach::{ReteachApi, ReteachError};
use crate::sync::candidate_batch::{CandidateBatch, ProcessingKey};
use crate::sync::certificate_ledger::Triage;
use crate::sync::Completion;

pub use super::category::resolve_category;
pub use super::certificate_input::{
    CertificateJobInput, CertificateJobOutcome, CertificateRunRequest,
};
use super::certificate_step::{
    after_listing, after_transfer, in_flight_completion, settle_in_flight, Listing, Markers,
    OutageStreak, Presence, Step, INTERRUPTED,
};
use super::certificate_transfer::transfer;
use super::count;
use super::error::JobError;
use super::failures::FailureLog;
pub use super::ledger_store::{LedgerError, LedgerStore, MemoryLedgerStore};
use super::marker_cache::{list_markers, MarkerCache};

/// How many upcoming candidates are looked at for an employee to list ahead of time.
const PREFETCH_WINDOW: usize = 8;

/// The state one run carries around.
struct Run<'a> {
    personio: &'a dyn PersonioApi,
    reteach: &'a dyn ReteachApi,
    input: &'a CertificateJobInput<'a>,
    ledger: CertificateLedgerStatus,
    summary: CertificateRunSummary,
    failures: FailureLog,
    uploaded_total_delta: i64,
    /// What the document listings of this run showed (one listing per employee and run).
    markers: MarkerCache,
    listing_unavailable: Option<String>,
    /// Participations waiting in `pending` when the run started and not handled yet: retried
    /// after everything new (at most `MAX_PENDING`).
    retry: HashSet<String>,
    /// Personio ids of certificates recorded as failed in this run (for set-aside entries;
    /// bounded by `pending`).
    personio_ids: HashMap<String, String>,
    /// Participations whose transient failures came in a row.
    streak: OutageStreak,
    newly_set_aside: Vec<SetAsideCertificate>,
    stopped_early: Option<&'static str>,
    not_recorded: i64,
}

/// Whether the run goes on.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// Runs one CertificateSync pass. Returns `Err` when the run had to stop (credentials, an
/// outage, an unconfirmed upload, a failed save); progress up to that point is already saved,
/// and the error is a [`JobError::Interrupted`] carrying the counters of the part that ran (so
/// `uploadedTotal` stays exact).
pub async fn run_certificate_sync(
    personio: &dyn PersonioApi,
    reteach: &dyn ReteachApi,
    input: &CertificateJobInput<'_>,
) -> Result<CertificateJobOutcome, JobError> {
    let mut ledger = input.ledger.clone();
    ledger.normalize();
    let mut run = Run {
        personio,
        reteach,
        input,
        summary: CertificateRunSummary {
            started_at: input.now,
            dry_run: input.dry_run,
            backfill: ledger.cursor.is_none(),
            ..Default::default()
        },
        ledger,
        failures: FailureLog::default(),
        uploaded_total_delta: 0,
        markers: MarkerCache::default(),
        listing_unavailable: None,
        retry: HashSet::new(),
        personio_ids: HashMap::new(),
        streak: OutageStreak::default(),
        newly_set_aside: Vec::new(),
        stopped_early: None,
        not_recorded: 0,
    };
    match run.execute().await {
        Ok(()) => Ok(run.into_outcome()),
        Err(error) => Err(JobError::Interrupted {
            error: Box::new(error),
            partial: Box::new(run.into_outcome()),
        }),
    }
}

impl Run<'_> {
    async fn execute(&mut self) -> Result<(), JobError> {
        self.settle_in_flight().await?;
        self.retry = self
            .ledger
            .pending
            .iter()
            .map(|p| p.participation_id.clone())
            .collect();
        if self.input.full_pass || self.ledger.full_pass.is_some() {
            self.ledger
                .start_full_pass(self.input.now, self.input.retry_set_aside);
        }
        self.summary.full_pass = self.ledger.full_pass.is_some();
        let result = self.walk_listing().await;
        let result = match result {
            Ok(Flow::Continue) => self.retry_pending().await,
            other => other,
        };
        let flow = match result {
            Ok(flow) => flow,
            Err(error) => {
                self.wrap_up(false);
                // Progress so far is kept, unless another replica owns the ledger now.
                if !matches!(error, JobError::Ledger(LedgerError::Fenced)) {
                    self.persist().await?;
                }
                return Err(error);
            }
        };
        self.wrap_up(flow == Flow::Continue);
        self.persist().await
    }

    /// End of a run: a complete full pass moves the cursor, exhausted certificates are set aside.
    fn wrap_up(&mut self, complete: bool) {
        if complete && self.ledger.full_pass.is_some() && self.listing_unavailable.is_none() {
            self.ledger.finish_full_pass(self.input.now);
        }
        let ids = self.personio_ids.clone();
        let lookup = move |participation: &str| ids.get(participation).cloned();
        let newly =
            self.ledger
                .set_aside_exhausted(self.input.max_attempts, &lookup, self.input.now);
        self.summary.set_aside += count(newly.len());
        self.newly_set_aside.extend(newly);
        self.ledger.prune_recent(self.input.overlap);
    }

    fn into_outcome(self) -> CertificateJobOutcome {
        CertificateJobOutcome {
            summary: self.summary,
            failures: self.failures.into_vec(),
            ledger: if self.input.dry_run {
                self.input.ledger.clone()
            } else {
                self.ledger
            },
            uploaded_total_delta: self.uploaded_total_delta,
            newly_set_aside: self.newly_set_aside,
            listing_unavailable: self.listing_unavailable,
            stopped_early: self.stopped_early,
            not_recorded: self.not_recorded,
        }
    }

    async fn persist(&self) -> Result<(), JobError> {
        if self.input.dry_run {
            return Ok(());
        }
        self.input
            .store
            .save(&self.ledger, self.uploaded_total_delta)
            .await?;
        Ok(())
    }

    /// Whether the run must end now (shutdown, lost Lease, deadline); records why.
    fn must_stop(&mut self) -> bool {
        if self.input.cancel.is_cancelled() {
            self.stopped_early = Some("the operator is shutting down");
        } else if self
            .input
            .deadline
            .is_some_and(|deadline| tokio::time::Instant::now() >= deadline)
        {
            self.stopped_early = Some("the run reached its deadline; the next run goes on");
        }
        self.stopped_early.is_some()
    }

    /// An upload of an earlier run was not confirmed. If Personio has the document (by marker)
    /// it counts as uploaded; if not, it was an attempt that failed. If Personio's document list
    /// cannot be read, it is set aside for a human rather than uploaded again blindly.
    async fn settle_in_flight(&mut self) -> Result<(), JobError> {
        let Some(in_flight) = self.ledger.in_flight.clone() else {
            return Ok(());
        };
        let completion = in_flight_completion(&in_flight);
        let listing = self
            .listing(&in_flight.personio_id, &in_flight.certificate_id)
            .await;
        let step = settle_in_flight(&in_flight, listing);
        self.apply(step, &completion, &in_flight.personio_id)?;
        self.persist().await
    }

    /// Walks the listing in passes of `batch_size`, in completion order.
    async fn walk_listing(&mut self) -> Result<Flow, JobError> {
        let mut after = self.ledger.full_pass_after();
        let mut first = true;
        loop {
            let batch = self.next_batch(after.clone(), first).await?;
            first = false;
            let more = batch.is_truncated();
            let candidates = batch.into_sorted();
            after = candidates.last().map(ProcessingKey::of).or(after);
            for (index, candidate) in candidates.iter().enumerate() {
                if self.must_stop() {
                    return Ok(Flow::Stop);
                }
                let treatment = self.ledger.triage(candidate, self.input.now);
                let key = ProcessingKey::of(candidate);
                self.summary.found += 1;
                // The next employee's document listing goes out while this certificate moves, so
                // the marker check adds no latency to the chain of uploads.
                let next = self.next_to_list(candidate, &candidates[index + 1..]);
                let personio = self.personio;
                let category_id = self.input.category_id;
                let prefetch = async move {
                    match next {
                        Some(employee) => {
                            let listed = list_markers(personio, &employee, category_id).await;
                            Some((employee, listed))
                        }
                        None => None,
                    }
                };
                let (handled, prefetched) =
                    futures::join!(self.handle(candidate, treatment), prefetch);
                if let Some((employee, Ok(certificates))) = prefetched {
                    self.markers
                        .record(&employee, certificates.iter().map(String::as_str));
                }
                handled?;
                if treatment == Triage::New && self.ledger.full_pass.is_none() {
                    self.ledger.advance_cursor(&key);
                }
                self.ledger.full_pass_handled(&key);
            }
            if !more {
                return Ok(Flow::Continue);
            }
        }
    }

    /// The employee of the next few candidates whose documents this run has not listed yet and
    /// that the current candidate does not list itself.
    fn next_to_list(&self, current: &Completion, upcoming: &[Completion]) -> Option<String> {
        if self.listing_unavailable.is_some() {
            return None;
        }
        let current_employee = current.customer_external_id.as_deref();
        upcoming
            .iter()
            .take(PREFETCH_WINDOW)
            // Only what `handle` would list for: a certificate with its PDF, to be verified.
            .filter(|c| c.certificate_id.is_some() && c.certificate_url.is_some())
            .filter(|c| self.ledger.triage(c, self.input.now) == Triage::Verify)
            .filter_map(|c| c.customer_external_id.as_deref())
            .find(|employee| {
                !employee.is_empty()
                    && Some(*employee) != current_employee
                    && !self.markers.is_listed(employee)
            })
            .map(str::to_string)
    }

    /// One pass over the listing, keeping the earliest `batch_size` completions after `after`
    /// that need handling.
    async fn next_batch(
        &mut self,
        after: Option<ProcessingKey>,
        first: bool,
    ) -> Result<CandidateBatch, JobError> {
        let since = self.ledger.listing_since(self.input.overlap);
        let mut batch = CandidateBatch::new(self.input.batch_size, after);
        let mut deferred = 0i64;
        let ledger = &self.ledger;
        let now = self.input.now;
        let mut listing = self.reteach.completed_participations(since);
        let listed = async {
            while let Some(completion) = listing.try_next().await? {
                match ledger.triage(&completion, now) {
                    Triage::New | Triage::Verify => batch.offer(completion),
                    Triage::Deferred => deferred += 1,
                    Triage::Known | Triage::LeftToFullPass => {}
                }
            }
            Ok(())
        };
        listed.await.map_err(JobError::reteach(
            "could not list completed courses in reteach",
        ))?;
        if first {
            self.summary.deferred = deferred;
        }
        Ok(batch)
    }

    /// The certificates waiting in `pending`, re-read from reteach, after everything new.
    async fn retry_pending(&mut self) -> Result<Flow, JobError> {
        let waiting: Vec<_> = self
            .ledger
            .pending
            .iter()
            .filter(|p| self.retry.contains(&p.participation_id))
            .map(|p| (p.participation_id.clone(), p.certificate_id.clone()))
            .collect();
        for (participation_id, certificate_id) in waiting {
            if self.must_stop() {
                return Ok(Flow::Stop);
            }
            match self.reteach.participation(&participation_id).await {
                Ok(Some(completion)) => {
                    self.summary.found += 1;
                    self.handle(&completion, Triage::New).await?;
                }
                Ok(None) | Err(ReteachError::NotFound { .. }) => {
                    self.ledger.remove_pending(&participation_id);
                    self.failures.push(
                        None,
                        Some(certificate_id),
                        "participation no longer exists in reteach",
                    );
                }
                Err(source) => {
                    return Err(JobError::Reteach {
                        action: "could not re-read a waiting certificate in reteach",
                        source,
                    })
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// One certificate.
    async fn handle(&mut self, completion: &Completion, treatment: Triage) -> Result<(), JobError> {
        self.retry.remove(&completion.participation_id);
        let (Some(certificate_id), Some(url)) = (
            completion.certificate_id.as_deref(),
            completion.certificate_url.as_deref(),
        ) else {
            self.summary.pending_pdf += 1;
            if !self.ledger.record_pdf_pending(completion) {
                self.not_recorded += 1;
            }
            return Ok(());
        };
        let Some(personio_id) = completion
            .customer_external_id
            .as_deref()
            .filter(|id| !id.is_empty())
        else {
            // Not owed to Personio until the user is linked; the full pass after the link finds it.
            self.summary.unknown_employee += 1;
            self.ledger.remove_pending(&completion.participation_id);
            return Ok(());
        };
        if treatment == Triage::Verify {
            let listing = self.listing(personio_id, certificate_id).await;
            let step = after_listing(listing);
            if !matches!(step, Step::Upload) {
                return self.apply(step, completion, personio_id);
            }
        }
        if self.input.dry_run {
            self.summary.uploaded += 1;
            return Ok(());
        }
        self.upload(completion, certificate_id, url, personio_id)
            .await
    }

    async fn upload(
        &mut self,
        completion: &Completion,
        certificate_id: &str,
        url: &str,
        personio_id: &str,
    ) -> Result<(), JobError> {
        if !self.input.fence.holds() {
            return Err(JobError::Ledger(LedgerError::Fenced));
        }
        // Intent first: never upload what the next run could not check for.
        self.ledger.in_flight = Some(InFlightCertificate {
            certificate_id: certificate_id.to_string(),
            personio_id: personio_id.to_string(),
            started_at: self.input.now,
            participation_id: Some(completion.participation_id.clone()),
            completed_at: Some(completion.completed_at),
            uploader: self.input.writer.clone(),
        });
        self.persist().await?;
        let step = after_transfer(
            transfer(
                self.personio,
                self.reteach,
                self.input,
                completion,
                certificate_id,
                url,
                personio_id,
            )
            .await,
        );
        let stops = step.stops_run();
        let applied = self.apply(step, completion, personio_id);
        if stops {
            // The run ends here: what is known about the upload is saved first.
            self.persist().await?;
        }
        applied
    }

    /// Applies what the decision (`certificate_step`) said to do with a certificate: the one
    /// place that counts it, records it in the ledger and clears the in-flight intent.
    fn apply(
        &mut self,
        step: Step,
        completion: &Completion,
        personio_id: &str,
    ) -> Result<(), JobError> {
        if !step.keeps_in_flight() {
            self.ledger.in_flight = None;
        }
        let certificate_id = completion.certificate_id.as_deref().unwrap_or_default();
        match step {
            Step::Upload | Step::Forget => {}
            Step::InPersonio(presence) => {
                match presence {
                    Presence::Uploaded => {
                        self.streak.break_off();
                        self.summary.uploaded += 1;
                        self.uploaded_total_delta += 1;
                        self.markers.add(personio_id, certificate_id);
                    }
                    Presence::AlreadyThere => self.summary.already_present += 1,
                    Presence::Interrupted => {
                        tracing::info!(
                            certificate_id,
                            personio_id,
                            "interrupted certificate upload found in Personio; not uploading again"
                        );
                        self.summary.already_present += 1;
                        self.uploaded_total_delta += 1;
                    }
                }
                self.ledger.record_in_personio(
                    certificate_id,
                    &ProcessingKey::of(completion),
                    self.input.overlap,
                );
            }
            Step::WaitForPdf => {
                self.summary.pending_pdf += 1;
                if !self.ledger.record_pdf_pending(completion) {
                    self.not_recorded += 1;
                }
            }
            Step::Unverified(why) => {
                self.summary.unverified += 1;
                self.listing_unavailable = Some(why);
            }
            Step::Attempt { reason, transient } => {
                return self.fail(completion, personio_id, &reason, transient)
            }
            Step::Interrupted => self.record_attempt(completion, personio_id, INTERRUPTED),
            Step::SetAside(why) => {
                tracing::warn!(
                    certificate_id,
                    personio_id,
                    "interrupted upload set aside: Personio's document list cannot be read"
                );
                let entry = SetAsideCertificate {
                    certificate_id: certificate_id.to_string(),
                    participation_id: completion.participation_id.clone(),
                    personio_id: Some(personio_id.to_string()),
                    reason: "the upload was interrupted and Personio's document list cannot be read to check for it; look for the document in the employee's file, then request a run".into(),
                    attempts: 1,
                    since: self.input.now,
                };
                self.ledger.set_aside_unverifiable(entry.clone());
                self.newly_set_aside.push(entry);
                self.summary.set_aside += 1;
                self.listing_unavailable = Some(why);
            }
            Step::StopUncertain(error) | Step::Stop(error) => return Err(error),
        }
        Ok(())
    }

    /// A failed attempt: counted, retried in a later run (set aside after `maxAttempts`). With
    /// `transient`, several in a row mean the upstream is down: those attempts are taken back and
    /// the run stops with that error.
    fn fail(
        &mut self,
        completion: &Completion,
        personio_id: &str,
        reason: &str,
        transient: Option<JobError>,
    ) -> Result<(), JobError> {
        self.summary.failed += 1;
        self.failures.push(
            Some(personio_id.to_string()),
            completion.certificate_id.clone(),
            reason,
        );
        self.record_attempt(completion, personio_id, reason);
        let Some(error) = transient else {
            self.streak.break_off();
            return Ok(());
        };
        let Some(outage) = self.streak.transient_failure(&completion.participation_id) else {
            return Ok(());
        };
        for participation_id in outage {
            self.ledger.forgive_attempt(&participation_id);
        }
        Err(error)
    }

    /// One failed attempt in the ledger (set aside after `maxAttempts`, with the employee's id).
    fn record_attempt(&mut self, completion: &Completion, personio_id: &str, reason: &str) {
        if self
            .ledger
            .record_failed_attempt(completion, reason)
            .is_some()
        {
            self.personio_ids
                .insert(completion.participation_id.clone(), personio_id.to_string());
        } else {
            self.not_recorded += 1;
        }
    }

    /// Whether `personio_id`'s documents carry the marker of `certificate_id`, listing them
    /// unless this run already did (see [`MarkerCache`]).
    async fn listing(&mut self, personio_id: &str, certificate_id: &str) -> Listing {
        if let Some(why) = &self.listing_unavailable {
            return Err(Markers::Unavailable(why.clone()));
        }
        if !self.markers.is_listed(personio_id) {
            let certificates = list_markers(self.personio, personio_id, self.input.category_id)
                .await
                .map_err(Markers::from)?;
            self.markers
                .record(personio_id, certificates.iter().map(String::as_str));
        }
        Ok(self.markers.contains(personio_id, certificate_id))
    }
}

#[cfg(test)]
#[path = "certificate_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "certificate_batch_tests.rs"]
mod batch_tests;

#[cfg(test)]
#[path = "certificate_scenario_tests.rs"]
mod scenario_tests;
