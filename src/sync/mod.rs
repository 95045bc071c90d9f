//! The sync core: pure functions from upstream data to plans. No Kubernetes, no HTTP, no clock reads:
//! everything it needs is passed in, so it is tested with plain data.

pub mod duration;
pub mod model;

pub use model::*;
