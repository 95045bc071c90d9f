//! The mass-change guard: a run that would lock or unlock an unusual share of the academy, or that
//! sees far fewer employees than the previous full run, is held until a human approves exactly that
//! plan. A broken attribute whitelist, a wrong bulk edit or a test company's credentials in Personio
//! would otherwise lock half an academy in one run (identity provisioning systems such as Microsoft
//! Entra hold such runs the same way).

use std::fmt::Write as _;

use super::{EmployeeAction, EmployeePlan};

/// The thresholds of the guard (from `spec.massChangeGuard`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MassChangeLimits {
    /// Most users one run may lock plus unlock, as a percentage of the academy.
    pub max_change_percent: u32,
    /// Changes up to this many users always pass, whatever the percentage (small academies).
    pub min_users: u32,
    /// A full run must see at least this percentage of the employees of the previous full run;
    /// 0 turns the check off.
    pub min_seen_percent: u32,
}

/// What the guard looks at besides the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MassChangeInput<'a> {
    /// The plan of this run.
    pub plan: &'a EmployeePlan,
    /// Users in the reteach academy (listed by this run, or remembered from the latest listing).
    pub academy_users: Option<u64>,
    /// Employees Personio returned to this run (including skipped records).
    pub seen: u64,
    /// Whether this run read every employee (only then is `seen` comparable).
    pub full: bool,
    /// Employees seen by the previous successful full run.
    pub previous_full_seen: Option<u64>,
    /// The plan id the resource's approval annotation names, if any.
    pub approved_plan: Option<&'a str>,
    /// The approval already used by an earlier run (an approval is good for one run).
    pub consumed_approval: Option<&'a str>,
}

/// Why a run was held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldReason {
    /// More users locked or unlocked than the limit.
    TooManyChanges,
    /// Far fewer employees than the previous full run.
    FewerEmployees,
}

/// A held run: counts and the plan id an approval must name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldPlan {
    /// Short deterministic id of the planned lock/unlock set (and of the employee count for a
    /// held shrink).
    pub plan_id: String,
    pub reason: HoldReason,
    /// Users the plan would lock.
    pub locks: u64,
    /// Users the plan would unlock.
    pub unlocks: u64,
    /// Academy size the percentage was taken of.
    pub academy_users: u64,
    /// Most changes allowed without approval.
    pub allowed_changes: u64,
    /// Employees seen by this run and by the previous full run.
    pub seen: u64,
    pub previous_full_seen: Option<u64>,
}

impl HeldPlan {
    /// The user-facing sentence: counts, plan id and how to approve. Ids and counts only.
    pub fn message(&self, approve_annotation: &str) -> String {
        let what = match self.reason {
            HoldReason::TooManyChanges => format!(
                "this run would lock {} and unlock {} of {} users, more than the {} allowed by \
                 spec.massChangeGuard",
                self.locks, self.unlocks, self.academy_users, self.allowed_changes
            ),
            HoldReason::FewerEmployees => format!(
                "Personio returned {} employees, far fewer than the {} of the previous full run \
                 (spec.massChangeGuard.minSeenPercent); the plan would lock {} and unlock {} users",
                self.seen,
                self.previous_full_seen.unwrap_or_default(),
                self.locks,
                self.unlocks
            ),
        };
        format!(
            "held plan {}: {what}. Nothing was written. Check Personio (attribute whitelist, recent \
             bulk edits, credentials); if the change is intended, approve exactly this plan with \
             the annotation {approve_annotation}={}",
            self.plan_id, self.plan_id
        )
    }
}

/// Whether the run may apply its plan (`None`) or is held (`Some`).
pub fn check_mass_change(
    limits: &MassChangeLimits,
    input: &MassChangeInput<'_>,
) -> Option<HeldPlan> {
    let (locks, unlocks) = lock_changes(input.plan);
    let planned = u64::try_from(input.plan.entries.len()).unwrap_or(u64::MAX);
    let academy_users = input.academy_users.unwrap_or(0).max(planned);
    let allowed_changes =
        percent_of(academy_users, limits.max_change_percent).max(u64::from(limits.min_users));
    let too_many = locks.len() as u64 + unlocks.len() as u64 > allowed_changes;
    let fewer = input.full
        && limits.min_seen_percent > 0
        && input.previous_full_seen.is_some_and(|previous| {
            input.seen < percent_of(previous, limits.min_seen_percent)
                && previous.saturating_sub(input.seen) > u64::from(limits.min_users)
        });
    let reason = match (too_many, fewer) {
        (true, _) => HoldReason::TooManyChanges,
        (false, true) => HoldReason::FewerEmployees,
        (false, false) => return None,
    };
    let plan_id = plan_id(
        &locks,
        &unlocks,
        (reason == HoldReason::FewerEmployees).then_some(input.seen),
    );
    let approved = input.approved_plan.is_some_and(|id| id.trim() == plan_id)
        && input.consumed_approval != Some(plan_id.as_str());
    if approved {
        return None;
    }
    Some(HeldPlan {
        plan_id,
        reason,
        locks: locks.len() as u64,
        unlocks: unlocks.len() as u64,
        academy_users,
        allowed_changes,
        seen: input.seen,
        previous_full_seen: input.previous_full_seen,
    })
}

/// The id an approval of this plan must name, when the plan would be held; used to record that an
/// approval has been used.
pub fn approved_plan_id(limits: &MassChangeLimits, input: &MassChangeInput<'_>) -> Option<String> {
    let unapproved = MassChangeInput {
        approved_plan: None,
        ..input.clone()
    };
    let held = check_mass_change(limits, &unapproved)?;
    input
        .approved_plan
        .is_some_and(|id| id.trim() == held.plan_id)
        .then_some(held.plan_id)
}

/// `percent`% of `total`, rounded down.
fn percent_of(total: u64, percent: u32) -> u64 {
    let value = u128::from(total) * u128::from(percent.min(100)) / 100;
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// Personio ids the plan locks and unlocks, sorted.
fn lock_changes(plan: &EmployeePlan) -> (Vec<&str>, Vec<&str>) {
    let (mut locks, mut unlocks) = (Vec::new(), Vec::new());
    for entry in &plan.entries {
        if let EmployeeAction::Update {
            locks: locking,
            unlocks: unlocking,
            ..
        } = &entry.action
        {
            if *locking {
                locks.push(entry.personio_id.as_str());
            }
            if *unlocking {
                unlocks.push(entry.personio_id.as_str());
            }
        }
    }
    locks.sort_unstable();
    unlocks.sort_unstable();
    (locks, unlocks)
}

/// 10 hex digits of FNV-1a over the sorted lock and unlock sets: stable across processes,
/// platforms and Rust releases (unlike `DefaultHasher`), and short enough to type.
fn plan_id(locks: &[&str], unlocks: &[&str], seen: Option<u64>) -> String {
    let mut text = String::new();
    for id in locks {
        let _ = write!(text, "L{id};");
    }
    for id in unlocks {
        let _ = write!(text, "U{id};");
    }
    if let Some(seen) = seen {
        let _ = write!(text, "S{seen};");
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:010x}", hash >> 24)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{CustomerPatch, PlannedEmployee};

    const LIMITS: MassChangeLimits = MassChangeLimits {
        max_change_percent: 10,
        min_users: 5,
        min_seen_percent: 50,
    };

    fn entry(id: usize, locks: bool, unlocks: bool) -> PlannedEmployee {
        PlannedEmployee {
            personio_id: id.to_string(),
            action: if locks || unlocks {
                EmployeeAction::Update {
                    customer_id: format!("c{id}"),
                    patch: CustomerPatch::default(),
                    changed: vec!["setInactiveAt"],
                    locks,
                    unlocks,
                }
            } else {
                EmployeeAction::Unchanged
            },
            locked_after: locks,
            warning: None,
            tags: Default::default(),
        }
    }

    /// A plan over `total` employees locking the first `locking` of them.
    fn plan(total: usize, locking: usize) -> EmployeePlan {
        EmployeePlan {
            entries: (0..total).map(|i| entry(i, i < locking, false)).collect(),
        }
    }

    fn input(plan: &EmployeePlan) -> MassChangeInput<'_> {
        MassChangeInput {
            plan,
            academy_users: Some(plan.entries.len() as u64),
            seen: plan.entries.len() as u64,
            full: true,
            previous_full_seen: Some(plan.entries.len() as u64),
            approved_plan: None,
            consumed_approval: None,
        }
    }

    #[test]
    fn lets_a_run_within_the_threshold_pass() {
        let plan = plan(100, 10);
        assert_eq!(check_mass_change(&LIMITS, &input(&plan)), None);
    }

    #[test]
    fn holds_a_run_locking_more_than_ten_percent_of_the_academy() {
        let plan = plan(100, 11);
        let held = check_mass_change(&LIMITS, &input(&plan)).expect("held");
        assert_eq!(held.reason, HoldReason::TooManyChanges);
        assert_eq!((held.locks, held.unlocks, held.academy_users), (11, 0, 100));
        assert_eq!(held.allowed_changes, 10);
        let message = held.message("sync.reteach.io/approve-plan");
        assert!(message.contains(&held.plan_id));
        assert!(
            message.contains("lock 11 and unlock 0 of 100 users"),
            "{message}"
        );
        assert!(
            message.contains("sync.reteach.io/approve-plan="),
            "{message}"
        );
    }

    #[test]
    fn small_academies_may_change_up_to_the_minimum_number_of_users() {
        let plan = plan(10, 5);
        assert_eq!(check_mass_change(&LIMITS, &input(&plan)), None);
        let plan = super::tests::plan(10, 6);
        assert!(check_mass_change(&LIMITS, &input(&plan)).is_some());
    }

    #[test]
    fn holds_when_every_contract_ended_yesterday() {
        let plan = plan(40, 40);
        let held = check_mass_change(&LIMITS, &input(&plan)).expect("held");
        assert_eq!(held.locks, 40);
    }

    #[test]
    fn unlocks_count_like_locks() {
        let plan = EmployeePlan {
            entries: (0..50).map(|i| entry(i, false, i < 6)).collect(),
        };
        let held = check_mass_change(&LIMITS, &input(&plan)).expect("held");
        assert_eq!((held.locks, held.unlocks), (0, 6));
    }

    #[test]
    fn holds_a_full_run_that_sees_far_fewer_employees_than_the_previous_one() {
        let plan = plan(40, 0);
        let mut shrunk = input(&plan);
        shrunk.previous_full_seen = Some(100);
        let held = check_mass_change(&LIMITS, &shrunk).expect("held");
        assert_eq!(held.reason, HoldReason::FewerEmployees);
        assert!(held
            .message("a")
            .contains("Personio returned 40 employees, far fewer than the 100"));
        // Incremental runs see only changes; their count says nothing.
        shrunk.full = false;
        assert_eq!(check_mass_change(&LIMITS, &shrunk), None);
        // Turned off.
        let off = MassChangeLimits {
            min_seen_percent: 0,
            ..LIMITS
        };
        shrunk.full = true;
        assert_eq!(check_mass_change(&off, &shrunk), None);
    }

    #[test]
    fn a_small_company_losing_a_few_employees_is_not_held() {
        let plan = plan(4, 0);
        let mut shrunk = input(&plan);
        shrunk.previous_full_seen = Some(9);
        assert_eq!(check_mass_change(&LIMITS, &shrunk), None);
    }

    #[test]
    fn the_plan_id_is_deterministic_and_depends_on_the_set_only() {
        let plan = plan(100, 20);
        let first = check_mass_change(&LIMITS, &input(&plan)).unwrap().plan_id;
        let mut reversed = plan.clone();
        reversed.entries.reverse();
        let second = check_mass_change(&LIMITS, &input(&reversed))
            .unwrap()
            .plan_id;
        assert_eq!(first, second);
        assert_eq!(first.len(), 10);
        let other = super::tests::plan(100, 21);
        assert_ne!(
            check_mass_change(&LIMITS, &input(&other)).unwrap().plan_id,
            first
        );
    }

    #[test]
    fn an_approval_lets_exactly_that_plan_pass_once() {
        let plan = plan(100, 20);
        let id = check_mass_change(&LIMITS, &input(&plan)).unwrap().plan_id;
        let approved = MassChangeInput {
            approved_plan: Some(&id),
            ..input(&plan)
        };
        assert_eq!(check_mass_change(&LIMITS, &approved), None);
        assert_eq!(approved_plan_id(&LIMITS, &approved), Some(id.clone()));
        let used = MassChangeInput {
            consumed_approval: Some(&id),
            ..approved.clone()
        };
        assert!(check_mass_change(&LIMITS, &used).is_some(), "used once");
        let different = super::tests::plan(100, 30);
        let stale = MassChangeInput {
            approved_plan: Some(&id),
            ..input(&different)
        };
        assert!(check_mass_change(&LIMITS, &stale).is_some());
        assert_eq!(approved_plan_id(&LIMITS, &stale), None);
    }
}
