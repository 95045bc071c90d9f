//! Tag rules in a run: a failed tag request is a record failure, refused credentials stop the run,
//! a dry run only counts tag changes.

use super::tests::{
    assert_mentions, change, employee, full, personio_with, run_err, run_ok, synced, tags_failing,
};
use super::*;
use crate::jobs::fakes::WriteFault;

/// Full runs with a department tag rule.
fn tagged() -> EmployeeJobInput {
    let mut input = full();
    input.config.tags = vec![crate::sync::employee_tags::TagRule {
        source: crate::sync::employee_config::FieldSource::attribute("department"),
        prefix: "dept:".into(),
    }];
    input
}

#[tokio::test]
async fn a_failed_tag_request_is_a_record_failure_not_a_failed_run() {
    let personio = personio_with(vec![employee("1"), employee("2")]);
    let reteach = tags_failing("1", WriteFault::Rejected);
    let outcome = run_ok(&personio, &reteach, &tagged()).await;
    assert_eq!(outcome.summary.created, 2, "the users exist");
    assert_eq!(outcome.summary.failed, 1);
    assert_eq!(outcome.summary.tags_added, 1);
    assert_eq!(outcome.failures.len(), 1);
    assert_eq!(outcome.failures[0].personio_id.as_deref(), Some("1"));
    assert_eq!(
        outcome.failures[0].reason,
        "reteach rejected a tag change; tried again next run"
    );
    let managed = outcome.managed_tags.clone().unwrap();
    assert_eq!(managed, ["dept:R&D"], "owned before it was written");

    // The next run adds the missing tag: a tags-only update.
    reteach.tag_faults.lock().unwrap().clear();
    let mut again = tagged();
    again.managed_tags = managed;
    let outcome = run_ok(&personio, &reteach, &again).await;
    assert_eq!((outcome.summary.updated, outcome.summary.unchanged), (1, 1));
    assert_eq!(outcome.summary.tags_added, 1);
    assert_eq!(reteach.calls_of("update"), 0, "no field write for tags");
}

#[tokio::test]
async fn refused_credentials_on_a_tag_request_stop_the_run() {
    let personio = personio_with(vec![employee("1")]);
    let reteach = tags_failing("1", WriteFault::Unauthorized);
    let error = run_err(&personio, &reteach, &tagged()).await;
    assert_mentions(&error, "could not change tags");
}

#[tokio::test]
async fn a_dry_run_reports_tag_changes_as_counts_and_owns_nothing_new() {
    let (personio, reteach) = synced(&["1"], &tagged()).await;
    change(&personio, "1", |e| e.department = Some("Sales".into()));
    let mut input = tagged();
    input.dry_run = true;
    input.managed_tags = vec!["dept:R&D".into()];
    let outcome = run_ok(&personio, &reteach, &input).await;
    assert_eq!(outcome.managed_tags, None);
    assert_eq!(
        (outcome.summary.tags_added, outcome.summary.tags_removed),
        (1, 1)
    );
    let planned = &outcome.planned[0];
    assert_eq!(planned.fields, ["department", "tags"]);
    assert_eq!((planned.tags_to_add, planned.tags_to_remove), (1, 1));
    assert_eq!(
        reteach.calls_of("add_tags") + reteach.calls_of("remove_tag"),
        1
    );
}
