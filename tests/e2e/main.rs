//! End-to-end tests against the real kube-apiserver that `scripts/test.sh` starts
//! (`RPO_E2E_KUBECONFIG`, `HELM_BIN`), in one test binary: the controllers in-process, the operator
//! binary as processes, the Helm chart. Every test works in namespaces of its own and installs the
//! current CRDs, so the tests run in parallel with each other. Run with
//! `scripts/test.sh --test e2e`, one file's tests with `scripts/test.sh --test e2e -- shards::`.
//!
//! A test that changes what every other test sees (the apiserver itself, the CRDs' schema) belongs
//! to `tests/e2e_alone/` instead.

#[path = "../health_lua/mod.rs"]
mod health_lua;

#[path = "../listener/mod.rs"]
mod listener;

#[path = "../preflight_support/mod.rs"]
mod preflight_support;

#[path = "../support/mod.rs"]
mod support;

mod certificate_sync;
mod certificate_tenants;
mod chart;
mod crash_safety;
mod crds;
mod egress;
mod employee_sync;
mod fencing;
mod kstatus;
mod leader_handover;
mod mapping;
mod mass_change;
mod metrics;
mod operator_process;
mod preflight;
mod safety_rails;
mod shards;
mod webhook_latency;
mod webhooks;
mod webhooks_hostile;
