//! The Redis trigger: every message published on a trigger's channel is
//! handed to a fresh instance of its component (`handle-message`), each in a
//! task of its own so a slow message does not hold up the next, up to
//! [`MAX_DELIVERIES_IN_FLIGHT`] per trigger; more wait their turn.
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

use super::broker::Broker;
use crate::app::App;

/// Messages of one trigger handled at once; the rest wait their turn.
const MAX_DELIVERIES_IN_FLIGHT: usize = 32;

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
        let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_DELIVERIES_IN_FLIGHT));
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
        let outcome = async {
            let component = self.component(component_id).ok_or_else(|| anyhow::anyhow!("no such component"))?;
            let pre = component.redis.clone().ok_or_else(|| anyhow::anyhow!("no Redis export"))?;
            // Its own concurrency limit: a message waits for a free slot.
            let _permit = match &component.slots {
                Some((_, slots)) => Some(slots.clone().acquire_owned().await?),
                None => None,
            };
            let mut store = self.new_component_store(component)?;
            let instance = pre.instantiate_async(&mut store).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            instance
                .fermyon_spin_inbound_redis()
                .call_handle_message(&mut store, &message)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?
                .map_err(|e| anyhow::anyhow!("handler answered {e:?}"))
        }
        .await;
        App::log_run(&format!("REDIS {channel}"), component_id, started, &outcome, false);
    }
}
