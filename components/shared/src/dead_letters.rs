//! Dead letters: events a consumer could not apply, kept with the error and
//! the number of attempts, to be looked at and replayed.
//!
//! Table `dead_letters` (created on first use): `id` (`dl_…`), `event_id`
//! (unique: one dead letter per event, its attempts counted), `type`,
//! `envelope` (the message as received), `error` (the last one),
//! `attempts`, `status` (`pending`, or `replayed` once applied), times.
//! [`crate::inbox::apply_once`] writes them; [`replay`] runs the handler
//! again from the stored envelope, through the same inbox, so replaying an
//! event that meanwhile got applied changes nothing.

use serde::Serialize;
use serde_json::Value as Json;
use spin_sdk::sqlite::{Connection, Value};

use crate::db::{exec, row_int, row_opt_int, row_text, text};
use crate::event::Envelope;
use crate::inbox::{self, Applied, Failed};
use crate::{new_id, now_millis, rfc3339};

pub const PENDING: &str = "pending";
pub const REPLAYED: &str = "replayed";

/// Where a dead letter comes from.
pub const FROM_INBOX: &str = "inbox";
/// The service produced the event and its consumers never all acknowledged
/// it: replaying it publishes it again.
pub const FROM_OUTBOX: &str = "outbox";

const TABLE: &str = "CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    origin TEXT NOT NULL DEFAULT 'inbox',
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    envelope TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    replayed_at INTEGER,
    UNIQUE (origin, event_id)
)";

/// Creates the table on first use. A table of the first version (one dead
/// letter per event id, consumers' only) is rebuilt with the `origin`
/// column, its rows kept as the inbox's: a service that both produces and
/// consumes an event may hold one of each.
/// The `meta` key and version of the dead letters' tables.
pub(crate) const SCHEMA: (&str, &str) = ("dead_letters_schema", "2");

pub fn ensure_schema(conn: &Connection) -> Result<(), String> {
    crate::db::ensure_schema(conn, SCHEMA.0, SCHEMA.1, &[], &crate::db::as_text, |conn| {
        let columns = exec(conn, "SELECT name FROM pragma_table_info('dead_letters')", &[])?;
        let exists = !columns.rows.is_empty();
        let has_origin = columns.rows.iter().any(|row| row.get::<&str>(0) == Some("origin"));
        if exists && !has_origin {
            // The rebuild holds the write lock, and looks again under it: a
            // second instance upgrading at the same moment finds it done.
            let began = exec(conn, "BEGIN IMMEDIATE", &[]).is_ok();
            let rebuilt = (|| {
                let columns = exec(conn, "SELECT name FROM pragma_table_info('dead_letters')", &[])?;
                if columns.rows.iter().any(|row| row.get::<&str>(0) == Some("origin")) {
                    return Ok(());
                }
                exec(conn, "ALTER TABLE dead_letters RENAME TO dead_letters_v1", &[])?;
                exec(conn, TABLE, &[])?;
                exec(
                    conn,
                    "INSERT INTO dead_letters (id, origin, event_id, type, envelope, error, attempts, status, created_at, updated_at, replayed_at)
                     SELECT id, 'inbox', event_id, type, envelope, error, attempts, status, created_at, updated_at, replayed_at FROM dead_letters_v1",
                    &[],
                )?;
                exec(conn, "DROP TABLE dead_letters_v1", &[])?;
                Ok::<_, String>(())
            })();
            if began {
                exec(conn, if rebuilt.is_ok() { "COMMIT" } else { "ROLLBACK" }, &[])?;
            }
            rebuilt?;
        } else {
            exec(conn, TABLE, &[])?;
        }
        Ok(())
    })
}

/// Keeps a failed event (outside any transaction): a new dead letter, or
/// one more attempt of the existing one. Returns the dead letter's id and
/// how many attempts it has counted.
pub(crate) fn record(conn: &Connection, event_id: &str, kind: &str, envelope: &str, error: &str) -> Result<(String, i64), String> {
    let now = Value::Integer(now_millis());
    let result = exec(
        conn,
        "INSERT INTO dead_letters (id, origin, event_id, type, envelope, error, attempts, status, created_at, updated_at)
         VALUES (?, 'inbox', ?, ?, ?, ?, 1, 'pending', ?, ?)
         ON CONFLICT (origin, event_id) DO UPDATE SET
            error = excluded.error,
            attempts = dead_letters.attempts + 1,
            status = 'pending',
            updated_at = excluded.updated_at
         RETURNING id, attempts",
        &[text(&new_id("dl")), text(event_id), text(kind), text(envelope), text(error), now.clone(), now],
    )?;
    result
        .rows
        .first()
        .map(|row| (row_text(row, 0), row_int(row, 1)))
        .ok_or_else(|| "the dead letter was not stored".to_owned())
}

/// Keeps an event this service produced whose consumers did not all
/// acknowledge it after `publishes` publishes; `error` names them.
pub(crate) fn record_undelivered(conn: &Connection, event_id: &str, kind: &str, envelope: &str, error: &str, publishes: i64) -> Result<String, String> {
    let now = Value::Integer(now_millis());
    let result = exec(
        conn,
        "INSERT INTO dead_letters (id, origin, event_id, type, envelope, error, attempts, status, created_at, updated_at)
         VALUES (?, 'outbox', ?, ?, ?, ?, ?, 'pending', ?, ?)
         ON CONFLICT (origin, event_id) DO UPDATE SET
            error = excluded.error,
            attempts = excluded.attempts,
            status = 'pending',
            updated_at = excluded.updated_at
         RETURNING id",
        &[text(&new_id("dl")), text(event_id), text(kind), text(envelope), text(error), Value::Integer(publishes), now.clone(), now],
    )?;
    result.rows.first().map(|row| row_text(row, 0)).ok_or_else(|| "the dead letter was not stored".to_owned())
}

/// Inside the transaction that applied `event_id`: its dead letter, if
/// any, is resolved.
pub(crate) fn mark_replayed(conn: &Connection, event_id: &str) -> Result<(), String> {
    exec(
        conn,
        "UPDATE dead_letters SET status = 'replayed', replayed_at = ?, updated_at = ?
         WHERE event_id = ? AND origin = 'inbox' AND status = 'pending'",
        &[Value::Integer(now_millis()), Value::Integer(now_millis()), text(event_id)],
    )?;
    Ok(())
}

/// A dead letter as the admin routes show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    pub id: String,
    /// `inbox` (this service could not apply the event) or `outbox` (it
    /// produced the event and its consumers never all acknowledged it).
    pub origin: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub error: String,
    pub attempts: i64,
    /// `pending` or `replayed`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed_at: Option<String>,
    /// The envelope as JSON, or the raw text of a message that was none.
    pub envelope: Json,
}

const COLUMNS: &str = "id, event_id, type, error, attempts, status, created_at, updated_at, replayed_at, envelope, origin";

fn from_row(row: &spin_sdk::sqlite::RowResult) -> DeadLetter {
    let envelope = row_text(row, 9);
    DeadLetter {
        id: row_text(row, 0),
        origin: row_text(row, 10),
        event_id: row_text(row, 1),
        kind: row_text(row, 2),
        error: row_text(row, 3),
        attempts: row_int(row, 4),
        status: row_text(row, 5),
        created_at: rfc3339(row_int(row, 6)),
        updated_at: rfc3339(row_int(row, 7)),
        replayed_at: row_opt_int(row, 8).map(rfc3339),
        envelope: serde_json::from_str(&envelope).unwrap_or(Json::String(envelope)),
    }
}

/// Dead letters oldest first (the order to replay them in); only those of
/// `status` when given.
pub fn list(conn: &Connection, status: Option<&str>) -> Result<Vec<DeadLetter>, String> {
    ensure_schema(conn)?;
    let result = match status {
        Some(status) => exec(
            conn,
            &format!("SELECT {COLUMNS} FROM dead_letters WHERE status = ? ORDER BY created_at, rowid"),
            &[text(status)],
        )?,
        None => exec(conn, &format!("SELECT {COLUMNS} FROM dead_letters ORDER BY created_at, rowid"), &[])?,
    };
    Ok(result.rows.iter().map(from_row).collect())
}

/// How many dead letters wait for a person, and how many were replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pending: u32,
    pub replayed: u32,
}

pub fn counts(conn: &Connection) -> Result<Counts, String> {
    ensure_schema(conn)?;
    let result = exec(
        conn,
        "SELECT COALESCE(SUM(status = 'pending'), 0), COALESCE(SUM(status = 'replayed'), 0) FROM dead_letters",
        &[],
    )?;
    let row = result.rows.first();
    Ok(Counts {
        pending: row.map_or(0, |r| row_int(r, 0)) as u32,
        replayed: row.map_or(0, |r| row_int(r, 1)) as u32,
    })
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<DeadLetter>, String> {
    ensure_schema(conn)?;
    let result = exec(conn, &format!("SELECT {COLUMNS} FROM dead_letters WHERE id = ?"), &[text(id)])?;
    Ok(result.rows.first().map(from_row))
}

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replayed {
    /// The handler ran and succeeded; the dead letter is `replayed`.
    Applied,
    /// The event had been applied meanwhile (or replayed before); nothing ran.
    AlreadyApplied,
    /// An undelivered event of this service's outbox: it is due again, with
    /// a fresh count of publishes, and the dead letter is `replayed`.
    Republished,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    NotFound(String),
    /// The handler failed again; the dead letter counts one more attempt.
    Failed(Failed),
    /// The database failed.
    Store(String),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::NotFound(id) => write!(f, "there is no dead letter {id}"),
            ReplayError::Failed(failed) => write!(f, "the replay failed: {}", failed.error),
            ReplayError::Store(e) => write!(f, "the database failed: {e}"),
        }
    }
}

/// Runs the handler again on the dead letter's stored envelope, through the
/// inbox (so the event is still applied at most once). On success the dead
/// letter is marked `replayed` in the same transaction; on failure it
/// counts one more attempt and keeps the new error.
pub async fn replay(
    conn: &Connection,
    id: &str,
    handler: impl AsyncFnOnce(&Connection, &Envelope) -> Result<(), String>,
) -> Result<Replayed, ReplayError> {
    let letter = get(conn, id).map_err(ReplayError::Store)?.ok_or_else(|| ReplayError::NotFound(id.to_owned()))?;
    if letter.status == REPLAYED {
        return Ok(Replayed::AlreadyApplied);
    }
    if letter.origin == FROM_OUTBOX {
        crate::outbox::rearm(conn, &letter.event_id).map_err(ReplayError::Store)?;
        exec(
            conn,
            "UPDATE dead_letters SET status = 'replayed', replayed_at = ?, updated_at = ? WHERE id = ?",
            &[Value::Integer(now_millis()), Value::Integer(now_millis()), text(id)],
        )
        .map_err(ReplayError::Store)?;
        return Ok(Replayed::Republished);
    }
    let envelope = match Envelope::deserialize_value(&letter.envelope) {
        Ok(envelope) => envelope,
        Err(error) => {
            let raw = match &letter.envelope {
                Json::String(raw) => raw.clone(),
                other => other.to_string(),
            };
            let recorded = record(conn, &letter.event_id, &letter.kind, &raw, &error).ok();
            return Err(ReplayError::Failed(Failed::kept(recorded, error)));
        }
    };
    match inbox::apply_once(conn, &envelope, async |conn| handler(conn, &envelope).await).await {
        Ok(Applied::Applied) => Ok(Replayed::Applied),
        Ok(Applied::Duplicate) => Ok(Replayed::AlreadyApplied),
        Err(failed) => Err(ReplayError::Failed(failed)),
    }
}

impl Envelope {
    /// The envelope stored as JSON (a dead letter's), checked as [`Envelope::parse`] does.
    fn deserialize_value(value: &Json) -> Result<Envelope, String> {
        match value {
            Json::String(raw) => Envelope::parse(raw.as_bytes()),
            other => Envelope::parse(other.to_string().as_bytes()),
        }
    }
}
