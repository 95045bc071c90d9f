//! The simulator's records and how they look on the wire (reteach 2022-12 spec shapes, plus the
//! newer `position`/`location` fields).

use chrono::{DateTime, Offset, SecondsFormat, Utc};
use serde_json::{json, Value};

/// A reteach customer as the simulator stores it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimCustomer {
    /// reteach id.
    pub id: String,
    /// `externalId` (the Personio employee id when the operator created it).
    pub external_id: Option<String>,
    /// Login e-mail, unique (case-insensitive).
    pub email: Option<String>,
    /// Alternative login.
    pub user_name: Option<String>,
    /// `firstName`.
    pub first_name: Option<String>,
    /// `lastName`.
    pub last_name: Option<String>,
    /// `position` (newer API).
    pub position: Option<String>,
    /// `department`.
    pub department: Option<String>,
    /// `location` (newer API).
    pub location: Option<String>,
    /// `MALE`, `FEMALE` or `DIVERSE`.
    pub gender: Option<String>,
    /// `company`.
    pub company: Option<String>,
    /// `language` (`EN`, `DE`, …); returned as `DE` while unset.
    pub language: Option<String>,
    /// `note`.
    pub note: Option<String>,
    /// Scheduled activation.
    pub set_active_at: Option<DateTime<Utc>>,
    /// Scheduled deactivation.
    pub set_inactive_at: Option<DateTime<Utc>>,
    /// Whether the customer accepted an invitation (status `ACTIVE` rather than `ADDED`).
    pub registered: bool,
    /// Deactivated by a `setInactiveAt` that fired and was cleared ([`LockDateEcho::ClearedOnceFired`]);
    /// a later activation that fires reactivates.
    pub deactivated: bool,
    /// `source`: `REST_API` for customers created through the API, `MANUAL` for seeded ones.
    pub source: String,
    /// `registeredAt` (creation time).
    pub created_at: DateTime<Utc>,
    /// The customer's tags, in the order they were assigned.
    pub tags: Vec<SimTag>,
}

/// A tag of the academy (`{id, name}`), created on first use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimTag {
    /// reteach tag id.
    pub id: String,
    /// The tag's name.
    pub name: String,
}

impl SimTag {
    /// The `Tag` schema.
    pub fn to_json(&self) -> Value {
        json!({ "id": self.id, "name": self.name })
    }
}

impl SimCustomer {
    /// The read-only status reteach derives: `INACTIVE` before `setActiveAt` and from
    /// `setInactiveAt` on, otherwise `ACTIVE` (registered) or `ADDED`.
    pub fn status(&self, now: DateTime<Utc>) -> &'static str {
        let not_yet = self.set_active_at.is_some_and(|at| now < at);
        let over = self.set_inactive_at.is_some_and(|at| now >= at);
        if not_yet || over || self.deactivated {
            "INACTIVE"
        } else if self.registered {
            "ACTIVE"
        } else {
            "ADDED"
        }
    }

    /// The `Customer` schema.
    pub fn to_json(&self, now: DateTime<Utc>) -> Value {
        let display = match (&self.first_name, &self.last_name) {
            (Some(first), Some(last)) => Some(format!("{first} {last}")),
            (Some(one), None) | (None, Some(one)) => Some(one.clone()),
            (None, None) => None,
        };
        json!({
            "id": self.id,
            "email": self.email,
            "userName": self.user_name,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "displayName": display,
            "language": self.language.as_deref().unwrap_or("DE"),
            "company": self.company,
            "birthDate": null,
            "department": self.department,
            "position": self.position,
            "location": self.location,
            "gender": self.gender,
            "externalId": self.external_id,
            "note": self.note,
            "expiredNotificationMail": null,
            "source": self.source,
            "authenticationMethod": "DEFAULT",
            "setActiveAt": self.set_active_at.map(iso),
            "setInactiveAt": self.set_inactive_at.map(iso),
            "lastLoginAt": null,
            "status": self.status(now),
            "registeredAt": iso(self.created_at),
            "tags": self.tags.iter().map(SimTag::to_json).collect::<Vec<_>>(),
        })
    }
}

/// How the simulated academy treats one customer field (an academy on an older API may not know
/// `position` or `location`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldMode {
    /// Stored and returned (the default).
    #[default]
    Keep,
    /// A body carrying the field is answered with NestJS' whitelist error: 400
    /// `{"statusCode":400,"message":["property position should not exist"],"error":"Bad Request"}`.
    /// The field is not returned either.
    Refuse,
    /// Accepted, not stored, not returned.
    Drop,
}

impl std::str::FromStr for FieldMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "keep" => Ok(Self::Keep),
            "refuse" => Ok(Self::Refuse),
            "drop" => Ok(Self::Drop),
            other => Err(format!("{other:?} is not keep, refuse or drop")),
        }
    }
}

/// What the simulator returns for `setActiveAt`/`setInactiveAt` (undocumented for reteach).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LockDateEcho {
    /// The dates stay as written, in the JavaScript ISO format (the default).
    #[default]
    Kept,
    /// A date is cleared once it has fired; the state it caused (active or inactive) stays.
    ClearedOnceFired,
    /// The dates stay but come back in another format: no milliseconds, a `+01:00` offset.
    Normalised,
}

impl SimCustomer {
    /// Applies the dates that have fired by `now` in the order they fired, then clears them
    /// ([`LockDateEcho::ClearedOnceFired`]).
    pub(crate) fn fire_lock_dates(&mut self, now: DateTime<Utc>) {
        let mut fired: Vec<(DateTime<Utc>, bool)> = Vec::new();
        if let Some(at) = self.set_active_at.filter(|at| *at <= now) {
            fired.push((at, false));
            self.set_active_at = None;
        }
        if let Some(at) = self.set_inactive_at.filter(|at| *at <= now) {
            fired.push((at, true));
            self.set_inactive_at = None;
        }
        fired.sort();
        for (_, deactivates) in fired {
            self.deactivated = deactivates;
        }
    }
}

/// A date in the [`LockDateEcho::Normalised`] format.
pub(crate) fn normalised(at: DateTime<Utc>) -> String {
    let plus_one = chrono::FixedOffset::east_opt(3600).unwrap_or_else(|| Utc.fix());
    at.with_timezone(&plus_one)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// A participation of a customer in a course.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimParticipation {
    /// reteach participation id.
    pub id: String,
    /// The customer's reteach id.
    pub customer_id: String,
    /// Course id.
    pub course_id: String,
    /// Course name.
    pub course_name: String,
    /// `ADDED` … `COMPLETED`.
    pub status: String,
    /// Set when completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// The certificate, when the course issues one.
    pub certificate_id: Option<String>,
}

/// A course certificate and its (generated on demand) PDF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimCertificate {
    /// reteach certificate id.
    pub id: String,
    /// `false` while reteach is still "generating" the PDF (`url: null`).
    pub pdf_ready: bool,
    /// Size of the generated PDF in bytes (approximate lower bound: at least a minimal PDF).
    pub size: u64,
    /// Serve an HTML page instead of a PDF (a broken storage backend).
    pub not_pdf: bool,
}

/// JavaScript-style ISO timestamp, as NestJS renders `Date`s.
pub fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
