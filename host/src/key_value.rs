//! Key-value stores (`fermyon:spin/key-value@2.0.0`), embedded: one SQLite
//! file per store label under `<state-dir>/key_value/`, so data survives a
//! restart and each label is its own store.
//!
//! A component may open only the labels its manifest entry lists; anything
//! else gets `access-denied`, as in Spin.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, params};
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use crate::bindings::fermyon::spin::key_value::{self, Error};

/// Spin refuses to open more stores than this in one instance.
const MAX_OPEN_STORES: usize = 256;

/// Every store of the application, opened at load time.
pub struct KeyValueStores {
    stores: HashMap<String, Arc<Mutex<Connection>>>,
}

impl KeyValueStores {
    /// Opens (creating if needed) each label's file.
    pub fn open(labels: impl IntoIterator<Item = (String, PathBuf)>) -> Result<Self> {
        let mut stores = HashMap::new();
        for (label, path) in labels {
            if stores.contains_key(&label) {
                continue;
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let conn = Connection::open(&path)
                .with_context(|| format!("cannot open key-value store `{label}` at {}", path.display()))?;
            conn.execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;",
            )
            .with_context(|| format!("cannot prepare key-value store `{label}` at {}", path.display()))?;
            stores.insert(label, Arc::new(Mutex::new(conn)));
        }
        Ok(KeyValueStores { stores })
    }

    /// Whether the app opened store `label`.
    pub fn has(&self, label: &str) -> bool {
        self.stores.contains_key(label)
    }
}

/// An open store handle held by a guest.
pub struct OpenStore {
    db: Arc<Mutex<Connection>>,
}

/// What one instance may do with key-value.
pub struct KeyValueState {
    stores: Arc<KeyValueStores>,
    allowed: Arc<[String]>,
    table: ResourceTable,
    open_stores: usize,
}

impl KeyValueState {
    pub fn new(stores: Arc<KeyValueStores>, allowed: Arc<[String]>) -> Self {
        KeyValueState { stores, allowed, table: ResourceTable::new(), open_stores: 0 }
    }

    fn db(&self, store: &Resource<OpenStore>) -> Result<Arc<Mutex<Connection>>, Error> {
        self.table
            .get(store)
            .map(|s| s.db.clone())
            .map_err(|e| Error::Other(e.to_string()))
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut KeyValueState,
) -> Result<()> {
    key_value::add_to_linker::<T, HasSelf<KeyValueState>>(linker, get)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

fn with_db<R>(op: &str, db: &Mutex<Connection>, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R, Error> {
    let _span = tracing::info_span!(
        target: "shop_host::span",
        "key-value",
        "otel.name" = %format_args!("key-value {op}"),
        "otel.kind" = "client",
        "db.operation.name" = op,
    )
    .entered();
    // A poisoned lock only means another request panicked mid-call; SQLite
    // itself kept the file consistent, so carry on.
    let conn = db.lock().unwrap_or_else(|p| p.into_inner());
    f(&conn).map_err(other)
}

impl key_value::Host for KeyValueState {}

impl key_value::HostStore for KeyValueState {
    fn open(&mut self, label: String) -> Result<Resource<OpenStore>, Error> {
        if !self.allowed.iter().any(|l| *l == label) {
            return Err(Error::AccessDenied);
        }
        let db = self.stores.stores.get(&label).ok_or(Error::NoSuchStore)?.clone();
        if self.open_stores >= MAX_OPEN_STORES {
            return Err(Error::StoreTableFull);
        }
        let handle = self.table.push(OpenStore { db }).map_err(|_| Error::StoreTableFull)?;
        self.open_stores += 1;
        Ok(handle)
    }

    fn get(&mut self, store: Resource<OpenStore>, key: String) -> Result<Option<Vec<u8>>, Error> {
        let db = self.db(&store)?;
        with_db("get", &db, |c| {
            c.prepare_cached("SELECT value FROM entries WHERE key = ?1")?
                .query_row(params![key], |row| row.get(0))
                .optional()
        })
    }

    fn set(&mut self, store: Resource<OpenStore>, key: String, value: Vec<u8>) -> Result<(), Error> {
        let db = self.db(&store)?;
        with_db("set", &db, |c| {
            c.prepare_cached("INSERT INTO entries (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")?
                .execute(params![key, value])
                .map(|_| ())
        })
    }

    fn delete(&mut self, store: Resource<OpenStore>, key: String) -> Result<(), Error> {
        let db = self.db(&store)?;
        with_db("delete", &db, |c| {
            c.prepare_cached("DELETE FROM entries WHERE key = ?1")?
                .execute(params![key])
                .map(|_| ())
        })
    }

    fn exists(&mut self, store: Resource<OpenStore>, key: String) -> Result<bool, Error> {
        let db = self.db(&store)?;
        with_db("exists", &db, |c| {
            c.prepare_cached("SELECT 1 FROM entries WHERE key = ?1")?
                .query_row(params![key], |_| Ok(()))
                .optional()
                .map(|found| found.is_some())
        })
    }

    fn get_keys(&mut self, store: Resource<OpenStore>) -> Result<Vec<String>, Error> {
        let db = self.db(&store)?;
        with_db("get-keys", &db, |c| {
            let mut stmt = c.prepare_cached("SELECT key FROM entries ORDER BY key")?;
            let keys = stmt.query_map([], |row| row.get(0))?.collect::<rusqlite::Result<Vec<String>>>();
            keys
        })
    }

    fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        self.open_stores -= 1;
        Ok(())
    }
}
