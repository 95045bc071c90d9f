//! The data of the exactly-once ledger of a CertificateSync, persisted as `status.ledger` (the
//! API re-exports these types; the operations are methods of [`CertificateLedger`] in
//! `certificate_ledger`).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// Exactly-once bookkeeping of a CertificateSync (see docs/certificates.md).
///
/// Its size is bounded by design (every list has a fixed maximum), so it stays far below etcd's
/// object size limit whatever the academy holds. The truth about what was uploaded lives in
/// Personio (the marker in each document's comment); the ledger only saves requests.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct CertificateLedger {
    /// Completion-time watermark: every completion up to it (ties broken by
    /// `cursorParticipationId`) has been handled once. Absent until the first full pass has
    /// finished; never later than the start of the run that set it.
    pub cursor: Option<DateTime<Utc>>,
    /// Participation id of the last completion handled at `cursor`.
    #[schemars(length(max = 128))]
    pub cursor_participation_id: Option<String>,
    /// The certificate being uploaded right now. After a crash it is checked against Personio's
    /// document list (by the marker in the document comment) before any new upload.
    pub in_flight: Option<InFlightCertificate>,
    /// Certificates handled recently (within the overlap window before the cursor), so that
    /// re-reading the window costs no Personio requests. At most 128 entries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub recent: Vec<RecentUpload>,
    /// Set when `recent` overflowed (a bulk import): completions of the overlap window before
    /// this key are left to the next full pass instead of being checked in Personio every run.
    pub recent_from: Option<CompletionKey>,
    /// Certificates waiting to be retried: the PDF is not generated yet, or an attempt failed.
    /// At most 100 entries; what does not fit is found again by the next full pass.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub pending: Vec<PendingCertificate>,
    /// Certificates set aside after `spec.maxAttempts` failed attempts. They are not retried
    /// until a run is requested (`reconcile.fluxcd.io/requestedAt`). At most 50 entries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub set_aside: Vec<SetAsideCertificate>,
    /// A full pass in progress: every completion is compared with the markers in Personio.
    pub full_pass: Option<FullPassProgress>,
    /// When the last full pass started that has finished since.
    pub last_full_pass_time: Option<DateTime<Utc>>,
    /// Token of the run that owns the ledger; a replica that lost its Lease cannot write over a
    /// newer run's ledger (every checkpoint is conditional on it).
    #[schemars(length(max = 253))]
    pub writer: Option<String>,
}

/// Where a completion sorts: by completion time, then participation id.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompletionKey {
    /// Completion time of the course.
    pub completed_at: DateTime<Utc>,
    /// reteach participation id.
    #[schemars(length(max = 128))]
    pub participation_id: String,
}

/// A full pass in progress.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FullPassProgress {
    /// When the pass started.
    pub started_at: DateTime<Utc>,
    /// The last completion the pass has handled; an interrupted pass resumes after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<CompletionKey>,
}

/// The certificate whose upload has started but not been confirmed.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InFlightCertificate {
    /// reteach certificate id.
    pub certificate_id: String,
    /// Personio employee id the document belongs to.
    pub personio_id: String,
    /// When the upload started.
    pub started_at: DateTime<Utc>,
    /// reteach participation id (absent in ledgers written by older versions).
    pub participation_id: Option<String>,
    /// Completion time of the course (absent in ledgers written by older versions).
    pub completed_at: Option<DateTime<Utc>>,
    /// Writer token of the run that started the upload. Only that run treats the upload as its
    /// own; any other run waits it out before claiming the ledger (absent in ledgers written by
    /// older versions, and in runs without a writer token: demo, benchmark).
    #[schemars(length(max = 253))]
    pub uploader: Option<String>,
}

/// A certificate handled recently (within the overlap window before the cursor).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecentUpload {
    /// reteach certificate id.
    pub certificate_id: String,
    /// Completion time of the course.
    pub completed_at: DateTime<Utc>,
    /// reteach participation id (absent in ledgers written by older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participation_id: Option<String>,
}

/// A certificate waiting to be retried.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingCertificate {
    /// reteach certificate id (or participation id while no certificate exists yet).
    pub certificate_id: String,
    /// reteach participation id, used to re-read it.
    pub participation_id: String,
    /// Completion time of the course.
    pub completed_at: DateTime<Utc>,
    /// `PdfPending` (waiting for reteach) or `Failed` (an attempt failed; see `lastError`).
    pub reason: String,
    /// Failed attempts so far (a pending PDF is no failure).
    #[serde(default)]
    pub attempts: i32,
    /// Why the last attempt failed (a fixed sentence, no personal data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A certificate set aside after repeated failures; it waits for a human.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetAsideCertificate {
    /// reteach certificate id.
    pub certificate_id: String,
    /// reteach participation id.
    pub participation_id: String,
    /// Personio employee id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personio_id: Option<String>,
    /// Why the last attempt failed (a fixed sentence, no personal data).
    pub reason: String,
    /// Failed attempts.
    pub attempts: i32,
    /// When it was set aside.
    pub since: DateTime<Utc>,
}
