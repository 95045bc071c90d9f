//! Plumbing both upstream clients share: retries with backoff, request observation (metrics),
//! streamed PDFs, TLS settings and the client credential both exchange for a token. Knows HTTP, knows nothing about Personio or reteach.

mod address;
#[cfg(test)]
pub mod arbitrary_json;
mod body;
mod budget;
mod credentials;
mod idle_map;
mod lifetime;
mod observe;
mod pause;
mod pdf;
mod pool;
mod retry;
mod server_limit;
mod spool;
mod tls;

pub use address::{is_public_address, public_addresses, GuardedResolver, NonPublicHost};
pub use body::{
    read_capped, read_error_body, BodyReadError, MAX_CHANGE_FEED_BYTES, MAX_ERROR_BODY_BYTES,
    MAX_JSON_BYTES, MAX_PDF_BYTES,
};
pub use budget::{metered, BudgetShare, SharedBudget, DEFAULT_BUDGET_PER_MINUTE};
pub use credentials::ClientCredentials;
pub use idle_map::IdleMap;
pub use lifetime::{
    retry_after, token_lifetime, MAX_RETRY_AFTER, MAX_TOKEN_LIFETIME, MIN_TOKEN_LIFETIME,
};
pub use observe::{NoopObserver, RequestLog, RequestObserver, RequestRecord};
pub use pause::{hold_slot_while, paused, SlotHolder};
pub use pdf::PdfStream;
pub use pool::{ClientPurpose, HttpPool, TransportKey, IDLE_EVICTION};
pub use retry::{send_paced, send_with_retry, Pace, RetryPolicy, SendError};
pub use server_limit::{
    Announced, ServerLimits, LIMIT_HEADER, REMAINING_HEADER, REPLENISH_HEADER, RESET_HEADER,
};
pub use spool::{spool, spool_announced, PdfMemory, PdfReservation, SpoolError, SpoolOptions};
pub use tls::{
    build_download_client, build_http_client, debug_client, idle_connection_timeout,
    redirect_status, scale_idle_connection_timeout, TlsOptions, UrlPolicyError,
    IDLE_CONNECTION_TIMEOUT,
};
