//! The operator admin's say over where resources may send credentials: an allowlist of upstream
//! hosts (default: the official Personio and reteach APIs) and whether `allowInsecureHttp` in a
//! spec may take effect at all. Checked before any Secret is read, so a resource pointing
//! elsewhere never gets its Secret's values sent anywhere. The run (`controller`), the operator's
//! preflight probes and the `preflight` command check the same policy, given by the same options
//! ([`EgressOptions`]).

use std::fmt;

use super::{Classification, Classify, Reason};
use crate::api::EmployeeSyncSpec;
use crate::reteach::DownloadPolicy;

/// Condition reason of a resource whose base URL is not allowlisted.
pub const UPSTREAM_NOT_ALLOWED: &str = Reason::UpstreamNotAllowed.as_str();
/// Condition reason of a resource asking for plain HTTP when the operator does not allow it.
pub const INSECURE_HTTP_NOT_ALLOWED: &str = Reason::InsecureHttpNotAllowed.as_str();

/// The official API hosts, allowed by default.
pub const DEFAULT_ALLOWED_HOSTS: [&str; 2] = ["api.personio.de", "api.reteach.io"];

/// One allowlist entry: a host name or IP address, optionally with a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHost {
    host: String,
    port: Option<u16>,
}

/// Why an allowlist entry was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a host or host:port (e.g. api.personio.de or 127.0.0.1:8080)")]
pub struct InvalidAllowedHost(String);

impl std::str::FromStr for AllowedHost {
    type Err = InvalidAllowedHost;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidAllowedHost(text.to_string());
        let text = text.trim();
        // Parse as the authority of a URL, so hosts compare exactly as the clients will see them
        // (lower case, IDNA, normalised IP addresses).
        let url = url::Url::parse(&format!("https://{text}/")).map_err(|_| invalid())?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(invalid)?;
        if url.path() != "/" || !url.username().is_empty() || url.query().is_some() {
            return Err(invalid());
        }
        // `url` drops an explicit default port (443): keep it as written.
        let port = match text.rsplit_once(':') {
            Some((_, port)) if !text.ends_with(']') => Some(port.parse().map_err(|_| invalid())?),
            _ => None,
        };
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// What the operator's admin allows resources to talk to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamPolicy {
    /// Hosts a base URL may point at.
    pub allowed_hosts: Vec<AllowedHost>,
    /// Whether `allowInsecureHttp: true` in a spec takes effect.
    pub allow_insecure_http: bool,
}

impl Default for UpstreamPolicy {
    /// The official API hosts over HTTPS only.
    fn default() -> Self {
        Self {
            allowed_hosts: DEFAULT_ALLOWED_HOSTS
                .iter()
                .filter_map(|host| host.parse().ok())
                .collect(),
            allow_insecure_http: false,
        }
    }
}

impl UpstreamPolicy {
    /// A policy allowing `hosts` (and plain HTTP when `allow_insecure_http`).
    pub fn new(hosts: &[&str], allow_insecure_http: bool) -> Result<Self, InvalidAllowedHost> {
        Ok(Self {
            allowed_hosts: hosts.iter().map(|h| h.parse()).collect::<Result<_, _>>()?,
            allow_insecure_http,
        })
    }

    /// Checks the base URL in `spec.<field>.baseUrl` (and its `allowInsecureHttp`): `Stalled`
    /// with a message saying what the operator's admin would have to allow.
    pub fn check(
        &self,
        field: &str,
        base_url: &str,
        insecure_http_requested: bool,
    ) -> Result<(), UpstreamRefused> {
        let url = url::Url::parse(base_url).map_err(|e| {
            UpstreamRefused::new(
                Reason::InvalidSpec,
                format!("spec.{field}.baseUrl: {base_url:?} is not a URL: {e}"),
            )
        })?;
        let Some(host) = url.host_str() else {
            return Err(UpstreamRefused::new(
                Reason::InvalidSpec,
                format!("spec.{field}.baseUrl: {base_url:?} has no host"),
            ));
        };
        let port = url.port_or_known_default();
        let allowed = self
            .allowed_hosts
            .iter()
            .any(|entry| entry.host == host && entry.port.is_none_or(|p| Some(p) == port));
        if !allowed {
            let authority = match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            };
            return Err(UpstreamRefused::new(
                Reason::UpstreamNotAllowed,
                format!(
                    "spec.{field}.baseUrl: the operator does not allow connections to {authority} \
                     (allowed: {}); use an allowed host, or ask the operator's administrator to \
                     add it to --allowed-upstream-hosts (Helm value allowedUpstreamHosts)",
                    self.describe_hosts()
                ),
            ));
        }
        if url.scheme() == "http" && insecure_http_requested && !self.allow_insecure_http {
            return Err(UpstreamRefused::new(
                Reason::InsecureHttpNotAllowed,
                format!(
                    "spec.{field}.allowInsecureHttp: this operator does not allow plain http \
                     (it runs without --allow-insecure-http, meant for tests and demos only); \
                     use an https:// baseUrl"
                ),
            ));
        }
        Ok(())
    }

    /// Checks both base URLs of an EmployeeSync (the connection a CertificateSync borrows too),
    /// Personio first: the one check a run, the operator's probes and the `preflight` command
    /// make before any Secret is read.
    pub fn check_spec(&self, spec: &EmployeeSyncSpec) -> Result<(), UpstreamRefused> {
        let (personio, reteach) = self.check_each(spec);
        personio.and(reteach)
    }

    /// The verdicts on both base URLs of an EmployeeSync, Personio's and reteach's, each on its
    /// own (the preflight probes a side the policy allows even when it refuses the other).
    pub fn check_each(
        &self,
        spec: &EmployeeSyncSpec,
    ) -> (Result<(), UpstreamRefused>, Result<(), UpstreamRefused>) {
        (
            self.check(
                "personio",
                &spec.personio.base_url,
                spec.personio.allow_insecure_http,
            ),
            self.check(
                "reteach",
                &spec.reteach.base_url,
                spec.reteach.allow_insecure_http,
            ),
        )
    }

    fn describe_hosts(&self) -> String {
        if self.allowed_hosts.is_empty() {
            return "none".into();
        }
        self.allowed_hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A base URL the policy refuses: the condition reason and the sentence saying what to change
/// (the same wherever the check is made).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UpstreamRefused {
    reason: Reason,
    message: String,
}

impl UpstreamRefused {
    fn new(reason: Reason, message: String) -> Self {
        Self { reason, message }
    }

    /// Condition reason (`UpstreamNotAllowed`, `InsecureHttpNotAllowed` or `InvalidSpec`).
    pub fn reason(&self) -> &'static str {
        self.reason.as_str()
    }

    /// The sentence for the condition (also what `preflight` prints).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl Classify for UpstreamRefused {
    /// Only the operator's administrator or the spec's author can change it.
    fn classify(&self) -> Classification {
        Classification::stalled(self.reason)
    }
}

/// The operator administrator's egress options, shared by `run` and `preflight` so both check a
/// resource against the same hosts with the same defaults.
#[derive(clap::Args, Debug, Clone)]
pub struct EgressOptions {
    /// Hosts (`host` or `host:port`) the resources' base URLs may point at; a resource pointing
    /// elsewhere is refused (a run: Stalled, reason `UpstreamNotAllowed`) and its Secrets are
    /// never read.
    #[arg(
        long,
        env = "ALLOWED_UPSTREAM_HOSTS",
        value_delimiter = ',',
        default_value = "api.personio.de,api.reteach.io"
    )]
    pub allowed_upstream_hosts: Vec<AllowedHost>,
    /// Let `allowInsecureHttp: true` in a resource take effect (plain-HTTP simulators in tests and
    /// demos). Without it such a resource is refused (a run: Stalled).
    #[arg(long, env = "ALLOW_INSECURE_HTTP")]
    pub allow_insecure_http: bool,
    /// Hosts besides the reteach API that may serve certificate PDFs (`host`, `host:port` or
    /// `*.domain`); they never receive the reteach token. Empty: only the API origin.
    #[arg(long, env = "ALLOWED_DOWNLOAD_HOSTS", value_delimiter = ',')]
    pub allowed_download_hosts: Vec<String>,
    /// Let certificate downloads reach loopback, private and link-local addresses (tests, demo).
    #[arg(long, env = "ALLOW_PRIVATE_DOWNLOAD_ADDRESSES")]
    pub allow_private_download_addresses: bool,
}

impl EgressOptions {
    /// The upstream policy these options describe.
    pub fn upstream_policy(&self) -> UpstreamPolicy {
        UpstreamPolicy {
            allowed_hosts: self.allowed_upstream_hosts.clone(),
            allow_insecure_http: self.allow_insecure_http,
        }
    }

    /// The download policy these options describe, holding PDFs in transit in `scratch_dir`
    /// (memory when `None`); fails on a download host that is no host pattern.
    pub fn download_policy(
        &self,
        scratch_dir: Option<std::path::PathBuf>,
    ) -> Result<DownloadPolicy, String> {
        DownloadPolicy::check_hosts(&self.allowed_download_hosts)
            .map_err(|e| format!("--allowed-download-hosts: {e}"))?;
        Ok(DownloadPolicy {
            allowed_hosts: self.allowed_download_hosts.clone(),
            allow_private_addresses: self.allow_private_download_addresses,
            scratch_dir,
            memory: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(result: Result<(), UpstreamRefused>) -> String {
        result.unwrap_err().reason().to_string()
    }

    #[test]
    fn allows_the_official_hosts_by_default() {
        let policy = UpstreamPolicy::default();
        assert_eq!(
            policy.check("personio", "https://api.personio.de", false),
            Ok(())
        );
        assert_eq!(
            policy.check("reteach", "https://API.reteach.io/", false),
            Ok(())
        );
    }

    #[test]
    fn refuses_any_other_host_naming_the_field_and_the_flag() {
        let policy = UpstreamPolicy::default();
        let failure = policy
            .check("personio", "https://evil.example:8443/api", false)
            .unwrap_err();
        assert_eq!(failure.reason(), UPSTREAM_NOT_ALLOWED);
        assert!(
            failure.message().contains("spec.personio.baseUrl")
                && failure.message().contains("evil.example:8443")
                && failure.message().contains("--allowed-upstream-hosts"),
            "{}",
            failure.message()
        );
        // A suffix or prefix of an allowed host is another host.
        for url in [
            "https://api.personio.de.evil.example",
            "https://evilapi.personio.de",
            "https://api.personio.de@evil.example",
        ] {
            assert_eq!(
                reason(policy.check("personio", url, false)),
                Reason::UpstreamNotAllowed,
                "{url}"
            );
        }
    }

    #[test]
    fn an_entry_with_a_port_allows_only_that_port() {
        let policy = UpstreamPolicy::new(&["127.0.0.1:8080", "sim.local"], true).unwrap();
        assert_eq!(
            policy.check("personio", "http://127.0.0.1:8080", true),
            Ok(())
        );
        assert_eq!(
            reason(policy.check("personio", "http://127.0.0.1:9090", true)),
            UPSTREAM_NOT_ALLOWED
        );
        assert_eq!(
            policy.check("reteach", "https://sim.local:9443", false),
            Ok(())
        );
        let https_default = UpstreamPolicy::new(&["api.reteach.io:443"], false).unwrap();
        assert_eq!(
            https_default.check("reteach", "https://api.reteach.io", false),
            Ok(())
        );
    }

    #[test]
    fn insecure_http_needs_the_operator_option_too() {
        let without = UpstreamPolicy::new(&["127.0.0.1"], false).unwrap();
        let failure = without
            .check("reteach", "http://127.0.0.1:1234", true)
            .unwrap_err();
        assert_eq!(failure.reason(), INSECURE_HTTP_NOT_ALLOWED);
        assert!(failure.message().contains("--allow-insecure-http"));
        let with = UpstreamPolicy::new(&["127.0.0.1"], true).unwrap();
        assert_eq!(with.check("reteach", "http://127.0.0.1:1234", true), Ok(()));
    }

    #[test]
    fn refuses_malformed_entries() {
        for bad in ["", "https://x", "host/path", "host:port", "user@host"] {
            assert!(bad.parse::<AllowedHost>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "API.Personio.DE"
                .parse::<AllowedHost>()
                .unwrap()
                .to_string(),
            "api.personio.de"
        );
    }

    #[derive(clap::Parser)]
    struct Command {
        #[command(flatten)]
        egress: EgressOptions,
    }

    #[test]
    fn egress_options_default_to_the_official_hosts_over_https_only() {
        use clap::Parser;
        let defaults = Command::try_parse_from(["preflight"]).unwrap().egress;
        assert_eq!(defaults.upstream_policy(), UpstreamPolicy::default());
        assert_eq!(
            defaults.download_policy(None),
            Ok(DownloadPolicy::default())
        );
        let given = Command::try_parse_from([
            "preflight",
            "--allowed-upstream-hosts",
            "127.0.0.1:8080,sim.local",
            "--allow-insecure-http",
            "--allowed-download-hosts",
            "*.blob.example.net",
            "--allow-private-download-addresses",
        ])
        .unwrap()
        .egress;
        assert_eq!(
            given.upstream_policy(),
            UpstreamPolicy::new(&["127.0.0.1:8080", "sim.local"], true).unwrap()
        );
        let downloads = given.download_policy(None).unwrap();
        assert_eq!(downloads.allowed_hosts, vec!["*.blob.example.net"]);
        assert!(downloads.allow_private_addresses);
        let bad = Command::try_parse_from(["run", "--allowed-download-hosts", "https://x/y"])
            .unwrap()
            .egress;
        assert!(bad
            .download_policy(None)
            .unwrap_err()
            .starts_with("--allowed-download-hosts"));
    }

    #[test]
    fn a_whole_spec_is_checked_personio_first() {
        let policy = UpstreamPolicy::new(&["api.reteach.io"], false).unwrap();
        let spec: EmployeeSyncSpec = serde_json::from_value(serde_json::json!({
            "personio": {"baseUrl": "https://evil.example", "credentialsSecretRef": {"name": "p"}},
            "reteach": {"baseUrl": "https://api.reteach.io", "credentialsSecretRef": {"name": "r"}},
        }))
        .unwrap();
        let refused = policy.check_spec(&spec).unwrap_err();
        assert_eq!(refused.reason(), UPSTREAM_NOT_ALLOWED);
        assert!(refused.message().starts_with("spec.personio.baseUrl"));
        assert_eq!(
            refused.classify().disposition,
            super::super::Disposition::Stalled
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn checking_any_base_url_never_panics(url in "\\PC{0,80}", insecure in any::<bool>()) {
                let policy = UpstreamPolicy::new(&["127.0.0.1:8080", "api.personio.de"], false).unwrap();
                let _ = policy.check("personio", &url, insecure);
                let _ = url.parse::<AllowedHost>();
            }

            #[test]
            fn only_an_allowed_host_passes(host in "[a-z]{1,12}\\.[a-z]{2,5}") {
                let policy = UpstreamPolicy::default();
                let allowed = DEFAULT_ALLOWED_HOSTS.contains(&host.as_str());
                let url = format!("https://{host}");
                prop_assert_eq!(policy.check("reteach", &url, false).is_ok(), allowed);
            }
        }
    }
}
