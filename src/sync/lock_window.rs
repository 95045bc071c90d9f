//! The locking rule: an employee is locked while the contract has not begun or has ended, judged by
//! the company's calendar day. reteach flips the state itself at `setActiveAt` / `setInactiveAt`, so
//! the window is expressed as the two instants where the company's day begins.

use super::field_table::ReteachField;
use super::model::ReteachCustomer;
use chrono::{DateTime, Duration, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// Longest stretch of local time a zone has ever skipped: Samoa skipped all of 2011-12-30.
const MAX_GAP_MINUTES: i64 = 25 * 60;

/// When a reteach user becomes active and inactive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockWindow {
    /// First day of employment.
    pub hire_date: Option<NaiveDate>,
    /// Last day of employment (still an active day).
    pub end_of_employment: Option<NaiveDate>,
    /// Start of the hire day in the company zone.
    pub set_active_at: Option<DateTime<Utc>>,
    /// Start of the day after the end of employment in the company zone.
    pub set_inactive_at: Option<DateTime<Utc>>,
}

impl LockWindow {
    /// The instant the window wants in one of the lock fields (`setActiveAt`,
    /// `setInactiveAt`); `None` for any other field.
    pub fn instant(&self, field: ReteachField) -> Option<DateTime<Utc>> {
        lock_date(field, self.set_active_at, self.set_inactive_at)
    }

    /// The window for an employee hired on `hire_date` whose last day is `end_of_employment`.
    pub fn new(hire_date: Option<NaiveDate>, end_of_employment: Option<NaiveDate>, tz: Tz) -> Self {
        Self {
            hire_date,
            end_of_employment,
            set_active_at: hire_date.map(|day| start_of_day(day, tz)),
            set_inactive_at: end_of_employment.map(|day| {
                day.succ_opt()
                    .map_or(DateTime::<Utc>::MAX_UTC, |next| start_of_day(next, tz))
            }),
        }
    }

    /// Whether the employee is locked on the company day `today`: the contract ended before
    /// today or begins after today.
    pub fn is_locked(&self, today: NaiveDate) -> bool {
        self.end_of_employment.is_some_and(|end| end < today)
            || self.hire_date.is_some_and(|hire| hire > today)
    }
}

/// Whether a reteach user with these scheduled instants is locked at `now`. Agrees with
/// [`LockWindow::is_locked`] for windows built by [`LockWindow::new`].
pub fn is_locked_at(
    set_active_at: Option<DateTime<Utc>>,
    set_inactive_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    set_active_at.is_some_and(|active| now < active)
        || set_inactive_at.is_some_and(|inactive| now >= inactive)
}

/// What reteach reports about a user's lock: the two scheduled instants and the read-only status
/// (`INACTIVE` when locked; `None` when reteach sent none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportedLock<'a> {
    /// `setActiveAt` as reteach returns it.
    pub set_active_at: Option<DateTime<Utc>>,
    /// `setInactiveAt` as reteach returns it.
    pub set_inactive_at: Option<DateTime<Utc>>,
    /// `status` (`ADDED`, `INVITED`, `ACTIVE`, `INACTIVE`).
    pub status: Option<&'a str>,
}

impl<'a> ReportedLock<'a> {
    /// The instant reported in the lock date `field` (`None` for any other field).
    pub fn instant(&self, field: ReteachField) -> Option<DateTime<Utc>> {
        lock_date(field, self.set_active_at, self.set_inactive_at)
    }

    /// What `customer` reports about its lock.
    pub fn of(customer: &'a ReteachCustomer) -> Self {
        Self {
            set_active_at: customer.set_active_at,
            set_inactive_at: customer.set_inactive_at,
            status: customer.status.as_deref(),
        }
    }

    /// Whether the user is locked now: reteach says `INACTIVE` (also after it cleared the date
    /// that locked them), or the instants it reports lock them (when the status lags or is absent).
    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        let inactive = self
            .status
            .is_some_and(|status| status.trim().eq_ignore_ascii_case("INACTIVE"));
        inactive || is_locked_at(self.set_active_at, self.set_inactive_at, now)
    }
}

/// Of the lock dates `set_active_at` and `set_inactive_at`, the one in `field` (`None` for any
/// other field).
fn lock_date(
    field: ReteachField,
    set_active_at: Option<DateTime<Utc>>,
    set_inactive_at: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match field {
        ReteachField::SetActiveAt => set_active_at,
        ReteachField::SetInactiveAt => set_inactive_at,
        _ => None,
    }
}

/// Whether the lock date `field` (`setActiveAt` or `setInactiveAt`) reteach reports already does
/// what `window` asks for, compared by meaning rather than by value. The same instant always does.
/// Whether reteach keeps a date once it has fired, clears it or rewrites it is undocumented, so
/// a different one is judged by the user's state (see `active_at_satisfied` and
/// `inactive_at_satisfied`). Any other field is no lock date and always satisfied.
pub fn lock_date_satisfied(
    field: ReteachField,
    window: &LockWindow,
    reported: &ReportedLock<'_>,
    now: DateTime<Utc>,
) -> bool {
    let same = window.instant(field) == reported.instant(field);
    match field {
        _ if same => true,
        ReteachField::SetActiveAt => active_at_satisfied(window, reported, now),
        ReteachField::SetInactiveAt => inactive_at_satisfied(window, reported, now),
        _ => true,
    }
}

/// Whether a `setActiveAt` other than the wanted one does what `window` asks for:
/// - a future `setActiveAt` must be scheduled exactly (it has yet to act);
/// - a past one (or none) is satisfied when reteach holds no future activation and the user is
///   active — or is meant to be locked anyway (a past `setInactiveAt`).
fn active_at_satisfied(
    window: &LockWindow,
    reported: &ReportedLock<'_>,
    now: DateTime<Utc>,
) -> bool {
    if window.set_active_at.is_some_and(|at| at > now) {
        return false;
    }
    let pending_elsewhere = reported.set_active_at.is_some_and(|at| at > now);
    let meant_locked = is_locked_at(window.set_active_at, window.set_inactive_at, now);
    !pending_elsewhere && (!reported.is_locked(now) || meant_locked)
}

/// Whether a `setInactiveAt` other than the wanted one does what `window` asks for:
/// - a future `setInactiveAt` must be scheduled exactly;
/// - a past one is satisfied by a locked user, whatever reteach returns for the field (kept,
///   cleared or rewritten);
/// - none must be none (a leftover date would lock the user).
fn inactive_at_satisfied(
    window: &LockWindow,
    reported: &ReportedLock<'_>,
    now: DateTime<Utc>,
) -> bool {
    match window.set_inactive_at {
        None => false,
        Some(at) if at > now => false,
        Some(_) => reported.is_locked(now),
    }
}

/// The calendar day in `tz` at the instant `now`.
pub fn today_in(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// The instant the day `date` begins in `tz`. Where midnight does not exist (a DST change at
/// midnight, or Samoa skipping a whole day) the day begins at the first local time that exists;
/// where midnight happens twice, at the first one.
pub fn start_of_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    for minutes in 0..=MAX_GAP_MINUTES {
        let Some(local) = midnight.checked_add_signed(Duration::minutes(minutes)) else {
            break;
        };
        match tz.from_local_datetime(&local) {
            LocalResult::Single(at) => return at.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => continue,
        }
    }
    // No zone has a gap this long; fall back to UTC midnight rather than fail.
    midnight.and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Europe, Pacific, UTC};

    mod by_meaning {
        use super::super::*;

        use crate::clock::at;

        fn now() -> DateTime<Utc> {
            at("2026-11-26T09:00:00Z")
        }

        fn window(active: Option<&str>, inactive: Option<&str>) -> LockWindow {
            LockWindow {
                hire_date: None,
                end_of_employment: None,
                set_active_at: active.map(at),
                set_inactive_at: inactive.map(at),
            }
        }

        fn reported<'a>(
            active: Option<&str>,
            inactive: Option<&str>,
            status: Option<&'a str>,
        ) -> ReportedLock<'a> {
            ReportedLock {
                set_active_at: active.map(at),
                set_inactive_at: inactive.map(at),
                status,
            }
        }

        /// Whether `reported` satisfies the `setActiveAt` of `wanted`, now.
        fn active_ok(wanted: &LockWindow, reported: ReportedLock<'_>) -> bool {
            lock_date_satisfied(ReteachField::SetActiveAt, wanted, &reported, now())
        }

        /// Whether `reported` satisfies the `setInactiveAt` of `wanted`, now.
        fn inactive_ok(wanted: &LockWindow, reported: ReportedLock<'_>) -> bool {
            lock_date_satisfied(ReteachField::SetInactiveAt, wanted, &reported, now())
        }

        const PAST: &str = "2020-01-31T23:00:00Z";
        const LAST_WEEK: &str = "2026-11-19T23:00:00Z";
        const FUTURE: &str = "2027-01-31T23:00:00Z";

        #[test]
        fn past_set_active_at_is_satisfied_by_an_active_user_whatever_the_field_says() {
            let wanted = window(Some(PAST), None);
            for field in [None, Some(PAST), Some(LAST_WEEK)] {
                assert!(active_ok(&wanted, reported(field, None, Some("ACTIVE"))));
            }
            // Cleared, and reteach sent no status: judged by the instants (nothing pending).
            assert!(active_ok(&wanted, reported(None, None, None)));
        }

        #[test]
        fn past_set_active_at_is_not_satisfied_by_an_inactive_user_meant_to_be_active() {
            let wanted = window(Some(PAST), None);
            assert!(!active_ok(&wanted, reported(None, None, Some("INACTIVE"))));
        }

        #[test]
        fn past_set_active_at_is_not_satisfied_while_another_activation_is_pending() {
            let wanted = window(Some(PAST), None);
            assert!(!active_ok(
                &wanted,
                reported(Some(FUTURE), None, Some("INACTIVE"))
            ));
        }

        #[test]
        fn past_set_active_at_of_a_user_meant_to_be_locked_needs_no_write() {
            let wanted = window(Some(PAST), Some(LAST_WEEK));
            assert!(active_ok(&wanted, reported(None, None, Some("INACTIVE"))));
        }

        #[test]
        fn future_dates_must_be_scheduled_exactly() {
            let wanted = window(Some(FUTURE), Some(FUTURE));
            let other = reported(Some(PAST), Some(LAST_WEEK), Some("INACTIVE"));
            assert!(!active_ok(&wanted, other));
            assert!(!inactive_ok(&wanted, other));
            let same = reported(Some(FUTURE), Some(FUTURE), Some("INACTIVE"));
            assert!(active_ok(&wanted, same));
            assert!(inactive_ok(&wanted, same));
        }

        #[test]
        fn past_set_inactive_at_is_satisfied_by_an_inactive_user_whatever_the_field_says() {
            let wanted = window(None, Some(LAST_WEEK));
            for field in [None, Some(LAST_WEEK), Some(PAST)] {
                assert!(inactive_ok(
                    &wanted,
                    reported(None, field, Some("INACTIVE"))
                ));
            }
            assert!(inactive_ok(&wanted, reported(None, Some(PAST), None)));
        }

        #[test]
        fn past_set_inactive_at_is_not_satisfied_by_an_active_user() {
            let wanted = window(None, Some(LAST_WEEK));
            assert!(!inactive_ok(&wanted, reported(None, None, Some("ACTIVE"))));
            assert!(!inactive_ok(&wanted, reported(None, None, None)));
        }

        #[test]
        fn a_user_is_locked_by_status_or_by_the_dates_reported() {
            assert!(reported(None, None, Some("INACTIVE")).is_locked(now()));
            assert!(reported(None, Some(LAST_WEEK), Some("ADDED")).is_locked(now()));
            assert!(reported(Some(FUTURE), None, None).is_locked(now()));
            assert!(!reported(Some(PAST), Some(FUTURE), Some("ACTIVE")).is_locked(now()));
        }

        #[test]
        fn no_set_inactive_at_wanted_means_a_leftover_one_is_cleared() {
            let wanted = window(Some(PAST), None);
            assert!(!inactive_ok(
                &wanted,
                reported(None, Some(LAST_WEEK), Some("INACTIVE"))
            ));
            assert!(inactive_ok(&wanted, reported(None, None, Some("ACTIVE"))));
        }
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn active_from_start_of_hire_day_in_company_zone() {
        let window = LockWindow::new(Some(day(2026, 3, 1)), None, Europe::Berlin);
        assert_eq!(window.set_active_at, Some(utc("2026-02-28T23:00:00Z")));
        assert_eq!(window.set_inactive_at, None);
    }

    #[test]
    fn inactive_from_start_of_day_after_last_contract_day() {
        let window = LockWindow::new(None, Some(day(2026, 7, 31)), Europe::Berlin);
        // Summer time: Berlin is UTC+2.
        assert_eq!(window.set_inactive_at, Some(utc("2026-07-31T22:00:00Z")));
    }

    #[test]
    fn late_evening_utc_is_already_tomorrow_in_berlin() {
        let now = utc("2026-11-25T23:30:00Z");
        assert_eq!(today_in(now, Europe::Berlin), day(2026, 11, 26));
        assert_eq!(today_in(now, UTC), day(2026, 11, 25));
        // Contract ended on the 25th: locked in Berlin already, not yet in UTC.
        let berlin = LockWindow::new(None, Some(day(2026, 11, 25)), Europe::Berlin);
        let in_utc = LockWindow::new(None, Some(day(2026, 11, 25)), UTC);
        assert!(berlin.is_locked(today_in(now, Europe::Berlin)));
        assert!(!in_utc.is_locked(today_in(now, UTC)));
        assert!(is_locked_at(
            berlin.set_active_at,
            berlin.set_inactive_at,
            now
        ));
        assert!(!is_locked_at(
            in_utc.set_active_at,
            in_utc.set_inactive_at,
            now
        ));
    }

    #[test]
    fn zones_a_full_day_apart_disagree_on_today() {
        // Kiritimati is UTC+14, Pago Pago UTC-11: at the same instant they are on different days.
        let now = utc("2026-06-15T12:00:00Z");
        assert_eq!(today_in(now, Pacific::Kiritimati), day(2026, 6, 16));
        assert_eq!(today_in(now, Pacific::Pago_Pago), day(2026, 6, 15));
        let hire = Some(day(2026, 6, 16));
        assert!(!LockWindow::new(hire, None, Pacific::Kiritimati).is_locked(day(2026, 6, 16)));
        assert!(LockWindow::new(hire, None, Pacific::Pago_Pago).is_locked(day(2026, 6, 15)));
        assert_eq!(
            LockWindow::new(hire, None, Pacific::Kiritimati).set_active_at,
            Some(utc("2026-06-15T10:00:00Z"))
        );
        assert_eq!(
            LockWindow::new(hire, None, Pacific::Pago_Pago).set_active_at,
            Some(utc("2026-06-16T11:00:00Z"))
        );
    }

    #[test]
    fn keeps_employee_whose_contract_ends_tomorrow_active() {
        let window = LockWindow::new(Some(day(2020, 1, 1)), Some(day(2026, 11, 27)), UTC);
        assert!(!window.is_locked(day(2026, 11, 26)));
    }

    #[test]
    fn keeps_employee_active_on_last_contract_day() {
        let window = LockWindow::new(Some(day(2020, 1, 1)), Some(day(2026, 11, 26)), UTC);
        assert!(!window.is_locked(day(2026, 11, 26)));
        assert!(!is_locked_at(
            window.set_active_at,
            window.set_inactive_at,
            utc("2026-11-26T23:59:59Z")
        ));
    }

    #[test]
    fn locks_employee_whose_contract_ended_yesterday() {
        let window = LockWindow::new(Some(day(2020, 1, 1)), Some(day(2026, 11, 25)), UTC);
        assert!(window.is_locked(day(2026, 11, 26)));
        assert!(is_locked_at(
            window.set_active_at,
            window.set_inactive_at,
            utc("2026-11-26T00:00:00Z")
        ));
    }

    #[test]
    fn locks_employee_hired_in_the_future() {
        let window = LockWindow::new(Some(day(2026, 12, 1)), None, Europe::Berlin);
        assert!(window.is_locked(day(2026, 11, 30)));
        assert!(!window.is_locked(day(2026, 12, 1)));
        assert!(is_locked_at(
            window.set_active_at,
            None,
            utc("2026-11-30T22:59:59Z")
        ));
        assert!(!is_locked_at(
            window.set_active_at,
            None,
            utc("2026-11-30T23:00:00Z")
        ));
    }

    #[test]
    fn unlocks_rehired_employee_once_end_is_cleared() {
        let ended = LockWindow::new(Some(day(2020, 1, 1)), Some(day(2025, 1, 31)), UTC);
        assert!(ended.is_locked(day(2026, 11, 26)));
        let rehired = LockWindow::new(Some(day(2020, 1, 1)), None, UTC);
        assert!(!rehired.is_locked(day(2026, 11, 26)));
        assert_eq!(rehired.set_inactive_at, None);
    }

    #[test]
    fn start_of_day_skips_a_midnight_dst_gap() {
        // São Paulo started summer time at midnight on 2018-11-04: 00:00 did not exist.
        let start = start_of_day(day(2018, 11, 4), America::Sao_Paulo);
        assert_eq!(start, utc("2018-11-04T03:00:00Z"));
        assert_eq!(today_in(start, America::Sao_Paulo), day(2018, 11, 4));
    }

    #[test]
    fn start_of_day_survives_a_skipped_day() {
        // Samoa skipped 2011-12-30 entirely; that "day" begins where 2011-12-31 begins.
        let start = start_of_day(day(2011, 12, 30), Pacific::Apia);
        assert_eq!(start, start_of_day(day(2011, 12, 31), Pacific::Apia));
        assert_eq!(start, utc("2011-12-30T10:00:00Z"));
    }

    #[test]
    fn start_of_day_takes_the_first_of_a_repeated_midnight() {
        // Havana ends summer time at 01:00 → 00:00, so 00:xx on 2026-11-01 happens twice.
        let start = start_of_day(day(2026, 11, 1), America::Havana);
        assert_eq!(today_in(start, America::Havana), day(2026, 11, 1));
        assert_eq!(start, utc("2026-11-01T04:00:00Z"));
    }

    #[test]
    fn window_survives_the_last_representable_day() {
        let window = LockWindow::new(None, Some(NaiveDate::MAX), UTC);
        assert!(window.set_inactive_at.is_some());
    }

    mod invariants {
        use super::*;
        use proptest::prelude::*;

        const ZONES: [Tz; 8] = [
            UTC,
            Europe::Berlin,
            America::Sao_Paulo,
            America::Havana,
            Pacific::Apia,
            Pacific::Kiritimati,
            Pacific::Pago_Pago,
            chrono_tz::Australia::Lord_Howe,
        ];

        fn date(offset: i64) -> NaiveDate {
            day(2000, 1, 1) + Duration::days(offset)
        }

        proptest! {
            /// The instants sent to reteach lock exactly on the days the rule says, in every zone.
            #[test]
            fn instants_agree_with_the_day_rule(
                zone in 0usize..ZONES.len(),
                hire in proptest::option::of(0i64..11_000),
                length in proptest::option::of(0i64..4_000),
                seconds in 0i64..(11_000 * 86_400),
            ) {
                let tz = ZONES[zone];
                let hire_date = hire.map(date);
                let end = match (hire, length) {
                    (Some(h), Some(l)) => Some(date(h + l)),
                    (None, Some(l)) => Some(date(l)),
                    _ => None,
                };
                let window = LockWindow::new(hire_date, end, tz);
                let now = date(0).and_time(chrono::NaiveTime::MIN).and_utc()
                    + Duration::seconds(seconds);
                // Any instant, plus both sides of each boundary where a mistake would hide.
                let boundaries = [window.set_active_at, window.set_inactive_at]
                    .into_iter()
                    .flatten()
                    .flat_map(|at| [at, at - Duration::seconds(1)]);
                for at in std::iter::once(now).chain(boundaries) {
                    prop_assert_eq!(
                        window.is_locked(today_in(at, tz)),
                        is_locked_at(window.set_active_at, window.set_inactive_at, at),
                        "at {}", at
                    );
                }
            }
        }
    }
}
