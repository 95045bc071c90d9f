//! `CertificateSync`: upload course certificates from reteach into Personio on an interval.

use chrono::{DateTime, Utc};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::capability::{capabilities_schema, CapabilityCheck};
use super::common::{conditions_schema, Condition, LocalObjectReference, RecordFailure};

/// Uploads each course certificate (PDF) earned in reteach as a document of the employee in Personio,
/// exactly once. The first run uploads every certificate issued in the past; later runs only new ones.
/// Starts only once the referenced EmployeeSync has succeeded, and reuses its credentials.
// Printer columns repeat `type_ = "string"`/`"date"` on purpose.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "sync.reteach.io",
    version = "v1alpha1",
    kind = "CertificateSync",
    namespaced,
    status = "CertificateSyncStatus",
    shortname = "csync",
    category = "reteach",
    doc = "Uploads course certificates from reteach into the employees' Personio files, exactly once.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    printcolumn(name = "Interval", type_ = "string", json_path = ".spec.interval"),
    printcolumn(name = "Last Sync", type_ = "date", json_path = ".status.lastSyncTime"),
    printcolumn(
        name = "Uploaded",
        type_ = "integer",
        json_path = ".status.uploadedTotal",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSyncSpec {
    /// How often to look for new certificates, as a Go-style duration. Minimum `1m`. Default `30m`.
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub interval: String,
    /// Stop syncing while true. Status is kept.
    #[serde(default)]
    pub suspend: bool,
    /// Report what would be uploaded, upload nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The EmployeeSync (same namespace) whose employees and credentials this sync uses. Nothing is
    /// uploaded until it has succeeded once.
    pub employee_sync_ref: LocalObjectReference,
    /// The Personio document category the certificates go into; it must exist.
    pub document_category: DocumentCategoryRef,
    /// Title of the Personio document; `{course}` is replaced by the course name. At most 255
    /// characters after substitution (longer titles are shortened).
    #[serde(default = "default_title")]
    #[schemars(length(min = 1, max = 255))]
    pub title: String,
}

/// A Personio document category, by id or by exact name (exactly one of the two).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = require_id_or_name)]
pub struct DocumentCategoryRef {
    /// Category id as shown by Personio's API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub id: Option<i64>,
    /// Exact category name, e.g. `Learning Certificates`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub name: Option<String>,
}

/// What the operator observed and did; written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSyncStatus {
    /// The `metadata.generation` the status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (always; reason `WaitingForEmployeeSync` until the EmployeeSync has succeeded),
    /// `Reconciling` and `Stalled` (only while true).
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Start of the latest run, successful or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<DateTime<Utc>>,
    /// Start of the latest successful run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_sync_time: Option<DateTime<Utc>>,
    /// When the next run is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_sync_time: Option<DateTime<Utc>>,
    /// The last `reconcile.fluxcd.io/requestedAt` value acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// The resolved Personio document category id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_id: Option<i64>,
    /// Counters of the latest run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<CertificateRunSummary>,
    /// Certificates uploaded since this resource was created.
    #[serde(default)]
    pub uploaded_total: i64,
    /// Certificates skipped or failed in the latest run (at most 50; ids only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<RecordFailure>,
    /// The exactly-once ledger: watermark, the upload in flight, recent uploads and pending
    /// certificates. Persisted before every upload.
    #[serde(default)]
    pub ledger: CertificateLedgerStatus,
    /// Runs that failed in a row; drives the retry backoff.
    #[serde(default)]
    pub consecutive_failures: i32,
    /// What the read-only preflight probes found before the first run (the rows of
    /// `reteach-personio-operator preflight`): each upstream right the sync needs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "capabilities_schema")]
    pub capabilities: Vec<CapabilityCheck>,
}

/// Exactly-once bookkeeping of a CertificateSync (see README "Certificates exactly once").
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateLedgerStatus {
    /// Completion-time watermark: every certificate completed before it is uploaded or listed in
    /// `pending`. Absent until the backfill has finished once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<DateTime<Utc>>,
    /// The certificate being uploaded right now. After a crash it is checked against Personio's
    /// document list (by the marker in the document comment) before any new upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<InFlightCertificate>,
    /// Certificates uploaded whose completion time lies within the overlap window before `cursor`;
    /// they are not uploaded again when the window is re-read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<RecentUpload>,
    /// Certificates seen but not uploadable yet (PDF still generating, employee unknown); retried
    /// every run, never dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingCertificate>,
}

/// The certificate whose upload has started but not been confirmed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InFlightCertificate {
    /// reteach certificate id.
    pub certificate_id: String,
    /// Personio employee id the document belongs to.
    pub personio_id: String,
    /// When the upload started.
    pub started_at: DateTime<Utc>,
}

/// A certificate uploaded recently (within the overlap window before the cursor).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecentUpload {
    /// reteach certificate id.
    pub certificate_id: String,
    /// Completion time of the course.
    pub completed_at: DateTime<Utc>,
}

/// A certificate waiting for a condition to clear before it can be uploaded.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingCertificate {
    /// reteach certificate id (or participation id while no certificate exists yet).
    pub certificate_id: String,
    /// reteach participation id, used to re-read it.
    pub participation_id: String,
    /// Completion time of the course.
    pub completed_at: DateTime<Utc>,
    /// `PdfPending` or `UnknownEmployee`.
    pub reason: String,
}

/// Counters of one CertificateSync run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRunSummary {
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When the run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Whether this run only planned (`dryRun`).
    #[serde(default)]
    pub dry_run: bool,
    /// Whether this run was the first-time backfill of all past certificates.
    #[serde(default)]
    pub backfill: bool,
    /// Completed certificates considered in this run.
    pub found: i64,
    /// Documents uploaded to Personio (with `dryRun`: that would be uploaded).
    pub uploaded: i64,
    /// Certificates found already present in Personio (e.g. after a crash mid-upload).
    pub already_present: i64,
    /// Certificates whose PDF is not generated yet; retried later.
    pub pending_pdf: i64,
    /// Certificates of users with no Personio id; retried later.
    pub unknown_employee: i64,
    /// Certificates that failed for another reason.
    pub failed: i64,
}

/// Lets the apiserver enforce "exactly one of `id` and `name`". A `oneOf` holding only `required`
/// (no types) keeps the schema structural.
fn require_id_or_name(schema: &mut schemars::Schema) {
    schema.insert(
        "oneOf".into(),
        serde_json::json!([{"required": ["id"]}, {"required": ["name"]}]),
    );
}

fn default_interval() -> String {
    "30m".into()
}
fn default_title() -> String {
    "Certificate: {course}".into()
}
