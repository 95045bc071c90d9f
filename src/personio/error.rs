//! Errors of the Personio client, typed by what the user or the caller must do.

/// A failed Personio call.
#[derive(Debug, thiserror::Error)]
pub enum PersonioError {
    /// Credentials rejected (401/403 on auth). Needs a human: fix the Secret.
    #[error("Personio rejected the credentials: {message}")]
    Unauthorized {
        /// Personio's message.
        message: String,
    },
    /// The credential does not whitelist attributes the sync requires. Needs a human.
    #[error("the Personio credential does not return the attributes {}; add them to its readable attributes in Personio (Settings → Integrations → API credentials)", .0.join(", "))]
    AttributesNotWhitelisted(Vec<String>),
    /// The credential lacks an access right (e.g. documents write). Needs a human.
    #[error("Personio denied {endpoint}: {message}")]
    Forbidden {
        /// Fixed endpoint name.
        endpoint: &'static str,
        /// Personio's message.
        message: String,
    },
    /// An id that Personio does not know (employee, category).
    #[error("Personio does not know {what}: {message}")]
    NotFound {
        /// What was looked for (endpoint or kind of id).
        what: String,
        /// Personio's message (it names ids, not personal data).
        message: String,
    },
    /// Personio rejected the request as invalid (422): e.g. file type, size, title.
    #[error("Personio rejected {endpoint}: {message}")]
    Rejected {
        /// Fixed endpoint name.
        endpoint: &'static str,
        /// Why, naming fields but never their values.
        message: String,
    },
    /// Rate limited, 5xx, timeout or reset even after retries. Try again later.
    #[error("Personio is unavailable: {message}")]
    Unavailable {
        /// What failed, without URLs or values.
        message: String,
        /// Whether the request may have reached Personio (e.g. an upload that timed out).
        maybe_applied: bool,
        /// Personio's `personio_trace_id`, which its support asks for.
        trace_id: Option<String>,
    },
    /// Personio (or what answers at the base URL) redirected an API call. Redirects are never
    /// followed: a token request's body and the bearer token go to the base URL's origin only.
    /// Needs a human: the base URL is not the API's own address.
    #[error("Personio answered {endpoint} with a redirect (HTTP {status}), which the operator never follows (it would carry the credentials elsewhere); check spec.personio.baseUrl of the EmployeeSync: it must be the API's own https address (e.g. https://api.personio.de), not one that redirects")]
    Redirected {
        /// Fixed endpoint name.
        endpoint: &'static str,
        /// The 3xx status.
        status: u16,
    },
    /// A response that does not parse.
    #[error("Personio sent an unreadable response to {endpoint}: {message}")]
    Malformed {
        /// Fixed endpoint name.
        endpoint: &'static str,
        /// What was wrong with it.
        message: String,
    },
    /// Bad configuration of the client itself (URL, TLS).
    #[error("{0}")]
    Config(String),
}

impl PersonioError {
    /// Whether a later retry can succeed without a human changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Malformed { .. })
    }
}
