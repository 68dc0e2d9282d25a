//! The Redis trigger: every message published on a trigger's channel is
//! handed to a fresh instance of its component (`handle-message`), each in a
//! task of its own so a slow message does not hold up the next, up to
//! [`deliveries_in_flight`] per trigger; more wait their turn.
//!
//! A message whose handler fails is logged and dropped, as Spin does:
//! pub/sub has no redelivery; the producers publish again what their
//! consumers do not acknowledge (docs/events.md).
//!
//! Each real server is contacted once before subscribing. One that refuses
//! (a wrong password, a certificate that does not verify) stops the app, as
//! in Spin. One that does not answer is waited for: the subscriptions retry
//! with backoff, at start-up and whenever the server goes away (Spin stops
//! in both cases; the outboxes make waiting safe here).

use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use super::broker::Broker;
use crate::app::App;
use crate::http_trigger::instantiate;
use crate::telemetry::{self, Invocation, metrics};

/// The trace context and correlation id of a message that is a JSON
/// object with `traceparent` / `correlation_id` members (the shop's event
/// envelope; CloudEvents' distributed-tracing extension names the same
/// member). Anything else has neither.
fn event_context(message: &[u8]) -> (Option<opentelemetry::trace::SpanContext>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Context {
        traceparent: Option<String>,
        correlation_id: Option<String>,
    }
    match serde_json::from_slice::<Context>(message) {
        Ok(c) => (c.traceparent.as_deref().and_then(telemetry::parse_traceparent), c.correlation_id),
        Err(_) => (None, None),
    }
}

/// Messages of one trigger handled at once, two per core; the rest wait
/// their turn, in order. Each delivery holds an instance and a SQLite
/// connection of its consumer while it waits for the database's write
/// turn, so more at once only adds memory: on two cores, with the shop's
/// 12 triggers under 16 checkout clients, 32 per trigger kept 117 MiB
/// resident and 4 kept 104 MiB at the same checkouts per second.
fn deliveries_in_flight() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Subscribes every Redis trigger of the app (the subscriptions then run
/// for as long as the process); fails if a server refuses the connection.
/// Called from within the runtime.
pub fn start(app: &Arc<App>) -> anyhow::Result<()> {
    let mut brokers = Vec::new();
    for (address, channel, component) in app.redis_triggers.clone() {
        let broker = app.brokers.for_address(&address).map_err(anyhow::Error::msg)?;
        brokers.push((broker, channel, component));
    }
    let mut servers: Vec<_> = brokers
        .iter()
        .filter_map(|(b, _, _)| match b {
            Broker::Server(s) => Some(s.clone()),
            Broker::Embedded(_) => None,
        })
        .collect();
    servers.sort_by(|a, b| a.shown().cmp(b.shown()));
    servers.dedup_by(|a, b| Arc::ptr_eq(a, b));
    let handle = tokio::runtime::Handle::current();
    for server in servers {
        if let Err(why) = tokio::task::block_in_place(|| handle.block_on(server.first_contact())) {
            anyhow::bail!("the Redis trigger cannot subscribe: {why}");
        }
    }
    for (broker, channel, component) in brokers {
        let mut messages = broker.subscribe(&channel);
        let app = app.clone();
        // A burst (a backlog re-published after a restart) waits here, in
        // order, rather than taking every instance slot of the host and
        // being refused at the limit.
        let in_flight = Arc::new(tokio::sync::Semaphore::new(deliveries_in_flight()));
        tokio::spawn(async move {
            while let Some(message) = messages.recv().await {
                let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
                let app = app.clone();
                let channel = channel.clone();
                let component = component.clone();
                tokio::spawn(async move {
                    app.deliver(&component, &channel, message).await;
                    drop(permit);
                });
            }
        });
    }
    Ok(())
}

impl App {
    async fn deliver(self: &Arc<Self>, component_id: &str, channel: &str, message: Vec<u8>) {
        let started = Instant::now();
        // An event that carries a trace context (the envelope's optional
        // `traceparent`, docs/events.md) continues that trace.
        let (parent, correlation_id) = event_context(&message);
        let run = Invocation::start(
            tracing::info_span!(
                target: "shop_host::span",
                "delivery",
                "otel.name" = %format_args!("{channel} receive"),
                "otel.kind" = "consumer",
                "otel.status_code" = tracing::field::Empty,
                "messaging.system" = "redis",
                "messaging.operation.type" = "receive",
                "messaging.destination.name" = channel,
                component = component_id,
                trigger = "redis",
                trace_id = tracing::field::Empty,
                correlation_id = correlation_id.as_deref(),
            ),
            parent,
        );
        let outcome = async {
            let component = self.component(component_id).ok_or_else(|| anyhow::anyhow!("no such component"))?;
            let pre = component.redis.clone().ok_or_else(|| anyhow::anyhow!("no Redis export"))?;
            // Its own concurrency limit: a message waits for a free slot.
            let _permit = match &component.slots {
                Some((_, slots)) => Some(slots.clone().acquire_owned().await?),
                None => None,
            };
            let mut store = self.new_component_store(&component, &run)?;
            let instance = instantiate(component_id, pre.instantiate_async(&mut store)).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            instance
                .fermyon_spin_inbound_redis()
                .call_handle_message(&mut store, &message)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?
                .map_err(|e| anyhow::anyhow!("handler answered {e:?}"))
        }
        .instrument(run.span.clone())
        .await;
        if let Some(m) = metrics::get() {
            let outcome = if outcome.is_ok() { "ok" } else { "failed" };
            m.redis_deliveries.with_label_values(&[channel, component_id, outcome]).inc();
        }
        App::finish_run(&run, "redis", &format!("REDIS {channel}"), component_id, started, &outcome, false);
    }
}
