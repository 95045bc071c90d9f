//! Reading credentials from Secrets in the resource's own namespace. Every failure names the Secret
//! and key to fix, never a value.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::api::{CaBundleRef, PersonioCredentialsRef, ReteachCredentialsRef};

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
    #[error("cannot read Secret {namespace}/{name}: {message}")]
    Api {
        namespace: String,
        name: String,
        message: String,
        transient: bool,
    },
}

impl CredentialsError {
    /// Whether the problem needs a human (vs. an apiserver hiccup).
    pub fn is_config(&self) -> bool {
        !matches!(
            self,
            Self::Api {
                transient: true,
                ..
            }
        )
    }

    /// Condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SecretNotFound { .. } => "SecretNotFound",
            Self::KeyMissing { .. } | Self::NotUtf8 { .. } => "SecretKeyMissing",
            Self::Api { .. } => "SecretUnreadable",
        }
    }
}

/// Personio API credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonioCredentials {
    pub client_id: String,
    pub client_secret: String,
}

/// reteach app credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct ReteachCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub client_code: String,
}

// Hand-written so that secret values can never reach a log line through `{:?}`.
impl std::fmt::Debug for PersonioCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonioCredentials(<redacted>)")
    }
}

impl std::fmt::Debug for ReteachCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReteachCredentials(<redacted>)")
    }
}

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

    async fn data(&self, name: &str, keys: &[&str]) -> Result<SecretData, CredentialsError> {
        match self.api.get_opt(name).await {
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
            Ok(None) => Err(CredentialsError::SecretNotFound {
                namespace: self.namespace.clone(),
                name: name.to_string(),
                keys: keys.join(", "),
            }),
            Err(error) => Err(CredentialsError::Api {
                namespace: self.namespace.clone(),
                name: name.to_string(),
                transient: !matches!(&error, kube::Error::Api(status) if status.code == 403),
                message: error.to_string(),
            }),
        }
    }

    /// Personio credentials from `reference`.
    pub async fn personio(
        &self,
        reference: &PersonioCredentialsRef,
    ) -> Result<PersonioCredentials, CredentialsError> {
        let keys = [
            reference.client_id_key.as_str(),
            reference.client_secret_key.as_str(),
        ];
        let data = self.data(&reference.name, &keys).await?;
        Ok(PersonioCredentials {
            client_id: data.string(
                &reference.client_id_key,
                "personio.credentialsSecretRef.clientIdKey",
            )?,
            client_secret: data.string(
                &reference.client_secret_key,
                "personio.credentialsSecretRef.clientSecretKey",
            )?,
        })
    }

    /// reteach credentials from `reference`.
    pub async fn reteach(
        &self,
        reference: &ReteachCredentialsRef,
    ) -> Result<ReteachCredentials, CredentialsError> {
        let keys = [
            reference.client_id_key.as_str(),
            reference.client_secret_key.as_str(),
            reference.client_code_key.as_str(),
        ];
        let data = self.data(&reference.name, &keys).await?;
        Ok(ReteachCredentials {
            client_id: data.string(
                &reference.client_id_key,
                "reteach.credentialsSecretRef.clientIdKey",
            )?,
            client_secret: data.string(
                &reference.client_secret_key,
                "reteach.credentialsSecretRef.clientSecretKey",
            )?,
            client_code: data.string(
                &reference.client_code_key,
                "reteach.credentialsSecretRef.clientCodeKey",
            )?,
        })
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
