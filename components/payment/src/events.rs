//! The Redis receiver: `fulfillment.shipped` captures the order's
//! authorization and publishes `payment.captured`; `order.cancelled` voids
//! it (only authorized) or refunds it (captured). Every event goes through
//! the inbox (applied once, failures kept as dead letters); the store joins
//! the inbox's transaction, so a capture, its `payment.captured` in the
//! outbox and the record of the event commit together. The outbox is
//! published right after.

use shop_shared::event::{self, Envelope, FulfillmentShipped, OrderCancelled, PaymentCaptured};
use shop_shared::event_admin::{self, EventStore};
use shop_shared::{inbox, outbox};

use crate::domain::{self, OnCancelled, OnShipped, Operation, Outcome, PaymentError};
use crate::store::PaymentStore;

/// The cron tick: publishes again what the consumers have not acknowledged
/// (docs/events.md), with no traffic needed.
pub fn tick(_timestamp: u64) -> Result<(), String> {
    let store = PaymentStore::open().map_err(|e| e.to_string())?;
    event_admin::on_tick(store.connection());
    Ok(())
}

/// A message from one of payment's channels.
pub async fn receive(message: &[u8]) -> Result<(), String> {
    let store = PaymentStore::open_joined().map_err(|e| e.to_string())?;
    let outcome = inbox::receive(store.connection(), "payment", message, async |_, envelope| {
        apply(&store, envelope)
    })
    .await;
    event_admin::publish_quietly(store.connection());
    outcome.map(|_| ()).map_err(|failed| failed.to_string())
}

/// Applies one event inside the inbox's transaction (also what a replay
/// runs); `store` must be joined to it ([`PaymentStore::open_joined`]).
pub fn apply(store: &PaymentStore, envelope: &Envelope) -> Result<(), String> {
    match envelope.kind.as_str() {
        event::FULFILLMENT_SHIPPED => on_shipped(store, envelope),
        event::ORDER_CANCELLED => on_cancelled(store, envelope),
        other => {
            // Not a type payment consumes (a channel wired by mistake):
            // recorded as applied, so it is not looked at again.
            eprintln!("payment ignores {other} event {}", envelope.id);
            Ok(())
        }
    }
}

fn on_shipped(store: &PaymentStore, envelope: &Envelope) -> Result<(), String> {
    let shipped: FulfillmentShipped = envelope.data_as()?;
    let Some(id) = shipped.payment_authorization_id.as_deref() else {
        eprintln!(
            "order {} shipped without a payment authorization; nothing to capture",
            shipped.order_id
        );
        return Ok(());
    };
    let failed =
        |doing: &str, e: PaymentError| format!("{doing} {id} for order {}: {e}", shipped.order_id);
    let payment = store.view(id).map_err(|e| failed("capturing", e))?;
    match domain::on_shipped(id, payment.status).map_err(|e| failed("capturing", e))? {
        OnShipped::AlreadyCaptured => {
            eprintln!(
                "payment {id} of order {} was captured before; {} changes nothing",
                shipped.order_id, envelope.id
            );
            Ok(())
        }
        OnShipped::Capture => {
            let key = domain::event_key(&envelope.id, Operation::Capture)
                .map_err(|e| failed("capturing", e))?;
            let captured = match store
                .capture(&key, id, None)
                .map_err(|e| failed("capturing", e))?
                .outcome
            {
                Outcome::Payment(view) => view,
                _ => {
                    return Err(format!(
                        "capturing {id}: the store recorded an unexpected outcome"
                    ));
                }
            };
            let data = PaymentCaptured {
                order_id: shipped.order_id.clone(),
                authorization_id: captured.id.clone(),
                capture_id: None,
                amount: captured.captured,
                customer_id: shipped.customer_id.clone(),
                email: Some(shipped.email.clone()),
            };
            let event = Envelope::new(event::PAYMENT_CAPTURED, &envelope.correlation_id, &data)?;
            outbox::enqueue(store.connection(), &event)
        }
    }
}

fn on_cancelled(store: &PaymentStore, envelope: &Envelope) -> Result<(), String> {
    let cancelled: OrderCancelled = envelope.data_as()?;
    let Some(id) = cancelled.payment_authorization_id.as_deref() else {
        eprintln!(
            "order {} was cancelled without a payment authorization; nothing to void",
            cancelled.order_id
        );
        return Ok(());
    };
    let failed = |doing: &str, e: PaymentError| {
        format!(
            "{doing} {id} for cancelled order {}: {e}",
            cancelled.order_id
        )
    };
    let payment = store.view(id).map_err(|e| failed("settling", e))?;
    match domain::on_cancelled(payment.status) {
        OnCancelled::Void => {
            let key = domain::event_key(&envelope.id, Operation::Void)
                .map_err(|e| failed("voiding", e))?;
            store.void(&key, id).map_err(|e| failed("voiding", e))?;
        }
        OnCancelled::Refund => {
            let key = domain::event_key(&envelope.id, Operation::Refund)
                .map_err(|e| failed("refunding", e))?;
            store
                .refund(&key, id, None)
                .map_err(|e| failed("refunding", e))?;
        }
        OnCancelled::Nothing => eprintln!(
            "payment {id} of cancelled order {} is {} already; {} changes nothing",
            cancelled.order_id,
            payment.status.as_str(),
            envelope.id
        ),
    }
    Ok(())
}
