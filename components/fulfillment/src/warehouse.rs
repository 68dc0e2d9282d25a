//! Getting a waiting shipment's goods out of the warehouse, the moment it
//! ships (at once with `auto_ship`, or when the warehouse says so): its
//! reservation is committed at the inventory — or, if it expired, the lines
//! are reserved again under an id derived from the order and that is
//! committed — then the shipment is shipped and `fulfillment.shipped`
//! enqueued. Goods that are gone cancel the shipment as out of stock and
//! enqueue `order.cancelled`. Until then nothing is committed, so a
//! shipment cancelled while it waits never took stock.

use shop_shared::event::{self, Envelope, cancel_reason};
use shop_shared::outbox;
use spin_sdk::sqlite::Connection;

use crate::domain::{self, Shipment, Status};
use crate::inventory::{self, Commit, Reserve};
use crate::store;

/// What became of the shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatched {
    Shipped,
    OutOfStock,
}

/// Why a dispatch failed; either way the caller's transaction rolls back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// The inventory refused or did not answer, before anything was saved.
    Inventory(String),
    /// Saving the shipment or its event failed.
    Store(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Inventory(e) | Failed::Store(e) => f.write_str(e),
        }
    }
}

impl From<Failed> for String {
    fn from(failed: Failed) -> String {
        failed.to_string()
    }
}

/// Ships the waiting `shipment`, or cancels it as out of stock; saves it and
/// enqueues its event. Runs inside the caller's transaction; the inventory
/// calls it makes are idempotent (commit by id, reserve under a derived id),
/// so a transaction that rolls back after them can be tried again. An
/// inventory that refuses (an unknown or released reservation) or does not
/// answer is an error, and nothing here changes.
pub async fn dispatch(conn: &Connection, shipment: &mut Shipment, now: i64) -> Result<Dispatched, Failed> {
    if shipment.status != Status::Pending {
        return Err(Failed::Store(format!(
            "the shipment of order {} is {}, not waiting",
            shipment.order_id,
            shipment.status.as_str()
        )));
    }
    let inventory_failed = Failed::Inventory;
    let committed = match inventory::commit(&shipment.reservation_id).map_err(inventory_failed)? {
        Commit::Committed => shipment.reservation_id.clone(),
        Commit::Expired => {
            let again = domain::rereservation_id(&shipment.order_id);
            match inventory::reserve(&again, &shipment.lines).map_err(inventory_failed)? {
                Reserve::Reserved => match inventory::commit(&again).map_err(inventory_failed)? {
                    Commit::Committed => again,
                    Commit::Expired => {
                        return Err(Failed::Inventory(format!("the new reservation {again} expired before its commit")));
                    }
                },
                Reserve::Short(shortages) => {
                    let cancelled = domain::out_of_stock_event(shipment, shortages);
                    domain::cancel(shipment, cancel_reason::OUT_OF_STOCK, now);
                    save_with_event(conn, shipment, event::ORDER_CANCELLED, &cancelled).map_err(Failed::Store)?;
                    return Ok(Dispatched::OutOfStock);
                }
            }
        }
    };
    shipment.reservation_id = committed;
    domain::ship(shipment, now)
        .map_err(|_| Failed::Store(format!("the shipment of order {} is cancelled", shipment.order_id)))?;
    let shipped = domain::shipped_event(shipment);
    save_with_event(conn, shipment, event::FULFILLMENT_SHIPPED, &shipped).map_err(Failed::Store)?;
    Ok(Dispatched::Shipped)
}

fn save_with_event(conn: &Connection, shipment: &Shipment, kind: &str, data: &impl serde::Serialize) -> Result<(), String> {
    store::save(conn, shipment)?;
    outbox::enqueue(conn, &Envelope::new(kind, &shipment.correlation_id, data)?)
}
