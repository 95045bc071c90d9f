//! Personio's delivery signatures: HMAC-SHA256 over the request timestamp and body, keyed with the
//! webhook's signing secret (developer.personio.de "Webhooks", section "Signature verification";
//! `shared/reference/personio/v2/webhook-signatures.md`). A signing secret is rotated with an
//! overlap (`POST /v2/webhooks/{id}/signing-secret` keeps the old one for 7 days), so a receiver
//! accepts a signature made with any of the secrets it knows.
//!
//! What Personio's stored docs leave open — the header names, the exact string that is signed, the
//! digest's encoding and the tolerance — is a setting ([`SignatureScheme`], flags
//! `--personio-signature-*`), not a guess baked into code. The defaults are one reading
//! (`X-Personio-Signature`, `X-Personio-Timestamp`, `{timestamp}.{body}`, 5 minutes); the parser
//! accepts the common encodings (hex or base64, an optional `sha256=`/`v1=` prefix, several
//! signatures in one header, a Stripe-style `t=…,v1=…` header) so that a confirmed scheme usually
//! needs a flag change only. The simulator signs with the same scheme ([`sign`]).

use axum::http::HeaderName;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Duration, TimeZone, Utc};
use ring::hmac;

use super::rejection::Rejection;

/// Default header of the signature.
pub const DEFAULT_SIGNATURE_HEADER: &str = "x-personio-signature";
/// Default header of the signed timestamp.
pub const DEFAULT_TIMESTAMP_HEADER: &str = "x-personio-timestamp";
/// Default string that is signed.
pub const DEFAULT_PAYLOAD: &str = "{timestamp}.{body}";
/// Default tolerance between the signed timestamp and the receiver's clock.
pub const DEFAULT_TOLERANCE: Duration = Duration::minutes(5);

/// Longest signature header looked at (a handful of signatures fit many times over).
const MAX_SIGNATURE_HEADER: usize = 1024;
/// Most signatures tried per request (one per secret in a rotation, and a few encodings).
const MAX_CANDIDATES: usize = 8;

/// Why a signature setting was refused at start-up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemeError {
    /// A header name that is not a valid HTTP header name.
    #[error("{0:?} is not a valid HTTP header name")]
    HeaderName(String),
    /// A payload template without exactly one `{body}` and one `{timestamp}`.
    #[error(
        "the signed payload {0:?} must contain `{{body}}` and `{{timestamp}}` exactly once each"
    )]
    Payload(String),
}

/// One piece of the signed string.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Timestamp,
    Body,
}

/// The string that is signed, e.g. `{timestamp}.{body}`: the timestamp header's value and the raw
/// body bytes, with the literal text between them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadTemplate {
    parts: Vec<Part>,
}

impl std::str::FromStr for PayloadTemplate {
    type Err = SchemeError;

    fn from_str(template: &str) -> Result<Self, Self::Err> {
        let invalid = || SchemeError::Payload(template.to_string());
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            let next = [("{timestamp}", Part::Timestamp), ("{body}", Part::Body)]
                .into_iter()
                .filter_map(|(marker, part)| rest.find(marker).map(|at| (at, marker, part)))
                .min_by_key(|(at, _, _)| *at);
            let Some((at, marker, part)) = next else {
                parts.push(Part::Literal(rest.to_string()));
                break;
            };
            if at > 0 {
                parts.push(Part::Literal(rest[..at].to_string()));
            }
            parts.push(part);
            rest = &rest[at + marker.len()..];
        }
        let count = |wanted: &Part| parts.iter().filter(|p| *p == wanted).count();
        if count(&Part::Body) != 1 || count(&Part::Timestamp) != 1 {
            return Err(invalid());
        }
        Ok(Self { parts })
    }
}

impl PayloadTemplate {
    /// The bytes signed for `timestamp` and `body`.
    fn render(&self, timestamp: &str, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + timestamp.len() + 8);
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.extend_from_slice(text.as_bytes()),
                Part::Timestamp => out.extend_from_slice(timestamp.as_bytes()),
                Part::Body => out.extend_from_slice(body),
            }
        }
        out
    }
}

/// How Personio's deliveries are signed (the operator's `--personio-signature-*` flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureScheme {
    /// Header carrying the signature(s).
    pub signature_header: HeaderName,
    /// Header carrying the signed timestamp (Unix seconds, milliseconds or RFC 3339); when absent,
    /// a `t=` item of the signature header is used.
    pub timestamp_header: HeaderName,
    /// What is signed.
    pub payload: PayloadTemplate,
    /// Largest difference between the signed timestamp and now: older deliveries are replays.
    pub tolerance: Duration,
}

impl Default for SignatureScheme {
    fn default() -> Self {
        Self {
            signature_header: HeaderName::from_static(DEFAULT_SIGNATURE_HEADER),
            timestamp_header: HeaderName::from_static(DEFAULT_TIMESTAMP_HEADER),
            payload: PayloadTemplate {
                parts: vec![Part::Timestamp, Part::Literal(".".into()), Part::Body],
            },
            tolerance: DEFAULT_TOLERANCE,
        }
    }
}

impl SignatureScheme {
    /// A scheme from the operator's flags.
    pub fn new(
        signature_header: &str,
        timestamp_header: &str,
        payload: &str,
        tolerance: Duration,
    ) -> Result<Self, SchemeError> {
        let header = |name: &str| {
            HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| SchemeError::HeaderName(name.to_string()))
        };
        Ok(Self {
            signature_header: header(signature_header)?,
            timestamp_header: header(timestamp_header)?,
            payload: payload.parse()?,
            tolerance,
        })
    }
}

/// The signature headers of one delivery, as received.
#[derive(Clone, Copy, Debug, Default)]
pub struct SignedHeaders<'a> {
    /// The signature header's value.
    pub signature: Option<&'a str>,
    /// The timestamp header's value.
    pub timestamp: Option<&'a str>,
}

/// The signature Personio would send for `body` at `timestamp` with `secret`: lowercase hex.
pub fn sign(scheme: &SignatureScheme, secret: &str, timestamp: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, &scheme.payload.render(timestamp, body));
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a delivery's signature against every secret in `secrets` (current and retiring), and
/// that its signed timestamp lies within the tolerance of `now`. A missing, malformed or wrong
/// signature is `Unauthenticated`; a valid one with a timestamp outside the tolerance is
/// `Replayed`. Comparisons are constant-time (`ring::hmac::verify`).
pub fn verify(
    scheme: &SignatureScheme,
    secrets: &[String],
    headers: SignedHeaders<'_>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), Rejection> {
    let value = headers
        .signature
        .filter(|v| !v.is_empty() && v.len() <= MAX_SIGNATURE_HEADER)
        .ok_or(Rejection::Unauthenticated)?;
    let parsed = parse_signature_header(value);
    let timestamp = headers
        .timestamp
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .or(parsed.timestamp)
        .ok_or(Rejection::Unauthenticated)?;
    let signed = scheme.payload.render(timestamp, body);
    let authentic = secrets.iter().filter(|s| !s.is_empty()).any(|secret| {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        parsed
            .digests
            .iter()
            .any(|digest| hmac::verify(&key, &signed, digest).is_ok())
    });
    if !authentic {
        return Err(Rejection::Unauthenticated);
    }
    let at = parse_timestamp(timestamp).ok_or(Rejection::Malformed)?;
    if (now - at).abs() > scheme.tolerance {
        return Err(Rejection::Replayed);
    }
    Ok(())
}

/// What a signature header holds: candidate digests (32 bytes each) and a `t=` timestamp.
struct ParsedSignature<'a> {
    digests: Vec<Vec<u8>>,
    timestamp: Option<&'a str>,
}

/// Reads `sha256=<hex>`, `v1=<base64>`, `<hex>`, `t=…,v1=…` and `v1,<base64> v1,<base64>`.
fn parse_signature_header(value: &str) -> ParsedSignature<'_> {
    let mut parsed = ParsedSignature {
        digests: Vec::new(),
        timestamp: None,
    };
    let items = value
        .split(|c: char| c == ',' || c == ';' || c.is_ascii_whitespace())
        .map(str::trim)
        .filter(|item| !item.is_empty());
    for item in items {
        let (label, encoded) = split_label(item);
        match label {
            Some("t" | "ts" | "timestamp") => parsed.timestamp = Some(encoded),
            _ => {
                if let Some(digest) = decode_digest(encoded) {
                    if parsed.digests.len() < MAX_CANDIDATES {
                        parsed.digests.push(digest);
                    }
                }
            }
        }
    }
    parsed
}

/// `label=value` → (`label`, `value`) when the label is a short word (so base64 padding `=` is not
/// taken for one); otherwise the whole item.
fn split_label(item: &str) -> (Option<&str>, &str) {
    match item.split_once('=') {
        Some((label, value))
            if !label.is_empty()
                && label.len() <= 10
                && !value.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            (Some(label), value)
        }
        _ => (None, item),
    }
}

/// A 32-byte digest from hex or base64 (standard or URL-safe, padding optional).
fn decode_digest(encoded: &str) -> Option<Vec<u8>> {
    if encoded.len() == 64 && encoded.bytes().all(|b| b.is_ascii_hexdigit()) {
        return (0..32)
            .map(|i| u8::from_str_radix(&encoded[2 * i..2 * i + 2], 16).ok())
            .collect();
    }
    let unpadded = encoded.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(unpadded)
        .or_else(|_| URL_SAFE_NO_PAD.decode(unpadded))
        .ok()
        .filter(|bytes| bytes.len() == 32)
}

/// Unix seconds, Unix milliseconds (13 digits and more) or RFC 3339.
fn parse_timestamp(value: &str) -> Option<DateTime<Utc>> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let number: i64 = value.parse().ok()?;
        return if value.len() >= 13 {
            Utc.timestamp_millis_opt(number).single()
        } else {
            Utc.timestamp_opt(number, 0).single()
        };
    }
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec-current-0123456789abcdef";
    const OLD: &str = "whsec-retiring-0123456789abcdef";
    const BODY: &[u8] = br#"{"company_id":"1","event_name":"person.updated"}"#;

    fn now() -> DateTime<Utc> {
        crate::clock::at("2026-12-02T10:00:00Z")
    }

    fn ts() -> String {
        now().timestamp().to_string()
    }

    fn check(secrets: &[&str], signature: &str, timestamp: Option<&str>) -> Result<(), Rejection> {
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        let headers = SignedHeaders {
            signature: Some(signature),
            timestamp,
        };
        verify(&SignatureScheme::default(), &secrets, headers, BODY, now())
    }

    fn hex_signature(secret: &str) -> String {
        sign(&SignatureScheme::default(), secret, &ts(), BODY)
    }

    fn base64_signature(secret: &str) -> String {
        let hex = hex_signature(secret);
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn a_delivery_signed_with_the_current_or_the_retiring_secret_is_accepted() {
        let ts = ts();
        let sig = hex_signature(SECRET);
        assert_eq!(check(&[SECRET, OLD], &sig, Some(&ts)), Ok(()));
        let old = hex_signature(OLD);
        assert_eq!(check(&[SECRET, OLD], &old, Some(&ts)), Ok(()));
        assert_eq!(
            check(&[SECRET], &old, Some(&ts)),
            Err(Rejection::Unauthenticated),
            "a secret past its grace window no longer verifies"
        );
    }

    #[test]
    fn common_encodings_and_prefixes_are_read() {
        let ts = ts();
        let hex = hex_signature(SECRET);
        let b64 = base64_signature(SECRET);
        let wrong = hex_signature("another-secret-entirely");
        for header in [
            format!("sha256={hex}"),
            format!("v1={b64}"),
            format!("v1,{b64}"),
            b64.clone(),
            b64.trim_end_matches('=')
                .replace('+', "-")
                .replace('/', "_"),
            format!("sha256={wrong}, sha256={hex}"),
            format!("v1,{wrong} v1,{b64}"),
        ] {
            assert_eq!(check(&[SECRET], &header, Some(&ts)), Ok(()), "{header}");
        }
        let stripe = format!("t={ts},v1={hex}");
        assert_eq!(check(&[SECRET], &stripe, None), Ok(()));
    }

    #[test]
    fn a_missing_wrong_or_tampered_signature_is_unauthenticated() {
        let ts = ts();
        let sig = hex_signature(SECRET);
        let secrets = vec![SECRET.to_string()];
        let scheme = SignatureScheme::default();
        let unsigned = SignedHeaders {
            signature: None,
            timestamp: Some(&ts),
        };
        assert_eq!(
            verify(&scheme, &secrets, unsigned, BODY, now()),
            Err(Rejection::Unauthenticated)
        );
        for header in ["", "sha256=", "zzzz", &sig[..63], &"0".repeat(64)] {
            assert_eq!(
                check(&[SECRET], header, Some(&ts)),
                Err(Rejection::Unauthenticated),
                "{header:?}"
            );
        }
        let signed = SignedHeaders {
            signature: Some(&sig),
            timestamp: Some(&ts),
        };
        let tampered = br#"{"company_id":"2","event_name":"person.updated"}"#;
        assert_eq!(
            verify(&scheme, &secrets, signed, tampered, now()),
            Err(Rejection::Unauthenticated)
        );
        let later = (now().timestamp() + 1).to_string();
        assert_eq!(
            check(&[SECRET], &sig, Some(&later)),
            Err(Rejection::Unauthenticated),
            "the timestamp is signed too"
        );
        assert_eq!(
            check(&[], &sig, Some(&ts)),
            Err(Rejection::Unauthenticated),
            "no secret accepts nothing"
        );
        assert_eq!(
            check(&[""], &sig, Some(&ts)),
            Err(Rejection::Unauthenticated)
        );
    }

    #[test]
    fn replays_are_judged_by_the_signed_timestamp() {
        let scheme = SignatureScheme::default();
        let secrets = vec![SECRET.to_string()];
        for (at, expected) in [
            (now() - Duration::minutes(4), Ok(())),
            (now() + Duration::minutes(4), Ok(())),
            (now() - Duration::minutes(6), Err(Rejection::Replayed)),
            (now() + Duration::minutes(6), Err(Rejection::Replayed)),
        ] {
            for timestamp in [
                at.timestamp().to_string(),
                at.timestamp_millis().to_string(),
                at.to_rfc3339(),
            ] {
                let signature = sign(&scheme, SECRET, &timestamp, BODY);
                let headers = SignedHeaders {
                    signature: Some(&signature),
                    timestamp: Some(&timestamp),
                };
                assert_eq!(
                    verify(&scheme, &secrets, headers, BODY, now()),
                    expected,
                    "{timestamp}"
                );
            }
        }
    }

    #[test]
    fn the_scheme_is_configurable_and_checked() {
        let scheme = SignatureScheme::new(
            "Personio-Signature",
            "Personio-Timestamp",
            "{body}|{timestamp}",
            Duration::minutes(1),
        )
        .unwrap();
        assert_eq!(scheme.signature_header.as_str(), "personio-signature");
        let ts = ts();
        let signature = sign(&scheme, SECRET, &ts, BODY);
        let headers = SignedHeaders {
            signature: Some(&signature),
            timestamp: Some(&ts),
        };
        assert_eq!(
            verify(&scheme, &[SECRET.into()], headers, BODY, now()),
            Ok(())
        );
        assert_ne!(
            signature,
            sign(&SignatureScheme::default(), SECRET, &ts, BODY),
            "the template decides what is signed"
        );
        for bad in ["{body}", "{timestamp}", "{body}{body}{timestamp}", "x"] {
            assert!(matches!(
                SignatureScheme::new("a", "b", bad, Duration::minutes(1)),
                Err(SchemeError::Payload(_))
            ));
        }
        assert!(matches!(
            SignatureScheme::new("bad header", "b", DEFAULT_PAYLOAD, Duration::minutes(1)),
            Err(SchemeError::HeaderName(_))
        ));
        assert_eq!(
            DEFAULT_PAYLOAD.parse::<PayloadTemplate>().unwrap(),
            SignatureScheme::default().payload
        );
    }

    #[test]
    fn an_oversized_signature_header_is_not_parsed() {
        let long = "a".repeat(MAX_SIGNATURE_HEADER + 1);
        assert_eq!(
            check(&[SECRET], &long, Some(&ts())),
            Err(Rejection::Unauthenticated)
        );
    }
}
