//! What the host tells about itself: log lines (human or JSON), traces
//! (OpenTelemetry over OTLP/HTTP, configured by the same environment
//! variables Spin reads) and Prometheus metrics (`--metrics-listen`).
//!
//! Every trigger run is one span (`invocation`), and everything the host
//! does for it — a dependency call, a chained or outbound request, a SQLite
//! statement, a key-value or Redis call — is a span inside it. Components
//! add their own (saga steps, event consumers) through `wasi:otel/tracing`
//! ([`guest`]). With no OTLP endpoint set nothing is exported, and the
//! spans cost what a disabled `tracing` span costs; the invocation still
//! gets a trace id of its own, so log lines and events can be tied
//! together without a collector.

pub mod guest;
pub mod metrics;

use std::sync::OnceLock;

use anyhow::{Context as _, Result};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracerProvider, SpanProcessor as _};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event (the default).
    Human,
    /// One JSON object per line, with the invocation's trace id, component
    /// and correlation id.
    Json,
}

/// The span exporter's pipeline; flushed when dropped.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

static EXPORTING: OnceLock<bool> = OnceLock::new();
static LOG_FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Whether spans are exported (an OTLP endpoint is set).
pub fn exporting() -> bool {
    EXPORTING.get().copied().unwrap_or(false)
}

pub fn log_format() -> LogFormat {
    LOG_FORMAT.get().copied().unwrap_or(LogFormat::Human)
}

/// Whether the environment asks for traces, as Spin decides it: an OTLP
/// endpoint (general or for traces) is set and the SDK is not disabled.
fn traces_wanted() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Installs the log subscriber and, when the environment asks for it, the
/// span exporter. Called once, inside the tokio runtime (the exporter
/// batches on it).
pub fn init(format: LogFormat) -> Result<Telemetry> {
    let _ = LOG_FORMAT.set(format);
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("SHOP_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn"))
    };
    // Lines are events; spans only lend them their fields (JSON).
    let lines = match format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(filter().add_directive("shop_host::span=off".parse()?))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed(),
    };
    let provider = if traces_wanted() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .context("cannot set up the OTLP span exporter (OTEL_EXPORTER_OTLP_* variables)")?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("shop-host");
        }
        let resource = resource.build();
        let mut processor = opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
        processor.set_resource(&resource);
        // The components' own spans go to the same batches (`guest`).
        let processor = guest::Processor::shared(processor);
        Some(SdkTracerProvider::builder().with_span_processor(processor).with_resource(resource).build())
    } else {
        None
    };
    let _ = EXPORTING.set(provider.is_some());
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let spans = provider.as_ref().map(|p| {
        // Only the span's own fields: no source location, thread or
        // busy/idle timing per span (each is attributes and clock reads
        // on every span, thousands per second under load).
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("shop-host"))
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_target(false)
            .with_filter(tracing_subscriber::filter::Targets::new().with_target("shop_host::span", tracing::Level::TRACE))
    });
    tracing_subscriber::registry().with(lines).with(spans).init();
    if let Some(p) = &provider {
        opentelemetry::global::set_tracer_provider(p.clone());
    }
    Ok(Telemetry { provider })
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.force_flush();
            let _ = provider.shutdown();
        }
    }
}

/// The W3C trace context of a carrier (request headers, an event).
pub fn extract(carrier: &dyn opentelemetry::propagation::Extractor) -> Option<SpanContext> {
    let cx = TraceContextPropagator::new().extract(carrier);
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// The `traceparent` header value of a span context.
pub fn traceparent(sc: &SpanContext) -> String {
    format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8())
}

/// A `traceparent` value, read.
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    struct One<'a>(&'a str);
    impl opentelemetry::propagation::Extractor for One<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            (key == "traceparent").then_some(self.0)
        }
        fn keys(&self) -> Vec<&str> {
            vec!["traceparent"]
        }
    }
    extract(&One(value))
}

/// Request headers as a trace-context carrier.
pub struct Headers<'a>(pub &'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Puts the current span's `traceparent` on an outgoing request, as Spin
/// does for outbound HTTP.
pub fn inject(headers: &mut http::HeaderMap) {
    let sc = tracing::Span::current().context().span().span_context().clone();
    if sc.is_valid()
        && let Ok(value) = http::HeaderValue::try_from(traceparent(&sc))
    {
        headers.insert("traceparent", value);
    }
}

/// One trigger run: the span everything the host does for it nests in,
/// and the trace context a component sees as its outer span.
pub struct Invocation {
    pub span: tracing::Span,
    pub context: SpanContext,
}

impl Invocation {
    /// Starts the run's span `span` under `parent` (a context that came
    /// with the request or the event), or under the current span.
    pub fn start(span: tracing::Span, parent: Option<SpanContext>) -> Invocation {
        if let Some(parent) = &parent {
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent.clone()));
        }
        let context = if exporting() {
            span.context().span().span_context().clone()
        } else {
            // Nothing is exported, but the run still gets ids of its own
            // (continuing the caller's trace), for the logs and the events;
            // not sampled, so components make no spans of their own.
            let ids = RandomIdGenerator::default();
            let trace_id = parent.as_ref().map_or_else(|| ids.new_trace_id(), SpanContext::trace_id);
            SpanContext::new(trace_id, ids.new_span_id(), TraceFlags::default(), false, TraceState::default())
        };
        span.record("trace_id", tracing::field::display(context.trace_id()));
        Invocation { span, context }
    }

    /// A run in `span`, which already has its parent (a dependency call).
    pub fn within(span: tracing::Span, outer: &SpanContext) -> Invocation {
        let context = if exporting() {
            span.context().span().span_context().clone()
        } else {
            SpanContext::new(outer.trace_id(), RandomIdGenerator::default().new_span_id(), outer.trace_flags(), false, TraceState::default())
        };
        Invocation { span, context }
    }

    /// A run inside another one (a chained request): the same trace.
    pub fn nested(span: tracing::Span, outer: &SpanContext) -> Invocation {
        let parent = tracing::Span::current().context().span().span_context().clone();
        let parent = if parent.is_valid() { parent } else { outer.clone() };
        Invocation::start(span, Some(parent))
    }
}

/// A client span for one call to a database (`sqlite`, `postgresql`,
/// `redis`): named `<system> <OPERATION>[ <namespace>]`, never with the
/// statement or its keys.
pub fn database_span(system: &str, operation: &str, namespace: &str) -> tracing::Span {
    let span = tracing::info_span!(
        target: "shop_host::span",
        "database",
        "otel.name" = %format_args!("{system} {operation}{}{namespace}", if namespace.is_empty() { "" } else { " " }),
        "otel.kind" = "client",
        "otel.status_code" = tracing::field::Empty,
        "db.system.name" = system,
        "db.namespace" = tracing::field::Empty,
        "db.operation.name" = operation,
    );
    if !namespace.is_empty() {
        span.record("db.namespace", namespace);
    }
    span
}

/// A producer span for one message sent (`redis`, `mqtt`): named
/// `<destination> publish`, as OpenTelemetry's messaging conventions have it.
pub fn publish_span(system: &str, destination: &str) -> tracing::Span {
    tracing::info_span!(
        target: "shop_host::span",
        "publish",
        "otel.name" = %format_args!("{destination} publish"),
        "otel.kind" = "producer",
        "otel.status_code" = tracing::field::Empty,
        "messaging.system" = system,
        "messaging.operation.type" = "send",
        "messaging.destination.name" = destination,
    )
}

/// The kind of a SQL statement, for span names: its first keyword.
pub fn statement_kind(sql: &str) -> &'static str {
    let word = sql.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
    const KINDS: &[&str] = &["SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "BEGIN", "COMMIT", "ROLLBACK", "PRAGMA", "WITH", "REPLACE", "DROP", "ALTER"];
    KINDS.iter().find(|k| k.eq_ignore_ascii_case(word)).copied().unwrap_or("OTHER")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips() {
        let value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let sc = parse_traceparent(value).expect("valid");
        assert_eq!(traceparent(&sc), value);
        assert!(parse_traceparent("00-00000000000000000000000000000000-b7ad6b7169203331-01").is_none());
        assert!(parse_traceparent("nonsense").is_none());
    }

    #[test]
    fn statements_are_named_by_their_first_keyword() {
        assert_eq!(statement_kind("  select * from t"), "SELECT");
        assert_eq!(statement_kind("INSERT INTO t VALUES (1)"), "INSERT");
        assert_eq!(statement_kind("vacuum"), "OTHER");
    }
}
