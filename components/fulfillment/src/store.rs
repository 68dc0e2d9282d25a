//! Fulfillment's SQLite layout (database label `fulfillment`), the only
//! code that talks to it. Besides the event toolkit's `outbox`, `inbox` and
//! `dead_letters` tables:
//!
//! - `shipments`: one row per order (`order_id` primary key), its status,
//!   carrier and tracking number, the committed reservation, and what the
//!   `fulfillment.shipped` event needs (lines, address, email, customer,
//!   payment authorization) as the order carried them.
//! - `shipment_access`: for a guest's order, the digest of its access token
//!   (from `order.placed`), which lets the guest see the shipment.

use shop_shared::ApiError;
use spin_sdk::sqlite::{Connection, RowResult, Value};

use crate::domain::{Shipment, Status};

const DATABASE: &str = "fulfillment";

const COLUMNS: &str = "order_id, id, status, carrier, tracking_number, reservation_id, lines, address, email,
    customer_id, payment_authorization_id, correlation_id, created_at, shipped_at, cancelled_at, cancel_reason";

/// Raise it when [`SCHEMA`] changes: a database at another version is set
/// up again (every statement is `IF NOT EXISTS`).
const SCHEMA_VERSION: &str = "1";

const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS shipments (
        order_id TEXT PRIMARY KEY,
        id TEXT NOT NULL,
        status TEXT NOT NULL,
        carrier TEXT NOT NULL,
        tracking_number TEXT NOT NULL,
        reservation_id TEXT NOT NULL,
        lines TEXT NOT NULL,
        address TEXT,
        email TEXT,
        customer_id TEXT,
        payment_authorization_id TEXT,
        correlation_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        shipped_at INTEGER,
        cancelled_at INTEGER,
        cancel_reason TEXT
    )",
    "CREATE TABLE IF NOT EXISTS shipment_access (order_id TEXT PRIMARY KEY, token_digest TEXT NOT NULL)",
];

/// Opens the database, setting its tables up on first use.
pub fn open() -> Result<Connection, ApiError> {
    shop_shared::db::open(DATABASE, SCHEMA_VERSION, &SCHEMA, |doing, e| unavailable(format!("{doing}: {e}")))
}

/// The digest of the access token of a guest's order, if it has one.
pub fn access_digest(conn: &Connection, order_id: &str) -> Result<Option<String>, String> {
    let result = conn
        .execute("SELECT token_digest FROM shipment_access WHERE order_id = ?", &[Value::Text(order_id.to_owned())])
        .map_err(|e| e.to_string())?;
    Ok(result.rows.first().and_then(|row| row.get::<&str>(0)).map(str::to_owned))
}

pub fn save_access(conn: &Connection, order_id: &str, digest: &str) -> Result<(), String> {
    conn.execute(
        "INSERT OR IGNORE INTO shipment_access (order_id, token_digest) VALUES (?, ?)",
        &[Value::Text(order_id.to_owned()), Value::Text(digest.to_owned())],
    )
    .map(drop)
    .map_err(|e| e.to_string())
}

pub fn unavailable(detail: String) -> ApiError {
    eprintln!("fulfillment database: {detail}");
    ApiError::unavailable("fulfillment_unavailable", "the fulfillment database failed")
}

pub fn shipment(conn: &Connection, order_id: &str) -> Result<Option<Shipment>, String> {
    let result = conn
        .execute(&format!("SELECT {COLUMNS} FROM shipments WHERE order_id = ?"), &[Value::Text(order_id.to_owned())])
        .map_err(|e| e.to_string())?;
    result.rows.first().map(from_row).transpose()
}

/// Inserts or replaces the order's shipment.
pub fn save(conn: &Connection, s: &Shipment) -> Result<(), String> {
    let text = |v: &str| Value::Text(v.to_owned());
    let opt_text = |v: Option<&str>| v.map_or(Value::Null, text);
    let opt_int = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
    let lines = serde_json::to_string(&s.lines).map_err(|e| e.to_string())?;
    let address = s.address.as_ref().map(|a| serde_json::to_string(a).unwrap_or_default());
    conn.execute(
        &format!(
            "INSERT OR REPLACE INTO shipments ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        &[
            text(&s.order_id),
            text(&s.id),
            text(s.status.as_str()),
            text(&s.carrier),
            text(&s.tracking_number),
            text(&s.reservation_id),
            Value::Text(lines),
            opt_text(address.as_deref()),
            opt_text(s.email.as_deref()),
            opt_text(s.customer_id.as_deref()),
            opt_text(s.payment_authorization_id.as_deref()),
            text(&s.correlation_id),
            Value::Integer(s.created_at),
            opt_int(s.shipped_at),
            opt_int(s.cancelled_at),
            opt_text(s.cancel_reason.as_deref()),
        ],
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

fn from_row(row: &RowResult) -> Result<Shipment, String> {
    let text = |i: usize| row.get::<&str>(i).unwrap_or_default().to_owned();
    let opt_text = |i: usize| row.get::<&str>(i).map(str::to_owned);
    let status = Status::parse(&text(2)).ok_or_else(|| format!("shipment {} has an unknown status", text(0)))?;
    Ok(Shipment {
        order_id: text(0),
        id: text(1),
        status,
        carrier: text(3),
        tracking_number: text(4),
        reservation_id: text(5),
        lines: serde_json::from_str(&text(6)).map_err(|e| format!("shipment {}: lines: {e}", text(0)))?,
        address: opt_text(7).and_then(|a| serde_json::from_str(&a).ok()),
        email: opt_text(8),
        customer_id: opt_text(9),
        payment_authorization_id: opt_text(10),
        correlation_id: text(11),
        created_at: row.get::<i64>(12).unwrap_or_default(),
        shipped_at: row.get::<i64>(13),
        cancelled_at: row.get::<i64>(14),
        cancel_reason: opt_text(15),
    })
}
