//! Seeding and inspection helpers for tests, the demo and the benchmark. They change state
//! directly (no HTTP, no fault injection, not counted as writes).

use chrono::{DateTime, Duration, Utc};

use super::model::{SimCertificate, SimCustomer, SimParticipation};
use super::rate_limit::RateLimit;
use super::state::SimCredentials;
use super::ReteachSim;

/// Ids of a seeded completed participation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeededCompletion {
    /// Participation id.
    pub participation_id: String,
    /// Certificate id.
    pub certificate_id: String,
}

/// How far a seeded participation got.
enum Progress<'a> {
    /// Any status (`COMPLETED` with its time), no certificate.
    Uncertified(&'a str, Option<DateTime<Utc>>),
    /// Completed at the time, with a certificate whose PDF is ready (`true`) or still generating.
    Certified(DateTime<Utc>, bool),
}

/// Settings of [`super::run_standalone`].
#[derive(Clone, Debug)]
pub struct StandaloneOptions {
    /// Customers to generate.
    pub customers: usize,
    /// Completed participations (with ready PDFs) per customer.
    pub completions_per_customer: usize,
    /// Accepted credentials.
    pub credentials: SimCredentials,
    /// Server-side rate limit, off by default.
    pub rate_limit: Option<RateLimit>,
    /// `externalId` of the first generated customer (the next ones count up). 1000 by default;
    /// the Personio simulator's first employee id (10001) links them to its employees.
    pub first_external_id: u64,
    /// Customer fields the academy refuses or drops (see [`super::FieldMode`]).
    pub field_modes: Vec<(String, super::FieldMode)>,
    /// Certificates (the first ones generated) whose download serves an HTML page instead of the
    /// PDF, so that the operator sets them aside after its attempts.
    pub broken_certificates: usize,
}

impl Default for StandaloneOptions {
    fn default() -> Self {
        Self {
            customers: 50,
            completions_per_customer: 2,
            credentials: SimCredentials::default(),
            rate_limit: None,
            first_external_id: 1000,
            field_modes: Vec::new(),
            broken_certificates: 0,
        }
    }
}

impl ReteachSim {
    /// Adds a customer as an admin would (source `MANUAL` unless set); an empty `id` gets a fresh
    /// one, its tags join the academy's. Returns the id.
    pub fn add_customer(&self, mut customer: SimCustomer) -> String {
        let now = self.clock.now();
        self.with_state(|state| {
            if customer.id.is_empty() {
                customer.id = state.new_id("cus");
            }
            if customer.source.is_empty() {
                customer.source = "MANUAL".to_string();
            }
            if customer.created_at == DateTime::<Utc>::default() {
                customer.created_at = now;
            }
            // Tags by name join the academy's tags (reusing one of the same name).
            for tag in &mut customer.tags {
                let known = state
                    .tags
                    .iter()
                    .find(|t| (!tag.id.is_empty() && t.id == tag.id) || t.name == tag.name);
                match known {
                    Some(known) => *tag = known.clone(),
                    None => {
                        if tag.id.is_empty() {
                            tag.id = state.new_id("tag");
                        }
                        state.tags.push(tag.clone());
                    }
                }
            }
            let id = customer.id.clone();
            state.customers.push(customer);
            id
        })
    }

    /// Adds a completed participation with a certificate for the customer addressed by
    /// `customer` (id, e-mail or externalId). `pdf_ready: false` = reteach is still generating the
    /// PDF (`url: null`) until [`Self::finish_pdf`]. `None` when the customer is unknown.
    pub fn add_completion(
        &self,
        customer: &str,
        course_name: &str,
        completed_at: DateTime<Utc>,
        pdf_ready: bool,
    ) -> Option<SeededCompletion> {
        let progress = Progress::Certified(completed_at, pdf_ready);
        let (participation_id, certificate_id) =
            self.seed_participation(customer, course_name, progress)?;
        let seeded = SeededCompletion {
            participation_id,
            certificate_id: certificate_id?,
        };
        let data = serde_json::json!({
            "participationId": seeded.participation_id,
            "certificateId": seeded.certificate_id,
        });
        self.emit("participation.completed", data.clone());
        if pdf_ready {
            self.emit("certificate.processed", data);
        }
        Some(seeded)
    }

    /// Adds a participation without certificate: `status` `COMPLETED` needs `completed_at`;
    /// other statuses (`STARTED`, …) are in progress. Returns the participation id.
    pub fn add_participation(
        &self,
        customer: &str,
        course_name: &str,
        status: &str,
        completed_at: Option<DateTime<Utc>>,
    ) -> Option<String> {
        let progress = Progress::Uncertified(status, completed_at);
        let (id, _) = self.seed_participation(customer, course_name, progress)?;
        Some(id)
    }

    /// Stores a participation of the customer addressed by `customer` (id, e-mail or externalId)
    /// in the course named `course_name`, without webhook events. Returns its id and its
    /// certificate's; `None` when the customer is unknown.
    fn seed_participation(
        &self,
        customer: &str,
        course_name: &str,
        progress: Progress<'_>,
    ) -> Option<(String, Option<String>)> {
        self.with_state(|state| {
            let customer_id = state.customers[state.customer_index(customer)?].id.clone();
            let course_id = state.course_id(course_name);
            let (status, completed_at, certificate_id) = match progress {
                Progress::Uncertified(status, completed_at) => (status, completed_at, None),
                Progress::Certified(completed_at, pdf_ready) => {
                    let certificate = SimCertificate {
                        id: state.new_id("cer"),
                        pdf_ready,
                        size: state.default_pdf_size,
                        not_pdf: false,
                    };
                    let id = certificate.id.clone();
                    state.certificates.insert(id.clone(), certificate);
                    ("COMPLETED", Some(completed_at), Some(id))
                }
            };
            let id = state.new_id("par");
            state.participations.push(SimParticipation {
                id: id.clone(),
                customer_id,
                course_id,
                course_name: course_name.to_string(),
                status: status.to_string(),
                completed_at,
                certificate_id: certificate_id.clone(),
            });
            Some((id, certificate_id))
        })
    }

    /// Marks a certificate's PDF as generated (its `url` appears). `false` if unknown.
    pub fn finish_pdf(&self, certificate_id: &str) -> bool {
        let found = self.edit_certificate(certificate_id, |c| c.pdf_ready = true);
        if found {
            let data = serde_json::json!({"certificateId": certificate_id});
            self.emit("certificate.processed", data);
        }
        found
    }

    /// Sets the size of one certificate's PDF (e.g. > 30 MB; it is streamed, never stored).
    pub fn set_certificate_size(&self, certificate_id: &str, bytes: u64) -> bool {
        self.edit_certificate(certificate_id, |c| c.size = bytes)
    }

    /// Makes a certificate's download return an HTML page instead of a PDF.
    pub fn break_certificate(&self, certificate_id: &str) -> bool {
        self.edit_certificate(certificate_id, |c| c.not_pdf = true)
    }

    fn edit_certificate(&self, id: &str, f: impl FnOnce(&mut SimCertificate)) -> bool {
        self.with_state(|state| state.certificates.get_mut(id).map(f).is_some())
    }

    /// Snapshot of every customer, in creation order.
    pub fn customers(&self) -> Vec<SimCustomer> {
        self.with_state(|state| state.customers.clone())
    }

    /// The customer addressed by id, e-mail, username or externalId.
    pub fn customer(&self, identifier: &str) -> Option<SimCustomer> {
        self.with_state(|state| {
            let index = state.customer_index(identifier)?;
            Some(state.customers[index].clone())
        })
    }

    /// The read-only status reteach would report for a customer now.
    pub fn status_of(&self, identifier: &str) -> Option<&'static str> {
        let now = self.clock.now();
        self.customer(identifier).map(|c| c.status(now))
    }

    /// Create/update requests (POST that created, every PUT, tag assignments and removals) that
    /// addressed a customer.
    pub fn writes(&self, customer_id: &str) -> usize {
        self.with_state(|state| state.writes.get(customer_id).copied().unwrap_or(0))
    }

    /// Create/update requests over all customers.
    pub fn total_writes(&self) -> usize {
        self.with_state(|state| state.writes.values().sum())
    }

    /// Every request so far that could have changed the academy (any non-read method), the token
    /// request left out.
    pub fn write_requests(&self) -> Vec<crate::sim::SimRequest> {
        self.control.write_requests(&["/oauth/authorize"])
    }

    /// `DELETE /customer/{identifier}` requests received (the operator must never send one);
    /// removing a tag from a customer (`DELETE /customer/{id}/tags/{tag}`) is not one.
    pub fn delete_requests(&self) -> usize {
        self.control
            .requests()
            .iter()
            .filter(|r| r.method == "DELETE")
            .filter(|r| {
                r.path
                    .strip_prefix("/customer/")
                    .is_some_and(|rest| !rest.contains('/'))
            })
            .count()
    }

    /// Edits a customer by hand, as an admin in reteach's UI would (drift); not counted as a
    /// write. `false` if unknown.
    pub fn edit_customer(&self, identifier: &str, f: impl FnOnce(&mut SimCustomer)) -> bool {
        self.with_state(|state| match state.customer_index(identifier) {
            Some(index) => {
                f(&mut state.customers[index]);
                true
            }
            None => false,
        })
    }

    /// Generates `customers` registered customers (externalId `1000+i`, e-mail
    /// `employee{i}@sim.example`) with `completions_per_customer` completed courses each, PDFs
    /// ready. Deterministic. Returns the customer ids.
    pub fn generate(&self, customers: usize, completions_per_customer: usize) -> Vec<String> {
        self.generate_from(1000, customers, completions_per_customer)
    }

    /// [`Self::generate`] with external ids counting up from `first_external_id`.
    pub fn generate_from(
        &self,
        first_external_id: u64,
        customers: usize,
        completions_per_customer: usize,
    ) -> Vec<String> {
        const DEPARTMENTS: [&str; 4] = ["Engineering", "Sales", "Operations", "People"];
        let now = self.clock.now();
        let mut ids = Vec::with_capacity(customers);
        for i in 0..customers {
            let id = self.add_customer(SimCustomer {
                external_id: Some((first_external_id + i as u64).to_string()),
                email: Some(format!("employee{i}@sim.example")),
                first_name: Some(format!("Given{i}")),
                last_name: Some(format!("Family{i}")),
                department: Some(DEPARTMENTS[i % DEPARTMENTS.len()].to_string()),
                registered: true,
                ..SimCustomer::default()
            });
            for k in 0..completions_per_customer {
                let at = now - Duration::days(k as i64 + 1) - Duration::minutes(i as i64);
                let progress = Progress::Certified(at, true);
                self.seed_participation(&id, &format!("Course {k}"), progress);
            }
            ids.push(id);
        }
        ids
    }
}
