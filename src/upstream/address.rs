//! Which network addresses a download may reach. A certificate URL comes from reteach's data and
//! a redirect from whatever host answers it, so neither may steer the operator to the cluster's
//! own network: loopback, private (RFC 1918, IPv6 ULA), link-local (cloud metadata at
//! 169.254.169.254), shared, reserved and multicast addresses are refused unless the operator is
//! started with an explicit allow option (tests and the demo run their simulators on 127.0.0.1).
//!
//! The check runs on resolved addresses, not only on literal hosts: [`GuardedResolver`] is the
//! download client's DNS resolver and drops every non-public address of a host other than the
//! exempt API host, so a name that resolves (or re-resolves, DNS rebinding) to a private address
//! is never connected to. With an HTTP proxy configured through the environment the proxy resolves
//! names and this check cannot see the target's address; the proxy's own policy applies then.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is an ordinary public unicast address.
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier-grade NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240; // reserved
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        let embedded = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        return is_public_v4(embedded);
    }
    let special = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local (ULA)
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || segments[..6] == [0, 0, 0, 0, 0, 0]; // IPv4-compatible (deprecated)
    !special
}

/// Refusal of a host whose addresses are all non-public.
#[derive(Debug, thiserror::Error)]
#[error("host {host} resolves only to loopback, private or link-local addresses")]
pub struct NonPublicHost {
    /// The host name as requested.
    pub host: String,
}

/// Resolves `host` and keeps its public addresses (every address when `allow_private`); fails
/// when none is left or the name does not resolve.
pub async fn public_addresses(
    host: &str,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let resolved = tokio::net::lookup_host((host, 0)).await?;
    let kept: Vec<SocketAddr> = resolved
        .filter(|addr| allow_private || is_public_address(addr.ip()))
        .collect();
    if kept.is_empty() {
        return Err(Box::new(NonPublicHost {
            host: host.to_string(),
        }));
    }
    Ok(kept)
}

/// The download client's DNS resolver: hosts other than `exempt_host` (the API's own, allowed by
/// the operator's upstream allowlist) connect only to public addresses unless `allow_private`.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    /// Host name (lower case) whose addresses are not checked.
    pub exempt_host: String,
    /// Let every host reach non-public addresses (tests, demo).
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let allow_private = self.allow_private || host == self.exempt_host;
        Box::pin(async move {
            let kept = public_addresses(&host, allow_private).await?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public_address(text.parse().unwrap())
    }

    #[test]
    fn cluster_and_host_addresses_are_not_public() {
        for address in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fc12::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!public(address), "{address}");
        }
    }

    #[test]
    fn internet_addresses_are_public() {
        for address in [
            "1.1.1.1",
            "52.28.1.10",
            "172.32.0.1",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(public(address), "{address}");
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_unless_allowed() {
        let refused = public_addresses("localhost", false).await.unwrap_err();
        assert!(refused.to_string().contains("localhost"), "{refused}");
        let allowed = public_addresses("localhost", true).await.unwrap();
        assert!(allowed.iter().all(|a| a.ip().is_loopback()));
    }

    #[tokio::test]
    async fn the_resolver_exempts_only_the_api_host() {
        let resolver = GuardedResolver {
            exempt_host: "localhost".to_string(),
            allow_private: false,
        };
        let name: Name = "localhost".parse().unwrap();
        assert!(resolver.resolve(name).await.is_ok());
        let strict = GuardedResolver {
            exempt_host: "api.reteach.io".to_string(),
            allow_private: false,
        };
        let name: Name = "localhost".parse().unwrap();
        assert!(strict.resolve(name).await.is_err());
    }
}
