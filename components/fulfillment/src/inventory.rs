//! Asking the inventory service to commit a reservation or to make a new
//! one, through the `shop:inventory/inventory` WIT interface this component
//! imports. spin.toml says which component serves it (a dependency, as for
//! checkout), so fulfillment needs no service chaining: Spin refuses
//! `*.spin.internal` hosts in a component that a Redis trigger runs.
//!
//! Both calls are idempotent at the inventory (commit again is a retry;
//! reserve with the same id and lines returns the same reservation), which
//! the inbox relies on: a call may happen and its transaction here still
//! roll back.

wit_bindgen::generate!({
    inline: "
        package shop:fulfillment-imports;
        world fulfillment {
            import shop:inventory/inventory@0.1.0;
        }
    ",
    path: ["../../wit/types", "../../wit/inventory"],
    with: {
        "shop:types/types@0.1.0": generate,
        "shop:inventory/inventory@0.1.0": generate,
    },
});

use shop::inventory::inventory::{self as wit, Error as E};
use shop::types::types::Line as WitLine;
use shop_shared::event::{EventLine, Shortage};

/// How long a reservation made again holds: fulfillment commits it at once,
/// so this only bounds a commit that never comes.
const REPEAT_RESERVATION_TTL_SECONDS: u32 = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    Committed,
    /// Its TTL passed before fulfillment got to it: it holds nothing now.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserve {
    Reserved,
    /// Not enough stock, or skus the warehouse no longer has.
    Short(Vec<Shortage>),
}

/// Commits reservation `id`. A reservation that is unknown or released, or
/// an inventory store that fails, is an error: the event becomes a dead
/// letter to replay once someone has looked.
pub fn commit(reservation_id: &str) -> Result<Commit, String> {
    match wit::commit(reservation_id) {
        Ok(_) => Ok(Commit::Committed),
        Err(E::Expired(_)) => Ok(Commit::Expired),
        Err(e) => Err(format!("the inventory refused to commit reservation {reservation_id}: {}", describe(&e))),
    }
}

/// Reserves `lines` under `id`.
pub fn reserve(id: &str, lines: &[EventLine]) -> Result<Reserve, String> {
    let wit_lines: Vec<WitLine> =
        lines.iter().map(|l| WitLine { sku: l.sku.clone(), quantity: l.quantity }).collect();
    match wit::reserve(Some(id), &wit_lines, REPEAT_RESERVATION_TTL_SECONDS) {
        Ok(_) => Ok(Reserve::Reserved),
        Err(E::InsufficientStock(shortages)) => Ok(Reserve::Short(
            shortages
                .into_iter()
                .map(|s| Shortage { sku: s.sku, requested: s.requested.into(), available: s.available.into() })
                .collect(),
        )),
        Err(E::UnknownSku(skus)) => Ok(Reserve::Short(
            lines
                .iter()
                .filter(|line| skus.contains(&line.sku))
                .map(|line| Shortage { sku: line.sku.clone(), requested: line.quantity.into(), available: 0 })
                .collect(),
        )),
        Err(e) => Err(format!("the inventory refused to reserve {id}: {}", describe(&e))),
    }
}

/// The error as the inventory's HTTP API names it (`reservation_not_found:
/// …`), so a dead letter reads the same whichever way it was reached.
fn describe(error: &E) -> String {
    match error {
        E::Invalid(m) => format!("invalid_request: {m}"),
        E::UnknownSku(skus) => format!("unknown_sku: {}", skus.join(", ")),
        E::InsufficientStock(_) => "insufficient_stock".into(),
        E::NotFound(m) => format!("reservation_not_found: {m}"),
        E::Conflict(m) => format!("reservation_conflict: {m}"),
        E::Expired(m) => format!("reservation_expired: {m}"),
        E::InvalidState(m) => format!("invalid_state: {m}"),
        E::Unavailable(m) => format!("inventory_unavailable: {m}"),
    }
}
