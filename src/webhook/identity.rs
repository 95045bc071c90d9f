//! The operator's own webhook secrets. Nothing a resource names is ever sent upstream: the path
//! token, the `Authorization` value Personio sends back and the Personio signing secret of each
//! resource are derived from the operator's key (a Secret in the operator's namespace) with
//! HMAC-SHA256 (`ring`, as the signature check) over a fixed label, the source, the namespace
//! and the name. The receiver can therefore open a resource's receiver from the watch cache
//! alone, and a resource author learns none of them.
//!
//! Also here, pure: the admin's public base URL ([`PublicUrl`]), URLs compared by meaning
//! ([`normalize_url`]) and error messages scrubbed of every secret ([`scrub`]).

use ring::hmac;

use super::{ReceiverKeys, RequestKeys, ResourceKey, Source};

/// Fixed label in front of every derivation (a new scheme gets a new label).
const LABEL: &str = "reteach-personio-operator/webhook/v1";

/// Shortest accepted operator key.
pub const MIN_KEY_BYTES: usize = 16;

/// One operator key. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorKey(Vec<u8>);

impl std::fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorKey(<redacted>)")
    }
}

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the webhook key must have at least {MIN_KEY_BYTES} bytes (it has {0})")]
pub struct KeyTooShort(pub usize);

impl OperatorKey {
    /// A key of at least [`MIN_KEY_BYTES`] bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Self, KeyTooShort> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyTooShort(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// Hex HMAC-SHA256 of `purpose` for `resource`.
    fn derive(&self, purpose: &str, resource: &ResourceKey) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut context = hmac::Context::with_key(&key);
        for part in [
            LABEL,
            purpose,
            resource.source.as_str(),
            &resource.namespace,
            &resource.name,
        ] {
            // Length-prefixed, so no two different inputs share a byte string.
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part.as_bytes());
        }
        context
            .sign()
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// The secrets of `resource` under this key.
    pub fn secrets(&self, resource: &ResourceKey) -> DerivedSecrets {
        DerivedSecrets {
            token: self.derive("path-token", resource),
            authorization: format!("Bearer {}", self.derive("authorization", resource)),
            signing_secret: self.derive("signing-secret", resource),
        }
    }
}

/// What the operator registers for one resource and its receiver accepts. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct DerivedSecrets {
    /// The path token (64 hex characters).
    pub token: String,
    /// The `Authorization` value Personio sends (`Bearer …`).
    pub authorization: String,
    /// The Personio signing secret.
    pub signing_secret: String,
}

/// The operator's key and, during a rotation, the previous one (still accepted by the receiver).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRing {
    /// Registrations use this one.
    pub current: OperatorKey,
    /// Accepted by the receiver until it is removed from the Secret.
    pub previous: Option<OperatorKey>,
}

impl KeyRing {
    /// The secrets registered for `resource` (current key).
    pub fn secrets(&self, resource: &ResourceKey) -> DerivedSecrets {
        self.current.secrets(resource)
    }

    /// What `resource`'s receiver accepts: the current key's secrets, and the previous key's.
    pub fn receiver_keys(&self, resource: &ResourceKey) -> ReceiverKeys {
        let current = self.current.secrets(resource);
        let previous = self.previous.as_ref().map(|key| key.secrets(resource));
        let personio = resource.source == Source::Personio;
        let mut signing_secrets = Vec::new();
        if personio {
            signing_secrets.push(current.signing_secret.clone());
            signing_secrets.extend(previous.as_ref().map(|p| p.signing_secret.clone()));
        }
        let request_keys = |secrets: DerivedSecrets| {
            RequestKeys::new(secrets.token, personio.then_some(secrets.authorization))
        };
        ReceiverKeys {
            current: request_keys(current),
            signing_secrets,
            previous: previous.map(request_keys),
        }
    }
}

/// The receiver's public base URL, set by the operator's administrator (`--webhook-public-url`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl(url::Url);

/// Why `--webhook-public-url` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PublicUrlError {
    /// Not a URL.
    #[error("{0:?} is not a URL (e.g. https://hooks.example.com)")]
    Invalid(String),
    /// Not https.
    #[error(
        "{0:?} must use https (plain http only with --allow-insecure-http, for tests and demos)"
    )]
    NotHttps(String),
    /// Has a query, fragment or credentials.
    #[error("{0:?} must be a plain base URL: no user, password, query or fragment")]
    NotPlain(String),
}

impl PublicUrl {
    /// Checks `text`: `https://host[:port][/path]`; plain `http` only when `allow_http`.
    pub fn parse(text: &str, allow_http: bool) -> Result<Self, PublicUrlError> {
        let url =
            url::Url::parse(text.trim()).map_err(|_| PublicUrlError::Invalid(text.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            _ => return Err(PublicUrlError::NotHttps(text.to_string())),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(PublicUrlError::Invalid(text.to_string()));
        }
        let plain = url.username().is_empty()
            && url.password().is_none()
            && url.query().is_none()
            && url.fragment().is_none();
        if !plain {
            return Err(PublicUrlError::NotPlain(text.to_string()));
        }
        Ok(Self(url))
    }

    /// The base as text, without a trailing slash.
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }

    /// Whether `other` means the same base URL.
    pub fn same_as(&self, other: &str) -> bool {
        normalize_url(other) == normalize_url(self.as_str())
    }
}

/// A URL in a canonical form, so two spellings of one target compare equal: scheme and host in
/// lower case, the default port dropped, percent-encoded unreserved characters decoded (other
/// escapes in upper case), no trailing slash. Text that is not a URL is returned trimmed.
pub fn normalize_url(text: &str) -> String {
    let Ok(url) = url::Url::parse(text.trim()) else {
        return text.trim().to_string();
    };
    let path = decode_unreserved(url.path());
    let mut normal = format!(
        "{}://{}",
        url.scheme(),
        url.host_str().unwrap_or_default().to_ascii_lowercase()
    );
    if let Some(port) = url.port() {
        normal.push_str(&format!(":{port}"));
    }
    normal.push_str(path.trim_end_matches('/'));
    if let Some(query) = url.query() {
        normal.push('?');
        normal.push_str(query);
    }
    normal
}

/// Whether `url` lies below the base `prefix` (both compared by meaning).
pub fn url_is_under(url: &str, prefix: &str) -> bool {
    let base = format!("{}/", normalize_url(prefix));
    normalize_url(url).starts_with(&base)
}

/// `%41` → `A` for unreserved characters; other escapes upper-cased.
fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut index = 0;
    while index < bytes.len() {
        let escape = (bytes[index] == b'%')
            .then(|| path.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(byte) if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) => {
                out.push(char::from(byte));
                index += 3;
            }
            Some(byte) => {
                out.push_str(&format!("%{byte:02X}"));
                index += 3;
            }
            None => {
                out.push(char::from(bytes[index]));
                index += 1;
            }
        }
    }
    out
}

/// `message` with every occurrence of each (non-empty) secret replaced by `<redacted>`: an
/// upstream's error may echo the request (the target URL with its path token, the token).
pub fn scrub(message: &str, secrets: &[&str]) -> String {
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    // Longest first, so a secret that contains another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
        .into_iter()
        .fold(message.to_string(), |text, secret| {
            text.replace(secret, "<redacted>")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(previous: bool) -> KeyRing {
        KeyRing {
            current: OperatorKey::new(vec![7; 32]).unwrap(),
            previous: previous.then(|| OperatorKey::new(vec![9; 32]).unwrap()),
        }
    }

    #[test]
    fn derived_secrets_differ_per_resource_purpose_and_key() {
        let key = ring(false);
        let a = ResourceKey::new(Source::Personio, "hr", "acme");
        let secrets = key.secrets(&a);
        assert_eq!(secrets.token.len(), 64);
        assert!(secrets.token.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(secrets.authorization.starts_with("Bearer "));
        assert_ne!(secrets.token, secrets.signing_secret);
        assert_ne!(secrets.authorization, format!("Bearer {}", secrets.token));
        for other in [
            ResourceKey::new(Source::Reteach, "hr", "acme"),
            ResourceKey::new(Source::Personio, "hra", "cme"),
            ResourceKey::new(Source::Personio, "hr", "acme2"),
        ] {
            assert_ne!(key.secrets(&other).token, secrets.token, "{other:?}");
        }
        let other_key = ring(true).previous.unwrap().secrets(&a);
        assert_ne!(other_key.token, secrets.token);
        assert!(
            key.secrets(&a) == secrets,
            "the same inputs give the same secrets"
        );
    }

    #[test]
    fn the_receiver_accepts_the_previous_key_during_a_rotation() {
        let a = ResourceKey::new(Source::Personio, "hr", "acme");
        let keys = ring(true).receiver_keys(&a);
        let old = OperatorKey::new(vec![9; 32]).unwrap().secrets(&a);
        assert!(keys.accepts_token(&old.token));
        assert!(keys.accepts_authorization(&old.authorization));
        assert_eq!(keys.signing_secrets.len(), 2);
        let alone = ring(false).receiver_keys(&a);
        assert!(!alone.accepts_token(&old.token));
        assert_eq!(alone.signing_secrets.len(), 1);
        let reteach = ring(false).receiver_keys(&ResourceKey::new(Source::Reteach, "hr", "c"));
        assert!(reteach.current.authorization.is_none() && reteach.signing_secrets.is_empty());
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(OperatorKey::new(vec![1; 15]), Err(KeyTooShort(15)));
        assert!(format!("{:?}", ring(true)).contains("redacted"));
    }

    #[test]
    fn the_public_url_must_be_plain_https() {
        assert_eq!(
            PublicUrl::parse("https://Hooks.example.com/", false)
                .unwrap()
                .as_str(),
            "https://hooks.example.com"
        );
        assert!(PublicUrl::parse("https://hooks.example.com/base", false).is_ok());
        for bad in [
            "http://hooks.example.com",
            "ftp://hooks.example.com",
            "hooks.example.com",
            "",
        ] {
            assert!(PublicUrl::parse(bad, false).is_err(), "{bad}");
        }
        assert!(PublicUrl::parse("http://127.0.0.1:8443", true).is_ok());
        for bad in [
            "https://u:p@hooks.example.com",
            "https://hooks.example.com/?x=1",
            "https://hooks.example.com/#f",
        ] {
            assert!(
                matches!(
                    PublicUrl::parse(bad, false),
                    Err(PublicUrlError::NotPlain(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn urls_compare_by_meaning() {
        let canonical = "https://hooks.example.com/personio/hr/acme/abc";
        for same in [
            "HTTPS://HOOKS.example.com/personio/hr/acme/abc",
            "https://hooks.example.com:443/personio/hr/acme/abc",
            "https://hooks.example.com/personio/hr/acme/abc/",
            "https://hooks.example.com/%70ersonio/hr/acme/%61bc",
        ] {
            assert_eq!(normalize_url(same), normalize_url(canonical), "{same}");
        }
        assert_ne!(
            normalize_url("https://hooks.example.com:8443/personio/hr/acme/abc"),
            normalize_url(canonical)
        );
        assert_ne!(
            normalize_url("https://hooks.example.com/personio/hr/acme/ABC"),
            normalize_url(canonical),
            "the path keeps its case"
        );
        assert!(url_is_under(
            "https://HOOKS.example.com:443/personio/hr/acme/x",
            "https://hooks.example.com/personio/hr/acme/"
        ));
        assert!(!url_is_under(
            "https://hooks.example.com/personio/hr/acme-2/x",
            "https://hooks.example.com/personio/hr/acme"
        ));
        assert!(PublicUrl::parse("https://hooks.example.com", false)
            .unwrap()
            .same_as("https://HOOKS.example.com:443/"));
    }

    #[test]
    fn scrubbing_removes_the_derived_secrets_of_a_resource() {
        let resource = ResourceKey::new(Source::Personio, "hr", "acme");
        let keys = ring(true).receiver_keys(&resource);
        let target = resource.target("https://hooks.example.com", &keys.current.token);
        let previous = keys.previous.clone().unwrap();
        // What a hostile or chatty upstream might echo back in a 422.
        let echoed = format!(
            "POST /v2/webhooks: 422 invalid request {{\"url\":\"{target}\",\"token\":\"{}\",\
             \"value\":\"{}\",\"old\":\"{}\"}}",
            keys.current.authorization.as_deref().unwrap(),
            keys.signing_secrets[0],
            previous.token,
        );
        let scrubbed = scrub(&echoed, &keys.secrets());
        for secret in keys.secrets() {
            let hex = secret.trim_start_matches("Bearer ");
            assert!(!scrubbed.contains(hex), "{scrubbed}");
        }
        assert!(scrubbed.contains("https://hooks.example.com/personio/hr/acme/<redacted>"));
    }

    #[test]
    fn scrubbing_removes_every_secret() {
        let message = "POST https://h/personio/hr/acme/tok-0123456789 failed: 422 token \
                       'Bearer s3cr3t-value' invalid";
        let scrubbed = scrub(message, &["tok-0123456789", "Bearer s3cr3t-value", ""]);
        assert!(!scrubbed.contains("tok-0123456789"), "{scrubbed}");
        assert!(!scrubbed.contains("s3cr3t"), "{scrubbed}");
        assert!(scrubbed.contains("<redacted>"));
    }
}
