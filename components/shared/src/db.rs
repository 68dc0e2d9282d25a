//! The SQLite plumbing every service's store shares: transactions (`BEGIN
//! IMMEDIATE` with one busy retry, `COMMIT`, rollback on error), the schema
//! set up on first use behind a version in a `meta` table, and the event
//! toolkit's small helpers (one statement per `execute`, as Spin's SQLite
//! takes one at a time; errors as text).
//!
//! A store keeps its own error type: every helper takes `fail`, which turns
//! a SQLite error and what was being done ("starting a transaction",
//! "committing", "setting up", "rolling back") into it, logging as the
//! service does.

use std::fmt::Display;

use spin_sdk::sqlite::{Connection, Error as SqlError, QueryResult, RowResult, Value};

pub(crate) fn exec(conn: &Connection, sql: &str, params: &[Value]) -> Result<QueryResult, String> {
    conn.execute(sql, params).map_err(|e| as_text("", e))
}

/// The event toolkit's `fail`: the error as text.
pub(crate) fn as_text(_doing: &str, error: impl Display) -> String {
    format!("SQLite: {error}")
}

pub(crate) fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

pub(crate) fn row_text(row: &RowResult, index: usize) -> String {
    row.get::<&str>(index).unwrap_or_default().to_owned()
}

pub(crate) fn row_opt_text(row: &RowResult, index: usize) -> Option<String> {
    row.get::<&str>(index).map(str::to_owned)
}

pub(crate) fn row_int(row: &RowResult, index: usize) -> i64 {
    row.get::<i64>(index).unwrap_or_default()
}

pub(crate) fn row_opt_int(row: &RowResult, index: usize) -> Option<i64> {
    row.get::<i64>(index)
}

/// Runs `work` between `BEGIN IMMEDIATE` and `COMMIT`, rolling back when it
/// fails. `IMMEDIATE` takes the database's write lock before `work`'s first
/// read (waiting up to SQLite's busy timeout; a start that still finds the
/// database busy is tried once more), so what `work` reads stays true until
/// it commits, and anything it reads after being called (the clock, say) is
/// read with the lock held.
pub fn transaction<T, E>(
    conn: &Connection,
    fail: impl Fn(&str, SqlError) -> E,
    work: impl FnOnce(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    begin(conn, "BEGIN IMMEDIATE", &fail)?;
    end(conn, work(conn), &fail)
}

/// Runs `work` in a read (deferred) transaction: one snapshot across its
/// queries, rolled back when it fails.
pub fn snapshot<T, E>(
    conn: &Connection,
    fail: impl Fn(&str, SqlError) -> E,
    work: impl FnOnce(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    begin(conn, "BEGIN", &fail)?;
    end(conn, work(conn), &fail)
}

/// [`transaction`] for async work with errors as text (the event toolkit's).
pub async fn in_transaction<T>(
    conn: &Connection,
    body: impl AsyncFnOnce(&Connection) -> Result<T, String>,
) -> Result<T, String> {
    begin(conn, "BEGIN IMMEDIATE", &as_text)?;
    end(conn, body(conn).await, &as_text)
}

pub(crate) fn begin<E>(
    conn: &Connection,
    begin: &str,
    fail: &impl Fn(&str, SqlError) -> E,
) -> Result<(), E> {
    if let Err(first) = conn.execute(begin, &[]) {
        if !is_busy(&first) {
            return Err(fail("starting a transaction", first));
        }
        conn.execute(begin, &[])
            .map_err(|e| fail("starting a transaction (retried)", e))?;
    }
    Ok(())
}

/// Commits when `outcome` is `Ok`, rolls back otherwise (or when the commit
/// fails).
pub(crate) fn end<T, E>(
    conn: &Connection,
    outcome: Result<T, E>,
    fail: &impl Fn(&str, SqlError) -> E,
) -> Result<T, E> {
    match outcome {
        Ok(value) => match conn.execute("COMMIT", &[]) {
            Ok(_) => Ok(value),
            Err(e) => {
                rollback(conn, fail);
                Err(fail("committing", e))
            }
        },
        Err(error) => {
            rollback(conn, fail);
            Err(error)
        }
    }
}

fn rollback<E>(conn: &Connection, fail: &impl Fn(&str, SqlError) -> E) {
    if let Err(e) = conn.execute("ROLLBACK", &[]) {
        // Only logged (by `fail`): the host rolls back a connection returned
        // mid-transaction.
        drop(fail("rolling back", e));
    }
}

fn is_busy(error: &SqlError) -> bool {
    matches!(error, SqlError::Io(message) if message.contains("locked") || message.contains("busy"))
}

/// Sets the database up on first use, as Spin has no install hook: unless
/// the `meta` table's `key` row already holds `version`, runs `statements`
/// (each idempotent, `CREATE … IF NOT EXISTS`), creates `meta`, runs `seed`
/// and only then records `version`. In the steady state that costs one
/// query; instances racing through it, or one crashing halfway, leave
/// nothing the next request would not finish.
pub fn ensure_schema<E>(
    conn: &Connection,
    key: &str,
    version: &str,
    statements: &[&str],
    fail: impl Fn(&str, SqlError) -> E,
    seed: impl FnOnce(&Connection) -> Result<(), E>,
) -> Result<(), E> {
    if all_current(conn, &[(key, version)]) {
        return Ok(());
    }
    let set_up =
        |sql: &str, params: &[Value]| conn.execute(sql, params).map_err(|e| fail("setting up", e));
    for statement in statements {
        set_up(statement, &[])?;
    }
    set_up(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        &[],
    )?;
    seed(conn)?;
    set_up(
        "INSERT INTO meta (key, value) VALUES (?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[text(key), text(version)],
    )?;
    Ok(())
}

/// Opens database `label`, setting its tables up on first use
/// ([`ensure_schema`] under the `schema_version` key, nothing to seed).
pub fn open<E>(
    label: &str,
    schema_version: &str,
    statements: &[&str],
    fail: impl Fn(&str, SqlError) -> E,
) -> Result<Connection, E> {
    let conn = Connection::open(label).map_err(|e| fail("opening", e))?;
    ensure_schema(
        &conn,
        "schema_version",
        schema_version,
        statements,
        &fail,
        |_| Ok(()),
    )?;
    Ok(conn)
}

/// `false` also when the `meta` table does not exist yet.
/// Whether every `(key, version)` is the one stored in `meta`, in one query.
pub(crate) fn all_current(conn: &Connection, wanted: &[(&str, &str)]) -> bool {
    let keys = vec!["?"; wanted.len()].join(", ");
    let params: Vec<Value> = wanted.iter().map(|(key, _)| text(key)).collect();
    let Ok(stored) = conn.execute(&format!("SELECT key, value FROM meta WHERE key IN ({keys})"), &params) else {
        return false;
    };
    wanted.iter().all(|&(key, version)| {
        stored.rows.iter().any(|row| row.get::<&str>(0) == Some(key) && row.get::<&str>(1) == Some(version))
    })
}


/// A 64-bit FNV-1a hash, at compile time: the version of a seed file, so an
/// edited seed is applied again.
pub const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}
