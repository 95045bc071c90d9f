//! One run of each sync, written against the client traits so the controllers, the demo and the benchmark share it.
//! Jobs take everything as input (time, time zone, previous state) and return an outcome; they know
//! nothing about Kubernetes.

pub mod certificate;
pub mod employee;
mod error;
mod failures;
#[cfg(test)]
mod fakes;
pub mod pdf_check;

pub use certificate::{
    resolve_category, run_certificate_sync, CertificateJobInput, CertificateJobOutcome,
    LedgerError, LedgerStore, MemoryLedgerStore,
};
pub use employee::{run_employee_sync, EmployeeJobInput, EmployeeJobOutcome};
pub use error::JobError;
