//! End-to-end (issue 17): `spec.mapping`, `spec.selector` and `spec.tags` of an EmployeeSync on a
//! real kube-apiserver against the simulators — a custom attribute mapped, employees filtered in
//! and out, department and role tags set, swapped and kept, the attributes to whitelist and the
//! owned tags in status, an invalid mapping or tag rule stalled naming the field, a field the
//! academy refuses reported in status and by one Event. Run with
//! `scripts/test.sh --test e2e -- mapping::`.

use crate::support;

use chrono::{Days, Utc};
use reteach_personio_operator::api::{EmployeeSyncStatus, UnsupportedFieldReason};
use reteach_personio_operator::sim::personio::EmployeeSeed;
use reteach_personio_operator::sim::reteach::{FieldMode, ReteachSim, SimTag};
use serde_json::json;
use support::operator::{condition, is_ready, World};

const SYNC: &str = "mapped";
const EMPLOYEE_NO: &str = "dynamic_44101";

fn ready_message(status: &EmployeeSyncStatus) -> String {
    condition(&status.common.conditions, "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

fn tags_of(sim: &ReteachSim, personio_id: i64) -> Vec<String> {
    let mut names: Vec<String> = sim
        .customer(&personio_id.to_string())
        .map(|user| user.tags.into_iter().map(|tag| tag.name).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn seed(first: &str, email: &str, department: &str, number: &str) -> EmployeeSeed {
    EmployeeSeed::new(first, "Mapped", email)
        .with_hire_date(Utc::now().date_naive() - Days::new(300))
        .with_department(1, department)
        .with_office(2, "Munich")
        .with_custom(EMPLOYEE_NO, number)
}

#[tokio::test]
async fn a_mapping_and_a_selector_sync_part_of_the_company_and_lock_who_leaves_it() {
    let world = World::with_secrets("esync-mapping").await;
    let personio = &world.personio.sim;
    let sales = personio.add_employee(seed("Sam", "sam@acme.example", "Sales", "E-1"));
    let support = personio.add_employee(seed("Sue", "sue@acme.example", "Support", "E-2"));
    let mover = personio.add_employee(seed("Max", "max@acme.example", "Sales", "E-3"));
    let spec = json!({
        "mapping": {
            "position": {"template": format!("{{position}} #{{{EMPLOYEE_NO}}}")},
            "location": {"constant": "HQ"},
        },
        "selector": {"include": [{"attribute": "department", "values": ["sales"]}]},
        "tags": [
            {"attribute": "department", "prefix": "dept:"},
            {"template": "role-{position}"},
            {"constant": "personio"},
        ],
    });
    world.apply(world.employee_sync(SYNC, spec)).await;
    let sync = world
        .wait_employee_sync(SYNC, "Ready=True", |s| is_ready(&s.common.conditions))
        .await;
    let status = sync.status.expect("status");
    assert!(
        status.personio_attributes.iter().any(|a| a == EMPLOYEE_NO),
        "{:?}",
        status.personio_attributes
    );
    assert!(
        !status.personio_attributes.iter().any(|a| a == "office"),
        "a constant location needs no office: {:?}",
        status.personio_attributes
    );
    let user = world
        .reteach
        .sim
        .customer(&sales.to_string())
        .expect("the selected employee is synced");
    assert_eq!(user.position.as_deref(), Some("Engineer #E-1"));
    assert_eq!(user.location.as_deref(), Some("HQ"));
    assert!(
        world.reteach.sim.customer(&support.to_string()).is_none(),
        "an employee outside the selection is not created"
    );
    let reteach = &world.reteach.sim;
    assert_eq!(
        tags_of(reteach, sales),
        ["dept:Sales", "personio", "role-Engineer"]
    );
    assert_eq!(
        status.managed_tags,
        ["dept:Sales", "personio", "role-Engineer"]
    );
    assert!(status.personio_attributes.iter().any(|a| a == "department"));
    reteach.edit_customer(&mover.to_string(), |user| {
        user.tags.push(SimTag {
            id: "tag_by_hand".into(),
            name: "First aider".into(),
        })
    });

    // Sam moves to Support (leaves the selection), Sue to Sales (enters it), Max becomes a lead.
    let changed_at = Utc::now();
    personio.update_employee(mover, |seed| seed.position = Some("Lead".into()));
    personio.update_employee(sales, |seed| {
        seed.department.as_mut().expect("unit").name = "Support".into()
    });
    personio.update_employee(support, |seed| {
        seed.department.as_mut().expect("unit").name = "Sales".into()
    });
    world
        .wait_employee_sync(SYNC, "a run after the moves", |s| {
            s.last_run
                .as_ref()
                .is_some_and(|r| r.started_at > changed_at)
                && is_ready(&s.common.conditions)
        })
        .await;
    assert_eq!(
        world.reteach.sim.status_of(&sales.to_string()),
        Some("INACTIVE"),
        "who leaves the selection is locked"
    );
    assert!(world.reteach.sim.customer(&sales.to_string()).is_some());
    assert_eq!(world.reteach.sim.delete_requests(), 0, "never deleted");
    assert!(
        world.reteach.sim.customer(&support.to_string()).is_some(),
        "who enters the selection is synced"
    );
    assert_eq!(
        tags_of(reteach, support),
        ["dept:Sales", "personio", "role-Engineer"]
    );
    assert_eq!(
        tags_of(reteach, sales),
        ["dept:Sales", "personio", "role-Engineer"],
        "who leaves keeps their tags"
    );
    assert_eq!(
        tags_of(reteach, mover),
        ["First aider", "dept:Sales", "personio", "role-Lead"],
        "the role tag is swapped, the hand-set one stays"
    );
    let sync = world
        .wait_employee_sync(SYNC, "role-Lead owned", |s| {
            s.managed_tags.iter().any(|t| t == "role-Lead")
        })
        .await;
    assert!(!sync
        .status
        .expect("status")
        .managed_tags
        .contains(&"First aider".to_string()));
}

/// Applies `spec` in a world with one employee and waits for `Stalled`; checks the reason is
/// `InvalidSpec` and returns the status and the Stalled message.
async fn stalled_by_invalid_spec(
    prefix: &str,
    spec: serde_json::Value,
) -> (World, EmployeeSyncStatus, String) {
    let world = World::with_secrets(prefix).await;
    world
        .personio
        .sim
        .add_employee(seed("Sam", "sam@acme.example", "Sales", "E-1"));
    world.apply(world.employee_sync(SYNC, spec)).await;
    let sync = world
        .wait_employee_sync(SYNC, "Stalled=True", |s| {
            condition(&s.common.conditions, "Stalled").is_some_and(|c| c.status == "True")
        })
        .await;
    let status = sync.status.expect("status");
    let stalled = condition(&status.common.conditions, "Stalled").expect("Stalled");
    assert_eq!(stalled.reason, "InvalidSpec");
    let message = stalled.message.clone();
    (world, status, message)
}

#[tokio::test]
async fn an_invalid_tag_rule_stalls_naming_it() {
    let spec = json!({"tags": [{"constant": "all"}, {"template": "team-{department"}]});
    let (world, _, message) = stalled_by_invalid_spec("esync-bad-tags", spec).await;
    assert!(message.contains("spec.tags[1].template"), "{message}");
    assert!(world.reteach.sim.customers().is_empty(), "nothing written");
}

#[tokio::test]
async fn an_invalid_mapping_stalls_naming_the_field() {
    let spec = json!({"mapping": {"position": {"constant": "Staff", "template": "{position}"}}});
    let (world, status, message) = stalled_by_invalid_spec("esync-bad-mapping", spec).await;
    assert!(message.contains("spec.mapping.position"), "{message}");
    assert!(!ready_message(&status).is_empty());
    assert!(world.reteach.sim.customers().is_empty(), "nothing written");
}

#[tokio::test]
async fn a_field_the_academy_refuses_shows_in_status_with_one_event_and_no_more_writes() {
    let world = World::with_secrets("esync-refused").await;
    world
        .reteach
        .sim
        .set_field_mode("position", FieldMode::Refuse);
    let personio = &world.personio.sim;
    let ids = [
        personio.add_employee(seed("Sam", "sam@acme.example", "Sales", "E-1")),
        personio.add_employee(seed("Sue", "sue@acme.example", "Support", "E-2")),
    ];
    world.apply(world.employee_sync(SYNC, json!({}))).await;
    let sync = world
        .wait_employee_sync(SYNC, "Ready=True naming position", |s| {
            is_ready(&s.common.conditions) && !s.unsupported_fields.is_empty()
        })
        .await;
    let status = sync.status.expect("status");
    assert_eq!(status.unsupported_fields.len(), 1, "{status:?}");
    assert_eq!(status.unsupported_fields[0].field, "position");
    assert_eq!(
        status.unsupported_fields[0].reason,
        UnsupportedFieldReason::Refused
    );
    let ready = condition(&status.common.conditions, "Ready").expect("Ready");
    assert_eq!(ready.reason, "UnsupportedFields");
    assert!(
        ready.message.contains("position (refused)"),
        "{}",
        ready.message
    );
    assert!(
        condition(&status.common.conditions, "Stalled").is_none(),
        "{status:?}"
    );
    let run = status.last_run.expect("last run");
    assert_eq!((run.created, run.failed), (2, 0), "{run:?}");
    for id in ids {
        let user = world.reteach.sim.customer(&id.to_string()).expect("synced");
        assert_eq!(user.position, None);
    }
    world
        .wait_event(
            SYNC,
            "UnsupportedFields",
            "property position should not exist",
        )
        .await;

    // Two more runs: nothing written, no second Event.
    let after_first = Utc::now();
    world.wait_employee_run_after(SYNC, after_first).await;
    let writes = world.reteach.sim.total_writes();
    let refused = refused_writes(&world);
    let after_second = Utc::now();
    let sync = world.wait_employee_run_after(SYNC, after_second).await;
    assert_eq!(world.reteach.sim.total_writes(), writes, "zero writes");
    assert_eq!(refused_writes(&world), refused, "no refused write either");
    let status = sync.status.expect("status");
    assert_eq!(status.unsupported_fields.len(), 1, "{status:?}");
    let events = world
        .events_about(SYNC)
        .await
        .into_iter()
        .filter(|event| event.reason.as_deref() == Some("UnsupportedFields"))
        .count();
    assert_eq!(events, 1, "one Warning Event");
}

fn refused_writes(world: &World) -> usize {
    world
        .reteach
        .sim
        .control()
        .requests()
        .iter()
        .filter(|request| request.status == 400)
        .count()
}

#[tokio::test]
async fn the_capabilities_check_the_attributes_the_mapping_reads() {
    let world = World::with_preflight("esync-mapped-preflight").await;
    world
        .personio
        .sim
        .add_employee(seed("Sam", "sam@acme.example", "Sales", "E-1"));
    // The default whitelist without position and office, and without the custom attribute.
    world.personio.sim.set_whitelist(Some(&[
        "first_name",
        "last_name",
        "email",
        "department",
        "gender",
        "hire_date",
        "termination_date",
    ]));
    let spec = json!({"mapping": {
        "position": {"unmapped": true},
        "location": {"attribute": EMPLOYEE_NO},
    }});
    world.apply(world.employee_sync(SYNC, spec)).await;
    let sync = world
        .wait_employee_sync(SYNC, "capabilities recorded", |s| {
            !s.common.capabilities.is_empty()
        })
        .await;
    let capabilities = sync.status.expect("status").common.capabilities;
    let attributes = capabilities
        .iter()
        .find(|c| c.name == "personio-attributes")
        .expect("an attribute row");
    assert_eq!(attributes.state, "Missing", "{capabilities:?}");
    assert!(
        attributes.message.contains(EMPLOYEE_NO),
        "{}",
        attributes.message
    );
    for unused in ["position", "office"] {
        assert!(
            !attributes.message.contains(unused),
            "{unused} is not read: {}",
            attributes.message
        );
    }
}
