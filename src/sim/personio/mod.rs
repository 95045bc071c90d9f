//! A stateful Personio simulator (axum) that follows the saved specs and README
//! (`shared/reference/personio/`): v1/v2 auth, v1 employees with the attribute envelope and
//! whitelist, document categories, multipart uploads, v2 document listing, per-endpoint rate
//! limits with 429s without `Retry-After`, and injectable faults ([`SimControl`]).

mod announced;
mod auth;
mod documents;
mod employee;
mod employees;
mod gate;
mod generate;
mod inspect;
mod persons;
mod rate_limit;
mod responses;
mod standalone;
mod state;
mod upload;
mod webhooks;

pub use announced::WindowLimit;
pub use employee::{
    DateStyle, EmployeeSeed, OrgUnit, OrgUnitStyle, StoredEmployee, ATTRIBUTE_KEYS,
};
pub use rate_limit::{BucketLimit, Limited, SharedIpLimit, SimRateLimits};
pub use responses::v1_error;
pub use standalone::run_standalone;
pub use state::{SimCategory, SimDocument, TokenOrigin};
pub use upload::ALLOWED_EXTENSIONS;
pub use webhooks::{SimWebhook, SIM_COMPANY_ID};

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use super::faults::{fault_middleware, FaultLayerState};
use super::{serve, RunningSim, SimControl};
use crate::clock::{Clock, SystemClock};
use rate_limit::Buckets;
use state::SimState;

/// Personio's upload limit (30 MB).
pub const MAX_UPLOAD_BYTES: u64 = 30 * 1024 * 1024;

/// Id of the first employee the simulator creates; later ones count up.
pub const FIRST_EMPLOYEE_ID: u64 = 10_001;

/// How the simulator behaves.
#[derive(Clone)]
pub struct PersonioSimConfig {
    /// The one credential the simulator accepts.
    pub client_id: String,
    /// Secret of that credential.
    pub client_secret: String,
    /// Token lifetime (Personio: 24 h).
    pub token_ttl: Duration,
    /// Echo `offset`/`limit` as strings when the request passed them, like the real API does
    /// (personio-rs issue #205); `false` echoes numbers.
    pub echo_paging_as_strings: bool,
    /// Write v2 `next` links as absolute URLs (`true`) or relative paths (`false`); Personio has
    /// sent both.
    pub absolute_next_links: bool,
    /// Rate limits; `None` switches them off.
    pub rate_limits: Option<SimRateLimits>,
    /// Rate limits refill this many times faster (the benchmark's time scale).
    pub time_scale: f64,
    /// Largest accepted upload.
    pub max_upload_bytes: u64,
    /// `limit` when the request sends none (the adoption guide says 50).
    pub default_limit: usize,
    /// Source of `last_modified_at`, token expiry and `updated_since` comparisons.
    pub clock: Arc<dyn Clock>,
    /// Personio's limit per IP address across all endpoints, shared with the simulators of the
    /// other tenants (pass clones of one value); `None`: only the per-endpoint limits.
    pub ip_limit: Option<SharedIpLimit>,
}

impl Default for PersonioSimConfig {
    fn default() -> Self {
        Self {
            client_id: "sim-personio-client".to_string(),
            client_secret: "sim-personio-secret".to_string(),
            token_ttl: Duration::from_secs(24 * 60 * 60),
            echo_paging_as_strings: true,
            absolute_next_links: false,
            rate_limits: Some(SimRateLimits::default()),
            time_scale: 1.0,
            max_upload_bytes: MAX_UPLOAD_BYTES,
            default_limit: 50,
            clock: Arc::new(SystemClock),
            ip_limit: None,
        }
    }
}

impl std::fmt::Debug for PersonioSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonioSimConfig")
            .field("token_ttl", &self.token_ttl)
            .field("echo_paging_as_strings", &self.echo_paging_as_strings)
            .field("absolute_next_links", &self.absolute_next_links)
            .field("rate_limits", &self.rate_limits)
            .field("time_scale", &self.time_scale)
            .finish_non_exhaustive()
    }
}

struct Shared {
    config: PersonioSimConfig,
    state: Mutex<SimState>,
    control: SimControl,
    /// Set by [`PersonioSim::start`], for absolute links.
    base_url: Mutex<Option<String>>,
    /// Webhook deliveries.
    hooks: super::HookSender,
    /// The windows of the limits the v2 person endpoints announce.
    windows: announced::Windows,
}

/// The simulator. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct PersonioSim {
    shared: Arc<Shared>,
}

impl Default for PersonioSim {
    fn default() -> Self {
        Self::new(PersonioSimConfig::default())
    }
}

impl std::fmt::Debug for PersonioSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonioSim")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl PersonioSim {
    /// An empty company (three document categories, no employees).
    pub fn new(config: PersonioSimConfig) -> Self {
        let buckets = config
            .rate_limits
            .as_ref()
            .map(|limits| Buckets::new(limits, config.time_scale));
        Self {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(SimState::new(buckets)),
                control: SimControl::default(),
                base_url: Mutex::new(None),
                hooks: super::HookSender::default(),
                windows: announced::Windows::default(),
            }),
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &PersonioSimConfig {
        &self.shared.config
    }

    /// Handle for faults, latency and the request log.
    pub fn control(&self) -> SimControl {
        self.shared.control.clone()
    }

    /// The accepted `(client_id, client_secret)`.
    pub fn credentials(&self) -> (String, String) {
        let config = &self.shared.config;
        (config.client_id.clone(), config.client_secret.clone())
    }

    /// The HTTP API, wrapped in the fault middleware (v1 error bodies).
    pub fn router(&self) -> Router {
        let faults = FaultLayerState {
            control: self.shared.control.clone(),
            error_body: responses::v1_error,
        };
        Router::new()
            .route("/v1/auth", post(auth::v1_auth))
            .route("/v2/auth/token", post(auth::v2_token))
            .route("/v1/company/employees", get(employees::list))
            .route("/v1/company/employees/{id}", get(employees::one))
            .route(
                "/v1/company/document-categories",
                get(documents::categories),
            )
            .route(
                "/v1/company/documents",
                post(upload::upload).layer(DefaultBodyLimit::disable()),
            )
            .route("/v2/document-management/documents", get(documents::list_v2))
            .route("/v2/persons", get(persons::list))
            .route("/v2/persons/{id}", get(persons::one))
            .route("/v2/persons/{id}/employments", get(persons::employments))
            .route(
                "/v2/persons/{id}/employments/{employment_id}",
                get(persons::employment),
            )
            .route("/v2/org-units/{id}", get(persons::org_unit))
            .route("/v2/workplaces", get(persons::workplaces))
            .route("/v2/webhooks", get(webhooks::list).post(webhooks::create))
            .route("/v2/webhooks/{id}", axum::routing::delete(webhooks::delete))
            .route(
                "/v2/webhooks/{id}/signing-secret",
                post(webhooks::rotate_signing_secret),
            )
            .layer(middleware::from_fn_with_state(
                self.clone(),
                announced::announce_limits,
            ))
            .layer(middleware::from_fn_with_state(self.clone(), record_app_id))
            .layer(middleware::from_fn_with_state(self.clone(), per_ip_limit))
            .layer(middleware::from_fn_with_state(faults, fault_middleware))
            // Added after the layers: no rate limit, no faults, not in the request log. Read-only,
            // for soak tests: every stored document at once.
            .route("/sim/inspect/documents", get(inspect::documents))
            .with_state(self.clone())
    }

    /// The limit shared by all tenants, if configured.
    pub fn ip_limit(&self) -> Option<&SharedIpLimit> {
        self.shared.config.ip_limit.as_ref()
    }

    /// Serves the simulator on `addr` (port 0 = any free port).
    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<RunningSim> {
        let running = serve(self.router(), addr).await?;
        *lock(&self.shared.base_url) = Some(running.base_url());
        Ok(running)
    }

    /// Adds an employee (id assigned, `last_modified_at` = now) and returns its id.
    pub fn add_employee(&self, seed: EmployeeSeed) -> i64 {
        let now = self.now();
        let mut state = self.state();
        let id = state.next_employee_id;
        state.next_employee_id += 1;
        state.employees.insert(
            id,
            StoredEmployee {
                id,
                seed,
                created_at: now,
                last_modified_at: now,
                changed_at: std::collections::BTreeMap::new(),
            },
        );
        drop(state);
        self.emit("person.created", id, now);
        self.emit("employment.created", id, now);
        id
    }

    /// Changes an employee and touches its `last_modified_at` (and the changed attributes'
    /// change times); `false` when unknown.
    pub fn update_employee(&self, id: i64, change: impl FnOnce(&mut EmployeeSeed)) -> bool {
        let now = self.now();
        let mut state = self.state();
        let Some(employee) = state.employees.get_mut(&id) else {
            return false;
        };
        let before = employee.seed.clone();
        employee.update(now, change);
        let event = webhooks::event_for_change(&before, &employee.seed);
        let dated = webhooks::dated_event_for_change(&before, &employee.seed, now.date_naive());
        drop(state);
        for event in event.into_iter().chain(dated) {
            self.emit(event, id, now);
        }
        true
    }

    /// A bulk edit in one step (a listing sees all of it or nothing): `edit` may change each
    /// employee, and deletes it by returning `false`.
    pub fn bulk_edit(&self, edit: impl Fn(i64, &mut EmployeeSeed) -> bool) {
        let now = self.now();
        let mut state = self.state();
        let mut deleted = Vec::new();
        let mut events = Vec::new();
        for (id, employee) in state.employees.iter_mut() {
            let mut keep = true;
            let before = employee.seed.clone();
            employee.update(now, |seed| keep = edit(*id, seed));
            if !keep {
                deleted.push(*id);
                events.push(("person.deleted", *id));
            } else if let Some(event) = webhooks::event_for_change(&before, &employee.seed) {
                events.push((event, *id));
            }
        }
        for id in deleted {
            state.employees.remove(&id);
        }
        drop(state);
        for (event, id) in events {
            self.emit(event, id, now);
        }
    }

    /// Deletes an employee (deleted employees simply disappear from Personio's list).
    pub fn remove_employee(&self, id: i64) -> bool {
        let removed = self.state().employees.remove(&id).is_some();
        if removed {
            self.emit("person.deleted", id, self.now());
        }
        removed
    }

    /// One stored employee.
    pub fn employee(&self, id: i64) -> Option<StoredEmployee> {
        self.state().employees.get(&id).cloned()
    }

    /// Ids of all employees, ascending.
    pub fn employee_ids(&self) -> Vec<i64> {
        self.state().employees.keys().copied().collect()
    }

    /// Restricts the attributes the credential may read (`None` = all). `id` is always returned.
    pub fn set_whitelist(&self, attributes: Option<&[&str]>) {
        let whitelist =
            attributes.map(|names| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>());
        self.state().whitelist = whitelist;
    }

    /// Adds a document category and returns its id.
    pub fn add_category(&self, name: &str) -> i64 {
        let mut state = self.state();
        let id = state.categories.iter().map(|c| c.id).max().unwrap_or(0) + 1;
        state.categories.push(SimCategory {
            id,
            name: name.to_string(),
        });
        id
    }

    /// All document categories.
    pub fn categories(&self) -> Vec<SimCategory> {
        self.state().categories.clone()
    }

    /// Stores a document as if uploaded earlier (for listing tests) and returns its id.
    pub fn insert_document(
        &self,
        owner_id: i64,
        category_id: i64,
        title: &str,
        comment: Option<&str>,
    ) -> i64 {
        let now = self.now();
        let mut state = self.state();
        let id = state.next_document_id;
        state.next_document_id += 1;
        state.documents.push(SimDocument {
            id,
            owner_id,
            category_id,
            title: title.to_string(),
            date: Some(now.date_naive()),
            comment: comment.map(str::to_string),
            file_name: "document.pdf".to_string(),
            size: 0,
            request_content_length: None,
            checksum: state::FNV_OFFSET,
            created_at: now,
        });
        id
    }

    /// Refuse uploads sent without `Content-Length` with 411 Length Required, as servers that do
    /// not accept chunked request bodies do (whether Personio does is undocumented).
    pub fn set_require_content_length(&self, require: bool) {
        self.state().require_content_length = require;
    }

    /// Every stored document, in upload order.
    pub fn documents(&self) -> Vec<SimDocument> {
        self.state().documents.clone()
    }

    /// Documents whose comment contains `marker` (e.g. a certificate marker).
    pub fn count_documents_with_comment(&self, marker: &str) -> usize {
        self.state()
            .documents
            .iter()
            .filter(|d| d.comment.as_deref().is_some_and(|c| c.contains(marker)))
            .count()
    }

    /// Makes the v2 document listing ignore `owner_id` and list every document (a tenant where
    /// `owner_id` is not the v1 employee id would show other owners' documents like this).
    pub fn set_ignore_owner_filter(&self, ignore: bool) {
        self.state().ignore_owner_filter = ignore;
    }

    /// Expires every issued token now; the next call with one gets 401.
    pub fn expire_all_tokens(&self) {
        let now = self.now();
        self.state().expire_all_tokens(now);
    }

    /// Expires every token after `requests` more authorized requests have been served (to expire
    /// a token between two pages of one listing).
    pub fn expire_tokens_after(&self, requests: usize) {
        if requests == 0 {
            self.expire_all_tokens();
        } else {
            self.state().expire_tokens_after = Some(requests);
        }
    }

    /// Every request so far that could have changed Personio's data (uploads, and any other
    /// non-read method), token requests left out.
    pub fn write_requests(&self) -> Vec<super::SimRequest> {
        self.shared
            .control
            .write_requests(&["/v1/auth", "/v2/auth/token"])
    }

    /// The `X-Personio-App-ID` header of every request so far (`None` = missing).
    pub fn app_ids(&self) -> Vec<Option<String>> {
        self.state().app_ids.clone()
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared.config.clock.now()
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        lock(&self.shared.state)
    }

    fn base_url(&self) -> Option<String> {
        lock(&self.shared.base_url).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not take the simulator down with it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Middleware: remembers the app-id header of every request.
async fn record_app_id(State(sim): State<PersonioSim>, request: Request, next: Next) -> Response {
    let app_id = request
        .headers()
        .get("x-personio-app-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    sim.state().app_ids.push(app_id);
    next.run(request).await
}

/// Personio's per-IP limit across all endpoints and tenants: 429 without `Retry-After`, in the
/// dialect of the path.
async fn per_ip_limit(State(sim): State<PersonioSim>, request: Request, next: Next) -> Response {
    if let Some(limit) = sim.ip_limit() {
        if !limit.try_take() {
            return if request.uri().path().starts_with("/v2/") {
                responses::v2_problem(
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    "common.rate_limit_exceeded",
                    "Rate limit exceeded.",
                )
            } else {
                v1_error(
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    "Too Many Requests",
                )
            };
        }
    }
    next.run(request).await
}
