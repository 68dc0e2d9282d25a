//! The checkout's own SQLite database (label `checkout`): the saga journal
//! and the outbox, the only code that talks to it. Checkout never opens
//! another service's store; it reaches them through their WIT interfaces.
//!
//! Tables:
//! - `checkouts`: one row per checkout. `idempotency_key` is UNIQUE: claiming
//!   a key is one `BEGIN IMMEDIATE` transaction (look up, insert), so of two
//!   racing requests exactly one inserts. `fingerprint` is a SHA-256 of the
//!   checked request (card included, so a key cannot be reused with another
//!   card), `request` the request without its card, `state` what the saga has
//!   learned (JSON), `owner` the token of whoever drives the saga now (the
//!   request, or a recovery that took it over), `response_*` the final answer
//!   that every replay of the key gets.
//! - `steps`: the timeline, one row per step: outcome `running` (started; the
//!   call may or may not have happened), `ok` or `failed`, start time and
//!   duration, and when its compensation ran.
//! - `outbox`: events to publish (`order.placed`), the shared transactional
//!   outbox's table (`shop_shared::outbox`) in this same database, published
//!   to Redis after each checkout ([`CheckoutStore::publish_events`]) and by
//!   the admin flush. (`inbox`/`dead_letters` exist only so the admin routes
//!   answer like every service's: checkout consumes no events.)
//!
//! Every write that moves a saga on checks that its writer still owns the
//! checkout (`owner = ?` … `RETURNING id`): a recovery that took a stale
//! checkout over makes the original request stop at its next step.

use shop_shared::event_admin::EventStore;
use shop_shared::{ApiError, db, now_millis};
use spin_sdk::sqlite::{Connection, QueryResult, RowResult, Value};

use crate::domain::{OrderRequest, Outcome, SagaState, Status, Step, StepRecord, StoredError};
use crate::saga::{Entry, Journal};

const DATABASE: &str = "checkout";
/// Raise it when [`SCHEMA`] changes: a database at another version is set
/// up again (every statement is `IF NOT EXISTS`).
const SCHEMA_VERSION: &str = "1";

const SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS checkouts (
        id TEXT PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        fingerprint TEXT NOT NULL,
        status TEXT NOT NULL,
        owner TEXT NOT NULL,
        request TEXT NOT NULL,
        state TEXT NOT NULL,
        order_id TEXT,
        response_status INTEGER,
        response_body TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS checkouts_by_status ON checkouts (status, updated_at)",
    "CREATE TABLE IF NOT EXISTS steps (
        checkout_id TEXT NOT NULL,
        step TEXT NOT NULL,
        position INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        duration_ms INTEGER,
        error TEXT,
        compensated_at INTEGER,
        compensation_ms INTEGER,
        PRIMARY KEY (checkout_id, step)
    )",
];

pub struct CheckoutStore {
    db: Connection,
}

/// A checkout as the journal holds it.
#[derive(Debug, Clone)]
pub struct CheckoutRow {
    pub id: String,
    pub fingerprint: String,
    pub status: Status,
    pub request: OrderRequest,
    pub state: SagaState,
    pub order_id: Option<String>,
    pub response: Option<StoredError>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One line of the timeline.
#[derive(Debug, Clone)]
pub struct StepRow {
    pub record: StepRecord,
    pub started_at: i64,
    pub duration_ms: Option<i64>,
    pub compensated_at: Option<i64>,
    pub compensation_ms: Option<i64>,
}

pub enum Claim {
    /// The key is new: this request owns the new checkout.
    New { id: String, owner: String },
    /// The key was used before.
    Existing(Box<CheckoutRow>),
}

const ROW_COLUMNS: &str =
    "id, fingerprint, status, request, state, order_id, response_status, response_body, created_at, updated_at";

impl CheckoutStore {
    pub fn open() -> Result<Self, ApiError> {
        let db = db::open(DATABASE, SCHEMA_VERSION, &SCHEMA, |doing, e| unavailable(doing, e))?;
        Ok(CheckoutStore { db })
    }

    /// Claims `key` for a new checkout, or returns the checkout that has it.
    pub fn claim(&self, key: &str, fingerprint: &str, request: &OrderRequest) -> Result<Claim, ApiError> {
        self.transaction(|store| {
            if let Some(existing) = store.row_where("idempotency_key = ?", Value::Text(key.to_owned()))? {
                return Ok(Claim::Existing(Box::new(existing)));
            }
            let id = shop_shared::new_id("chk");
            let owner = shop_shared::new_id("own");
            let now = now_millis();
            store.query(
                "INSERT INTO checkouts (id, idempotency_key, fingerprint, status, owner, request, state, created_at, updated_at)
                 VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                &[
                    Value::Text(id.clone()),
                    Value::Text(key.to_owned()),
                    Value::Text(fingerprint.to_owned()),
                    Value::Text(owner.clone()),
                    Value::Text(to_json(request)?),
                    Value::Text(to_json(&SagaState::default())?),
                    Value::Integer(now),
                    Value::Integer(now),
                ],
            )?;
            Ok(Claim::New { id, owner })
        })
    }

    pub fn checkout(&self, id: &str) -> Result<Option<CheckoutRow>, ApiError> {
        self.row_where("id = ?", Value::Text(id.to_owned()))
    }

    pub fn steps(&self, id: &str) -> Result<Vec<StepRow>, ApiError> {
        let result = self.query(
            "SELECT step, outcome, started_at, duration_ms, compensated_at, compensation_ms
             FROM steps WHERE checkout_id = ? ORDER BY position",
            &[Value::Text(id.to_owned())],
        )?;
        result.rows.iter().map(step_from_row).collect()
    }

    /// How many checkouts ended (or stand) each way: `completed`,
    /// `payment_declined` (402), `out_of_stock` (409), `failed` (any other
    /// answer) and `in_progress` — for `GET /api/admin/metrics`.
    pub fn outcomes(&self) -> Result<Vec<(String, i64)>, ApiError> {
        let result = self.query(
            "SELECT CASE
                 WHEN status = 'completed' THEN 'completed'
                 WHEN status IN ('running', 'compensating') THEN 'in_progress'
                 WHEN response_status = 402 THEN 'payment_declined'
                 WHEN response_status = 409 THEN 'out_of_stock'
                 ELSE 'failed'
             END AS outcome, COUNT(*) FROM checkouts GROUP BY outcome ORDER BY outcome",
            &[],
        )?;
        Ok(result
            .rows
            .iter()
            .filter_map(|row| Some((row.get::<&str>(0)?.to_owned(), row.get::<i64>(1)?)))
            .collect())
    }

    /// Unfinished checkouts nobody has moved on since `cutoff`, oldest first.
    pub fn stale(&self, cutoff: i64, limit: u32) -> Result<Vec<String>, ApiError> {
        // The limit is in the SQL, not bound: SQLite plans with a bound
        // LIMIT's value and so prepares the statement again at every binding
        // (this runs before every checkout).
        let result = self.query(
            &format!(
                "SELECT id FROM checkouts WHERE status IN ('running', 'compensating') AND updated_at < ?
                 ORDER BY updated_at LIMIT {limit}"
            ),
            &[Value::Integer(cutoff)],
        )?;
        Ok(result.rows.iter().filter_map(|row| row.get::<&str>(0).map(str::to_owned)).collect())
    }

    /// Makes `owner` the checkout's driver if it is still unfinished and
    /// still stale; `false` if someone else moved it on meanwhile.
    pub fn take_over(&self, id: &str, owner: &str, cutoff: i64) -> Result<bool, ApiError> {
        let result = self.query(
            "UPDATE checkouts SET owner = ?, updated_at = ?
             WHERE id = ? AND status IN ('running', 'compensating') AND updated_at < ?
             RETURNING id",
            &[
                Value::Text(owner.to_owned()),
                Value::Integer(now_millis()),
                Value::Text(id.to_owned()),
                Value::Integer(cutoff),
            ],
        )?;
        Ok(!result.rows.is_empty())
    }

    /// Publishes the pending events (this checkout's `order.placed`, and any
    /// an earlier outage left behind). After COMMIT, never failing the
    /// caller: the order is placed whether or not Redis took the event, and
    /// an event not taken stays pending for the next checkout or the flush.
    pub fn publish_events(&self) {
        shop_shared::event_admin::publish_quietly(&self.db);
    }

    /// The cron tick's outbox work: acknowledgements looked up, what is not
    /// acknowledged published again.
    pub fn deliver_due_events(&self) {
        shop_shared::event_admin::on_tick(&self.db);
    }

    /// The journal of checkout `id` as written by `owner`.
    pub fn journal<'a>(&'a self, id: &str, owner: &str) -> SqlJournal<'a> {
        SqlJournal { store: self, id: id.to_owned(), owner: owner.to_owned() }
    }

    fn row_where(&self, condition: &str, param: Value) -> Result<Option<CheckoutRow>, ApiError> {
        let result = self.query(&format!("SELECT {ROW_COLUMNS} FROM checkouts WHERE {condition}"), &[param])?;
        result.rows.first().map(checkout_from_row).transpose()
    }

    /// Runs `work` in a `BEGIN IMMEDIATE` transaction ([`db::transaction`]).
    fn transaction<T>(&self, work: impl FnOnce(&Self) -> Result<T, ApiError>) -> Result<T, ApiError> {
        db::transaction(&self.db, unavailable, |_| work(self))
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<QueryResult, ApiError> {
        self.db.execute(sql, params).map_err(|e| unavailable("querying", e))
    }
}

/// The journal of one checkout, written by its current owner.
pub struct SqlJournal<'a> {
    store: &'a CheckoutStore,
    id: String,
    owner: String,
}

impl SqlJournal<'_> {
    /// Moves the checkout on (`updated_at`, the saga state), only while
    /// `owner` still drives it.
    fn touch(&self, state: &SagaState) -> Result<(), ApiError> {
        let result = self.store.query(
            "UPDATE checkouts SET updated_at = ?, state = ?
             WHERE id = ? AND owner = ? AND status IN ('running', 'compensating') RETURNING id",
            &[Value::Integer(now_millis()), Value::Text(to_json(state)?), self.id(), self.owner()],
        )?;
        if result.rows.is_empty() {
            return Err(taken_over(&self.id));
        }
        Ok(())
    }

    fn apply(&self, entry: &Entry) -> Result<(), ApiError> {
        let step_name = |step: &Step| Value::Text(step.name().to_owned());
        match entry {
            Entry::Started { step, position, at } => self.store.query(
                "INSERT INTO steps (checkout_id, step, position, outcome, started_at) VALUES (?, ?, ?, 'running', ?)
                 ON CONFLICT (checkout_id, step) DO UPDATE SET outcome = 'running', started_at = excluded.started_at",
                &[self.id(), step_name(step), Value::Integer(*position as i64), Value::Integer(*at)],
            ),
            Entry::Ended { step, outcome, duration_ms, error } => self.store.query(
                "UPDATE steps SET outcome = ?, duration_ms = ?, error = ? WHERE checkout_id = ? AND step = ?",
                &[
                    Value::Text(outcome.as_str().to_owned()),
                    duration_ms.map_or(Value::Null, Value::Integer),
                    error.as_ref().map_or(Value::Null, |e| Value::Text(e.clone())),
                    self.id(),
                    step_name(step),
                ],
            ),
            Entry::Compensated { step, at, duration_ms } => self.store.query(
                "UPDATE steps SET compensated_at = ?, compensation_ms = ? WHERE checkout_id = ? AND step = ?",
                &[Value::Integer(*at), Value::Integer(*duration_ms), self.id(), step_name(step)],
            ),
            // The shared outbox's table; `publish_events` sends it after the saga.
            Entry::Event(event) => {
                return shop_shared::outbox::enqueue(&self.store.db, event)
                    .map_err(|e| unavailable("writing the outbox", e));
            }
            Entry::Stuck => {
                self.store.query("UPDATE checkouts SET status = 'compensating' WHERE id = ?", &[self.id()])
            }
            Entry::Finished { status, order_id, response } => {
                debug_assert!(status.is_final());
                // Only from the statuses that may become `status`.
                let from: Vec<String> = [Status::Running, Status::Compensating]
                    .into_iter()
                    .filter(|from| from.can_become(*status))
                    .map(|from| format!("'{}'", from.as_str()))
                    .collect();
                let result = self.store.query(
                    &format!(
                        "UPDATE checkouts SET status = ?, order_id = ?, response_status = ?, response_body = ?
                         WHERE id = ? AND status IN ({}) RETURNING id",
                        from.join(", ")
                    ),
                    &[
                        Value::Text(status.as_str().to_owned()),
                        order_id.as_ref().map_or(Value::Null, |id| Value::Text(id.clone())),
                        Value::Integer(response.status.into()),
                        Value::Text(response.body.clone()),
                        self.id(),
                    ],
                )?;
                if result.rows.is_empty() {
                    return Err(taken_over(&self.id));
                }
                return Ok(());
            }
        }
        .map(drop)
    }

    fn id(&self) -> Value {
        Value::Text(self.id.clone())
    }

    fn owner(&self) -> Value {
        Value::Text(self.owner.clone())
    }
}

impl Journal for SqlJournal<'_> {
    /// One `BEGIN IMMEDIATE` transaction: the owner check (and the state)
    /// first, so a checkout taken over writes nothing.
    fn write(&mut self, entries: &[Entry], state: &SagaState) -> Result<(), ApiError> {
        self.store.transaction(|_| {
            self.touch(state)?;
            entries.iter().try_for_each(|entry| self.apply(entry))
        })
    }
}

/// The answer of a request whose checkout another driver (recovery) took
/// over: the checkout goes on without it.
pub fn taken_over(id: &str) -> ApiError {
    ApiError::conflict(
        "checkout_in_progress",
        "this checkout is being finished by recovery; ask for it again in a moment",
    )
    .with("checkout_id", id)
}

fn to_json(value: &impl serde::Serialize) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(ApiError::internal)
}

fn unavailable(doing: &str, error: impl std::fmt::Display) -> ApiError {
    eprintln!("checkout database: {doing}: {error}");
    ApiError::unavailable("checkout_unavailable", format!("the checkout journal failed while {doing}"))
}

fn corrupt(what: &str) -> ApiError {
    unavailable("reading", format!("{what} has an unexpected value"))
}

fn checkout_from_row(row: &RowResult) -> Result<CheckoutRow, ApiError> {
    let text = |i: usize| row.get::<&str>(i).map(str::to_owned);
    let decoded = (|| {
        let response = match (row.get::<i64>(6), text(7)) {
            (Some(status), Some(body)) => Some(StoredError { status: u16::try_from(status).ok()?, body }),
            _ => None,
        };
        Some(CheckoutRow {
            id: text(0)?,
            fingerprint: text(1)?,
            status: Status::parse(row.get::<&str>(2)?)?,
            request: serde_json::from_str(row.get::<&str>(3)?).ok()?,
            state: serde_json::from_str(row.get::<&str>(4)?).ok()?,
            order_id: text(5),
            response,
            created_at: row.get::<i64>(8)?,
            updated_at: row.get::<i64>(9)?,
        })
    })();
    decoded.ok_or_else(|| corrupt("a checkout row"))
}

fn step_from_row(row: &RowResult) -> Result<StepRow, ApiError> {
    let decoded = (|| {
        Some(StepRow {
            record: StepRecord {
                step: Step::parse(row.get::<&str>(0)?)?,
                outcome: Outcome::parse(row.get::<&str>(1)?)?,
                compensated: row.get::<i64>(4).is_some(),
            },
            started_at: row.get::<i64>(2)?,
            duration_ms: row.get::<i64>(3),
            compensated_at: row.get::<i64>(4),
            compensation_ms: row.get::<i64>(5),
        })
    })();
    decoded.ok_or_else(|| corrupt("a step row"))
}

/// The database, for the shared event toolkit (inbox, outbox, admin routes).
impl EventStore for CheckoutStore {
    fn connection(&self) -> &Connection {
        &self.db
    }
}
