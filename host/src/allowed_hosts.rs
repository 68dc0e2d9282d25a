//! `allowed_outbound_hosts`: where a component may connect, by every way it
//! can — outbound HTTP, Redis, PostgreSQL, MQTT and `wasi:sockets` TCP — with
//! Spin's rules, so both runtimes grant and deny the same connections.
//!
//! An entry is `scheme://host[:port]`. The scheme may be `*`; the host may be
//! `*`, `*.domain`, a name, an IP address or an IP range (`10.0.0.0/8`); the
//! port may be `*`, a number or a range `a..b`, and when it is left out the
//! scheme's default port is meant. Templates (`{{ var }}`) are rendered
//! before parsing (`app::grants`).

use std::net::{IpAddr, SocketAddr};

use anyhow::{Result, bail};
use http::Uri;
use ipnet::IpNet;

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com` matches `a.example.com` (held as `.example.com`).
    Suffix(String),
    Exact(String),
    /// An IP range: matches the addresses in it (and no name).
    Range(IpNet),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    /// No port written: the scheme's default.
    Default,
    Range(u16, u16),
}

/// One `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

impl AllowedHost {
    fn parse(entry: &str) -> Result<Self> {
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!("`{entry}` needs a scheme, e.g. `https://{entry}`");
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        // `[v6]:port`, `[v6]`, `host:port` or `host`.
        let (host, port) = if rest.starts_with('[') {
            match rest.split_once("]:") {
                Some((h, p)) => (&rest[1..h.len()], Some(p)),
                None => (rest.trim_start_matches('[').trim_end_matches(']'), None),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            bail!("`{entry}` has no host");
        }
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            HostPattern::Suffix(format!(".{}", domain.to_ascii_lowercase()))
        } else if host.contains('*') {
            bail!("`{entry}`: `*` may only be the whole host or its first label");
        } else if host.contains('/') {
            HostPattern::Range(
                host.parse().map_err(|_| anyhow::anyhow!("`{entry}` must not have a path (`{host}` is not an IP range)"))?,
            )
        } else {
            HostPattern::Exact(host.to_ascii_lowercase())
        };
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(p) => match p.split_once("..") {
                Some((a, b)) => PortPattern::Range(parse_port(entry, a)?, parse_port(entry, b)?),
                None => {
                    let p = parse_port(entry, p)?;
                    PortPattern::Range(p, p)
                }
            },
        };
        let scheme = (scheme != "*").then(|| scheme.to_ascii_lowercase());
        Ok(AllowedHost { scheme, host, port })
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Suffix(suffix) => host.ends_with(suffix.as_str()),
            HostPattern::Exact(h) => h == host,
            HostPattern::Range(range) => host.parse::<IpAddr>().is_ok_and(|ip| range.contains(&ip)),
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Default => Some(port) == default_port(self.scheme.as_deref().unwrap_or(scheme)),
            PortPattern::Range(a, b) => (a..=b).contains(&port),
        };
        scheme_ok && host_ok && port_ok
    }
}

fn parse_port(entry: &str, p: &str) -> Result<u16> {
    p.parse().map_err(|_| anyhow::anyhow!("`{entry}`: `{p}` is not a port"))
}

/// The port an entry without one means, by scheme (as in Spin).
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "redis" => Some(6379),
        "rediss" => Some(6380),
        "mqtt" => Some(1883),
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        _ => None,
    }
}

/// A component's outbound permissions.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

impl AllowedHosts {
    pub fn parse(entries: &[String]) -> Result<Self> {
        let parse = |entry: &String| {
            AllowedHost::parse(entry).map_err(|e| match entry.rsplit_once('@') {
                // A Redis address with a password may come here through a
                // variable: the message shows only what follows the userinfo.
                Some((_, host)) => anyhow::anyhow!(
                    "`…@{host}` is not an allowed host: scheme://host[:port], without user or password"
                ),
                None => e,
            })
        };
        Ok(AllowedHosts { entries: entries.iter().map(parse).collect::<Result<_>>()? })
    }

    /// Whether any entry allows connecting to `uri` (its scheme, host and
    /// port, or the scheme's default port).
    pub fn allows(&self, uri: &Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
        let Some(host) = uri.host() else { return false };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let Some(port) = uri.port_u16().or_else(|| default_port(&scheme)) else { return false };
        self.allows_endpoint(&scheme, &host, port)
    }

    /// Whether any entry allows `scheme` to `host:port`.
    pub fn allows_endpoint(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.entries.iter().any(|e| e.allows(scheme, host, port))
    }

    /// Whether a `wasi:sockets` TCP connection to `addr` is allowed: the
    /// address is matched as a `tcp://` URL, so a name in an entry never
    /// matches an IP the guest connects to (as in Spin).
    pub fn allows_tcp(&self, addr: SocketAddr) -> bool {
        self.allows_endpoint("tcp", &addr.ip().to_string(), addr.port())
    }

    /// Whether the component may reach anything at all (it then also gets
    /// name lookup for its sockets).
    pub fn any(&self) -> bool {
        !self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn allows(entries: &[&str], url: &str) -> bool {
        hosts(entries).allows(&url.parse().unwrap())
    }

    #[test]
    fn exact_origin_with_default_port() {
        assert!(allows(&["https://example.com"], "https://example.com/x"));
        assert!(!allows(&["https://example.com"], "http://example.com/x"));
        assert!(!allows(&["https://example.com"], "https://example.com:8443/x"));
        assert!(!allows(&["https://example.com"], "https://evil.com/"));
        assert!(allows(&["postgres://db.local"], "postgres://db.local"));
        assert!(allows(&["mqtt://broker"], "mqtt://broker:1883"));
    }

    #[test]
    fn wildcards() {
        assert!(allows(&["*://*:*"], "http://anything:1234/"));
        assert!(allows(&["http://*.spin.internal"], "http://catalog.spin.internal/api"));
        assert!(!allows(&["http://*.spin.internal"], "http://spin.internal/api"));
        assert!(allows(&["http://127.0.0.1:*"], "http://127.0.0.1:9999/"));
        assert!(allows(&["http://localhost:3000..3010"], "http://localhost:3005/"));
        assert!(!allows(&["http://localhost:3000..3010"], "http://localhost:3011/"));
    }

    #[test]
    fn ip_ranges() {
        let range = hosts(&["*://127.0.0.0/24:7000"]);
        assert!(range.allows_tcp("127.0.0.1:7000".parse().unwrap()));
        assert!(range.allows_tcp("127.0.0.255:7000".parse().unwrap()));
        assert!(!range.allows_tcp("127.0.1.1:7000".parse().unwrap()));
        assert!(!range.allows_tcp("127.0.0.1:7001".parse().unwrap()));
        assert!(!range.allows(&"http://localhost:7000/".parse().unwrap()));
        let v6 = hosts(&["tcp://[::1/128]:*"]);
        assert!(v6.allows_tcp("[::1]:5".parse().unwrap()));
        assert!(!v6.allows_tcp("127.0.0.1:5".parse().unwrap()));
    }

    #[test]
    fn sockets_match_the_ip_and_port_exactly() {
        let only = hosts(&["*://127.0.0.2:6001"]);
        assert!(!only.allows_tcp("127.0.0.1:6001".parse().unwrap()));
        assert!(only.allows_tcp("127.0.0.2:6001".parse().unwrap()));
        assert!(!hosts(&["*://127.0.0.1:6002"]).allows_tcp("127.0.0.1:6001".parse().unwrap()));
        // A name is not resolved to match an address.
        assert!(!hosts(&["tcp://localhost:6001"]).allows_tcp("127.0.0.1:6001".parse().unwrap()));
        // No default port for tcp.
        assert!(!hosts(&["tcp://127.0.0.1"]).allows_tcp("127.0.0.1:80".parse().unwrap()));
    }

    #[test]
    fn nothing_allowed_by_default() {
        assert!(!allows(&[], "http://catalog.spin.internal/"));
        assert!(!AllowedHosts::default().allows_tcp("127.0.0.1:1".parse().unwrap()));
    }

    #[test]
    fn malformed_entries_are_refused() {
        assert!(AllowedHost::parse("example.com").is_err());
        assert!(AllowedHost::parse("https://example.com/path").is_err());
        assert!(AllowedHost::parse("https://ex*ample.com").is_err());
        assert!(AllowedHost::parse("https://example.com:http").is_err());
        assert!(AllowedHost::parse("tcp://127.0.0.0/33:1").is_err());
    }
}
