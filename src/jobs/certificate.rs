//! STUB
use crate::api::{
    CertificateLedgerStatus, CertificateRunSummary, DocumentCategoryRef, RecordFailure,
};
use crate::personio::PersonioApi;
use crate::reteach::ReteachApi;
use chrono::{DateTime, Utc};
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Config(String),
}
impl From<JobError> for crate::controller::failure::RunFailure {
    fn from(e: JobError) -> Self {
        Self::stalled("X", e.to_string())
    }
}
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LedgerError(pub String);
#[async_trait::async_trait]
pub trait LedgerStore: Send + Sync {
    async fn save(
        &self,
        ledger: &CertificateLedgerStatus,
        uploaded: i64,
    ) -> Result<(), LedgerError>;
}
pub struct CertificateJobInput {
    pub now: DateTime<Utc>,
    pub tz: chrono_tz::Tz,
    pub dry_run: bool,
    pub category_id: i64,
    pub title_template: String,
    pub overlap: chrono::Duration,
    pub ledger: CertificateLedgerStatus,
}
pub struct CertificateJobOutcome {
    pub summary: CertificateRunSummary,
    pub failures: Vec<RecordFailure>,
    pub ledger: CertificateLedgerStatus,
}
pub async fn resolve_category(
    _p: &dyn PersonioApi,
    _c: &DocumentCategoryRef,
) -> Result<i64, JobError> {
    Err(JobError::Config("stub".into()))
}
pub async fn run_certificate_sync(
    _r: &dyn ReteachApi,
    _p: &dyn PersonioApi,
    _s: &dyn LedgerStore,
    _i: &CertificateJobInput,
    _c: tokio_util::sync::CancellationToken,
) -> Result<CertificateJobOutcome, JobError> {
    Err(JobError::Config("stub".into()))
}
