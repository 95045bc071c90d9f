//! Types shared by both custom resources: durations, Secret references, conditions.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::schema::{list_map_schema, without_default};

/// Go-style duration as used by Flux (`30s`, `5m`, `1h30m`): one or more `<number><unit>` with the
/// units `ms`, `s`, `m`, `h`.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// Name of an object another field refers to (DNS-1123 subdomain, as Kubernetes requires of Secret
/// and custom resource names).
pub const OBJECT_NAME_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// Longest object name Kubernetes accepts.
pub const MAX_OBJECT_NAME_LENGTH: u32 = 253;
/// A key of a Secret's `data`, as Kubernetes allows them.
pub const SECRET_KEY_PATTERN: &str = r"^[-._a-zA-Z0-9]+$";
/// An `http(s)` base URL: scheme, host (optionally with port) and an optional path; no user
/// info (credentials do not belong in a URL), no query, no fragment.
pub const BASE_URL_PATTERN: &str = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s?#@]*)?$";
/// Longest base URL accepted.
pub const MAX_BASE_URL_LENGTH: u32 = 512;

/// A `Ready`, `Reconciling` or `Stalled` condition, following the Kubernetes API conventions.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type: `Ready` (always present), `Reconciling` or `Stalled` (present only while true).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One-word CamelCase reason, e.g. `Succeeded`, `SecretNotFound`, `WaitingForEmployeeSync`.
    pub reason: String,
    /// Human-readable explanation; for errors it says what to fix.
    // Omitted when empty: the v1.20 test apiserver reads `""` in a custom resource as `null` and
    // rejects the whole status write ("must be of type string").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(transform = without_default)]
    pub message: String,
    /// When the condition last changed its status.
    pub last_transition_time: DateTime<Utc>,
    /// The `metadata.generation` the condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The status fields both kinds share, declared once and flattened into each kind's status (the
/// generated schema lists them as before).
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct SyncStatusCommon {
    /// The `metadata.generation` the status was computed for; `-1` until the operator has looked at
    /// a new object.
    pub observed_generation: Option<i64>,
    /// `Ready` (always), `Reconciling` and `Stalled` (only while true). A CertificateSync is
    /// `Ready=False` with reason `WaitingForEmployeeSync` until its EmployeeSync has succeeded.
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Start of the latest run, successful or not.
    pub last_sync_time: Option<DateTime<Utc>>,
    /// Start of the latest successful run.
    pub last_successful_sync_time: Option<DateTime<Utc>>,
    /// When the next run is due.
    pub next_sync_time: Option<DateTime<Utc>>,
    /// The last `reconcile.fluxcd.io/requestedAt` value acted upon.
    pub last_handled_reconcile_at: Option<String>,
    /// Runs that failed in a row; drives the retry backoff.
    pub consecutive_failures: i32,
    /// What the read-only preflight probes found before the first run (the rows of
    /// `reteach-personio-operator preflight`): each upstream right the sync needs, and for an
    /// EmployeeSync each Personio attribute.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::capability::capabilities_schema")]
    pub capabilities: Vec<super::capability::CapabilityCheck>,
    /// Records the latest run skipped or failed (at most 50; ids only): employees of an
    /// EmployeeSync, certificates of a CertificateSync.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<RecordFailure>,
}

/// Gives every new object `status: {observedGeneration: -1}`, as Flux's CRDs do. The apiserver
/// applies this schema default whenever an object without status is read, so until the operator
/// has looked at a new object its observed generation lags behind `metadata.generation` (1 or
/// more) and kstatus, Flux's `wait` and Argo CD count it as in progress, not as current.
pub fn status_defaults(schema: &mut schemars::Schema) {
    if let Some(object) = schema.as_object_mut() {
        object.insert(
            "default".into(),
            serde_json::json!({ "observedGeneration": NOT_OBSERVED }),
        );
    }
}

/// `status.observedGeneration` of an object the operator has not looked at yet.
pub const NOT_OBSERVED: i64 = -1;

/// Schema of a conditions array: a list merged by `type` under server-side apply.
pub fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    list_map_schema::<Condition>(generator, "type")
}

/// A reference to an object by name in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectReference {
    /// Name of the object, in the namespace of the referring resource.
    #[schemars(length(min = 1, max = MAX_OBJECT_NAME_LENGTH), regex(pattern = OBJECT_NAME_PATTERN))]
    pub name: String,
}

/// A Secret in the resource's own namespace holding an upstream's API client credentials. The Secret
/// must hold the keys named by `clientIdKey` (default `clientId`) and `clientSecretKey` (default
/// `clientSecret`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientCredentialsRef {
    /// Name of the Secret, in the namespace of this resource. The Secret must carry the label
    /// `sync.reteach.io/credentials: "true"`.
    #[schemars(length(min = 1, max = MAX_OBJECT_NAME_LENGTH), regex(pattern = OBJECT_NAME_PATTERN))]
    pub name: String,
    /// Key of the client id in the Secret.
    #[serde(default = "default_client_id_key")]
    #[schemars(length(min = 1, max = MAX_OBJECT_NAME_LENGTH), regex(pattern = SECRET_KEY_PATTERN))]
    pub client_id_key: String,
    /// Key of the client secret in the Secret.
    #[serde(default = "default_client_secret_key")]
    #[schemars(length(min = 1, max = MAX_OBJECT_NAME_LENGTH), regex(pattern = SECRET_KEY_PATTERN))]
    pub client_secret_key: String,
}

/// The Secret holding Personio API credentials: a client id and secret.
pub type PersonioCredentialsRef = ClientCredentialsRef;

/// A Secret in the resource's own namespace holding reteach app credentials: the client id and
/// secret of [`ClientCredentialsRef`], and the key named by `clientCodeKey` (default `clientCode`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReteachCredentialsRef {
    /// The Secret's name and the keys of the client id and secret.
    #[serde(flatten)]
    pub client: ClientCredentialsRef,
    /// Key of the reteach client code in the Secret.
    #[serde(default = "default_client_code_key")]
    #[schemars(length(min = 1, max = MAX_OBJECT_NAME_LENGTH), regex(pattern = SECRET_KEY_PATTERN))]
    pub client_code_key: String,
}

impl std::ops::Deref for ReteachCredentialsRef {
    type Target = ClientCredentialsRef;

    fn deref(&self) -> &ClientCredentialsRef {
        &self.client
    }
}

/// A key in a Secret of the resource's namespace holding PEM certificates to trust in addition to
/// the system roots (for TLS-intercepting proxies). TLS verification itself is never turned off.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaBundleRef {
    /// Name of the Secret, in the namespace of this resource. The Secret must carry the label
    /// `sync.reteach.io/credentials: "true"`.
    #[schemars(length(min = 1, max = MAX_OBJECT_NAME_LENGTH), regex(pattern = OBJECT_NAME_PATTERN))]
    pub name: String,
    /// Key holding the PEM bundle. Default `ca.crt`.
    #[serde(default = "default_ca_key")]
    #[schemars(transform = without_default)]
    #[schemars(length(min = 1, max = MAX_OBJECT_NAME_LENGTH), regex(pattern = SECRET_KEY_PATTERN))]
    pub key: String,
}

/// How to reach Personio.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersonioConnection {
    /// Base URL of the Personio API. Must be `https://` unless `allowInsecureHttp` is set.
    #[serde(default = "default_personio_url")]
    #[schemars(length(min = 1, max = MAX_BASE_URL_LENGTH), regex(pattern = BASE_URL_PATTERN))]
    pub base_url: String,
    /// Secret with the API credentials (Settings → Integrations → API credentials in Personio).
    pub credentials_secret_ref: PersonioCredentialsRef,
    /// Value of the `X-Personio-App-ID` header Personio asks integrations to send (UPPER_SNAKE_CASE).
    #[serde(default = "default_app_id")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Z0-9_]+$"))]
    pub app_id: String,
    /// Extra CA certificates to trust for this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_ref: Option<CaBundleRef>,
    /// Allow a plain `http://` base URL. Only for tests against a local simulator; never in production.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// Which Personio API employees are read through (EmployeeSync): `v1` (default:
    /// `company/employees`, one request per 100 employees, a change feed over every attribute) or
    /// `v2` (persons and employments: one request per employee on full runs; incremental runs see
    /// changes of the person's own attributes only). Certificates always use v1 uploads. The
    /// Personio ids are the same, so switching keeps every reteach user linked. See
    /// docs/credentials.md, "Personio API v1 or v2".
    #[serde(default, skip_serializing_if = "PersonioApiVersion::is_default")]
    pub api: PersonioApiVersion,
}

/// A Personio API version for reading employees.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PersonioApiVersion {
    /// `GET /v1/company/employees`.
    #[default]
    V1,
    /// `GET /v2/persons` and `GET /v2/persons/{id}/employments`.
    V2,
}

impl PersonioApiVersion {
    fn is_default(&self) -> bool {
        *self == Self::V1
    }
}

/// How to reach reteach.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReteachConnection {
    /// Base URL of the reteach API. Must be `https://` unless `allowInsecureHttp` is set.
    #[serde(default = "default_reteach_url")]
    #[schemars(length(min = 1, max = MAX_BASE_URL_LENGTH), regex(pattern = BASE_URL_PATTERN))]
    pub base_url: String,
    /// Secret with the academy's app credentials (Settings → Integrations → API access in reteach).
    pub credentials_secret_ref: ReteachCredentialsRef,
    /// Extra CA certificates to trust for this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_ref: Option<CaBundleRef>,
    /// Allow a plain `http://` base URL. Only for tests against a local simulator; never in production.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

/// One record that could not be synced, identified by ids only (never names or e-mail addresses).
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordFailure {
    /// Personio employee id of the record, when known.
    pub personio_id: Option<String>,
    /// reteach certificate id of the record, for certificate failures.
    pub certificate_id: Option<String>,
    /// Why the record was skipped, e.g. `no e-mail address`.
    pub reason: String,
}

/// Most failures kept in status; the count in `lastRun.failed` is always complete.
pub const MAX_STATUS_FAILURES: usize = 50;

pub(crate) fn default_client_id_key() -> String {
    "clientId".into()
}
pub(crate) fn default_client_secret_key() -> String {
    "clientSecret".into()
}
pub(crate) fn default_client_code_key() -> String {
    "clientCode".into()
}
pub(crate) fn default_ca_key() -> String {
    "ca.crt".into()
}
pub(crate) fn default_personio_url() -> String {
    "https://api.personio.de".into()
}
pub(crate) fn default_reteach_url() -> String {
    "https://api.reteach.io".into()
}
pub(crate) fn default_app_id() -> String {
    "RETEACH_PERSONIO_OPERATOR".into()
}
