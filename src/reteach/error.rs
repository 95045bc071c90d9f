//! Errors of the reteach client, typed by what the user or the caller must do.

/// A failed reteach call.
#[derive(Debug, thiserror::Error)]
pub enum ReteachError {
    /// Credentials rejected. Needs a human: fix the Secret.
    #[error("reteach rejected the credentials: {message}")]
    Unauthorized {
        /// reteach's message, without e-mail addresses or submitted values.
        message: String,
    },
    /// Not allowed (403).
    #[error("reteach denied {endpoint}: {message}")]
    Forbidden {
        /// Fixed endpoint name, e.g. `PUT /customer/{id}` (no ids or values).
        endpoint: &'static str,
        /// reteach's message, without e-mail addresses or submitted values.
        message: String,
    },
    /// Unknown id (404).
    #[error("reteach does not know {what}")]
    NotFound {
        /// What was looked up, named without personal values.
        what: String,
    },
    /// Invalid request (400/422), e.g. an e-mail address reteach refuses. `message` is reteach's
    /// text with any submitted value removed.
    #[error("reteach rejected {endpoint}: {message}")]
    Rejected {
        /// Fixed endpoint name, e.g. `PUT /customer/{id}` (no ids or values).
        endpoint: &'static str,
        /// reteach's message, without e-mail addresses or submitted values.
        message: String,
    },
    /// Rate limited, 5xx, timeout or reset even after retries. Try again later.
    #[error("reteach is unavailable: {message}")]
    Unavailable {
        /// What failed last (status or transport error), without URLs or values.
        message: String,
    },
    /// reteach (or what answers at the base URL) redirected an API call. Redirects of API calls
    /// are never followed: the token request's body and the bearer token go to the base URL's
    /// origin only. Needs a human: the base URL is not the API's own address.
    #[error("reteach answered {endpoint} with a redirect (HTTP {status}), which the operator never follows (it would carry the credentials elsewhere); check spec.reteach.baseUrl of the EmployeeSync: it must be the API's own https address (e.g. https://api.reteach.io), not one that redirects")]
    Redirected {
        /// Fixed endpoint name.
        endpoint: &'static str,
        /// The 3xx status.
        status: u16,
    },
    /// A response that does not parse.
    #[error("reteach sent an unreadable response to {endpoint}: {message}")]
    Malformed {
        /// Fixed endpoint name, e.g. `PUT /customer/{id}` (no ids or values).
        endpoint: &'static str,
        /// reteach's message, without e-mail addresses or submitted values.
        message: String,
    },
    /// Bad configuration of the client itself (URL, TLS).
    #[error("{0}")]
    Config(String),
}

impl ReteachError {
    /// A 2xx answer of `endpoint` that lacks `what` it must carry.
    pub(crate) fn malformed(endpoint: &'static str, what: &str) -> Self {
        Self::Malformed {
            endpoint,
            message: what.to_string(),
        }
    }

    /// Whether a later retry can succeed without a human changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Malformed { .. })
    }
}
