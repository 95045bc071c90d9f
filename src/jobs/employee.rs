//! STUB
use crate::api::{EmployeeRunSummary, PlannedAction, RecordFailure};
use crate::personio::PersonioApi;
use crate::reteach::ReteachApi;
use chrono::{DateTime, Utc};
pub struct EmployeeJobInput {
    pub now: DateTime<Utc>,
    pub tz: chrono_tz::Tz,
    pub dry_run: bool,
    pub full: bool,
    pub cursor: Option<DateTime<Utc>>,
}
pub struct EmployeeJobOutcome {
    pub summary: EmployeeRunSummary,
    pub failures: Vec<RecordFailure>,
    pub planned: Vec<PlannedAction>,
    pub next_cursor: Option<DateTime<Utc>>,
    pub transient_failures: i64,
}
pub async fn run_employee_sync(
    _p: &dyn PersonioApi,
    _r: &dyn ReteachApi,
    _i: &EmployeeJobInput,
) -> Result<EmployeeJobOutcome, super::JobError> {
    Err(super::JobError::Config("stub".into()))
}
