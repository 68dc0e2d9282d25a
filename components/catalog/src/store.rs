//! The catalog's SQLite layout (database label `catalog`), the only code that
//! talks to the database.
//!
//! Tables:
//! - `products`: one row per sku; `categories` is a JSON array of strings.
//! - `meta`: `seed_version` records which products.json was last applied.
//!
//! Setup and seeding happen on first use instead of at deploy time, because
//! Spin has no install hook. In the steady state it costs one query per
//! request: reading `seed_version`. When that row is missing or names another
//! seed, the tables are created if missing, the seed products are inserted
//! with `INSERT OR IGNORE`, and only then `seed_version` is written. Every step
//! is idempotent, so two instances racing through it, or one crashing halfway,
//! leave nothing the next request would not finish; and a re-applied seed adds
//! missing products without overwriting an admin's changes.

use shop_shared::Money;
use shop_shared::db::{self, fnv1a};
use spin_sdk::sqlite::{Connection, QueryResult, RowResult, Value};

use crate::domain::{CatalogError, Product, SEED_JSON, Upserted, seed_products};

const DATABASE: &str = "catalog";

/// Changes whenever products.json does, so an edited seed is applied again.
const SEED_VERSION: u64 = fnv1a(SEED_JSON.as_bytes());

/// Rows per seed INSERT: far below SQLite's limit on bound parameters.
const SEED_ROWS_PER_INSERT: usize = 50;

const PRODUCT_COLUMNS: &str =
    "sku, name, description, price_amount, price_currency, weight_grams, categories, image";

const PRODUCTS_TABLE: &str = "CREATE TABLE IF NOT EXISTS products (
    sku TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    price_amount INTEGER NOT NULL,
    price_currency TEXT NOT NULL,
    weight_grams INTEGER NOT NULL,
    categories TEXT NOT NULL,
    image TEXT NOT NULL
)";

pub struct CatalogStore {
    db: Connection,
}

impl CatalogStore {
    /// Opens the database, setting it up and seeding it if this is its first use.
    pub fn open() -> Result<Self, CatalogError> {
        let db = Connection::open(DATABASE).map_err(|e| unavailable("opening", e))?;
        db::ensure_schema(
            &db,
            "seed_version",
            &SEED_VERSION.to_string(),
            &[PRODUCTS_TABLE],
            unavailable,
            |db| seed(db).map_err(|e| unavailable("setting up", e)),
        )?;
        Ok(Self { db })
    }

    pub fn all_products(&self) -> Result<Vec<Product>, CatalogError> {
        let result = self.query(&format!("SELECT {PRODUCT_COLUMNS} FROM products"), &[])?;
        result.rows.iter().map(product_from_row).collect()
    }

    pub fn product(&self, sku: &str) -> Result<Option<Product>, CatalogError> {
        let result = self.query(
            &format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE sku = ?"),
            &[Value::Text(sku.to_owned())],
        )?;
        result.rows.first().map(product_from_row).transpose()
    }

    /// The products among `skus` that exist, in no particular order.
    pub fn products(&self, skus: &[String]) -> Result<Vec<Product>, CatalogError> {
        let placeholders = vec!["?"; skus.len()].join(", ");
        let params: Vec<Value> = skus.iter().map(|sku| Value::Text(sku.clone())).collect();
        let result = self.query(
            &format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE sku IN ({placeholders})"),
            &params,
        )?;
        result.rows.iter().map(product_from_row).collect()
    }

    /// Creates or replaces the product. Created-or-updated is decided by a read
    /// first; two admins racing on a new sku may both hear "created", and the
    /// last write wins either way.
    pub fn upsert(&self, product: &Product) -> Result<Upserted, CatalogError> {
        let existed = self.product(&product.sku)?.is_some();
        self.query(
            &format!(
                "INSERT INTO products ({PRODUCT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (sku) DO UPDATE SET
                    name = excluded.name,
                    description = excluded.description,
                    price_amount = excluded.price_amount,
                    price_currency = excluded.price_currency,
                    weight_grams = excluded.weight_grams,
                    categories = excluded.categories,
                    image = excluded.image"
            ),
            &product_params(product),
        )?;
        Ok(if existed {
            Upserted::Updated
        } else {
            Upserted::Created
        })
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<QueryResult, CatalogError> {
        self.db
            .execute(sql, params)
            .map_err(|e| unavailable("querying", e))
    }
}

/// Inserts the seed products the catalog does not have yet (an admin's
/// changes are never overwritten).
fn seed(db: &Connection) -> Result<(), String> {
    for chunk in seed_products()?.chunks(SEED_ROWS_PER_INSERT) {
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let params: Vec<Value> = chunk.iter().flat_map(product_params).collect();
        db.execute(
            &format!("INSERT OR IGNORE INTO products ({PRODUCT_COLUMNS}) VALUES {rows}"),
            &params,
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn unavailable(doing: &str, error: impl std::fmt::Display) -> CatalogError {
    eprintln!("catalog database: {doing}: {error}");
    CatalogError::Unavailable(format!("the catalog database failed while {doing}"))
}

fn product_params(product: &Product) -> Vec<Value> {
    vec![
        Value::Text(product.sku.clone()),
        Value::Text(product.name.clone()),
        Value::Text(product.description.clone()),
        Value::Integer(product.price.amount),
        Value::Text(product.price.currency.to_string()),
        Value::Integer(product.weight_grams.into()),
        Value::Text(serde_json::Value::from(product.categories.clone()).to_string()),
        Value::Text(product.image.clone()),
    ]
}

fn product_from_row(row: &RowResult) -> Result<Product, CatalogError> {
    let text = |i: usize| row.get::<&str>(i).map(str::to_owned);
    let decoded = (|| {
        let sku = text(0)?;
        Some(Product {
            name: text(1)?,
            description: text(2)?,
            price: Money::new(row.get::<i64>(3)?, row.get::<&str>(4)?).ok()?,
            weight_grams: row.get::<u32>(5)?,
            categories: serde_json::from_str(row.get::<&str>(6)?).ok()?,
            image: text(7)?,
            sku,
        })
    })();
    decoded.ok_or_else(|| unavailable("reading a product row", "a column has an unexpected value"))
}
