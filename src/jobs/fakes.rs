//! In-memory fakes of both client traits for the job tests: enough behaviour to watch what a job
//! reads and writes, plus injectable faults.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::personio::{DocumentUpload, EmployeeList, PersonioApi, PersonioError};
use crate::reteach::{Academy, ReteachApi, ReteachError};
use crate::sync::field_table::FIELDS;
use crate::sync::{
    Completion, CustomerFields, CustomerPatch, DocumentCategory, PersonioEmployee, ReteachCustomer,
    SkippedRecord, StoredDocument,
};
use crate::upstream::PdfStream;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap()
}

/// What the next upload does instead of succeeding.
pub enum UploadFault {
    /// Succeeds normally (to queue a fault for a later upload).
    Succeed,
    /// Fails without storing the document.
    FailBefore(PersonioError),
    /// Stores the document, then reports the error (a timeout after Personio saved it).
    StoreThenFail(PersonioError),
}

/// A document stored by the fake, with where it went.
#[derive(Clone, Debug)]
pub struct FakeDocument {
    pub employee_id: String,
    pub category_id: i64,
    pub title: String,
    pub date: chrono::NaiveDate,
    pub file_name: String,
    pub comment: String,
    pub size: usize,
}

/// In-memory Personio.
#[derive(Default)]
pub struct FakePersonio {
    pub employees: Mutex<Vec<PersonioEmployee>>,
    pub skipped: Mutex<Vec<SkippedRecord>>,
    pub categories: Mutex<Vec<DocumentCategory>>,
    pub documents: Mutex<Vec<FakeDocument>>,
    /// Employees that exist for document purposes; `None` = every id exists.
    pub known_employees: Mutex<Option<HashSet<String>>>,
    pub upload_faults: Mutex<VecDeque<UploadFault>>,
    /// `updated_since` values of every employee listing.
    pub listings: Mutex<Vec<Option<NaiveDateTime>>>,
    /// The required attributes each listing asked for.
    pub requested_attributes: Mutex<Vec<Vec<String>>>,
    pub list_error: Mutex<Option<PersonioError>>,
    pub upload_attempts: Mutex<usize>,
    /// Document listings served (v2), and an error to answer them with instead.
    pub document_listings: Mutex<usize>,
    pub document_list_error: Mutex<Option<fn() -> PersonioError>>,
}

impl FakePersonio {
    /// Documents stored for one certificate (by marker).
    pub fn documents_for(&self, certificate_id: &str) -> usize {
        lock(&self.documents)
            .iter()
            .filter(|d| crate::sync::has_marker(Some(&d.comment), certificate_id))
            .count()
    }
}

#[async_trait]
impl PersonioApi for FakePersonio {
    async fn check_credentials(&self) -> Result<(), PersonioError> {
        Ok(())
    }

    async fn list_employees_with(
        &self,
        updated_since: Option<NaiveDateTime>,
        attributes: &crate::personio::AttributeRequest,
    ) -> Result<EmployeeList, PersonioError> {
        lock(&self.listings).push(updated_since);
        lock(&self.requested_attributes).push(attributes.required().to_vec());
        if let Some(error) = lock(&self.list_error).take() {
            return Err(error);
        }
        // The fake treats `updated_since` as UTC; tests that check the zone inspect `listings`.
        let employees = lock(&self.employees)
            .iter()
            .filter(|e| match (updated_since, e.last_modified_at) {
                (Some(since), Some(modified)) => modified.naive_utc() >= since,
                (Some(_), None) => false,
                (None, _) => true,
            })
            .cloned()
            .collect();
        let skipped = if updated_since.is_none() {
            lock(&self.skipped).clone()
        } else {
            Vec::new()
        };
        Ok(EmployeeList { employees, skipped })
    }

    async fn document_categories(&self) -> Result<Vec<DocumentCategory>, PersonioError> {
        Ok(lock(&self.categories).clone())
    }

    async fn list_documents(
        &self,
        employee_id: &str,
        category_id: i64,
    ) -> Result<Vec<StoredDocument>, PersonioError> {
        *lock(&self.document_listings) += 1;
        if let Some(error) = *lock(&self.document_list_error) {
            return Err(error());
        }
        Ok(lock(&self.documents)
            .iter()
            .enumerate()
            .filter(|(_, d)| d.employee_id == employee_id && d.category_id == category_id)
            .map(|(i, d)| StoredDocument {
                id: i.to_string(),
                name: d.title.clone(),
                comment: Some(d.comment.clone()),
                category_id: Some(d.category_id),
            })
            .collect())
    }

    async fn upload_document(&self, upload: DocumentUpload) -> Result<String, PersonioError> {
        *lock(&self.upload_attempts) += 1;
        let fault = lock(&self.upload_faults).pop_front();
        if let Some(UploadFault::FailBefore(error)) = fault {
            return Err(error);
        }
        if let Some(known) = lock(&self.known_employees).as_ref() {
            if !known.contains(&upload.employee_id) {
                return Err(PersonioError::NotFound {
                    what: "employee".into(),
                    message: "404".into(),
                });
            }
        }
        let chunks: Vec<bytes::Bytes> =
            upload
                .pdf
                .body
                .try_collect()
                .await
                .map_err(|e| PersonioError::Unavailable {
                    message: e.to_string(),
                    maybe_applied: false,
                    trace_id: None,
                })?;
        let mut documents = lock(&self.documents);
        documents.push(FakeDocument {
            employee_id: upload.employee_id,
            category_id: upload.category_id,
            title: upload.title,
            date: upload.date,
            file_name: upload.file_name,
            comment: upload.comment,
            size: chunks.iter().map(|c| c.len()).sum(),
        });
        if let Some(UploadFault::StoreThenFail(error)) = fault {
            return Err(error);
        }
        Ok((documents.len() - 1).to_string())
    }
}

/// Kinds of write failure the fake reteach can inject (its error type is not `Clone`).
#[derive(Clone, Copy, Debug)]
pub enum WriteFault {
    Rejected,
    Unavailable,
    Unauthorized,
}

impl WriteFault {
    fn error(self) -> ReteachError {
        match self {
            Self::Rejected => ReteachError::Rejected {
                endpoint: "customer",
                message: "invalid".into(),
            },
            Self::Unavailable => ReteachError::Unavailable {
                message: "HTTP 503".into(),
            },
            Self::Unauthorized => ReteachError::Unauthorized {
                message: "expired".into(),
            },
        }
    }
}

/// In-memory reteach.
#[derive(Default)]
pub struct FakeReteach {
    pub customers: Mutex<Vec<ReteachCustomer>>,
    pub completions: Mutex<Vec<Completion>>,
    /// Write faults by Personio id (the `externalId` written or already stored).
    pub write_faults: Mutex<HashMap<String, WriteFault>>,
    /// Faults of tag additions by the user's Personio id.
    pub tag_faults: Mutex<HashMap<String, WriteFault>>,
    /// Every call, by name: `list_customers`, `find_by_external_id`, `create`, `update`, ...
    pub calls: Mutex<Vec<&'static str>>,
    /// Certificate URLs whose download fails as unavailable.
    pub failing_downloads: Mutex<HashSet<String>>,
    /// Certificate URLs that serve an HTML page instead of a PDF.
    pub html_downloads: Mutex<HashSet<String>>,
    /// Listings that succeed before every further one breaks off (after its first item) as
    /// unavailable; `None` = never.
    pub listings_before_failure: Mutex<Option<usize>>,
}

impl FakeReteach {
    pub fn calls_of(&self, name: &str) -> usize {
        lock(&self.calls).iter().filter(|c| **c == name).count()
    }

    /// Lets `n` listings of completions succeed, then breaks off every later one.
    pub fn fail_listing_after(&self, n: usize) {
        *lock(&self.listings_before_failure) = Some(n);
    }

    pub fn writes(&self) -> usize {
        self.calls_of("create") + self.calls_of("update")
    }

    pub fn customer(&self, external_id: &str) -> Option<ReteachCustomer> {
        lock(&self.customers)
            .iter()
            .find(|c| c.external_id.as_deref() == Some(external_id))
            .cloned()
    }

    /// The Personio id of the customer with reteach id `id`.
    fn external_id_of(&self, id: &str) -> Option<String> {
        lock(&self.customers)
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.external_id.clone())
    }

    /// Runs `edit` on the customer with reteach id `id`, or answers that there is none.
    fn edit_customer<T>(
        &self,
        id: &str,
        edit: impl FnOnce(&mut ReteachCustomer) -> Result<T, ReteachError>,
    ) -> Result<T, ReteachError> {
        let mut customers = lock(&self.customers);
        let customer =
            customers
                .iter_mut()
                .find(|c| c.id == id)
                .ok_or_else(|| ReteachError::NotFound {
                    what: format!("customer {id}"),
                })?;
        edit(customer)
    }

    fn fault_for(&self, external_id: Option<&str>) -> Option<ReteachError> {
        let id = external_id?;
        lock(&self.write_faults).get(id).map(|f| f.error())
    }
}

#[async_trait]
impl ReteachApi for FakeReteach {
    async fn me(&self) -> Result<Academy, ReteachError> {
        Ok(Academy {
            id: "academy".into(),
            name: "Academy".into(),
        })
    }

    async fn list_customers(&self) -> Result<Vec<ReteachCustomer>, ReteachError> {
        lock(&self.calls).push("list_customers");
        Ok(lock(&self.customers).clone())
    }

    async fn find_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<ReteachCustomer>, ReteachError> {
        lock(&self.calls).push("find_by_external_id");
        Ok(self.customer(external_id))
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<ReteachCustomer>, ReteachError> {
        lock(&self.calls).push("find_by_email");
        Ok(lock(&self.customers)
            .iter()
            .find(|c| {
                c.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .cloned())
    }

    async fn create_customer(
        &self,
        fields: &CustomerFields,
    ) -> Result<ReteachCustomer, ReteachError> {
        lock(&self.calls).push("create");
        if let Some(error) = self.fault_for(Some(&fields.external_id)) {
            return Err(error);
        }
        let mut customers = lock(&self.customers);
        let customer = ReteachCustomer {
            id: format!("c{}", customers.len() + 1),
            external_id: Some(fields.external_id.clone()),
            email: Some(fields.email.clone()),
            first_name: fields.first_name.clone(),
            last_name: fields.last_name.clone(),
            position: fields.position.clone(),
            department: fields.department.clone(),
            location: fields.location.clone(),
            gender: fields.gender,
            company: fields.company.clone(),
            language: fields.language.clone(),
            note: fields.note.clone(),
            set_active_at: fields.set_active_at,
            set_inactive_at: fields.set_inactive_at,
            status: Some("ADDED".into()),
            tags: Vec::new(),
        };
        customers.push(customer.clone());
        Ok(customer)
    }

    async fn update_customer(
        &self,
        id: &str,
        patch: &CustomerPatch,
    ) -> Result<ReteachCustomer, ReteachError> {
        lock(&self.calls).push("update");
        let external = patch
            .external_id
            .clone()
            .flatten()
            .or(self.external_id_of(id));
        if let Some(error) = self.fault_for(external.as_deref()) {
            return Err(error);
        }
        self.edit_customer(id, |customer| {
            if let Some(external_id) = &patch.external_id {
                customer.external_id = external_id.clone();
            }
            for row in FIELDS {
                if let Some(value) = patch.value(row.field) {
                    customer.put(row.field, value);
                }
            }
            Ok(customer.clone())
        })
    }

    async fn add_tags(&self, customer_id: &str, names: &[String]) -> Result<(), ReteachError> {
        lock(&self.calls).push("add_tags");
        let external = self.external_id_of(customer_id);
        if let Some(error) = lock(&self.tag_faults)
            .get(external.as_deref().unwrap_or_default())
            .map(|fault| fault.error())
        {
            return Err(error);
        }
        self.edit_customer(customer_id, |customer| {
            for name in names {
                if !customer.tags.iter().any(|t| &t.name == name) {
                    customer.tags.push(crate::sync::CustomerTag {
                        id: format!("tag-{name}"),
                        name: name.clone(),
                    });
                }
            }
            Ok(())
        })
    }

    async fn remove_tag(&self, customer_id: &str, tag: &str) -> Result<(), ReteachError> {
        lock(&self.calls).push("remove_tag");
        self.edit_customer(customer_id, |customer| {
            let before = customer.tags.len();
            customer.tags.retain(|t| t.id != tag && t.name != tag);
            if customer.tags.len() == before {
                return Err(ReteachError::NotFound {
                    what: "the tag".into(),
                });
            }
            Ok(())
        })
    }

    fn completed_participations(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> BoxStream<'_, Result<Completion, ReteachError>> {
        lock(&self.calls).push("completed_participations");
        let mut listed: Vec<_> = lock(&self.completions)
            .iter()
            .filter(|c| since.is_none_or(|since| c.completed_at >= since))
            .cloned()
            .map(Ok)
            .collect();
        let failing = (*lock(&self.listings_before_failure))
            .is_some_and(|n| self.calls_of("completed_participations") > n);
        if failing {
            listed.truncate(1);
            listed.push(Err(ReteachError::Unavailable {
                message: "HTTP 503".into(),
            }));
        }
        futures::stream::iter(listed).boxed()
    }

    async fn participation(&self, id: &str) -> Result<Option<Completion>, ReteachError> {
        lock(&self.calls).push("participation");
        Ok(lock(&self.completions)
            .iter()
            .find(|c| c.participation_id == id)
            .cloned())
    }

    async fn download_certificate(&self, url: &str) -> Result<PdfStream, ReteachError> {
        lock(&self.calls).push("download");
        if lock(&self.failing_downloads).contains(url) {
            return Err(ReteachError::Unavailable {
                message: "HTTP 502".into(),
            });
        }
        if lock(&self.html_downloads).contains(url) {
            return Ok(PdfStream::from_bytes(b"<html>Sign in</html>".to_vec()));
        }
        Ok(PdfStream::from_bytes(b"%PDF-1.4 certificate".to_vec()))
    }
}
