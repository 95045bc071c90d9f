//! Bearer tokens: v1 `POST /v1/auth` (JSON body; query-string credentials are refused from
//! 2026-12-04) and v2 `POST /v2/auth/token` (form, client credentials). Tokens are stable for
//! 24 h; each cache refreshes 5 min before expiry or after a 401, one caller at a time.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::client::PersonioClient;
use super::error_body::parse_error_body;
use super::PersonioError;
use crate::upstream::token_lifetime;

/// The v1 auth endpoint, as metrics and errors name it.
pub const V1_AUTH: &str = "POST /v1/auth";

/// Lifetime assumed when Personio omits `expires_in`.
const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Refresh this long before the token expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Which token endpoint a cache talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TokenKind {
    V1,
    V2,
}

/// A bearer token. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

struct Cached {
    token: Token,
    refresh_at: Instant,
}

/// One cached token; the mutex makes refreshes single-flight.
pub(super) struct TokenCache {
    kind: TokenKind,
    slot: Mutex<Option<Cached>>,
}

impl TokenCache {
    pub fn new(kind: TokenKind) -> Self {
        Self {
            kind,
            slot: Mutex::new(None),
        }
    }
}

impl PersonioClient {
    /// A valid token of `kind`, fetched when absent or close to expiry.
    pub(super) async fn token(&self, kind: TokenKind) -> Result<Token, PersonioError> {
        let cache = self.token_cache(kind);
        let mut slot = cache.slot.lock().await;
        if let Some(cached) = slot.as_ref() {
            if Instant::now() < cached.refresh_at {
                return Ok(cached.token.clone());
            }
        }
        let (token, ttl) = match cache.kind {
            TokenKind::V1 => self.fetch_v1_token().await?,
            TokenKind::V2 => self.fetch_v2_token().await?,
        };
        let margin = REFRESH_MARGIN.min(ttl / 2);
        *slot = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + ttl.saturating_sub(margin),
        });
        Ok(token)
    }

    /// Forgets `rejected` (after a 401) unless another caller already replaced it.
    pub(super) async fn invalidate(&self, kind: TokenKind, rejected: &Token) {
        let mut slot = self.token_cache(kind).slot.lock().await;
        if slot
            .as_ref()
            .is_some_and(|cached| &cached.token == rejected)
        {
            *slot = None;
        }
    }

    fn token_cache(&self, kind: TokenKind) -> &TokenCache {
        match kind {
            TokenKind::V1 => &self.v1_token,
            TokenKind::V2 => &self.v2_token,
        }
    }

    /// Sends the credential to [`V1_AUTH`] (for a token, or for the preflight's look at its
    /// scopes).
    pub(super) async fn post_v1_auth(&self) -> Result<reqwest::Response, PersonioError> {
        let url = self.url("/v1/auth")?;
        let body = serde_json::json!({
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        });
        self.send(V1_AUTH, Some(&self.limiters.auth), || {
            self.http.post(url.clone()).json(&body)
        })
        .await
    }

    async fn fetch_v1_token(&self) -> Result<(Token, Duration), PersonioError> {
        let response = self.post_v1_auth().await?;
        self.read_token(
            V1_AUTH,
            response,
            "auth",
            ["/data/token", "/data/expires_in"],
        )
        .await
    }

    async fn fetch_v2_token(&self) -> Result<(Token, Duration), PersonioError> {
        const ENDPOINT: &str = "POST /v2/auth/token";
        let url = self.url("/v2/auth/token")?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.as_str()),
        ];
        let response = self
            .send(ENDPOINT, Some(&self.limiters.v2_auth), || {
                self.http.post(url.clone()).form(&form)
            })
            .await?;
        self.read_token(
            ENDPOINT,
            response,
            "token",
            ["/access_token", "/expires_in"],
        )
        .await
    }

    /// Reads the answer of an auth endpoint: the token and its lifetime stand at the JSON pointers
    /// `[token, expires_in]` (under `/data` for v1, at the top level for v2). `what` names the
    /// response in errors.
    async fn read_token(
        &self,
        endpoint: &'static str,
        response: reqwest::Response,
        what: &str,
        [token_at, expires_at]: [&str; 2],
    ) -> Result<(Token, Duration), PersonioError> {
        let (status, bytes) = self.read_body(endpoint, response).await?;
        if !status.is_success() {
            return Err(auth_error(status.as_u16(), &bytes));
        }
        let json: Value = serde_json::from_slice(&bytes)
            .map_err(|_| malformed(endpoint, &format!("{what} response is not JSON")))?;
        let token = json
            .pointer(token_at)
            .and_then(Value::as_str)
            .filter(|token| !token.trim().is_empty())
            .ok_or_else(|| {
                let path = token_at.trim_start_matches('/').replace('/', ".");
                malformed(endpoint, &format!("{what} response has no {path}"))
            })?;
        let ttl = expires_in(json.pointer(expires_at));
        Ok((Token(token.trim().to_string()), ttl))
    }
}

/// `expires_in` seconds (number or string); missing or unreadable → 24 h. Bounded to 30 s … 24 h
/// so a nonsense lifetime can neither overflow the clock arithmetic nor keep a token for longer
/// than Personio's documented day.
fn expires_in(value: Option<&Value>) -> Duration {
    token_lifetime(value, DEFAULT_TTL)
}

/// 400/401/403 on the token endpoints mean the credentials are wrong; others are outages.
fn auth_error(status: u16, body: &[u8]) -> PersonioError {
    let parsed = parse_error_body(status, body);
    match status {
        400 | 401 | 403 => PersonioError::Unauthorized {
            message: parsed.message,
        },
        _ => PersonioError::Unavailable {
            message: format!(
                "authentication failed with HTTP {status}: {}",
                parsed.message
            ),
            maybe_applied: false,
            trace_id: parsed.trace_id,
        },
    }
}

fn malformed(endpoint: &'static str, message: &str) -> PersonioError {
    PersonioError::Malformed {
        endpoint,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_defaults_to_a_day() {
        assert_eq!(expires_in(None), DEFAULT_TTL);
        assert_eq!(expires_in(Some(&serde_json::json!("never"))), DEFAULT_TTL);
        assert_eq!(
            expires_in(Some(&serde_json::json!("600"))),
            Duration::from_secs(600)
        );
        assert_eq!(
            expires_in(Some(&serde_json::json!(86400))),
            Duration::from_secs(86400)
        );
    }

    #[test]
    fn absurd_lifetimes_are_bounded_to_thirty_seconds_and_a_day() {
        for value in [
            serde_json::json!(0),
            serde_json::json!(-86400),
            serde_json::json!("-1"),
        ] {
            assert_eq!(expires_in(Some(&value)), Duration::from_secs(30), "{value}");
        }
        for value in [
            serde_json::json!(u64::MAX),
            serde_json::json!(7 * 86400),
            serde_json::json!("1e40"),
        ] {
            assert_eq!(expires_in(Some(&value)), DEFAULT_TTL, "{value}");
        }
    }

    #[test]
    fn rejected_credentials_are_unauthorized() {
        let body = br#"{"success":false,"error":{"code":401,"message":"Wrong credentials"}}"#;
        match auth_error(401, body) {
            PersonioError::Unauthorized { message } => assert_eq!(message, "Wrong credentials"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(auth_error(503, b"").is_transient());
    }
}
