//! The transactional outbox: an event is stored in the service's own SQLite
//! database in the same transaction as the state change that decides it,
//! then published to Redis, and published again until Redis takes it.
//!
//! ```ignore
//! in_transaction(&conn, async |conn| {
//!     store.ship(conn, &shipment)?;                 // the state change
//!     outbox::enqueue(conn, &shipped_envelope)?;    // the event, same transaction
//!     Ok(())
//! }).await?;
//! outbox::publish_pending(&conn, &event::redis_address()?); // after COMMIT
//! ```
//!
//! Table `outbox` (created on first use): `id` (the event id, so enqueueing
//! the same event twice stores it once), `type`, `correlation_id`,
//! `envelope` (JSON), `created_at` (ms), `sent_at` (ms, NULL while pending),
//! `attempts`, `last_error`. Rows are published oldest first; the first
//! failure (Redis down) stops the run so the order holds, and the rest wait
//! for the next call: every state-changing request of the service, and the
//! admin flush.
//!
//! "Sent" means Redis accepted the PUBLISH: the event was handed to the
//! broker, not necessarily received (pub/sub keeps nothing for a consumer
//! that is not subscribed). Two instances may publish the same pending row
//! at once, and a crash between PUBLISH and marking the row sends it again:
//! delivery is at least once, and consumers apply an event id once
//! ([`crate::inbox`]).

use serde::Serialize;
use spin_sdk::sqlite::{Connection, Value};

use crate::db::{exec, row_int, row_opt_int, row_opt_text, row_text, text};
use crate::event::{Envelope, channel};
use crate::now_millis;

/// Rows read per query while publishing.
const BATCH: u32 = 100;
/// At most this many events per `publish_pending` call, so one request's
/// work stays bounded; the rest go with the next call.
pub const MAX_PER_RUN: u32 = 1000;

/// Creates the `outbox` table if missing. An older `outbox` table (the
/// checkout's first one, with `published_at`) gets the missing columns.
pub fn ensure_schema(conn: &Connection) -> Result<(), String> {
    exec(
        conn,
        "CREATE TABLE IF NOT EXISTS outbox (
            id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            correlation_id TEXT NOT NULL,
            envelope TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            sent_at INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT
        )",
        &[],
    )?;
    let columns = exec(conn, "SELECT name FROM pragma_table_info('outbox')", &[])?;
    let has = |name: &str| columns.rows.iter().any(|row| row.get::<&str>(0) == Some(name));
    if !has("sent_at") {
        exec(conn, "ALTER TABLE outbox ADD COLUMN sent_at INTEGER", &[])?;
        if has("published_at") {
            exec(conn, "UPDATE outbox SET sent_at = published_at WHERE published_at IS NOT NULL", &[])?;
        }
    }
    if !has("attempts") {
        exec(conn, "ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0", &[])?;
    }
    if !has("last_error") {
        exec(conn, "ALTER TABLE outbox ADD COLUMN last_error TEXT", &[])?;
    }
    exec(conn, "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (sent_at, created_at)", &[])?;
    Ok(())
}

/// Stores `envelope` for publishing. Call it inside the transaction of the
/// state change that decides the event (BEGIN IMMEDIATE … change …
/// enqueue … COMMIT), so both are kept or neither. The same event id
/// enqueued again is stored once.
pub fn enqueue(conn: &Connection, envelope: &Envelope) -> Result<(), String> {
    ensure_schema(conn)?;
    exec(
        conn,
        "INSERT INTO outbox (id, type, correlation_id, envelope, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (id) DO NOTHING",
        &[
            text(&envelope.id),
            text(&envelope.kind),
            text(&envelope.correlation_id),
            Value::Text(envelope.to_json()),
            Value::Integer(now_millis()),
        ],
    )?;
    Ok(())
}

/// What a publishing run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishReport {
    /// Events Redis accepted in this run.
    pub published: u32,
    /// Events still waiting.
    pub pending: u32,
    /// Why the run stopped early (Redis unreachable, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Publishes the pending events oldest first on their channels
/// (`shop.<type>`), marking each one sent; stops at the first failure,
/// recording it on that event (`attempts`, `last_error`), and leaves the
/// rest for the next call. Call it after COMMIT, never inside a transaction.
pub fn publish_pending(conn: &Connection, redis_address: &str) -> Result<PublishReport, String> {
    ensure_schema(conn)?;
    let mut redis: Option<spin_sdk::redis::Connection> = None;
    let mut published = 0;
    let mut error = None;
    'runs: while published < MAX_PER_RUN {
        let batch = exec(
            conn,
            "SELECT id, type, envelope FROM outbox WHERE sent_at IS NULL
             ORDER BY created_at, rowid LIMIT ?",
            &[Value::Integer(BATCH.min(MAX_PER_RUN - published).into())],
        )?;
        if batch.rows.is_empty() {
            break;
        }
        for row in &batch.rows {
            let (id, kind, envelope) = (row_text(row, 0), row_text(row, 1), row_text(row, 2));
            let outcome = match &redis {
                Some(redis) => publish(redis, &kind, &envelope),
                None => match spin_sdk::redis::Connection::open(redis_address) {
                    Ok(opened) => {
                        let outcome = publish(&opened, &kind, &envelope);
                        redis = Some(opened);
                        outcome
                    }
                    Err(e) => Err(format!("cannot connect to Redis at {redis_address}: {e}")),
                },
            };
            match outcome {
                Ok(()) => {
                    exec(
                        conn,
                        "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?",
                        &[Value::Integer(now_millis()), text(&id)],
                    )?;
                    published += 1;
                }
                Err(e) => {
                    eprintln!("outbox: publishing {kind} {id} failed: {e}");
                    exec(
                        conn,
                        "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                        &[text(&e), text(&id)],
                    )?;
                    error = Some(e);
                    break 'runs;
                }
            }
        }
    }
    Ok(PublishReport { published, pending: pending_count(conn)?, error })
}

fn publish(redis: &spin_sdk::redis::Connection, kind: &str, envelope: &str) -> Result<(), String> {
    redis
        .publish(&channel(kind), envelope.as_bytes())
        .map_err(|e| format!("Redis refused PUBLISH: {e}"))
}

/// How many events wait to be published.
pub fn pending_count(conn: &Connection) -> Result<u32, String> {
    ensure_schema(conn)?;
    let result = exec(conn, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL", &[])?;
    Ok(result.rows.first().map_or(0, |row| row_int(row, 0)) as u32)
}

/// An event in the outbox, as the admin routes show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxEntry {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub correlation_id: String,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// The newest `limit` events, newest first, sent or not.
pub fn recent(conn: &Connection, limit: u32) -> Result<Vec<OutboxEntry>, String> {
    ensure_schema(conn)?;
    let result = exec(
        conn,
        "SELECT id, type, correlation_id, created_at, sent_at, attempts, last_error FROM outbox
         ORDER BY created_at DESC, rowid DESC LIMIT ?",
        &[Value::Integer(limit.into())],
    )?;
    Ok(result
        .rows
        .iter()
        .map(|row| OutboxEntry {
            id: row_text(row, 0),
            kind: row_text(row, 1),
            correlation_id: row_text(row, 2),
            created_at: crate::rfc3339(row_int(row, 3)),
            sent_at: row_opt_int(row, 4).map(crate::rfc3339),
            attempts: row_int(row, 5),
            last_error: row_opt_text(row, 6),
        })
        .collect())
}
