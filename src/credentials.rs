//! Reading credentials from Secrets in the resource's own namespace. Every failure names the Secret
//! and key to fix, never a value.
//!
//! A Secret is used only when it opts in with the label [`CREDENTIALS_LABEL`]`: "true"`: whoever may
//! write an EmployeeSync can name any Secret of the namespace, and must not thereby send, say, the
//! database password to reteach. The label is checked on the Secret's metadata before its data is
//! fetched. Secrets are read by GET at the start of every run (no cache, no watch), so a rotated
//! value is used by the next run.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::api::{CaBundleRef, PersonioCredentialsRef, ReteachCredentialsRef, WebhookSecretRef};
use crate::jobs::{Classification, Classify, Reason};
use crate::webhook::{ReceiverKeys, RequestKeys, Source};

/// A Secret or key that is missing or unusable. The message is the Stalled condition's text.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("Secret {namespace}/{name} not found; create it with the keys {keys}")]
    SecretNotFound {
        namespace: String,
        name: String,
        keys: String,
    },
    #[error("Secret {namespace}/{name} has no key {key:?} (or it is empty); add it or set {field} to the key that holds it")]
    KeyMissing {
        namespace: String,
        name: String,
        key: String,
        field: String,
    },
    #[error("key {key:?} of Secret {namespace}/{name} is not valid UTF-8")]
    NotUtf8 {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("Secret {namespace}/{name} is not marked for use by sync resources; if this resource may use it, label it: kubectl label secret -n {namespace} {name} {label}=true", label = CREDENTIALS_LABEL)]
    NotOptedIn { namespace: String, name: String },
    #[error("cannot read Secret {namespace}/{name}: {message}")]
    Api {
        namespace: String,
        name: String,
        message: String,
        transient: bool,
    },
}

impl Classify for CredentialsError {
    /// A missing or unusable Secret needs a human; an apiserver hiccup is retried.
    fn classify(&self) -> Classification {
        let reason = match self {
            Self::SecretNotFound { .. } => Reason::SecretNotFound,
            Self::KeyMissing { .. } | Self::NotUtf8 { .. } => Reason::SecretKeyMissing,
            Self::NotOptedIn { .. } => Reason::SecretNotOptedIn,
            Self::Api { .. } => Reason::SecretUnreadable,
        };
        match self {
            Self::Api {
                transient: true, ..
            } => Classification::retry(reason),
            _ => Classification::stalled(reason),
        }
    }
}

/// Key of a manual webhook Secret with the Personio webhook's signing secret (optional).
pub const SIGNING_SECRET_KEY: &str = "signingSecret";

/// Key of a manual webhook Secret with the signing secret being retired (optional).
pub const PREVIOUS_SIGNING_SECRET_KEY: &str = "previousSigningSecret";

/// Label a Secret must carry (with the value `"true"`) to be usable by a resource.
pub const CREDENTIALS_LABEL: &str = "sync.reteach.io/credentials";

/// Whether a Secret with these labels opted in to be used by sync resources.
pub fn opted_in(labels: Option<&BTreeMap<String, String>>) -> bool {
    labels
        .and_then(|labels| labels.get(CREDENTIALS_LABEL))
        .is_some_and(|value| value == "true")
}

pub use crate::jobs::connection::{PersonioCredentials, ReteachCredentials};

/// Reads Secrets of one namespace.
pub struct SecretReader {
    api: Api<Secret>,
    namespace: String,
}

impl SecretReader {
    /// A reader confined to `namespace`: a resource can never use another namespace's Secret.
    pub fn new(client: Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
        }
    }

    fn api_error(&self, name: &str, error: kube::Error) -> CredentialsError {
        let forbidden = matches!(&error, kube::Error::Api(status) if status.code == 403);
        // The apiserver's own sentence names the user, verb and resource; kube's Display of the
        // whole Status (with its Debug dump) would bury it.
        let message = match &error {
            kube::Error::Api(status) if forbidden => format!(
                "{}; the operator's role needs `get` on `secrets` in this namespace (Helm: rbac.create)",
                status.message
            ),
            kube::Error::Api(status) => format!("{} (HTTP {})", status.message, status.code),
            other => other.to_string(),
        };
        CredentialsError::Api {
            namespace: self.namespace.clone(),
            name: name.to_string(),
            transient: !forbidden,
            message,
        }
    }

    fn not_found(&self, name: &str, keys: &[&str]) -> CredentialsError {
        CredentialsError::SecretNotFound {
            namespace: self.namespace.clone(),
            name: name.to_string(),
            keys: keys.join(", "),
        }
    }

    fn not_opted_in(&self, name: &str) -> CredentialsError {
        CredentialsError::NotOptedIn {
            namespace: self.namespace.clone(),
            name: name.to_string(),
        }
    }

    async fn data(&self, name: &str, keys: &[&str]) -> Result<SecretData, CredentialsError> {
        // Metadata first: the values of a Secret that did not opt in are never fetched.
        let metadata = self
            .api
            .get_metadata_opt(name)
            .await
            .map_err(|e| self.api_error(name, e))?
            .ok_or_else(|| self.not_found(name, keys))?;
        if !opted_in(metadata.metadata.labels.as_ref()) {
            return Err(self.not_opted_in(name));
        }
        match self.api.get_opt(name).await {
            // Checked again on the object itself: the label may have been removed in between.
            Ok(Some(secret)) if !opted_in(secret.metadata.labels.as_ref()) => {
                Err(self.not_opted_in(name))
            }
            Ok(Some(secret)) => Ok(SecretData {
                namespace: self.namespace.clone(),
                name: name.to_string(),
                data: secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .chain(
                        secret
                            .string_data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.into_bytes())),
                    )
                    .collect(),
            }),
            Ok(None) => Err(self.not_found(name, keys)),
            Err(error) => Err(self.api_error(name, error)),
        }
    }

    /// Personio credentials from `reference`.
    pub async fn personio(
        &self,
        reference: &PersonioCredentialsRef,
    ) -> Result<PersonioCredentials, CredentialsError> {
        let [client_id, client_secret] = self
            .strings(
                &reference.name,
                [
                    (
                        &reference.client_id_key,
                        "personio.credentialsSecretRef.clientIdKey",
                    ),
                    (
                        &reference.client_secret_key,
                        "personio.credentialsSecretRef.clientSecretKey",
                    ),
                ],
            )
            .await?;
        Ok(PersonioCredentials::new(client_id, client_secret))
    }

    /// reteach credentials from `reference`.
    pub async fn reteach(
        &self,
        reference: &ReteachCredentialsRef,
    ) -> Result<ReteachCredentials, CredentialsError> {
        let [client_id, client_secret, client_code] = self
            .strings(
                &reference.name,
                [
                    (
                        &reference.client_id_key,
                        "reteach.credentialsSecretRef.clientIdKey",
                    ),
                    (
                        &reference.client_secret_key,
                        "reteach.credentialsSecretRef.clientSecretKey",
                    ),
                    (
                        &reference.client_code_key,
                        "reteach.credentialsSecretRef.clientCodeKey",
                    ),
                ],
            )
            .await?;
        Ok(ReteachCredentials::new(
            client_id,
            client_secret,
            client_code,
        ))
    }

    /// The values of the `keys` of Secret `name`, in order; each key comes with the spec field
    /// that names it, for the error when it is missing. The Secret is read once.
    async fn strings<const N: usize>(
        &self,
        name: &str,
        keys: [(&String, &str); N],
    ) -> Result<[String; N], CredentialsError> {
        let data = self.data(name, &keys.map(|(key, _)| key.as_str())).await?;
        let mut values = [(); N].map(|()| String::new());
        for (value, (key, field)) in values.iter_mut().zip(keys) {
            *value = data.string(key, field)?;
        }
        Ok(values)
    }

    /// The keys of a webhook receiver registered by hand from `reference`: the path token, and
    /// for Personio the `Authorization` value and the optional signing secrets (keys
    /// `signingSecret`, `previousSigningSecret`). Only ever compared with incoming requests.
    pub async fn webhook(
        &self,
        reference: &WebhookSecretRef,
        source: Source,
    ) -> Result<ReceiverKeys, CredentialsError> {
        let mut keys = vec![reference.token_key.as_str()];
        if source == Source::Personio {
            keys.push(reference.authorization_key.as_str());
        }
        let data = self.data(&reference.name, &keys).await?;
        let token = data.string(&reference.token_key, "webhook.secretRef.tokenKey")?;
        let authorization = match source {
            Source::Personio => Some(data.string(
                &reference.authorization_key,
                "webhook.secretRef.authorizationKey",
            )?),
            Source::Reteach => None,
        };
        let signing_secrets = match source {
            Source::Personio => [SIGNING_SECRET_KEY, PREVIOUS_SIGNING_SECRET_KEY]
                .into_iter()
                .filter_map(|key| data.optional_string(key))
                .collect(),
            Source::Reteach => Vec::new(),
        };
        Ok(ReceiverKeys {
            current: RequestKeys::new(token, authorization),
            signing_secrets,
            previous: None,
        })
    }

    /// An upstream's `credentials` (as read) with the CA bundle its `caBundleRef` names, read
    /// only once the credentials were; `side` (`personio`, `reteach`) names the field in errors.
    pub async fn with_ca_bundle<C>(
        &self,
        credentials: Result<C, CredentialsError>,
        reference: &Option<CaBundleRef>,
        side: &str,
    ) -> Result<(C, Option<Vec<u8>>), CredentialsError> {
        let credentials = credentials?;
        let ca = self
            .ca_bundle(reference.as_ref(), &format!("{side}.caBundleRef"))
            .await?;
        Ok((credentials, ca))
    }

    /// PEM bundle from `reference`, if set.
    pub async fn ca_bundle(
        &self,
        reference: Option<&CaBundleRef>,
        field: &str,
    ) -> Result<Option<Vec<u8>>, CredentialsError> {
        let Some(reference) = reference else {
            return Ok(None);
        };
        let data = self
            .data(&reference.name, &[reference.key.as_str()])
            .await?;
        data.bytes(&reference.key, field).map(Some)
    }
}

struct SecretData {
    namespace: String,
    name: String,
    data: BTreeMap<String, Vec<u8>>,
}

impl SecretData {
    fn bytes(&self, key: &str, field: &str) -> Result<Vec<u8>, CredentialsError> {
        match self.data.get(key) {
            Some(value) if !value.is_empty() => Ok(value.clone()),
            _ => Err(CredentialsError::KeyMissing {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                key: key.to_string(),
                field: field.to_string(),
            }),
        }
    }

    /// The trimmed UTF-8 value of `key`, if present and not empty.
    fn optional_string(&self, key: &str) -> Option<String> {
        let value = String::from_utf8(self.data.get(key)?.clone()).ok()?;
        Some(value.trim().to_string()).filter(|value| !value.is_empty())
    }

    fn string(&self, key: &str, field: &str) -> Result<String, CredentialsError> {
        let bytes = self.bytes(key, field)?;
        let text = String::from_utf8(bytes).map_err(|_| CredentialsError::NotUtf8 {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            key: key.to_string(),
        })?;
        Ok(text.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_a_secret_labelled_true_opts_in() {
        assert!(opted_in(Some(&labels(&[(CREDENTIALS_LABEL, "true")]))));
        assert!(!opted_in(None));
        assert!(!opted_in(Some(&labels(&[]))));
        assert!(!opted_in(Some(&labels(&[(CREDENTIALS_LABEL, "false")]))));
        assert!(!opted_in(Some(&labels(&[(CREDENTIALS_LABEL, "True ")]))));
        assert!(!opted_in(Some(&labels(&[("credentials", "true")]))));
    }

    #[test]
    fn a_secret_that_did_not_opt_in_stalls_saying_how_to_label_it() {
        let error = CredentialsError::NotOptedIn {
            namespace: "academy".into(),
            name: "db-password".into(),
        };
        assert_eq!(
            error.classify(),
            Classification::stalled(Reason::SecretNotOptedIn)
        );
        assert_eq!(
            error.to_string(),
            "Secret academy/db-password is not marked for use by sync resources; if this resource \
             may use it, label it: kubectl label secret -n academy db-password \
             sync.reteach.io/credentials=true"
        );
    }
}
