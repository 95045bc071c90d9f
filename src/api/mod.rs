//! Custom resource types of the `sync.reteach.io/v1alpha1` API: what users write (`spec`) and what the
//! operator reports (`status`). Nothing in here talks to Kubernetes or to an upstream; the controllers,
//! `crdgen` and the demo all share these types.

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
