//! The customers' SQLite layout (database label `customers`), the only code
//! that talks to the database.
//!
//! Tables:
//! - `customers (id PRIMARY KEY, name, email, email_key, created_at)`:
//!   `email` as given, `email_key` its lowercase form under a UNIQUE index,
//!   `created_at` in milliseconds since the Unix epoch.
//! - `addresses (id PRIMARY KEY, customer_id → customers, name, line1, line2
//!   NULL, city, postal_code, country)`, indexed by customer; a customer's
//!   addresses are listed in insertion (rowid) order.
//! - `credentials (customer_id PRIMARY KEY → customers, password_hash)`: the
//!   argon2id PHC string of a customer who signed up with a password
//!   (crate::credentials); customers made over WIT have none and cannot sign in.
//! - `sign_in_attempts (key PRIMARY KEY, attempts, window_started_at)`: the
//!   attempts counted per account and per client address in the current window.
//! - `meta`: `schema_version` records that the tables above exist.
//!
//! Set up on first use (Spin has no install hook), every step idempotent, like
//! the catalog's store. Races are settled by SQLite, not by reading first:
//! two creates with one email both `INSERT OR IGNORE` and the unique index lets
//! exactly one row in; each then reads back whose id holds the email. An
//! address is inserted by one statement that also checks that the customer
//! exists and has room, so concurrent adds never pass the limit.

use shop_shared::{Address, db, new_id, now_millis, rfc3339};
use spin_sdk::sqlite::{Connection, QueryResult, RowResult, Value};

use crate::domain::{
    ADDRESS_ID_PREFIX, CUSTOMER_ID_PREFIX, Customer, CustomerError, MAX_ADDRESSES, NewCustomer,
    SavedAddress,
};

const DATABASE: &str = "customers";

/// Bump when the statements in `SCHEMA` change.
const SCHEMA_VERSION: &str = "3";

const SCHEMA: [&str; 7] = [
    "CREATE TABLE IF NOT EXISTS customers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        email TEXT NOT NULL,
        email_key TEXT NOT NULL,
        created_at INTEGER NOT NULL
    )",
    "CREATE UNIQUE INDEX IF NOT EXISTS customers_by_email_key ON customers (email_key)",
    "CREATE TABLE IF NOT EXISTS addresses (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers (id),
        name TEXT NOT NULL,
        line1 TEXT NOT NULL,
        line2 TEXT,
        city TEXT NOT NULL,
        postal_code TEXT NOT NULL,
        country TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS addresses_by_customer ON addresses (customer_id)",
    "CREATE TABLE IF NOT EXISTS credentials (
        customer_id TEXT PRIMARY KEY REFERENCES customers (id),
        password_hash TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS sign_in_attempts (
        key TEXT PRIMARY KEY,
        attempts INTEGER NOT NULL,
        window_started_at INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS sign_in_attempts_by_window ON sign_in_attempts (window_started_at)",
];

const ADDRESS_COLUMNS: &str = "id, name, line1, line2, city, postal_code, country";

pub struct CustomerStore {
    db: Connection,
}

impl CustomerStore {
    /// Opens the database, creating the tables if this is its first use.
    pub fn open() -> Result<Self, CustomerError> {
        let db = db::open(DATABASE, SCHEMA_VERSION, &SCHEMA, unavailable)?;
        Ok(Self { db })
    }

    /// Creates the customer, with the credential to sign in with when a
    /// password hash is given (both or neither), or fails with `EmailTaken`
    /// when any customer already has this email in any letter case.
    pub fn create(&self, new: &NewCustomer, password_hash: Option<&str>) -> Result<Customer, CustomerError> {
        db::transaction(&self.db, unavailable, |_| {
            let customer = self.insert(new)?;
            if let Some(hash) = password_hash {
                self.query(
                    "INSERT INTO credentials (customer_id, password_hash) VALUES (?, ?)",
                    &[Value::Text(customer.id.clone()), Value::Text(hash.to_owned())],
                )?;
            }
            Ok(customer)
        })
    }

    /// The account an email signs in to: its customer id and password hash.
    pub fn credential(&self, email_key: &str) -> Result<Option<(String, String)>, CustomerError> {
        let result = self.query(
            "SELECT c.id, k.password_hash FROM customers c JOIN credentials k ON k.customer_id = c.id
             WHERE c.email_key = ?",
            &[Value::Text(email_key.to_owned())],
        )?;
        Ok(result.rows.first().and_then(|row| {
            Some((row.get::<&str>(0)?.to_owned(), row.get::<&str>(1)?.to_owned()))
        }))
    }

    /// Forgets the counts of windows that are over, so that a spray of
    /// made-up emails leaves no rows behind.
    pub fn forget_old_attempts(&self, now: i64, window_millis: i64) -> Result<(), CustomerError> {
        self.query(
            "DELETE FROM sign_in_attempts WHERE window_started_at <= ?",
            &[Value::Integer(now - window_millis)],
        )?;
        Ok(())
    }

    /// Counts one more sign-in attempt under `key` (a new window when the
    /// last one is over); returns the attempts so far in the window and
    /// when it started.
    pub fn count_attempt(&self, key: &str, now: i64, window_millis: i64) -> Result<(i64, i64), CustomerError> {
        let result = self.query(
            "INSERT INTO sign_in_attempts (key, attempts, window_started_at) VALUES (?1, 1, ?2)
             ON CONFLICT (key) DO UPDATE SET
                 attempts = CASE WHEN window_started_at <= ?2 - ?3 THEN 1 ELSE attempts + 1 END,
                 window_started_at = CASE WHEN window_started_at <= ?2 - ?3 THEN ?2 ELSE window_started_at END
             RETURNING attempts, window_started_at",
            &[Value::Text(key.to_owned()), Value::Integer(now), Value::Integer(window_millis)],
        )?;
        result
            .rows
            .first()
            .and_then(|row| Some((row.get::<i64>(0)?, row.get::<i64>(1)?)))
            .ok_or_else(|| bad_row("sign-in attempt"))
    }

    /// Takes back one counted attempt (a sign-in that succeeded from a
    /// client address), or all of them (`all`: the account that signed in).
    pub fn uncount_attempt(&self, key: &str, all: bool) -> Result<(), CustomerError> {
        let sql = if all {
            "DELETE FROM sign_in_attempts WHERE key = ?"
        } else {
            "UPDATE sign_in_attempts SET attempts = MAX(attempts - 1, 0) WHERE key = ?"
        };
        self.query(sql, &[Value::Text(key.to_owned())])?;
        Ok(())
    }

    fn insert(&self, new: &NewCustomer) -> Result<Customer, CustomerError> {
        let id = new_id(CUSTOMER_ID_PREFIX);
        let created_at = now_millis();
        self.query(
            "INSERT OR IGNORE INTO customers (id, name, email, email_key, created_at)
             VALUES (?, ?, ?, ?, ?)",
            &[
                Value::Text(id.clone()),
                Value::Text(new.name.clone()),
                Value::Text(new.email.clone()),
                Value::Text(new.email_key.clone()),
                Value::Integer(created_at),
            ],
        )?;
        let owner = self.query(
            "SELECT id FROM customers WHERE email_key = ?",
            &[Value::Text(new.email_key.clone())],
        )?;
        let owner_id = owner.rows.first().and_then(|row| row.get::<&str>(0));
        if owner_id != Some(id.as_str()) {
            return Err(CustomerError::EmailTaken(new.email.clone()));
        }
        Ok(Customer {
            id,
            name: new.name.clone(),
            email: new.email.clone(),
            addresses: Vec::new(),
            created_at: rfc3339(created_at),
        })
    }

    pub fn customer(&self, id: &str) -> Result<Option<Customer>, CustomerError> {
        let result = self.query(
            "SELECT id, name, email, created_at FROM customers WHERE id = ?",
            &[Value::Text(id.to_owned())],
        )?;
        let Some(row) = result.rows.first() else {
            return Ok(None);
        };
        let decoded = (|| {
            Some(Customer {
                id: row.get::<&str>(0)?.to_owned(),
                name: row.get::<&str>(1)?.to_owned(),
                email: row.get::<&str>(2)?.to_owned(),
                created_at: rfc3339(row.get::<i64>(3)?),
                addresses: Vec::new(),
            })
        })();
        let mut customer = decoded.ok_or_else(|| bad_row("customer"))?;
        customer.addresses = self.addresses(id)?;
        Ok(Some(customer))
    }

    /// The customer's addresses in the order they were added.
    pub fn addresses(&self, customer_id: &str) -> Result<Vec<SavedAddress>, CustomerError> {
        let result = self.query(
            &format!(
                "SELECT {ADDRESS_COLUMNS} FROM addresses WHERE customer_id = ? ORDER BY rowid"
            ),
            &[Value::Text(customer_id.to_owned())],
        )?;
        result.rows.iter().map(address_from_row).collect()
    }

    pub fn exists(&self, customer_id: &str) -> Result<bool, CustomerError> {
        let result = self.query(
            "SELECT 1 FROM customers WHERE id = ?",
            &[Value::Text(customer_id.to_owned())],
        )?;
        Ok(!result.rows.is_empty())
    }

    /// Saves a validated address for the customer; `CustomerNotFound` or
    /// `TooManyAddresses` when the one guarded statement inserts nothing.
    pub fn add_address(
        &self,
        customer_id: &str,
        address: Address,
    ) -> Result<SavedAddress, CustomerError> {
        let id = new_id(ADDRESS_ID_PREFIX);
        let customer = Value::Text(customer_id.to_owned());
        self.query(
            &format!(
                "INSERT INTO addresses (customer_id, {ADDRESS_COLUMNS})
                 SELECT ?, ?, ?, ?, ?, ?, ?, ?
                 WHERE EXISTS (SELECT 1 FROM customers WHERE id = ?)
                   AND (SELECT COUNT(*) FROM addresses WHERE customer_id = ?) < {MAX_ADDRESSES}"
            ),
            &[
                customer.clone(),
                Value::Text(id.clone()),
                Value::Text(address.name.clone()),
                Value::Text(address.line1.clone()),
                address.line2.clone().map_or(Value::Null, Value::Text),
                Value::Text(address.city.clone()),
                Value::Text(address.postal_code.clone()),
                Value::Text(address.country.clone()),
                customer.clone(),
                customer,
            ],
        )?;
        let saved = self.query(
            "SELECT 1 FROM addresses WHERE id = ?",
            &[Value::Text(id.clone())],
        )?;
        if saved.rows.is_empty() {
            return Err(if self.exists(customer_id)? {
                CustomerError::TooManyAddresses
            } else {
                CustomerError::CustomerNotFound(customer_id.to_owned())
            });
        }
        Ok(SavedAddress { id, address })
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<QueryResult, CustomerError> {
        self.db
            .execute(sql, params)
            .map_err(|e| unavailable("querying", e))
    }
}

fn unavailable(doing: &str, error: impl std::fmt::Display) -> CustomerError {
    eprintln!("customers database: {doing}: {error}");
    CustomerError::Unavailable(format!("the customers database failed while {doing}"))
}

fn bad_row(what: &str) -> CustomerError {
    unavailable(&format!("reading a {what} row"), "a column has an unexpected value")
}

fn address_from_row(row: &RowResult) -> Result<SavedAddress, CustomerError> {
    let text = |i: usize| row.get::<&str>(i).map(str::to_owned);
    let decoded = (|| {
        let line2 = match row.values.get(3)? {
            Value::Null => None,
            _ => Some(text(3)?),
        };
        Some(SavedAddress {
            id: text(0)?,
            address: Address {
                name: text(1)?,
                line1: text(2)?,
                line2,
                city: text(4)?,
                postal_code: text(5)?,
                country: text(6)?,
            },
        })
    })();
    decoded.ok_or_else(|| bad_row("address"))
}
