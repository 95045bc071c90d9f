//! One CertificateSync run: every completed reteach certificate becomes exactly one Personio
//! document (DESIGN §4).
//!
//! Personio uploads have no idempotency key, so the run records its intent (`ledger.inFlight`)
//! through the [`LedgerStore`] before each upload and, on the next run, looks for the marker of an
//! unconfirmed upload in Personio before uploading anything else. The cursor only passes
//! certificates that are uploaded or recorded in `pending`.
//!
//! reteach lists completions in no documented order, so the run walks the listing in passes of
//! at most `batch_size` completions (`sync::candidate_batch`): memory stays flat however many
//! certificates a backfill has.

use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use futures::TryStreamExt;
use tokio_util::sync::CancellationToken;

use crate::api::{
    CertificateLedgerStatus, CertificateRunSummary, DocumentCategoryRef, InFlightCertificate,
    RecordFailure,
};
use crate::personio::{DocumentUpload, PersonioApi, PersonioError};
use crate::reteach::{ReteachApi, ReteachError};
use crate::sync::candidate_batch::{sort_candidates, CandidateBatch, ProcessingKey};
use crate::sync::certificate_plan::{
    advance_cursor, certificate_file_name, certificate_marker, completion_date, document_title,
    has_marker, is_recent, listing_since, prune_recent, record_uploaded, remove_pending,
    upsert_pending, PendingReason, DEFAULT_OVERLAP_MINUTES,
};
use crate::sync::Completion;

use super::count;
use super::error::JobError;
use super::failures::FailureLog;
use super::pdf_check::{check_pdf, PdfCheckError};

/// The ledger could not be persisted (e.g. a status write conflict).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LedgerError(pub String);

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
            .map_err(|_| LedgerError("ledger store poisoned".into()))?;
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
}

impl CertificateJobInput<'_> {
    /// The default overlap (10 minutes).
    pub fn default_overlap() -> Duration {
        Duration::minutes(DEFAULT_OVERLAP_MINUTES)
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
}

/// Whether the run goes on after a group of candidates.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// How handling one candidate ended.
enum Handled {
    /// Done (uploaded or recorded as pending): the cursor may pass it.
    Done,
    /// `pending` is full: stop here so the cursor does not pass what cannot be recorded.
    PendingFull,
}

/// Runs one CertificateSync pass. Returns `Err` when the run had to stop (credentials, listing,
/// an unconfirmed upload, a failed save); progress up to that point is already saved, and the
/// error is a [`JobError::Interrupted`] carrying the counters of the part that ran (so
/// `uploadedTotal` stays exact).
pub async fn run_certificate_sync(
    personio: &dyn PersonioApi,
    reteach: &dyn ReteachApi,
    input: &CertificateJobInput<'_>,
) -> Result<CertificateJobOutcome, JobError> {
    let mut run = Run {
        personio,
        reteach,
        input,
        ledger: input.ledger.clone(),
        summary: CertificateRunSummary {
            started_at: input.now,
            dry_run: input.dry_run,
            backfill: input.ledger.cursor.is_none(),
            ..Default::default()
        },
        failures: FailureLog::default(),
        uploaded_total_delta: 0,
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
    /// Steps 1–5 of the algorithm (see the module docs and DESIGN §4).
    async fn execute(&mut self) -> Result<(), JobError> {
        self.settle_in_flight().await?;
        let pending = self.reread_pending().await?;
        let pending_found = pending.len();
        self.summary.found = count(pending_found);
        if self.handle_in_order(pending).await? == Flow::Continue {
            // Listed completions handled by earlier passes of this run.
            let mut handled = 0usize;
            let mut after = None;
            loop {
                let batch = match self.next_batch(after.clone()).await {
                    Ok(batch) => batch,
                    Err(error) => {
                        // Earlier passes may have uploaded: save how far they got.
                        self.persist().await?;
                        return Err(error);
                    }
                };
                self.summary.found = count(pending_found + handled + batch.eligible());
                let more = batch.is_truncated();
                let candidates = batch.into_sorted();
                handled += candidates.len();
                after = candidates.last().map(ProcessingKey::of).or(after);
                if self.handle_in_order(candidates).await? == Flow::Stop || !more {
                    break;
                }
            }
        }
        prune_recent(&mut self.ledger, self.input.overlap);
        self.ledger.in_flight = None;
        self.persist().await
    }

    /// Step 3 for each candidate in order, moving the cursor over every handled one.
    async fn handle_in_order(&mut self, candidates: Vec<Completion>) -> Result<Flow, JobError> {
        for candidate in &candidates {
            if self.input.cancel.is_cancelled() {
                return Ok(Flow::Stop);
            }
            match self.handle(candidate).await? {
                Handled::Done => {
                    advance_cursor(&mut self.ledger, candidate.completed_at);
                    // Pruning as the cursor moves keeps every intermediate save small, even
                    // during a backfill of thousands of certificates.
                    prune_recent(&mut self.ledger, self.input.overlap);
                }
                Handled::PendingFull => {
                    self.failures.push(
                        None,
                        None,
                        "too many pending certificates; the rest waits for the next run",
                    );
                    return Ok(Flow::Stop);
                }
            }
        }
        Ok(Flow::Continue)
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

    /// Step 1: an upload of an earlier run was not confirmed. If Personio has the document (by
    /// marker) it counts as uploaded; otherwise it is simply a candidate again.
    async fn settle_in_flight(&mut self) -> Result<(), JobError> {
        let Some(in_flight) = self.ledger.in_flight.clone() else {
            return Ok(());
        };
        let documents = match self
            .personio
            .list_documents(&in_flight.personio_id, self.input.category_id)
            .await
        {
            Ok(documents) => documents,
            // The employee is gone, so the document cannot be there either.
            Err(PersonioError::NotFound { .. }) => Vec::new(),
            Err(source) => {
                return Err(JobError::Personio {
                    action: "could not check Personio for an interrupted certificate upload",
                    source,
                })
            }
        };
        if documents
            .iter()
            .any(|doc| has_marker(doc.comment.as_deref(), &in_flight.certificate_id))
        {
            tracing::info!(
                certificate_id = in_flight.certificate_id.as_str(),
                personio_id = in_flight.personio_id.as_str(),
                "interrupted certificate upload found in Personio; not uploading again"
            );
            self.summary.already_present += 1;
            self.uploaded_total_delta += 1;
            // The completion time is not in the ledger; the start of the upload is later, so the
            // entry stays at least as long as the overlap can return the certificate.
            record_uploaded(
                &mut self.ledger,
                &in_flight.certificate_id,
                None,
                in_flight.started_at,
            );
        }
        self.ledger.in_flight = None;
        self.persist().await
    }

    /// Step 2a: the pending certificates re-read (at most `MAX_PENDING`), without recent uploads,
    /// in processing order. Gone participations leave `pending` with a failure entry.
    async fn reread_pending(&mut self) -> Result<Vec<Completion>, JobError> {
        let mut candidates = Vec::with_capacity(self.ledger.pending.len());
        for pending in self.ledger.pending.clone() {
            match self.reteach.participation(&pending.participation_id).await {
                Ok(Some(completion)) => {
                    let uploaded = completion
                        .certificate_id
                        .as_deref()
                        .is_some_and(|id| is_recent(&self.ledger, id));
                    if uploaded {
                        remove_pending(&mut self.ledger, &pending.participation_id);
                    } else {
                        candidates.push(completion);
                    }
                }
                Ok(None) | Err(ReteachError::NotFound { .. }) => {
                    remove_pending(&mut self.ledger, &pending.participation_id);
                    self.summary.failed += 1;
                    self.failures.push(
                        None,
                        Some(pending.certificate_id.clone()),
                        "participation no longer exists in reteach",
                    );
                }
                Err(source) => {
                    return Err(JobError::Reteach {
                        action: "could not re-read a pending certificate in reteach",
                        source,
                    })
                }
            }
        }
        sort_candidates(&mut candidates);
        Ok(candidates)
    }

    /// Step 2b: one pass over the completions listed since the cursor (minus overlap), keeping
    /// the earliest `batch_size` not handled yet: not after `after` (earlier passes), not in
    /// `pending` (re-read above, or pended by an earlier pass) and not uploaded recently.
    async fn next_batch(
        &mut self,
        after: Option<ProcessingKey>,
    ) -> Result<CandidateBatch, JobError> {
        let since = listing_since(&self.ledger, self.input.overlap);
        let pending: HashSet<&str> = self
            .ledger
            .pending
            .iter()
            .map(|p| p.participation_id.as_str())
            .collect();
        let recent: HashSet<&str> = self
            .ledger
            .recent
            .iter()
            .map(|r| r.certificate_id.as_str())
            .collect();
        let mut batch = CandidateBatch::new(self.input.batch_size, after);
        let mut listing = self.reteach.completed_participations(since);
        let listed = async {
            while let Some(completion) = listing.try_next().await? {
                let handled = pending.contains(completion.participation_id.as_str())
                    || completion
                        .certificate_id
                        .as_deref()
                        .is_some_and(|id| recent.contains(id));
                if !handled {
                    batch.offer(completion);
                }
            }
            Ok(())
        };
        listed.await.map_err(|source| JobError::Reteach {
            action: "could not list completed courses in reteach",
            source,
        })?;
        Ok(batch)
    }

    fn pend(&mut self, completion: &Completion, reason: PendingReason) -> Handled {
        if upsert_pending(&mut self.ledger, completion, reason) {
            Handled::Done
        } else {
            Handled::PendingFull
        }
    }

    /// Step 3 for one certificate.
    async fn handle(&mut self, completion: &Completion) -> Result<Handled, JobError> {
        let (Some(certificate_id), Some(url)) = (
            completion.certificate_id.as_deref(),
            completion.certificate_url.as_deref(),
        ) else {
            self.summary.pending_pdf += 1;
            return Ok(self.pend(completion, PendingReason::PdfPending));
        };
        let Some(personio_id) = completion
            .customer_external_id
            .as_deref()
            .filter(|id| !id.is_empty())
        else {
            self.summary.unknown_employee += 1;
            self.failures.push(
                None,
                Some(certificate_id.to_string()),
                "reteach user has no Personio id yet",
            );
            return Ok(self.pend(completion, PendingReason::UnknownEmployee));
        };
        if self.input.dry_run {
            self.summary.uploaded += 1;
            return Ok(Handled::Done);
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
    ) -> Result<Handled, JobError> {
        // Intent first: never upload what the next run could not check for.
        self.ledger.in_flight = Some(InFlightCertificate {
            certificate_id: certificate_id.to_string(),
            personio_id: personio_id.to_string(),
            started_at: self.input.now,
        });
        self.persist().await?;

        let pdf = match self.reteach.download_certificate(url).await {
            Ok(pdf) => pdf,
            Err(ReteachError::NotFound { .. }) => {
                self.ledger.in_flight = None;
                self.summary.pending_pdf += 1;
                return Ok(self.pend(completion, PendingReason::PdfPending));
            }
            // An outage, or credentials reteach no longer accepts: every further download would
            // fail the same way, so the run stops (transient → backoff, credentials → Stalled)
            // instead of marking each certificate as refused.
            Err(source)
                if source.is_transient()
                    || matches!(
                        source,
                        ReteachError::Unauthorized { .. } | ReteachError::Config(_)
                    ) =>
            {
                self.ledger.in_flight = None;
                self.persist().await?;
                return Err(JobError::Reteach {
                    action: "could not download a certificate from reteach",
                    source,
                });
            }
            Err(refused) => {
                self.ledger.in_flight = None;
                self.summary.failed += 1;
                self.failures.push(
                    Some(personio_id.to_string()),
                    Some(certificate_id.to_string()),
                    download_refusal_reason(&refused),
                );
                return Ok(self.pend(completion, PendingReason::Rejected));
            }
        };
        let pdf = match check_pdf(pdf).await {
            Ok(pdf) => pdf,
            Err(PdfCheckError::Io(error)) => {
                self.ledger.in_flight = None;
                self.persist().await?;
                return Err(JobError::Reteach {
                    action: "could not download a certificate from reteach",
                    source: ReteachError::Unavailable {
                        message: error.to_string(),
                    },
                });
            }
            Err(refused) => {
                self.ledger.in_flight = None;
                self.summary.failed += 1;
                self.failures.push(
                    Some(personio_id.to_string()),
                    Some(certificate_id.to_string()),
                    refused.to_string(),
                );
                return Ok(self.pend(completion, PendingReason::Rejected));
            }
        };

        let upload = DocumentUpload {
            employee_id: personio_id.to_string(),
            category_id: self.input.category_id,
            title: document_title(&self.input.title_template, &completion.course_name),
            date: completion_date(completion.completed_at, self.input.tz),
            comment: certificate_marker(certificate_id),
            file_name: certificate_file_name(certificate_id),
            pdf,
        };
        match self.personio.upload_document(upload).await {
            Ok(document_id) => {
                tracing::info!(
                    certificate_id,
                    personio_id,
                    document_id = document_id.as_str(),
                    "certificate uploaded to Personio"
                );
                self.ledger.in_flight = None;
                record_uploaded(
                    &mut self.ledger,
                    certificate_id,
                    Some(&completion.participation_id),
                    completion.completed_at,
                );
                self.summary.uploaded += 1;
                self.uploaded_total_delta += 1;
                Ok(Handled::Done)
            }
            Err(PersonioError::NotFound { .. }) => {
                // Not synced to Personio yet (or a stale id): retried every run.
                self.ledger.in_flight = None;
                self.summary.unknown_employee += 1;
                self.failures.push(
                    Some(personio_id.to_string()),
                    Some(certificate_id.to_string()),
                    "employee not found in Personio",
                );
                Ok(self.pend(completion, PendingReason::UnknownEmployee))
            }
            Err(PersonioError::Rejected { .. }) => {
                self.ledger.in_flight = None;
                self.summary.failed += 1;
                self.failures.push(
                    Some(personio_id.to_string()),
                    Some(certificate_id.to_string()),
                    "Personio rejected the document (file type, size or title)",
                );
                Ok(self.pend(completion, PendingReason::Rejected))
            }
            Err(
                source @ PersonioError::Unavailable {
                    maybe_applied: true,
                    ..
                },
            )
            | Err(source @ PersonioError::Malformed { .. }) => {
                // The document may exist: keep the intent, the next run checks the marker first.
                Err(JobError::Personio {
                    action: "could not confirm a certificate upload to Personio; the next run checks for it before retrying",
                    source,
                })
            }
            Err(source) => {
                self.ledger.in_flight = None;
                self.persist().await?;
                Err(JobError::Personio {
                    action: "could not upload a certificate to Personio",
                    source,
                })
            }
        }
    }
}

/// Why reteach refused a certificate download. Fixed sentences only: the download carries no
/// submitted values, but reteach's own message is not copied into status either.
fn download_refusal_reason(error: &ReteachError) -> &'static str {
    if let Some(reason) = error.download_refusal() {
        return reason;
    }
    match error {
        ReteachError::Rejected { message, .. } if message.contains("not a PDF") => {
            "certificate file is not a PDF"
        }
        ReteachError::Rejected { message, .. } if message.contains("not https") => {
            "reteach refused the certificate download: the certificate URL is not https"
        }
        ReteachError::Forbidden { .. } => {
            "reteach refused the certificate download: the app lacks access to it"
        }
        _ => "reteach refused the certificate download",
    }
}

#[cfg(test)]
#[path = "certificate_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "certificate_batch_tests.rs"]
mod batch_tests;
