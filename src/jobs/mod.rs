//! One run of each sync, written against the client traits so the controllers, the demo and the benchmark share it.
pub mod certificate;
pub mod employee;
pub use certificate::JobError;
