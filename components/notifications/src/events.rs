//! The Redis receiver: every event a customer hears about becomes an email
//! in their mailbox, once per event id (the inbox), failures kept as dead
//! letters (an event naming no recipient for an order never placed here,
//! for one: replay it once the order's `order.placed` has arrived).

use shop_shared::event::Envelope;
use shop_shared::{inbox, new_id, now_millis};
use spin_sdk::sqlite::Connection;

use crate::domain::{Reaction, react};
use crate::store::{self, NewMessage};

pub async fn receive(message: &[u8]) -> Result<(), String> {
    let conn = store::open().map_err(|e| e.message)?;
    inbox::receive(&conn, "notifications", message, apply).await.map(|_| ()).map_err(|failed| failed.to_string())
}

/// Applies one event inside the inbox's transaction (also what a replay runs).
pub async fn apply(conn: &Connection, envelope: &Envelope) -> Result<(), String> {
    let draft = match react(envelope)? {
        Reaction::Send(draft) => draft,
        Reaction::Nothing => return Ok(()),
    };
    let recipient = match draft.recipient {
        Some(recipient) => {
            store::remember_contact(conn, &draft.order_id, &recipient)?;
            recipient
        }
        None => store::contact(conn, &draft.order_id)?.ok_or_else(|| {
            format!(
                "the {} event {} names no recipient, and no order.placed for {} has arrived",
                envelope.kind, envelope.id, draft.order_id
            )
        })?,
    };
    store::deliver(
        conn,
        &NewMessage {
            id: &new_id("msg"),
            event_id: &envelope.id,
            kind: &envelope.kind,
            order_id: &draft.order_id,
            recipient: &recipient,
            subject: &draft.subject,
            body: &draft.body,
            sent_at: now_millis(),
        },
    )
}
