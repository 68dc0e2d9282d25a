//! `wasi:otel/tracing`: the spans a component makes itself (a saga step,
//! an event consumed), as Spin gives them with `--experimental-wasi-otel`.
//!
//! The component names its spans' ids and parents; the host only checks
//! them, hands ended spans to the same exporter as its own, and answers
//! `outer-span-context` with the invocation's span, so the component's
//! spans nest inside it. A span carrying the attribute
//! `shop.correlation_id` lends that id to the invocation's log lines.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks, SpanProcessor};
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::otel::wasi::otel::{tracing as wit, types as wit_types};
use crate::bindings::otel::wasi::clocks::wall_clock::Datetime;

/// The exporter's batches, shared by the host's spans and the components'.
static PROCESSOR: OnceLock<Arc<dyn SpanProcessor>> = OnceLock::new();

/// A span processor both the tracer provider and [`GuestSpans`] feed.
#[derive(Debug, Clone)]
pub struct Processor(Arc<dyn SpanProcessor>);

impl Processor {
    pub fn shared(inner: impl SpanProcessor + 'static) -> Processor {
        let inner: Arc<dyn SpanProcessor> = Arc::new(inner);
        let _ = PROCESSOR.set(inner.clone());
        Processor(inner)
    }
}

impl SpanProcessor for Processor {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.0.on_start(span, cx)
    }
    fn on_end(&self, span: SpanData) {
        self.0.on_end(span)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
}

/// One instance's view: its outer span, and the spans it has open.
pub struct GuestSpans {
    outer: SpanContext,
    invocation: tracing::Span,
    open: Vec<SpanContext>,
}

/// Spans an instance may hold open at once; past this a span is dropped
/// (a component that starts spans in a loop and never ends them).
const MAX_OPEN: usize = 1024;

impl GuestSpans {
    pub fn new(outer: SpanContext, invocation: tracing::Span) -> GuestSpans {
        GuestSpans { outer, invocation, open: Vec::new() }
    }

    /// The component's innermost open span: what the host's spans for its
    /// calls (a dependency call) belong to, as in Spin.
    pub fn innermost(&self) -> Option<&SpanContext> {
        self.open.last()
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut GuestSpans,
) -> anyhow::Result<()> {
    wit::add_to_linker::<T, HasSelf<GuestSpans>>(linker, get).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    wit_types::add_to_linker::<T, HasSelf<GuestSpans>>(linker, get).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
}

impl wit_types::Host for GuestSpans {}

impl wit::Host for GuestSpans {
    fn on_start(&mut self, context: wit::SpanContext) {
        if let (Some(span_id), Ok(trace_id)) = (span_id(&context.span_id), TraceId::from_hex(&context.trace_id))
            && self.open.len() < MAX_OPEN
        {
            self.open.push(SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, true, TraceState::default()));
        }
    }

    fn on_end(&mut self, span: wit::SpanData) {
        let Some(id) = span_id(&span.span_context.span_id) else { return };
        // A span never started (or started past the limit) is not exported.
        let Some(at) = self.open.iter().rposition(|open| open.span_id() == id) else { return };
        self.open.remove(at);
        if let Some(kv) = span.attributes.iter().find(|kv| kv.key == "shop.correlation_id") {
            self.invocation.record("correlation_id", json_text(&kv.value).as_str());
        }
        // An unsampled span only lends its correlation id.
        if let Some(processor) = PROCESSOR.get()
            && span.span_context.trace_flags.contains(wit::TraceFlags::SAMPLED)
            && let Some(data) = span_data(span)
        {
            processor.on_end(data);
        }
    }

    fn outer_span_context(&mut self) -> wit::SpanContext {
        let sc = &self.outer;
        // As Spin writes them: hex numbers without their leading zeros (an
        // id starting with 0 comes a digit short), so that a component run
        // here copes with what Spin answers.
        wit::SpanContext {
            trace_id: format!("{:x}", sc.trace_id()),
            span_id: format!("{:x}", sc.span_id()),
            trace_flags: if sc.is_sampled() { wit::TraceFlags::SAMPLED } else { wit::TraceFlags::empty() },
            is_remote: false,
            trace_state: Vec::new(),
        }
    }
}

fn span_id(hex: &str) -> Option<SpanId> {
    SpanId::from_hex(hex).ok().filter(|id| *id != SpanId::INVALID)
}

/// An attribute value: JSON (the AnyValue encoding of wasi:otel), read as
/// the scalar it holds, or kept as its text.
fn attribute(value: &str) -> Value {
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(serde_json::Value::String(s)) => Value::from(s),
        Ok(serde_json::Value::Bool(b)) => Value::from(b),
        Ok(serde_json::Value::Number(n)) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64().unwrap_or_default()),
        },
        _ => Value::from(value.to_string()),
    }
}

fn json_text(value: &str) -> String {
    match attribute(value) {
        Value::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

fn time(d: Datetime) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(d.seconds, d.nanoseconds.min(999_999_999))
}

fn attributes(list: Vec<wit_types::KeyValue>) -> Vec<KeyValue> {
    list.into_iter().map(|kv| KeyValue::new(kv.key, attribute(&kv.value))).collect()
}

/// The SDK's form of a component's span; `None` when its ids are not ids.
fn span_data(span: wit::SpanData) -> Option<SpanData> {
    let trace_id = TraceId::from_hex(&span.span_context.trace_id).ok().filter(|t| *t != TraceId::INVALID)?;
    let span_id = span_id(&span.span_context.span_id)?;
    let flags = if span.span_context.trace_flags.contains(wit::TraceFlags::SAMPLED) { TraceFlags::SAMPLED } else { TraceFlags::default() };
    let state = TraceState::from_key_value(span.span_context.trace_state).unwrap_or_default();
    let scope = span.instrumentation_scope;
    let mut builder = InstrumentationScope::builder(scope.name);
    if let Some(version) = scope.version {
        builder = builder.with_version(version);
    }
    let mut events = SpanEvents::default();
    events.events = span
        .events
        .into_iter()
        .map(|e| opentelemetry::trace::Event::new(e.name, time(e.time), attributes(e.attributes), 0))
        .collect();
    events.dropped_count = span.dropped_events;
    // Links are not kept: the shop's components make none.
    let mut links = SpanLinks::default();
    links.dropped_count = span.dropped_links + span.links.len() as u32;
    Some(SpanData {
        span_context: SpanContext::new(trace_id, span_id, flags, false, state),
        parent_span_id: SpanId::from_hex(&span.parent_span_id).unwrap_or(SpanId::INVALID),
        parent_span_is_remote: false,
        span_kind: match span.span_kind {
            wit::SpanKind::Client => SpanKind::Client,
            wit::SpanKind::Server => SpanKind::Server,
            wit::SpanKind::Producer => SpanKind::Producer,
            wit::SpanKind::Consumer => SpanKind::Consumer,
            wit::SpanKind::Internal => SpanKind::Internal,
        },
        name: Cow::Owned(span.name),
        start_time: time(span.start_time),
        end_time: time(span.end_time),
        attributes: attributes(span.attributes),
        dropped_attributes_count: span.dropped_attributes,
        events,
        links,
        status: match span.status {
            wit::Status::Unset => Status::Unset,
            wit::Status::Ok => Status::Ok,
            wit::Status::Error(description) => Status::error(description),
        },
        instrumentation_scope: builder.build(),
    })
}
