//! The inventory's SQLite layout (database label `inventory`), the only code
//! that talks to the database.
//!
//! Tables:
//! - `stock`: one row per sku, `on_hand` units in the warehouse (never below 0).
//! - `reservations`: one row per reservation id, `status` `held`, `committed`
//!   or `released`, `expires_at` in Unix milliseconds.
//! - `reservation_lines`: the lines of each reservation, with `held_until`:
//!   the reservation's `expires_at` while it is held, `0` once it is committed
//!   or released. What a sku has reserved is `SUM(quantity)` of its lines with
//!   `held_until > now`, read through the covering index
//!   `(sku, held_until, quantity)`; an expired reservation stops counting by
//!   the clock alone, with no timer and no sweeper.
//! - `meta`: `seed_version` records which stock.json was last applied.
//! - the event toolkit's `inbox`, `dead_letters` and (empty) `outbox`
//!   (`shop_shared`), created by it on first use.
//!
//! Every change runs in a `BEGIN IMMEDIATE` transaction: it takes the
//! database's write lock before its first read, so the availability a reserve
//! checks cannot change before its lines are inserted, and concurrent
//! reserves queue (SQLite's busy timeout) instead of overselling. The clock is
//! read once the lock is held.
//!
//! Setup and seeding happen on first use, as in the catalog: the tables are
//! created if missing, the seed levels inserted with `INSERT OR IGNORE` (an
//! edited seed adds new skus and never overwrites a count an admin set) and
//! only then `seed_version` is written, all idempotent.

use shop_shared::db::{self, fnv1a};
use shop_shared::event_admin::EventStore;
use shop_shared::now_millis;
use spin_sdk::sqlite::{Connection, QueryResult, RowResult, Value};

use crate::domain::{
    Availability, InventoryError, Line, Reservation, ReservationId, ReservationRequest, SEED_JSON,
    StoredStatus, Transition, check_stock, seed_stock,
};

const DATABASE: &str = "inventory";

/// Changes whenever stock.json does, so an edited seed is applied again.
const SEED_VERSION: u64 = fnv1a(SEED_JSON.as_bytes());

/// Rows per multi-row INSERT: far below SQLite's limit on bound parameters.
const ROWS_PER_INSERT: usize = 50;

const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS stock (
        sku TEXT PRIMARY KEY,
        on_hand INTEGER NOT NULL CHECK (on_hand >= 0),
        updated_at INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS reservations (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN ('held', 'committed', 'released')),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS reservation_lines (
        reservation_id TEXT NOT NULL REFERENCES reservations (id),
        sku TEXT NOT NULL,
        quantity INTEGER NOT NULL CHECK (quantity > 0),
        held_until INTEGER NOT NULL,
        PRIMARY KEY (reservation_id, sku)
    )",
    "CREATE INDEX IF NOT EXISTS reservation_lines_holds
        ON reservation_lines (sku, held_until, quantity)",
];

/// What a sku has on hand and held at `?1` (now), for the skus bound after it.
const AVAILABILITY_SQL: &str = "SELECT s.sku, s.on_hand,
        COALESCE((SELECT SUM(l.quantity) FROM reservation_lines l
                  WHERE l.sku = s.sku AND l.held_until > ?1), 0)
    FROM stock s WHERE s.sku IN";

/// Whether a reserve created the reservation or found it from an earlier try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    Created,
    Existing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

pub struct InventoryStore {
    db: Connection,
}

impl InventoryStore {
    /// Opens the database, setting it up and seeding it if this is its first use.
    pub fn open() -> Result<Self, InventoryError> {
        let db = Connection::open(DATABASE).map_err(|e| unavailable("opening", e))?;
        let store = Self { db };
        db::ensure_schema(
            &store.db,
            "seed_version",
            &SEED_VERSION.to_string(),
            &SCHEMA,
            unavailable,
            |_| store.seed(),
        )?;
        Ok(store)
    }

    /// Inserts the seed levels of skus the warehouse does not stock yet.
    fn seed(&self) -> Result<(), InventoryError> {
        let levels = seed_stock().map_err(|e| unavailable("reading the seed", e))?;
        self.transaction(|store, now| {
            for chunk in levels.chunks(ROWS_PER_INSERT) {
                let rows = vec!["(?, ?, ?)"; chunk.len()].join(", ");
                let params: Vec<Value> = chunk
                    .iter()
                    .flat_map(|(sku, on_hand)| {
                        [
                            Value::Text(sku.clone()),
                            Value::Integer((*on_hand).into()),
                            Value::Integer(now),
                        ]
                    })
                    .collect();
                store.query(
                    &format!(
                        "INSERT OR IGNORE INTO stock (sku, on_hand, updated_at) VALUES {rows}"
                    ),
                    &params,
                )?;
            }
            Ok(())
        })
    }

    /// The stock of those `skus` the warehouse knows, in no particular order.
    pub fn availability(&self, skus: &[String]) -> Result<Vec<Availability>, InventoryError> {
        self.availability_at(skus, now_millis())
    }

    fn availability_at(
        &self,
        skus: &[String],
        now: i64,
    ) -> Result<Vec<Availability>, InventoryError> {
        if skus.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = vec!["?"; skus.len()].join(", ");
        let mut params = vec![Value::Integer(now)];
        params.extend(skus.iter().map(|sku| Value::Text(sku.clone())));
        let result = self.query(&format!("{AVAILABILITY_SQL} ({placeholders})"), &params)?;
        result
            .rows
            .iter()
            .map(|row| {
                let decoded = (|| {
                    Some(Availability::new(
                        row.get::<&str>(0)?.to_owned(),
                        row.get::<i64>(1)?,
                        row.get::<i64>(2)?,
                    ))
                })();
                decoded.ok_or_else(|| corrupt("a stock row"))
            })
            .collect()
    }

    /// Sets `sku`'s units on hand, creating the sku if the warehouse did not
    /// stock it. Held reservations keep holding: if the new count is below
    /// them, nothing is available until they end.
    pub fn set_on_hand(
        &self,
        sku: &str,
        on_hand: u32,
    ) -> Result<(Upserted, Availability), InventoryError> {
        self.transaction(|store, now| {
            let existed = !store.availability_at(&[sku.to_owned()], now)?.is_empty();
            store.query(
                "INSERT INTO stock (sku, on_hand, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (sku) DO UPDATE SET on_hand = excluded.on_hand, updated_at = excluded.updated_at",
                &[
                    Value::Text(sku.to_owned()),
                    Value::Integer(on_hand.into()),
                    Value::Integer(now),
                ],
            )?;
            let level = store
                .availability_at(&[sku.to_owned()], now)?
                .pop()
                .ok_or_else(|| corrupt("the stock row just written"))?;
            let upserted = if existed { Upserted::Updated } else { Upserted::Created };
            Ok((upserted, level))
        })
    }

    /// Reserves all of `request`'s lines under `id`, or none. A reservation
    /// already under `id` with the same lines is returned as it is now.
    pub fn reserve(
        &self,
        id: &ReservationId,
        request: &ReservationRequest,
    ) -> Result<(Reserved, Reservation, i64), InventoryError> {
        self.transaction(|store, now| {
            if let Some(existing) = store.load(id)? {
                existing.check_same_lines(request)?;
                return Ok((Reserved::Existing, existing, now));
            }
            let stock = store.availability_at(&request.skus(), now)?;
            check_stock(request.lines(), &stock)?;
            let reservation = Reservation {
                id: id.clone(),
                status: StoredStatus::Held,
                lines: request.lines().to_vec(),
                created_at: now,
                expires_at: request.expires_at(now),
            };
            store.query(
                "INSERT INTO reservations (id, status, created_at, expires_at, updated_at)
                 VALUES (?1, 'held', ?2, ?3, ?2)",
                &[
                    Value::Text(id.as_str().to_owned()),
                    Value::Integer(now),
                    Value::Integer(reservation.expires_at),
                ],
            )?;
            for chunk in reservation.lines.chunks(ROWS_PER_INSERT) {
                let rows = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
                let params: Vec<Value> = chunk
                    .iter()
                    .flat_map(|line| {
                        [
                            Value::Text(id.as_str().to_owned()),
                            Value::Text(line.sku.clone()),
                            Value::Integer(line.quantity.into()),
                            Value::Integer(reservation.expires_at),
                        ]
                    })
                    .collect();
                store.query(
                    &format!(
                        "INSERT INTO reservation_lines (reservation_id, sku, quantity, held_until) VALUES {rows}"
                    ),
                    &params,
                )?;
            }
            Ok((Reserved::Created, reservation, now))
        })
    }

    /// Commits the reservation: its units leave the warehouse (`on_hand`
    /// drops) and it stops holding. Committing again changes nothing.
    pub fn commit(&self, id: &ReservationId) -> Result<(Reservation, i64), InventoryError> {
        self.transaction(|store, now| {
            let mut reservation = store.require(id)?;
            if reservation.commit(now)? == Transition::Apply {
                let id_param = [Value::Text(id.as_str().to_owned())];
                // MAX(0, ...): an admin may have counted fewer units than were
                // held; the count cannot go below nothing.
                store.query(
                    "UPDATE stock SET
                        on_hand = MAX(0, on_hand - (SELECT quantity FROM reservation_lines
                                                    WHERE reservation_id = ?1 AND sku = stock.sku))
                     WHERE sku IN (SELECT sku FROM reservation_lines WHERE reservation_id = ?1)",
                    &id_param,
                )?;
                store.end_holds(id, StoredStatus::Committed, now)?;
                reservation.status = StoredStatus::Committed;
            }
            Ok((reservation, now))
        })
    }

    /// Releases the reservation: it stops holding, its units stay on hand.
    /// Releasing again changes nothing.
    pub fn release(&self, id: &ReservationId) -> Result<(Reservation, i64), InventoryError> {
        self.transaction(|store, now| Ok((store.release_within(id, now)?, now)))
    }

    /// [`InventoryStore::release`] inside the caller's write transaction
    /// (the event inbox's).
    pub fn release_within(&self, id: &ReservationId, now: i64) -> Result<Reservation, InventoryError> {
        let mut reservation = self.require(id)?;
        if reservation.release()? == Transition::Apply {
            self.end_holds(id, StoredStatus::Released, now)?;
            reservation.status = StoredStatus::Released;
        }
        Ok(reservation)
    }

    pub fn reservation(&self, id: &ReservationId) -> Result<Option<Reservation>, InventoryError> {
        self.load(id)
    }

    fn end_holds(
        &self,
        id: &ReservationId,
        status: StoredStatus,
        now: i64,
    ) -> Result<(), InventoryError> {
        self.query(
            "UPDATE reservation_lines SET held_until = 0 WHERE reservation_id = ?",
            &[Value::Text(id.as_str().to_owned())],
        )?;
        self.query(
            "UPDATE reservations SET status = ?, updated_at = ? WHERE id = ?",
            &[
                Value::Text(status.as_str().to_owned()),
                Value::Integer(now),
                Value::Text(id.as_str().to_owned()),
            ],
        )?;
        Ok(())
    }

    fn require(&self, id: &ReservationId) -> Result<Reservation, InventoryError> {
        self.load(id)?
            .ok_or_else(|| InventoryError::ReservationNotFound(id.as_str().to_owned()))
    }

    fn load(&self, id: &ReservationId) -> Result<Option<Reservation>, InventoryError> {
        let id_param = [Value::Text(id.as_str().to_owned())];
        let result = self.query(
            "SELECT status, created_at, expires_at FROM reservations WHERE id = ?",
            &id_param,
        )?;
        let Some(row) = result.rows.first() else {
            return Ok(None);
        };
        let lines = self.query(
            "SELECT sku, quantity FROM reservation_lines WHERE reservation_id = ? ORDER BY sku",
            &id_param,
        )?;
        let lines = lines
            .rows
            .iter()
            .map(|row| line_from_row(row).ok_or_else(|| corrupt("a reservation line")))
            .collect::<Result<Vec<Line>, _>>()?;
        let decoded = (|| {
            Some(Reservation {
                id: id.clone(),
                status: StoredStatus::parse(row.get::<&str>(0)?)?,
                lines,
                created_at: row.get::<i64>(1)?,
                expires_at: row.get::<i64>(2)?,
            })
        })();
        decoded
            .ok_or_else(|| corrupt("a reservation row"))
            .map(Some)
    }

    /// Runs `work` in a `BEGIN IMMEDIATE` transaction ([`db::transaction`])
    /// with the time at which the write lock was taken; commits on `Ok`,
    /// rolls back on `Err`.
    fn transaction<T>(
        &self,
        work: impl FnOnce(&Self, i64) -> Result<T, InventoryError>,
    ) -> Result<T, InventoryError> {
        // The clock is read inside: after BEGIN IMMEDIATE holds the lock.
        db::transaction(&self.db, unavailable, |_| work(self, now_millis()))
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<QueryResult, InventoryError> {
        self.db
            .execute(sql, params)
            .map_err(|e| unavailable("querying", e))
    }
}

fn line_from_row(row: &RowResult) -> Option<Line> {
    Some(Line {
        sku: row.get::<&str>(0)?.to_owned(),
        quantity: row.get::<u32>(1)?,
    })
}

fn unavailable(doing: &str, error: impl std::fmt::Display) -> InventoryError {
    eprintln!("inventory database: {doing}: {error}");
    InventoryError::Unavailable(format!("the inventory database failed while {doing}"))
}

fn corrupt(what: &str) -> InventoryError {
    unavailable(
        &format!("reading {what}"),
        "a column has an unexpected value",
    )
}

/// The database, for the shared event toolkit (inbox, outbox, admin routes).
impl EventStore for InventoryStore {
    fn connection(&self) -> &Connection {
        &self.db
    }
}
