//! Errors of the reteach client, typed by what the user or the caller must do.

/// A failed reteach call.
#[derive(Debug, thiserror::Error)]
pub enum ReteachError {
    /// Credentials rejected. Needs a human: fix the Secret.
    #[error("reteach rejected the credentials: {message}")]
    Unauthorized { message: String },
    /// Not allowed (403).
    #[error("reteach denied {endpoint}: {message}")]
    Forbidden {
        endpoint: &'static str,
        message: String,
    },
    /// Unknown id (404).
    #[error("reteach does not know {what}")]
    NotFound { what: String },
    /// Invalid request (400/422), e.g. an e-mail address reteach refuses. `message` is reteach's
    /// text with any submitted value removed.
    #[error("reteach rejected {endpoint}: {message}")]
    Rejected {
        endpoint: &'static str,
        message: String,
    },
    /// Rate limited, 5xx, timeout or reset even after retries. Try again later.
    #[error("reteach is unavailable: {message}")]
    Unavailable { message: String },
    /// A response that does not parse.
    #[error("reteach sent an unreadable response to {endpoint}: {message}")]
    Malformed {
        endpoint: &'static str,
        message: String,
    },
    /// Bad configuration of the client itself (URL, TLS).
    #[error("{0}")]
    Config(String),
}

impl ReteachError {
    /// Whether a later retry can succeed without a human changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Malformed { .. })
    }
}
