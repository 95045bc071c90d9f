//! Plumbing both upstream clients share: retries with backoff, request observation (metrics),
//! streamed PDFs and TLS settings. Knows HTTP, knows nothing about Personio or reteach.

mod observe;
mod pdf;
mod retry;
mod tls;

pub use observe::{NoopObserver, RequestLog, RequestObserver, RequestRecord};
pub use pdf::PdfStream;
pub use retry::{send_with_retry, RetryPolicy, SendError};
pub use tls::{build_http_client, TlsOptions, UrlPolicyError};
