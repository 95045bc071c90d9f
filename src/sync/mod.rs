//! The sync core: pure functions from upstream data to plans. No Kubernetes, no HTTP, no clock reads:
//! everything it needs is passed in, so it is tested with plain data.

pub mod candidate_batch;
pub mod certificate_ledger;
pub mod certificate_ledger_state;
pub mod certificate_plan;
pub mod employee_action;
pub mod employee_config;
pub mod employee_fields;
mod employee_identity;
pub mod employee_mapping;
pub mod employee_plan;
mod employee_plan_tags;
pub mod employee_tags;
pub mod field_source;
pub mod field_table;
pub mod lock_window;
pub mod mass_change;
pub mod model;
pub mod redact;
pub mod unsupported_fields;

pub use certificate_plan::{certificate_marker, has_marker};
pub use employee_mapping::{map_employee, DesiredEmployee, MappingError};
pub use employee_plan::{EmployeeAction, EmployeeCounts, EmployeePlan, PlannedEmployee};
pub use lock_window::LockWindow;
pub use model::*;
