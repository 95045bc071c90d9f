//! Checks of one notification, pure: who sent it, its size and shape, whether it was seen
//! before. The receiver calls them in that order and answers the first rejection with a 4xx.

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::rejection::Rejection;
use super::signature::{verify as verify_signature, SignatureScheme, SignedHeaders};
use super::ResourceKey;

/// Largest body accepted. Personio's and reteach's notifications are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Oldest Personio event accepted: Personio retries a delivery for up to 3 days; anything older
/// is a replay.
pub const MAX_EVENT_AGE: Duration = Duration::hours(73);

/// How far in the future an event's `occurred_at` may lie (clock skew).
const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

/// How many recent bodies the replay guard remembers (all resources together).
const REPLAY_MEMORY: usize = 4096;

/// How long a body counts as seen.
const REPLAY_WINDOW: Duration = Duration::hours(73);

/// What a resource's receiver accepts: derived from the operator's key (`register: true`) or
/// loaded from the resource's Secret (manual registration). Never printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ReceiverKeys {
    /// What a delivery carries now.
    pub current: RequestKeys,
    /// Personio's signing secrets (EmployeeSync only): the current one first, then one in its
    /// rotation grace window. Not empty: every delivery must carry a valid signature.
    pub signing_secrets: Vec<String>,
    /// What a delivery registered with the operator's previous key carries, accepted during a
    /// key rotation.
    pub previous: Option<RequestKeys>,
}

/// What a delivery's request carries: the path token and the `Authorization` header.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct RequestKeys {
    /// The path token.
    pub token: String,
    /// The exact `Authorization` value Personio sends (EmployeeSync only).
    pub authorization: Option<String>,
}

impl RequestKeys {
    /// A path token and, for Personio, the `Authorization` value.
    pub fn new(token: impl Into<String>, authorization: Option<String>) -> Self {
        Self {
            token: token.into(),
            authorization,
        }
    }
}

impl ReceiverKeys {
    /// The current and the previous key's request values.
    fn request_keys(&self) -> impl Iterator<Item = &RequestKeys> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// Whether any of the request values passes `matches`; compares with every one, so the time
    /// taken does not tell which matched.
    fn any_request_key(&self, matches: impl Fn(&RequestKeys) -> bool) -> bool {
        self.request_keys()
            .fold(false, |found, keys| found | matches(keys))
    }

    /// Whether `given` is the path token (current or previous).
    pub fn accepts_token(&self, given: &str) -> bool {
        self.any_request_key(|keys| tokens_match(&keys.token, given))
    }

    /// Whether `given` is the `Authorization` value (current or previous).
    pub fn accepts_authorization(&self, given: &str) -> bool {
        self.any_request_key(|keys| {
            tokens_match(keys.authorization.as_deref().unwrap_or_default(), given)
        })
    }

    /// Every secret value held (for scrubbing error messages).
    pub fn secrets(&self) -> Vec<&str> {
        let mut secrets = Vec::new();
        for keys in self.request_keys() {
            secrets.push(keys.token.as_str());
            // The `Authorization` value alone as well: an echo may drop the `Bearer ` prefix.
            let authorization = keys.authorization.as_deref();
            secrets.extend(
                authorization
                    .into_iter()
                    .flat_map(|a| [Some(a), a.strip_prefix("Bearer ")].into_iter().flatten()),
            );
        }
        secrets.extend(self.signing_secrets.iter().map(String::as_str));
        secrets
    }
}

impl std::fmt::Debug for ReceiverKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReceiverKeys(<redacted>)")
    }
}

/// What an authentic notification asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Something the sync reads changed: wake the resource.
    Wake,
    /// An event the sync does not depend on (e.g. Personio's document events, which our own
    /// uploads cause): acknowledged, nothing runs.
    Ignore,
}

/// Compares two secrets in constant time (for equal lengths; a length mismatch is refused at once,
/// which only tells the length).
pub fn tokens_match(expected: &str, given: &str) -> bool {
    !expected.is_empty() && expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// The envelope every Personio webhook has (developer.personio.de, "Webhooks": `company_id`,
/// `event_name`, `occurred_at`, `payload` required, `meta` optional).
#[derive(Deserialize)]
struct PersonioEnvelope {
    #[allow(dead_code)] // required by the schema; its value is not used
    company_id: String,
    event_name: String,
    occurred_at: String,
    payload: serde_json::Map<String, serde_json::Value>,
}

/// One Personio delivery as the receiver got it.
#[derive(Clone, Copy, Debug)]
pub struct PersonioDelivery<'a> {
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The signature headers (see [`SignatureScheme`]).
    pub signed: SignedHeaders<'a>,
    /// The raw body.
    pub body: &'a [u8],
}

/// Checks a Personio notification: the `Authorization` header must be the configured token
/// (Personio's auth type `TOKEN` sends it verbatim) when one is configured, the signature valid
/// (HMAC-SHA256 over timestamp and body, [`super::signature`]) when signing secrets are
/// configured — at least one of the two must be — and the body the documented envelope with an
/// `occurred_at` within Personio's retry window. With a signature, a replay is also judged by the
/// signed timestamp.
pub fn check_personio(
    keys: &ReceiverKeys,
    scheme: &SignatureScheme,
    delivery: PersonioDelivery<'_>,
    now: DateTime<Utc>,
) -> Result<Verdict, Rejection> {
    if keys.current.authorization.is_none() && keys.signing_secrets.is_empty() {
        return Err(Rejection::Unauthenticated);
    }
    let given = delivery.authorization.unwrap_or_default();
    if keys.current.authorization.is_some() && !keys.accepts_authorization(given) {
        return Err(Rejection::Unauthenticated);
    }
    if !keys.signing_secrets.is_empty() {
        verify_signature(
            scheme,
            &keys.signing_secrets,
            delivery.signed,
            delivery.body,
            now,
        )?;
    }
    let envelope: PersonioEnvelope =
        serde_json::from_slice(delivery.body).map_err(|_| Rejection::Malformed)?;
    let _ = envelope.payload.len();
    let occurred = DateTime::parse_from_rfc3339(&envelope.occurred_at)
        .map_err(|_| Rejection::Malformed)?
        .with_timezone(&Utc);
    if occurred < now - MAX_EVENT_AGE || occurred > now + MAX_CLOCK_SKEW {
        return Err(Rejection::Replayed);
    }
    let event = envelope.event_name.to_ascii_lowercase();
    if event.starts_with("person.") || event.starts_with("employment.") {
        Ok(Verdict::Wake)
    } else {
        Ok(Verdict::Ignore)
    }
}

/// The person a (verified) Personio notification is about, for a targeted re-read: `payload.id`
/// of a `person.*` event; `payload.person.id` (or `payload.person_id`) of an `employment.*` event,
/// whose own `id` names the employment. `None` when the body names no usable person id (person
/// ids are numbers: the v1 employee ids).
pub fn personio_subject(body: &[u8]) -> Option<String> {
    let envelope: PersonioEnvelope = serde_json::from_slice(body).ok()?;
    let payload = &envelope.payload;
    let event = envelope.event_name.to_ascii_lowercase();
    let id = if event.starts_with("person.") {
        payload.get("id")
    } else if event.starts_with("employment.") {
        payload
            .get("person")
            .and_then(|person| person.get("id"))
            .or_else(|| payload.get("person_id"))
    } else {
        None
    }?;
    let text = match id {
        serde_json::Value::String(text) => text.trim().to_string(),
        serde_json::Value::Number(number) => number.to_string(),
        _ => return None,
    };
    let usable = !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit());
    usable.then_some(text)
}

/// Checks a reteach notification. reteach documents neither payload nor signature (lms README
/// §1.8), so the path token is the only proof and any JSON object wakes the sync.
pub fn check_reteach(body: &[u8]) -> Result<Verdict, Rejection> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(_)) => Ok(Verdict::Wake),
        _ => Err(Rejection::Malformed),
    }
}

/// Remembers digests of recently accepted bodies per resource, so that a captured request sent
/// again is refused. Digests use a hasher keyed randomly per process; only authenticated bodies
/// reach it, so nobody can aim collisions at it.
pub struct ReplayGuard {
    hasher: std::collections::hash_map::RandomState,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    digests: HashSet<u64>,
    order: VecDeque<(u64, DateTime<Utc>)>,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self {
            hasher: std::collections::hash_map::RandomState::new(),
            seen: Mutex::default(),
        }
    }
}

impl ReplayGuard {
    /// Records the body for `key`; `Err(Replayed)` if it was seen within the window.
    pub fn first_time(
        &self,
        key: &ResourceKey,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        let digest = self.hasher.hash_one((key, body));
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((old, at)) = seen.order.front().copied() {
            if seen.order.len() < REPLAY_MEMORY && at >= now - REPLAY_WINDOW {
                break;
            }
            seen.order.pop_front();
            seen.digests.remove(&old);
        }
        if !seen.digests.insert(digest) {
            return Err(Rejection::Replayed);
        }
        seen.order.push_back((digest, now));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at;
    use crate::webhook::Source;

    fn now() -> DateTime<Utc> {
        at("2026-12-02T10:00:00Z")
    }

    fn keys() -> ReceiverKeys {
        ReceiverKeys {
            current: RequestKeys::new("t".repeat(32), Some("Bearer personio-says-hi".into())),
            ..ReceiverKeys::default()
        }
    }

    /// An unsigned delivery.
    fn personio(
        keys: &ReceiverKeys,
        authorization: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Verdict, Rejection> {
        let delivery = PersonioDelivery {
            authorization,
            signed: SignedHeaders::default(),
            body,
        };
        check_personio(keys, &SignatureScheme::default(), delivery, now)
    }

    /// An unsigned delivery of `body` with the configured authorization, now.
    fn authorized(body: &[u8]) -> Result<Verdict, Rejection> {
        personio(&keys(), Some("Bearer personio-says-hi"), body, now())
    }

    fn event(name: &str, occurred_at: &str) -> Vec<u8> {
        serde_json::json!({
            "company_id": "42",
            "event_name": name,
            "occurred_at": occurred_at,
            "payload": {"id": "1"},
            "meta": {}
        })
        .to_string()
        .into_bytes()
    }

    /// With the configured authorization, a person or employment event wakes the sync, a
    /// document event is acknowledged without a run, and an event outside Personio's retry
    /// window is a replay.
    #[test]
    fn an_authorized_delivery_is_judged_by_its_event_and_when_it_occurred() {
        use Rejection::Replayed;
        use Verdict::{Ignore, Wake};
        let cases = [
            ("person.updated", "2026-12-02T09:59:58Z", Ok(Wake)),
            ("employment.created", "2026-12-02T09:59:58+01:00", Ok(Wake)),
            ("document.created", "2026-12-02T09:59:58Z", Ok(Ignore)),
            ("person.updated", "2026-11-28T10:00:00Z", Err(Replayed)),
            ("person.updated", "2026-12-02T10:10:00Z", Err(Replayed)),
        ];
        for (name, occurred_at, expected) in cases {
            let verdict = authorized(&event(name, occurred_at));
            assert_eq!(verdict, expected, "{name} at {occurred_at}");
        }
    }

    #[test]
    fn a_missing_or_wrong_authorization_is_unauthenticated() {
        let body = event("person.updated", "2026-12-02T09:59:58Z");
        for given in [None, Some(""), Some("Bearer personio-says-hI"), Some("x")] {
            assert_eq!(
                personio(&keys(), given, &body, now()),
                Err(Rejection::Unauthenticated),
                "{given:?}"
            );
        }
        let without = ReceiverKeys {
            current: RequestKeys::new("t".repeat(32), None),
            ..keys()
        };
        assert_eq!(
            personio(&without, Some(""), &body, now()),
            Err(Rejection::Unauthenticated),
            "no configured token accepts nothing"
        );
    }

    #[test]
    fn with_a_signing_secret_only_a_signed_delivery_is_accepted() {
        let scheme = SignatureScheme::default();
        let signing = ReceiverKeys {
            current: RequestKeys::new("t".repeat(32), None),
            signing_secrets: vec!["current-secret".into(), "retiring-secret".into()],
            ..keys()
        };
        let body = event("person.updated", "2026-12-02T09:59:58Z");
        let timestamp = now().timestamp().to_string();
        let deliver = |keys: &ReceiverKeys, signature: &str, authorization: Option<&str>| {
            let delivery = PersonioDelivery {
                authorization,
                signed: SignedHeaders {
                    signature: Some(signature),
                    timestamp: Some(&timestamp),
                },
                body: &body,
            };
            check_personio(keys, &scheme, delivery, now())
        };
        let current = crate::webhook::signature::sign(&scheme, "current-secret", &timestamp, &body);
        let retiring =
            crate::webhook::signature::sign(&scheme, "retiring-secret", &timestamp, &body);
        let forged = crate::webhook::signature::sign(&scheme, "guessed", &timestamp, &body);
        assert_eq!(deliver(&signing, &current, None), Ok(Verdict::Wake));
        assert_eq!(deliver(&signing, &retiring, None), Ok(Verdict::Wake));
        assert_eq!(
            deliver(&signing, &forged, None),
            Err(Rejection::Unauthenticated)
        );
        assert_eq!(
            personio(&signing, None, &body, now()),
            Err(Rejection::Unauthenticated),
            "unsigned"
        );
        let both = ReceiverKeys {
            current: keys().current,
            ..signing
        };
        assert_eq!(
            deliver(&both, &current, Some("Bearer personio-says-hi")),
            Ok(Verdict::Wake)
        );
        assert_eq!(
            deliver(&both, &current, Some("Bearer wrong")),
            Err(Rejection::Unauthenticated),
            "a configured token is still required next to the signature"
        );
    }

    #[test]
    fn bodies_that_are_not_the_documented_envelope_are_malformed() {
        for body in [
            b"not json".to_vec(),
            b"{}".to_vec(),
            br#"{"company_id":"1","event_name":"person.updated","occurred_at":"yesterday","payload":{}}"#.to_vec(),
            br#"{"company_id":"1","event_name":"person.updated","occurred_at":"2026-12-02T09:59:58Z","payload":[]}"#.to_vec(),
        ] {
            assert_eq!(authorized(&body), Err(Rejection::Malformed));
        }
        assert_eq!(check_reteach(b"[1]"), Err(Rejection::Malformed));
        assert_eq!(check_reteach(b"{\"event\":\"x\"}"), Ok(Verdict::Wake));
    }

    #[test]
    fn the_same_body_for_the_same_resource_is_accepted_once() {
        let guard = ReplayGuard::default();
        let a = ResourceKey::new(Source::Reteach, "ns", "a");
        let b = ResourceKey::new(Source::Reteach, "ns", "b");
        assert_eq!(guard.first_time(&a, b"{}", now()), Ok(()));
        assert_eq!(guard.first_time(&a, b"{}", now()), Err(Rejection::Replayed));
        assert_eq!(guard.first_time(&b, b"{}", now()), Ok(()));
        assert_eq!(guard.first_time(&a, b"{\"x\":1}", now()), Ok(()));
        let later = now() + REPLAY_WINDOW + Duration::seconds(1);
        assert_eq!(guard.first_time(&a, b"{\"y\":1}", later), Ok(()));
        assert_eq!(
            guard.first_time(&a, b"{}", later),
            Ok(()),
            "forgotten after the window"
        );
    }

    #[test]
    fn tokens_compare_whole_values() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abcd"));
        assert!(!tokens_match("abc", "ab"));
        assert!(!tokens_match("", ""));
    }

    #[test]
    fn the_subject_is_the_person_of_a_person_or_employment_event() {
        let body = |event: &str, payload: serde_json::Value| {
            serde_json::to_vec(&serde_json::json!({
                "company_id": "1", "event_name": event,
                "occurred_at": "2026-12-02T10:00:00Z", "payload": payload
            }))
            .unwrap()
        };
        use serde_json::json;
        let subject = |event: &str, payload| personio_subject(&body(event, payload));
        assert_eq!(
            subject("person.updated", json!({"id": "7"})),
            Some("7".into())
        );
        assert_eq!(
            subject("person.deleted", json!({"id": 7})),
            Some("7".into())
        );
        assert_eq!(
            subject(
                "employment.terminated",
                json!({"id": "1000000007", "person": {"id": "7"}})
            ),
            Some("7".into()),
            "an employment event names its person"
        );
        assert_eq!(
            subject("employment.started", json!({"person_id": "8"})),
            Some("8".into())
        );
        assert_eq!(
            subject("employment.updated", json!({"id": "1000000007"})),
            None,
            "the employment's own id is no person id"
        );
        assert_eq!(subject("person.updated", json!({"id": "../7"})), None);
        assert_eq!(subject("document.created", json!({"id": "7"})), None);
        assert_eq!(personio_subject(b"not json"), None);
    }
}
