//! Lock dates compared by meaning: whether reteach keeps `setActiveAt`/`setInactiveAt` once they
//! fired, clears them or returns them in another format is undocumented. Against every one of
//! these simulator modes, a full run after the first one writes nothing, also after the
//! scheduled dates have fired — and the users are still locked and unlocked as they should be.

use crate::support;

use chrono::Duration;
use reteach_personio_operator::clock::Clock;
use reteach_personio_operator::sim::reteach::LockDateEcho;

use support::sims::{date, employee, Sims};

/// Employees in every position of the locking rule; returns their Personio ids
/// `(active, left, starts_soon, leaves_soon)`.
fn seed_company(sims: &Sims) -> (i64, i64, i64, i64) {
    let today = sims.clock.now().date_naive();
    let active = sims.personio.add_employee(employee(1));
    let left = sims
        .personio
        .add_employee(employee(2).with_termination_date(date(2026, 10, 31)));
    let starts_soon = sims
        .personio
        .add_employee(employee(3).with_hire_date(today + Duration::days(10)));
    let leaves_soon = sims
        .personio
        .add_employee(employee(4).with_termination_date(today + Duration::days(10)));
    (active, left, starts_soon, leaves_soon)
}

fn status_of(sims: &Sims, personio_id: i64) -> String {
    let customer = sims
        .reteach
        .customer(&personio_id.to_string())
        .expect("synced");
    customer.status(sims.clock.now()).to_string()
}

async fn full_runs_write_nothing_once_synced(echo: LockDateEcho) {
    let sims = Sims::start().await;
    sims.reteach.set_lock_date_echo(echo);
    let (active, left, starts_soon, leaves_soon) = seed_company(&sims);

    let first = sims.sync_employees().await;
    assert_eq!(first.summary.created, 4, "{echo:?}: {:?}", first.summary);
    let writes = sims.reteach.total_writes();
    assert_eq!(status_of(&sims, left), "INACTIVE", "{echo:?}");
    assert_eq!(status_of(&sims, starts_soon), "INACTIVE", "{echo:?}");
    assert_ne!(status_of(&sims, active), "INACTIVE", "{echo:?}");

    let second = sims.sync_employees().await;
    assert_eq!(second.summary.updated, 0, "{echo:?}: {:?}", second.planned);
    assert_eq!(sims.reteach.total_writes(), writes, "{echo:?}");

    // The scheduled dates fire: the new hire becomes active, the leaver inactive.
    sims.clock.advance(Duration::days(12));
    assert_ne!(status_of(&sims, starts_soon), "INACTIVE", "{echo:?}");
    assert_eq!(status_of(&sims, leaves_soon), "INACTIVE", "{echo:?}");
    let third = sims.sync_employees().await;
    assert_eq!(third.summary.updated, 0, "{echo:?}: {:?}", third.planned);
    assert_eq!(sims.reteach.total_writes(), writes, "{echo:?}");
    assert_eq!(status_of(&sims, left), "INACTIVE", "{echo:?}");
    assert_ne!(status_of(&sims, active), "INACTIVE", "{echo:?}");
}

#[tokio::test]
async fn full_runs_write_nothing_when_reteach_keeps_fired_dates() {
    full_runs_write_nothing_once_synced(LockDateEcho::Kept).await;
}

#[tokio::test]
async fn full_runs_write_nothing_when_reteach_clears_fired_dates() {
    full_runs_write_nothing_once_synced(LockDateEcho::ClearedOnceFired).await;
}

#[tokio::test]
async fn full_runs_write_nothing_when_reteach_normalises_the_date_format() {
    full_runs_write_nothing_once_synced(LockDateEcho::Normalised).await;
}

#[tokio::test]
async fn a_rehired_employee_is_unlocked_when_reteach_cleared_the_fired_end_date() {
    let sims = Sims::start().await;
    sims.reteach
        .set_lock_date_echo(LockDateEcho::ClearedOnceFired);
    let left = sims
        .personio
        .add_employee(employee(1).with_termination_date(date(2026, 10, 31)));
    sims.sync_employees().await;
    assert_eq!(status_of(&sims, left), "INACTIVE");
    let customer = sims.reteach.customer(&left.to_string()).expect("synced");
    assert_eq!(
        customer.set_inactive_at, None,
        "reteach cleared the fired date"
    );

    // Rehired: the contract runs on; Personio's termination date is gone.
    sims.personio
        .update_employee(left, |e| e.termination_date = None);
    let rehired = sims.sync_employees().await;
    assert_eq!(rehired.summary.unlocked, 1, "{:?}", rehired.planned);
    assert_ne!(status_of(&sims, left), "INACTIVE");
    let writes = sims.reteach.total_writes();
    let again = sims.sync_employees().await;
    assert_eq!(again.summary.updated, 0, "{:?}", again.planned);
    assert_eq!(sims.reteach.total_writes(), writes);
}
