//! SQLite databases (`fermyon:spin/sqlite@2.0.0` and `spin:sqlite@3.0.0`),
//! embedded: one file per database label under `<state-dir>/sqlite/`.
//!
//! Every `open` by a guest gets a connection of its own (from a small pool
//! per label), so a transaction one request begins can never interleave
//! with another request's statements. A connection goes back to the pool
//! only outside a transaction; an instance that ends mid-transaction has it
//! rolled back, like a crashed client.
//!
//! SQL runs on the calling worker thread inside `block_in_place`, because a
//! statement may wait on another writer's lock (busy timeout) and must not
//! stall the other requests of that thread.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::Connection;
use rusqlite::types::{Value as SqlValue, ValueRef};
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use crate::bindings::fermyon::spin::sqlite as v2;
use crate::bindings::sqlite3::spin::sqlite::sqlite as v3;

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept per label.
const POOL_SIZE: usize = 16;
/// Spin refuses to open more connections than this in one instance.
const MAX_OPEN_CONNECTIONS: usize = 256;

/// Sleeps between tries while another connection holds the write lock,
/// in growing steps (as SQLite's own busy handler does), for up to
/// [`BUSY_TIMEOUT`] in all; each wait is counted in the metrics.
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

/// A database label's file and its idle connections.
pub struct Database {
    label: String,
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Database {
    fn connect(&self) -> rusqlite::Result<Connection> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = Connection::open(&self.path)?;
        conn.busy_handler(Some(wait_for_lock))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
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
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.db.release(conn);
        }
    }
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
        let conn = tokio::task::block_in_place(|| db.connect()).map_err(|e| Failure::Io(e.to_string()))?;
        let handle = self
            .table
            .push(OpenConnection { db, conn: Some(conn) })
            .map_err(|e| Failure::Io(e.to_string()))?;
        self.open_connections += 1;
        Ok(handle)
    }

    fn execute(
        &mut self,
        handle: &Resource<OpenConnection>,
        statement: &str,
        parameters: Vec<SqlValue>,
    ) -> Result<Rows, Failure> {
        let open = self.table.get(handle).map_err(|_| Failure::InvalidConnection)?;
        let conn = open.conn.as_ref().ok_or(Failure::InvalidConnection)?;
        let kind = crate::telemetry::statement_kind(statement);
        let span = crate::telemetry::database_span("sqlite", kind, &open.db.label);
        let _in_span = span.enter();
        let result = tokio::task::block_in_place(|| run(conn, statement, parameters));
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

fn run(conn: &Connection, statement: &str, parameters: Vec<SqlValue>) -> Result<Rows, Failure> {
    let fail = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => Failure::DatabaseFull,
        _ => Failure::Io(e.to_string()),
    };
    let mut stmt = conn.prepare_cached(statement).map_err(fail)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let mut rows_out = Vec::new();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(parameters))
        .map_err(fail)?;
    while let Some(row) = rows.next().map_err(fail)? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            let value = match row.get_ref(i).map_err(fail)? {
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
    fn open(&mut self, database: String) -> Result<Resource<OpenConnection>, v2::Error> {
        SqliteState::open(self, &database).map_err(Into::into)
    }

    fn execute(
        &mut self,
        conn: Resource<OpenConnection>,
        statement: String,
        parameters: Vec<v2::Value>,
    ) -> Result<v2::QueryResult, v2::Error> {
        let params = parameters.into_iter().map(SqlValue::from).collect();
        SqliteState::execute(self, &conn, &statement, params).map(Into::into).map_err(Into::into)
    }

    fn drop(&mut self, conn: Resource<OpenConnection>) -> wasmtime::Result<()> {
        self.close(conn)
    }
}

impl v3::HostConnection for SqliteState {
    fn open(&mut self, database: String) -> Result<Resource<OpenConnection>, v3::Error> {
        SqliteState::open(self, &database).map_err(Into::into)
    }

    fn execute(
        &mut self,
        conn: Resource<OpenConnection>,
        statement: String,
        parameters: Vec<v3::Value>,
    ) -> Result<v3::QueryResult, v3::Error> {
        let params = parameters.into_iter().map(SqlValue::from).collect();
        SqliteState::execute(self, &conn, &statement, params).map(Into::into).map_err(Into::into)
    }

    fn last_insert_rowid(&mut self, conn: Resource<OpenConnection>) -> i64 {
        self.connection(&conn).map_or(0, Connection::last_insert_rowid)
    }

    fn changes(&mut self, conn: Resource<OpenConnection>) -> u64 {
        self.connection(&conn).map_or(0, Connection::changes)
    }

    fn drop(&mut self, conn: Resource<OpenConnection>) -> wasmtime::Result<()> {
        self.close(conn)
    }
}
