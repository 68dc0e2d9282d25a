//! The Redis receiver: `order.placed` creates a waiting shipment (shipped at
//! once with `auto_ship`), `order.cancelled` cancels a waiting one. Every
//! event goes through the inbox (applied once, failures kept as dead
//! letters); what the handling decides to publish goes through the outbox,
//! published right after.

use shop_shared::event::{self, Envelope, OrderCancelled, OrderPlaced};
use shop_shared::{event_admin, inbox, new_id, now_millis};
use spin_sdk::sqlite::Connection;

use crate::domain::{self, OnCancelled, OnPlaced};
use crate::{store, warehouse};

/// The cron tick: publishes again what the consumers have not acknowledged
/// (docs/events.md), with no traffic needed.
pub fn tick(_timestamp: u64) -> Result<(), String> {
    let store = store::open().map_err(|e| e.message)?;
    event_admin::on_tick(&store);
    Ok(())
}

/// A message from one of fulfillment's channels.
pub async fn receive(message: &[u8]) -> Result<(), String> {
    let conn = store::open().map_err(|e| e.message)?;
    let outcome = inbox::receive(&conn, "fulfillment", message, apply).await;
    event_admin::publish_quietly(&conn);
    outcome.map(|_| ()).map_err(|failed| failed.to_string())
}

/// Applies one event inside the inbox's transaction (also what a replay runs).
pub async fn apply(conn: &Connection, envelope: &Envelope) -> Result<(), String> {
    match envelope.kind.as_str() {
        event::ORDER_PLACED => on_order_placed(conn, envelope).await,
        event::ORDER_CANCELLED => on_order_cancelled(conn, envelope),
        other => {
            // Not a type fulfillment consumes (a channel wired by mistake):
            // recorded as applied, so it is not looked at again.
            eprintln!("fulfillment ignores {other} event {}", envelope.id);
            Ok(())
        }
    }
}

/// Whether a new shipment leaves at once (variable `auto_ship`, default
/// `true`) or waits for `POST /api/fulfillment/shipments/{order_id}/ship`.
pub fn auto_ship() -> bool {
    spin_sdk::variables::get("auto_ship").map_or(true, |v| !v.trim().eq_ignore_ascii_case("false"))
}

async fn on_order_placed(conn: &Connection, envelope: &Envelope) -> Result<(), String> {
    let placed: OrderPlaced = envelope.data_as()?;
    if domain::on_placed(store::shipment(conn, &placed.order_id)?.as_ref()) == OnPlaced::Ignore {
        eprintln!("order {} already has a shipment; {} changes nothing", placed.order_id, envelope.id);
        return Ok(());
    }
    if let Some(digest) = &placed.access_token_digest {
        store::save_access(conn, &placed.order_id, digest)?;
    }
    let now = now_millis();
    let mut shipment = domain::new_shipment(new_id("shp"), &placed, &envelope.correlation_id, now);
    if auto_ship() {
        warehouse::dispatch(conn, &mut shipment, now).await?;
    } else {
        store::save(conn, &shipment)?;
    }
    Ok(())
}

fn on_order_cancelled(conn: &Connection, envelope: &Envelope) -> Result<(), String> {
    let cancelled: OrderCancelled = envelope.data_as()?;
    let existing = store::shipment(conn, &cancelled.order_id)?;
    let now = now_millis();
    match (domain::on_cancelled(existing.as_ref()), existing) {
        (OnCancelled::Cancel, Some(mut shipment)) => {
            // Its reservation was never committed: the inventory releases it
            // on the same order.cancelled.
            domain::cancel(&mut shipment, &cancelled.reason, now);
            store::save(conn, &shipment)
        }
        (OnCancelled::RecordCancelled, _) => store::save(
            conn,
            &domain::cancelled_shipment(&cancelled.order_id, &cancelled.reason, &envelope.correlation_id, now),
        ),
        _ => Ok(()),
    }
}
