//! The operator process: start-up checks, the HTTP server, optional leader election, both
//! controllers ([`Operator`]) with one shutdown signal, and the orderly stop that follows it.

use std::sync::Arc;
use std::time::Duration;

use kube::api::ListParams;
use kube::{Api, Client};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::context::Tunables;
use super::http::{self, Readiness};
use super::leader::{
    become_leader, confirm_renewals, confirmation_interval, KubeLease, Leadership, LeaseSettings,
};
use super::operator::Operator;
use super::options::{init_tracing, signature_scheme, RunOptions};
use super::pacing::{Pacing, RunSlots, StartupSpread};
use super::receiver_endpoints::ReceiverEndpoints;
use crate::api::duration::parse_duration;
use crate::api::{CertificateSync, EmployeeSync};
use crate::clock::SystemClock;
use crate::jobs::Fence;
use crate::metrics::Metrics;
use crate::webhook::{KeyRing, PublicUrl};

/// How often the syncing process checks that its webhook Service still points at it.
const ROUTING_CHECK_PERIOD: Duration = Duration::from_secs(15);

/// Runs the operator until SIGTERM/SIGINT.
pub async fn run(options: RunOptions) -> anyhow::Result<()> {
    init_tracing(&options.log_format);
    let client = Client::try_default().await?;
    check_crds_installed(&client).await?;
    if let Some(selector) = &options.watch_label_selector {
        super::shard::check_label_selector(&client, selector).await?;
    }
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    let metrics = Arc::new(Metrics::new());
    let readiness = Readiness::default();
    let server = tokio::spawn(http::serve(
        options.metrics_addr,
        metrics.clone(),
        readiness.clone(),
        shutdown.clone(),
    ));
    let own_namespace = options
        .lease_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| "default".into());
    // Checked before the election, so a misconfigured pod fails at once, not when it leads.
    let receiver_endpoints = receiver_endpoints(&client, &options, &own_namespace).await?;
    let tunables = tunables(&client, &options, &own_namespace).await?;
    let lost_leadership = CancellationToken::new();
    let (leadership, fence) = if options.leader_election {
        let process = Process {
            client: &client,
            metrics: &metrics,
            readiness: &readiness,
            shutdown: &shutdown,
            lost_leadership: &lost_leadership,
        };
        match lead(process, &options, &own_namespace).await? {
            Some((leadership, fence)) => (Some(leadership), fence),
            None => return Ok(()),
        }
    } else {
        metrics.set_leader(true);
        (None, Fence::open())
    };
    let operator = Operator::new(
        client,
        metrics,
        Arc::new(SystemClock),
        tunables,
        options.watch_namespace.clone(),
        shutdown.clone(),
    )
    .with_fence(fence)
    .with_label_selector(options.watch_label_selector.clone())
    .with_pacing(pacing(&options)?);
    let receiver = options
        .webhook_addr
        .map(|addr| tokio::spawn(operator.serve_webhooks(addr)));
    let receiver_endpoints = receiver_endpoints.map(Arc::new);
    // The receiver's socket is bound by now or about to be; a notification that arrives in
    // between is refused and retried by the sender.
    let routing = receiver_endpoints.clone().map(|endpoints| {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { endpoints.hold(ROUTING_CHECK_PERIOD, shutdown).await })
    });
    let drain = Duration::from_secs(options.shutdown_timeout_seconds);
    run_until_drained(operator.run(readiness), &shutdown, drain).await;
    shutdown.cancel();
    let stopping = Stopping {
        routing,
        receiver_endpoints,
        leadership,
        server,
        receiver,
    };
    stopping.finish().await;
    if lost_leadership.is_cancelled() {
        anyhow::bail!("lost the leader lease");
    }
    tracing::info!("stopped");
    Ok(())
}

/// What the start-up of a replica shares with leader election.
struct Process<'a> {
    client: &'a Client,
    metrics: &'a Arc<Metrics>,
    readiness: &'a Readiness,
    shutdown: &'a CancellationToken,
    lost_leadership: &'a CancellationToken,
}

/// The webhook Service's endpoints this process keeps pointing at itself, when it serves the
/// receiver behind a Service (`--webhook-endpoints`).
async fn receiver_endpoints(
    client: &Client,
    options: &RunOptions,
    own_namespace: &str,
) -> anyhow::Result<Option<ReceiverEndpoints>> {
    let (Some(name), Some(addr)) = (&options.webhook_endpoints, options.webhook_addr) else {
        return Ok(None);
    };
    let endpoints = ReceiverEndpoints::new(
        client.clone(),
        own_namespace,
        name,
        addr.port(),
        ReceiverEndpoints::address_from_env()?,
    )
    .await?;
    Ok(Some(endpoints))
}

/// The settings every run reads, from the command line (and the operator's webhook key, which
/// is created on first start when the receiver is on).
async fn tunables(
    client: &Client,
    options: &RunOptions,
    own_namespace: &str,
) -> anyhow::Result<Tunables> {
    let webhook_public_url = options
        .webhook_public_url
        .as_deref()
        .filter(|url| !url.trim().is_empty())
        .map(|url| PublicUrl::parse(url, options.egress.allow_insecure_http))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--webhook-public-url: {e}"))?;
    let webhook_keys: Option<KeyRing> = match options.webhook_addr {
        Some(_) => Some(
            super::webhook_key::load_or_create(
                client.clone(),
                own_namespace,
                &options.webhook_key_secret,
            )
            .await?,
        ),
        None => None,
    };
    let mut downloads = options
        .egress
        .download_policy(options.scratch_dir.clone())
        .map_err(anyhow::Error::msg)?;
    downloads.memory = Some(crate::upstream::PdfMemory::new(
        options.pdf_memory_mib.saturating_mul(1024 * 1024),
        crate::upstream::MAX_PDF_BYTES,
    ));
    Ok(Tunables {
        minimum_interval: parse_duration(&options.minimum_interval)?,
        upstream: options.egress.upstream_policy(),
        downloads,
        preflight: !options.skip_preflight,
        webhook_min_gap: parse_duration(&options.webhook_min_gap)
            .map_err(|e| anyhow::anyhow!("--webhook-min-gap: {e}"))?,
        webhooks_enabled: options.webhook_addr.is_some(),
        webhook_public_url,
        webhook_keys,
        webhook_signatures: signature_scheme(options)?,
        personio_budget_per_minute: (options.personio_budget_per_minute > 0)
            .then_some(options.personio_budget_per_minute),
        handover_grace: parse_duration(&options.handover_grace)
            .map_err(|e| anyhow::anyhow!("--handover-grace: {e}"))?,
        upstream_rate_scale: options.upstream_rate_scale,
        ..Tunables::default()
    })
}

/// How runs are spread over the start and share the run slots.
fn pacing(options: &RunOptions) -> anyhow::Result<Pacing> {
    Ok(Pacing {
        spread: StartupSpread {
            started: chrono::Utc::now(),
            limit: parse_duration(&options.startup_spread)
                .map_err(|e| anyhow::anyhow!("--startup-spread: {e}"))?,
        },
        slots: RunSlots::with_namespace_share(
            options.max_concurrent_runs,
            options.max_namespace_run_share,
        ),
    })
}

/// Waits until this replica holds the Lease (ready while standing by), then keeps it: renewals
/// are confirmed into the returned [`Fence`], and losing the Lease stops the process. `None`:
/// shutdown was requested while standing by.
async fn lead(
    process: Process<'_>,
    options: &RunOptions,
    own_namespace: &str,
) -> anyhow::Result<Option<(Leadership, Fence)>> {
    let Process {
        client,
        metrics,
        readiness,
        shutdown,
        lost_leadership,
    } = process;
    let settings = LeaseSettings {
        namespace: own_namespace.to_string(),
        name: options.lease_name.clone(),
        identity: std::env::var("POD_NAME")
            .unwrap_or_else(|_| format!("{}-{}", hostname(), std::process::id())),
        duration_seconds: options.lease_duration_seconds,
    };
    // Ready while standing by: the client works (the CRD check passed), and a standby that is
    // not ready would stall every rolling update.
    readiness.set_standby(true);
    readiness.set_ready();
    metrics.set_leader(false);
    let leader = tokio::select! {
        leader = become_leader(client.clone(), &settings) => leader?,
        _ = shutdown.cancelled() => return Ok(None),
    };
    readiness.set_standby(false);
    metrics.set_leader(true);
    // A pause longer than half the Lease may have let another replica take over.
    let lease_duration = Duration::from_secs(options.lease_duration_seconds.max(2));
    let fence = Fence::heartbeat(
        lease_duration / 2,
        Some(lease_duration),
        lost_leadership.clone(),
    );
    // Renewals that fail with errors close the fence a lease duration after the last one.
    let (lease, confirmed) = (KubeLease::new(client.clone(), settings), fence.clone());
    let stopping = shutdown.clone();
    tokio::spawn(async move {
        let every = confirmation_interval(lease_duration);
        tokio::select! {
            () = confirm_renewals(&lease, &confirmed, every) => {}
            () = stopping.cancelled() => {}
        }
    });
    stop_when_lost(&leader, shutdown, lost_leadership, metrics);
    Ok(Some((leader, fence)))
}

/// Stops the process when the Lease is lost (or the fence closed it).
fn stop_when_lost(
    leader: &Leadership,
    shutdown: &CancellationToken,
    lost: &CancellationToken,
    metrics: &Arc<Metrics>,
) {
    let (shutdown, lost, metrics) = (shutdown.clone(), lost.clone(), metrics.clone());
    let mut changes = leader.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_ok() && *changes.borrow() {
                        continue;
                    }
                }
                _ = lost.cancelled() => {}
                // Drops `changes` so the Lease can be released after the work stopped.
                _ = shutdown.cancelled() => return,
            }
            tracing::error!("lost leadership; stopping");
            metrics.set_leader(false);
            lost.cancel();
            shutdown.cancel();
            return;
        }
    });
}

/// What is still running when the controllers have stopped, in the order it is wound down.
struct Stopping {
    routing: Option<JoinHandle<()>>,
    receiver_endpoints: Option<Arc<ReceiverEndpoints>>,
    leadership: Option<Leadership>,
    server: JoinHandle<std::io::Result<()>>,
    receiver: Option<JoinHandle<()>>,
}

impl Stopping {
    async fn finish(self) {
        if let Some(routing) = self.routing {
            let _ = routing.await;
        }
        if let Some(endpoints) = &self.receiver_endpoints {
            let withdrawn =
                tokio::time::timeout(Duration::from_secs(5), endpoints.withdraw()).await;
            if let Ok(Err(error)) = withdrawn {
                tracing::warn!(%error, "could not take this process out of the webhook Service");
            }
        }
        // Only now, with no run left in this process, may a standby start working.
        if let Some(leadership) = self.leadership {
            leadership.release(Duration::from_secs(5)).await;
        }
        let _ = self.server.await;
        if let Some(receiver) = self.receiver {
            let _ = receiver.await;
        }
    }
}

/// Runs the controllers; after shutdown is requested, gives in-flight runs `drain` to finish, then
/// abandons them. Abandoning is safe: a certificate upload in flight is recorded in the ledger
/// before it starts and checked against Personio by the next run, and employee writes are
/// idempotent (users are found by `externalId`), so an interrupted run is simply repeated.
async fn run_until_drained(
    work: impl std::future::Future<Output = ()>,
    shutdown: &CancellationToken,
    drain: Duration,
) {
    tokio::pin!(work);
    tokio::select! {
        _ = &mut work => return,
        _ = shutdown.cancelled() => {}
    }
    if tokio::time::timeout(drain, work).await.is_err() {
        tracing::warn!(
            ?drain,
            "in-flight runs did not finish in time after the shutdown request; abandoning them"
        );
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "operator".into())
}

fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = terminate => {},
        }
        tracing::info!("shutdown requested; finishing in-flight work");
        shutdown.cancel();
    });
}

/// Fails with install instructions when the CRDs are missing, instead of crashing later.
pub async fn check_crds_installed(client: &Client) -> anyhow::Result<()> {
    let probe = ListParams::default().limit(1);
    for result in [
        Api::<EmployeeSync>::all(client.clone())
            .list_metadata(&probe)
            .await
            .map(|_| ()),
        Api::<CertificateSync>::all(client.clone())
            .list_metadata(&probe)
            .await
            .map(|_| ()),
    ] {
        if let Err(kube::Error::Api(status)) = &result {
            if status.code == 404 {
                anyhow::bail!(
                    "the CRDs of sync.reteach.io are not installed; run `kubectl apply -f crds/` (or install the Helm chart) first"
                );
            }
        }
    }
    Ok(())
}
