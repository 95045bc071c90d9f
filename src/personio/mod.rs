//! Personio client behind the [`PersonioApi`] trait: v1 auth, employees, document categories and
//! uploads; v2 document listing for duplicate checks. See `../shared/reference/personio/README.md`.

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};

use crate::sync::{DocumentCategory, PersonioEmployee, SkippedRecord, StoredDocument};
use crate::upstream::PdfStream;

mod auth;
mod client;
mod config;
pub mod dates;
mod documents;
pub mod employee_record;
mod employees;
mod error;
mod error_body;
mod persons;
mod probe;
mod probe_v2;
mod upload;
mod webhooks;

pub use client::PersonioClient;

/// The endpoint names the client records its requests under (the `endpoint` label of the request
/// metrics; the bench counts by them).
pub mod endpoints {
    pub use super::auth::V1_AUTH as AUTH;
    pub use super::documents::{CATEGORIES, DOCUMENTS};
    pub use super::employees::ENDPOINT as EMPLOYEES;
    pub use super::upload::UPLOAD;
}
pub use config::{
    EmployeeApi, PersonioConfig, PersonioCredentials, PersonioRateLimits, RateLimit, DEFAULT_APP_ID,
};
pub use employees::PAGE_SIZE;
pub use error::PersonioError;
pub use persons::V2_PAGE_SIZE;
pub use probe::{DocumentListingSample, EmployeeSample};
pub use probe_v2::PersonsSample;
pub use upload::{MAX_FILE_BYTES, MAX_TITLE_CHARS};
pub use webhooks::{PersonioWebhook, PersonioWebhooks};

/// The employee attributes the sync uses and therefore requires: a response without one of them
/// means the credential lacks it ([`PersonioError::AttributesNotWhitelisted`]).
pub const REQUIRED_ATTRIBUTES: [&str; 9] = [
    "first_name",
    "last_name",
    "email",
    "position",
    "department",
    "office",
    "gender",
    "hire_date",
    "termination_date",
];

/// Attributes asked for and used when present, never required: `status` and `contract_end_date`
/// refine the locking rule; `last_modified_at` is only informative (the change feed is filtered by
/// Personio itself through `updated_since`), so a credential without it syncs all the same.
pub const OPTIONAL_ATTRIBUTES: [&str; 3] = ["status", "contract_end_date", "last_modified_at"];

/// The attributes one employee listing asks for (`attributes[]`) and requires: those the
/// resource's mapping, selector and the locking rule read (see
/// [`crate::sync::employee_config::EmployeeConfig::attributes`]), plus
/// [`OPTIONAL_ATTRIBUTES`], asked for but never required. The default is today's fixed set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeRequest {
    required: Vec<String>,
}

impl Default for AttributeRequest {
    fn default() -> Self {
        Self::new(REQUIRED_ATTRIBUTES.iter().map(|name| name.to_string()))
    }
}

impl AttributeRequest {
    /// Requires `names` (in [`REQUIRED_ATTRIBUTES`]' order first, then the others as given),
    /// without duplicates and without the optional ones.
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        let mut names: Vec<String> = names
            .into_iter()
            .filter(|name| !OPTIONAL_ATTRIBUTES.contains(&name.as_str()) && name != "id")
            .collect();
        names.sort_by_key(|name| {
            REQUIRED_ATTRIBUTES
                .iter()
                .position(|known| known == name)
                .unwrap_or(REQUIRED_ATTRIBUTES.len())
        });
        let mut seen = std::collections::HashSet::new();
        names.retain(|name| seen.insert(name.clone()));
        Self { required: names }
    }

    /// The attributes a response must carry.
    pub fn required(&self) -> &[String] {
        &self.required
    }

    /// Every attribute asked for: the required ones, then the optional ones.
    pub fn requested(&self) -> impl Iterator<Item = &str> {
        self.required
            .iter()
            .map(String::as_str)
            .chain(OPTIONAL_ATTRIBUTES.iter().copied())
    }
}

/// Employees read in one call of [`PersonioApi::list_employees`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmployeeList {
    /// Employees that parsed.
    pub employees: Vec<PersonioEmployee>,
    /// Records that did not parse (e.g. an impossible date), with PII-free reasons.
    pub skipped: Vec<SkippedRecord>,
}

impl EmployeeList {
    /// Keeps only the employees and skipped records with one of these ids (a skipped record
    /// without an id goes too).
    fn retain_ids(&mut self, ids: &[String]) {
        self.employees.retain(|employee| ids.contains(&employee.id));
        self.skipped
            .retain(|skipped| skipped.id.as_ref().is_some_and(|id| ids.contains(id)));
    }
}

/// One certificate to store as a Personio document.
#[derive(Debug)]
pub struct DocumentUpload {
    /// Personio employee id.
    pub employee_id: String,
    /// Personio document category id.
    pub category_id: i64,
    /// At most 255 characters.
    pub title: String,
    /// The completion date (`date` part, `Y-m-d`).
    pub date: NaiveDate,
    /// Carries the marker that identifies the certificate (see `sync::certificate_marker`).
    pub comment: String,
    /// File name ending in `.pdf`.
    pub file_name: String,
    /// The PDF, streamed through without buffering.
    pub pdf: PdfStream,
}

/// What the operator needs from Personio.
#[async_trait]
pub trait PersonioApi: Send + Sync {
    /// Checks that the credentials are accepted (obtains a token).
    async fn check_credentials(&self) -> Result<(), PersonioError>;

    /// Every employee (`limit=100` pages) or, with `updated_since`, those changed since then,
    /// with today's fixed attributes ([`AttributeRequest::default`]).
    async fn list_employees(
        &self,
        updated_since: Option<NaiveDateTime>,
    ) -> Result<EmployeeList, PersonioError> {
        self.list_employees_with(updated_since, &AttributeRequest::default())
            .await
    }

    /// [`PersonioApi::list_employees`] asking for `attributes`. Fails with
    /// [`PersonioError::AttributesNotWhitelisted`] when required attributes are missing.
    async fn list_employees_with(
        &self,
        updated_since: Option<NaiveDateTime>,
        attributes: &AttributeRequest,
    ) -> Result<EmployeeList, PersonioError>;

    /// Whether an incremental listing (`updated_since`) sees every change of what the sync reads:
    /// v1's change feed does; v2's `updated_at` of a person moves with the person's own
    /// attributes only, so employment changes need [`PersonioApi::employees_by_id`].
    fn change_feed_sees_everything(&self) -> bool {
        true
    }

    /// The employees with these ids (e.g. named by webhook notifications), as
    /// [`PersonioApi::list_employees_with`] would read them; unknown ids are left out. The
    /// default reads every employee and keeps those.
    async fn employees_by_id(
        &self,
        ids: &[String],
        attributes: &AttributeRequest,
    ) -> Result<EmployeeList, PersonioError> {
        named_in_full_listing(self, ids, attributes).await
    }

    /// What an incremental run reads: [`PersonioApi::list_employees_with`] and, when the change
    /// feed does not see every change, the employees `named` by webhook notifications that it
    /// left out, read by id ([`PersonioApi::employees_by_id`]). A full read (`updated_since:
    /// None`) reads everyone anyway.
    async fn list_changed_employees(
        &self,
        read: ChangedEmployees<'_>,
    ) -> Result<EmployeeList, PersonioError> {
        let ChangedEmployees {
            updated_since,
            named,
            attributes,
        } = read;
        let mut list = self.list_employees_with(updated_since, attributes).await?;
        if updated_since.is_none() || named.is_empty() || self.change_feed_sees_everything() {
            return Ok(list);
        }
        let missing = not_listed(&list, named);
        if !missing.is_empty() {
            let named = self.employees_by_id(&missing, attributes).await?;
            list.employees.extend(named.employees);
            list.skipped.extend(named.skipped);
        }
        Ok(list)
    }

    /// All document categories of the company.
    async fn document_categories(&self) -> Result<Vec<DocumentCategory>, PersonioError>;

    /// Documents of one employee in one category (v2 listing, all pages).
    async fn list_documents(
        &self,
        employee_id: &str,
        category_id: i64,
    ) -> Result<Vec<StoredDocument>, PersonioError>;

    /// Uploads one document and returns its Personio id. Sent exactly once: Personio has no
    /// idempotency key, so this never retries after the body was sent; the caller checks
    /// [`PersonioApi::list_documents`] before trying again.
    async fn upload_document(&self, upload: DocumentUpload) -> Result<String, PersonioError>;

    /// The webhook management of this client; the default has none.
    fn webhooks(&self) -> Result<&dyn PersonioWebhooks, PersonioError> {
        Err(PersonioError::Config(
            "this Personio client cannot manage webhooks".to_string(),
        ))
    }
}

/// What one incremental read asks for ([`PersonioApi::list_changed_employees`]).
#[derive(Clone, Copy, Debug)]
pub struct ChangedEmployees<'a> {
    /// Employees changed at or after this time (Personio's `updated_since`); `None`: everyone.
    pub updated_since: Option<NaiveDateTime>,
    /// Ids named by webhook notifications since the last run.
    pub named: &'a [String],
    /// The attributes to ask for and require.
    pub attributes: &'a AttributeRequest,
}

/// The employees with these ids, read by one full listing of `api` (what
/// [`PersonioApi::employees_by_id`] does where an API cannot read by id).
async fn named_in_full_listing<A: PersonioApi + ?Sized>(
    api: &A,
    ids: &[String],
    attributes: &AttributeRequest,
) -> Result<EmployeeList, PersonioError> {
    let mut list = api.list_employees_with(None, attributes).await?;
    list.retain_ids(ids);
    Ok(list)
}

/// The ids of `named` that `list` holds neither as an employee nor as a skipped record.
pub fn not_listed(list: &EmployeeList, named: &[String]) -> Vec<String> {
    let listed: std::collections::HashSet<&str> = list
        .employees
        .iter()
        .map(|employee| employee.id.as_str())
        .chain(
            list.skipped
                .iter()
                .filter_map(|skipped| skipped.id.as_deref()),
        )
        .collect();
    named
        .iter()
        .filter(|id| !listed.contains(id.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A Personio whose change feed lists `feed` and whose by-id read records what it was asked.
    struct Partial {
        sees_everything: bool,
        feed: Vec<&'static str>,
        asked: Mutex<Vec<Vec<String>>>,
    }

    fn employees(ids: &[&str]) -> EmployeeList {
        EmployeeList {
            employees: ids
                .iter()
                .map(|id| PersonioEmployee {
                    id: id.to_string(),
                    ..PersonioEmployee::default()
                })
                .collect(),
            skipped: Vec::new(),
        }
    }

    #[async_trait]
    impl PersonioApi for Partial {
        async fn check_credentials(&self) -> Result<(), PersonioError> {
            Ok(())
        }
        async fn list_employees_with(
            &self,
            _: Option<NaiveDateTime>,
            _: &AttributeRequest,
        ) -> Result<EmployeeList, PersonioError> {
            Ok(employees(&self.feed))
        }
        fn change_feed_sees_everything(&self) -> bool {
            self.sees_everything
        }
        async fn employees_by_id(
            &self,
            ids: &[String],
            _: &AttributeRequest,
        ) -> Result<EmployeeList, PersonioError> {
            self.asked.lock().unwrap().push(ids.to_vec());
            let found: Vec<&str> = ids.iter().map(String::as_str).collect();
            Ok(employees(&found))
        }
        async fn document_categories(&self) -> Result<Vec<DocumentCategory>, PersonioError> {
            Ok(Vec::new())
        }
        async fn list_documents(
            &self,
            _: &str,
            _: i64,
        ) -> Result<Vec<StoredDocument>, PersonioError> {
            Ok(Vec::new())
        }
        async fn upload_document(&self, _: DocumentUpload) -> Result<String, PersonioError> {
            Err(PersonioError::Config("no uploads here".into()))
        }
    }

    #[tokio::test]
    async fn named_persons_the_feed_left_out_are_read_by_id_only_where_the_feed_is_partial() {
        let since =
            chrono::NaiveDate::from_ymd_opt(2026, 12, 7).and_then(|d| d.and_hms_opt(10, 0, 0));
        let named = vec!["7".to_string(), "9".to_string()];
        let attributes = AttributeRequest::default();
        let read = ChangedEmployees {
            updated_since: since,
            named: &named,
            attributes: &attributes,
        };
        let partial = Partial {
            sees_everything: false,
            feed: vec!["7", "8"],
            asked: Mutex::default(),
        };
        let list = partial.list_changed_employees(read).await.unwrap();
        let ids: Vec<&str> = list.employees.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["7", "8", "9"]);
        assert_eq!(*partial.asked.lock().unwrap(), [vec!["9".to_string()]]);

        // A full read reads everyone; a feed that sees everything needs no second look.
        let full = ChangedEmployees {
            updated_since: None,
            ..read
        };
        partial.list_changed_employees(full).await.unwrap();
        let complete = Partial {
            sees_everything: true,
            ..partial
        };
        complete.list_changed_employees(read).await.unwrap();
        assert_eq!(
            complete.asked.lock().unwrap().len(),
            1,
            "no further by-id read"
        );
    }
}
