//! What one certificate run takes and gives back: its input (built one way, from spec, ledger
//! and a [`CertificateRunRequest`]) and its outcome.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use crate::api::{
    CertificateLedgerStatus, CertificateRunSummary, CertificateSyncSpec, RecordFailure,
    SetAsideCertificate,
};
use crate::sync::candidate_batch::DEFAULT_BATCH_SIZE;
use crate::sync::certificate_plan::DEFAULT_OVERLAP_MINUTES;

use super::fence::Fence;
use super::ledger_store::LedgerStore;

/// Everything one run needs besides the clients.
pub struct CertificateJobInput<'a> {
    /// Start of the run (recorded as the start of an upload in flight).
    pub now: DateTime<Utc>,
    /// Company time zone: the document date is the completion date there.
    pub tz: Tz,
    /// Count what would be uploaded; save and upload nothing.
    pub dry_run: bool,
    /// Resolved Personio document category (see [`resolve_category`](super::resolve_category)).
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
