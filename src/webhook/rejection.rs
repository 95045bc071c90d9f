//! Why the receiver refuses a notification, and what it answers: shared by the checks of the
//! request ([`super::check`]) and of its signature ([`super::signature`]).

use axum::http::StatusCode;

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Unknown resource, wrong path token or wrong `Authorization` (answered 404 or 401).
    Unauthenticated,
    /// Seen before, or an event too old to be a delivery (409).
    Replayed,
    /// Body larger than [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES) (413).
    Oversized,
    /// Not the documented JSON shape (400).
    Malformed,
    /// Not `application/json` (415).
    UnsupportedMediaType,
}

impl Rejection {
    /// The answer.
    pub fn status(self) -> StatusCode {
        match self {
            Rejection::Unauthenticated => StatusCode::UNAUTHORIZED,
            Rejection::Replayed => StatusCode::CONFLICT,
            Rejection::Oversized => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::Malformed => StatusCode::BAD_REQUEST,
            Rejection::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// The `outcome` label of `reteach_personio_webhook_requests_total`.
    pub fn outcome(self) -> &'static str {
        match self {
            Rejection::Unauthenticated => "unauthenticated",
            Rejection::Replayed => "replayed",
            Rejection::Oversized => "oversized",
            Rejection::Malformed => "malformed",
            Rejection::UnsupportedMediaType => "unsupported_media_type",
        }
    }
}
