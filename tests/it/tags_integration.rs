//! Issue 17's `spec.tags` without Kubernetes: the real clients and job against both simulators.
//! Tags are set on create, a department change swaps the department tag (and costs one request
//! per tag), tags set by hand survive, a removed rule's tags go on the next full run, and a run
//! without change sends no tag request at all.

use crate::support;

use chrono::Duration;
use reteach_personio_operator::sim::personio::OrgUnit;
use reteach_personio_operator::sim::reteach::SimTag;
use reteach_personio_operator::sync::employee_config::{EmployeeConfig, FieldSource};
use reteach_personio_operator::sync::employee_tags::TagRule;

use support::sims::Sims;

/// A department tag, a `team-…` template and one tag for everyone.
fn config() -> EmployeeConfig {
    let rule = |source| TagRule {
        source,
        prefix: String::new(),
    };
    EmployeeConfig {
        tags: vec![
            rule(FieldSource::attribute("department")),
            rule(FieldSource::Template("team-{office}".into())),
            rule(FieldSource::Constant("personio".into())),
        ],
        ..EmployeeConfig::default()
    }
}

fn tags_of(sims: &Sims, personio_id: i64) -> Vec<String> {
    let mut names: Vec<String> = sims
        .reteach
        .customer(&personio_id.to_string())
        .expect("user")
        .tags
        .into_iter()
        .map(|tag| tag.name)
        .collect();
    names.sort();
    names
}

/// Requests to the three per-customer tag endpoints.
fn tag_requests(sims: &Sims) -> usize {
    sims.reteach
        .control()
        .requests()
        .iter()
        .filter(|r| r.path.contains("/tags") || r.path.ends_with("/multiple-tags"))
        .count()
}

#[tokio::test]
async fn new_users_get_their_tags_and_a_run_without_change_sends_no_tag_request() {
    let sims = Sims::start().await;
    let ids = sims.add_employees(3);
    sims.set_employee_config(config());
    let outcome = sims.sync_employees().await;
    assert_eq!(outcome.summary.created, 3, "{outcome:?}");
    assert_eq!(outcome.summary.tags_added, 9, "{outcome:?}");
    for id in &ids {
        assert_eq!(
            tags_of(&sims, *id),
            ["Engineering", "personio", "team-Berlin"]
        );
    }
    // One multiple-tags request per new user, never REPLACE (the simulator would wipe tags).
    let assignments: Vec<String> = sims
        .reteach
        .control()
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("tags"))
        .map(|r| {
            format!(
                "{} {}",
                r.method,
                r.path.rsplit('/').next().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(assignments, ["PUT multiple-tags"; 3]);
    let status = sims.employee_status.lock().expect("status").clone();
    assert_eq!(
        status.managed_tags,
        ["Engineering", "personio", "team-Berlin"]
    );
    assert!(status.personio_attributes.contains(&"office".to_string()));

    sims.reteach.control().clear_log();
    sims.clock.advance(Duration::minutes(10));
    let full = sims.sync_employees().await;
    assert_eq!(full.summary.unchanged, 3, "{full:?}");
    sims.clock.advance(Duration::minutes(10));
    let incremental = sims.employee_run(false).await.expect("incremental run");
    assert_eq!(incremental.summary.updated, 0, "{incremental:?}");
    assert_eq!(tag_requests(&sims), 0);
    assert!(sims.reteach.write_requests().is_empty());
}

#[tokio::test]
async fn a_department_change_swaps_the_tag_and_a_hand_set_tag_survives() {
    let sims = Sims::start().await;
    let ids = sims.add_employees(2);
    let ada = ids[0];
    sims.set_employee_config(config());
    sims.sync_employees().await;
    sims.reteach.edit_customer(&ada.to_string(), |customer| {
        customer.tags.push(SimTag {
            id: "tag_by_hand".into(),
            name: "First aider".into(),
        });
    });

    sims.reteach.control().clear_log();
    sims.clock.advance(Duration::minutes(10));
    sims.personio.update_employee(ada, |seed| {
        seed.department = Some(OrgUnit {
            id: 9,
            name: "Sales".into(),
        });
    });
    let outcome = sims.employee_run(false).await.expect("incremental run");
    assert_eq!(outcome.summary.updated, 1, "{outcome:?}");
    assert_eq!(
        (outcome.summary.tags_added, outcome.summary.tags_removed),
        (1, 1)
    );
    assert_eq!(
        tags_of(&sims, ada),
        ["First aider", "Sales", "personio", "team-Berlin"]
    );
    // The field update, one tag added, one removed: three writes for one changed department.
    let writes: Vec<String> = sims
        .reteach
        .write_requests()
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(writes, ["PUT", "PUT", "DELETE"]);
    assert_eq!(sims.reteach.delete_requests(), 0, "no user was deleted");
    let status = sims.employee_status.lock().expect("status").clone();
    assert!(status.managed_tags.contains(&"Engineering".to_string()));
    assert!(status.managed_tags.contains(&"Sales".to_string()));
    assert!(!status.managed_tags.contains(&"First aider".to_string()));
}

#[tokio::test]
async fn a_removed_rule_removes_its_tags_on_the_next_full_run_and_only_those() {
    let sims = Sims::start().await;
    let ids = sims.add_employees(2);
    sims.set_employee_config(config());
    sims.sync_employees().await;
    sims.reteach.edit_customer(&ids[1].to_string(), |customer| {
        customer.tags.push(SimTag {
            id: "tag_by_hand".into(),
            name: "VIP".into(),
        });
    });

    let mut without_constant = config();
    without_constant.tags.pop();
    sims.set_employee_config(without_constant);
    sims.clock.advance(Duration::minutes(10));
    let outcome = sims.sync_employees().await;
    assert_eq!(outcome.summary.tags_removed, 2, "{outcome:?}");
    assert_eq!(outcome.summary.updated, 2, "{outcome:?}");
    assert_eq!(tags_of(&sims, ids[0]), ["Engineering", "team-Berlin"]);
    assert_eq!(
        tags_of(&sims, ids[1]),
        ["Engineering", "VIP", "team-Berlin"]
    );
    // Still listed: users held it when the run began. The next full run drops it.
    let status = sims.employee_status.lock().expect("status").clone();
    assert!(status.managed_tags.contains(&"personio".to_string()));
    sims.clock.advance(Duration::minutes(10));
    sims.sync_employees().await;
    let status = sims.employee_status.lock().expect("status").clone();
    assert_eq!(status.managed_tags, ["Engineering", "team-Berlin"]);
}

#[tokio::test]
async fn a_leaver_keeps_the_tags_they_had() {
    let sims = Sims::start().await;
    let ids = sims.add_employees(1);
    sims.set_employee_config(config());
    sims.sync_employees().await;
    sims.clock.advance(Duration::minutes(10));
    sims.personio.update_employee(ids[0], |seed| {
        seed.termination_date = Some(support::sims::date(2026, 1, 31));
        seed.department = Some(OrgUnit {
            id: 9,
            name: "Sales".into(),
        });
    });
    let outcome = sims.sync_employees().await;
    assert_eq!(outcome.summary.locked, 1, "{outcome:?}");
    assert_eq!(outcome.summary.tags_added + outcome.summary.tags_removed, 0);
    assert_eq!(
        tags_of(&sims, ids[0]),
        ["Engineering", "personio", "team-Berlin"]
    );
}
