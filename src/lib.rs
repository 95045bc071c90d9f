//! reteach-personio-operator: a Kubernetes operator that copies employees from Personio into reteach
//! and uploads reteach course certificates into the employees' Personio files.
//!
//! Data flows one way: Secret → clients ([`personio`], [`reteach`]) → plan ([`sync`]) → apply
//! ([`jobs`]) → status ([`controller`]). `sim` holds stateful simulators of both upstreams for
//! tests, the demo and the benchmark; it, `demo` and `bench` exist only with the `dev-tools`
//! feature (on by default, off in the production image). [`preflight`] probes a tenant
//! read-only before a first run.

pub mod api;
#[cfg(feature = "dev-tools")]
pub mod bench;
pub mod clock;
pub mod controller;
pub mod crdgen;
pub mod credentials;
#[cfg(feature = "dev-tools")]
pub mod demo;
pub mod jobs;
pub mod listener;
pub mod metrics;
pub mod personio;
pub mod preflight;
pub mod reteach;
#[cfg(feature = "dev-tools")]
pub mod sim;
pub mod sync;
pub mod upstream;
pub mod webhook;

#[cfg(test)]
mod layers_tests;
