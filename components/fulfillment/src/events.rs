//! The Redis receiver: `order.placed` ships, `order.cancelled` cancels.
//! Every event goes through the inbox (applied once, failures kept as dead
//! letters); what the handling decides to publish goes through the outbox,
//! published right after.

use shop_shared::event::{self, Envelope, OrderCancelled, OrderPlaced};
use shop_shared::{event_admin, inbox, new_id, now_millis, outbox};
use spin_sdk::sqlite::Connection;

use crate::domain::{self, OnCancelled, OnPlaced};
use crate::inventory::{self, Commit, Reserve};
use crate::store;

/// A message from one of fulfillment's channels.
pub async fn receive(message: &[u8]) -> Result<(), String> {
    let conn = store::open().map_err(|e| e.message)?;
    let outcome = inbox::receive(&conn, message, apply).await;
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
    let now = now_millis();
    let reservation_id = match inventory::commit(&placed.reservation_id).await? {
        Commit::Committed => placed.reservation_id.clone(),
        Commit::Expired => {
            let again = domain::rereservation_id(&placed.order_id);
            match inventory::reserve(&again, &placed.lines).await? {
                Reserve::Reserved => match inventory::commit(&again).await? {
                    Commit::Committed => again,
                    Commit::Expired => return Err(format!("the new reservation {again} expired before its commit")),
                },
                Reserve::Short(shortages) => {
                    let cancelled = domain::out_of_stock_event(&placed, shortages);
                    let mut record = domain::cancelled_shipment(
                        &placed.order_id,
                        &cancelled.reason,
                        &envelope.correlation_id,
                        now,
                    );
                    record.email = Some(placed.email.clone());
                    record.customer_id = placed.customer_id.clone();
                    record.lines = placed.lines.clone();
                    record.payment_authorization_id = placed.payment_authorization_id.clone();
                    store::save(conn, &record)?;
                    let event = Envelope::new(event::ORDER_CANCELLED, &envelope.correlation_id, &cancelled)?;
                    return outbox::enqueue(conn, &event);
                }
            }
        }
    };
    let shipment = domain::new_shipment(new_id("shp"), &placed, reservation_id, &envelope.correlation_id, auto_ship(), now);
    store::save(conn, &shipment)?;
    if shipment.status == domain::Status::Shipped {
        let event = Envelope::new(event::FULFILLMENT_SHIPPED, &envelope.correlation_id, &domain::shipped_event(&shipment))?;
        outbox::enqueue(conn, &event)?;
    }
    Ok(())
}

fn on_order_cancelled(conn: &Connection, envelope: &Envelope) -> Result<(), String> {
    let cancelled: OrderCancelled = envelope.data_as()?;
    let existing = store::shipment(conn, &cancelled.order_id)?;
    let now = now_millis();
    match (domain::on_cancelled(existing.as_ref()), existing) {
        (OnCancelled::Cancel, Some(mut shipment)) => {
            shipment.status = domain::Status::Cancelled;
            shipment.cancelled_at = Some(now);
            shipment.cancel_reason = Some(cancelled.reason);
            store::save(conn, &shipment)
        }
        (OnCancelled::RecordCancelled, _) => store::save(
            conn,
            &domain::cancelled_shipment(&cancelled.order_id, &cancelled.reason, &envelope.correlation_id, now),
        ),
        _ => Ok(()),
    }
}
