//! Orders and events (docs/events.md).
//!
//! Consumed, through the inbox (each event id applied once, a failure kept
//! as a dead letter): `fulfillment.shipped` → `shipped`, `payment.captured`
//! → `paid`, `order.cancelled` → `cancelled` (when another service cancelled;
//! orders' own cancellation finds the order cancelled already, a no-op).
//! Events are applied with [`crate::domain::Order::follow`], so a late or
//! repeated one changes nothing. An event about an order that is not here,
//! or one the state machine refuses (a shipment for a cancelled order), is a
//! dead letter for an operator to look at.
//!
//! Produced, through the outbox: `order.cancelled` (reason
//! `customer_request`) whenever a request cancels an order, in the same
//! transaction as the status change, published right after.

use shop_shared::event::{self, Envelope, FulfillmentShipped, OrderCancelled, PaymentCaptured};
use shop_shared::event_admin::{self, EventStore};
use shop_shared::{inbox, now_millis, outbox};

use crate::domain::{Millis, Order, OrdersError, Status, event_reason};
use crate::store::{self, OrdersStore};

/// The cron tick: publishes again what the consumers have not acknowledged
/// (docs/events.md), with no traffic needed.
pub fn tick(_timestamp: u64) -> Result<(), String> {
    let store = OrdersStore::open().map_err(|e| e.to_string())?;
    event_admin::on_tick(store.connection());
    Ok(())
}

/// A message from one of orders' channels.
pub async fn receive(message: &[u8]) -> Result<(), String> {
    let store = OrdersStore::open().map_err(|e| e.to_string())?;
    let outcome = inbox::receive(store.connection(), "orders", message, async |_, envelope| apply(&store, envelope)).await;
    event_admin::publish_quietly(store.connection());
    outcome.map(|_| ()).map_err(|failed| failed.to_string())
}

/// Applies one event inside the inbox's transaction (also what a replay
/// runs), on `store`'s connection, the one the inbox holds.
pub fn apply(store: &OrdersStore, envelope: &Envelope) -> Result<(), String> {
    let (order_id, to, reason) = match envelope.kind.as_str() {
        event::FULFILLMENT_SHIPPED => {
            let shipped: FulfillmentShipped = envelope.data_as()?;
            let reason = format!("{} {}", shipped.carrier, shipped.tracking_number);
            (shipped.order_id, Status::Shipped, reason)
        }
        event::PAYMENT_CAPTURED => {
            let captured: PaymentCaptured = envelope.data_as()?;
            let reason = format!(
                "{} {} captured ({})",
                captured.amount.amount,
                captured.amount.currency,
                captured.capture_id.as_deref().unwrap_or(&captured.authorization_id)
            );
            (captured.order_id, Status::Paid, reason)
        }
        event::ORDER_CANCELLED => {
            let cancelled: OrderCancelled = envelope.data_as()?;
            (cancelled.order_id, Status::Cancelled, cancelled.reason)
        }
        other => {
            // Not a type orders consumes (a channel wired by mistake):
            // recorded as applied, so it is not looked at again.
            eprintln!("orders ignores {other} event {}", envelope.id);
            return Ok(());
        }
    };
    store
        .follow_within(&order_id, to, &envelope.kind, event_reason(&reason), Millis(now_millis()))
        .map(|_| ())
        .map_err(|error| format!("{} {} for order {order_id}: {error}", envelope.kind, envelope.id))
}

/// A request (the customer's cancel, an operator's status, a service over
/// WIT) moves an order. A cancellation enqueues its `order.cancelled` in the
/// same transaction, then publishes it; a failure to publish is only logged,
/// the event waits in the outbox for the next publish or the admin flush.
pub fn request_transition(id: &str, to: Status, reason: Option<String>) -> Result<Order, OrdersError> {
    let store = OrdersStore::open()?;
    let (order, enqueued) = store.write(|store| {
        let (order, changed) = store.transition_within(id, to, reason, Millis(now_millis()))?;
        let enqueued = changed && order.status == Status::Cancelled;
        if enqueued {
            Envelope::new(event::ORDER_CANCELLED, order.correlation_id(), &order.cancelled_event())
                .and_then(|envelope| outbox::enqueue(store.connection(), &envelope))
                .map_err(|e| store::unavailable("storing the order.cancelled event", e))?;
        }
        Ok((order, enqueued))
    })?;
    if enqueued {
        event_admin::publish_quietly(store.connection());
    }
    Ok(order)
}
