//! Stretching intervals fairly when the configured ones need more of the Personio budget than
//! there is (issue 26). The shared budget itself ([`crate::upstream::SharedBudget`]) already keeps
//! every minute under Personio's per-IP limit, so an installation that asks for too much never
//! sees a 429 storm — but its runs would queue for turns without end. Instead, each run's cost
//! (the budgeted requests it sent) is remembered with its interval; when the sum of
//! `cost / interval` exceeds the usable budget, the intervals are stretched max-min fairly
//! (water-filling): resources that need little keep their interval, the heavy ones share the rest
//! equally. The effective interval schedules the next run, is written into the `Ready` message
//! and exported as `reteach_personio_sync_effective_interval_seconds`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::duration::{chrono_duration, format_duration, saturating_after, MAX_INTERVAL};
use crate::api::SyncStatusCommon;
use crate::jobs::conditions::READY;
use crate::jobs::schedule::with_jitter;

/// Share of the budget runs may plan with; the rest absorbs retries, preflights, notified runs
/// and first runs that cost more than the average.
pub const PLANNED_SHARE: f64 = 0.8;
/// Weight of the newest run in a resource's cost (exponential moving average).
const NEWEST_WEIGHT: f64 = 0.3;

/// What a resource's runs cost and how often it asks for them.
#[derive(Clone, Copy, Debug)]
struct Demand {
    /// Budgeted requests per run (moving average).
    cost: f64,
    /// `spec.interval`.
    interval: Duration,
    /// When the last run was recorded.
    seen: DateTime<Utc>,
    /// The effective interval it was given then.
    effective: Duration,
}

impl Demand {
    /// Requests per second at the configured interval.
    fn rate(&self) -> f64 {
        self.cost / self.interval.as_secs_f64().max(1.0)
    }
}

/// The interval one resource gets, and how many share the budget with it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stretch {
    /// The interval the next run is scheduled after (at least `spec.interval`).
    pub effective: Duration,
    /// Resources with recent runs that share the budget.
    pub sharing: usize,
    /// The budget in requests per minute.
    pub per_minute: u32,
}

impl Stretch {
    /// The sentence added to the `Ready` message of a stretched resource.
    pub fn message(&self, interval: Duration) -> String {
        format!(
            "Effective interval {} instead of {}: the configured intervals of the {} resources of this operator need more than the Personio budget of {} requests/min (--personio-budget-per-minute), so the heavy ones are stretched alike.",
            format_duration(self.effective),
            format_duration(interval),
            self.sharing,
            self.per_minute
        )
    }
}

/// Max-min fair level: the rate (requests per second) every resource that needs more is held
/// to, so that the rates, each capped at the level, add up to `capacity`. `None`: everyone fits.
pub fn fair_level(rates: &mut [f64], capacity: f64) -> Option<f64> {
    if rates.iter().sum::<f64>() <= capacity {
        return None;
    }
    rates.sort_by(f64::total_cmp);
    let mut left = capacity.max(0.0);
    for (index, rate) in rates.iter().enumerate() {
        let remaining = (rates.len() - index) as f64;
        if *rate * remaining > left {
            return Some(left / remaining);
        }
        left -= rate;
    }
    None
}

/// The interval that holds a resource costing `cost` per run to `level` requests per second.
pub fn stretched(cost: f64, interval: Duration, level: Option<f64>) -> Duration {
    match level {
        Some(level) if level > 0.0 && cost > 0.0 => {
            let needed = Duration::from_secs_f64((cost / level).min(MAX_INTERVAL.as_secs_f64()));
            needed.max(interval)
        }
        _ => interval,
    }
}

/// Schedules the next run of a resource whose run just went through after `stretch.effective`
/// when that is longer than `interval`: moves `nextSyncTime` and says why in the `Ready`
/// message. Returns the new requeue delay; `None` (nothing changed) when the interval is not
/// stretched or the run did not end `Ready=True` (a failed run keeps its backoff).
pub fn schedule_stretched(
    status: &mut SyncStatusCommon,
    now: DateTime<Utc>,
    interval: Duration,
    stretch: &Stretch,
) -> Option<Duration> {
    if stretch.effective <= interval {
        return None;
    }
    let ready = status
        .conditions
        .iter_mut()
        .find(|c| c.type_ == READY && c.status == "True")?;
    ready.message = format!("{} {}", ready.message, stretch.message(interval));
    let delay = with_jitter(stretch.effective);
    status.next_sync_time = Some(saturating_after(now, delay));
    Some(delay)
}

/// Every resource's demand on the budget of one process.
pub struct BudgetPlanner {
    per_minute: u32,
    /// How long past three of its intervals a resource that ran no more still counts (its runs
    /// may be late: slots, the budget itself).
    grace: Duration,
    demands: Mutex<HashMap<String, Demand>>,
}

/// Default of [`BudgetPlanner::with_grace`].
pub const FORGET_GRACE: Duration = Duration::from_secs(3600);

impl BudgetPlanner {
    /// A planner for a budget of `per_minute` requests.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            grace: FORGET_GRACE,
            demands: Mutex::default(),
        }
    }

    /// Resources that ran no more count for three of their intervals plus `grace` (default
    /// [`FORGET_GRACE`]; the benchmark scales it with its time).
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Records a finished run of `resource` that sent `requests` budgeted requests, and returns
    /// the interval its next run is due after. Resources not seen for a while (deleted, moved to
    /// another shard, suspended) drop out of the sharing.
    pub fn record(
        &self,
        resource: &str,
        requests: u64,
        interval: Duration,
        now: DateTime<Utc>,
    ) -> Stretch {
        let mut demands = self.demands.lock().unwrap_or_else(|p| p.into_inner());
        let grace = self.grace;
        demands.retain(|_, demand| {
            let forget_after = demand.effective.max(demand.interval) * 3 + grace;
            now - demand.seen <= chrono_duration(forget_after)
        });
        let newest = requests as f64;
        let cost = demands.get(resource).map_or(newest, |previous| {
            previous.cost * (1.0 - NEWEST_WEIGHT) + newest * NEWEST_WEIGHT
        });
        let capacity = f64::from(self.per_minute) / 60.0 * PLANNED_SHARE;
        let mut rates: Vec<f64> = demands
            .iter()
            .filter(|(key, _)| key.as_str() != resource)
            .map(|(_, demand)| demand.rate())
            .collect();
        rates.push(cost / interval.as_secs_f64().max(1.0));
        let level = fair_level(&mut rates, capacity);
        let effective = stretched(cost, interval, level);
        demands.insert(
            resource.to_string(),
            Demand {
                cost,
                interval,
                seen: now,
                effective,
            },
        );
        Stretch {
            effective,
            sharing: demands.len(),
            per_minute: self.per_minute,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-07T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn everyone_keeps_their_interval_while_the_sum_fits() {
        assert_eq!(fair_level(&mut [1.0, 2.0, 3.0], 6.0), None);
    }

    #[test]
    fn the_level_holds_the_heavy_ones_and_spares_the_light_ones() {
        // 10 req/s to share: the light one keeps its 1, the three heavy ones get 3 each.
        let level = fair_level(&mut [1.0, 8.0, 8.0, 20.0], 10.0).unwrap();
        assert!((level - 3.0).abs() < 1e-9, "{level}");
        assert_eq!(
            stretched(30.0, Duration::from_secs(30), Some(level)),
            Duration::from_secs(30),
            "a resource at 1 req/s is below the level: not stretched"
        );
        assert_eq!(
            stretched(240.0, Duration::from_secs(30), Some(level)),
            Duration::from_secs(80),
            "8 req/s held to 3: 240 requests every 80 s"
        );
    }

    #[test]
    fn three_thousand_academies_share_two_thousand_requests_a_minute() {
        let planner = BudgetPlanner::new(2_000);
        let interval = Duration::from_secs(300);
        let mut last = None;
        // Every academy costs 100 requests per run: 3,000 × 100 / 5 min = 60,000/min asked.
        for n in 0..3_000 {
            last = Some(planner.record(&format!("ns-{n}/personio"), 100, interval, now()));
        }
        let stretch = last.unwrap();
        assert_eq!(stretch.sharing, 3_000);
        // 1,600/min usable: 3,000 × 100 requests take 187.5 minutes.
        let minutes = stretch.effective.as_secs_f64() / 60.0;
        assert!((minutes - 187.5).abs() < 0.1, "{minutes}");
        assert!(stretch
            .message(interval)
            .contains("Effective interval 3h7m30s"));
    }

    fn after_a_run(ready: &str) -> SyncStatusCommon {
        let mut status = SyncStatusCommon::default();
        status.conditions = vec![crate::api::Condition {
            type_: READY.into(),
            status: ready.into(),
            reason: "Succeeded".into(),
            message: "Synced 3 employees.".into(),
            last_transition_time: now(),
            observed_generation: Some(1),
        }];
        status.next_sync_time = Some(now() + chrono::Duration::minutes(5));
        status
    }

    #[test]
    fn a_stretched_interval_moves_the_next_run_and_says_why() {
        let interval = Duration::from_secs(300);
        let stretch = Stretch {
            effective: Duration::from_secs(450),
            sharing: 9_000,
            per_minute: 2_000,
        };
        let mut status = after_a_run("True");
        let delay = schedule_stretched(&mut status, now(), interval, &stretch).unwrap();
        assert!(delay >= stretch.effective && delay <= stretch.effective.mul_f64(1.1));
        assert_eq!(
            status.next_sync_time,
            Some(now() + chrono_duration(delay)),
            "the next run waits for the effective interval"
        );
        let message = &status.conditions[0].message;
        assert!(
            message.starts_with("Synced 3 employees. Effective interval 7m30s instead of 5m"),
            "{message}"
        );
        assert!(message.contains("9000 resources") && message.contains("2000 requests/min"));

        let unstretched = Stretch {
            effective: interval,
            ..stretch
        };
        let mut untouched = after_a_run("True");
        assert_eq!(
            schedule_stretched(&mut untouched, now(), interval, &unstretched),
            None
        );
        assert_eq!(untouched, after_a_run("True"));
        let mut failed = after_a_run("False");
        assert_eq!(
            schedule_stretched(&mut failed, now(), interval, &stretch),
            None
        );
        assert_eq!(
            failed,
            after_a_run("False"),
            "a failed run keeps its backoff"
        );
    }

    #[test]
    fn resources_gone_quiet_stop_sharing() {
        let planner = BudgetPlanner::new(60);
        let interval = Duration::from_secs(60);
        planner.record("gone", 1_000, interval, now());
        let later = now() + chrono::Duration::days(30);
        let stretch = planner.record("alive", 10, interval, later);
        assert_eq!(stretch.sharing, 1);
        assert_eq!(stretch.effective, interval);
    }
}
