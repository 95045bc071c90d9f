//! Limits a server announces in its answers (`x-ratelimit-limit`, `x-ratelimit-remaining`,
//! `x-ratelimit-reset`, and Personio's gateway variant `x-ratelimit-replenish-rate`), for the
//! endpoints whose limits are not published (Personio's v2 persons, employments, org units and
//! workplaces). Once an answer says nothing remains, the next request to that endpoint waits until
//! the reset instead of running into a `429` — and a `429` that names its reset waits exactly that
//! long. The wait is a pause ([`super::paused`]): the run gives its run slot back meanwhile.
//!
//! Kept per endpoint (the fixed endpoint name of the request records), because Personio's
//! gateway keeps one bucket per endpoint.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use tokio::time::Instant;

use super::lifetime::MAX_RETRY_AFTER;

/// `x-ratelimit-remaining`: requests left in the current window.
pub const REMAINING_HEADER: &str = "x-ratelimit-remaining";
/// `x-ratelimit-reset`: seconds until the window resets (or, above [`EPOCH_THRESHOLD`], the Unix
/// time it resets at).
pub const RESET_HEADER: &str = "x-ratelimit-reset";
/// `x-ratelimit-limit`: requests per window (informative).
pub const LIMIT_HEADER: &str = "x-ratelimit-limit";
/// `x-ratelimit-replenish-rate`: tokens per second of Personio's token bucket (observed).
pub const REPLENISH_HEADER: &str = "x-ratelimit-replenish-rate";

/// A reset value above this is a Unix timestamp, not a number of seconds (as on GitHub).
const EPOCH_THRESHOLD: f64 = 1_000_000_000.0;
/// The wait when the server says nothing remains but not when it refills (Personio's README:
/// back off at least one second).
const DEFAULT_WAIT: Duration = Duration::from_secs(1);

/// What one answer said about the endpoint's limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Announced {
    /// Requests left, when the answer said.
    pub remaining: Option<u64>,
    /// How long until the window resets, when the answer said (capped at [`MAX_RETRY_AFTER`]).
    pub reset: Option<Duration>,
}

impl Announced {
    /// Reads the headers of one answer; `None` when it carries none of them.
    pub fn read(headers: &HeaderMap, now: SystemTime) -> Option<Self> {
        let number = |name: &str| -> Option<f64> {
            let value = headers
                .get(name)?
                .to_str()
                .ok()?
                .trim()
                .parse::<f64>()
                .ok()?;
            (value.is_finite() && value >= 0.0).then_some(value)
        };
        let remaining = number(REMAINING_HEADER).map(|value| value.floor() as u64);
        let reset = number(RESET_HEADER)
            .map(|value| reset_delay(value, now))
            .or_else(|| {
                // A token bucket without a reset: one token comes back after 1/rate seconds.
                let rate = number(REPLENISH_HEADER).filter(|rate| *rate > 0.0)?;
                Some(Duration::from_secs_f64((1.0 / rate).min(60.0)))
            });
        (remaining.is_some() || reset.is_some()).then_some(Self { remaining, reset })
    }

    /// How long the next request must wait after this answer (with `status`): nothing while some
    /// remain; the reset (or a second) when none remain or the answer was a `429`.
    pub fn wait(&self, status: u16) -> Option<Duration> {
        let exhausted = self.remaining == Some(0) || status == 429;
        exhausted.then(|| self.reset.unwrap_or(DEFAULT_WAIT).min(MAX_RETRY_AFTER))
    }
}

/// Seconds (or a Unix time above [`EPOCH_THRESHOLD`]) until the reset, capped.
fn reset_delay(value: f64, now: SystemTime) -> Duration {
    let seconds = if value > EPOCH_THRESHOLD {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        (value - now).max(0.0)
    } else {
        value
    };
    Duration::from_secs_f64(seconds.min(MAX_RETRY_AFTER.as_secs_f64()))
}

/// Per endpoint: until when the server asked us to wait. Shared by every request of one client
/// (one credential), so limits span runs; cheap to hold per tenant.
#[derive(Debug, Default)]
pub struct ServerLimits {
    blocked_until: Mutex<HashMap<&'static str, Instant>>,
    waits: std::sync::atomic::AtomicU64,
}

impl ServerLimits {
    /// Notes what the answer to a request to `endpoint` said; returns the wait it asks for.
    pub fn observe(
        &self,
        endpoint: &'static str,
        status: u16,
        headers: &HeaderMap,
    ) -> Option<Duration> {
        let wait = Announced::read(headers, SystemTime::now())?.wait(status)?;
        self.block(endpoint, wait);
        Some(wait)
    }

    /// Blocks `endpoint` for `wait` from now (keeps a later block).
    pub fn block(&self, endpoint: &'static str, wait: Duration) {
        let until = Instant::now() + wait;
        let mut blocked = self.lock();
        let entry = blocked.entry(endpoint).or_insert(until);
        if *entry < until {
            *entry = until;
        }
    }

    /// How long a request to `endpoint` must still wait (`None`: go).
    pub fn remaining_wait(&self, endpoint: &'static str) -> Option<Duration> {
        let now = Instant::now();
        let mut blocked = self.lock();
        match blocked.get(endpoint) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                blocked.remove(endpoint);
                None
            }
            None => None,
        }
    }

    /// Waits until `endpoint` may be asked again, without holding the run slot
    /// ([`super::paused`]). Returns whether it waited.
    pub async fn wait_for(&self, endpoint: &'static str) -> bool {
        let Some(wait) = self.remaining_wait(endpoint) else {
            return false;
        };
        self.waits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(
            endpoint,
            wait_ms = wait.as_millis() as u64,
            "waiting for the server's rate-limit reset"
        );
        super::pause::paused(tokio::time::sleep(wait)).await;
        true
    }

    /// How often a request waited for a reset so far (tests, benchmark).
    pub fn waits(&self) -> u64 {
        self.waits.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Instant>> {
        self.blocked_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::pause::tests::Recorder;
    use crate::upstream::{hold_slot_while, SlotHolder};
    use reqwest::header::HeaderValue;
    use std::sync::Arc;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn nothing_remaining_waits_for_the_reset_and_some_remaining_does_not() {
        let now = SystemTime::now();
        let spent = Announced::read(
            &headers(&[
                (LIMIT_HEADER, "50"),
                (REMAINING_HEADER, "0"),
                (RESET_HEADER, "7"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(spent.wait(200), Some(Duration::from_secs(7)));
        let left = Announced::read(
            &headers(&[(REMAINING_HEADER, "3"), (RESET_HEADER, "7")]),
            now,
        )
        .unwrap();
        assert_eq!(left.wait(200), None);
        assert_eq!(
            left.wait(429),
            Some(Duration::from_secs(7)),
            "a 429 names its reset"
        );
        assert_eq!(
            Announced::read(&headers(&[(LIMIT_HEADER, "50")]), now),
            None
        );
    }

    #[test]
    fn reset_as_fraction_timestamp_bucket_rate_or_nothing() {
        let now = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let read = |pairs: &[(&'static str, &str)]| {
            Announced::read(&headers(pairs), now).and_then(|a| a.wait(200))
        };
        assert_eq!(
            read(&[(REMAINING_HEADER, "0"), (RESET_HEADER, "0.25")]),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            read(&[(REMAINING_HEADER, "0"), (RESET_HEADER, "2000000012")]),
            Some(Duration::from_secs(12)),
            "a Unix time"
        );
        assert_eq!(
            read(&[(REMAINING_HEADER, "0"), (REPLENISH_HEADER, "4")]),
            Some(Duration::from_millis(250)),
            "one token of a bucket refilling 4 per second"
        );
        assert_eq!(read(&[(REMAINING_HEADER, "0")]), Some(DEFAULT_WAIT));
        assert_eq!(
            read(&[(REMAINING_HEADER, "0"), (RESET_HEADER, "999999")]),
            Some(MAX_RETRY_AFTER),
            "a server cannot park a run for days"
        );
        for garbage in ["-1", "soon", "NaN"] {
            assert_eq!(
                read(&[(REMAINING_HEADER, "0"), (RESET_HEADER, garbage)]),
                Some(DEFAULT_WAIT),
                "{garbage}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_endpoint_waits_without_its_run_slot_and_others_go_at_once() {
        let limits = ServerLimits::default();
        let spent = headers(&[(REMAINING_HEADER, "0"), (RESET_HEADER, "30")]);
        assert_eq!(
            limits.observe("GET /v2/persons", 200, &spent),
            Some(Duration::from_secs(30))
        );
        assert_eq!(limits.remaining_wait("GET /v2/workplaces"), None);
        let recorder = Arc::new(Recorder::default());
        let holder: Arc<dyn SlotHolder> = recorder.clone();
        let started = Instant::now();
        let waited = hold_slot_while(holder, limits.wait_for("GET /v2/persons")).await;
        assert!(waited);
        // Virtual time (paused clock): the wait is exactly the reset.
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert_eq!(*recorder.0.lock().unwrap(), vec!["release", "reacquire"]);
        assert!(
            !limits.wait_for("GET /v2/persons").await,
            "the reset has passed"
        );
        assert_eq!(limits.waits(), 1);
    }
}
