//! Outbound HTTP (`wasi:http/outgoing-handler`), limited to the component's
//! `allowed_outbound_hosts`, with Spin's service chaining: a request to
//! `http://<component>.spin.internal/...` is answered in-process by that
//! component, never leaving the host.

use tracing::Instrument;
use std::sync::Arc;

use anyhow::{Result, bail};
use http::Uri;
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::app::App;

const CHAINING_SUFFIX: &str = ".spin.internal";

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com` matches `a.example.com` (held as `.example.com`).
    Suffix(String),
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    /// No port written: the scheme's default.
    Default,
    Range(u16, u16),
}

/// One `allowed_outbound_hosts` entry: `scheme://host[:port]`, where each
/// part may be `*`, the host may be `*.domain`, and the port a range `a..b`.
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
        if rest.contains('/') {
            bail!("`{entry}` must not have a path");
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
            _ => (rest, None),
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

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "redis" => Some(6379),
        "rediss" => Some(6380),
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
            AllowedHost::parse(entry).map_err(|e| match entry.contains('@') {
                // A Redis address with a password may come here through a
                // variable: the message must not show the password.
                true => anyhow::anyhow!(
                    "`{}` is not an allowed host: scheme://host[:port], without user or password",
                    crate::redis::redact(entry)
                ),
                false => e,
            })
        };
        Ok(AllowedHosts { entries: entries.iter().map(parse).collect::<Result<_>>()? })
    }

    pub fn allows(&self, uri: &Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
        let Some(host) = uri.host() else { return false };
        let host = host.to_ascii_lowercase();
        let Some(port) = uri.port_u16().or_else(|| default_port(&scheme)) else { return false };
        self.entries.iter().any(|e| e.allows(&scheme, &host, port))
    }
}

/// The component a service-chaining URL names, if it is one.
fn chained_component(uri: &Uri) -> Option<String> {
    uri.host()?
        .to_ascii_lowercase()
        .strip_suffix(CHAINING_SUFFIX)
        .map(String::from)
}

/// The outbound side of one instance.
pub struct OutboundHttp {
    pub app: Arc<App>,
    pub component: String,
    pub allowed: Arc<AllowedHosts>,
    /// The trace context of the instance, for chained requests.
    pub outer: opentelemetry::trace::SpanContext,
}

type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>> + Send>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let uri = request.uri().clone();
        if !self.allowed.allows(&uri) {
            tracing::warn!(
                component = %self.component,
                "outbound request to {uri} denied: add its origin to the component's allowed_outbound_hosts"
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let done: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(async { Ok(()) });
        let method = request.method().clone();
        let span = tracing::info_span!(
            target: "shop_host::span",
            "outbound request",
            "otel.name" = %method,
            "otel.kind" = "client",
            "otel.status_code" = tracing::field::Empty,
            "http.request.method" = %method,
            "url.full" = %uri,
            "http.response.status_code" = tracing::field::Empty,
            component = %self.component,
        );
        if let Some(target) = chained_component(&uri) {
            let app = self.app.clone();
            let outer = self.outer.clone();
            return Box::new(
                async move {
                    let response = app.chain(&target, request, &outer).await.ok_or(Error::DestinationNotFound)?;
                    tracing::Span::current().record("http.response.status_code", response.status().as_u16());
                    Ok((response, done))
                }
                .instrument(span),
            );
        }
        Box::new(
            async move {
                let mut request = request;
                // As Spin does: the callee continues this trace.
                crate::telemetry::inject(request.headers_mut());
                let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
                tracing::Span::current().record("http.response.status_code", response.status().as_u16());
                let io: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(io);
                Ok((response.map(BodyExt::boxed_unsync), io))
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entries: &[&str], url: &str) -> bool {
        let hosts = AllowedHosts::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        hosts.allows(&url.parse().unwrap())
    }

    #[test]
    fn exact_origin_with_default_port() {
        assert!(allows(&["https://example.com"], "https://example.com/x"));
        assert!(!allows(&["https://example.com"], "http://example.com/x"));
        assert!(!allows(&["https://example.com"], "https://example.com:8443/x"));
        assert!(!allows(&["https://example.com"], "https://evil.com/"));
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
    fn nothing_allowed_by_default() {
        assert!(!allows(&[], "http://catalog.spin.internal/"));
    }

    #[test]
    fn malformed_entries_are_refused() {
        assert!(AllowedHost::parse("example.com").is_err());
        assert!(AllowedHost::parse("https://example.com/path").is_err());
        assert!(AllowedHost::parse("https://ex*ample.com").is_err());
        assert!(AllowedHost::parse("https://example.com:http").is_err());
    }

    #[test]
    fn chaining_host_names_the_component() {
        assert_eq!(chained_component(&"http://catalog.spin.internal/a".parse().unwrap()).as_deref(), Some("catalog"));
        assert_eq!(chained_component(&"http://example.com/a".parse().unwrap()), None);
    }
}
