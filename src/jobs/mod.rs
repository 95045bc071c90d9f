//! One run of each sync, written against the client traits so the controllers, the demo and the benchmark share it.
//! Jobs take everything as input (time, time zone, previous state) and return an outcome; they know
//! nothing about Kubernetes.
//!
//! For callers:
//! - [`run_employee_sync`]: write `outcome.summary` to `status.lastRun` (setting `finishedAt`),
//!   `failures`, `planned` (dry run) and `next_cursor` to `status.cursor`. Writes go out with a
//!   concurrency of [`employee::WRITE_CONCURRENCY`].
//! - [`run_certificate_sync`]: the [`LedgerStore`] must persist `status.ledger` durably before it
//!   returns (the controller's server-side apply of status); the job calls it before every upload.
//!   On `Ok`, add `uploaded_total_delta` to `status.uploadedTotal`; on `Err`,
//!   [`JobError::partial_outcome`] carries the counters of the part that ran (the ledger is
//!   already in the store).
//! - [`reason::Classify`] gives every error its one condition reason and disposition:
//!   stalled (a human must act; the message says what), retry (backoff) or waiting.

pub mod allowlist;
pub mod bookkeeping;
pub mod category;
pub mod certificate;
mod certificate_input;
pub(crate) mod certificate_step;
pub(crate) mod certificate_transfer;
pub mod conditions;
pub mod connection;
pub mod employee;
mod employee_input;
mod employee_write;
mod error;
pub mod failures;
#[cfg(test)]
mod fakes;
mod fence;
mod ledger_store;
mod marker_cache;
pub mod pdf_check;
pub mod reason;
pub mod run_failure;
pub mod run_status;
pub mod schedule;
pub mod settings;

pub use category::resolve_category;
pub use certificate::run_certificate_sync;
pub use certificate_input::{CertificateJobInput, CertificateJobOutcome, CertificateRunRequest};
pub use employee::run_employee_sync;
pub use employee_input::{EmployeeJobInput, EmployeeJobOutcome};
pub use error::JobError;
pub use fence::Fence;
pub use ledger_store::{LedgerError, LedgerStore, MemoryLedgerStore};
pub use reason::{Classification, Classify, Disposition, Reason};

/// A count for a status counter (Kubernetes integers are `i64`).
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
