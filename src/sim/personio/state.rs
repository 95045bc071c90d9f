//! The simulator's data: employees, document categories, stored documents, issued tokens.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use super::employee::StoredEmployee;
use super::rate_limit::Buckets;

/// A document stored by an upload. The bytes are not kept, only their size and checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimDocument {
    /// Document id (v1 number; v2 lists it as a string).
    pub id: i64,
    /// Employee the document belongs to.
    pub owner_id: i64,
    /// Document category.
    pub category_id: i64,
    /// `title` part (v2 `name`).
    pub title: String,
    /// `date` part.
    pub date: Option<NaiveDate>,
    /// `comment` part (the operator's marker).
    pub comment: Option<String>,
    /// File name of the `file` part.
    pub file_name: String,
    /// Bytes received in the `file` part.
    pub size: u64,
    /// `Content-Length` of the upload request (`None`: sent chunked, length unknown).
    pub request_content_length: Option<u64>,
    /// Cheap content checksum (FNV-1a 64) to tell uploads apart in tests.
    pub checksum: u64,
    /// When it was stored (simulator clock).
    pub created_at: DateTime<Utc>,
}

/// A document category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimCategory {
    /// Category id.
    pub id: i64,
    /// Tenant-defined name.
    pub name: String,
}

/// Which endpoint issued a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenOrigin {
    /// `POST /v1/auth`.
    V1Auth,
    /// `POST /v2/auth/token`.
    V2Token,
}

#[derive(Clone, Debug)]
pub(super) struct IssuedToken {
    pub origin: TokenOrigin,
    pub expires_at: DateTime<Utc>,
}

/// Everything the simulator holds; guarded by one mutex.
#[derive(Debug)]
pub(super) struct SimState {
    pub employees: BTreeMap<i64, StoredEmployee>,
    pub next_employee_id: i64,
    pub categories: Vec<SimCategory>,
    pub documents: Vec<SimDocument>,
    pub next_document_id: i64,
    pub tokens: HashMap<String, IssuedToken>,
    /// Attributes the credential may read; `None` = all.
    pub whitelist: Option<BTreeSet<String>>,
    /// Expire every token after this many more authorized requests (test hook).
    pub expire_tokens_after: Option<usize>,
    /// `X-Personio-App-ID` of every request, in order.
    pub app_ids: Vec<Option<String>>,
    /// The v2 listing ignores `owner_id` (as if it expected another id than the v1 employee id
    /// and fell back to every document the credential sees).
    pub ignore_owner_filter: bool,
    pub buckets: Option<Buckets>,
    /// Dated webhook events already sent: (event, employee, date).
    pub dated_events: std::collections::HashSet<(&'static str, i64, NaiveDate)>,
    /// Answer an upload without `Content-Length` with 411 (a server that refuses chunked bodies).
    pub require_content_length: bool,
    /// Configured webhooks.
    pub webhooks: Vec<super::webhooks::SimWebhook>,
    pub next_webhook_id: u64,
}

impl SimState {
    pub fn new(buckets: Option<Buckets>) -> Self {
        Self {
            employees: BTreeMap::new(),
            next_employee_id: super::FIRST_EMPLOYEE_ID as i64,
            categories: vec![
                SimCategory {
                    id: 1,
                    name: "Certificates of employment".to_string(),
                },
                SimCategory {
                    id: 2,
                    name: "Other documents".to_string(),
                },
                SimCategory {
                    id: 3,
                    name: "Learning Certificates".to_string(),
                },
            ],
            documents: Vec::new(),
            next_document_id: 900_001,
            tokens: HashMap::new(),
            whitelist: None,
            expire_tokens_after: None,
            require_content_length: false,
            webhooks: Vec::new(),
            next_webhook_id: 0,
            app_ids: Vec::new(),
            ignore_owner_filter: false,
            buckets,
            dated_events: std::collections::HashSet::new(),
        }
    }

    /// Whether the credential may read `attribute` (`id` always).
    pub fn may_read(&self, attribute: &str) -> bool {
        attribute == "id"
            || self
                .whitelist
                .as_ref()
                .is_none_or(|whitelist| whitelist.contains(attribute))
    }

    /// Counts one authorized request for the expiry hook; expires all tokens when it runs out.
    pub fn count_authorized_request(&mut self, now: DateTime<Utc>) {
        let Some(remaining) = self.expire_tokens_after.as_mut() else {
            return;
        };
        *remaining = remaining.saturating_sub(1);
        if *remaining == 0 {
            self.expire_tokens_after = None;
            self.expire_all_tokens(now);
        }
    }

    pub fn expire_all_tokens(&mut self, now: DateTime<Utc>) {
        for token in self.tokens.values_mut() {
            token.expires_at = now;
        }
    }
}

/// FNV-1a, enough to compare uploaded contents in tests without a hashing dependency.
pub(super) fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// FNV-1a offset basis.
pub(super) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
