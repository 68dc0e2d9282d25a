//! The cart's SQLite layout (database label `cart`), the only code that
//! talks to the store.
//!
//! Tables:
//! - `cart_lines (cart_id, sku, quantity, position)`, primary key
//!   `(cart_id, sku)`; a cart's lines are listed by `position`, the order in
//!   which their skus were first added. An empty cart has no rows.
//! - `meta`: `schema_version` records that the table exists.
//!
//! Why SQLite and not key-value: a change is read-modify-write (the 99 per
//! line and 100 lines rules need the cart as it is), and neither Spin's
//! key-value interface (`fermyon:spin/key-value@2.0.0`) nor shop-host's has
//! a compare-and-swap. With the whole cart under one key, concurrent adds of
//! different skus overwrote each other (20 concurrent adds kept 6 lines on
//! Spin). Here each change is one `BEGIN IMMEDIATE` transaction, so
//! concurrent changes to one cart serialize and none is lost.

use shop_shared::db;
use spin_sdk::sqlite::{Connection, Error as SqlError, Value};

use crate::domain::{Cart, CartError, CartId, Line};

const DATABASE: &str = "cart";

/// Bump when the statements in `SCHEMA` change.
const SCHEMA_VERSION: &str = "1";

const SCHEMA: [&str; 1] = ["CREATE TABLE IF NOT EXISTS cart_lines (
        cart_id TEXT NOT NULL,
        sku TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (cart_id, sku)
    )"];

pub struct CartStore {
    db: Connection,
}

impl CartStore {
    pub fn open() -> Result<Self, CartError> {
        let db = db::open(DATABASE, SCHEMA_VERSION, &SCHEMA, unavailable)?;
        Ok(Self { db })
    }

    /// The cart, empty if it was never written.
    pub fn load(&self, id: &CartId) -> Result<Cart, CartError> {
        load(&self.db, id)
    }

    /// Loads the cart, applies `change`, and saves the result if it
    /// succeeded, all in one write transaction: a concurrent change to the
    /// same cart waits for this one and then sees its result.
    pub fn update(
        &self,
        id: &CartId,
        change: impl FnOnce(&mut Cart) -> Result<(), CartError>,
    ) -> Result<Cart, CartError> {
        db::transaction(&self.db, unavailable, |conn| {
            let mut cart = load(conn, id)?;
            change(&mut cart)?;
            save(conn, &cart)?;
            Ok(cart)
        })
    }

    /// Deleting a cart that does not exist is not an error.
    pub fn delete(&self, id: &CartId) -> Result<(), CartError> {
        self.db
            .execute("DELETE FROM cart_lines WHERE cart_id = ?", &[text(id.as_str())])
            .map_err(|e| unavailable("deleting", e))?;
        Ok(())
    }
}

fn load(conn: &Connection, id: &CartId) -> Result<Cart, CartError> {
    let rows = conn
        .execute(
            "SELECT sku, quantity FROM cart_lines WHERE cart_id = ? ORDER BY position",
            &[text(id.as_str())],
        )
        .map_err(|e| unavailable("reading", e))?;
    let lines = rows
        .rows
        .iter()
        .map(|row| Line {
            sku: row.get::<&str>(0).unwrap_or_default().to_owned(),
            quantity: row.get::<i64>(1).and_then(|q| u32::try_from(q).ok()).unwrap_or_default(),
        })
        .collect();
    Ok(Cart { id: id.clone(), lines })
}

/// Replaces the cart's rows with its lines, positions in order. Only
/// called inside [`CartStore::update`]'s transaction.
fn save(conn: &Connection, cart: &Cart) -> Result<(), CartError> {
    let id = text(cart.id.as_str());
    conn.execute("DELETE FROM cart_lines WHERE cart_id = ?", std::slice::from_ref(&id))
        .map_err(|e| unavailable("writing", e))?;
    for (position, line) in cart.lines.iter().enumerate() {
        conn.execute(
            "INSERT INTO cart_lines (cart_id, sku, quantity, position) VALUES (?, ?, ?, ?)",
            &[id.clone(), text(&line.sku), Value::Integer(line.quantity.into()), Value::Integer(position as i64)],
        )
        .map_err(|e| unavailable("writing", e))?;
    }
    Ok(())
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

fn unavailable(doing: &str, error: SqlError) -> CartError {
    eprintln!("cart store: {doing}: {error}");
    CartError::StoreUnavailable(format!("the cart store failed while {doing}"))
}
