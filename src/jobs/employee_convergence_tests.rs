//! Repeated full runs over arbitrary employees and users settle without losing a user or using a
//! login or Personio id twice (property test).

use std::collections::HashSet;

use chrono::NaiveDate;
use proptest::prelude::*;

use super::tests::{employee, full, personio_with, run_ok};
use super::*;
use crate::jobs::fakes::FakeReteach;
use crate::sync::PersonioEmployee;

const EMAILS: [Option<&str>; 6] = [
    Some("a@x.io"),
    Some("b@x.io"),
    Some("A@X.io"),
    Some("c@x.io"),
    None,
    Some("not-an-address"),
];

fn arbitrary_employee() -> impl Strategy<Value = PersonioEmployee> {
    (
        1u8..8,
        0usize..EMAILS.len(),
        proptest::option::of(0i64..3_000),
        proptest::option::of(0i64..3_000),
        proptest::option::of(prop::sample::select(vec!["m", "female", "x", "other"])),
    )
        .prop_map(|(id, email, hire, end, gender)| {
            let base = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
            PersonioEmployee {
                id: id.to_string(),
                email: EMAILS[email].map(String::from),
                hire_date: hire.map(|d| base + chrono::Duration::days(d)),
                termination_date: end.map(|d| base + chrono::Duration::days(d)),
                gender: gender.map(String::from),
                ..employee(&id.to_string())
            }
        })
}

proptest! {
    /// Repeated runs settle (a run with nothing to write); no user is lost, no login or
    /// Personio id is used twice.
    #[test]
    fn repeated_full_runs_settle(
        employees in proptest::collection::vec(arbitrary_employee(), 0..10),
        existing in proptest::collection::btree_map(0usize..4, proptest::option::of(1u8..8), 0..4),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            // Personio ids are unique.
            let mut seen = HashSet::new();
            let employees: Vec<_> =
                employees.into_iter().filter(|e| seen.insert(e.id.clone())).collect();
            let personio = personio_with(employees);
            let reteach = FakeReteach::default();
            let mut linked = HashSet::new();
            for (email, external) in &existing {
                // Distinct addresses; each Personio id linked at most once.
                let external = external.filter(|id| linked.insert(*id));
                reteach.customers.lock().unwrap().push(ReteachCustomer {
                    id: format!("pre{email}"),
                    // Addresses distinct even ignoring case, as reteach enforces.
                    email: [Some("a@x.io"), Some("b@x.io"), Some("c@x.io"), None][*email]
                        .map(String::from),
                    external_id: external.map(|id| id.to_string()),
                    ..Default::default()
                });
            }
            let before = reteach.customers.lock().unwrap().len();

            // An address freed by one employee's change is only taken by another in the
            // next run (the plan sees reteach as it was), so chains settle one link per run.
            let mut settled = false;
            for _ in 0..6 {
                let run = run_ok(&personio, &reteach, &full()).await;
                if run.summary.created + run.summary.updated == 0 {
                    settled = true;
                    break;
                }
            }
            assert!(settled, "still writing after six runs");

            let customers = reteach.customers.lock().unwrap().clone();
            assert!(customers.len() >= before);
            let mut emails = HashSet::new();
            let mut externals = HashSet::new();
            for customer in &customers {
                if let Some(email) = &customer.email {
                    assert!(emails.insert(email.to_lowercase()), "login used twice");
                }
                if let Some(external) = &customer.external_id {
                    assert!(externals.insert(external.clone()), "Personio id used twice");
                }
            }
        });
    }
}
