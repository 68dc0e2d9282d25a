//! The few SQLite helpers the event toolkit shares: one statement per
//! `execute` (Spin's SQLite takes one at a time), errors as text.

use spin_sdk::sqlite::{Connection, QueryResult, RowResult, Value};

pub(crate) fn exec(conn: &Connection, sql: &str, params: &[Value]) -> Result<QueryResult, String> {
    conn.execute(sql, params).map_err(|e| format!("SQLite: {e}"))
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

/// Runs `body` between `BEGIN IMMEDIATE` and `COMMIT` (the write lock taken
/// at once, so two instances applying the same event serialize), rolling
/// back when it fails.
pub async fn in_transaction<T>(
    conn: &Connection,
    body: impl AsyncFnOnce(&Connection) -> Result<T, String>,
) -> Result<T, String> {
    exec(conn, "BEGIN IMMEDIATE", &[])?;
    match body(conn).await {
        Ok(value) => match exec(conn, "COMMIT", &[]) {
            Ok(_) => Ok(value),
            Err(e) => {
                let _ = exec(conn, "ROLLBACK", &[]);
                Err(e)
            }
        },
        Err(e) => {
            let _ = exec(conn, "ROLLBACK", &[]);
            Err(e)
        }
    }
}
