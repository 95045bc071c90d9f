//! Go-style durations (`90s`, `5m`, `1h30m`, `1.5h`) as used in `spec.interval`, parsed by
//! kube's `metav1.Duration` ([`kube::core::Duration`]), with the bounds
//! every duration of a spec has: a minimum, and a maximum both in the CRD schema (a pattern the
//! apiserver enforces) and in code (for objects the schema did not check, e.g. stored before an
//! upgrade). Time arithmetic with spec values goes through the checked helpers at the end.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Longest accepted `spec.interval` of both kinds.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Longest accepted `spec.fullResyncInterval`.
pub const MAX_FULL_RESYNC_INTERVAL: Duration = Duration::from_secs(720 * 3600);
/// Longest duration string accepted (schema `maxLength` and code).
pub const MAX_DURATION_LENGTH: usize = 32;

/// Why a duration string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    #[error("{0:?} is not a duration; use a number with a unit, e.g. 30s, 5m, 1h30m")]
    Invalid(String),
    #[error("{value:?} is shorter than the minimum of {minimum}")]
    TooShort { value: String, minimum: String },
    #[error("{value:?} is longer than the maximum of {maximum}")]
    TooLong { value: String, maximum: String },
}

/// Most digits of one number in a duration: enough for any bound (720h is 2,592,000,000 ms),
/// few enough that no duration of [`MAX_DURATION_LENGTH`] characters overflows while parsing.
const MAX_NUMBER_DIGITS: usize = 15;

/// Parses a Go-style duration with kube's `metav1.Duration` parser ([`kube::core::Duration`]),
/// after checking what that parser would panic on or accept against our rules: a sign (Go
/// durations may be negative, ours may not, and a sign inside makes a negative part), and numbers
/// too long for any bound. Never panics; absurd values are `Invalid`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid(text.to_string());
    let trimmed = text.trim();
    let normalized = without_insignificant_digits(trimmed);
    let trimmed = normalized.as_str();
    let plain = trimmed
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.');
    let longest_number = trimmed
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    if trimmed.is_empty()
        || trimmed.len() > MAX_DURATION_LENGTH
        || !plain
        || longest_number > MAX_NUMBER_DIGITS
        // Go reads a bare "0" as zero; a spec value needs its unit.
        || !trimmed.ends_with(|c: char| c.is_ascii_alphabetic())
    {
        return Err(invalid());
    }
    let parsed: kube::core::Duration = trimmed.parse().map_err(|_| invalid())?;
    Ok(parsed.into())
}

/// Digits of a fraction that still count: nanoseconds of an hour-sized unit are far below any
/// bound's precision.
const MAX_FRACTION_DIGITS: usize = 9;

/// `text` with each number's leading zeros and its fraction digits beyond
/// [`MAX_FRACTION_DIGITS`] dropped (`007.50000000000001h` → `7.500000000h`): the CRD schema
/// allows both at any length, and what the schema accepts must parse. Dropping digits never makes
/// a value larger.
fn without_insignificant_digits(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit() || c == '.') {
        out.push_str(&rest[..start]);
        let number_len = rest[start..]
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len() - start);
        let number = &rest[start..start + number_len];
        match number.split_once('.') {
            Some((whole, fraction)) if !fraction.contains('.') => {
                out.push_str(significant_whole(whole));
                out.push('.');
                out.extend(fraction.chars().take(MAX_FRACTION_DIGITS));
            }
            Some(_) => out.push_str(number),
            None => out.push_str(significant_whole(number)),
        }
        rest = &rest[start + number_len..];
    }
    out.push_str(rest);
    out
}

/// A whole number without its leading zeros (`"000"` → `"0"`, `""` stays empty: `.5h`).
fn significant_whole(whole: &str) -> &str {
    let stripped = whole.trim_start_matches('0');
    match (stripped.is_empty(), whole.is_empty()) {
        (true, false) => "0",
        _ => stripped,
    }
}

/// Parses a duration and checks it against a minimum.
pub fn parse_duration_at_least(text: &str, minimum: Duration) -> Result<Duration, DurationError> {
    let value = parse_duration(text)?;
    if value < minimum {
        return Err(DurationError::TooShort {
            value: text.to_string(),
            minimum: format_duration(minimum),
        });
    }
    Ok(value)
}

/// Parses a duration and checks it lies within `minimum..=maximum`.
pub fn parse_duration_between(
    text: &str,
    minimum: Duration,
    maximum: Duration,
) -> Result<Duration, DurationError> {
    let value = parse_duration_at_least(text, minimum)?;
    if value > maximum {
        return Err(DurationError::TooLong {
            value: text.to_string(),
            maximum: format_duration(maximum),
        });
    }
    Ok(value)
}

/// Parses a `spec.interval`: at least `minimum`, at most [`MAX_INTERVAL`].
pub fn parse_interval(text: &str, minimum: Duration) -> Result<Duration, DurationError> {
    parse_duration_between(text, minimum, MAX_INTERVAL)
}

/// Parses a `spec.fullResyncInterval`: at least `minimum`, at most [`MAX_FULL_RESYNC_INTERVAL`].
pub fn parse_full_resync_interval(
    text: &str,
    minimum: Duration,
) -> Result<Duration, DurationError> {
    parse_duration_between(text, minimum, MAX_FULL_RESYNC_INTERVAL)
}

/// Formats a duration the way users write it (`1h30m`, `5m`, `45s`).
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// `at + duration`, or `None` when the result is not a representable time. chrono's `+` panics
/// there, and an operator that panics stops every tenant.
pub fn checked_after(at: DateTime<Utc>, duration: Duration) -> Option<DateTime<Utc>> {
    let delta = chrono::Duration::from_std(duration).ok()?;
    at.checked_add_signed(delta)
}

/// `at + duration`, saturating at the latest representable time.
pub fn saturating_after(at: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    checked_after(at, duration).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `std` → `chrono` duration, saturating.
pub fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

// ---- CRD schema ----

/// Schema of a `spec.interval`: a duration of at most [`MAX_INTERVAL`] (24h).
pub fn interval_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    duration_schema(MAX_INTERVAL)
}

/// Schema of a `spec.fullResyncInterval`: a duration of at most [`MAX_FULL_RESYNC_INTERVAL`]
/// (720h).
pub fn full_resync_interval_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    duration_schema(MAX_FULL_RESYNC_INTERVAL)
}

fn duration_schema(maximum: Duration) -> schemars::Schema {
    let hours = maximum.as_secs() / 3600;
    schemars::json_schema!({
        "type": "string",
        "maxLength": MAX_DURATION_LENGTH,
        "pattern": bounded_duration_pattern(hours),
    })
}

/// A regular expression (for the CRD schema) of the Go-style durations of at most `max_hours`
/// hours: either one number with a unit (`1440m`, `86400s`, `1.5h`), or hours, minutes, seconds
/// and milliseconds in this order, each below its next unit (`23h59m`, `1h30m`). Anything it
/// accepts is within the bound; the code check (`parse_duration_between`) enforces the same
/// bound for what the schema did not see.
pub fn bounded_duration_pattern(max_hours: u64) -> String {
    let fraction = r"(\.[0-9]+)?";
    let single = |max: u64, unit: &str| {
        let below = integer_at_most(max.saturating_sub(1));
        format!("({below}{fraction}|{max}(\\.0+)?){unit}")
    };
    let singles = [
        single(max_hours, "h"),
        single(max_hours.saturating_mul(60), "m"),
        single(max_hours.saturating_mul(3600), "s"),
        single(max_hours.saturating_mul(3_600_000), "ms"),
    ]
    .join("|");
    let hours = integer_at_most(max_hours.saturating_sub(1));
    let sixty = integer_at_most(59);
    let thousand = integer_at_most(999);
    // The apiserver's regular expressions are RE2: no look-ahead, so "at least one part" is
    // spelled out by which part comes first.
    let (h, m, s, ms) = (
        format!("{hours}h"),
        format!("{sixty}m"),
        format!("{sixty}{fraction}s"),
        format!("{thousand}ms"),
    );
    let compound = [
        format!("{h}({m})?({s})?({ms})?"),
        format!("{m}({s})?({ms})?"),
        format!("{s}({ms})?"),
    ]
    .join("|");
    format!("^({singles}|{compound})$")
}

/// Regular expression of the decimal integers `0..=max` (leading zeros allowed).
fn integer_at_most(max: u64) -> String {
    let digits: Vec<u32> = max
        .to_string()
        .chars()
        .filter_map(|c| c.to_digit(10))
        .collect();
    let width = digits.len();
    let mut options = Vec::new();
    let any_digits = |count: usize| match count {
        0 => String::new(),
        1 => "[0-9]".to_string(),
        n => format!("[0-9]{{{n}}}"),
    };
    match width {
        0 | 1 => {}
        // Every number with fewer digits.
        2 => options.push("[0-9]".to_string()),
        _ => options.push(format!("[0-9]{{1,{}}}", width - 1)),
    }
    // Same width: the prefix of `max`, one digit below max's digit, then anything.
    for (i, digit) in digits.iter().enumerate() {
        if *digit == 0 {
            continue;
        }
        let prefix: String = digits[..i].iter().map(u32::to_string).collect();
        let tail = width - i - 1;
        let lower = digit - 1;
        let class = if lower == 0 {
            "0".to_string()
        } else {
            format!("[0-{lower}]")
        };
        options.push(format!("{prefix}{class}{}", any_digits(tail)));
    }
    options.push(max.to_string());
    format!("0*({})", options.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_zeros_and_long_fractions_the_schema_allows_parse() {
        assert_eq!(parse_duration("0.0000000000000000h"), Ok(Duration::ZERO));
        assert_eq!(
            parse_duration("0000000000000000005m"),
            Ok(Duration::from_secs(300))
        );
        assert_eq!(
            parse_duration("1.50000000000000000001h"),
            Ok(Duration::from_secs(5400))
        );
        assert_eq!(without_insignificant_digits(".5h"), ".5h");
        assert!(
            parse_duration("1234567890123456m").is_err(),
            "still too long"
        );
    }

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 90s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(".5m"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1500us"), Ok(Duration::from_micros(1500)));
        assert_eq!(
            parse_duration("999999999999999h99999999999999m").map(|d| d > MAX_INTERVAL),
            Ok(true)
        );
    }

    #[test]
    fn rejects_garbage_and_unknown_units() {
        let signs_and_absurd_numbers = ["+5m", "5m-3s", "5m+3s", "1234567890123456h", "0"];
        for bad in ["", "5x", "m", "5", "1d", "-5m", "5m3", "5 m", "1e3s", "5µs"]
            .into_iter()
            .chain(signs_and_absurd_numbers)
        {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn enforces_minimum() {
        let err = parse_duration_at_least("30s", Duration::from_secs(60)).unwrap_err();
        assert_eq!(err.to_string(), "\"30s\" is shorter than the minimum of 1m");
    }

    #[test]
    fn enforces_maximum_of_an_interval() {
        let minute = Duration::from_secs(60);
        assert_eq!(parse_interval("24h", minute), Ok(MAX_INTERVAL));
        assert_eq!(
            parse_interval("3000000000h", minute)
                .unwrap_err()
                .to_string(),
            "\"3000000000h\" is longer than the maximum of 24h"
        );
        assert_eq!(
            parse_full_resync_interval("720h", minute),
            Ok(MAX_FULL_RESYNC_INTERVAL)
        );
        assert!(parse_full_resync_interval("721h", minute).is_err());
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
    }

    #[test]
    fn time_after_an_absurd_duration_saturates_instead_of_panicking() {
        let now = Utc::now();
        let absurd = Duration::from_secs(3_000_000_000 * 3600);
        assert_eq!(checked_after(now, absurd), None);
        assert_eq!(saturating_after(now, absurd), DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            saturating_after(now, Duration::MAX),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(
            checked_after(now, Duration::from_secs(60)),
            Some(now + chrono::Duration::seconds(60))
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn pattern(max_hours: u64) -> regex::Regex {
            regex::Regex::new(&bounded_duration_pattern(max_hours)).unwrap()
        }

        /// Spec-like strings: digits, dots and units, often absurdly long numbers (leading
        /// zeros and long fractions included: the schema allows both).
        fn duration_like() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                (
                    "0{0,12}[0-9]{1,25}(\\.[0-9]{0,20})?",
                    prop_oneof!["h", "m", "s", "ms", "d", ""],
                ),
                1..5,
            )
            .prop_map(|parts| parts.into_iter().map(|(n, u)| format!("{n}{u}")).collect())
        }

        proptest! {
            #[test]
            fn parsing_never_panics_and_stays_within_bounds(text in "\\PC{0,40}") {
                let minute = Duration::from_secs(60);
                if let Ok(value) = parse_interval(&text, minute) {
                    prop_assert!(value >= minute && value <= MAX_INTERVAL);
                }
                if let Ok(value) = parse_full_resync_interval(&text, minute) {
                    prop_assert!(value >= minute && value <= MAX_FULL_RESYNC_INTERVAL);
                }
            }

            #[test]
            fn signs_and_go_units_never_panic_the_parser(text in "[-+0-9.nsuµmh ]{0,32}") {
                // kube's parser panics on a negative part or an overflow; ours refuses them first.
                if let Ok(value) = parse_duration(&text) {
                    prop_assert!(!text.contains(['-', '+']), "{text} parsed to {value:?}");
                }
            }

            #[test]
            fn extreme_durations_are_rejected_or_bounded(text in duration_like()) {
                let minute = Duration::from_secs(60);
                if let Ok(value) = parse_interval(&text, minute) {
                    prop_assert!(value <= MAX_INTERVAL);
                }
                // Whatever was parsed can be added to "now" without panicking.
                if let Ok(value) = parse_duration(&text) {
                    let _ = saturating_after(Utc::now(), value);
                }
            }

            #[test]
            fn what_the_schema_accepts_the_code_accepts_within_the_bound(text in duration_like()) {
                for (max_hours, max) in [(24, MAX_INTERVAL), (720, MAX_FULL_RESYNC_INTERVAL)] {
                    if pattern(max_hours).is_match(&text) && text.len() <= MAX_DURATION_LENGTH {
                        let value = parse_duration(&text);
                        prop_assert!(value.is_ok(), "{text} matches but does not parse");
                        prop_assert!(value.unwrap() <= max, "{text} matches but exceeds {max_hours}h");
                    }
                }
            }

            #[test]
            fn the_schema_accepts_every_whole_number_of_seconds_up_to_the_bound(
                seconds in 0u64..=86_400,
            ) {
                let re = pattern(24);
                let in_seconds = format!("{seconds}s");
                let in_minutes = format!("{}m", seconds / 60);
                let canonical = format_duration(Duration::from_secs(seconds));
                prop_assert!(re.is_match(&in_seconds), "{}", in_seconds);
                prop_assert!(re.is_match(&in_minutes), "{}", in_minutes);
                prop_assert!(re.is_match(&canonical), "{}", canonical);
            }
        }

        #[test]
        fn the_schema_refuses_values_above_the_bound() {
            let day = pattern(24);
            for text in [
                "25h",
                "24.5h",
                "1441m",
                "86401s",
                "3000000000h",
                "24h1m",
                "1d",
                "",
            ] {
                assert!(!day.is_match(text), "{text} must be refused");
            }
            for text in [
                "24h",
                "1m",
                "5m",
                "1h30m",
                "23h59m59.5s",
                "1.5h",
                "1440m",
                "90s",
            ] {
                assert!(day.is_match(text), "{text} must be accepted");
            }
            let month = pattern(720);
            assert!(month.is_match("720h") && month.is_match("24h") && !month.is_match("721h"));
        }
    }
}
