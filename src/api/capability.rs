//! `status.capabilities`: what the preflight probes found before a resource's first run, so a
//! missing upstream right is named before anything is half done.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One upstream capability the sync needs, as last probed (read-only) by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityCheck {
    /// Capability, e.g. `personio-attributes`, `personio-document-listing`,
    /// `reteach-certificate-download` (the rows of `reteach-personio-operator preflight`).
    pub name: String,
    /// `Ok`, `Missing` or `Unknown`.
    #[schemars(extend("enum" = ["Ok", "Missing", "Unknown"]))]
    pub state: String,
    /// Whether the sync stalls without it (`true`) or only runs degraded (`false`).
    pub required: bool,
    /// What was seen and, unless `Ok`, what to do. Ids only, never names or secret values.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(transform = super::schema::without_default)]
    pub message: String,
}

/// Schema of a capabilities array: a list merged by `name` under server-side apply.
pub fn capabilities_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    super::schema::list_map_schema::<CapabilityCheck>(generator, "name")
}
