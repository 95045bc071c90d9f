//! Status writes by server-side apply. The operator never writes `spec`.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

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
