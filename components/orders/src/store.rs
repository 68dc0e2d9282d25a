//! The orders' SQLite layout (database label `orders`), the only code that
//! talks to the database.
//!
//! Tables:
//! - `orders`: one row per order. `seq` (the rowid) is the order of creation,
//!   so "newest first" is `seq DESC`; the totals are columns, the address is
//!   a JSON object (`shop_shared::Address`); `status` is the current status.
//! - `order_lines`: the lines of each order by `position`; their amounts are
//!   in the order's currency.
//! - `status_history`: every status an order has had, oldest first by `seq`,
//!   with the time (milliseconds since the epoch) and an optional reason.
//! - `meta`: `schema_version` records that the tables exist.
//! - the event toolkit's `outbox`, `inbox` and `dead_letters`
//!   (`shop_shared`), created by it on first use.
//!
//! Tables are created on first use, as Spin has no install hook; in the steady
//! state that costs one query per request (reading `schema_version`), and
//! every step is idempotent, so instances racing through it are harmless.
//!
//! Writes run in `BEGIN IMMEDIATE` transactions: an order and its lines and
//! first history row appear together or not at all, and a transition reads the
//! status, updates it with `UPDATE ... WHERE id = ? AND status = <the status
//! read>` and appends its history row as one step, so of two concurrent
//! transitions of one order only one can apply from a given status. Reads of
//! several tables run in one (deferred) transaction, to see one snapshot.

use shop_shared::event_admin::EventStore;
use shop_shared::{Address, Currency, Money, db, new_id};
use spin_sdk::sqlite::{Connection, QueryResult, RowResult, Value};

use crate::domain::{
    Created, Customer, Millis, Order, OrderContent, OrderLine, OrderPage, OrdersError, PageRequest,
    ShippingSpeed, Status, StatusChange, Totals, check_recreate,
};

const DATABASE: &str = "orders";

/// Changes whenever the tables do.
const SCHEMA_VERSION: &str = "2";

const ORDER_COLUMNS: &str = "id, customer_id, email, status, currency, items_total, \
     shipping_total, tax_total, grand_total, address, shipping_speed, \
     payment_authorization_id, reservation_id, checkout_id, created_at";

const SCHEMA: [&str; 7] = [
    "CREATE TABLE IF NOT EXISTS orders (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        customer_id TEXT,
        email TEXT NOT NULL,
        status TEXT NOT NULL,
        currency TEXT NOT NULL,
        items_total INTEGER NOT NULL,
        shipping_total INTEGER NOT NULL,
        tax_total INTEGER NOT NULL,
        grand_total INTEGER NOT NULL,
        address TEXT NOT NULL,
        shipping_speed TEXT NOT NULL,
        payment_authorization_id TEXT NOT NULL,
        reservation_id TEXT NOT NULL,
        checkout_id TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS orders_by_customer_id ON orders (customer_id, seq)",
    "CREATE INDEX IF NOT EXISTS orders_by_email ON orders (email, seq)",
    "CREATE TABLE IF NOT EXISTS order_lines (
        order_id TEXT NOT NULL REFERENCES orders (id),
        position INTEGER NOT NULL,
        sku TEXT NOT NULL,
        name TEXT,
        quantity INTEGER NOT NULL,
        unit_price INTEGER NOT NULL,
        line_total INTEGER NOT NULL,
        PRIMARY KEY (order_id, position)
    )",
    "CREATE TABLE IF NOT EXISTS status_history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        order_id TEXT NOT NULL REFERENCES orders (id),
        status TEXT NOT NULL,
        at INTEGER NOT NULL,
        reason TEXT
    )",
    "CREATE INDEX IF NOT EXISTS status_history_by_order ON status_history (order_id, seq)",
    // A guest's order: the digest of its access token (shop_shared::auth).
    "CREATE TABLE IF NOT EXISTS order_access (
        order_id TEXT PRIMARY KEY REFERENCES orders (id),
        token_digest TEXT NOT NULL
    )",
];

pub struct OrdersStore {
    db: Connection,
}

impl OrdersStore {
    /// Opens the database, creating the tables if this is its first use.
    pub fn open() -> Result<Self, OrdersError> {
        let db = db::open(DATABASE, SCHEMA_VERSION, &SCHEMA, unavailable)?;
        Ok(Self { db })
    }

    /// Creates the order placed at `now`, under `id` or a new `ord_` id,
    /// opened by the access token of `access_digest` when given. An order
    /// already under `id` is returned when its content is the same and is a
    /// conflict otherwise.
    pub fn create(
        &self,
        id: Option<String>,
        content: OrderContent,
        access_digest: Option<&str>,
        now: Millis,
    ) -> Result<(Order, Created), OrdersError> {
        let id = id.unwrap_or_else(|| new_id("ord"));
        self.write(|store| {
            if let Some(existing) = store.load(&id)? {
                check_recreate(&existing, &content)?;
                return Ok((existing, Created::Existing));
            }
            let order = Order::place(id, content, now);
            store.insert(&order)?;
            if let Some(digest) = access_digest {
                store.query(
                    "INSERT INTO order_access (order_id, token_digest) VALUES (?, ?)",
                    &[Value::Text(order.id.clone()), Value::Text(digest.to_owned())],
                )?;
            }
            Ok((order, Created::New))
        })
    }

    /// The digest of the access token that opens a guest's order.
    pub fn access_digest(&self, id: &str) -> Result<Option<String>, OrdersError> {
        let result =
            self.query("SELECT token_digest FROM order_access WHERE order_id = ?", &[Value::Text(id.to_owned())])?;
        Ok(result.rows.first().and_then(|row| row.get::<&str>(0)).map(str::to_owned))
    }

    pub fn order(&self, id: &str) -> Result<Order, OrdersError> {
        self.read(|store| store.load(id))?
            .ok_or_else(|| OrdersError::OrderNotFound(id.to_owned()))
    }

    /// The customer's orders, newest first, one page of them.
    pub fn orders_for(
        &self,
        customer: &Customer,
        page: PageRequest,
    ) -> Result<OrderPage, OrdersError> {
        let (column, key) = match customer {
            Customer::Id(id) => ("customer_id", id),
            Customer::Email(email) => ("email", email),
        };
        self.read(|store| {
            let total = store
                .query(
                    &format!("SELECT COUNT(*) FROM orders WHERE {column} = ?"),
                    &[Value::Text(key.clone())],
                )?
                .rows
                .first()
                .and_then(|row| row.get::<i64>(0))
                .ok_or_else(|| unavailable("counting orders", "no count"))?;
            let offset = i64::try_from(page.offset()).unwrap_or(i64::MAX);
            let rows = store.query(
                &format!(
                    "SELECT {ORDER_COLUMNS} FROM orders WHERE {column} = ?
                     ORDER BY seq DESC LIMIT ? OFFSET ?"
                ),
                &[
                    Value::Text(key.clone()),
                    Value::Integer(page.per_page.into()),
                    Value::Integer(offset),
                ],
            )?;
            let orders = store.complete(&rows.rows)?;
            Ok(page.page_of(orders, u64::try_from(total).unwrap_or_default()))
        })
    }

    /// Moves the order to `to` at `now` (see [`Order::transition`]) and
    /// returns it as it then is, with whether it changed. Runs inside the
    /// caller's write transaction ([`OrdersStore::write`]).
    pub fn transition_within(
        &self,
        id: &str,
        to: Status,
        reason: Option<String>,
        now: Millis,
    ) -> Result<(Order, bool), OrdersError> {
        let mut order = self.require(id)?;
        let from = order.status;
        let Some(change) = order.transition(to, reason, now)? else {
            return Ok((order, false));
        };
        self.save_status(&order, from, &[change], now)?;
        Ok((order, true))
    }

    /// Moves the order as an event reports it (see [`Order::follow`]).
    /// Runs inside the caller's write transaction (the inbox's).
    pub fn follow_within(
        &self,
        id: &str,
        to: Status,
        event_type: &str,
        reason: Option<String>,
        now: Millis,
    ) -> Result<Order, OrdersError> {
        let mut order = self.require(id)?;
        let from = order.status;
        let changes = order.follow(to, event_type, reason, now)?;
        if !changes.is_empty() {
            self.save_status(&order, from, &changes, now)?;
        }
        Ok(order)
    }

    fn require(&self, id: &str) -> Result<Order, OrdersError> {
        self.load(id)?
            .ok_or_else(|| OrdersError::OrderNotFound(id.to_owned()))
    }

    /// Writes the order's new status (if it still is `from`) and appends
    /// `changes` to its history.
    fn save_status(
        &self,
        order: &Order,
        from: Status,
        changes: &[StatusChange],
        now: Millis,
    ) -> Result<(), OrdersError> {
        self.query(
            "UPDATE orders SET status = ?, updated_at = ? WHERE id = ? AND status = ?",
            &[
                Value::Text(order.status.as_str().to_owned()),
                Value::Integer(now.0),
                Value::Text(order.id.clone()),
                Value::Text(from.as_str().to_owned()),
            ],
        )?;
        if self.changes()? != 1 {
            // Not reachable while the transaction holds the write lock;
            // the condition makes sure of it all the same.
            return Err(OrdersError::Unavailable(format!(
                "order {} changed while it was being updated; try again",
                order.id
            )));
        }
        for change in changes {
            self.insert_change(&order.id, change)?;
        }
        Ok(())
    }

    fn insert(&self, order: &Order) -> Result<(), OrdersError> {
        let content = &order.content;
        let address = serde_json::to_string(&content.address)
            .map_err(|e| unavailable("encoding an address", e))?;
        self.query(
            "INSERT INTO orders (id, customer_id, email, status, currency, items_total,
                shipping_total, tax_total, grand_total, address, shipping_speed,
                payment_authorization_id, reservation_id, checkout_id, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                Value::Text(order.id.clone()),
                optional_text(&content.customer_id),
                Value::Text(content.email.clone()),
                Value::Text(order.status.as_str().to_owned()),
                Value::Text(content.totals.currency.to_string()),
                Value::Integer(content.totals.items),
                Value::Integer(content.totals.shipping),
                Value::Integer(content.totals.tax),
                Value::Integer(content.totals.grand_total),
                Value::Text(address),
                Value::Text(content.shipping.as_str().to_owned()),
                Value::Text(content.payment_authorization_id.clone()),
                Value::Text(content.reservation_id.clone()),
                optional_text(&content.checkout_id),
                Value::Integer(order.created_at.0),
                Value::Integer(order.created_at.0),
            ],
        )?;
        // At most 100 lines × 7 parameters: far below SQLite's limit.
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?)"; content.lines.len()].join(", ");
        let params: Vec<Value> = content
            .lines
            .iter()
            .enumerate()
            .flat_map(|(position, line)| {
                [
                    Value::Text(order.id.clone()),
                    Value::Integer(position as i64),
                    Value::Text(line.sku.clone()),
                    optional_text(&line.name),
                    Value::Integer(line.quantity.into()),
                    Value::Integer(line.unit_price.amount),
                    Value::Integer(line.line_total.amount),
                ]
            })
            .collect();
        self.query(
            &format!(
                "INSERT INTO order_lines (order_id, position, sku, name, quantity, unit_price,
                    line_total) VALUES {rows}"
            ),
            &params,
        )?;
        for change in &order.history {
            self.insert_change(&order.id, change)?;
        }
        Ok(())
    }

    fn insert_change(&self, id: &str, change: &StatusChange) -> Result<(), OrdersError> {
        self.query(
            "INSERT INTO status_history (order_id, status, at, reason) VALUES (?, ?, ?, ?)",
            &[
                Value::Text(id.to_owned()),
                Value::Text(change.status.as_str().to_owned()),
                Value::Integer(change.at.0),
                optional_text(&change.reason),
            ],
        )?;
        Ok(())
    }

    /// The order with its lines and history, if it exists.
    fn load(&self, id: &str) -> Result<Option<Order>, OrdersError> {
        let rows = self.query(
            &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?"),
            &[Value::Text(id.to_owned())],
        )?;
        Ok(self.complete(&rows.rows)?.pop())
    }

    /// Orders from their `orders` rows, with their lines and histories read
    /// in one query each; in the order of the rows.
    fn complete(&self, rows: &[RowResult]) -> Result<Vec<Order>, OrdersError> {
        let mut orders: Vec<Order> = rows.iter().map(order_from_row).collect::<Result<_, _>>()?;
        if orders.is_empty() {
            return Ok(orders);
        }
        let ids: Vec<Value> = orders.iter().map(|o| Value::Text(o.id.clone())).collect();
        let placeholders = vec!["?"; ids.len()].join(", ");

        let lines = self.query(
            &format!(
                "SELECT order_id, sku, name, quantity, unit_price, line_total FROM order_lines
                 WHERE order_id IN ({placeholders}) ORDER BY order_id, position"
            ),
            &ids,
        )?;
        for row in &lines.rows {
            let order = owner(&mut orders, row)?;
            let line = line_from_row(row, &order.content.totals.currency)?;
            order.content.lines.push(line);
        }

        let history = self.query(
            &format!(
                "SELECT order_id, status, at, reason FROM status_history
                 WHERE order_id IN ({placeholders}) ORDER BY seq"
            ),
            &ids,
        )?;
        for row in &history.rows {
            let change = change_from_row(row)?;
            owner(&mut orders, row)?.history.push(change);
        }
        Ok(orders)
    }

    /// Rows changed by the last statement.
    fn changes(&self) -> Result<i64, OrdersError> {
        self.query("SELECT changes()", &[])?
            .rows
            .first()
            .and_then(|row| row.get::<i64>(0))
            .ok_or_else(|| unavailable("counting changes", "no count"))
    }

    /// Runs `work` in a write transaction ([`db::transaction`]): committed
    /// if it succeeds, rolled back if it fails. `IMMEDIATE` takes the write
    /// lock at once, so what `work` reads stays true until it commits.
    pub fn write<T>(
        &self,
        work: impl FnOnce(&Self) -> Result<T, OrdersError>,
    ) -> Result<T, OrdersError> {
        db::transaction(&self.db, unavailable, |_| work(self))
    }

    /// Runs `work` in a read transaction: one snapshot across its queries.
    fn read<T>(
        &self,
        work: impl FnOnce(&Self) -> Result<T, OrdersError>,
    ) -> Result<T, OrdersError> {
        db::snapshot(&self.db, unavailable, |_| work(self))
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<QueryResult, OrdersError> {
        self.db
            .execute(sql, params)
            .map_err(|e| unavailable("querying", e))
    }
}

pub fn unavailable(doing: &str, error: impl std::fmt::Display) -> OrdersError {
    eprintln!("orders database: {doing}: {error}");
    OrdersError::Unavailable(format!("the orders database failed while {doing}"))
}

fn corrupt(what: &str) -> OrdersError {
    unavailable(
        &format!("reading {what}"),
        "a column has an unexpected value",
    )
}

fn optional_text(text: &Option<String>) -> Value {
    text.as_ref()
        .map_or(Value::Null, |text| Value::Text(text.clone()))
}

/// A nullable text column: `Some(None)` for NULL, `None` for another type.
fn nullable_text(row: &RowResult, i: usize) -> Option<Option<String>> {
    match row.values.get(i)? {
        Value::Null => Some(None),
        Value::Text(text) => Some(Some(text.clone())),
        _ => None,
    }
}

/// The order a line or history row (`order_id` first) belongs to.
fn owner<'a>(orders: &'a mut [Order], row: &RowResult) -> Result<&'a mut Order, OrdersError> {
    let id = row.get::<&str>(0).ok_or_else(|| corrupt("an order id"))?;
    orders
        .iter_mut()
        .find(|order| order.id == id)
        .ok_or_else(|| corrupt("a row of an order not asked for"))
}

/// An order from its `orders` row ([`ORDER_COLUMNS`]), without lines or
/// history yet.
fn order_from_row(row: &RowResult) -> Result<Order, OrdersError> {
    let text = |i: usize| row.get::<&str>(i).map(str::to_owned);
    let decoded = (|| {
        let currency = Currency::parse(row.get::<&str>(4)?).ok()?;
        let address: Address = serde_json::from_str(row.get::<&str>(9)?).ok()?;
        Some(Order {
            id: text(0)?,
            content: OrderContent {
                customer_id: nullable_text(row, 1)?,
                email: text(2)?,
                lines: Vec::new(),
                totals: Totals {
                    items: row.get::<i64>(5)?,
                    shipping: row.get::<i64>(6)?,
                    tax: row.get::<i64>(7)?,
                    grand_total: row.get::<i64>(8)?,
                    currency,
                },
                address,
                shipping: ShippingSpeed::parse(row.get::<&str>(10)?)?,
                payment_authorization_id: text(11)?,
                reservation_id: text(12)?,
                checkout_id: nullable_text(row, 13)?,
            },
            status: Status::parse(row.get::<&str>(3)?).ok()?,
            history: Vec::new(),
            created_at: Millis(row.get::<i64>(14)?),
        })
    })();
    decoded.ok_or_else(|| corrupt("an order row"))
}

/// `order_id, sku, name, quantity, unit_price, line_total`.
fn line_from_row(row: &RowResult, currency: &Currency) -> Result<OrderLine, OrdersError> {
    let money = |amount: i64| Money {
        amount,
        currency: currency.clone(),
    };
    let decoded = (|| {
        Some(OrderLine {
            sku: row.get::<&str>(1)?.to_owned(),
            name: nullable_text(row, 2)?,
            quantity: row.get::<u32>(3)?,
            unit_price: money(row.get::<i64>(4)?),
            line_total: money(row.get::<i64>(5)?),
        })
    })();
    decoded.ok_or_else(|| corrupt("an order line"))
}

/// `order_id, status, at, reason`.
fn change_from_row(row: &RowResult) -> Result<StatusChange, OrdersError> {
    let decoded = (|| {
        Some(StatusChange {
            status: Status::parse(row.get::<&str>(1)?).ok()?,
            at: Millis(row.get::<i64>(2)?),
            reason: nullable_text(row, 3)?,
        })
    })();
    decoded.ok_or_else(|| corrupt("a status change"))
}

/// The database, for the shared event toolkit (inbox, outbox, admin routes).
impl EventStore for OrdersStore {
    fn connection(&self) -> &Connection {
        &self.db
    }
}
