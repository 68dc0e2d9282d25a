//! Spans of the services' own work — a saga step, an event consumed or
//! published — through `wasi:otel/tracing`, which Spin (`spin up
//! --experimental-wasi-otel`) and shop-host give components. The runtime
//! exports them with its own spans when an OTLP endpoint is set, and drops
//! them otherwise.
//!
//! A span's parent is the innermost span this instance has open, or the
//! runtime's span for the run (`outer-span-context`). An event carries the
//! `traceparent` of the span that decided it (docs/events.md), and
//! [`Span::continuing`] makes its consumer's span a child of that one, so one
//! trace follows a checkout through every service its events reach.
//!
//! Natively (the domain unit tests), and in a build without the `otel`
//! feature (for Spin's trigger-cron plugin, which has no wasi:otel), spans
//! do nothing.

use std::cell::RefCell;

/// What a span describes, as OpenTelemetry names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Internal,
    Producer,
    Consumer,
}

/// A trace id and span id, as hex, and whether the trace is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Context {
    trace_id: String,
    span_id: String,
    /// Unsampled (the runtime exports nothing): spans under it are not
    /// made, but its ids still go into events, for the logs.
    sampled: bool,
}

impl Context {
    fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, if self.sampled { "01" } else { "00" })
    }

    /// A `traceparent` value: `00-<32 hex>-<16 hex>-<2 hex>`.
    fn parse(traceparent: &str) -> Option<Context> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace_id, span_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let valid = version == "00"
            && parts.next().is_none()
            && hex(trace_id, 32)
            && hex(span_id, 16)
            && hex(flags, 2)
            && trace_id.bytes().any(|b| b != b'0')
            && span_id.bytes().any(|b| b != b'0');
        let sampled = u8::from_str_radix(flags, 16).is_ok_and(|f| f & 1 == 1);
        valid.then(|| Context { trace_id: trace_id.to_string(), span_id: span_id.to_string(), sampled })
    }

    /// The runtime's span, as `outer-span-context` answers it; `None` when
    /// the runtime has none (all zeros). Spin 4.1 writes the ids as plain
    /// hex numbers, so an id whose first digit is 0 comes one digit short
    /// (one trace in sixteen): the leading zeros are put back.
    #[cfg_attr(not(all(target_arch = "wasm32", feature = "otel")), allow(dead_code))]
    fn runtime(trace_id: &str, span_id: &str, sampled: bool) -> Option<Context> {
        let pad = |id: &str, len: usize| (id.len() <= len).then(|| format!("{id:0>len$}"));
        let context = Context { trace_id: pad(trace_id, 32)?, span_id: pad(span_id, 16)?, sampled };
        Context::parse(&context.traceparent())
    }
}

thread_local! {
    /// The spans this instance has open, innermost last.
    static OPEN: RefCell<Vec<Context>> = const { RefCell::new(Vec::new()) };
}

/// The span that new spans and events belong to: the innermost open one,
/// or the runtime's.
fn current() -> Option<Context> {
    OPEN.with(|open| open.borrow().last().cloned()).or_else(platform::outer)
}

/// The `traceparent` an event decided now should carry.
pub fn traceparent() -> Option<String> {
    current().map(|c| c.traceparent())
}

/// A span of this instance's work; ended (and handed to the runtime) when
/// dropped.
pub struct Span {
    inner: Option<platform::Open>,
}

impl Span {
    /// A span inside the current one.
    pub fn start(name: &str, kind: Kind) -> Span {
        Span::under(current(), name, kind)
    }

    /// A span continuing `traceparent` (an event's): inside the current
    /// span when that already belongs to the same trace (the runtime joined
    /// it), else directly under the span that decided the event.
    pub fn continuing(traceparent: Option<&str>, name: &str, kind: Kind) -> Span {
        let remote = traceparent.and_then(Context::parse);
        let here = current();
        let parent = match (remote, here) {
            (Some(remote), Some(here)) if here.trace_id == remote.trace_id => Some(here),
            (Some(remote), _) => Some(remote),
            (None, here) => here,
        };
        Span::under(parent, name, kind)
    }

    /// The span of one business transaction (a checkout), named by its
    /// correlation id: made even when the trace is not recorded, so that
    /// the runtime can put the id on its log lines (shop-host does; it
    /// exports the span only when the trace is sampled).
    pub fn transaction(name: &str, correlation_id: &str) -> Span {
        let mut span = match current() {
            Some(parent) => Span::open(&parent, name, Kind::Internal),
            None => Span { inner: None },
        };
        span.attribute("shop.correlation_id", correlation_id);
        span
    }

    fn under(parent: Option<Context>, name: &str, kind: Kind) -> Span {
        match parent.filter(|p| p.sampled) {
            Some(parent) => Span::open(&parent, name, kind),
            None => Span { inner: None },
        }
    }

    fn open(parent: &Context, name: &str, kind: Kind) -> Span {
        let open = platform::start(parent, name, kind);
        if let Some(open) = &open {
            OPEN.with(|stack| stack.borrow_mut().push(open.context.clone()));
        }
        Span { inner: open }
    }

    /// Adds an attribute (shown in the trace).
    pub fn attribute(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        if let Some(open) = &mut self.inner {
            open.attributes.push((key.to_string(), value.into().to_string()));
        }
    }

    /// Marks the span failed, with why.
    pub fn fail(&mut self, why: &str) {
        if let Some(open) = &mut self.inner {
            open.error = Some(why.to_string());
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(open) = self.inner.take() {
            OPEN.with(|stack| {
                let mut stack = stack.borrow_mut();
                if let Some(at) = stack.iter().rposition(|c| *c == open.context) {
                    stack.remove(at);
                }
            });
            platform::end(open);
        }
    }
}

#[cfg(all(target_arch = "wasm32", feature = "otel"))]
mod platform {
    use super::{Context, Kind};

    wit_bindgen::generate!({
        inline: "
            package shop:shared-otel;
            world otel {
                import wasi:otel/tracing@0.2.0-rc.2;
            }
        ",
        path: "../../wit/wasi-otel",
        generate_all,
    });

    use self::wasi::clocks::wall_clock::{self, Datetime};
    use self::wasi::otel::tracing as wit;
    use self::wasi::otel::types::{InstrumentationScope, KeyValue};

    pub struct Open {
        pub context: Context,
        parent: Context,
        name: String,
        kind: Kind,
        start: Datetime,
        pub attributes: Vec<(String, String)>,
        pub error: Option<String>,
    }

    fn wit_context(c: &Context) -> wit::SpanContext {
        wit::SpanContext {
            trace_id: c.trace_id.clone(),
            span_id: c.span_id.clone(),
            trace_flags: if c.sampled { wit::TraceFlags::SAMPLED } else { wit::TraceFlags::empty() },
            is_remote: false,
            trace_state: Vec::new(),
        }
    }

    pub fn outer() -> Option<Context> {
        let outer = wit::outer_span_context();
        Context::runtime(&outer.trace_id, &outer.span_id, outer.trace_flags.contains(wit::TraceFlags::SAMPLED))
    }

    pub fn start(parent: &Context, name: &str, kind: Kind) -> Option<Open> {
        let bytes = crate::id::random::<8>();
        let span_id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let context = Context { trace_id: parent.trace_id.clone(), span_id, sampled: parent.sampled };
        wit::on_start(&wit_context(&context));
        Some(Open {
            context,
            parent: parent.clone(),
            name: name.to_string(),
            kind,
            start: wall_clock::now(),
            attributes: Vec::new(),
            error: None,
        })
    }

    pub fn end(open: Open) {
        let end = wall_clock::now();
        wit::on_end(&wit::SpanData {
            span_context: wit_context(&open.context),
            parent_span_id: open.parent.span_id,
            span_kind: match open.kind {
                Kind::Internal => wit::SpanKind::Internal,
                Kind::Producer => wit::SpanKind::Producer,
                Kind::Consumer => wit::SpanKind::Consumer,
            },
            name: open.name,
            start_time: open.start,
            end_time: end,
            attributes: open.attributes.into_iter().map(|(key, value)| KeyValue { key, value }).collect(),
            events: Vec::new(),
            links: Vec::new(),
            status: match open.error {
                Some(why) => wit::Status::Error(why),
                None => wit::Status::Ok,
            },
            instrumentation_scope: InstrumentationScope {
                name: "shop".to_string(),
                version: None,
                schema_url: None,
                attributes: Vec::new(),
            },
            dropped_attributes: 0,
            dropped_events: 0,
            dropped_links: 0,
        });
    }
}

#[cfg(not(all(target_arch = "wasm32", feature = "otel")))]
mod platform {
    use super::{Context, Kind};

    pub struct Open {
        pub context: Context,
        pub attributes: Vec<(String, String)>,
        pub error: Option<String>,
    }

    pub fn outer() -> Option<Context> {
        None
    }

    pub fn start(_: &Context, _: &str, _: Kind) -> Option<Open> {
        None
    }

    pub fn end(_: Open) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_are_checked() {
        let c = Context::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").expect("valid");
        assert_eq!(c.traceparent(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        assert!(Context::parse("00-00000000000000000000000000000000-b7ad6b7169203331-01").is_none());
        assert!(Context::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033-01").is_none());
        assert!(Context::parse("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01").is_none());
        assert!(Context::parse("garbage").is_none());
    }

    #[test]
    fn an_unsampled_context_keeps_its_flag() {
        let c = Context::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00").expect("valid");
        assert!(!c.sampled);
        assert!(c.traceparent().ends_with("-00"));
        assert!(Context::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").expect("valid").sampled);
    }

    #[test]
    fn the_runtimes_span_gets_back_the_leading_zeros_spin_drops() {
        let c = Context::runtime("14f57d12fc51cab8122057c7a303a10", "bec03e34d9ccdb9f", true).expect("valid");
        assert_eq!(c.traceparent(), "00-014f57d12fc51cab8122057c7a303a10-bec03e34d9ccdb9f-01");
        let c = Context::runtime("0af7651916cd43dd8448eb211c80319c", "7ad6b7169203331", false).expect("valid");
        assert_eq!(c.traceparent(), "00-0af7651916cd43dd8448eb211c80319c-07ad6b7169203331-00");
        // No span (tracing off): zeros, written either way.
        assert!(Context::runtime("0", "0", false).is_none());
        assert!(Context::runtime("00000000000000000000000000000000", "0000000000000000", false).is_none());
        // Too long or not hex: not a span.
        assert!(Context::runtime("10af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", true).is_none());
        assert!(Context::runtime("", "b7ad6b7169203331", true).is_none());
        assert!(Context::runtime("0af7651916cd43dd8448eb211c8031xz", "b7ad6b7169203331", true).is_none());
    }

    #[test]
    fn natively_spans_do_nothing() {
        let mut span = Span::continuing(Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), "x", Kind::Consumer);
        span.attribute("k", "v");
        drop(span);
        assert_eq!(traceparent(), None);
    }
}
