//! Personio's date and time shapes, read leniently and validated strictly.
//!
//! Personio sends calendar dates in several shapes: `2014-11-09T00:00:00+01:00` (employee list),
//! `2012-02-01T00:00:00+0100` (schema example, no colon), `2021-01-01` (custom date attributes)
//! and `null`/`""` when unset. A calendar date is the *local* date part: converting
//! `2014-11-09T00:00:00+01:00` to UTC would move the hire date to the previous day.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// Why a date value could not be read. Carries no part of the value (it may be personal data).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Not one of the known shapes, or an impossible date such as `2023-02-30`.
    #[error("unparseable date")]
    Unparseable,
    /// Not a string at all (e.g. a number or an object).
    #[error("date is not a string")]
    NotAString,
}

/// The `updated_since` query value: `YYYY-MM-DDTHH:MM:SS`, no offset (Personio documents no zone).
pub fn format_updated_since(since: NaiveDateTime) -> String {
    since.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Reads a calendar date from a JSON attribute value: `null`, absent or blank → `Ok(None)`.
pub fn parse_local_date_value(
    value: Option<&serde_json::Value>,
) -> Result<Option<NaiveDate>, DateError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(text)) => parse_local_date(text),
        Some(_) => Err(DateError::NotAString),
    }
}

/// Reads a calendar date: the local date part of any known shape; blank → `Ok(None)`.
pub fn parse_local_date(text: &str) -> Result<Option<NaiveDate>, DateError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Some(date) = parse_plain_date(text) {
        return Ok(Some(date));
    }
    if let Some(with_offset) = parse_offset_date_time(text) {
        return Ok(Some(with_offset.date_naive()));
    }
    if let Some(naive) = parse_naive_date_time(text) {
        return Ok(Some(naive.date()));
    }
    Err(DateError::Unparseable)
}

/// Reads an instant (e.g. `last_modified_at`) and converts it to UTC. A value without an offset is
/// taken as UTC; a plain date as midnight UTC. Blank → `Ok(None)`.
pub fn parse_instant(text: &str) -> Result<Option<DateTime<Utc>>, DateError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Some(with_offset) = parse_offset_date_time(text) {
        return Ok(Some(with_offset.with_timezone(&Utc)));
    }
    if let Some(naive) = parse_naive_date_time(text) {
        return Ok(Some(naive.and_utc()));
    }
    if let Some(date) = parse_plain_date(text) {
        return Ok(Some(date.and_time(NaiveTime::MIN).and_utc()));
    }
    Err(DateError::Unparseable)
}

/// [`parse_instant`] for a JSON attribute value.
pub fn parse_instant_value(
    value: Option<&serde_json::Value>,
) -> Result<Option<DateTime<Utc>>, DateError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(text)) => parse_instant(text),
        Some(_) => Err(DateError::NotAString),
    }
}

/// `YYYY-MM-DD` and nothing else (chrono alone would accept e.g. a sign or extra year digits).
fn parse_plain_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// Date-times with an offset: `Z`, `+01:00`, `+0100`, with `T` or a space, optional fractions.
fn parse_offset_date_time(text: &str) -> Option<DateTime<FixedOffset>> {
    if !starts_with_plain_date(text) {
        return None;
    }
    if let Ok(parsed) = DateTime::parse_from_rfc3339(text) {
        return Some(parsed);
    }
    const FORMATS: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ];
    FORMATS
        .iter()
        .find_map(|format| DateTime::parse_from_str(text, format).ok())
}

/// Date-times without an offset, as `updated_since` is written.
fn parse_naive_date_time(text: &str) -> Option<NaiveDateTime> {
    if !starts_with_plain_date(text) {
        return None;
    }
    const FORMATS: [&str; 2] = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"];
    FORMATS
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
}

fn starts_with_plain_date(text: &str) -> bool {
    text.get(..10).and_then(parse_plain_date).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    #[test]
    fn takes_local_date_of_offset_with_colon() {
        assert_eq!(
            parse_local_date("2014-11-09T00:00:00+01:00"),
            Ok(date(2014, 11, 9))
        );
    }

    #[test]
    fn takes_local_date_of_offset_without_colon() {
        assert_eq!(
            parse_local_date("2012-02-01T00:00:00+0100"),
            Ok(date(2012, 2, 1))
        );
    }

    #[test]
    fn reads_plain_date() {
        assert_eq!(parse_local_date("2021-01-01"), Ok(date(2021, 1, 1)));
    }

    #[test]
    fn reads_utc_and_fractional_seconds() {
        assert_eq!(
            parse_local_date("2021-03-04T23:30:00.000Z"),
            Ok(date(2021, 3, 4))
        );
        assert_eq!(
            parse_local_date("2021-03-04T23:30:00"),
            Ok(date(2021, 3, 4))
        );
    }

    #[test]
    fn blank_is_no_date() {
        assert_eq!(parse_local_date(""), Ok(None));
        assert_eq!(parse_local_date("   "), Ok(None));
        assert_eq!(parse_local_date_value(None), Ok(None));
        assert_eq!(
            parse_local_date_value(Some(&serde_json::Value::Null)),
            Ok(None)
        );
    }

    #[test]
    fn rejects_impossible_and_garbage_dates() {
        assert_eq!(parse_local_date("2023-02-30"), Err(DateError::Unparseable));
        assert_eq!(
            parse_local_date("2023-02-30T00:00:00+01:00"),
            Err(DateError::Unparseable)
        );
        assert_eq!(parse_local_date("09.11.2014"), Err(DateError::Unparseable));
        assert_eq!(
            parse_local_date("2021-01-01xyz"),
            Err(DateError::Unparseable)
        );
        assert_eq!(parse_local_date("+2021-01-01"), Err(DateError::Unparseable));
        assert_eq!(
            parse_local_date_value(Some(&serde_json::json!(20210101))),
            Err(DateError::NotAString)
        );
    }

    #[test]
    fn does_not_convert_late_evening_dates_to_utc() {
        // 00:30 in Berlin is still the previous day in UTC; the calendar date must not move.
        assert_eq!(
            parse_local_date("2020-06-01T00:30:00+02:00"),
            Ok(date(2020, 6, 1))
        );
    }

    #[test]
    fn converts_instants_to_utc() {
        let parsed = parse_instant("2020-11-18T17:33:55+01:00").unwrap().unwrap();
        assert_eq!(parsed.to_rfc3339(), "2020-11-18T16:33:55+00:00");
        let parsed = parse_instant("2020-11-18T17:33:55+0100").unwrap().unwrap();
        assert_eq!(parsed.to_rfc3339(), "2020-11-18T16:33:55+00:00");
        let parsed = parse_instant("2020-11-18").unwrap().unwrap();
        assert_eq!(parsed.to_rfc3339(), "2020-11-18T00:00:00+00:00");
        assert_eq!(parse_instant("yesterday"), Err(DateError::Unparseable));
    }

    #[test]
    fn formats_updated_since_without_offset() {
        let since = NaiveDate::from_ymd_opt(2026, 11, 24)
            .unwrap()
            .and_hms_opt(10, 5, 0)
            .unwrap();
        assert_eq!(format_updated_since(since), "2026-11-24T10:05:00");
    }

    mod never_panics {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn on_any_text(text in ".{0,40}") {
                let _ = parse_local_date(&text);
                let _ = parse_instant(&text);
            }

            #[test]
            fn on_date_like_text(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?([Z+-][0-9:]{0,6})?)?") {
                let _ = parse_local_date(&text);
                let _ = parse_instant(&text);
            }
        }
    }
}
