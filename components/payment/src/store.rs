//! The payment service's SQLite layout (database label `payment`), the only
//! code that talks to the database.
//!
//! Tables:
//! - `payments`: one row per authorization: status, amounts in minor units
//!   (authorized, captured, refunded) and currency, and of the card only its
//!   brand and last four digits.
//! - `refunds`: one row per refund of a payment.
//! - `idempotency_keys`: one row per Idempotency-Key used: the operation, the
//!   SHA-256 fingerprint of the request (see `domain::Fingerprint`; no card
//!   number or cvc goes into it), and the first result (HTTP status and the
//!   domain outcome as JSON) that every retry gets back.
//! - `meta`: `schema_version`.
//! - `outbox`, `inbox`, `dead_letters`: the shared event toolkit's tables
//!   (`shop_shared::{outbox, inbox, dead_letters}`), created on first use.
//!
//! Every operation is one `BEGIN IMMEDIATE` transaction: look the key up,
//! apply the operation, record the key with its result, commit. The write
//! lock is held from the lookup on, so of two racing requests with the same
//! key the second finds the first's result (the key's PRIMARY KEY is the
//! backstop). A failure that may pass (the processor erred, the store
//! failed) is not recorded, so a retry tries again; invalid input is refused
//! before any of this.
//!
//! A store opened with [`PaymentStore::open_joined`] runs the same
//! operations inside a transaction its caller holds instead: the event
//! receiver's, where a capture, the `payment.captured` it puts in the outbox
//! and the inbox's record of the event commit together or not at all.

use shop_shared::event_admin::EventStore;
use shop_shared::{Money, db, new_id, now_millis};
use spin_sdk::sqlite::{Connection, QueryResult, RowResult, Value};

use crate::domain::{
    CheckedCard, Decision, Decline, Fingerprint, IdempotencyKey, Operation, Outcome, Payment,
    PaymentError, PaymentStatus, PaymentView, Refund, RefundReceipt,
};

const DATABASE: &str = "payment";
const SCHEMA_VERSION: &str = "1";

const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS payments (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        amount INTEGER NOT NULL CHECK (amount > 0),
        currency TEXT NOT NULL,
        captured INTEGER NOT NULL CHECK (captured >= 0 AND captured <= amount),
        refunded INTEGER NOT NULL CHECK (refunded >= 0 AND refunded <= captured),
        card_brand TEXT NOT NULL,
        card_last4 TEXT NOT NULL CHECK (length(card_last4) = 4),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS refunds (
        id TEXT PRIMARY KEY,
        payment_id TEXT NOT NULL REFERENCES payments (id),
        amount INTEGER NOT NULL CHECK (amount > 0),
        created_at INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS refunds_by_payment ON refunds (payment_id, created_at)",
    "CREATE TABLE IF NOT EXISTS idempotency_keys (
        key TEXT PRIMARY KEY,
        operation TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        created_at INTEGER NOT NULL
    )",
];

const PAYMENT_COLUMNS: &str = "id, status, amount, currency, captured, refunded, card_brand, card_last4, created_at, updated_at";

/// An operation's result: the first one for its Idempotency-Key, and
/// whether this request was a retry that got it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub status: u16,
    pub outcome: Outcome,
    pub replayed: bool,
}

pub struct PaymentStore {
    db: Connection,
    /// Operations join the caller's transaction instead of opening their own.
    joined: bool,
}

impl PaymentStore {
    /// Opens the database, creating its tables if this is its first use.
    pub fn open() -> Result<Self, PaymentError> {
        // Idempotent, so instances racing through it do no harm.
        let db = db::open(DATABASE, SCHEMA_VERSION, &SCHEMA, unavailable)?;
        Ok(Self { db, joined: false })
    }

    /// A store whose operations run inside a transaction the caller holds
    /// on [`PaymentStore::connection`] (`BEGIN IMMEDIATE` … `COMMIT`), so
    /// they commit, or roll back, with what the caller writes there too.
    pub fn open_joined() -> Result<Self, PaymentError> {
        Ok(Self {
            joined: true,
            ..Self::open()?
        })
    }

    /// Authorizes `amount` on the checked card, or records the decline.
    pub fn authorize(
        &self,
        key: &IdempotencyKey,
        amount: &Money,
        card: &CheckedCard,
    ) -> Result<Recorded, PaymentError> {
        let fingerprint = Fingerprint::authorize(amount, card);
        self.idempotent(
            key,
            Operation::Authorize,
            &fingerprint,
            |store, now| match card.decision {
                Decision::ProcessorError => Err(PaymentError::ProcessorError),
                Decision::Decline(reason) => Ok(Outcome::Declined(Decline {
                    reason,
                    card: card.summary.clone(),
                })),
                Decision::Approve => {
                    let payment = Payment::authorized(
                        new_id("pay"),
                        amount.clone(),
                        card.summary.clone(),
                        now,
                    );
                    store.insert_payment(&payment)?;
                    Ok(Outcome::Payment(payment.view(&[])))
                }
            },
        )
    }

    pub fn capture(
        &self,
        key: &IdempotencyKey,
        id: &str,
        amount: Option<&Money>,
    ) -> Result<Recorded, PaymentError> {
        let fingerprint = Fingerprint::follow_up(Operation::Capture, id, amount);
        self.idempotent(key, Operation::Capture, &fingerprint, |store, now| {
            let mut payment = store.require(id)?;
            payment.capture(amount, now)?;
            store.update_payment(&payment)?;
            Ok(Outcome::Payment(payment.view(&store.refunds(&payment.id)?)))
        })
    }

    pub fn void(&self, key: &IdempotencyKey, id: &str) -> Result<Recorded, PaymentError> {
        let fingerprint = Fingerprint::follow_up(Operation::Void, id, None);
        self.idempotent(key, Operation::Void, &fingerprint, |store, now| {
            let mut payment = store.require(id)?;
            payment.void(now)?;
            store.update_payment(&payment)?;
            Ok(Outcome::Payment(payment.view(&store.refunds(&payment.id)?)))
        })
    }

    pub fn refund(
        &self,
        key: &IdempotencyKey,
        id: &str,
        amount: Option<&Money>,
    ) -> Result<Recorded, PaymentError> {
        let fingerprint = Fingerprint::follow_up(Operation::Refund, id, amount);
        self.idempotent(key, Operation::Refund, &fingerprint, |store, now| {
            let mut payment = store.require(id)?;
            let refunded = payment.refund(amount, now)?;
            let refund = Refund {
                id: new_id("rfd"),
                payment_id: payment.id.clone(),
                amount: refunded,
                created_at: now,
            };
            store.query(
                "INSERT INTO refunds (id, payment_id, amount, created_at) VALUES (?, ?, ?, ?)",
                &[
                    Value::Text(refund.id.clone()),
                    Value::Text(refund.payment_id.clone()),
                    Value::Integer(refund.amount),
                    Value::Integer(refund.created_at),
                ],
            )?;
            store.update_payment(&payment)?;
            Ok(Outcome::Refund(RefundReceipt {
                refund: payment.refund_view(&refund),
                payment: payment.view(&store.refunds(&payment.id)?),
            }))
        })
    }

    /// The payment as it stands now.
    pub fn view(&self, id: &str) -> Result<PaymentView, PaymentError> {
        let payment = self.require(id)?;
        Ok(payment.view(&self.refunds(id)?))
    }

    /// The payment, as it stands now, that the operation recorded under
    /// `key` made or changed (see [`Outcome::payment_id`]); `None` for a key
    /// never used, or one whose operation was declined. This is how a caller
    /// whose answer was lost (it crashed between the call and recording the
    /// result) finds what its call did, to undo it.
    pub fn find_by_key(&self, key: &IdempotencyKey) -> Result<Option<PaymentView>, PaymentError> {
        let Some((_, recorded)) = self.recorded(key)? else {
            return Ok(None);
        };
        match recorded.outcome.payment_id() {
            Some(id) => self.view(id).map(Some),
            None => Ok(None),
        }
    }

    /// Runs `work` once per Idempotency-Key: a key seen before returns its
    /// recorded result (or, used for another request, is refused).
    fn idempotent(
        &self,
        key: &IdempotencyKey,
        operation: Operation,
        fingerprint: &Fingerprint,
        work: impl FnOnce(&Self, i64) -> Result<Outcome, PaymentError>,
    ) -> Result<Recorded, PaymentError> {
        self.transaction(|store, now| {
            if let Some((recorded_fingerprint, recorded)) = store.recorded(key)? {
                return if recorded_fingerprint == *fingerprint {
                    Ok(recorded)
                } else {
                    Err(PaymentError::IdempotencyKeyReused)
                };
            }
            let outcome = work(store, now)?;
            let status = match outcome {
                Outcome::Declined(_) => 402,
                Outcome::Payment(_) | Outcome::Refund(_) => operation.success_status(),
            };
            let outcome_json = serde_json::to_string(&outcome)
                .map_err(|e| unavailable("recording a result", e))?;
            store.query(
                "INSERT INTO idempotency_keys (key, operation, fingerprint, status, outcome, created_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
                &[
                    Value::Text(key.as_str().to_owned()),
                    Value::Text(operation.as_str().to_owned()),
                    Value::Text(fingerprint.as_str().to_owned()),
                    Value::Integer(status.into()),
                    Value::Text(outcome_json),
                    Value::Integer(now),
                ],
            )?;
            Ok(Recorded {
                status,
                outcome,
                replayed: false,
            })
        })
    }

    fn recorded(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<(Fingerprint, Recorded)>, PaymentError> {
        let result = self.query(
            "SELECT fingerprint, status, outcome FROM idempotency_keys WHERE key = ?",
            &[Value::Text(key.as_str().to_owned())],
        )?;
        let Some(row) = result.rows.first() else {
            return Ok(None);
        };
        let decoded = (|| {
            let fingerprint = Fingerprint::from_stored(row.get::<&str>(0)?.to_owned());
            let status = row.get::<u16>(1)?;
            let outcome = serde_json::from_str::<Outcome>(row.get::<&str>(2)?).ok()?;
            Some((
                fingerprint,
                Recorded {
                    status,
                    outcome,
                    replayed: true,
                },
            ))
        })();
        decoded
            .ok_or_else(|| corrupt("an idempotency record"))
            .map(Some)
    }

    fn insert_payment(&self, payment: &Payment) -> Result<(), PaymentError> {
        self.query(
            &format!(
                "INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            &[
                Value::Text(payment.id.clone()),
                Value::Text(payment.status.as_str().to_owned()),
                Value::Integer(payment.amount.amount),
                Value::Text(payment.amount.currency.to_string()),
                Value::Integer(payment.captured),
                Value::Integer(payment.refunded),
                Value::Text(payment.card.brand.clone()),
                Value::Text(payment.card.last4.clone()),
                Value::Integer(payment.created_at),
                Value::Integer(payment.updated_at),
            ],
        )?;
        Ok(())
    }

    fn update_payment(&self, payment: &Payment) -> Result<(), PaymentError> {
        self.query(
            "UPDATE payments SET status = ?, captured = ?, refunded = ?, updated_at = ? WHERE id = ?",
            &[
                Value::Text(payment.status.as_str().to_owned()),
                Value::Integer(payment.captured),
                Value::Integer(payment.refunded),
                Value::Integer(payment.updated_at),
                Value::Text(payment.id.clone()),
            ],
        )?;
        Ok(())
    }

    fn require(&self, id: &str) -> Result<Payment, PaymentError> {
        let result = self.query(
            &format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ?"),
            &[Value::Text(id.to_owned())],
        )?;
        let row = result
            .rows
            .first()
            .ok_or_else(|| PaymentError::PaymentNotFound(id.to_owned()))?;
        payment_from_row(row)
    }

    fn refunds(&self, payment_id: &str) -> Result<Vec<Refund>, PaymentError> {
        let result = self.query(
            "SELECT id, amount, created_at FROM refunds WHERE payment_id = ? ORDER BY created_at, id",
            &[Value::Text(payment_id.to_owned())],
        )?;
        result
            .rows
            .iter()
            .map(|row| {
                let decoded = (|| {
                    Some(Refund {
                        id: row.get::<&str>(0)?.to_owned(),
                        payment_id: payment_id.to_owned(),
                        amount: row.get::<i64>(1)?,
                        created_at: row.get::<i64>(2)?,
                    })
                })();
                decoded.ok_or_else(|| corrupt("a refund row"))
            })
            .collect()
    }

    /// Runs `work` in a `BEGIN IMMEDIATE` transaction ([`db::transaction`])
    /// with the time at which the write lock was taken; commits on `Ok`,
    /// rolls back on `Err`.
    fn transaction<T>(
        &self,
        work: impl FnOnce(&Self, i64) -> Result<T, PaymentError>,
    ) -> Result<T, PaymentError> {
        if self.joined {
            // The caller holds the write lock and commits or rolls back.
            return work(self, now_millis());
        }
        db::transaction(&self.db, unavailable, |_| work(self, now_millis()))
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<QueryResult, PaymentError> {
        self.db
            .execute(sql, params)
            .map_err(|e| unavailable("querying", e))
    }
}

fn payment_from_row(row: &RowResult) -> Result<Payment, PaymentError> {
    let text = |i: usize| row.get::<&str>(i).map(str::to_owned);
    let decoded = (|| {
        Some(Payment {
            id: text(0)?,
            status: PaymentStatus::parse(row.get::<&str>(1)?)?,
            amount: Money::new(row.get::<i64>(2)?, row.get::<&str>(3)?).ok()?,
            captured: row.get::<i64>(4)?,
            refunded: row.get::<i64>(5)?,
            card: crate::domain::CardSummary {
                brand: text(6)?,
                last4: text(7)?,
            },
            created_at: row.get::<i64>(8)?,
            updated_at: row.get::<i64>(9)?,
        })
    })();
    decoded.ok_or_else(|| corrupt("a payment row"))
}

/// Store errors are logged with what was being done; no statement parameter
/// (and so no card data) is ever part of the message.
fn unavailable(doing: &str, error: impl std::fmt::Display) -> PaymentError {
    eprintln!("payment database: {doing}: {error}");
    PaymentError::Unavailable(format!("the payment database failed while {doing}"))
}

fn corrupt(what: &str) -> PaymentError {
    unavailable(
        &format!("reading {what}"),
        "a column has an unexpected value",
    )
}

/// The database, for the shared event toolkit (inbox, outbox, admin routes).
impl EventStore for PaymentStore {
    fn connection(&self) -> &Connection {
        &self.db
    }
}
