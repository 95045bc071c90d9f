//! End-to-end tests that need the control plane to themselves: one restarts the kube-apiserver,
//! one installs an earlier release's CRDs. Cargo runs test binaries one after the other, so no
//! test of another binary sees that; within this binary [`ALONE`] lets one test run at a time.
//! Run with `scripts/test.sh --test e2e_alone`.

#[path = "../support/mod.rs"]
mod support;

/// Held by every test of this binary for its whole run: each changes what any other test running
/// at the same time would see (a tokio mutex: the tests run on runtimes of their own).
pub static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

mod apiserver_restart;
mod upgrade_fixtures;
