//! Bounds on the durations upstream servers dictate: token lifetimes (`expires_in`) and
//! `Retry-After`. Both come from the network and are trusted only within sane limits, so an
//! absurd value can neither overflow the clock arithmetic (a panic) nor keep a token in use, or a
//! run asleep, far longer than intended.

use std::time::{Duration, SystemTime};

use serde_json::Value;

/// Shortest token lifetime believed: a token announced to live less (0, negative) is still used
/// for this long; a 401/403 replaces it earlier if the server really meant it.
pub const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(30);
/// Longest token lifetime believed (a day); past it the token is exchanged again even if the
/// server announced more.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest `Retry-After` honoured (5 minutes); a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(5 * 60);

/// A token's lifetime from an `expires_in` value (seconds as a number or a string): `default`
/// when absent or unreadable, otherwise clamped to [`MIN_TOKEN_LIFETIME`]..=[`MAX_TOKEN_LIFETIME`]
/// (zero and negative values count as the minimum).
pub fn token_lifetime(expires_in: Option<&Value>, default: Duration) -> Duration {
    let seconds = match expires_in {
        Some(Value::Number(number)) => number.as_f64(),
        Some(Value::String(text)) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    let Some(seconds) = seconds.filter(|s| s.is_finite()) else {
        return default.clamp(MIN_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME);
    };
    let min = MIN_TOKEN_LIFETIME.as_secs_f64();
    let max = MAX_TOKEN_LIFETIME.as_secs_f64();
    Duration::from_secs_f64(seconds.clamp(min, max))
}

/// How long a `Retry-After` header value asks to wait: delay-seconds or an HTTP date, at most
/// [`MAX_RETRY_AFTER`]; `None` when unreadable. A date in the past means "now".
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn missing_or_unreadable_lifetime_is_the_default() {
        assert_eq!(token_lifetime(None, HOUR), HOUR);
        assert_eq!(token_lifetime(Some(&json!(null)), HOUR), HOUR);
        assert_eq!(token_lifetime(Some(&json!("soon")), HOUR), HOUR);
        assert_eq!(token_lifetime(Some(&json!({"s": 1})), HOUR), HOUR);
    }

    #[test]
    fn ordinary_lifetimes_are_kept() {
        assert_eq!(
            token_lifetime(Some(&json!(600)), HOUR),
            Duration::from_secs(600)
        );
        assert_eq!(
            token_lifetime(Some(&json!("86400")), HOUR),
            Duration::from_secs(86400)
        );
    }

    #[test]
    fn zero_and_negative_lifetimes_count_as_the_minimum() {
        for value in [json!(0), json!(-1), json!(-9e18), json!("-5"), json!(0.001)] {
            assert_eq!(
                token_lifetime(Some(&value), HOUR),
                MIN_TOKEN_LIFETIME,
                "{value}"
            );
        }
    }

    #[test]
    fn absurdly_long_lifetimes_are_cut_to_a_day() {
        for value in [
            json!(u64::MAX),
            json!(1e300),
            json!("99999999999999999999999"),
            json!(90 * 24 * 3600),
        ] {
            assert_eq!(
                token_lifetime(Some(&value), HOUR),
                MAX_TOKEN_LIFETIME,
                "{value}"
            );
        }
    }

    #[test]
    fn retry_after_in_seconds_is_capped_at_five_minutes() {
        let now = SystemTime::now();
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(" 300 ", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after("18446744073709551615", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after("-1", now), None);
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn retry_after_as_a_date_is_capped_and_never_negative() {
        let now = httpdate::parse_http_date("Wed, 02 Dec 2026 08:00:00 GMT").unwrap();
        assert_eq!(
            retry_after("Wed, 02 Dec 2026 08:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    proptest! {
        #[test]
        fn any_lifetime_is_within_bounds(seconds in any::<f64>(), text in ".{0,30}") {
            for value in [json!(seconds), json!(text)] {
                let lifetime = token_lifetime(Some(&value), HOUR);
                prop_assert!(lifetime >= MIN_TOKEN_LIFETIME && lifetime <= MAX_TOKEN_LIFETIME);
            }
        }

        #[test]
        fn any_retry_after_is_within_bounds(text in ".{0,40}", seconds in any::<u64>()) {
            let now = SystemTime::now();
            for value in [text, seconds.to_string()] {
                if let Some(wait) = retry_after(&value, now) {
                    prop_assert!(wait <= MAX_RETRY_AFTER);
                }
            }
        }
    }
}
