//! SQLite databases (`fermyon:spin/sqlite@2.0.0` and `spin:sqlite@3.0.0`),
//! embedded: one file per database label under `<state-dir>/sqlite/`.
//!
//! Every `open` by a guest gets a connection of its own (from a small pool
//! per label), so a transaction one request begins can never interleave
//! with another request's statements. A connection goes back to the pool
//! only outside a transaction; an instance that ends mid-transaction has it
//! rolled back, like a crashed client.
//!
//! Writers to one database take turns in the host ([`Database::turn`], a
//! first-come-first-served semaphore of one): a connection about to write
//! waits, without holding a thread, until the connection before it has
//! finished its transaction, instead of retrying in SQLite's busy handler,
//! whose sleeps grow and leave the database idle while writers doze (under
//! 16 concurrent checkouts, most of a second). The turn covers the whole
//! transaction, from its first write (or `BEGIN IMMEDIATE`) until the
//! connection is back in autocommit.
//!
//! SQL runs on the calling worker thread: in WAL mode a statement takes
//! microseconds, and handing the thread over for each one cost more than
//! the statement. (A writer outside the host still makes a statement sleep
//! in the busy handler; the shop has none.)

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rusqlite::Connection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use rusqlite::types::{Value as SqlValue, ValueRef};
use tracing::Instrument;
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use crate::bindings::fermyon::spin::sqlite as v2;
use crate::bindings::sqlite3::spin::sqlite::sqlite as v3;

/// How long a statement waits for another connection's write lock (its
/// turn in the host, then SQLite's own lock).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;
/// Idle connections kept per label.
const POOL_SIZE: usize = 16;
/// Spin refuses to open more connections than this in one instance.
const MAX_OPEN_CONNECTIONS: usize = 256;

/// Sleeps between tries while another connection holds the write lock,
/// in growing steps (as SQLite's own busy handler does), for up to
/// [`BUSY_TIMEOUT`] in all; each wait is counted in the metrics. With the
/// write turn this is reached only when a writer outside the turn holds the
/// lock (another process, or a turn given up after [`BUSY_TIMEOUT`]).
fn wait_for_lock(tries: i32) -> bool {
    const STEPS_MS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];
    let tries = tries.max(0) as usize;
    let step = STEPS_MS[tries.min(STEPS_MS.len() - 1)];
    let slept: u64 = STEPS_MS.iter().take(tries).sum::<u64>() + STEPS_MS[STEPS_MS.len() - 1] * tries.saturating_sub(STEPS_MS.len()) as u64;
    if slept + step > BUSY_TIMEOUT.as_millis() as u64 {
        return false;
    }
    if let Some(m) = crate::telemetry::metrics::get() {
        if tries == 0 {
            m.sqlite_lock_waits.inc();
        }
        m.sqlite_lock_wait_seconds.inc_by(step as f64 / 1000.0);
    }
    std::thread::sleep(Duration::from_millis(step));
    true
}

/// A database label's file, its idle connections and its write turn.
pub struct Database {
    label: String,
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// The right to write; tokio's semaphore hands it out in the order it
    /// was asked for.
    turn: Arc<Semaphore>,
}

impl Database {
    fn idle(&self) -> Option<Connection> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    /// A new connection: opening the file and its pragmas touch the disk.
    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open(&self.path)?;
        // Every statement a service runs stays prepared on the connection
        // (rusqlite's default keeps 16; checkout alone runs more than that).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.busy_handler(Some(wait_for_lock))?;
        // A page cache of 512 KiB, not SQLite's 2 MiB: the shop's databases
        // are small, the kernel caches the file anyway, and a connection is
        // open per concurrent instance. (It bounds the worst case; the bench's
        // resident memory did not move with it.)
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -512;")?;
        Ok(conn)
    }

    fn release(&self, conn: Connection) {
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            return; // dropping it closes it, which also rolls back
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < POOL_SIZE {
            idle.push(conn);
        }
    }
}

/// Every database of the application, created at load time.
pub struct SqliteDatabases {
    databases: HashMap<String, Arc<Database>>,
}

impl SqliteDatabases {
    /// Creates (if needed) each label's file.
    pub fn open(labels: impl IntoIterator<Item = (String, PathBuf)>) -> Result<Self> {
        let mut databases = HashMap::new();
        for (label, path) in labels {
            if databases.contains_key(&label) {
                continue;
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let db = Database {
                path,
                idle: Mutex::new(Vec::new()),
                label: label.clone(),
                turn: Arc::new(Semaphore::new(1)),
            };
            let conn = db
                .connect()
                .with_context(|| format!("cannot open SQLite database `{label}` at {}", db.path.display()))?;
            db.release(conn);
            databases.insert(label, Arc::new(db));
        }
        Ok(SqliteDatabases { databases })
    }

    /// Whether the app opened database `label`.
    pub fn has(&self, label: &str) -> bool {
        self.databases.contains_key(label)
    }
}

/// A guest's open connection; goes back to its pool when the guest drops it
/// or the instance ends.
pub struct OpenConnection {
    db: Arc<Database>,
    conn: Option<Connection>,
    /// This connection's turn to write, while it has it.
    writing: Option<OwnedSemaphorePermit>,
}

impl OpenConnection {
    /// Runs one statement, taking the write turn first when the statement
    /// writes and giving it back once the transaction is over.
    async fn run(&mut self, statement: &str, parameters: Vec<SqlValue>) -> Result<Rows, Failure> {
        {
            let conn = self.conn.as_ref().ok_or(Failure::InvalidConnection)?;
            let mut stmt = conn.prepare_cached(statement).map_err(failure)?;
            if self.writing.is_some() || (stmt.readonly() && !begins_writing(statement)) {
                // Nothing to wait for: run it now, prepared once.
                let result = rows(&mut stmt, parameters);
                drop(stmt);
                return self.ended(result);
            }
        }
        // A statement cannot be held across the wait: prepared again (from
        // the cache) once the turn is ours.
        self.writing = take_turn(&self.db.turn).await;
        let conn = self.conn.as_ref().ok_or(Failure::InvalidConnection)?;
        let result = conn.prepare_cached(statement).map_err(failure).and_then(|mut stmt| rows(&mut stmt, parameters));
        self.ended(result)
    }

    /// Gives the turn back once the transaction is over.
    fn ended(&mut self, result: Result<Rows, Failure>) -> Result<Rows, Failure> {
        if self.conn.as_ref().is_none_or(Connection::is_autocommit) {
            self.writing = None;
        }
        result
    }
}

/// Waits for the turn to write, up to [`BUSY_TIMEOUT`]; `None` when it gave
/// up, and then SQLite's own lock still guards the write.
async fn take_turn(turn: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = turn.clone().try_acquire_owned() {
        return Some(permit);
    }
    let started = Instant::now();
    let permit = tokio::time::timeout(BUSY_TIMEOUT, turn.clone().acquire_owned()).await.ok().and_then(Result::ok);
    if let Some(m) = crate::telemetry::metrics::get() {
        m.sqlite_lock_waits.inc();
        m.sqlite_lock_wait_seconds.inc_by(started.elapsed().as_secs_f64());
    }
    permit
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.db.release(conn); // rolls back before the turn goes
        }
        self.writing = None;
    }
}

/// `BEGIN IMMEDIATE` and `BEGIN EXCLUSIVE` take the write lock at once,
/// though SQLite counts every `BEGIN` as read-only.
fn begins_writing(statement: &str) -> bool {
    let mut words = statement.split_whitespace();
    words.next().is_some_and(|w| w.eq_ignore_ascii_case("BEGIN"))
        && words.next().is_some_and(|w| {
            let w = w.trim_end_matches(';');
            w.eq_ignore_ascii_case("IMMEDIATE") || w.eq_ignore_ascii_case("EXCLUSIVE")
        })
}

/// What one instance may do with SQLite.
pub struct SqliteState {
    databases: Arc<SqliteDatabases>,
    allowed: Arc<[String]>,
    table: ResourceTable,
    open_connections: usize,
}

impl SqliteState {
    pub fn new(databases: Arc<SqliteDatabases>, allowed: Arc<[String]>) -> Self {
        SqliteState { databases, allowed, table: ResourceTable::new(), open_connections: 0 }
    }

    fn open(&mut self, label: &str) -> Result<Resource<OpenConnection>, Failure> {
        if !self.allowed.iter().any(|l| l == label) {
            return Err(Failure::AccessDenied);
        }
        let db = self.databases.databases.get(label).ok_or(Failure::NoSuchDatabase)?.clone();
        if self.open_connections >= MAX_OPEN_CONNECTIONS {
            return Err(Failure::Io(format!("too many open connections to `{}`", db.label)));
        }
        // An idle connection is at hand; only a new one is worth handing the
        // worker thread over for.
        let conn = match db.idle() {
            Some(conn) => conn,
            None => tokio::task::block_in_place(|| db.connect()).map_err(|e| Failure::Io(e.to_string()))?,
        };
        let handle = self
            .table
            .push(OpenConnection { db, conn: Some(conn), writing: None })
            .map_err(|e| Failure::Io(e.to_string()))?;
        self.open_connections += 1;
        Ok(handle)
    }

    async fn execute(
        &mut self,
        handle: &Resource<OpenConnection>,
        statement: &str,
        parameters: Vec<SqlValue>,
    ) -> Result<Rows, Failure> {
        let open = self.table.get_mut(handle).map_err(|_| Failure::InvalidConnection)?;
        let kind = crate::telemetry::statement_kind(statement);
        let span = crate::telemetry::database_span("sqlite", kind, &open.db.label);
        let result = open.run(statement, parameters).instrument(span.clone()).await;
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        result
    }

    fn connection(&self, handle: &Resource<OpenConnection>) -> Option<&Connection> {
        self.table.get(handle).ok().and_then(|open| open.conn.as_ref())
    }

    fn close(&mut self, handle: Resource<OpenConnection>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        self.open_connections -= 1;
        Ok(())
    }
}

/// Errors common to both interface versions.
enum Failure {
    NoSuchDatabase,
    AccessDenied,
    InvalidConnection,
    DatabaseFull,
    Io(String),
}

struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<SqlValue>>,
}

fn failure(e: rusqlite::Error) -> Failure {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => Failure::DatabaseFull,
        _ => Failure::Io(e.to_string()),
    }
}

fn rows(stmt: &mut rusqlite::CachedStatement<'_>, parameters: Vec<SqlValue>) -> Result<Rows, Failure> {
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let mut rows_out = Vec::new();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(parameters))
        .map_err(failure)?;
    while let Some(row) = rows.next().map_err(failure)? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            let value = match row.get_ref(i).map_err(failure)? {
                ValueRef::Null => SqlValue::Null,
                ValueRef::Integer(i) => SqlValue::Integer(i),
                ValueRef::Real(f) => SqlValue::Real(f),
                ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
            };
            values.push(value);
        }
        rows_out.push(values);
    }
    Ok(Rows { columns, rows: rows_out })
}

pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> &mut SqliteState) -> Result<()> {
    v2::add_to_linker::<T, HasSelf<SqliteState>>(linker, get).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    v3::add_to_linker::<T, HasSelf<SqliteState>>(linker, get).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
}

/// The two interface versions have the same shapes under different names;
/// this writes the conversions once for each.
macro_rules! interface_version {
    ($v:ident) => {
        impl From<Failure> for $v::Error {
            fn from(f: Failure) -> Self {
                match f {
                    Failure::NoSuchDatabase => $v::Error::NoSuchDatabase,
                    Failure::AccessDenied => $v::Error::AccessDenied,
                    Failure::InvalidConnection => $v::Error::InvalidConnection,
                    Failure::DatabaseFull => $v::Error::DatabaseFull,
                    Failure::Io(m) => $v::Error::Io(m),
                }
            }
        }

        impl From<$v::Value> for SqlValue {
            fn from(v: $v::Value) -> Self {
                match v {
                    $v::Value::Integer(i) => SqlValue::Integer(i),
                    $v::Value::Real(f) => SqlValue::Real(f),
                    $v::Value::Text(t) => SqlValue::Text(t),
                    $v::Value::Blob(b) => SqlValue::Blob(b),
                    $v::Value::Null => SqlValue::Null,
                }
            }
        }

        impl From<Rows> for $v::QueryResult {
            fn from(r: Rows) -> Self {
                $v::QueryResult {
                    columns: r.columns,
                    rows: r
                        .rows
                        .into_iter()
                        .map(|values| $v::RowResult {
                            values: values
                                .into_iter()
                                .map(|v| match v {
                                    SqlValue::Null => $v::Value::Null,
                                    SqlValue::Integer(i) => $v::Value::Integer(i),
                                    SqlValue::Real(f) => $v::Value::Real(f),
                                    SqlValue::Text(t) => $v::Value::Text(t),
                                    SqlValue::Blob(b) => $v::Value::Blob(b),
                                })
                                .collect(),
                        })
                        .collect(),
                }
            }
        }

        impl $v::Host for SqliteState {}
    };
}

interface_version!(v2);
interface_version!(v3);

impl v2::HostConnection for SqliteState {
    async fn open(&mut self, database: String) -> Result<Resource<OpenConnection>, v2::Error> {
        SqliteState::open(self, &database).map_err(Into::into)
    }

    async fn execute(
        &mut self,
        conn: Resource<OpenConnection>,
        statement: String,
        parameters: Vec<v2::Value>,
    ) -> Result<v2::QueryResult, v2::Error> {
        let params = parameters.into_iter().map(SqlValue::from).collect();
        SqliteState::execute(self, &conn, &statement, params).await.map(Into::into).map_err(Into::into)
    }

    async fn drop(&mut self, conn: Resource<OpenConnection>) -> wasmtime::Result<()> {
        self.close(conn)
    }
}

impl v3::HostConnection for SqliteState {
    async fn open(&mut self, database: String) -> Result<Resource<OpenConnection>, v3::Error> {
        SqliteState::open(self, &database).map_err(Into::into)
    }

    async fn execute(
        &mut self,
        conn: Resource<OpenConnection>,
        statement: String,
        parameters: Vec<v3::Value>,
    ) -> Result<v3::QueryResult, v3::Error> {
        let params = parameters.into_iter().map(SqlValue::from).collect();
        SqliteState::execute(self, &conn, &statement, params).await.map(Into::into).map_err(Into::into)
    }

    async fn last_insert_rowid(&mut self, conn: Resource<OpenConnection>) -> i64 {
        self.connection(&conn).map_or(0, Connection::last_insert_rowid)
    }

    async fn changes(&mut self, conn: Resource<OpenConnection>) -> u64 {
        self.connection(&conn).map_or(0, Connection::changes)
    }

    async fn drop(&mut self, conn: Resource<OpenConnection>) -> wasmtime::Result<()> {
        self.close(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_immediate_and_exclusive_count_as_writes() {
        assert!(begins_writing("BEGIN IMMEDIATE"));
        assert!(begins_writing("  begin exclusive;"));
        assert!(begins_writing("BEGIN IMMEDIATE TRANSACTION"));
        assert!(!begins_writing("BEGIN"));
        assert!(!begins_writing("BEGIN DEFERRED"));
        assert!(!begins_writing("SELECT 'BEGIN IMMEDIATE'"));
    }

    fn database(name: &str) -> (PathBuf, Arc<Database>) {
        let dir = std::env::temp_dir().join(format!("shop-sqlite-turn-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let dbs = SqliteDatabases::open([("default".to_string(), dir.join("default.db"))]).unwrap();
        (dir, dbs.databases["default"].clone())
    }

    fn open(db: &Arc<Database>) -> OpenConnection {
        OpenConnection { db: db.clone(), conn: Some(db.connect().unwrap()), writing: None }
    }

    async fn run(conn: &mut OpenConnection, sql: &str) -> Vec<Vec<SqlValue>> {
        match conn.run(sql, vec![]).await {
            Ok(rows) => rows.rows,
            Err(_) => panic!("{sql} failed"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_keeps_the_turn_until_it_commits_and_writers_then_go_in_the_order_they_came() {
        let (dir, db) = database("order");
        let mut first = open(&db);
        run(&mut first, "CREATE TABLE t (n INTEGER)").await;
        assert!(first.writing.is_none(), "an autocommit write gives the turn back at once");
        run(&mut first, "BEGIN IMMEDIATE").await;
        assert!(first.writing.is_some());
        run(&mut first, "INSERT INTO t VALUES (1)").await;
        let mut writers = Vec::new();
        for n in 2..5 {
            let mut next = open(&db);
            writers.push(tokio::spawn(async move {
                run(&mut next, &format!("INSERT INTO t VALUES ({n})")).await;
                next.writing.is_some()
            }));
            // Each is waiting before the next comes.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        run(&mut first, "COMMIT").await;
        assert!(first.writing.is_none());
        for writer in writers {
            assert!(!writer.await.unwrap(), "each gave the turn back after its write");
        }
        let rows = run(&mut open(&db), "SELECT n FROM t ORDER BY rowid").await;
        let order: Vec<_> = rows.into_iter().map(|r| r[0].clone()).collect();
        assert_eq!(order, (1..5).map(SqlValue::Integer).collect::<Vec<_>>(), "the transaction first, then the waiting writers in order");
        assert_eq!(db.turn.available_permits(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_dropped_mid_transaction_rolls_back_and_gives_the_turn_back() {
        let (dir, db) = database("dropped");
        let mut first = open(&db);
        run(&mut first, "CREATE TABLE t (n INTEGER)").await;
        run(&mut first, "BEGIN").await;
        assert!(first.writing.is_none(), "a deferred BEGIN writes nothing yet");
        run(&mut first, "INSERT INTO t VALUES (1)").await;
        assert!(first.writing.is_some(), "a deferred transaction takes the turn at its first write");
        drop(first);
        assert_eq!(db.turn.available_permits(), 1);
        let rows = run(&mut open(&db), "SELECT count(*) FROM t").await;
        assert_eq!(rows, vec![vec![SqlValue::Integer(0)]]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_outside_a_transaction_gives_the_turn_back() {
        let (dir, db) = database("failed");
        let mut conn = open(&db);
        run(&mut conn, "CREATE TABLE t (n INTEGER PRIMARY KEY)").await;
        run(&mut conn, "INSERT INTO t VALUES (1)").await;
        assert!(conn.run("INSERT INTO t VALUES (1)", vec![]).await.is_err());
        assert!(conn.writing.is_none());
        assert_eq!(db.turn.available_permits(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
