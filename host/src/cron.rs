//! The cron trigger, as Spin's trigger-cron plugin serves it: every tick of
//! a `[[trigger.cron]]` schedule (UTC) calls `handle-cron-event` on a fresh
//! instance of its component, with the tick's time in Unix seconds.
//!
//! Ticks are not queued behind a slow one: each runs in a task of its own,
//! so a tick that takes longer than the interval overlaps the next, as in
//! the plugin. A failing tick is logged and the schedule goes on.

use tracing::Instrument;

use crate::http_trigger::instantiate;
use crate::telemetry::Invocation;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::bindings::cron_trigger::fermyon::spin_cron::cron_types::Metadata;

/// Starts every cron schedule of the app; the schedules then run for as long
/// as the process.
pub fn start(app: &Arc<App>) {
    for trigger in app.cron_triggers.clone() {
        let app = app.clone();
        tokio::spawn(async move {
            loop {
                let now = chrono::Utc::now();
                let next = match trigger.schedule.find_next_occurrence(&now, false) {
                    Ok(next) => next,
                    Err(e) => {
                        tracing::warn!("cron `{}` of {}: no next tick ({e}); the schedule stops", trigger.cron_expression, trigger.component);
                        return;
                    }
                };
                let wait = (next - now).to_std().unwrap_or(Duration::ZERO);
                tokio::time::sleep(wait).await;
                let app = app.clone();
                let component = trigger.component.clone();
                let timestamp = next.timestamp().max(0) as u64;
                tokio::spawn(async move { app.tick(&component, timestamp).await });
            }
        });
    }
}

impl App {
    async fn tick(self: &Arc<Self>, component_id: &str, timestamp: u64) {
        let started = Instant::now();
        let run = Invocation::start(
            tracing::info_span!(
                target: "shop_host::span",
                "tick",
                "otel.name" = %format_args!("cron {component_id}"),
                "otel.status_code" = tracing::field::Empty,
                component = component_id,
                trigger = "cron",
                trace_id = tracing::field::Empty,
                correlation_id = tracing::field::Empty,
            ),
            None,
        );
        let outcome = async {
            let component = self.component(component_id).ok_or_else(|| anyhow::anyhow!("no such component"))?;
            let pre = component.cron.clone().ok_or_else(|| anyhow::anyhow!("no cron export"))?;
            // Its own concurrency limit: a tick that finds it full is skipped.
            let _permit = match &component.slots {
                Some((max, slots)) => Some(slots.clone().try_acquire_owned().map_err(|_| {
                    anyhow::anyhow!("at its limit of {max} concurrent instances (max_concurrent_instances); tick skipped")
                })?),
                None => None,
            };
            let mut store = self.new_component_store(&component, &run)?;
            let instance = instantiate(component_id, pre.instantiate_async(&mut store)).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            instance
                .call_handle_cron_event(&mut store, Metadata { timestamp })
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?
                .map_err(|e| anyhow::anyhow!("handler answered {e:?}"))
        }
        .instrument(run.span.clone())
        .await;
        // A tick every few seconds would drown the log at info: only
        // failures are worth an operator's eye by default.
        App::finish_run(&run, "cron", &format!("CRON {timestamp}"), component_id, started, &outcome, true);
    }
}
