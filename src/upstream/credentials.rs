//! [`ClientCredentials`]: the id and secret an API client exchanges for a token.

use secrecy::SecretString;

/// An OAuth-style client credential: the client id and client secret both upstreams exchange for
/// a bearer token (Personio's API credential, reteach's app credential without its client code).
/// Both halves are secrets: they are never logged, and `Debug` shows neither.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    /// The client id (Personio: "Client ID"; reteach: "Client-ID").
    pub id: SecretString,
    /// The client secret (Personio: "Client Secret"; reteach: "Client-Secret").
    pub secret: SecretString,
}

impl ClientCredentials {
    /// The credential `id` with `secret`, as read from a Secret or the environment.
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            id: SecretString::from(id.into()),
            secret: SecretString::from(secret.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_both_halves() {
        let printed = format!("{:?}", ClientCredentials::new("id-123", "secret-456"));
        assert!(!printed.contains("id-123"), "{printed}");
        assert!(!printed.contains("secret-456"), "{printed}");
    }
}
