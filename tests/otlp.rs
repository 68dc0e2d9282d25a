//! A span collector: an OTLP/HTTP receiver (`POST /v1/traces`, protobuf,
//! decoded with the opentelemetry-proto crate) that keeps every span it is
//! sent, for the tests' assertions and `cargo xtask trace`, and draws one
//! trace as a waterfall.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use prost::Message;
use serde_json::{Value, json};

/// One span as received, flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// `server`, `client`, `producer`, `consumer` or `internal`.
    pub kind: String,
    pub start_ns: u64,
    pub end_ns: u64,
    /// The resource's `service.name`.
    pub service: String,
    pub attributes: BTreeMap<String, String>,
    /// `ok`, `error` or `unset`.
    pub status: String,
}

impl Span {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    pub fn duration_ms(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e6
    }

    pub fn to_json(&self) -> Value {
        json!({
            "trace_id": self.trace_id, "span_id": self.span_id, "parent_span_id": self.parent_span_id,
            "name": self.name, "kind": self.kind, "start_ns": self.start_ns, "end_ns": self.end_ns,
            "service": self.service, "attributes": self.attributes, "status": self.status,
        })
    }

    pub fn from_json(v: &Value) -> Option<Span> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Span {
            trace_id: s("trace_id")?,
            span_id: s("span_id")?,
            parent_span_id: s("parent_span_id").unwrap_or_default(),
            name: s("name")?,
            kind: s("kind").unwrap_or_default(),
            start_ns: v.get("start_ns")?.as_u64()?,
            end_ns: v.get("end_ns")?.as_u64()?,
            service: s("service").unwrap_or_default(),
            attributes: v
                .get("attributes")
                .and_then(Value::as_object)
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
                .unwrap_or_default(),
            status: s("status").unwrap_or_default(),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// The spans of one OTLP export request.
pub fn decode(body: &[u8]) -> Result<Vec<Span>, String> {
    let request = ExportTraceServiceRequest::decode(body).map_err(|e| format!("not an OTLP trace export: {e}"))?;
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .map(|kv| text(&kv.value))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                let kind = match span.kind {
                    1 => "internal",
                    2 => "server",
                    3 => "client",
                    4 => "producer",
                    5 => "consumer",
                    _ => "unspecified",
                };
                let status = match span.status.as_ref().map(|s| s.code) {
                    Some(1) => "ok",
                    Some(2) => "error",
                    _ => "unset",
                };
                spans.push(Span {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    kind: kind.to_string(),
                    start_ns: span.start_time_unix_nano,
                    end_ns: span.end_time_unix_nano,
                    service: service.clone(),
                    attributes: span.attributes.iter().map(|kv| (kv.key.clone(), text(&kv.value))).collect(),
                    status: status.to_string(),
                });
            }
        }
    }
    Ok(spans)
}

/// What a collector does with what it receives.
pub enum Keep {
    /// Decoded and kept in memory (the tests).
    Memory,
    /// Decoded, kept in memory and appended to a file (`cargo xtask up`).
    File(PathBuf),
    /// Neither decoded nor kept: only requests and bytes counted, into the
    /// file (`cargo xtask bench tracing`, so that what is measured is the
    /// host's export, not this collector's work on the same cores).
    Count(PathBuf),
}

/// A running receiver on a free port of 127.0.0.1; stops when dropped.
pub struct Collector {
    endpoint: String,
    spans: Arc<Mutex<Vec<Span>>>,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Collector {
    /// Listens on `addr` (`127.0.0.1:0` for any free port).
    pub fn start(addr: &str, keep: Keep) -> Result<Collector, String> {
        let server = Arc::new(tiny_http::Server::http(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?);
        let port = server.server_addr().to_ip().map(|a| a.port()).ok_or("the collector has no TCP address")?;
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let thread = {
            let (server, spans) = (server.clone(), spans.clone());
            std::thread::spawn(move || {
                let (mut requests, mut bytes) = (0u64, 0usize);
                for mut request in server.incoming_requests() {
                    let mut body = Vec::new();
                    let read = request.as_reader().read_to_end(&mut body);
                    if let (Keep::Count(path), Ok(n)) = (&keep, &read) {
                        requests += 1;
                        bytes += n;
                        let _ = std::fs::write(path, format!("{requests} requests, {bytes} bytes\n"));
                        let _ = request.respond(tiny_http::Response::from_data(ExportOk::bytes()));
                        continue;
                    }
                    let answer = match (request.method(), request.url(), read) {
                        (tiny_http::Method::Post, "/v1/traces", Ok(_)) => match decode(&body) {
                            Ok(received) => {
                                if let Keep::File(path) = &keep {
                                    append(path, &received);
                                }
                                spans.lock().unwrap_or_else(|p| p.into_inner()).extend(received);
                                tiny_http::Response::from_data(ExportOk::bytes()).with_status_code(200)
                            }
                            Err(e) => tiny_http::Response::from_string(e).with_status_code(400),
                        },
                        _ => tiny_http::Response::from_string("spans go to POST /v1/traces").with_status_code(404),
                    };
                    let _ = request.respond(answer.with_header(
                        "Content-Type: application/x-protobuf".parse::<tiny_http::Header>().expect("a valid header"),
                    ));
                }
            })
        };
        Ok(Collector { endpoint: format!("http://127.0.0.1:{port}"), spans, server, thread: Some(thread) })
    }

    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` should be.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An empty `ExportTraceServiceResponse` (all spans accepted).
struct ExportOk;

impl ExportOk {
    fn bytes() -> Vec<u8> {
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse { partial_success: None }.encode_to_vec()
    }
}

fn append(path: &Path, spans: &[Span]) {
    let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) else { return };
    let mut text = String::new();
    for span in spans {
        text.push_str(&span.to_json().to_string());
        text.push('\n');
    }
    let _ = file.write_all(text.as_bytes());
}

/// The spans a collector kept in a file.
pub fn read_kept(path: &Path) -> Result<Vec<Span>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter_map(|v| Span::from_json(&v)).collect())
}

/// The traces a business transaction (`chk_…`) took part in: those with a
/// span naming it in `shop.correlation_id`.
pub fn traces_of(spans: &[Span], correlation_id: &str) -> Vec<String> {
    let mut traces: Vec<String> = spans
        .iter()
        .filter(|s| s.attribute("shop.correlation_id") == Some(correlation_id) || s.attribute("correlation_id") == Some(correlation_id))
        .map(|s| s.trace_id.clone())
        .collect();
    traces.sort();
    traces.dedup();
    traces
}

/// One trace drawn as a waterfall: every span under its parent, with its
/// component, duration and a bar placed on the trace's time line.
pub fn waterfall(spans: &[Span], trace_id: &str) -> String {
    const WIDTH: usize = 40;
    let spans: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
    let Some(start) = spans.iter().map(|s| s.start_ns).min() else { return format!("no spans of trace {trace_id}\n") };
    let end = spans.iter().map(|s| s.end_ns).max().unwrap_or(start).max(start + 1);
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<&Span>> = HashMap::new();
    let mut roots = Vec::new();
    for s in &spans {
        if s.parent_span_id.is_empty() || !ids.contains(s.parent_span_id.as_str()) {
            roots.push(*s);
        } else {
            children.entry(s.parent_span_id.as_str()).or_default().push(*s);
        }
    }
    roots.sort_by_key(|s| s.start_ns);
    for list in children.values_mut() {
        list.sort_by_key(|s| s.start_ns);
    }
    let mut out = format!("trace {trace_id}: {} spans, {:.1} ms\n", spans.len(), (end - start) as f64 / 1e6);
    fn draw(out: &mut String, span: &Span, depth: usize, children: &HashMap<&str, Vec<&Span>>, start: u64, end: u64) {
        let scale = |t: u64| ((t.saturating_sub(start)) as f64 / (end - start) as f64 * WIDTH as f64) as usize;
        let (from, to) = (scale(span.start_ns).min(WIDTH - 1), scale(span.end_ns).min(WIDTH));
        let bar: String = (0..WIDTH).map(|i| if i >= from && i < to.max(from + 1) { '█' } else { '·' }).collect();
        let component = span.attribute("component").or(span.attribute("shop.consumer")).unwrap_or("");
        let failed = if span.status == "error" { "  FAILED" } else { "" };
        let name = format!("{}{}", "  ".repeat(depth), span.name);
        out.push_str(&format!("{bar} {:>9.2} ms  {name:<60} {component}{failed}\n", span.duration_ms()));
        for child in children.get(span.span_id.as_str()).into_iter().flatten() {
            draw(out, child, depth + 1, children, start, end);
        }
    }
    for root in roots {
        draw(&mut out, root, 0, &children, start, end);
    }
    out
}
