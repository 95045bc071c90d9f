//! Sharding on the platform, as Flux does it: several Deployments of the operator, each watching
//! only the resources whose label [`SHARD_LABEL`] names its shard (`--watch-label-selector
//! sync.reteach.io/shard=b`), and a default shard for every resource without it
//! (`!sync.reteach.io/shard`). Moving a resource is relabelling it: the old shard's watch reports
//! it gone and the new shard's watch reports it added; the run state travels in its status (the
//! certificate ledger and its in-flight entry included), so the new shard carries on where the
//! old one stopped, and an upload the old shard had in flight is checked against Personio first.

use kube::api::ListParams;
use kube::{Api, Client};

use crate::api::EmployeeSync;

/// Label that assigns a resource to a shard. Give both resources of an academy the same value.
pub const SHARD_LABEL: &str = "sync.reteach.io/shard";

/// Fails at start-up, with the apiserver's reason, when `selector` is not a valid label selector
/// (otherwise every watch would fail and retry forever).
pub async fn check_label_selector(client: &Client, selector: &str) -> anyhow::Result<()> {
    let probe = ListParams::default().labels(selector).limit(1);
    match Api::<EmployeeSync>::all(client.clone())
        .list_metadata(&probe)
        .await
    {
        Err(kube::Error::Api(status)) if status.code == 400 => anyhow::bail!(
            "--watch-label-selector {selector:?} is not a valid label selector: {}",
            status.message
        ),
        // Anything else (RBAC limited to namespaces, a flaky apiserver) is not the selector's
        // fault; the watches report it.
        _ => Ok(()),
    }
}
