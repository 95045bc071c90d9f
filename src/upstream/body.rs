//! Response bodies read with a cap on the bytes actually received, never trusting
//! `Content-Length` (a chunked or lying server announces nothing, or too little). An upstream, a
//! proxy or an attacker on a redirect target therefore cannot make the operator buffer an
//! unbounded body.
//!
//! The caps:
//! - [`MAX_JSON_BYTES`] (8 MiB) for a JSON page or token answer: reteach pages hold at most 250
//!   items and Personio pages 100 employees, a few hundred KiB in practice;
//! - [`MAX_CHANGE_FEED_BYTES`] (64 MiB) for Personio's `updated_since` listing, which ignores
//!   paging and returns every changed employee at once (about 2 KiB each);
//! - [`MAX_ERROR_BODY_BYTES`] (64 KiB) for error bodies: only a short message is taken from them,
//!   so a longer one is cut, never an error of its own;
//! - [`MAX_PDF_BYTES`] (30 MiB, Personio's upload limit) for certificate PDFs.

use bytes::{Bytes, BytesMut};
use reqwest::Response;

/// Largest JSON body read from a paged endpoint or a token endpoint.
pub const MAX_JSON_BYTES: usize = 8 * 1024 * 1024;
/// Largest JSON body of Personio's unpaged `updated_since` employee listing.
pub const MAX_CHANGE_FEED_BYTES: usize = 64 * 1024 * 1024;
/// Longest part of an error body that is read; the rest is dropped unread.
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Largest certificate PDF (Personio refuses larger uploads).
pub const MAX_PDF_BYTES: u64 = 30 * 1024 * 1024;

/// Why a capped body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    /// More bytes arrived than the cap allows (or more were announced).
    #[error("response body larger than the {limit}-byte limit")]
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The connection broke while the body was read (worth another attempt).
    #[error("response body broken: {0}")]
    Broken(String),
}

/// Reads the whole body, failing as soon as more than `limit` bytes have arrived.
pub async fn read_capped(mut response: Response, limit: usize) -> Result<Bytes, BodyReadError> {
    let too_large = || BodyReadError::TooLarge {
        limit: limit as u64,
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        // `without_url`: the URL may hold an e-mail address or a signature.
        .map_err(|e| BodyReadError::Broken(e.without_url().to_string()))?
    {
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads at most `limit` bytes of an error body and drops the rest; a body that breaks off
/// yields what arrived. Never fails: the status alone already says what went wrong.
pub async fn read_error_body(mut response: Response, limit: usize) -> Bytes {
    let mut body = BytesMut::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body.freeze()
}
