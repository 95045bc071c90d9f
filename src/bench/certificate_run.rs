//! One CertificateSync run as the benchmark measures it, built one way for every scenario: the
//! category is resolved first (the controller does that before each run, and the request
//! counts), then the job runs from a ledger into a [`MemoryLedgerStore`].

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::child::TIME_ZONE;
use crate::api::{CertificateLedgerStatus, CertificateSyncSpec, DocumentCategoryRef};
use crate::jobs::{
    resolve_category, run_certificate_sync, CertificateJobInput, CertificateJobOutcome,
    CertificateRunRequest, MemoryLedgerStore,
};
use crate::personio::PersonioApi;
use crate::reteach::ReteachApi;

/// What a benchmark certificate run starts from.
pub struct CertificateRun<'a> {
    /// Start of the run.
    pub now: DateTime<Utc>,
    /// The Personio document category (`spec.documentCategory.id`).
    pub category_id: i64,
    /// The ledger the run starts from (default: a new resource).
    pub ledger: Option<&'a CertificateLedgerStatus>,
    /// A human asked for the run: a full pass that retries set-aside certificates.
    pub requested: bool,
}

impl CertificateRun<'_> {
    /// Runs it; returns the outcome and the category id the run resolved.
    pub async fn run(
        self,
        personio: &dyn PersonioApi,
        reteach: &dyn ReteachApi,
        store: &MemoryLedgerStore,
    ) -> anyhow::Result<(CertificateJobOutcome, i64)> {
        let wanted = DocumentCategoryRef {
            id: Some(self.category_id),
            name: None,
        };
        let category_id = resolve_category(personio, &wanted).await?;
        let spec: CertificateSyncSpec = serde_json::from_value(serde_json::json!({
            "employeeSyncRef": {"name": "personio"},
            "documentCategory": {"id": category_id},
        }))?;
        let request = CertificateRunRequest {
            now: self.now,
            tz: TIME_ZONE,
            category_id,
            full_resync_interval: chrono::Duration::hours(24),
            requested: self.requested,
            linked_since: None,
        };
        let ledger = self.ledger.cloned().unwrap_or_default();
        let input =
            CertificateJobInput::new(&spec, &ledger, request, store, CancellationToken::new());
        let outcome = run_certificate_sync(personio, reteach, &input).await?;
        Ok((outcome, category_id))
    }
}
