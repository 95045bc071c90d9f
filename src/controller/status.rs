//! Status writes: the main status by server-side apply, the certificate ledger by fenced JSON
//! patches. The operator never writes `spec`.

use async_trait::async_trait;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::api::{CertificateLedgerStatus, CertificateSync};
use crate::jobs::{LedgerError, LedgerStore};

/// Field manager of every status patch (and of the events the recorder writes).
pub const FIELD_MANAGER: &str = "reteach-personio-operator";

/// Field manager of the certificate ledger, kept apart from the rest of the status so that the
/// frequent ledger checkpoints never remove fields the main status apply owns (and vice versa).
pub const LEDGER_FIELD_MANAGER: &str = "reteach-personio-operator-ledger";

/// Applies `status` (all fields this manager owns; omitted ones are removed), leaving out the
/// top-level status keys in `exclude` (owned by another field manager).
pub async fn apply_status<K>(
    api: &Api<K>,
    name: &str,
    status: &impl Serialize,
    exclude: &[&str],
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut status = serde_json::to_value(status).map_err(kube::Error::SerdeError)?;
    if let Value::Object(map) = &mut status {
        for key in exclude {
            map.remove(*key);
        }
    }
    apply_raw(api, name, FIELD_MANAGER, status).await
}

/// Applies a partial status under `manager`.
pub async fn apply_raw<K>(
    api: &Api<K>,
    name: &str,
    manager: &str,
    status: Value,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}

/// Persists the ledger in `status.ledger` before every upload, together with
/// `status.uploadedTotal` so far: a process killed mid-run leaves an exact total behind (the main
/// status apply writes the same value when the run ends).
///
/// Fencing: a run first claims the ledger with a token of its own (`ledger.writer`); every later
/// write is a JSON patch whose `test` operation requires that token still to be there. A replica
/// that lost its Lease while frozen cannot write over the ledger of the run that took over.
pub struct StatusLedger {
    pub api: Api<CertificateSync>,
    pub name: String,
    /// `status.uploadedTotal` when the run started.
    pub uploaded_before: i64,
    /// This run's token.
    pub writer: String,
}

impl StatusLedger {
    /// Makes this run the ledger's writer (unconditionally: only the Lease holder runs) and
    /// returns the ledger as it stands after the claim.
    pub async fn claim(&self) -> Result<CertificateLedgerStatus, kube::Error> {
        let patch = json!({"status": {"ledger": {"writer": self.writer}}});
        self.api
            .patch_status(
                &self.name,
                &PatchParams::apply(LEDGER_FIELD_MANAGER),
                &Patch::Merge(&patch),
            )
            .await
            .map(|sync| sync.status.unwrap_or_default().ledger)
    }
}

#[async_trait]
impl LedgerStore for StatusLedger {
    async fn save(
        &self,
        ledger: &CertificateLedgerStatus,
        uploaded: i64,
    ) -> Result<(), LedgerError> {
        let mut ledger = ledger.clone();
        ledger.writer = Some(self.writer.clone());
        let operations = json!([
            {"op": "test", "path": "/status/ledger/writer", "value": self.writer},
            {"op": "add", "path": "/status/ledger", "value": ledger},
            {"op": "add", "path": "/status/uploadedTotal",
             "value": self.uploaded_before.saturating_add(uploaded)},
        ]);
        let patch: json_patch::Patch =
            serde_json::from_value(operations).map_err(|e| LedgerError::Write(e.to_string()))?;
        let params = PatchParams {
            field_manager: Some(LEDGER_FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        match self
            .api
            .patch_status(&self.name, &params, &Patch::<()>::Json(patch))
            .await
        {
            Ok(_) => Ok(()),
            // The `test` failed: another run has claimed the ledger.
            Err(kube::Error::Api(status)) if status.code == 422 || status.code == 409 => {
                Err(LedgerError::Fenced)
            }
            Err(error) => Err(LedgerError::Write(error.to_string())),
        }
    }
}
