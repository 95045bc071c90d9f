//! How a CertificateSync run takes its ledger: it waits out another process's upload that may
//! still land (the [`handover`](super::handover) rule), claims the ledger with a writer token of
//! its own, and stops if a checkpoint slipped in between (fenced).

use kube::{Api, ResourceExt};

use super::handover::{process_writer_prefix, same_checkpoint};
use super::reconcile::RunStop;
use super::status::StatusLedger;
use crate::api::{CertificateSync, CertificateSyncStatus};
use crate::jobs::run_failure::RunFailure;
use crate::jobs::{CertificateJobOutcome, Reason};

use super::context::Context;

/// Claims the ledger for this run once no other process's upload may still land (`handover`);
/// the claim is fenced: a checkpoint another process wrote after this run read the ledger ends
/// the run. A dry run claims nothing.
pub async fn claim_ledger(
    ctx: &Context,
    api: &Api<CertificateSync>,
    sync: &CertificateSync,
    previous: &CertificateSyncStatus,
) -> Result<StatusLedger, RunStop<CertificateJobOutcome>> {
    let resource = format!(
        "{}/{}",
        sync.namespace().unwrap_or_default(),
        sync.name_any()
    );
    let writer = writer_token();
    if let Some(wait) = ctx
        .handover
        .wait(&resource, &previous.ledger, &writer, ctx.clock.now())
    {
        tracing::info!(
            "another process may still be uploading a certificate of this resource; taking it over once that has ended"
        );
        return Err(RunStop::Later(wait));
    }
    let store = StatusLedger {
        api: api.clone(),
        name: sync.name_any(),
        uploaded_before: previous.uploaded_total,
        writer,
    };
    if !sync.spec.dry_run {
        let claimed = store
            .claim()
            .await
            .map_err(|e| RunFailure::transient(Reason::StatusWriteFailed, e.to_string()))?;
        if !same_checkpoint(&previous.ledger, &claimed) {
            return Err(RunStop::Fenced);
        }
    }
    Ok(store)
}

/// A token naming this run: the pod (or process) and a random part.
fn writer_token() -> String {
    format!("{}{:016x}", process_writer_prefix(), rand::random::<u64>())
}
