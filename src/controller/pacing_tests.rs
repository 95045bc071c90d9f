use super::*;
use chrono::TimeZone;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0)
        .single()
        .unwrap()
}

fn spread() -> StartupSpread {
    StartupSpread {
        started: start(),
        limit: Duration::from_secs(3600),
    }
}

fn overdue(uid: &str) -> SpreadInput<'_> {
    SpreadInput {
        uid,
        created: Some(start() - chrono::Duration::days(3)),
        interval: Some(Duration::from_secs(300)),
        next_sync_time: Some(start() - chrono::Duration::hours(1)),
        reason: DueReason::IntervalElapsed,
    }
}

#[test]
fn the_offset_is_the_same_for_the_same_uid_and_inside_the_window() {
    let window = Duration::from_secs(300);
    let a = startup_offset("4f1c2d9e-0000-4000-8000-000000000001", window);
    assert_eq!(
        a,
        startup_offset("4f1c2d9e-0000-4000-8000-000000000001", window)
    );
    assert!(a < window);
    assert_eq!(startup_offset("anything", Duration::ZERO), Duration::ZERO);
}

#[test]
fn a_thousand_overdue_resources_fill_their_interval_evenly() {
    let window = Duration::from_secs(300);
    let mut per_minute = [0usize; 5];
    for n in 0..1_000 {
        let uid = format!("9b2e7c41-5d3a-4f6e-8a1b-{n:012}");
        let offset = startup_offset(&uid, window);
        per_minute[(offset.as_secs() / 60) as usize] += 1;
    }
    // 200 per minute if perfectly even; a herd would put them all into one.
    for count in per_minute {
        assert!((150..=250).contains(&count), "{per_minute:?}");
    }
}

#[test]
fn an_overdue_resource_waits_for_its_offset_after_the_start() {
    let input = overdue("9b2e7c41-5d3a-4f6e-8a1b-000000000042");
    let offset = startup_offset(
        input.uid,
        spread_window(Some(Duration::from_secs(300)), Duration::MAX),
    );
    assert!(
        offset < Duration::from_secs(270),
        "within the first 90 % of the interval"
    );
    assert!(!offset.is_zero());
    assert_eq!(spread().hold(&input, start()), Some(offset));
    let later = start() + chrono::Duration::from_std(offset).unwrap();
    assert_eq!(
        spread().hold(&input, later),
        None,
        "runs once its turn came"
    );
}

#[test]
fn only_runs_due_before_the_start_are_held() {
    let uid = "9b2e7c41-5d3a-4f6e-8a1b-000000000042";
    let now = start() + chrono::Duration::seconds(1);
    let came_due_later = SpreadInput {
        next_sync_time: Some(start() + chrono::Duration::milliseconds(500)),
        ..overdue(uid)
    };
    assert_eq!(spread().hold(&came_due_later, now), None);
    let created_later = SpreadInput {
        created: Some(start() + chrono::Duration::milliseconds(500)),
        next_sync_time: None,
        reason: DueReason::FirstRun,
        ..overdue(uid)
    };
    assert_eq!(spread().hold(&created_later, now), None);
    for reason in [
        DueReason::SpecChanged,
        DueReason::Requested,
        DueReason::Blocked,
    ] {
        let input = SpreadInput {
            reason,
            ..overdue(uid)
        };
        assert_eq!(spread().hold(&input, start()), None, "{reason:?}");
    }
    let never_ran_before_the_start = SpreadInput {
        next_sync_time: None,
        reason: DueReason::FirstRun,
        ..overdue(uid)
    };
    assert!(spread()
        .hold(&never_ran_before_the_start, start())
        .is_some());
}

#[test]
fn the_window_is_the_interval_capped_by_the_limit_and_zero_switches_it_off() {
    let uid = "9b2e7c41-5d3a-4f6e-8a1b-000000000042";
    let daily = SpreadInput {
        interval: Some(Duration::from_secs(24 * 3600)),
        ..overdue(uid)
    };
    let hold = spread().hold(&daily, start()).unwrap();
    assert!(hold < Duration::from_secs(3600), "{hold:?}");
    let off = StartupSpread {
        limit: Duration::ZERO,
        ..spread()
    };
    assert_eq!(off.hold(&overdue(uid), start()), None);
}

/// An EmployeeSync that ran a minute before `now` and is next due in four minutes.
fn synced_employee_sync(now: DateTime<Utc>) -> EmployeeSync {
    let mut object: EmployeeSync = serde_json::from_value(serde_json::json!({
        "apiVersion": "sync.reteach.io/v1alpha1",
        "kind": "EmployeeSync",
        "metadata": {"name": "personio", "namespace": "academy-a", "uid": "u-1", "generation": 1},
        "spec": {
            "personio": {"credentialsSecretRef": {"name": "p"}},
            "reteach": {"credentialsSecretRef": {"name": "r"}}
        }
    }))
    .unwrap();
    let mut status = crate::api::EmployeeSyncStatus::default();
    status.common.observed_generation = Some(1);
    status.common.last_sync_time = Some(now - chrono::Duration::minutes(1));
    status.common.next_sync_time = Some(now + chrono::Duration::minutes(4));
    object.status = Some(status);
    object
}

#[test]
fn a_notified_run_is_due_through_the_gate_and_so_takes_a_slot() {
    let now = start() + chrono::Duration::minutes(5);
    let object = synced_employee_sync(now);
    let pacing = Pacing {
        spread: spread(),
        slots: RunSlots::new(1),
    };
    let quiet = Wake::default();
    assert!(matches!(pacing.gate(&object, quiet, now), Gate::NotDue));
    let notified = Wake {
        notified: true,
        gap: Duration::from_secs(10),
        backing_off: false,
    };
    assert!(
        matches!(
            pacing.gate(&object, notified, now),
            Gate::Due(DueReason::Notified)
        ),
        "a notified run must wait for a slot like any other"
    );
    let mut backing_off = object.clone();
    if let Some(status) = backing_off.status.as_mut() {
        status.common.consecutive_failures = 2;
    }
    assert!(matches!(
        pacing.gate(&backing_off, notified, now),
        Gate::NotDue
    ));
}
