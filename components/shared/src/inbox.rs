//! Idempotent consumers: a service applies each event id once, whatever
//! Redis or the outboxes deliver twice.
//!
//! Table `inbox` (created on first use): `event_id` (primary key), `type`,
//! `applied_at` (ms). [`apply_once`] records the id and runs the handler in
//! one `BEGIN IMMEDIATE` transaction: an id already recorded is skipped, and
//! two instances racing on the same event serialize on the write lock, so
//! the second one sees the first one's record. A handler that fails has its
//! changes rolled back and the event kept as a dead letter
//! ([`crate::dead_letters`]) to be replayed.
//!
//! The handler runs inside the transaction, holding the database's write
//! lock: keep it short. Calls it makes to other services happen even if the
//! transaction is later rolled back, so they must be idempotent too (commit
//! a reservation by id, reserve with a derived id, …).

use spin_sdk::sqlite::{Connection, Value};

use crate::db::{self, exec, text};
use crate::dead_letters;
use crate::event::Envelope;
use crate::now_millis;
use crate::trace::{Kind, Span};

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The handler ran and its changes are committed.
    Applied,
    /// The event id was applied before; the handler did not run.
    Duplicate,
}

/// An event that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The dead letter now holding the event; `None` only when even that
    /// could not be written (the database itself failed).
    pub dead_letter_id: Option<String>,
    /// How many times the event has failed here, this time included (0 when
    /// no dead letter could be written).
    pub attempts: i64,
    pub error: String,
}

impl Failed {
    pub(crate) fn kept(recorded: Option<(String, i64)>, error: String) -> Failed {
        let (dead_letter_id, attempts) = recorded.map_or((None, 0), |(id, attempts)| (Some(id), attempts));
        Failed { dead_letter_id, attempts, error }
    }
}

/// A consumer gives up on an event after it failed this many times: it then
/// acknowledges it, so the producer stops re-publishing, and the dead
/// letter waits for a person (fix the cause, replay). Until then every
/// re-publish is another try, spaced by the producer's backoff: an event
/// that came before the one it depends on (a receipt before its order)
/// applies once the other has arrived.
pub const GIVE_UP_AFTER_ATTEMPTS: i64 = 5;

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.dead_letter_id {
            Some(id) => write!(f, "{} (kept as dead letter {id})", self.error),
            None => write!(f, "{} (no dead letter could be written)", self.error),
        }
    }
}

impl std::error::Error for Failed {}

/// Sets the inbox (and the dead letters) up on first use, behind a version
/// ([`crate::db::ensure_schema`]): in the steady state one query per event.
pub fn ensure_schema(conn: &Connection) -> Result<(), String> {
    const INBOX: &str = "CREATE TABLE IF NOT EXISTS inbox (
        event_id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        applied_at INTEGER NOT NULL
    )";
    // Both are current in the steady state: one query for the two.
    if crate::db::all_current(conn, &[("inbox_schema", "1"), dead_letters::SCHEMA]) {
        return Ok(());
    }
    crate::db::ensure_schema(conn, "inbox_schema", "1", &[INBOX], &crate::db::as_text, |_| Ok(()))?;
    dead_letters::ensure_schema(conn)
}

/// Runs `handler` for `envelope` unless its id was applied before, and
/// records the id, in one transaction. On failure the handler's changes are
/// rolled back and the event is stored as a dead letter (or its dead
/// letter's attempts counted), which is committed.
pub async fn apply_once(
    conn: &Connection,
    envelope: &Envelope,
    handler: impl AsyncFnOnce(&Connection) -> Result<(), String>,
) -> Result<Applied, Failed> {
    let store_failed = |error: String| Failed { dead_letter_id: None, attempts: 0, error };
    ensure_schema(conn).map_err(store_failed)?;
    db::begin(conn, "BEGIN IMMEDIATE", &db::as_text).map_err(store_failed)?;
    let outcome = async {
        // Recorded first, in one statement with the check: a row comes back
        // only when the id is new. A failing handler rolls the record back.
        let recorded = exec(
            conn,
            "INSERT INTO inbox (event_id, type, applied_at) VALUES (?, ?, ?)
             ON CONFLICT (event_id) DO NOTHING RETURNING 1",
            &[text(&envelope.id), text(&envelope.kind), Value::Integer(now_millis())],
        )?;
        let applied = if recorded.rows.is_empty() {
            Applied::Duplicate
        } else {
            handler(conn).await?;
            Applied::Applied
        };
        dead_letters::mark_replayed(conn, &envelope.id)?;
        Ok::<_, String>(applied)
    }
    .await;
    // Committed, or rolled back before the dead letter is recorded.
    match db::end(conn, outcome, &db::as_text) {
        Ok(applied) => Ok(applied),
        Err(error) => {
            eprintln!("event {} ({}) failed: {error}", envelope.id, envelope.kind);
            let recorded = dead_letters::record(conn, &envelope.id, &envelope.kind, &envelope.to_json(), &error)
                .map_err(|e| eprintln!("cannot record the dead letter of {}: {e}", envelope.id))
                .ok();
            Err(Failed::kept(recorded, error))
        }
    }
}

/// What a Redis receiver does with a message: reads the envelope, applies
/// it once, and acknowledges it as `consumer` ([`crate::ack`]) once it is
/// applied, was a duplicate, or failed [`GIVE_UP_AFTER_ATTEMPTS`] times; a
/// failure before that is not acknowledged, so the producer publishes the
/// event again. A message that is not an envelope becomes a dead letter too
/// (its text kept, under an id derived from its bytes), so nothing the
/// service was sent disappears silently.
pub async fn receive(
    conn: &Connection,
    consumer: &str,
    payload: &[u8],
    handler: impl AsyncFnOnce(&Connection, &Envelope) -> Result<(), String>,
) -> Result<Applied, Failed> {
    match Envelope::parse(payload) {
        Ok(envelope) => {
            let mut span = Span::continuing(envelope.traceparent.as_deref(), &format!("{consumer} consumes {}", envelope.kind), Kind::Consumer);
            span.attribute("shop.correlation_id", envelope.correlation_id.as_str());
            span.attribute("messaging.message.id", envelope.id.as_str());
            span.attribute("shop.consumer", consumer);
            let outcome = apply_once(conn, &envelope, async |conn| handler(conn, &envelope).await).await;
            if let Err(failed) = &outcome {
                span.fail(&failed.error);
            }
            // One line per delivery, on every runtime (Spin logs nothing of
            // its own per message): what an operator greps for.
            let (what, done) = match &outcome {
                Ok(Applied::Applied) => ("applied".to_owned(), true),
                Ok(Applied::Duplicate) => ("a duplicate, changes nothing".to_owned(), true),
                Err(failed) if failed.attempts >= GIVE_UP_AFTER_ATTEMPTS => {
                    (format!("failed {} times, given up (a dead letter to replay)", failed.attempts), true)
                }
                Err(failed) => (format!("failed (attempt {}, it will come again)", failed.attempts), false),
            };
            eprintln!("received {} event {}: {what}", envelope.kind, envelope.id);
            if done {
                let acked = crate::event::redis_address()
                    .and_then(|address| crate::ack::acknowledge(&address, &envelope.id, consumer));
                if let Err(e) = acked {
                    // The producer publishes it again and this inbox skips it.
                    eprintln!("cannot acknowledge {} {}: {e}", envelope.kind, envelope.id);
                }
            }
            outcome
        }
        Err(error) => {
            let event_id = format!("unreadable_{}", &crate::sha256_hex(payload)[..32]);
            let message = String::from_utf8_lossy(&payload[..payload.len().min(64 * 1024)]).into_owned();
            eprintln!("unreadable message {event_id}: {error}");
            let recorded = ensure_schema(conn)
                .and_then(|()| dead_letters::record(conn, &event_id, "", &message, &error))
                .map_err(|e| eprintln!("cannot record the dead letter of {event_id}: {e}"))
                .ok();
            Err(Failed::kept(recorded, error))
        }
    }
}
