//! The options of `reteach-personio-operator run` (flags and environment variables), and what is
//! derived from them before the operator starts.

use std::net::SocketAddr;

use super::allowlist::EgressOptions;

/// Options of `reteach-personio-operator run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunOptions {
    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Log format: `text` or `json`. Filter with RUST_LOG (default `info`).
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Only watch these namespaces (repeatable). Default: all namespaces.
    #[arg(long, env = "WATCH_NAMESPACES", value_delimiter = ',')]
    pub watch_namespace: Vec<String>,
    /// Hold a Lease before syncing, so only one replica works at a time.
    #[arg(long, env = "LEADER_ELECTION")]
    pub leader_election: bool,
    /// Namespace of the Lease (default: the pod's namespace, else `default`).
    #[arg(long, env = "LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "reteach-personio-operator")]
    pub lease_name: String,
    /// Seconds a Lease stays valid without renewal.
    #[arg(long, env = "LEASE_DURATION_SECONDS", default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// Seconds in-flight runs get to finish after SIGTERM before they are abandoned and the
    /// Lease is released; keep it below the pod's `terminationGracePeriodSeconds`.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECONDS", default_value_t = 45)]
    pub shutdown_timeout_seconds: u64,
    /// Where resources may send requests (also the options of `preflight`).
    #[command(flatten)]
    pub egress: EgressOptions,
    /// Directory for PDFs in transit (e.g. an `emptyDir` with a read-only root file system);
    /// unset: each PDF (≤ 30 MB) is held in memory.
    #[arg(long, env = "SCRATCH_DIR")]
    pub scratch_dir: Option<std::path::PathBuf>,
    /// MiB of certificate PDFs all runs together may hold in memory (without `--scratch-dir`):
    /// a run whose PDF does not fit waits, so a burst of certificate runs cannot exceed the pod's
    /// memory limit. At least one PDF of 30 MB always fits.
    #[arg(long, env = "PDF_MEMORY_MIB", default_value_t = DEFAULT_PDF_MEMORY_MIB)]
    pub pdf_memory_mib: u64,
    /// Do not run the read-only preflight probes before a resource's first run.
    #[arg(long, env = "SKIP_PREFLIGHT")]
    pub skip_preflight: bool,
    /// Address of the webhook receiver (its own port; see docs/webhooks.md), e.g. `0.0.0.0:8443`.
    /// Unset: no receiver, and `spec.webhook` of the resources has no effect.
    #[arg(long, env = "WEBHOOK_ADDR")]
    pub webhook_addr: Option<SocketAddr>,
    /// With `--webhook-addr`: the selector-less Service of the webhook receiver (in the
    /// operator's own namespace) whose `EndpointSlice` (same name) the process which syncs — the
    /// leader, or the only process — creates and points at itself (`POD_IP`), so notifications
    /// never reach a standby or another shard. The chart sets it; see docs/webhooks.md.
    #[arg(long, env = "WEBHOOK_ENDPOINTS", requires = "webhook_addr")]
    pub webhook_endpoints: Option<String>,
    /// With `--webhook-addr`: the public base URL under which the receiver is reachable (e.g.
    /// through the chart's Ingress), `https://…` (plain `http` only with
    /// `--allow-insecure-http`). The operator registers `<url>/<personio|reteach>/<namespace>/
    /// <name>/<token>` for resources with `spec.webhook.register: true`; a resource cannot choose
    /// another. Unset: nothing is registered (manual registration still works).
    #[arg(long, env = "WEBHOOK_PUBLIC_URL", requires = "webhook_addr")]
    pub webhook_public_url: Option<String>,
    /// With `--webhook-addr`: the Secret in the operator's namespace holding the key every
    /// registered webhook token is derived from; created with a random key when absent.
    #[arg(
        long,
        env = "WEBHOOK_KEY_SECRET",
        default_value = "reteach-personio-operator-webhook-key"
    )]
    pub webhook_key_secret: String,
    /// Shortest time between the start of a resource's run and a run caused by a webhook
    /// notification (Go-style duration): a burst of notifications costs one run per gap.
    #[arg(long, env = "WEBHOOK_MIN_GAP", default_value = "10s")]
    pub webhook_min_gap: String,
    /// Header of Personio's delivery signature (HMAC-SHA256 over timestamp and body; checked when
    /// a resource's receiver has a signing secret). Personio's docs do not name it yet: set it to
    /// what your tenant sends (docs/webhooks.md).
    #[arg(long, env = "PERSONIO_SIGNATURE_HEADER", default_value = crate::webhook::signature::DEFAULT_SIGNATURE_HEADER)]
    pub personio_signature_header: String,
    /// Header of the timestamp Personio signs (Unix seconds, milliseconds or RFC 3339).
    #[arg(long, env = "PERSONIO_SIGNATURE_TIMESTAMP_HEADER", default_value = crate::webhook::signature::DEFAULT_TIMESTAMP_HEADER)]
    pub personio_signature_timestamp_header: String,
    /// What Personio signs: `{timestamp}` and `{body}` (the raw body), with the text between them.
    #[arg(long, env = "PERSONIO_SIGNATURE_PAYLOAD", default_value = crate::webhook::signature::DEFAULT_PAYLOAD)]
    pub personio_signature_payload: String,
    /// Largest difference between a delivery's signed timestamp and now (Go-style duration);
    /// older deliveries are refused as replays.
    #[arg(long, env = "PERSONIO_SIGNATURE_TOLERANCE", default_value = "5m")]
    pub personio_signature_tolerance: String,
    /// Most runs (of both kinds together) in flight at a time; further due runs wait for a slot.
    /// 0: no limit. A certificate backfill holds its slot for as long as it uploads.
    #[arg(long, env = "MAX_CONCURRENT_RUNS", default_value_t = 32)]
    pub max_concurrent_runs: usize,
    /// Largest share of the run slots (in percent, at least one slot) the runs of one namespace
    /// may hold at a time, so that one academy — or many resources on one throttled credential —
    /// never holds every slot while other academies' due runs wait.
    #[arg(
        long,
        env = "MAX_NAMESPACE_RUN_SHARE",
        default_value_t = super::admission::DEFAULT_NAMESPACE_SHARE_PERCENT,
        value_parser = clap::value_parser!(u8).range(1..=100)
    )]
    pub max_namespace_run_share: u8,
    /// Personio requests per minute this process may send in all (Personio allows 2,000 v1
    /// requests per minute per IP address, and every academy of a replica shares its egress IP).
    /// Tenants take turns round-robin; when the configured intervals need more, they are
    /// stretched fairly and the Ready message says so. 0: no shared budget (only the
    /// per-credential limits).
    #[arg(
        long,
        env = "PERSONIO_BUDGET_PER_MINUTE",
        default_value_t = crate::upstream::DEFAULT_BUDGET_PER_MINUTE
    )]
    pub personio_budget_per_minute: u32,
    /// Longest window over which the runs already due at start-up (after a restart, an upgrade
    /// or a leader change) are spread; each resource's own interval is its window up to this.
    /// `0s` starts them all at once.
    #[arg(long, env = "STARTUP_SPREAD", default_value = "1h")]
    pub startup_spread: String,
    /// How long an in-flight certificate upload another run started must stand still before
    /// this run takes the resource over (after a shard move, a restart, a leader change, a run
    /// that stopped unsure whether its upload landed): longer than one PDF download plus one
    /// upload, and than Personio's document listing lags behind an upload.
    #[arg(long, env = "HANDOVER_GRACE", default_value = "2m")]
    pub handover_grace: String,
    /// Only sync resources matching this label selector (sharding: one Deployment per shard,
    /// e.g. `sync.reteach.io/shard=b`; the default shard takes `!sync.reteach.io/shard`).
    #[arg(long, env = "WATCH_LABEL_SELECTOR")]
    pub watch_label_selector: Option<String>,
    /// Shortest accepted `spec.interval` (tests lower it to run intervals of seconds).
    #[arg(long, hide = true, default_value = "1m")]
    pub minimum_interval: String,
    /// Multiplies the client-side rate limits of Personio and reteach, for soak tests against
    /// simulators whose own limits are scaled alike. 1: the published limits (production).
    #[arg(long, env = "UPSTREAM_RATE_SCALE", hide = true, default_value_t = 1.0,
          value_parser = parse_rate_scale)]
    pub upstream_rate_scale: f64,
}

/// `--upstream-rate-scale`: a finite factor from 1 to 1000 (limits are never lowered).
fn parse_rate_scale(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(scale) if (1.0..=1000.0).contains(&scale) => Ok(scale),
        _ => Err(format!("{text:?} is not a number from 1 to 1000")),
    }
}

/// Default of `--pdf-memory-mib`: three PDFs of Personio's largest size (30 MB) at a time, which
/// keeps a pod within the chart's 256 MiB memory limit (see BENCHMARKS.md, scenario `burst`).
pub const DEFAULT_PDF_MEMORY_MIB: u64 = 96;

/// Initialises logging (`RUST_LOG`, text or JSON).
pub fn init_tracing(format: &str) {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only on a terminal: in `kubectl logs` and log files they are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi);
    let result = if format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    if result.is_err() {
        // Already initialised (tests run several operators in one process).
    }
}

/// The signature scheme of Personio's deliveries from the `--personio-signature-*` flags.
pub(super) fn signature_scheme(
    options: &RunOptions,
) -> anyhow::Result<crate::webhook::SignatureScheme> {
    let tolerance = crate::api::duration::parse_duration(&options.personio_signature_tolerance)
        .map_err(|e| anyhow::anyhow!("--personio-signature-tolerance: {e}"))?;
    let tolerance = chrono::Duration::from_std(tolerance)
        .map_err(|e| anyhow::anyhow!("--personio-signature-tolerance: {e}"))?;
    crate::webhook::SignatureScheme::new(
        &options.personio_signature_header,
        &options.personio_signature_timestamp_header,
        &options.personio_signature_payload,
        tolerance,
    )
    .map_err(|e| anyhow::anyhow!("--personio-signature-*: {e}"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::RunOptions;

    #[derive(clap::Parser)]
    struct Command {
        #[command(flatten)]
        run: RunOptions,
    }

    /// The flags take their names from the fields: a renamed field must not silently rename the
    /// flag or variable the chart, the docs and users' manifests pass.
    #[test]
    fn public_flags_and_variables_keep_their_names() {
        let command = Command::command();
        let names: Vec<(String, String)> = command
            .get_arguments()
            .filter(|arg| !arg.is_hide_set())
            .filter_map(|arg| {
                let env = arg.get_env()?.to_string_lossy().into_owned();
                Some((arg.get_long()?.to_string(), env))
            })
            .collect();
        let expected = [
            ("metrics-addr", "METRICS_ADDR"),
            ("log-format", "LOG_FORMAT"),
            ("watch-namespace", "WATCH_NAMESPACES"),
            ("leader-election", "LEADER_ELECTION"),
            ("lease-namespace", "LEASE_NAMESPACE"),
            ("lease-name", "LEASE_NAME"),
            ("lease-duration-seconds", "LEASE_DURATION_SECONDS"),
            ("shutdown-timeout-seconds", "SHUTDOWN_TIMEOUT_SECONDS"),
            ("allowed-upstream-hosts", "ALLOWED_UPSTREAM_HOSTS"),
            ("allow-insecure-http", "ALLOW_INSECURE_HTTP"),
            ("allowed-download-hosts", "ALLOWED_DOWNLOAD_HOSTS"),
            (
                "allow-private-download-addresses",
                "ALLOW_PRIVATE_DOWNLOAD_ADDRESSES",
            ),
            ("scratch-dir", "SCRATCH_DIR"),
            ("pdf-memory-mib", "PDF_MEMORY_MIB"),
            ("skip-preflight", "SKIP_PREFLIGHT"),
            ("webhook-addr", "WEBHOOK_ADDR"),
            ("webhook-endpoints", "WEBHOOK_ENDPOINTS"),
            ("webhook-public-url", "WEBHOOK_PUBLIC_URL"),
            ("webhook-key-secret", "WEBHOOK_KEY_SECRET"),
            ("webhook-min-gap", "WEBHOOK_MIN_GAP"),
            ("personio-signature-header", "PERSONIO_SIGNATURE_HEADER"),
            (
                "personio-signature-timestamp-header",
                "PERSONIO_SIGNATURE_TIMESTAMP_HEADER",
            ),
            ("personio-signature-payload", "PERSONIO_SIGNATURE_PAYLOAD"),
            (
                "personio-signature-tolerance",
                "PERSONIO_SIGNATURE_TOLERANCE",
            ),
            ("max-concurrent-runs", "MAX_CONCURRENT_RUNS"),
            ("max-namespace-run-share", "MAX_NAMESPACE_RUN_SHARE"),
            ("personio-budget-per-minute", "PERSONIO_BUDGET_PER_MINUTE"),
            ("startup-spread", "STARTUP_SPREAD"),
            ("handover-grace", "HANDOVER_GRACE"),
            ("watch-label-selector", "WATCH_LABEL_SELECTOR"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(flag, env)| (flag.to_string(), env.to_string()))
            .collect();
        assert_eq!(names, expected);
    }
}
