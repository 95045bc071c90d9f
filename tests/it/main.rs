//! Integration tests without Kubernetes, in one test binary (the crate is linked once, not once
//! per file): the real clients and jobs against the Personio and reteach simulators, the CLI
//! (`demo`, `preflight`, `bench`), the CRDs and Argo CD health checks as files, the release and
//! SBOM scripts and the documentation's links. Needs no control plane: `cargo test --test it`,
//! one file's tests with `cargo test --test it -- fault_matrix::`.
//!
//! A new test file `tests/it/NAME.rs` is listed below; one that needs the kube-apiserver belongs to
//! `tests/e2e/`.

#[path = "../health_lua/mod.rs"]
mod health_lua;

#[path = "../listener/mod.rs"]
mod listener;

#[path = "../preflight_support/mod.rs"]
mod preflight_support;

#[path = "../support/mod.rs"]
mod support;

mod argocd_health;
mod bad_input;
mod bad_spec;
mod bench;
mod crds;
mod demo;
mod docs;
mod fault_matrix;
mod layout;
mod lock_dates_sim;
mod mapping_integration;
mod personio_client;
mod personio_sim;
mod preflight;
mod redirects;
mod release_process;
mod reteach_client;
mod reteach_sim;
mod sbom;
mod sync_integration;
mod tags_integration;
mod tls_ca_bundle;
