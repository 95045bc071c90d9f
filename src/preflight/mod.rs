//! `preflight`: read-only probes of both upstreams for one EmployeeSync or CertificateSync, printed
//! as a table of capability → ok / missing / unknown with what to do. Run it before enabling a
//! resource: it names a missing right before anything is half done. Nothing is written upstream:
//! every probe is a GET or HEAD (plus the token requests).
//!
//! - [`source`]: the resource and its credentials, from the cluster or from a file + environment.
//! - [`personio_probes`], [`reteach_probes`]: the probes, on top of the regular clients.
//! - [`report`]: findings, the table and the exit code.
//! - [`status`]: a report as the `status.capabilities` list of a resource.

pub mod personio_probes;
pub mod report;
pub mod reteach_probes;
pub mod source;
pub mod status;

use std::path::PathBuf;

use crate::jobs::connection::{
    ClientOptions, ConnectionClients, PersonioEndpoint, ReteachEndpoint,
};
use crate::upstream::RetryPolicy;

pub use personio_probes::{probe_personio, PersonioPlan};
pub use report::{Capability, Finding, Need, Report, State};
pub use reteach_probes::{probe_reteach, ReteachPlan};
pub use source::{from_cluster, from_file, parse_resource, Kind, Subject};

/// Exit code when the preflight could not run at all (resource not found, unreadable file).
pub const EXIT_ERROR: i32 = 3;

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
}

/// Runs the preflight the options describe, prints the table and returns the process exit code
/// (see [`report::EXIT_READY`] and the following constants; [`EXIT_ERROR`] when it could not run).
pub async fn run(options: PreflightOptions) -> i32 {
    let subject = match load(&options).await {
        Ok(subject) => subject,
        Err(error) => {
            eprintln!("preflight: {error:#}");
            return EXIT_ERROR;
        }
    };
    let report = preflight(
        &subject,
        options.employee_id.as_deref(),
        RetryPolicy::default(),
    )
    .await;
    print!("{}", report.table());
    report.exit_code()
}

async fn load(options: &PreflightOptions) -> anyhow::Result<Subject> {
    if !options.file.is_empty() {
        let env = |name: &str| std::env::var(name).ok();
        return Ok(from_file(&options.file, options.name.as_deref(), &env)?);
    }
    let argument = options.resource.as_deref().unwrap_or_default();
    let (kind, name) = parse_resource(argument)?;
    let client = kube::Client::try_default().await?;
    Ok(from_cluster(client, &options.namespace, kind, &name).await?)
}

/// The probes for one resource in the cluster, as a controller runs them before the resource's
/// first run: reads the resource, its EmployeeSync and their Secrets (with `client`) and probes
/// both upstreams. Put [`status::capability_status`] of the report into `status.capabilities`, and
/// turn [`status::stalled_message`] (when `Some`) into a `Stalled` condition.
pub async fn probe_resource(
    client: kube::Client,
    namespace: &str,
    kind: Kind,
    name: &str,
) -> Result<Report, source::SourceError> {
    let subject = from_cluster(client, namespace, kind, name).await?;
    Ok(preflight(&subject, None, RetryPolicy::default()).await)
}

/// Probes both upstreams for `subject`. `retry` is the clients' retry policy (tests shorten it).
pub async fn preflight(subject: &Subject, employee_id: Option<&str>, retry: RetryPolicy) -> Report {
    let mut findings = Vec::new();
    let spec = &subject.employee_sync;
    let certificates = subject.category.is_some();
    // The operator's own client settings, without metrics.
    let clients = ConnectionClients::new(ClientOptions {
        retry,
        ..ClientOptions::default()
    });
    let personio = subject.personio.clone().map(|(credentials, ca)| {
        clients.personio(&PersonioEndpoint::from(&spec.personio), &credentials, ca)
    });
    match personio {
        Ok(Ok(client)) => {
            let plan = PersonioPlan {
                credentials_hint: &subject.personio_hint,
                category: subject.category.as_ref(),
                employee_id,
                attributes: crate::jobs::settings::employee_config(spec)
                    .map(|config| crate::personio::AttributeRequest::new(config.attributes()))
                    .map_err(|error| error.to_string()),
            };
            findings.extend(probe_personio(&client, &plan).await);
        }
        Ok(Err(error)) => findings.extend(unusable(
            Capability::PersonioToken,
            error.to_string(),
            "fix spec.personio of the EmployeeSync (baseUrl, allowInsecureHttp, caBundleRef)"
                .into(),
            personio_rows(certificates),
        )),
        Err(message) => findings.extend(unusable(
            Capability::PersonioToken,
            message,
            format!("provide {}", subject.personio_hint),
            personio_rows(certificates),
        )),
    }
    let reteach = subject.reteach.clone().map(|(credentials, ca)| {
        clients.reteach(&ReteachEndpoint::from(&spec.reteach), &credentials, ca)
    });
    match reteach {
        Ok(Ok(client)) => {
            let plan = ReteachPlan {
                credentials_hint: &subject.reteach_hint,
                certificates,
            };
            findings.extend(probe_reteach(&client, &plan).await);
        }
        Ok(Err(error)) => findings.extend(unusable(
            Capability::ReteachToken,
            error.to_string(),
            "fix spec.reteach of the EmployeeSync (baseUrl, allowInsecureHttp, caBundleRef)".into(),
            reteach_rows(certificates),
        )),
        Err(message) => findings.extend(unusable(
            Capability::ReteachToken,
            message,
            format!("provide {}", subject.reteach_hint),
            reteach_rows(certificates),
        )),
    }
    Report {
        resource: subject.resource.clone(),
        findings,
    }
}

fn personio_rows(certificates: bool) -> Vec<Capability> {
    let mut rows = vec![Capability::PersonioAttributes];
    if certificates {
        rows.extend([
            Capability::PersonioDocumentCategory,
            Capability::PersonioDocumentListing,
            Capability::PersonioDocumentUpload,
        ]);
    }
    rows
}

fn reteach_rows(certificates: bool) -> Vec<Capability> {
    let mut rows = vec![Capability::ReteachCustomerRead];
    if certificates {
        rows.extend([
            Capability::ReteachParticipationRead,
            Capability::ReteachParticipationFilters,
            Capability::ReteachCertificateDownload,
        ]);
    }
    rows
}

/// The rows of a side whose credentials or client could not even be set up.
fn unusable(
    token: Capability,
    message: String,
    action: String,
    later: Vec<Capability>,
) -> Vec<Finding> {
    let mut findings = vec![Finding::missing(token, message, action)];
    findings.extend(later.into_iter().map(|c| Finding::skipped(c, token)));
    findings
}
