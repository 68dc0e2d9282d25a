//! The `shop:payment/payment` WIT export, over the same domain and store code
//! as the HTTP routes; generated types are converted here and go no further.

wit_bindgen::generate!({
    world: "shop:payment/service",
    path: ["../../wit/types", "../../wit/payment"],
    // The shared records (money) are generated here too; nothing else in this
    // crate provides bindings for `shop:types`.
    with: { "shop:types/types@0.1.0": generate },
});

use exports::shop::payment::payment::{self as wit, Guest};
use shop::types::types::Money as WitMoney;
use shop_shared::{Money, now_millis};

use crate::domain::{
    CardInput, DeclineReason, IdempotencyKey, Outcome, PaymentError, PaymentStatus, PaymentView,
    RefundView, check_amount, check_payment_id,
};
use crate::store::{PaymentStore, Recorded};

struct PaymentExport;

export!(PaymentExport);

impl Guest for PaymentExport {
    fn authorize(
        idempotency_key: String,
        amount: WitMoney,
        card: wit::Card,
    ) -> Result<wit::Payment, wit::Error> {
        let key = IdempotencyKey::parse(Some(&idempotency_key))?;
        let amount = money(amount)?;
        check_amount(&amount)?;
        let card = CardInput {
            number: card.number,
            exp_month: card.exp_month.into(),
            exp_year: card.exp_year.into(),
            cvc: card.cvc,
        }
        .check(now_millis())?;
        payment(PaymentStore::open()?.authorize(&key, &amount, &card)?)
    }

    fn capture(
        idempotency_key: String,
        id: String,
        amount: Option<WitMoney>,
    ) -> Result<wit::Payment, wit::Error> {
        let key = IdempotencyKey::parse(Some(&idempotency_key))?;
        check_payment_id(&id)?;
        let amount = amount.map(money).transpose()?;
        payment(PaymentStore::open()?.capture(&key, &id, amount.as_ref())?)
    }

    fn void(idempotency_key: String, id: String) -> Result<wit::Payment, wit::Error> {
        let key = IdempotencyKey::parse(Some(&idempotency_key))?;
        check_payment_id(&id)?;
        payment(PaymentStore::open()?.void(&key, &id)?)
    }

    fn refund(
        idempotency_key: String,
        id: String,
        amount: Option<WitMoney>,
    ) -> Result<wit::RefundReceipt, wit::Error> {
        let key = IdempotencyKey::parse(Some(&idempotency_key))?;
        check_payment_id(&id)?;
        let amount = amount.map(money).transpose()?;
        match PaymentStore::open()?
            .refund(&key, &id, amount.as_ref())?
            .outcome
        {
            Outcome::Refund(receipt) => Ok(wit::RefundReceipt {
                refund: receipt.refund.into(),
                payment: receipt.payment.into(),
            }),
            other => Err(unexpected(other)),
        }
    }

    fn get(id: String) -> Result<wit::Payment, wit::Error> {
        check_payment_id(&id)?;
        Ok(PaymentStore::open()?.view(&id)?.into())
    }

    fn find_by_key(idempotency_key: String) -> Result<Option<wit::Payment>, wit::Error> {
        let key = IdempotencyKey::parse(Some(&idempotency_key))?;
        Ok(PaymentStore::open()?.find_by_key(&key)?.map(Into::into))
    }
}

fn money(money: WitMoney) -> Result<Money, PaymentError> {
    Money::new(money.amount, &money.currency)
        .map_err(|e| PaymentError::InvalidAmount(format!("amount: {e}")))
}

/// A recorded payment result, a decline as its error.
fn payment(recorded: Recorded) -> Result<wit::Payment, wit::Error> {
    match recorded.outcome {
        Outcome::Payment(view) => Ok(view.into()),
        Outcome::Declined(decline) => Err(match decline.reason {
            DeclineReason::CardDeclined => {
                wit::Error::CardDeclined(decline.reason.message().into())
            }
            DeclineReason::InsufficientFunds => {
                wit::Error::InsufficientFunds(decline.reason.message().into())
            }
        }),
        other => Err(unexpected(other)),
    }
}

/// A key recorded for one operation always holds that operation's outcome
/// (the fingerprint names the operation); anything else is a broken store.
fn unexpected(outcome: Outcome) -> wit::Error {
    eprintln!(
        "payment: an idempotency record holds an unexpected outcome ({})",
        match outcome {
            Outcome::Payment(_) => "payment",
            Outcome::Refund(_) => "refund",
            Outcome::Declined(_) => "decline",
        }
    );
    wit::Error::Unavailable("the payment store returned an unexpected record".into())
}

fn wit_money(money: Money) -> WitMoney {
    WitMoney {
        amount: money.amount,
        currency: money.currency.to_string(),
    }
}

impl From<RefundView> for wit::RefundEntry {
    fn from(refund: RefundView) -> Self {
        Self {
            id: refund.id,
            payment_id: refund.payment_id,
            amount: wit_money(refund.amount),
            created_at: refund.created_at,
        }
    }
}

impl From<PaymentView> for wit::Payment {
    fn from(view: PaymentView) -> Self {
        Self {
            id: view.id,
            status: match view.status {
                PaymentStatus::Authorized => wit::PaymentStatus::Authorized,
                PaymentStatus::Captured => wit::PaymentStatus::Captured,
                PaymentStatus::PartiallyRefunded => wit::PaymentStatus::PartiallyRefunded,
                PaymentStatus::Refunded => wit::PaymentStatus::Refunded,
                PaymentStatus::Voided => wit::PaymentStatus::Voided,
            },
            amount: wit_money(view.amount),
            captured: wit_money(view.captured),
            refunded: wit_money(view.refunded),
            card: wit::CardSummary {
                brand: view.card.brand,
                last4: view.card.last4,
            },
            refunds: view.refunds.into_iter().map(Into::into).collect(),
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}

impl From<PaymentError> for wit::Error {
    fn from(error: PaymentError) -> Self {
        let message = error.to_string();
        match error {
            PaymentError::InvalidCard(_) => Self::InvalidCard(message),
            PaymentError::CardExpired(_) => Self::CardExpired(message),
            PaymentError::InvalidCvc(_) => Self::InvalidCvc(message),
            PaymentError::ProcessorError => Self::ProcessorError(message),
            PaymentError::PaymentNotFound(_) => Self::NotFound(message),
            PaymentError::IllegalTransition { .. } => Self::IllegalTransition(message),
            PaymentError::CaptureExceedsAuthorized { .. }
            | PaymentError::RefundExceedsCaptured { .. } => Self::AmountExceeded(message),
            PaymentError::IdempotencyKeyReused => Self::IdempotencyKeyReused(message),
            PaymentError::Unavailable(_) => Self::Unavailable(message),
            PaymentError::IdempotencyKeyRequired
            | PaymentError::InvalidIdempotencyKey(_)
            | PaymentError::InvalidPaymentId(_)
            | PaymentError::InvalidAmount(_)
            | PaymentError::CurrencyMismatch { .. } => Self::Invalid(message),
        }
    }
}
