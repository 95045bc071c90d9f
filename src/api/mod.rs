//! Custom resource types of the `sync.reteach.io/v1alpha1` API: what users write (`spec`) and what the
//! operator reports (`status`). Nothing in here talks to Kubernetes or to an upstream; the controllers,
//! `crdgen` and the demo all share these types.
//!
//! An absent optional field is never written as `null`: a struct with several `Option` fields says so
//! once with `#[skip_serializing_none]` (and `#[serde(default)]` on the struct when every field may be
//! missing), a lone one with `skip_serializing_if` on the field.

mod capability;
mod certificate_sync;
mod common;
pub mod duration;
mod employee_sync;
mod mapping;
mod schema;
mod webhook;

pub use capability::*;
pub use certificate_sync::*;
pub use common::*;
pub use employee_sync::*;
pub use mapping::*;
pub use schema::*;
pub use webhook::*;

/// The API group of every resource of this operator.
pub const GROUP: &str = "sync.reteach.io";
/// Annotation that forces a run, as in Flux: any new value triggers one sync, echoed back in
/// `status.lastHandledReconcileAt`.
pub const REQUESTED_AT_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";
/// Annotation approving one EmployeeSync run the mass-change guard held: its value is the plan id
/// from the `Stalled` message. It approves exactly that plan, once.
pub const APPROVE_PLAN_ANNOTATION: &str = "sync.reteach.io/approve-plan";
