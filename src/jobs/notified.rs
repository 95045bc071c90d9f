//! The targeted re-read of an incremental run: the persons webhook notifications named that the
//! change feed left out (Personio v2: an employment change, or `employment.terminated` on its
//! date, leaves the person's `updated_at` where it was).

use std::collections::HashSet;

use crate::personio::{AttributeRequest, EmployeeList, PersonioApi};

use super::error::JobError;

/// Adds the employees webhook notifications named and the listing left out, read by id, when the
/// listing's change feed does not see every change (see [`EmployeeJobInput::notified`]).
pub(super) async fn reread_notified(
    personio: &dyn PersonioApi,
    notified: &[String],
    attributes: &AttributeRequest,
    list: &mut EmployeeList,
) -> Result<(), JobError> {
    if notified.is_empty() || personio.change_feed_sees_everything() {
        return Ok(());
    }
    let listed: HashSet<&str> = list
        .employees
        .iter()
        .map(|e| e.id.as_str())
        .chain(list.skipped.iter().filter_map(|s| s.id.as_deref()))
        .collect();
    let missing: Vec<String> = notified
        .iter()
        .filter(|id| !listed.contains(id.as_str()))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let targeted = personio
        .employees_by_id(&missing, attributes)
        .await
        .map_err(|source| JobError::Personio {
            action: "could not re-read the employees a notification named",
            source,
        })?;
    list.employees.extend(targeted.employees);
    list.skipped.extend(targeted.skipped);
    Ok(())
}
