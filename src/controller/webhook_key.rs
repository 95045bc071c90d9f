//! The operator's webhook key: a Secret in the operator's own namespace (`--webhook-key-secret`,
//! chart `<release>-webhook-key`) from which every registered webhook token is derived (see
//! `webhook::identity`). Created at start-up with 32 random bytes when absent; when several
//! replicas or shards race, the loser's create ends in AlreadyExists and it reads the winner's.
//! Key `key` is the current key; an optional `previousKey` stays accepted by the receiver during
//! a rotation (docs/webhooks.md). RBAC: `create` on secrets in the operator's namespace, `get`
//! only on this name.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::webhook::{KeyRing, KeyTooShort, OperatorKey};

/// Data key of the current key.
pub const CURRENT_KEY: &str = "key";

/// Data key of the previous key (optional, during a rotation).
pub const PREVIOUS_KEY: &str = "previousKey";

/// Why the key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WebhookKeyError {
    /// The apiserver refused.
    #[error("cannot read or create the webhook key Secret {namespace}/{name} (the operator's role needs `create` on secrets and `get` on this one in its namespace; Helm: rbac.create): {source}")]
    Kube {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// What the apiserver said.
        #[source]
        source: kube::Error,
    },
    /// A key in the Secret is unusable.
    #[error("key {key:?} of the webhook key Secret {namespace}/{name} is unusable ({source}); delete the Secret to have a new one created (registered webhooks move to the new tokens)")]
    Unusable {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// The data key.
        key: &'static str,
        /// Why.
        #[source]
        source: KeyTooShort,
    },
}

/// Reads the key Secret `namespace/name`, creating it first when it does not exist.
pub async fn load_or_create(
    client: Client,
    namespace: &str,
    name: &str,
) -> Result<KeyRing, WebhookKeyError> {
    let api: Api<Secret> = Api::namespaced(client, namespace);
    let error = |source| WebhookKeyError::Kube {
        namespace: namespace.to_string(),
        name: name.to_string(),
        source,
    };
    let secret = match api.get_opt(name).await.map_err(error)? {
        Some(secret) => secret,
        None => match api.create(&PostParams::default(), &new_secret(name)).await {
            Ok(created) => {
                tracing::info!(namespace, secret = name, "created the webhook key Secret");
                created
            }
            // Another replica created it meanwhile: use that one.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                api.get(name).await.map_err(error)?
            }
            Err(source) => return Err(error(source)),
        },
    };
    key_ring(&secret.data.unwrap_or_default()).map_err(|(key, source)| WebhookKeyError::Unusable {
        namespace: namespace.to_string(),
        name: name.to_string(),
        key,
        source,
    })
}

/// A new key Secret with 32 random bytes.
fn new_secret(name: &str) -> Secret {
    let key: [u8; 32] = rand::random();
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "reteach-personio-operator".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            CURRENT_KEY.to_string(),
            ByteString(key.to_vec()),
        )])),
        ..Secret::default()
    }
}

/// The key ring in a Secret's data.
fn key_ring(data: &BTreeMap<String, ByteString>) -> Result<KeyRing, (&'static str, KeyTooShort)> {
    let key = |name: &'static str| {
        data.get(name)
            .map(|bytes| OperatorKey::new(bytes.0.clone()).map_err(|e| (name, e)))
            .transpose()
    };
    let current = key(CURRENT_KEY)?.ok_or((CURRENT_KEY, KeyTooShort(0)))?;
    let previous = key(PREVIOUS_KEY)?;
    Ok(KeyRing { current, previous })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_secret_holds_32_random_bytes() {
        let a = new_secret("rpo-webhook-key");
        let b = new_secret("rpo-webhook-key");
        let bytes = |s: &Secret| s.data.as_ref().unwrap()[CURRENT_KEY].0.clone();
        assert_eq!(bytes(&a).len(), 32);
        assert_ne!(bytes(&a), bytes(&b));
        assert!(key_ring(a.data.as_ref().unwrap()).is_ok());
    }

    #[test]
    fn the_previous_key_is_optional_and_short_keys_are_refused() {
        let data = |pairs: &[(&str, usize)]| -> BTreeMap<String, ByteString> {
            pairs
                .iter()
                .map(|(k, n)| (k.to_string(), ByteString(vec![1; *n])))
                .collect()
        };
        let ring = key_ring(&data(&[(CURRENT_KEY, 32), (PREVIOUS_KEY, 32)])).unwrap();
        assert!(ring.previous.is_some());
        assert!(key_ring(&data(&[(CURRENT_KEY, 32)]))
            .unwrap()
            .previous
            .is_none());
        assert_eq!(key_ring(&data(&[])).unwrap_err().0, CURRENT_KEY);
        assert_eq!(
            key_ring(&data(&[(CURRENT_KEY, 32), (PREVIOUS_KEY, 3)]))
                .unwrap_err()
                .0,
            PREVIOUS_KEY
        );
    }
}
