//! Where a certificate run persists its ledger before every upload ([`LedgerStore`]): the
//! controller's status apply in production, [`MemoryLedgerStore`] in the demo, bench and tests.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::api::CertificateLedgerStatus;

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
