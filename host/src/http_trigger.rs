//! The HTTP trigger: serves the app's routes over HTTP/1.1, gives each
//! request to its component with the `spin-*` headers Spin sets, and answers
//! host-side failures (no route, a trapped or timed-out component, no free
//! instance slot) with the JSON error shape the services use.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use opentelemetry::trace::SpanContext;
use tracing::Instrument;

use crate::app::{App, LoadedComponent};
use crate::routes::RouteMatch;
use crate::telemetry::{self, Headers, Invocation, metrics};

/// What the `spin-*` headers describe: the route that matched.
struct RouteHeaders {
    matched_route: String,
    raw_route: String,
    component_route: String,
    path_info: String,
    params: Vec<(String, String)>,
}

impl RouteHeaders {
    fn from_match(m: &RouteMatch<'_>) -> Self {
        RouteHeaders {
            matched_route: m.route.pattern.raw().to_string(),
            raw_route: m.route.pattern.raw().to_string(),
            component_route: m.route.pattern.prefix().to_string(),
            path_info: m.path_info.clone(),
            params: m.params.clone(),
        }
    }

    /// Service chaining addresses a component directly, as if by `/...`.
    fn chained(path: &str) -> Self {
        RouteHeaders {
            matched_route: "/...".into(),
            raw_route: "/...".into(),
            component_route: String::new(),
            path_info: path.to_string(),
            params: Vec::new(),
        }
    }

    fn apply<B>(&self, req: &mut Request<B>, client: SocketAddr) {
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
            .to_string();
        let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
        let mut set = |name: &str, value: &str| {
            if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                req.headers_mut().insert(n, v);
            }
        };
        set("spin-full-url", &format!("http://{host}{path_and_query}"));
        set("spin-path-info", &self.path_info);
        set("spin-matched-route", &self.matched_route);
        set("spin-base-path", "/");
        set("spin-raw-component-route", &self.raw_route);
        set("spin-component-route", &self.component_route);
        set("spin-client-addr", &client.to_string());
        for (name, value) in &self.params {
            set(&format!("spin-path-match-{}", name.to_ascii_lowercase().replace('_', "-")), value);
        }
    }
}

/// Request bodies a component did not read are still read to their end (up
/// to this much, for this long) and dropped, so that a client that sends the
/// whole body before reading the answer gets, say, the component's 413
/// instead of a connection reset.
const DRAIN_LIMIT: usize = 64 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(30);

/// A request body that, dropped unfinished, is drained in the background.
struct DrainOnDrop<B: Body<Data = Bytes> + Send + Unpin + 'static> {
    inner: Option<B>,
}

impl<B: Body<Data = Bytes> + Send + Unpin + 'static> Body for DrainOnDrop<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, B::Error>>> {
        match self.inner.as_mut() {
            Some(inner) => std::pin::Pin::new(inner).poll_frame(cx),
            None => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.as_ref().map(Body::size_hint).unwrap_or_default()
    }
}

impl<B: Body<Data = Bytes> + Send + Unpin + 'static> Drop for DrainOnDrop<B> {
    fn drop(&mut self) {
        let Some(mut body) = self.inner.take() else { return };
        if body.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let drain = async {
                let mut read = 0;
                while let Some(Ok(frame)) = body.frame().await {
                    read += frame.data_ref().map_or(0, Bytes::len);
                    if read > DRAIN_LIMIT {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
        });
    }
}

/// Serves until `shutdown` resolves.
pub async fn serve(app: Arc<App>, listener: TcpListener, shutdown: impl Future<Output = ()>) -> Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving.
                    tracing::warn!("accept failed: {e}");
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let app = app.clone();
                let req = req.map(|body| DrainOnDrop { inner: Some(body) });
                async move { Ok::<_, std::convert::Infallible>(app.handle(req, client).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("connection from {client} ended: {e}");
            }
        });
    }
}

impl App {
    /// Answers one request from a client.
    pub async fn handle<B>(self: &Arc<Self>, mut req: Request<B>, client: SocketAddr) -> Response<HyperOutgoingBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let Some(matched) = self.router.route(&path) else {
            let response = error_response(StatusCode::NOT_FOUND, "not_found", &format!("no route for {path}"));
            log_request(&method, &path, "-", response.status(), started);
            return response;
        };
        let component_id = matched.route.component.clone();
        let route = matched.route.pattern.raw().to_string();
        let headers = RouteHeaders::from_match(&matched);
        if !req.headers().contains_key(http::header::HOST) {
            req.headers_mut().insert(http::header::HOST, HeaderValue::from_static("localhost"));
        }
        headers.apply(&mut req, client);
        let run = Invocation::start(request_span(&method, &route, &path, &component_id, false), telemetry::extract(&Headers(req.headers())));
        let response = match self.component(&component_id) {
            None => error_response(StatusCode::INTERNAL_SERVER_ERROR, "component_missing", "route has no component"),
            Some(component) => match self.admission.turn().await {
                Ok(turn) => self.invoke(&component, req, &run, turn).instrument(run.span.clone()).await,
                Err(waited) => {
                    tracing::warn!(component = %component_id, "no turn to run within {} s; answered 503", waited.as_secs_f64());
                    error_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "overloaded",
                        &format!("the host had no turn to run the request within {} s; retry shortly", waited.as_secs_f64()),
                    )
                }
            },
        };
        self.finish_request(&run, &method, &path, &component_id, response.status(), started);
        response
    }

    /// Service chaining: `component` answers `req` in-process, in the
    /// caller's trace (`outer`). `None` if the app has no such component.
    pub async fn chain(self: &Arc<Self>, component: &str, mut req: Request<WasiBody>, outer: &SpanContext) -> Option<Response<WasiBody>> {
        let component = self.component(component)?;
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        // The chaining host name is an address inside the host, not a
        // header the callee should see.
        req.headers_mut().remove(http::header::HOST);
        RouteHeaders::chained(&path).apply(&mut req, SocketAddr::from(([127, 0, 0, 1], 0)));
        let run = Invocation::nested(request_span(&method, "/...", &path, &component.id, true), outer);
        let response = self.invoke(&component, req, &run, None).instrument(run.span.clone()).await;
        self.finish_request(&run, &method, &format!("{path} (chained)"), &component.id, response.status(), started);
        Some(response)
    }

    fn finish_request(&self, run: &Invocation, method: &http::Method, path: &str, component: &str, status: StatusCode, started: Instant) {
        run.span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            run.span.record("otel.status_code", "ERROR");
        }
        if let Some(m) = metrics::get() {
            m.ran(component, "http", status.as_u16(), started.elapsed());
        }
        run.span.in_scope(|| log_request(method, path, component, status, started));
    }

    /// Runs one fresh instance of `component` on `req`; `turn` (a client
    /// request's) is held until the guest has finished, body included.
    async fn invoke<B>(
        self: &Arc<Self>,
        component: &LoadedComponent,
        req: Request<B>,
        run: &Invocation,
        turn: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Response<HyperOutgoingBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        // Its own concurrency limit: over it, this request alone is turned away.
        let permit = match &component.slots {
            None => None,
            Some((max, slots)) => match slots.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    tracing::warn!(
                        component = %component.id,
                        "component `{}` is at its limit of {max} concurrent instances (tool.shop-host max_concurrent_instances); answered 503",
                        component.id
                    );
                    return error_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "overloaded",
                        &format!("component `{}` is at its limit of {max} concurrent instances; retry shortly", component.id),
                    );
                }
            },
        };
        let mut store = match self.new_component_store(component, run) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(component = %component.id, "cannot prepare an instance: {e:#}");
                return error_response(StatusCode::INTERNAL_SERVER_ERROR, "host_error", "cannot prepare the component");
            }
        };
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let prepared = (|| -> wasmtime::Result<_> {
            let req = store.data_mut().http().new_incoming_request(Scheme::Http, req)?;
            let out = store.data_mut().http().new_response_outparam(sender)?;
            Ok((req, out))
        })();
        let (req, out) = match prepared {
            Ok(p) => p,
            Err(e) => {
                return error_response(StatusCode::BAD_REQUEST, "bad_request", &format!("unreadable request: {e}"));
            }
        };
        let Some(pre) = component.http.clone() else {
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, "host_error", "component has no HTTP export");
        };
        let id = component.id.clone();
        let memory_refused = store.data().memory_refused();
        // The guest runs in its own task: it may keep streaming the body
        // after the head of the response has gone out.
        let task = tokio::spawn(
            async move {
            let result = async {
                let proxy = instantiate(&id, pre.instantiate_async(&mut store)).await?;
                proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
            }
            .await;
            drop(permit);
            drop(turn);
            if let Err(e) = &result {
                tracing::warn!(component = %id, "component failed: {e:?}");
            }
            result
        }
            .instrument(run.span.clone()),
        );
        match receiver.await {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "component_error",
                &format!("component `{}` answered with an error: {code:?}", component.id),
            ),
            Err(_) => match task.await {
                Ok(Ok(())) => error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "no_response",
                    &format!("component `{}` returned without a response", component.id),
                ),
                Ok(Err(e)) => failure_response(component, &e, memory_refused.load(std::sync::atomic::Ordering::Relaxed)),
                Err(_) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "host_error", "the request task failed"),
            },
        }
    }
}

/// Maps a failed instance to the answer the client gets; a limit it hit
/// is named, in the answer and in the log.
fn failure_response(component: &LoadedComponent, e: &wasmtime::Error, memory_refused: bool) -> Response<HyperOutgoingBody> {
    let limits = &component.limits;
    let component = component.id.as_str();
    if matches!(e.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt)) {
        let seconds = limits.request_timeout.as_secs_f64();
        tracing::warn!(component = %component, "component `{component}` exceeded its time limit of {seconds} s (request_timeout_secs)");
        return error_response(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            &format!("component `{component}` exceeded the request time limit ({seconds} s)"),
        );
    }
    if memory_refused {
        let mib = limits.max_instance_memory >> 20;
        tracing::warn!(component = %component, "component `{component}` exceeded its memory limit of {mib} MiB (max_instance_memory_mib)");
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "memory_limit_exceeded",
            &format!("component `{component}` needed more than its memory limit ({mib} MiB)"),
        );
    }
    let text = format!("{e:?}");
    if text.contains("concurrent") && text.contains("limit") {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "no free instance slot; retry shortly",
        );
    }
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "component_failed",
        &format!("component `{component}` failed while handling the request"),
    )
}

pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response<HyperOutgoingBody> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync())
        .expect("static response parts are valid")
}

/// The span of one HTTP request, named as Spin names it (`GET /api/...`).
fn request_span(method: &http::Method, route: &str, path: &str, component: &str, chained: bool) -> tracing::Span {
    tracing::info_span!(
        target: "shop_host::span",
        "request",
        "otel.name" = %format_args!("{method} {route}"),
        "otel.kind" = "server",
        "otel.status_code" = tracing::field::Empty,
        "http.request.method" = %method,
        "http.route" = route,
        "url.path" = path,
        "http.response.status_code" = tracing::field::Empty,
        "shop.chained" = chained,
        component,
        trigger = "http",
        trace_id = tracing::field::Empty,
        correlation_id = tracing::field::Empty,
    )
}

/// Instantiates, timing it for the metrics.
pub async fn instantiate<T>(component: &str, instantiating: impl Future<Output = wasmtime::Result<T>>) -> wasmtime::Result<T> {
    let started = Instant::now();
    let instance = instantiating.await?;
    if let Some(m) = metrics::get() {
        m.instantiation_seconds.with_label_values(&[component]).observe(started.elapsed().as_secs_f64());
    }
    Ok(instance)
}

fn log_request(method: &http::Method, path: &str, component: &str, status: StatusCode, started: Instant) {
    tracing::info!(
        target: "shop_host::request",
        "{method} {path} -> {component} {} {:.3}ms",
        status.as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
}
