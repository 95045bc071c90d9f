//! Everything the simulator remembers, behind one mutex (held only for short, synchronous work).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use governor::DefaultDirectRateLimiter;

use super::auth::BadTokenAnswer;
use super::model::{
    normalised, FieldMode, LockDateEcho, SimCertificate, SimCustomer, SimParticipation, SimTag,
};
use super::storage::{CertificateUrls, StorageRequest};

/// PDF size when nothing else is configured: a small real-looking certificate.
pub const DEFAULT_PDF_SIZE: u64 = 2048;

/// The app credentials the simulated academy accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimCredentials {
    /// Client-ID.
    pub client_id: String,
    /// Client-Secret.
    pub client_secret: String,
    /// Client-Code.
    pub client_code: String,
}

impl Default for SimCredentials {
    fn default() -> Self {
        Self {
            client_id: "sim-client-id".to_string(),
            client_secret: "sim-client-secret".to_string(),
            client_code: "sim-client-code".to_string(),
        }
    }
}

/// The simulator's data.
pub(crate) struct State {
    pub credentials: SimCredentials,
    pub academy_id: String,
    pub academy_name: String,
    pub token_ttl: Duration,
    /// Access token → expiry.
    pub tokens: HashMap<String, DateTime<Utc>>,
    /// Status for a missing, expired or revoked token.
    pub bad_token_answer: BadTokenAnswer,
    pub customers: Vec<SimCustomer>,
    /// Course name → id.
    pub courses: Vec<(String, String)>,
    pub participations: Vec<SimParticipation>,
    pub certificates: HashMap<String, SimCertificate>,
    /// Customer id → number of create/update requests that addressed it.
    pub writes: HashMap<String, usize>,
    pub default_pdf_size: u64,
    pub rate_limiter: Option<Arc<DefaultDirectRateLimiter>>,
    /// Base of certificate URLs; `None` = derived from the request's `Host` header.
    pub public_base_url: Option<String>,
    /// Answer `GET /participation` as the 2022 spec does: `status`, `completedAtSince` and
    /// `hasCertificate` ignored.
    pub ignore_participation_filters: bool,
    /// What certificate URLs point at.
    pub certificate_urls: CertificateUrls,
    /// Host name of the simulated storage host (the simulator itself under another name).
    pub storage_host: String,
    /// Every request the storage host received.
    pub storage_requests: Vec<StorageRequest>,
    /// What `setActiveAt`/`setInactiveAt` look like once written and fired.
    pub lock_dates: LockDateEcho,
    /// Send `Content-Length` with PDFs (off: chunked, length unknown until the end).
    pub announce_pdf_length: bool,
    /// REST hook subscriptions.
    pub subscriptions: Vec<super::subscriptions::SimSubscription>,
    /// Customer fields (by JSON name) the academy refuses or drops; others are kept.
    pub field_modes: HashMap<String, FieldMode>,
    /// The academy's tags, in creation order.
    pub tags: Vec<SimTag>,
    next_id: u64,
}

impl State {
    pub fn new(credentials: SimCredentials) -> Self {
        Self {
            credentials,
            academy_id: "academy-sim".to_string(),
            academy_name: "Simulated Academy".to_string(),
            token_ttl: Duration::hours(1),
            tokens: HashMap::new(),
            bad_token_answer: BadTokenAnswer::default(),
            customers: Vec::new(),
            courses: Vec::new(),
            participations: Vec::new(),
            certificates: HashMap::new(),
            writes: HashMap::new(),
            default_pdf_size: DEFAULT_PDF_SIZE,
            rate_limiter: None,
            public_base_url: None,
            ignore_participation_filters: false,
            certificate_urls: CertificateUrls::default(),
            storage_host: "localhost".to_string(),
            storage_requests: Vec::new(),
            announce_pdf_length: true,
            lock_dates: LockDateEcho::default(),
            subscriptions: Vec::new(),
            field_modes: HashMap::new(),
            tags: Vec::new(),
            next_id: 0,
        }
    }

    /// Lets fired lock dates act and disappear, in [`LockDateEcho::ClearedOnceFired`] mode.
    pub fn fire_lock_dates(&mut self, now: DateTime<Utc>) {
        if self.lock_dates == LockDateEcho::ClearedOnceFired {
            for customer in &mut self.customers {
                customer.fire_lock_dates(now);
            }
        }
    }

    /// The `Customer` JSON of `customer`, lock dates in the configured format.
    pub fn render_customer(&self, customer: &SimCustomer, now: DateTime<Utc>) -> serde_json::Value {
        let mut json = customer.to_json(now);
        if let Some(object) = json.as_object_mut() {
            for (field, mode) in &self.field_modes {
                if *mode != FieldMode::Keep {
                    object.remove(field);
                }
            }
        }
        if self.lock_dates == LockDateEcho::Normalised {
            for (key, at) in [
                ("setActiveAt", customer.set_active_at),
                ("setInactiveAt", customer.set_inactive_at),
            ] {
                if let Some(at) = at {
                    json[key] = serde_json::Value::String(normalised(at));
                }
            }
        }
        json
    }

    /// Applies the field modes to a request body: `Err` with the whitelist messages when it
    /// carries a refused field, otherwise the body without dropped fields.
    pub fn screen_fields(&self, body: &mut serde_json::Value) -> Result<(), Vec<String>> {
        let Some(object) = body.as_object_mut() else {
            return Ok(());
        };
        let mut refused: Vec<String> = object
            .keys()
            .filter(|key| self.field_modes.get(*key) == Some(&FieldMode::Refuse))
            .map(|key| format!("property {key} should not exist"))
            .collect();
        if !refused.is_empty() {
            refused.sort();
            return Err(refused);
        }
        object.retain(|key, _| self.field_modes.get(key) != Some(&FieldMode::Drop));
        Ok(())
    }

    /// A new opaque id such as `cus_000001`.
    pub fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{:06}", self.next_id)
    }

    /// Index of the customer addressed by id, e-mail, username or externalId (in that order).
    pub fn customer_index(&self, identifier: &str) -> Option<usize> {
        let by = |f: &dyn Fn(&SimCustomer) -> bool| self.customers.iter().position(f);
        by(&|c| c.id == identifier)
            .or_else(|| {
                by(&|c| {
                    c.email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(identifier))
                })
            })
            .or_else(|| by(&|c| c.user_name.as_deref() == Some(identifier)))
            .or_else(|| by(&|c| c.external_id.as_deref() == Some(identifier)))
    }

    /// Counts a write request against a customer.
    pub fn count_write(&mut self, customer_id: &str) {
        *self.writes.entry(customer_id.to_string()).or_default() += 1;
    }

    /// The course id for `name`, created on first use.
    pub fn course_id(&mut self, name: &str) -> String {
        if let Some((id, _)) = self.courses.iter().find(|(_, n)| n == name) {
            return id.clone();
        }
        let id = self.new_id("crs");
        self.courses.push((id.clone(), name.to_string()));
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refused_fields_answer_the_whitelist_messages_and_dropped_ones_vanish() {
        let mut state = State::new(SimCredentials::default());
        state
            .field_modes
            .insert("position".into(), FieldMode::Refuse);
        state.field_modes.insert("location".into(), FieldMode::Drop);
        let mut body = json!({"email": "a@b.example", "position": null, "location": "HQ"});
        assert_eq!(
            state.screen_fields(&mut body),
            Err(vec!["property position should not exist".to_string()])
        );
        let mut body = json!({"email": "a@b.example", "location": "HQ"});
        assert_eq!(state.screen_fields(&mut body), Ok(()));
        assert_eq!(body, json!({"email": "a@b.example"}));
        let customer = SimCustomer {
            id: "c1".into(),
            position: Some("seeded".into()),
            ..SimCustomer::default()
        };
        let rendered = state.render_customer(&customer, Utc::now());
        assert!(rendered.get("position").is_none() && rendered.get("location").is_none());
        assert!(rendered.get("department").is_some());
    }
}
