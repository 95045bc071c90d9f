//! `preflight`: read-only probes of both upstreams for one EmployeeSync or CertificateSync, printed
//! as a table of capability → ok / missing / unknown with what to do. Run it before enabling a
//! resource: it names a missing right before anything is half done. Nothing is written upstream:
//! every probe is a GET or HEAD (plus the token requests).
//!
//! The probes pass the same policies as a run ([`ProbeOptions`]): the upstream allowlist before
//! any Secret is read, and the download policy for the certificate URL and each of its redirects.
//! The operator probes the spec and credentials its run has just checked and read
//! ([`Subject::checked`]); the command reads the resource itself, with the same options as `run`.
//!
//! - [`source`]: the resource and its credentials, from the cluster or from a file + environment.
//! - [`personio_probes`], [`reteach_probes`]: the probes, on top of the regular clients.
//! - [`report`]: findings, the table and the exit code.
//! - [`status`]: a report as the `status.capabilities` list of a resource.

pub mod personio_probes;
pub mod personio_v2;
pub mod report;
pub mod reteach_probes;
pub mod source;
pub mod status;

use std::path::PathBuf;

use crate::jobs::allowlist::{EgressOptions, UpstreamPolicy, UpstreamRefused};
use crate::jobs::connection::{
    ClientOptions, ConnectionClients, PersonioEndpoint, ReteachEndpoint,
};
use crate::reteach::DownloadPolicy;
use crate::upstream::RetryPolicy;

pub use personio_probes::{probe_personio, PersonioPlan};
pub use report::{Capability, Finding, Need, Report, State};
pub use reteach_probes::{probe_reteach, ReteachPlan};
pub use source::{
    from_cluster, from_file, parse_resource, CheckedCredentials, Kind, Side, Subject,
};

/// Exit code when the preflight could not run at all (resource not found, unreadable file, a base
/// URL the upstream policy refuses).
pub const EXIT_ERROR: i32 = 3;

/// What the probes may reach, and how patiently: the same policies as a run.
#[derive(Clone, Debug, Default)]
pub struct ProbeOptions {
    /// Hosts the base URLs may point at, and whether plain http may be used.
    pub upstream: UpstreamPolicy,
    /// Where certificate URLs (and their redirects) may lead.
    pub downloads: DownloadPolicy,
    /// The clients' retry policy (tests shorten it).
    pub retry: RetryPolicy,
}

/// `reteach-personio-operator preflight`.
#[derive(clap::Args, Debug, Clone)]
pub struct PreflightOptions {
    /// The resource in the cluster: `employeesync/NAME` or `certificatesync/NAME` (read with the
    /// current kubeconfig, together with its Secrets).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub resource: Option<String>,
    /// Namespace of the resource.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Check the resource in these YAML files instead (repeat -f for several; credentials from
    /// PERSONIO_CLIENT_ID, PERSONIO_CLIENT_SECRET, RETEACH_CLIENT_ID, RETEACH_CLIENT_SECRET,
    /// RETEACH_CLIENT_CODE).
    #[arg(short, long)]
    pub file: Vec<PathBuf>,
    /// With --file: the name of the resource to check when the file holds several.
    #[arg(long, requires = "file")]
    pub name: Option<String>,
    /// Personio employee whose documents the v2 listing probe reads (default: the first one
    /// Personio lists).
    #[arg(long)]
    pub employee_id: Option<String>,
    /// Where the probes may connect: the same options (and defaults) as `run`. A resource whose
    /// base URL they refuse is not probed, and its Secrets are not read.
    #[command(flatten)]
    pub egress: EgressOptions,
}

/// Runs the preflight the options describe, prints the table and returns the process exit code
/// (see [`report::EXIT_READY`] and the following constants; [`EXIT_ERROR`] when it could not run).
pub async fn run(options: PreflightOptions) -> i32 {
    let probe = match options.egress.download_policy(None) {
        Ok(downloads) => ProbeOptions {
            upstream: options.egress.upstream_policy(),
            downloads,
            retry: RetryPolicy::default(),
        },
        Err(error) => {
            eprintln!("preflight: {error}");
            return EXIT_ERROR;
        }
    };
    let subject = match load(&options, &probe.upstream).await {
        Ok(subject) => subject,
        Err(error) => {
            eprintln!("preflight: {error:#}");
            return EXIT_ERROR;
        }
    };
    let report = preflight(&subject, options.employee_id.as_deref(), &probe).await;
    print!("{}", report.table());
    report.exit_code()
}

async fn load(options: &PreflightOptions, policy: &UpstreamPolicy) -> anyhow::Result<Subject> {
    if !options.file.is_empty() {
        let env = |name: &str| std::env::var(name).ok();
        return Ok(from_file(
            &options.file,
            options.name.as_deref(),
            &env,
            policy,
        )?);
    }
    let argument = options.resource.as_deref().unwrap_or_default();
    let (kind, name) = parse_resource(argument)?;
    let client = kube::Client::try_default().await?;
    Ok(from_cluster(client, &options.namespace, kind, &name, policy).await?)
}

/// Probes both upstreams for `subject` under `options`. The sources check the upstream policy
/// before they read a Secret; it is checked here again, so a side it refuses is never contacted
/// whoever assembled the subject.
pub async fn preflight(
    subject: &Subject,
    employee_id: Option<&str>,
    options: &ProbeOptions,
) -> Report {
    // The operator's own client settings, without metrics.
    let clients = ConnectionClients::new(ClientOptions {
        retry: options.retry.clone(),
        downloads: options.downloads.clone(),
        ..ClientOptions::default()
    });
    let (personio, reteach) = options.upstream.check_each(&subject.employee_sync);
    let mut findings = personio_findings(subject, employee_id, personio, &clients).await;
    findings.extend(reteach_findings(subject, reteach, &clients).await);
    Report {
        resource: subject.resource.clone(),
        findings,
    }
}

async fn personio_findings(
    subject: &Subject,
    employee_id: Option<&str>,
    allowed: Result<(), UpstreamRefused>,
    clients: &ConnectionClients,
) -> Vec<Finding> {
    let spec = &subject.employee_sync;
    let connection = &spec.personio;
    let client = usable(
        allowed,
        &subject.personio,
        "personio",
        |(credentials, ca)| {
            clients.personio(&PersonioEndpoint::from(connection), credentials, ca.clone())
        },
    );
    let client = match client {
        Ok(client) => client,
        Err(why) => {
            let later =
                personio_probes::rows_after_token(spec.personio.api, subject.category.is_some());
            return unusable(Capability::PersonioToken, why, later);
        }
    };
    let plan = PersonioPlan {
        credentials_hint: &subject.personio.hint,
        category: subject.category.as_ref(),
        employee_id,
        attributes: crate::jobs::settings::employee_config(spec)
            .map(|config| crate::personio::AttributeRequest::new(config.attributes()))
            .map_err(|error| error.to_string()),
        api: connection.api,
    };
    probe_personio(&client, &plan).await
}

async fn reteach_findings(
    subject: &Subject,
    allowed: Result<(), UpstreamRefused>,
    clients: &ConnectionClients,
) -> Vec<Finding> {
    let connection = &subject.employee_sync.reteach;
    let certificates = subject.category.is_some();
    let client = usable(allowed, &subject.reteach, "reteach", |(credentials, ca)| {
        clients.reteach(&ReteachEndpoint::from(connection), credentials, ca.clone())
    });
    match client {
        Ok(client) => {
            let plan = ReteachPlan {
                credentials_hint: &subject.reteach.hint,
                certificates,
            };
            probe_reteach(&client, &plan).await
        }
        Err(why) => {
            let later = reteach_probes::rows_after_token(certificates);
            unusable(Capability::ReteachToken, why, later)
        }
    }
}

/// Why a side cannot be probed: the token row's detail and what to do.
struct Unusable {
    detail: String,
    action: String,
}

/// The client of one side, unless the policy refuses its base URL (the run's sentence), its
/// credentials could not be read, or the client cannot be built from its spec.
fn usable<T, C, E: std::fmt::Display>(
    allowed: Result<(), UpstreamRefused>,
    side: &Side<T>,
    field: &str,
    build: impl FnOnce(&T) -> Result<C, E>,
) -> Result<C, Unusable> {
    if let Err(refused) = allowed {
        return Err(Unusable {
            detail: refused.to_string(),
            action: "use an allowed host, or ask the operator's administrator to allow it".into(),
        });
    }
    let loaded = side.loaded.as_ref().map_err(|message| Unusable {
        detail: message.clone(),
        action: format!("provide {}", side.hint),
    })?;
    build(loaded).map_err(|error| Unusable {
        detail: error.to_string(),
        action: format!(
            "fix spec.{field} of the EmployeeSync (baseUrl, allowInsecureHttp, caBundleRef)"
        ),
    })
}

/// The rows of a side whose credentials or client could not even be set up.
fn unusable(token: Capability, why: Unusable, later: Vec<Capability>) -> Vec<Finding> {
    Finding::missing(token, why.detail, why.action).then_skipped(later)
}
