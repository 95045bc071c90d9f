//! `spec.webhook` of both kinds: notifications from the upstream that wake the sync early.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::common::{
    BASE_URL_PATTERN, MAX_BASE_URL_LENGTH, MAX_OBJECT_NAME_LENGTH, OBJECT_NAME_PATTERN,
    SECRET_KEY_PATTERN,
};
use super::schema::without_default;

/// Shortest accepted path token: 32 characters (≥ 190 bits from a random base64 string).
pub const MIN_WEBHOOK_TOKEN_LENGTH: usize = 32;

/// Webhook triggers: a notification from the upstream (Personio for an EmployeeSync, reteach for a
/// CertificateSync) starts the next incremental run now instead of at the next interval. The
/// notification's content is never used: the run reads the upstream as always. Polling stays on
/// as the safety net. Needs the operator's webhook receiver (Helm value `webhook.enabled`); where
/// notifications go is the operator administrator's setting (`webhook.publicUrl`), never the
/// resource's.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// Manual registration only (`register: false`): the Secret (same namespace, labelled
    /// `sync.reteach.io/credentials: "true"`) with the path token of the target you registered
    /// by hand, and for an EmployeeSync the `Authorization` value Personio sends (optional keys
    /// `signingSecret` and `previousSigningSecret`: the webhook's Personio signing secrets). Used
    /// only to check incoming notifications: nothing from it is ever sent anywhere. Must not be a
    /// Secret that a `credentialsSecretRef` of this resource (or its EmployeeSync) names. With
    /// `register: true` it is not read: the operator generates the tokens.
    pub secret_ref: Option<WebhookSecretRef>,
    /// Deprecated and ignored: notifications go to the operator's public webhook URL (Helm
    /// `webhook.publicUrl`, flag `--webhook-public-url`). When set and different, a Warning Event
    /// says where notifications go instead.
    #[schemars(length(min = 1, max = MAX_BASE_URL_LENGTH), regex(pattern = BASE_URL_PATTERN))]
    pub url: Option<String>,
    /// Let the operator register `<publicUrl>/<personio|reteach>/<namespace>/<name>/<token>`
    /// upstream with tokens it generates, re-create it when it disappears, and delete it when
    /// this resource is deleted (a finalizer guards it). CertificateSync: the reteach
    /// subscriptions (`POST /subscription`). EmployeeSync: one Personio webhook (`POST
    /// /v2/webhooks`) with its signing secret, which needs the scope `personio:webhooks:write`
    /// on the Personio credential. Nothing is registered while `suspend` is true. Default false:
    /// register by hand with the tokens of `secretRef` (docs/webhooks.md).
    #[serde(default)]
    #[schemars(transform = without_default)]
    pub register: bool,
}

/// The Secret holding the webhook token(s).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSecretRef {
    /// Name of the Secret, in the namespace of this resource.
    #[schemars(length(min = 1, max = MAX_OBJECT_NAME_LENGTH), regex(pattern = OBJECT_NAME_PATTERN))]
    pub name: String,
    /// Key of the path token: at least 32 characters of `A-Z a-z 0-9 - _ . ~` (e.g.
    /// `openssl rand -hex 32`). Default `token`.
    #[serde(default = "default_token_key")]
    #[schemars(transform = without_default)]
    #[schemars(length(min = 1, max = MAX_OBJECT_NAME_LENGTH), regex(pattern = SECRET_KEY_PATTERN))]
    pub token_key: String,
    /// EmployeeSync only: key of the exact `Authorization` header value Personio sends (the
    /// `token` given when the Personio webhook was created, auth type `TOKEN`). Required for an
    /// EmployeeSync. Default `authorization`.
    #[serde(default = "default_authorization_key")]
    #[schemars(transform = without_default)]
    #[schemars(length(min = 1, max = MAX_OBJECT_NAME_LENGTH), regex(pattern = SECRET_KEY_PATTERN))]
    pub authorization_key: String,
}

fn default_token_key() -> String {
    "token".into()
}

fn default_authorization_key() -> String {
    "authorization".into()
}
