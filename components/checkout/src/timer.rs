//! The cron tick (`[[trigger.cron]]`): finishes or undoes the checkouts a
//! crash left behind and publishes what the consumers have not acknowledged,
//! so neither waits for the next customer.

use crate::http::{RECOVERY_BATCH, recover_stale};
use crate::services::Wired;
use crate::store::CheckoutStore;

pub fn tick(_timestamp: u64) -> Result<(), String> {
    let store = CheckoutStore::open().map_err(|e| e.message)?;
    let recovered = recover_stale(&store, &Wired, RECOVERY_BATCH).map_err(|e| e.message);
    // What recovery finished forward, and whatever else is due.
    store.deliver_due_events();
    recovered.map(|_| ())
}
