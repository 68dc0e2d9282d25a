//! The Redis receiver (docs/events.md): an `order.cancelled` releases the
//! order's reservation, so its units are available again. Every event goes
//! through the inbox (applied once, a failure kept as a dead letter).
//!
//! Releasing is idempotent, and a reservation that cannot hold anything any
//! more needs nothing: one already released (or expired, which releasing
//! records), one committed (the goods have left the warehouse), one this
//! inventory never had. A malformed event, or a database that fails, is a
//! dead letter.

use shop_shared::event::{self, Envelope, OrderCancelled};
use shop_shared::event_admin::{self, EventStore};
use shop_shared::{inbox, now_millis};

use crate::domain::{InventoryError, Reservation, ReservationId};
use crate::store::InventoryStore;

/// A message from one of inventory's channels.
pub async fn receive(message: &[u8]) -> Result<(), String> {
    let store = InventoryStore::open().map_err(|e| e.to_string())?;
    let outcome = inbox::receive(store.connection(), "inventory", message, async |_, envelope| apply(&store, envelope)).await;
    event_admin::publish_quietly(store.connection());
    outcome.map(|_| ()).map_err(|failed| failed.to_string())
}

/// Applies one event inside the inbox's transaction (also what a replay
/// runs), on `store`'s connection, the one the inbox holds.
pub fn apply(store: &InventoryStore, envelope: &Envelope) -> Result<(), String> {
    match envelope.kind.as_str() {
        event::ORDER_CANCELLED => {
            let cancelled: OrderCancelled = envelope.data_as()?;
            let Some(id) = cancelled.reservation_id else {
                eprintln!("order.cancelled {} names no reservation; nothing to release", envelope.id);
                return Ok(());
            };
            let id = ReservationId::parse(&id)
                .map_err(|e| format!("order.cancelled {} has an invalid reservation id: {e}", envelope.id))?;
            let note = settled(store.release_within(&id, now_millis()))
                .map_err(|e| format!("releasing reservation {} of order {}: {e}", id.as_str(), cancelled.order_id))?;
            if let Some(note) = note {
                eprintln!("order.cancelled {}: reservation {} {note}; nothing to release", envelope.id, id.as_str());
            }
            Ok(())
        }
        other => {
            // Not a type inventory consumes (a channel wired by mistake):
            // recorded as applied, so it is not looked at again.
            eprintln!("inventory ignores {other} event {}", envelope.id);
            Ok(())
        }
    }
}

/// A release for a cancelled order: done (`None`), nothing to do (why),
/// or an error worth a dead letter.
fn settled(result: Result<Reservation, InventoryError>) -> Result<Option<&'static str>, InventoryError> {
    match result {
        Ok(_) => Ok(None),
        Err(InventoryError::ReservationCommitted(_)) => Ok(Some("was committed (the goods have left)")),
        Err(InventoryError::ReservationNotFound(_)) => Ok(Some("does not exist here")),
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::StoredStatus;

    #[test]
    fn a_reservation_that_holds_nothing_needs_nothing() {
        let released = Reservation {
            id: ReservationId::parse("res_1").unwrap(),
            status: StoredStatus::Released,
            lines: Vec::new(),
            created_at: 0,
            expires_at: 1,
        };
        assert_eq!(settled(Ok(released)), Ok(None));
        assert!(settled(Err(InventoryError::ReservationCommitted("r".into()))).unwrap().is_some());
        assert!(settled(Err(InventoryError::ReservationNotFound("r".into()))).unwrap().is_some());
        let down = InventoryError::Unavailable("x".into());
        assert_eq!(settled(Err(down.clone())), Err(down));
    }
}
