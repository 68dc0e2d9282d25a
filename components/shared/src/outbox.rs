//! The transactional outbox: an event is stored in the service's own SQLite
//! database in the same transaction as the state change that decides it,
//! then published to Redis, and published again until every consumer has
//! acknowledged it.
//!
//! ```ignore
//! in_transaction(&conn, async |conn| {
//!     store.ship(conn, &shipment)?;                 // the state change
//!     outbox::enqueue(conn, &shipped_envelope)?;    // the event, same transaction
//!     Ok(())
//! }).await?;
//! event_admin::publish_quietly(&conn);              // after COMMIT
//! ```
//!
//! Table `outbox` (created on first use): `id` (the event id, so enqueueing
//! the same event twice stores it once), `type`, `correlation_id`,
//! `envelope` (JSON), `awaiting` (the consumers that must acknowledge it,
//! fixed when it is enqueued), `created_at`, `sent_at` (the first publish
//! Redis accepted), `publishes` (how many it accepted), `attempts` (every
//! try, failed ones included), `next_attempt_at`, `last_error`,
//! `delivered_at` (every consumer acknowledged) and `dead_at` (they did not
//! after [`Policy::max_publishes`]; the event is then a dead letter of this
//! service, to be replayed). Times are Unix milliseconds.
//!
//! An event is **due** until it is delivered or dead. [`deliver_due`] walks
//! the due events whose time has come, oldest first: one never published is
//! published; one published before is looked up in Redis
//! ([`crate::ack`]) — acknowledged by all, it is delivered; otherwise it is
//! published again, each time waiting longer ([`Policy::wait_after`]). It
//! runs after every state change of the service and on the service's cron
//! tick, so nothing waits for traffic. Redis being down stops the run at
//! the first failure and costs no publish from the budget: however long an
//! outage lasts, the events wait, in order.
//!
//! Each step claims its row with one conditional `UPDATE` (moving
//! `next_attempt_at` on), so two runs at once publish an event once; a
//! crash between claiming and publishing only delays it to its next time.
//! Delivery is at least once, and consumers apply an event id once
//! ([`crate::inbox`]).

use crate::trace::{Kind, Span};
use serde::Serialize;
use spin_sdk::sqlite::{Connection, Value};

use crate::db::{exec, row_int, row_opt_int, row_opt_text, row_text, text};
use crate::event::{Envelope, channel, consumers};
use crate::{ack, dead_letters, now_millis};

/// Rows read per query while delivering.
const BATCH: u32 = 100;
/// At most this many events per run, so one request's work stays bounded;
/// the rest go with the next run.
pub const MAX_PER_RUN: u32 = 1000;
/// At most this many re-publishes per run: after a restart that lost the
/// acknowledgements, the backlog goes out a tick at a time instead of all at
/// once into consumers that would refuse most of it (instance limits).
pub const MAX_REPUBLISHES_PER_RUN: u32 = 100;

/// How patiently events are re-published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Publishes Redis accepted after which an event still not acknowledged
    /// by every consumer becomes a dead letter.
    pub max_publishes: i64,
}

/// The Spin variable that overrides [`Policy::max_publishes`].
pub const MAX_PUBLISHES_VARIABLE: &str = "event_publish_attempts";

/// The first re-check waits this long after a publish: in the steady state
/// the consumers have acknowledged by then, and nothing is published twice.
const FIRST_WAIT_MS: i64 = 5_000;
/// Waits double up to this.
const LONGEST_WAIT_MS: i64 = 60_000;
/// After a publish Redis refused (down, unreachable): the next try.
const RETRY_WHEN_DOWN_MS: i64 = 2_000;

impl Default for Policy {
    /// 20 publishes: with the waits below, about 17 minutes of consumers
    /// not answering before an operator is asked.
    fn default() -> Self {
        Policy { max_publishes: 20 }
    }
}

impl Policy {
    /// The component's policy: the default, or `event_publish_attempts`
    /// (1 to 1000) when the component has that variable.
    pub fn from_variables() -> Policy {
        let configured = spin_sdk::variables::get(MAX_PUBLISHES_VARIABLE).ok().and_then(|v| v.trim().parse::<i64>().ok());
        match configured {
            Some(n) if (1..=1000).contains(&n) => Policy { max_publishes: n },
            Some(n) => {
                eprintln!("outbox: {MAX_PUBLISHES_VARIABLE} = {n} is out of 1..=1000; using {}", Policy::default().max_publishes);
                Policy::default()
            }
            None => Policy::default(),
        }
    }

    /// How long to wait for acknowledgements after the `publishes`-th
    /// publish: 5 s, 10 s, 20 s, 40 s, then every 60 s.
    pub fn wait_after(publishes: i64) -> i64 {
        let doublings = (publishes.max(1) - 1).min(10) as u32;
        (FIRST_WAIT_MS << doublings).min(LONGEST_WAIT_MS)
    }
}

/// Creates the `outbox` table on first use, and brings an older one up to
/// date: the first version's rows that were sent count as delivered (they
/// predate acknowledgements; re-publishing history would only make noise),
/// those never sent are due.
///
/// Instances of a service may set a fresh database up at the same moment:
/// a new table is created whole in one statement, and the upgrade of an old
/// one takes each column only if it is missing and lets a second instance
/// that added it first win ("duplicate column").
pub fn ensure_schema(conn: &Connection) -> Result<(), String> {
    crate::db::ensure_schema(conn, "outbox_schema", "2", &[], &crate::db::as_text, |conn| {
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
                last_error TEXT,
                awaiting TEXT NOT NULL DEFAULT '',
                publishes INTEGER NOT NULL DEFAULT 0,
                next_attempt_at INTEGER NOT NULL DEFAULT 0,
                delivered_at INTEGER,
                dead_at INTEGER
            )",
            &[],
        )?;
        let columns = exec(conn, "SELECT name FROM pragma_table_info('outbox')", &[])?;
        let has = |name: &str| columns.rows.iter().any(|row| row.get::<&str>(0) == Some(name));
        let add = |column: &str| match exec(conn, &format!("ALTER TABLE outbox ADD COLUMN {column}"), &[]) {
            Err(e) if e.contains("duplicate column") => Ok(()),
            other => other.map(|_| ()),
        };
        if !has("sent_at") {
            add("sent_at INTEGER")?;
            if has("published_at") {
                exec(conn, "UPDATE outbox SET sent_at = published_at WHERE published_at IS NOT NULL AND sent_at IS NULL", &[])?;
            }
        }
        for (name, column) in [
            ("attempts", "attempts INTEGER NOT NULL DEFAULT 0"),
            ("last_error", "last_error TEXT"),
            ("publishes", "publishes INTEGER NOT NULL DEFAULT 0"),
            ("next_attempt_at", "next_attempt_at INTEGER NOT NULL DEFAULT 0"),
            ("delivered_at", "delivered_at INTEGER"),
            ("dead_at", "dead_at INTEGER"),
        ] {
            if !has(name) {
                add(column)?;
            }
        }
        if !has("awaiting") {
            add("awaiting TEXT NOT NULL DEFAULT ''")?;
            // Only the first version's rows: they have no consumers listed.
            exec(
                conn,
                "UPDATE outbox SET delivered_at = sent_at, publishes = 1
                 WHERE sent_at IS NOT NULL AND awaiting = '' AND publishes = 0",
                &[],
            )?;
        }
        exec(conn, "DROP INDEX IF EXISTS outbox_pending", &[])?;
        exec(
            conn,
            "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_attempt_at)
             WHERE delivered_at IS NULL AND dead_at IS NULL",
            &[],
        )?;
        Ok(())
    })
}

/// Stores `envelope` for publishing. Call it inside the transaction of the
/// state change that decides the event (BEGIN IMMEDIATE … change …
/// enqueue … COMMIT), so both are kept or neither. The same event id
/// enqueued again is stored once.
pub fn enqueue(conn: &Connection, envelope: &Envelope) -> Result<(), String> {
    ensure_schema(conn)?;
    let now = now_millis();
    exec(
        conn,
        "INSERT INTO outbox (id, type, correlation_id, envelope, created_at, awaiting, next_attempt_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO NOTHING",
        &[
            text(&envelope.id),
            text(&envelope.kind),
            text(&envelope.correlation_id),
            Value::Text(envelope.to_json()),
            Value::Integer(now),
            Value::Text(consumers(&envelope.kind).join(",")),
            Value::Integer(now),
        ],
    )?;
    Ok(())
}

/// What a delivery run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PublishReport {
    /// Events Redis accepted for the first time in this run.
    pub published: u32,
    /// Events published again because a consumer had not acknowledged them.
    pub republished: u32,
    /// Events found acknowledged by every consumer: done.
    pub delivered: u32,
    /// Events that ran out of publishes: now dead letters of this service.
    pub undeliverable: u32,
    /// Events still due.
    pub pending: u32,
    /// Why the run stopped early (Redis unreachable, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Publishes every due event now, whatever its wait (the admin flush), then
/// runs [`deliver_due`].
pub fn flush(conn: &Connection, redis_address: &str, policy: Policy) -> Result<PublishReport, String> {
    ensure_schema(conn)?;
    exec(
        conn,
        "UPDATE outbox SET next_attempt_at = ? WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at > ?",
        &[Value::Integer(now_millis()), Value::Integer(now_millis())],
    )?;
    deliver_due(conn, redis_address, policy)
}

/// Makes an undelivered (dead) event due again with a fresh budget: the
/// replay of an outbox dead letter.
pub(crate) fn rearm(conn: &Connection, event_id: &str) -> Result<(), String> {
    ensure_schema(conn)?;
    exec(
        conn,
        "UPDATE outbox SET dead_at = NULL, delivered_at = NULL, publishes = 0, next_attempt_at = ? WHERE id = ?",
        &[Value::Integer(now_millis()), text(event_id)],
    )?;
    Ok(())
}

/// Which due events a run looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only those never published: what a request just committed. Quick,
    /// so it can follow every state change.
    New,
    /// Every due event whose time has come: the cron tick's and the
    /// flush's work, acknowledgements looked up, re-publishes made.
    Due,
}

/// Walks the due events whose time has come, oldest first (see the module
/// doc). Call it after COMMIT, never inside a transaction.
pub fn deliver_due(conn: &Connection, redis_address: &str, policy: Policy) -> Result<PublishReport, String> {
    deliver(conn, redis_address, policy, Scope::Due)
}

/// Publishes the events never published yet, oldest first; the rest is
/// left for the cron tick.
pub fn publish_new(conn: &Connection, redis_address: &str, policy: Policy) -> Result<PublishReport, String> {
    deliver(conn, redis_address, policy, Scope::New)
}

fn deliver(conn: &Connection, redis_address: &str, policy: Policy, scope: Scope) -> Result<PublishReport, String> {
    ensure_schema(conn)?;
    let mut report = PublishReport::default();
    let mut redis: Option<spin_sdk::redis::Connection> = None;
    let mut seen = 0;
    'runs: while seen < MAX_PER_RUN {
        let now = now_millis();
        // The limit is written into the SQL, not bound: SQLite plans with a
        // bound LIMIT's value, so binding it again makes it prepare the
        // statement again each time (this runs after every checkout).
        let batch = exec(
            conn,
            &format!(
                "SELECT id, type, envelope, awaiting, publishes FROM outbox
                 WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= ? AND (? OR publishes = 0)
                 ORDER BY created_at, rowid LIMIT {}",
                BATCH.min(MAX_PER_RUN - seen)
            ),
            &[Value::Integer(now), Value::Integer((scope == Scope::Due).into())],
        )?;
        if batch.rows.is_empty() {
            break;
        }
        // Marked together at the end of the batch: one write, not one per event.
        let mut delivered: Vec<Due> = Vec::new();
        let mut stop = None;
        for row in &batch.rows {
            seen += 1;
            let due = Due {
                id: row_text(row, 0),
                kind: row_text(row, 1),
                envelope: row_text(row, 2),
                awaiting: awaiting(&row_text(row, 1), &row_text(row, 3)),
                publishes: row_int(row, 4),
            };
            if redis.is_none() {
                match spin_sdk::redis::Connection::open(redis_address) {
                    Ok(opened) => redis = Some(opened),
                    Err(e) => {
                        let e = format!("cannot connect to Redis at {}: {e}", crate::event::redacted(redis_address));
                        failed(conn, &due, &e)?;
                        stop = Some(e);
                        break;
                    }
                }
            }
            let Some(connection) = &redis else { break };
            let may_republish = report.republished < MAX_REPUBLISHES_PER_RUN;
            match step(conn, connection, &due, policy, may_republish) {
                Ok(Step::Deferred) => break,
                Ok(Step::Published) => report.published += 1,
                Ok(Step::Republished) => report.republished += 1,
                Ok(Step::Delivered) => delivered.push(due),
                Ok(Step::Undeliverable) => report.undeliverable += 1,
                Ok(Step::Taken) => {}
                Err(StepError::Redis(e)) => {
                    eprintln!("outbox: {} {}: {e}", due.kind, due.id);
                    failed(conn, &due, &e)?;
                    stop = Some(e);
                    break;
                }
                Err(StepError::Store(e)) => return Err(e),
            }
        }
        report.delivered += delivered.len() as u32;
        mark_delivered(conn, redis.as_ref(), &delivered)?;
        if let Some(e) = stop {
            report.error = Some(e);
            break 'runs;
        }
        if report.republished >= MAX_REPUBLISHES_PER_RUN {
            break 'runs; // the rest next run
        }
    }
    report.pending = pending_count(conn)?;
    Ok(report)
}

/// Every consumer has these: they are done, and their acknowledgements can go.
fn mark_delivered(conn: &Connection, redis: Option<&spin_sdk::redis::Connection>, delivered: &[Due]) -> Result<(), String> {
    if delivered.is_empty() {
        return Ok(());
    }
    let marks = vec!["?"; delivered.len()].join(", ");
    let mut params = vec![Value::Integer(now_millis())];
    params.extend(delivered.iter().map(|d| text(&d.id)));
    exec(conn, &format!("UPDATE outbox SET delivered_at = ?, last_error = NULL WHERE id IN ({marks})"), &params)?;
    if let Some(redis) = redis {
        for due in delivered {
            // Left behind, a key expires by itself.
            if let Err(e) = ack::forget(redis, &due.id, &due.awaiting) {
                eprintln!("outbox: {e}");
            }
        }
    }
    Ok(())
}

struct Due {
    id: String,
    kind: String,
    envelope: String,
    awaiting: Vec<String>,
    publishes: i64,
}

enum Step {
    Published,
    Republished,
    Delivered,
    Undeliverable,
    /// Another run claimed it first.
    Taken,
    /// It must be published again, and this run has re-published enough.
    Deferred,
}

enum StepError {
    Redis(String),
    Store(String),
}

/// The consumers a row waits for: as stored, or (a row from before
/// acknowledgements) its type's.
fn awaiting(kind: &str, stored: &str) -> Vec<String> {
    if stored.is_empty() {
        consumers(kind).iter().map(|c| (*c).to_owned()).collect()
    } else {
        stored.split(',').map(str::to_owned).collect()
    }
}

fn step(conn: &Connection, redis: &spin_sdk::redis::Connection, due: &Due, policy: Policy, may_republish: bool) -> Result<Step, StepError> {
    let store = StepError::Store;
    let now = now_millis();
    if due.publishes > 0 {
        let missing = ack::missing(redis, &due.id, &due.awaiting).map_err(StepError::Redis)?;
        if missing.is_empty() {
            return Ok(Step::Delivered);
        }
        if due.publishes >= policy.max_publishes {
            let error = format!(
                "not acknowledged by {} after {} publishes",
                missing.join(", "),
                due.publishes
            );
            eprintln!("outbox: {} {} is undeliverable: {error}", due.kind, due.id);
            exec(conn, "UPDATE outbox SET dead_at = ?, last_error = ? WHERE id = ?", &[Value::Integer(now), text(&error), text(&due.id)])
                .map_err(store)?;
            dead_letters::ensure_schema(conn).map_err(store)?;
            dead_letters::record_undelivered(conn, &due.id, &due.kind, &due.envelope, &error, due.publishes).map_err(store)?;
            return Ok(Step::Undeliverable);
        }
        if !may_republish {
            return Ok(Step::Deferred);
        }
        eprintln!("outbox: {} {} not yet acknowledged by {}; publishing it again", due.kind, due.id, missing.join(", "));
    }
    let claimed = exec(
        conn,
        "UPDATE outbox SET publishes = publishes + 1, attempts = attempts + 1, sent_at = COALESCE(sent_at, ?),
            next_attempt_at = ?, last_error = NULL
         WHERE id = ? AND delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= ?
         RETURNING publishes",
        &[
            Value::Integer(now),
            Value::Integer(now + Policy::wait_after(due.publishes + 1)),
            text(&due.id),
            Value::Integer(now),
        ],
    )
    .map_err(store)?;
    if claimed.rows.is_empty() {
        return Ok(Step::Taken);
    }
    // In the event's own trace, whichever run publishes it (the request
    // that decided it, a later tick, an operator's flush).
    let mut span = Span::continuing(traceparent_of(&due.envelope).as_deref(), &format!("publish {}", due.kind), Kind::Producer);
    span.attribute("messaging.message.id", due.id.as_str());
    span.attribute("shop.publishes", due.publishes);
    if let Err(e) = redis.publish(&channel(&due.kind), due.envelope.as_bytes()) {
        span.fail(&e.to_string());
        // Not a publish: give it back to the budget.
        exec(conn, "UPDATE outbox SET publishes = publishes - 1 WHERE id = ?", &[text(&due.id)]).map_err(store)?;
        return Err(StepError::Redis(format!("Redis refused PUBLISH: {e}")));
    }
    Ok(if due.publishes == 0 { Step::Published } else { Step::Republished })
}

/// The `traceparent` a stored envelope carries, if any.
fn traceparent_of(envelope: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Carrier {
        traceparent: Option<String>,
    }
    serde_json::from_str::<Carrier>(envelope).ok()?.traceparent
}

/// Records a try that Redis did not take; the event is tried again soon.
fn failed(conn: &Connection, due: &Due, error: &str) -> Result<(), String> {
    exec(
        conn,
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
        &[text(error), Value::Integer(now_millis() + RETRY_WHEN_DOWN_MS), text(&due.id)],
    )?;
    Ok(())
}

/// How many events are due (not delivered, not dead).
pub fn pending_count(conn: &Connection) -> Result<u32, String> {
    ensure_schema(conn)?;
    let result = exec(conn, "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL AND dead_at IS NULL", &[])?;
    Ok(result.rows.first().map_or(0, |row| row_int(row, 0)) as u32)
}

/// What the outbox holds, for the operator's view of what is not done.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Events not yet acknowledged by every consumer.
    pub due: u32,
    /// How long the oldest of them has waited, in seconds.
    pub oldest_due_age_seconds: Option<f64>,
    /// Publishes Redis accepted, over every event kept.
    pub publishes: i64,
    /// Of those, the ones after an event's first: re-publishes.
    pub republishes: i64,
    /// Events acknowledged by every consumer.
    pub delivered: u32,
    /// Events that ran out of publishes (dead letters of this service).
    pub undeliverable: u32,
    /// The last error of the oldest due event, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_due_error: Option<String>,
}

pub fn summary(conn: &Connection) -> Result<Summary, String> {
    ensure_schema(conn)?;
    let totals = exec(
        conn,
        "SELECT
            COALESCE(SUM(delivered_at IS NULL AND dead_at IS NULL), 0),
            COALESCE(SUM(publishes), 0),
            COALESCE(SUM(MAX(publishes - 1, 0)), 0),
            COALESCE(SUM(delivered_at IS NOT NULL), 0),
            COALESCE(SUM(dead_at IS NOT NULL), 0)
         FROM outbox",
        &[],
    )?;
    let oldest = exec(
        conn,
        "SELECT created_at, last_error FROM outbox WHERE delivered_at IS NULL AND dead_at IS NULL
         ORDER BY created_at, rowid LIMIT 1",
        &[],
    )?;
    let row = totals.rows.first();
    let int = |i| row.map_or(0, |row| row_int(row, i));
    Ok(Summary {
        due: int(0) as u32,
        oldest_due_age_seconds: oldest.rows.first().map(|row| (now_millis() - row_int(row, 0)).max(0) as f64 / 1000.0),
        publishes: int(1),
        republishes: int(2),
        delivered: int(3) as u32,
        undeliverable: int(4) as u32,
        oldest_due_error: oldest.rows.first().and_then(|row| row_opt_text(row, 1)),
    })
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
    pub publishes: i64,
    /// The consumers it waits for.
    pub awaiting: Vec<String>,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub dead_at: Option<String>,
    pub last_error: Option<String>,
}

/// The newest `limit` events, newest first, sent or not.
pub fn recent(conn: &Connection, limit: u32) -> Result<Vec<OutboxEntry>, String> {
    ensure_schema(conn)?;
    let result = exec(
        conn,
        "SELECT id, type, correlation_id, created_at, sent_at, attempts, last_error, publishes, awaiting,
                next_attempt_at, delivered_at, dead_at FROM outbox
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
            publishes: row_int(row, 7),
            awaiting: awaiting(&row_text(row, 1), &row_text(row, 8)),
            next_attempt_at: row_opt_int(row, 11)
                .is_none()
                .then(|| row_opt_int(row, 9))
                .flatten()
                .filter(|_| row_opt_int(row, 10).is_none())
                .map(crate::rfc3339),
            delivered_at: row_opt_int(row, 10).map(crate::rfc3339),
            dead_at: row_opt_int(row, 11).map(crate::rfc3339),
        })
        .collect())
}
