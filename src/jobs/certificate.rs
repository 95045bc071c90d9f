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
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use futures::TryStreamExt;
use tokio_util::sync::CancellationToken;

use crate::api::{
    CertificateLedgerStatus, CertificateRunSummary, CertificateSyncSpec, DocumentCategoryRef,
    InFlightCertificate, RecordFailure, SetAsideCertificate,
};
use crate::personio::PersonioApi;
use crate::reteach::{ReteachApi, ReteachError};
use crate::sync::candidate_batch::{CandidateBatch, ProcessingKey, DEFAULT_BATCH_SIZE};
use crate::sync::certificate_ledger::Triage;
use crate::sync::certificate_plan::DEFAULT_OVERLAP_MINUTES;
use crate::sync::Completion;

use super::certificate_step::{
    after_listing, after_transfer, settle_in_flight, Listing, Markers, OutageStreak, Presence,
    Step, INTERRUPTED,
};
use super::certificate_transfer::transfer;
use super::count;
use super::error::JobError;
use super::failures::FailureLog;
use super::fence::Fence;
use super::marker_cache::{list_markers, MarkerCache};

/// How many upcoming candidates are looked at for an employee to list ahead of time.
const PREFETCH_WINDOW: usize = 8;

/// The ledger could not be persisted.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Another run (a replica that took over the Lease) owns the ledger now; this run must
    /// stop without writing anything more.
    #[error("another replica has taken over this resource's certificate ledger; this run stops")]
    Fenced,
    /// The write failed (API server unavailable, conflict).
    #[error("{0}")]
    Write(String),
}

/// Where the run persists its ledger: the controller writes it to status, the demo keeps it in
/// memory. A save must be durable when it returns `Ok`.
#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// Persists the ledger, with `uploaded`: the documents this run has put into Personio so far
    /// (confirmed uploads plus interrupted ones found present), so that `status.uploadedTotal`
    /// stays exact even when the process dies before the run ends.
    async fn save(
        &self,
        ledger: &CertificateLedgerStatus,
        uploaded: i64,
    ) -> Result<(), LedgerError>;
}

/// A [`LedgerStore`] in memory (demo, benchmark, tests). Keeps only the latest ledger, so memory
/// stays flat however many certificates a run uploads.
#[derive(Debug, Default)]
pub struct MemoryLedgerStore {
    state: Mutex<MemoryLedger>,
}

#[derive(Debug, Default)]
struct MemoryLedger {
    latest: Option<CertificateLedgerStatus>,
    saves: usize,
    uploaded: i64,
    /// Largest ledger saved, and all saves together, in bytes of JSON (what a status write
    /// carries).
    max_bytes: usize,
    total_bytes: usize,
}

impl MemoryLedgerStore {
    /// The last saved ledger.
    pub fn latest(&self) -> Option<CertificateLedgerStatus> {
        self.state
            .lock()
            .ok()
            .and_then(|state| state.latest.clone())
    }

    /// How many times the ledger was saved.
    pub fn saves(&self) -> usize {
        self.state
            .lock()
            .map(|state| state.saves)
            .unwrap_or_default()
    }

    /// Largest ledger saved, in bytes of JSON, and the bytes of all saves together.
    pub fn bytes(&self) -> (usize, usize) {
        self.state
            .lock()
            .map(|state| (state.max_bytes, state.total_bytes))
            .unwrap_or_default()
    }

    /// The run's document count passed with the last save.
    pub fn uploaded(&self) -> i64 {
        self.state
            .lock()
            .map(|state| state.uploaded)
            .unwrap_or_default()
    }
}

#[async_trait]
impl LedgerStore for MemoryLedgerStore {
    async fn save(
        &self,
        ledger: &CertificateLedgerStatus,
        uploaded: i64,
    ) -> Result<(), LedgerError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| LedgerError::Write("ledger store poisoned".into()))?;
        let bytes = serde_json::to_vec(ledger)
            .map(|json| json.len())
            .unwrap_or_default();
        state.max_bytes = state.max_bytes.max(bytes);
        state.total_bytes = state.total_bytes.saturating_add(bytes);
        state.latest = Some(ledger.clone());
        state.saves += 1;
        state.uploaded = uploaded;
        Ok(())
    }
}

/// Everything one run needs besides the clients.
pub struct CertificateJobInput<'a> {
    /// Start of the run (recorded as the start of an upload in flight).
    pub now: DateTime<Utc>,
    /// Company time zone: the document date is the completion date there.
    pub tz: Tz,
    /// Count what would be uploaded; save and upload nothing.
    pub dry_run: bool,
    /// Resolved Personio document category (see [`resolve_category`]).
    pub category_id: i64,
    /// Title template; `{course}` is replaced.
    pub title_template: String,
    /// How far before the cursor completions are re-read (late listings).
    pub overlap: Duration,
    /// The ledger as last persisted.
    pub ledger: CertificateLedgerStatus,
    /// Where progress is persisted.
    pub store: &'a dyn LedgerStore,
    /// Checked between certificates; a cancelled run saves its progress and returns.
    pub cancel: CancellationToken,
    /// Most completions one pass over the reteach listing holds in memory
    /// ([`DEFAULT_BATCH_SIZE`](crate::sync::candidate_batch::DEFAULT_BATCH_SIZE)).
    pub batch_size: usize,
    /// Compare every completion with Personio's markers (see
    /// [`full_pass_due`](crate::sync::certificate_ledger::full_pass_due)). An interrupted full
    /// pass always resumes.
    pub full_pass: bool,
    /// Give set-aside certificates another chance (a run requested by a human).
    pub retry_set_aside: bool,
    /// Failed attempts after which a certificate is set aside.
    pub max_attempts: i32,
    /// The run saves its progress and ends at this time; the next run goes on.
    pub deadline: Option<tokio::time::Instant>,
    /// Closed when this replica may have lost its Lease: no upload starts, a running transfer
    /// is cut off.
    pub fence: Fence,
    /// Writer token of this run, recorded as the uploader of every upload it starts
    /// (`ledger.inFlight.uploader`), so no other run takes that upload for its own.
    pub writer: Option<String>,
}

/// What the caller knows about a run besides spec and ledger.
pub struct CertificateRunRequest {
    /// Start of the run.
    pub now: DateTime<Utc>,
    /// Company time zone (of the referenced EmployeeSync).
    pub tz: Tz,
    /// Resolved Personio document category.
    pub category_id: i64,
    /// `spec.fullResyncInterval`, validated.
    pub full_resync_interval: Duration,
    /// A human requested this run (`reconcile.fluxcd.io/requestedAt`): a full pass that also
    /// retries set-aside certificates.
    pub requested: bool,
    /// When the EmployeeSync last linked existing reteach users to Personio employees.
    pub linked_since: Option<DateTime<Utc>>,
}

impl<'a> CertificateJobInput<'a> {
    /// The default overlap (10 minutes).
    pub fn default_overlap() -> Duration {
        Duration::minutes(DEFAULT_OVERLAP_MINUTES)
    }

    /// The input of a run of `spec` from `ledger` (the one way the controller, the demo, the
    /// benchmark and the tests build it).
    pub fn new(
        spec: &CertificateSyncSpec,
        ledger: &CertificateLedgerStatus,
        request: CertificateRunRequest,
        store: &'a dyn LedgerStore,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            now: request.now,
            tz: request.tz,
            dry_run: spec.dry_run,
            category_id: request.category_id,
            title_template: spec.title.clone(),
            overlap: Self::default_overlap(),
            full_pass: ledger.full_pass_due(
                request.now,
                request.full_resync_interval,
                request.requested,
                request.linked_since,
            ),
            retry_set_aside: request.requested,
            max_attempts: spec.max_attempts.clamp(1, 100),
            ledger: ledger.clone(),
            store,
            cancel,
            batch_size: DEFAULT_BATCH_SIZE,
            deadline: None,
            fence: Fence::open(),
            writer: None,
        }
    }
}

/// What one run did.
#[derive(Clone, Debug, PartialEq)]
pub struct CertificateJobOutcome {
    /// Counters for `status.lastRun`; `finished_at` is left for the caller, which owns the clock.
    pub summary: CertificateRunSummary,
    /// Failures and unknown employees (at most `MAX_STATUS_FAILURES`; counters are complete).
    pub failures: Vec<RecordFailure>,
    /// The ledger after the run (already saved, except on a dry run where it is the input ledger).
    pub ledger: CertificateLedgerStatus,
    /// Documents newly known to be in Personio: uploads plus interrupted uploads found present.
    pub uploaded_total_delta: i64,
    /// Certificates set aside in this run (for a Warning Event and the metric).
    pub newly_set_aside: Vec<SetAsideCertificate>,
    /// Why Personio's document list could not be read, when it could not.
    pub listing_unavailable: Option<String>,
    /// Why the run ended before it had handled everything (deadline, shutdown), if it did.
    pub stopped_early: Option<&'static str>,
    /// Certificates that waited but did not fit into the bounded `pending` list; the next full
    /// pass finds them.
    pub not_recorded: i64,
}

/// Resolves `spec.documentCategory` to a category id that exists in Personio.
pub async fn resolve_category(
    personio: &dyn PersonioApi,
    wanted: &DocumentCategoryRef,
) -> Result<i64, JobError> {
    let name = wanted
        .name
        .as_deref()
        .filter(|name| !name.trim().is_empty());
    if wanted.id.is_some() == name.is_some() {
        return Err(JobError::InvalidCategoryRef);
    }
    let categories = personio
        .document_categories()
        .await
        .map_err(|source| JobError::Personio {
            action: "could not read document categories from Personio",
            source,
        })?;
    let found = categories
        .iter()
        .find(|category| match (wanted.id, name) {
            (Some(id), _) => category.id == id,
            (None, Some(name)) => category.name == name,
            (None, None) => false,
        })
        .map(|category| category.id);
    found.ok_or_else(|| JobError::UnknownCategory {
        wanted: match (wanted.id, name) {
            (Some(id), _) => format!("id {id}"),
            (None, name) => format!("{:?}", name.unwrap_or_default()),
        },
        available: categories
            .iter()
            .map(|category| format!("{} (id {})", category.name, category.id))
            .collect(),
    })
}

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
        listed.await.map_err(|source| JobError::Reteach {
            action: "could not list completed courses in reteach",
            source,
        })?;
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

/// The completion an upload left in flight stands for (its key as far as the intent records it).
fn in_flight_completion(in_flight: &InFlightCertificate) -> Completion {
    Completion {
        participation_id: in_flight.participation_id.clone().unwrap_or_default(),
        certificate_id: Some(in_flight.certificate_id.clone()),
        certificate_url: None,
        course_name: String::new(),
        completed_at: in_flight.completed_at.unwrap_or(in_flight.started_at),
        customer_external_id: Some(in_flight.personio_id.clone()),
        customer_id: String::new(),
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
