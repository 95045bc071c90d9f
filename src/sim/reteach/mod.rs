//! A stateful simulator of reteach's REST API (2022-12 OpenAPI spec plus the newer participation
//! filters, see `shared/reference/lms/README.md`), for tests, the demo and the benchmark.
//!
//! Faithful where the operator depends on it: OAuth-style token exchange, bearer checks, NestJS
//! error bodies, 1-based pages with `limit` ≤ 250, find-or-create, partial `PUT`, status derived
//! from `setActiveAt`/`setInactiveAt`, per-customer tags, participations with asynchronously generated certificates.
//! Every request passes the shared fault middleware ([`SimControl`]) first.

mod auth;
mod body;
mod certificates;
mod customers;
mod errors;
mod input;
mod inspect;
mod model;
mod paging;
mod participations;
mod rate_limit;
mod seed;
mod state;
mod storage;
mod subscriptions;
mod tags;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, Uri};
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use governor::{Quota, RateLimiter};

use super::faults::{fault_middleware, FaultLayerState};
use super::{RunningSim, SimControl};
use crate::clock::{Clock, SystemClock};

pub use auth::BadTokenAnswer;
pub use errors::nest_error;
pub use model::{FieldMode, LockDateEcho, SimCertificate, SimCustomer, SimParticipation, SimTag};
pub use paging::{DEFAULT_LIMIT, MAX_LIMIT};
pub use rate_limit::RateLimit;
pub use seed::{SeededCompletion, StandaloneOptions};
pub use state::{SimCredentials, DEFAULT_PDF_SIZE};
pub use storage::{CertificateUrls, StorageRequest};
pub use subscriptions::SimSubscription;

use state::State;

/// The simulated academy. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct ReteachSim {
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
    control: SimControl,
    hooks: super::HookSender,
}

impl std::fmt::Debug for ReteachSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReteachSim").finish_non_exhaustive()
    }
}

impl ReteachSim {
    /// An empty academy accepting [`SimCredentials::default`].
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_credentials(clock, SimCredentials::default())
    }

    /// An empty academy accepting `credentials`.
    pub fn with_credentials(clock: Arc<dyn Clock>, credentials: SimCredentials) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::new(credentials))),
            clock,
            control: SimControl::default(),
            hooks: super::HookSender::default(),
        }
    }

    /// The credentials the academy accepts.
    pub fn credentials(&self) -> SimCredentials {
        self.with_state(|state| state.credentials.clone())
    }

    /// Fault injection, latency and the request log.
    pub fn control(&self) -> SimControl {
        self.control.clone()
    }

    /// The axum router (fault middleware outermost, then rate limit, then the bearer check).
    pub fn router(&self) -> Router {
        let protected = Router::new()
            .route("/me", get(me))
            .route("/customer", get(customers::list).post(customers::create))
            .route(
                "/customer/{identifier}",
                get(customers::get_one)
                    .put(customers::update)
                    .delete(customers::delete),
            )
            .route("/customer/{identifier}/tags", put(tags::assign))
            .route(
                "/customer/{identifier}/multiple-tags",
                put(tags::assign_many),
            )
            .route(
                "/customer/{identifier}/tags/{tag}",
                axum::routing::delete(tags::unassign),
            )
            .route("/tags", get(tags::list))
            .route("/participation", get(participations::list))
            .route("/participation/{id}", get(participations::get_one))
            .route("/certificates/{id}/download", get(certificates::download))
            .route(
                "/subscription",
                get(subscriptions::list).post(subscriptions::create),
            )
            .route(
                "/subscription/{id}",
                get(subscriptions::get_one).delete(subscriptions::delete),
            )
            .route("/certificates/{id}/hop/{n}", get(storage::hop))
            .route_layer(from_fn_with_state(self.clone(), auth::require_bearer));
        let faults = FaultLayerState {
            control: self.control.clone(),
            error_body: nest_error,
        };
        Router::new()
            .route("/oauth/authorize", post(auth::authorize))
            // Outside the bearer check: a web page and the storage host.
            .route("/certificates/{id}/view", get(storage::view))
            .route("/storage/{file}", get(storage::object))
            .merge(protected)
            .fallback(unknown_route)
            .layer(from_fn_with_state(self.clone(), rate_limit::enforce))
            .layer(from_fn_with_state(faults, fault_middleware))
            // Added after the layers: no rate limit, no faults, not in the request log. Read-only,
            // for soak tests: the whole academy's certificates at once.
            .route("/sim/inspect/certificates", get(inspect::certificates))
            .with_state(self.clone())
    }

    /// Serves the simulator on `addr` (port 0 = any free port).
    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<RunningSim> {
        super::serve(self.router(), addr).await
    }

    /// Lifetime of newly issued tokens (default one hour, as reteach documents).
    pub fn set_token_ttl(&self, ttl: chrono::Duration) {
        self.with_state(|state| state.token_ttl = ttl);
    }

    /// Invalidates every issued token, as if they had all expired (or been revoked).
    pub fn expire_all_tokens(&self) {
        self.with_state(|state| state.tokens.clear());
    }

    /// How a missing, expired or revoked token is answered: 401 (default) or 403 "Forbidden
    /// resource" as reteach's published spec declares.
    pub fn set_bad_token_answer(&self, answer: BadTokenAnswer) {
        self.with_state(|state| state.bad_token_answer = answer);
    }

    /// Turns the server-side rate limit on (`Some`) or off (`None`, the default).
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        let limiter = limit.map(|limit| {
            let rate = NonZeroU32::new(limit.per_second).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
            Arc::new(RateLimiter::direct(
                Quota::per_second(rate).allow_burst(burst),
            ))
        });
        self.with_state(|state| state.rate_limiter = limiter);
    }

    /// Size of PDFs for certificates added from now on.
    pub fn set_default_pdf_size(&self, bytes: u64) {
        self.with_state(|state| state.default_pdf_size = bytes);
    }

    /// Base of certificate download URLs; `None` (default) = the host the client called.
    pub fn set_public_base_url(&self, base: Option<String>) {
        self.with_state(|state| state.public_base_url = base);
    }

    /// Ignore the newer participation filters (`status`, `completedAtSince`, `hasCertificate`),
    /// as an academy on the 2022 API would.
    pub fn set_ignore_participation_filters(&self, ignore: bool) {
        self.with_state(|state| state.ignore_participation_filters = ignore);
    }

    /// What certificate URLs point at from now on (see [`CertificateUrls`]).
    pub fn set_certificate_urls(&self, mode: CertificateUrls) {
        self.with_state(|state| state.certificate_urls = mode);
    }

    /// Host name of the storage host in signed URLs (default `localhost`: the simulator itself
    /// under a name other than the `127.0.0.1` clients use).
    pub fn set_storage_host(&self, host: impl Into<String>) {
        let host = host.into();
        self.with_state(|state| state.storage_host = host);
    }

    /// Every request the storage host received, in order.
    pub fn storage_requests(&self) -> Vec<StorageRequest> {
        self.with_state(|state| state.storage_requests.clone())
    }

    /// Whether PDFs are sent with `Content-Length` (default) or chunked without it.
    pub fn set_announce_pdf_length(&self, announce: bool) {
        self.with_state(|state| state.announce_pdf_length = announce);
    }

    /// What `setActiveAt`/`setInactiveAt` look like once written (kept, cleared once fired, or
    /// rewritten in another format); reteach does not document it.
    pub fn set_lock_date_echo(&self, echo: LockDateEcho) {
        self.with_state(|state| state.lock_dates = echo);
    }

    /// How the academy treats the customer field `field` (its JSON name, e.g. `position`) from
    /// now on: kept (default), refused with a 400 whitelist error, or silently dropped.
    pub fn set_field_mode(&self, field: &str, mode: FieldMode) {
        let field = field.to_string();
        self.with_state(|state| {
            if mode == FieldMode::Keep {
                state.field_modes.remove(&field);
            } else {
                state.field_modes.insert(field, mode);
            }
        });
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let now = self.clock.now();
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Dates fire as time passes, whatever request comes next.
        guard.fire_lock_dates(now);
        f(&mut guard)
    }
}

/// `GET /me`.
async fn me(axum::extract::State(sim): axum::extract::State<ReteachSim>) -> Response {
    let body = sim.with_state(|state| {
        serde_json::json!({
            "id": state.academy_id,
            "name": state.academy_name,
            "baseUrl": "https://academy-sim.reteach.io",
        })
    });
    axum::response::IntoResponse::into_response(axum::Json(body))
}

/// NestJS' answer for a route that does not exist.
async fn unknown_route(method: axum::http::Method, uri: Uri) -> Response {
    nest_error(
        StatusCode::NOT_FOUND,
        &format!("Cannot {method} {}", uri.path()),
    )
}

/// Runs a seeded simulator on `addr` until Ctrl-C (the `sim` subcommand of the binary).
pub async fn run_standalone(addr: SocketAddr, options: StandaloneOptions) -> std::io::Result<()> {
    let sim = ReteachSim::with_credentials(Arc::new(SystemClock), options.credentials.clone());
    sim.generate_from(
        options.first_external_id,
        options.customers,
        options.completions_per_customer,
    );
    sim.break_first_certificates(options.broken_certificates);
    sim.set_rate_limit(options.rate_limit);
    for (field, mode) in &options.field_modes {
        sim.set_field_mode(field, *mode);
    }
    let running = sim.start(addr).await?;
    tracing::info!(
        base_url = %running.base_url(),
        customers = options.customers,
        "reteach simulator listening"
    );
    tokio::signal::ctrl_c().await?;
    drop(running);
    Ok(())
}
