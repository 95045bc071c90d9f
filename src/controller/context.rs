//! The one `Context` every reconcile receives: kube client, upstream client factory, event recorder,
//! metrics, clock and run options. Tests build it with a manual clock and simulator endpoints.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::Reporter;
use kube::Client;
use tokio_util::sync::CancellationToken;

use crate::jobs::Fence;
use crate::reteach::DownloadPolicy;
use crate::upstream::SharedBudget;

use super::allowlist::UpstreamPolicy;
use super::budget::BudgetPlanner;
use super::clients::UpstreamClients;
use super::handover::Handover;
use super::pacing::Pacing;
use super::status::FIELD_MANAGER;
use crate::clock::Clock;
use crate::metrics::Metrics;

/// Tunables of the reconcilers (defaults are production values; tests shorten some).
#[derive(Clone, Debug)]
pub struct Tunables {
    /// Shortest accepted `spec.interval`.
    pub minimum_interval: Duration,
    /// Re-check period of a resource blocked on a human or a dependency.
    pub blocked_recheck: Duration,
    /// Overlap when re-reading certificates completed just before the cursor.
    pub certificate_overlap: chrono::Duration,
    /// Upstream hosts resources may use, and whether plain HTTP may be.
    pub upstream: UpstreamPolicy,
    /// Where certificate PDFs may come from, and where they wait in transit.
    pub downloads: DownloadPolicy,
    /// How long a foreign in-flight certificate upload must stand still before this process takes
    /// the resource over (see [`super::handover`]).
    pub handover_grace: Duration,
    /// Run the read-only preflight probes before a resource's first run and on requested runs
    /// (`status.capabilities`).
    pub preflight: bool,
    /// Shortest time between a run's start and a run caused by a webhook notification.
    pub webhook_min_gap: Duration,
    /// How often a webhook Secret is read again and reteach subscriptions re-checked.
    pub webhook_refresh: Duration,
    /// The webhook receiver runs (`--webhook-addr`): resources' `spec.webhook` takes effect.
    pub webhooks_enabled: bool,
    /// The receiver's public base URL (`--webhook-public-url`): the only place the operator
    /// registers notifications to. `None`: nothing is registered.
    pub webhook_public_url: Option<crate::webhook::PublicUrl>,
    /// The operator's webhook key(s) (`--webhook-key-secret`), from which every registered
    /// token is derived. `None`: `register: true` cannot work.
    pub webhook_keys: Option<crate::webhook::KeyRing>,
    /// How Personio signs webhook deliveries (`--personio-signature-*`).
    pub webhook_signatures: crate::webhook::SignatureScheme,
    /// Personio requests per minute the whole process may send (Personio's per-IP limit,
    /// shared fairly by every tenant; intervals are stretched when they need more). `run` sets
    /// it from `--personio-budget-per-minute` (default 2,000); `None` (tests, demo): only the
    /// per-credential limits.
    pub personio_budget_per_minute: Option<u32>,
    /// Multiplies the clients' Personio and reteach rate limits (`--upstream-rate-scale`, soak
    /// tests against scaled simulators); 1.0: the published limits.
    pub upstream_rate_scale: f64,
}

impl Default for Tunables {
    fn default() -> Self {
        Self {
            minimum_interval: Duration::from_secs(60),
            blocked_recheck: Duration::from_secs(120),
            certificate_overlap: chrono::Duration::minutes(10),
            upstream: UpstreamPolicy::default(),
            downloads: DownloadPolicy::default(),
            handover_grace: super::handover::DEFAULT_HANDOVER_GRACE,
            preflight: true,
            webhook_min_gap: crate::webhook::DEFAULT_MIN_GAP,
            webhook_refresh: crate::webhook::REFRESH_AFTER,
            webhooks_enabled: false,
            webhook_public_url: None,
            webhook_keys: None,
            webhook_signatures: crate::webhook::SignatureScheme::default(),
            personio_budget_per_minute: None,
            upstream_rate_scale: 1.0,
        }
    }
}

/// Shared state of both controllers.
pub struct Context {
    pub client: Client,
    /// Who publishes the Events (see [`super::events::publish`]).
    pub reporter: Reporter,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub upstreams: UpstreamClients,
    pub tunables: Tunables,
    /// Cancelled on shutdown: long runs (certificate backfills) stop between two uploads.
    pub shutdown: CancellationToken,
    /// Closed when this replica may have lost its Lease (see [`Fence`]); open without leader
    /// election.
    pub fence: Fence,
    /// Webhook receivers, pending notifications and the wake-up channels into the controllers.
    pub webhooks: Arc<crate::webhook::Webhooks>,
    /// Start-up spread and run slots; off unless the operator is started with them.
    pub pacing: Pacing,
    /// Foreign in-flight uploads being waited out before a takeover.
    pub handover: Handover,
    /// What each resource's runs cost of the Personio budget, to stretch intervals fairly when
    /// they need more than it allows; `None` without a budget.
    pub budget: Option<BudgetPlanner>,
}

impl Context {
    /// Builds the context.
    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        tunables: Tunables,
        shutdown: CancellationToken,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let shared_budget = tunables.personio_budget_per_minute.map(SharedBudget::new);
        let budget = tunables.personio_budget_per_minute.map(BudgetPlanner::new);
        let upstreams = UpstreamClients::new(
            metrics.clone(),
            tunables.downloads.clone(),
            shared_budget,
            tunables.upstream_rate_scale,
        );
        let webhooks = Arc::new(
            crate::webhook::Webhooks::new(tunables.webhook_min_gap)
                .with_signatures(tunables.webhook_signatures.clone()),
        );
        let handover = Handover::new(tunables.handover_grace);
        Self {
            reporter,
            client,
            metrics,
            clock,
            upstreams,
            tunables,
            shutdown,
            fence: Fence::open(),
            webhooks,
            pacing: Pacing::off(),
            handover,
            budget,
        }
    }
}
