//! Outbound HTTP (`wasi:http/outgoing-handler`), limited to the component's
//! `allowed_outbound_hosts`, with Spin's service chaining: a request to
//! `http://<component>.spin.internal/...` is answered in-process by that
//! component, never leaving the host.

use tracing::Instrument;
use std::sync::Arc;

use http::Uri;
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::allowed_hosts::AllowedHosts;
use crate::app::App;

const CHAINING_SUFFIX: &str = ".spin.internal";

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

    #[test]
    fn chaining_host_names_the_component() {
        assert_eq!(chained_component(&"http://catalog.spin.internal/a".parse().unwrap()).as_deref(), Some("catalog"));
        assert_eq!(chained_component(&"http://example.com/a".parse().unwrap()), None);
    }
}
