//! Which certificate URLs (and redirect targets) may be fetched, and with or without the bearer
//! token. Pure URL logic plus the address check of [`crate::upstream::public_addresses`]; the
//! rules are described on [`super::DownloadPolicy`].

use std::net::IpAddr;

use url::{Host, Url};

use super::DownloadPolicy;
use crate::upstream::is_public_address;

/// How one hop of a download is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hop {
    /// The reteach API origin: with the bearer token.
    Api,
    /// An allowed download host: without the token.
    Foreign,
}

/// Why a URL may not be fetched; the text becomes the error message (no URL, no signature).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("the certificate URL is not https")]
    NotHttps,
    #[error(
        "the certificate URL points at {host}, which is not an allowed download host (the operator's --allowed-download-hosts)"
    )]
    HostNotAllowed { host: String },
    #[error("the certificate URL points at {host}, a loopback, private or link-local address")]
    NonPublicAddress { host: String },
}

/// Classifies `target` against the API base URL and the policy (literal addresses included;
/// resolved addresses are checked by the caller for [`Hop::Foreign`]).
pub(crate) fn classify(
    target: &Url,
    api: &Url,
    policy: &DownloadPolicy,
    allow_insecure_http: bool,
) -> Result<Hop, Refusal> {
    match target.scheme() {
        "https" => {}
        "http" if allow_insecure_http => {}
        _ => return Err(Refusal::NotHttps),
    }
    if target.origin() == api.origin() {
        return Ok(Hop::Api);
    }
    let host = target
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = target.port_or_known_default();
    if !policy
        .allowed_hosts
        .iter()
        .any(|pattern| host_matches(pattern, &host, port))
    {
        return Err(Refusal::HostNotAllowed { host });
    }
    let literal: Option<IpAddr> = match target.host() {
        Some(Host::Ipv4(ip)) => Some(ip.into()),
        Some(Host::Ipv6(ip)) => Some(ip.into()),
        _ => None,
    };
    if literal.is_some_and(|ip| !is_public_address(ip)) && !policy.allow_private_addresses {
        return Err(Refusal::NonPublicAddress { host });
    }
    Ok(Hop::Foreign)
}

/// `pattern` is `host`, `host:port` or `*.domain`; `host` is lower case.
fn host_matches(pattern: &str, host: &str, port: Option<u16>) -> bool {
    let pattern = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.');
    if pattern.is_empty() {
        return false;
    }
    if let Some(domain) = pattern.strip_prefix("*.") {
        return host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1);
    }
    match split_port(&pattern) {
        (name, Some(wanted)) => name == host && port == Some(wanted),
        (name, None) => name == host,
    }
}

/// `host:port` → (host, port); a bare host (or an IPv6 literal in brackets) has no port.
fn split_port(pattern: &str) -> (&str, Option<u16>) {
    if let Some(rest) = pattern.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((ip, tail)) => (ip, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (pattern, None),
        };
    }
    match pattern.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => match port.parse() {
            Ok(port) => (name, Some(port)),
            Err(_) => (pattern, None),
        },
        _ => (pattern, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Url {
        Url::parse("https://api.reteach.io").unwrap()
    }

    fn policy(hosts: &[&str]) -> DownloadPolicy {
        DownloadPolicy {
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            ..DownloadPolicy::default()
        }
    }

    fn check(url: &str, policy: &DownloadPolicy) -> Result<Hop, Refusal> {
        classify(&Url::parse(url).unwrap(), &api(), policy, false)
    }

    /// Asserts that `policy` refuses each of `urls` for the reason `reason` accepts.
    #[track_caller]
    fn assert_refused(policy: &DownloadPolicy, urls: &[&str], reason: fn(&Refusal) -> bool) {
        for url in urls {
            let result = check(url, policy);
            assert!(
                matches!(&result, Err(refusal) if reason(refusal)),
                "{url}: {result:?}"
            );
        }
    }

    #[test]
    fn the_api_origin_gets_the_token_and_nothing_else_does() {
        let none = policy(&[]);
        assert_eq!(
            check("https://api.reteach.io/certificates/1/download", &none),
            Ok(Hop::Api)
        );
        assert_eq!(
            check("https://API.reteach.io:443/x", &none),
            Ok(Hop::Api),
            "same origin, spelled differently"
        );
        let storage = policy(&["storage.example.com"]);
        assert_eq!(
            check("https://storage.example.com/c.pdf?sig=1", &storage),
            Ok(Hop::Foreign)
        );
        assert_refused(&none, &["https://api.reteach.io:8443/x"], |r| {
            matches!(r, Refusal::HostNotAllowed { .. })
        });
    }

    #[test]
    fn hosts_outside_the_allowlist_are_refused() {
        let storage = policy(&["storage.example.com"]);
        let outside = [
            "https://evil.example/c.pdf",
            "https://storage.example.com.evil.example/c.pdf",
            "https://xstorage.example.com/c.pdf",
        ];
        assert_refused(&storage, &outside, |r| {
            matches!(r, Refusal::HostNotAllowed { .. })
        });
    }

    #[test]
    fn patterns_may_name_a_port_or_every_subdomain() {
        let ported = policy(&["storage.example.com:8443"]);
        assert_eq!(
            check("https://storage.example.com:8443/c.pdf", &ported),
            Ok(Hop::Foreign)
        );
        assert!(check("https://storage.example.com/c.pdf", &ported).is_err());
        let wildcard = policy(&["*.blob.example.net"]);
        assert_eq!(
            check("https://acct.blob.example.net/c.pdf", &wildcard),
            Ok(Hop::Foreign)
        );
        assert!(check("https://blob.example.net/c.pdf", &wildcard).is_err());
        assert!(check("https://evilblob.example.net/c.pdf", &wildcard).is_err());
    }

    #[test]
    fn plain_http_only_with_the_opt_in() {
        let storage = policy(&["storage.example.com"]);
        let plain = [
            "http://storage.example.com/c.pdf",
            "ftp://storage.example.com/c.pdf",
        ];
        assert_refused(&storage, &plain, |r| *r == Refusal::NotHttps);
        let url = Url::parse("http://storage.example.com/c.pdf").unwrap();
        assert_eq!(classify(&url, &api(), &storage, true), Ok(Hop::Foreign));
    }

    #[test]
    fn literal_private_addresses_are_refused_unless_allowed() {
        let hosts = policy(&["169.254.169.254", "10.0.0.7", "[fd00::1]", "127.0.0.1"]);
        let private = [
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.7/c.pdf",
            "https://[fd00::1]/c.pdf",
            "https://127.0.0.1:9000/c.pdf",
        ];
        assert_refused(&hosts, &private, |r| {
            matches!(r, Refusal::NonPublicAddress { .. })
        });
        let allowed = DownloadPolicy {
            allow_private_addresses: true,
            ..hosts
        };
        assert_eq!(check("https://10.0.0.7/c.pdf", &allowed), Ok(Hop::Foreign));
    }
}
