//! Notifications' SQLite layout (database label `notifications`), the only
//! code that talks to it. Besides the event toolkit's `inbox` and
//! `dead_letters` tables:
//!
//! - `messages`: the mailbox, one row per email sent (`event_id` unique: one
//!   email per event), with `customer_id` (NULL for a guest) and `to_email`
//!   (lowercased) to list a mailbox by either;
//! - `contacts`: who an order's emails go to, learned from the events that
//!   name it, for later events that do not.

use serde::Serialize;
use shop_shared::{ApiError, rfc3339};
use spin_sdk::sqlite::{Connection, Value};

use crate::domain::Recipient;

const DATABASE: &str = "notifications";
/// Raise it when [`SCHEMA`] changes: a database at another version is set
/// up again (every statement is `IF NOT EXISTS`).
const SCHEMA_VERSION: &str = "1";

const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        event_id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        order_id TEXT NOT NULL,
        customer_id TEXT,
        to_email TEXT NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        sent_at INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS messages_by_customer ON messages (customer_id, sent_at)",
    "CREATE INDEX IF NOT EXISTS messages_by_email ON messages (to_email, sent_at)",
    "CREATE TABLE IF NOT EXISTS contacts (
        order_id TEXT PRIMARY KEY,
        email TEXT NOT NULL,
        customer_id TEXT
    )",
];

/// The most messages one mailbox listing returns.
pub const MAX_LISTED: u32 = 200;

/// Opens the database, setting its tables up on first use.
pub fn open() -> Result<Connection, ApiError> {
    shop_shared::db::open(DATABASE, SCHEMA_VERSION, &SCHEMA, |doing, e| unavailable(format!("{doing}: {e}")))
}

pub fn unavailable(detail: String) -> ApiError {
    eprintln!("notifications database: {detail}");
    ApiError::unavailable("notifications_unavailable", "the notifications database failed")
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

/// A sent email as the mailbox lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub id: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub order_id: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub sent_at: String,
}

/// Remembers who `order_id`'s emails go to (the first address named wins;
/// a customer id learned later is added).
pub fn remember_contact(conn: &Connection, order_id: &str, recipient: &Recipient) -> Result<(), String> {
    conn.execute(
        "INSERT INTO contacts (order_id, email, customer_id) VALUES (?, ?, ?)
         ON CONFLICT (order_id) DO UPDATE SET customer_id = COALESCE(contacts.customer_id, excluded.customer_id)",
        &[
            text(order_id),
            text(&recipient.email),
            recipient.customer_id.as_deref().map_or(Value::Null, text),
        ],
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

pub fn contact(conn: &Connection, order_id: &str) -> Result<Option<Recipient>, String> {
    let result = conn
        .execute("SELECT email, customer_id FROM contacts WHERE order_id = ?", &[text(order_id)])
        .map_err(|e| e.to_string())?;
    Ok(result.rows.first().map(|row| Recipient {
        email: row.get::<&str>(0).unwrap_or_default().to_owned(),
        customer_id: row.get::<&str>(1).map(str::to_owned),
    }))
}

pub struct NewMessage<'a> {
    pub id: &'a str,
    pub event_id: &'a str,
    pub kind: &'a str,
    pub order_id: &'a str,
    pub recipient: &'a Recipient,
    pub subject: &'a str,
    pub body: &'a str,
    pub sent_at: i64,
}

/// Puts the email in the mailbox; one per event (a second is ignored).
pub fn deliver(conn: &Connection, m: &NewMessage<'_>) -> Result<(), String> {
    conn.execute(
        "INSERT INTO messages (id, event_id, type, order_id, customer_id, to_email, subject, body, sent_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
        &[
            text(m.id),
            text(m.event_id),
            text(m.kind),
            text(m.order_id),
            m.recipient.customer_id.as_deref().map_or(Value::Null, text),
            text(&m.recipient.email),
            text(m.subject),
            text(m.body),
            Value::Integer(m.sent_at),
        ],
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// The mailbox of a customer id or an email address, newest first.
pub fn mailbox(conn: &Connection, key: &str) -> Result<Vec<Message>, String> {
    let result = conn
        .execute(
            "SELECT id, event_id, type, order_id, to_email, subject, body, sent_at FROM messages
             WHERE customer_id = ? OR to_email = ? ORDER BY sent_at DESC, seq DESC LIMIT ?",
            &[text(key), text(key), Value::Integer(MAX_LISTED.into())],
        )
        .map_err(|e| e.to_string())?;
    Ok(result
        .rows
        .iter()
        .map(|row| {
            let t = |i: usize| row.get::<&str>(i).unwrap_or_default().to_owned();
            Message {
                id: t(0),
                event_id: t(1),
                kind: t(2),
                order_id: t(3),
                to: t(4),
                subject: t(5),
                body: t(6),
                sent_at: rfc3339(row.get::<i64>(7).unwrap_or_default()),
            }
        })
        .collect())
}
