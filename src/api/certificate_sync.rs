//! `CertificateSync`: upload course certificates from reteach into Personio on an interval.

use chrono::{DateTime, Utc};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

pub use crate::sync::certificate_ledger_state::{
    CertificateLedger as CertificateLedgerStatus, CompletionKey, FullPassProgress,
    InFlightCertificate, PendingCertificate, RecentUpload, SetAsideCertificate,
};

use super::common::{LocalObjectReference, SyncStatusCommon};

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
    /// How often to look for new certificates, as a Go-style duration. Minimum `1m`, maximum
    /// `24h`. Default `30m`.
    #[serde(default = "default_interval")]
    #[schemars(schema_with = "crate::api::duration::interval_schema")]
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
    /// How often every completion in reteach is compared with the documents in Personio (by the
    /// marker in each document's comment), as a Go-style duration. Catches back-dated and late
    /// completions, and certificates of users linked to Personio since. A requested run
    /// (`reconcile.fluxcd.io/requestedAt`) is always a full pass. Minimum `1h`, maximum `720h`,
    /// default `24h`.
    #[serde(default = "default_full_resync_interval")]
    #[schemars(schema_with = "crate::api::duration::full_resync_interval_schema")]
    pub full_resync_interval: String,
    /// Failed attempts (across runs) after which a certificate is set aside until a run is
    /// requested. Default 5.
    #[serde(default = "default_max_attempts")]
    #[schemars(range(min = 1, max = 100))]
    pub max_attempts: i32,
    /// Optional: reteach REST hooks (`participation.completed`, `certificate.processed`) wake the
    /// next incremental run at once. See docs/webhooks.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<super::WebhookSpec>,
}

/// A Personio document category, by id or by exact name (exactly one of the two).
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = require_id_or_name)]
pub struct DocumentCategoryRef {
    /// Category id as shown by Personio's API.
    #[schemars(range(min = 1, max = 9_007_199_254_740_991i64))]
    pub id: Option<i64>,
    /// Exact category name, e.g. `Learning Certificates`.
    #[schemars(length(min = 1, max = 255))]
    pub name: Option<String>,
}

/// What the operator observed and did; written only by the operator.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
#[schemars(transform = super::common::status_defaults)]
pub struct CertificateSyncStatus {
    /// Fields both kinds share (conditions, times, observed generation, backoff counter,
    /// capabilities, failures).
    #[serde(flatten)]
    pub common: SyncStatusCommon,
    /// The resolved Personio document category id.
    pub category_id: Option<i64>,
    /// Counters of the latest run.
    pub last_run: Option<CertificateRunSummary>,
    /// Certificates uploaded since this resource was created.
    pub uploaded_total: i64,
    /// The exactly-once ledger: watermark, the upload in flight, recent uploads and pending
    /// certificates. Persisted before every upload.
    pub ledger: CertificateLedgerStatus,
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
    /// Certificates of reteach users with no Personio id (external trainers, guests): not owed
    /// to Personio until the user is linked; found by the next full pass then.
    pub unknown_employee: i64,
    /// Certificates whose attempt failed in this run; retried in later runs.
    pub failed: i64,
    /// Whether this run compared every completion with the markers in Personio (a full pass,
    /// or part of one).
    #[serde(default)]
    pub full_pass: bool,
    /// Certificates set aside in this run after their last allowed attempt.
    #[serde(default)]
    pub set_aside: i64,
    /// Completions dated in the future (reteach's clock ahead, or a data error); handled once
    /// their time has come.
    #[serde(default)]
    pub deferred: i64,
    /// Certificates that could not be checked against Personio's document list (listing
    /// unavailable); neither uploaded nor given up.
    #[serde(default)]
    pub unverified: i64,
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
fn default_full_resync_interval() -> String {
    "24h".into()
}
fn default_max_attempts() -> i32 {
    5
}
fn default_title() -> String {
    "Certificate: {course}".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RecordFailure;

    /// The operator is upgraded in place: a status written by one version is read by the other, so
    /// absent optional fields stay absent (never `null`) and a missing field reads as its default.
    #[test]
    fn status_wire_format_leaves_out_what_is_absent() {
        let status = CertificateSyncStatus::default();
        let json = serde_json::to_value(&status).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"conditions": [], "consecutiveFailures": 0, "uploadedTotal": 0, "ledger": {}})
        );
        let read: CertificateSyncStatus =
            serde_json::from_str("{}").expect("reads an empty status");
        assert_eq!(read, status);

        let failure = RecordFailure {
            personio_id: None,
            certificate_id: Some("c-1".into()),
            reason: "no PDF".into(),
        };
        let json = serde_json::to_value(&failure).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"certificateId": "c-1", "reason": "no PDF"})
        );
        let read: RecordFailure = serde_json::from_value(
            serde_json::json!({"personioId": null, "certificateId": "c-1", "reason": "no PDF"}),
        )
        .expect("reads an explicit null");
        assert_eq!(read, failure);
    }
}
