//! Payments and their rules: card checks (Luhn, brand, expiry, cvc), the
//! test cards' outcomes, the authorization's state machine (capture, void,
//! refund) and the fingerprints that make every operation idempotent. No I/O.
//!
//! A full card number or cvc never leaves [`CardInput::check`]: what comes out
//! is the brand, the last four digits and the processor's decision. Nothing
//! else is kept, logged or hashed.

use serde::{Deserialize, Serialize};
use shop_shared::{Money, rfc3339, sha256_hex};

/// Largest amount one payment may carry, in minor units (10 000 000.00).
pub const MAX_AMOUNT: i64 = 1_000_000_000;
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;
const MAX_PAYMENT_ID_LEN: usize = shop_shared::MAX_ID_LEN;
/// A card expiring further ahead than this is not a real card.
const MAX_CARD_YEARS_AHEAD: i64 = 30;

/// The test cards (SPEC §3). Any other Luhn-valid number approves.
pub const DECLINED_CARD: &str = "4000000000000002";
pub const INSUFFICIENT_FUNDS_CARD: &str = "4000000000009995";
pub const PROCESSOR_ERROR_CARD: &str = "4000000000000119";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentError {
    IdempotencyKeyRequired,
    InvalidIdempotencyKey(String),
    /// The same key was first used for another request.
    IdempotencyKeyReused,
    InvalidPaymentId(String),
    InvalidAmount(String),
    CurrencyMismatch {
        expected: String,
        got: String,
    },
    InvalidCard(String),
    CardExpired(String),
    InvalidCvc(String),
    /// The card processor failed; nothing was authorized, retrying may help.
    ProcessorError,
    PaymentNotFound(String),
    /// The payment's status does not allow the action.
    IllegalTransition {
        id: String,
        status: PaymentStatus,
        action: &'static str,
    },
    CaptureExceedsAuthorized {
        requested: i64,
        authorized: i64,
    },
    RefundExceedsCaptured {
        requested: i64,
        refundable: i64,
    },
    /// The payment store failed.
    Unavailable(String),
}

impl std::fmt::Display for PaymentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::IdempotencyKeyRequired => write!(
                f,
                "an Idempotency-Key header is required (1 to {MAX_IDEMPOTENCY_KEY_LEN} characters), so that a retry never charges twice"
            ),
            Self::IdempotencyKeyReused => f.write_str(
                "this Idempotency-Key was already used for a different request; use a new key for a new request",
            ),
            Self::CurrencyMismatch { expected, got } => write!(
                f,
                "the payment is in {expected}; an amount in {got} cannot be applied to it"
            ),
            Self::ProcessorError => f.write_str(
                "the card processor failed to answer; nothing was authorized, try again later",
            ),
            Self::PaymentNotFound(id) => write!(f, "no payment with id {id:?}"),
            Self::IllegalTransition { id, status, action } => write!(
                f,
                "payment {id:?} is {} and cannot be {action}{}",
                status.as_str(),
                match (status, *action) {
                    (PaymentStatus::Authorized, "refunded") =>
                        "; capture it first, or void it to release the funds",
                    (_, "captured" | "voided") => "; only an authorized payment can be",
                    (_, _) => "",
                }
            ),
            Self::CaptureExceedsAuthorized { requested, authorized } => write!(
                f,
                "cannot capture {requested}: only {authorized} was authorized"
            ),
            Self::RefundExceedsCaptured { requested, refundable } => write!(
                f,
                "cannot refund {requested}: only {refundable} of the captured amount is left to refund"
            ),
            Self::InvalidIdempotencyKey(message)
            | Self::InvalidPaymentId(message)
            | Self::InvalidAmount(message)
            | Self::InvalidCard(message)
            | Self::CardExpired(message)
            | Self::InvalidCvc(message)
            | Self::Unavailable(message) => f.write_str(message),
        }
    }
}

/// The client's `Idempotency-Key`: 1–200 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(key: Option<&str>) -> Result<Self, PaymentError> {
        let key = key
            .map(str::trim)
            .ok_or(PaymentError::IdempotencyKeyRequired)?;
        if key.is_empty() {
            return Err(PaymentError::IdempotencyKeyRequired);
        }
        if key.len() > MAX_IDEMPOTENCY_KEY_LEN || !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(PaymentError::InvalidIdempotencyKey(format!(
                "an Idempotency-Key is 1 to {MAX_IDEMPOTENCY_KEY_LEN} printable ASCII characters"
            )));
        }
        Ok(Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A payment id as a path gives it: `pay_…`, or anything URL-safe we might
/// have issued; anything else cannot exist.
pub fn check_payment_id(id: &str) -> Result<(), PaymentError> {
    if shop_shared::is_valid_id(id) {
        Ok(())
    } else {
        Err(PaymentError::InvalidPaymentId(format!(
            "a payment id is 1 to {MAX_PAYMENT_ID_LEN} letters, digits, '_' or '-', like \"pay_3f9c…\""
        )))
    }
}

/// An amount to authorize, capture or refund: 1 to [`MAX_AMOUNT`] minor units.
pub fn check_amount(money: &Money) -> Result<(), PaymentError> {
    if (1..=MAX_AMOUNT).contains(&money.amount) {
        Ok(())
    } else {
        Err(PaymentError::InvalidAmount(format!(
            "amount must be a whole number of minor units from 1 to {MAX_AMOUNT}, got {}",
            money.amount
        )))
    }
}

/// A card as the client sends it. Its `Debug` never shows the number or cvc.
pub struct CardInput {
    pub number: String,
    pub exp_month: i64,
    pub exp_year: i64,
    pub cvc: String,
}

impl std::fmt::Debug for CardInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardInput")
            .field("number", &"[redacted]")
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .field("cvc", &"[redacted]")
            .finish()
    }
}

/// What is kept of a card: its brand and its last four digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSummary {
    pub brand: String,
    pub last4: String,
}

/// What the (simulated) processor answers for a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Decline(DeclineReason),
    ProcessorError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    CardDeclined,
    InsufficientFunds,
}

impl DeclineReason {
    pub fn code(self) -> &'static str {
        match self {
            Self::CardDeclined => "card_declined",
            Self::InsufficientFunds => "insufficient_funds",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::CardDeclined => "the card was declined; use another card",
            Self::InsufficientFunds => {
                "the card was declined for insufficient funds; use another card"
            }
        }
    }
}

/// A card that passed every check: only what may be kept, and the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCard {
    pub summary: CardSummary,
    pub exp_month: u32,
    pub exp_year: i64,
    pub decision: Decision,
}

impl CardInput {
    /// Checks the number (digits, length, Luhn), the expiry against
    /// `now_millis` (a card is good through the last day of its month) and
    /// the cvc, in that order, and asks the processor. Messages never repeat
    /// the number or the cvc.
    pub fn check(self, now_millis: i64) -> Result<CheckedCard, PaymentError> {
        let digits: String = self
            .number
            .chars()
            .filter(|c| *c != ' ' && *c != '-')
            .collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) || !(12..=19).contains(&digits.len()) {
            return Err(PaymentError::InvalidCard(
                "the card number must be 12 to 19 digits".into(),
            ));
        }
        if !luhn_valid(&digits) {
            return Err(PaymentError::InvalidCard(
                "the card number is not valid (its check digit is wrong); check it for typos"
                    .into(),
            ));
        }
        let brand = brand_of(&digits);
        let (exp_month, exp_year) = check_expiry(self.exp_month, self.exp_year, now_millis)?;
        let cvc_len = if brand == "amex" { 4 } else { 3 };
        if self.cvc.len() != cvc_len || !self.cvc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PaymentError::InvalidCvc(format!(
                "the security code (cvc) of a {brand} card is {cvc_len} digits"
            )));
        }
        Ok(CheckedCard {
            summary: CardSummary {
                brand: brand.to_owned(),
                last4: digits[digits.len() - 4..].to_owned(),
            },
            exp_month,
            exp_year,
            decision: decide(&digits),
        })
    }
}

/// The Luhn checksum: doubling every second digit from the right.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The card network, from the number's leading digits (IIN ranges).
pub fn brand_of(digits: &str) -> &'static str {
    let prefix = |n: usize| -> u32 { digits.get(..n).and_then(|p| p.parse().ok()).unwrap_or(0) };
    match (prefix(1), prefix(2), prefix(3), prefix(4)) {
        (4, ..) => "visa",
        (_, 34 | 37, ..) => "amex",
        (_, 51..=55, ..) | (.., 2221..=2720) => "mastercard",
        (.., 6011) | (_, 65, ..) | (_, _, 644..=649, _) => "discover",
        (.., 3528..=3589) => "jcb",
        (_, 36 | 38 | 39, ..) | (_, _, 300..=305, _) => "diners",
        (_, 62, ..) => "unionpay",
        _ => "unknown",
    }
}

/// Month 1–12 and a year (two digits mean 20YY), not past, not absurdly far.
fn check_expiry(month: i64, year: i64, now_millis: i64) -> Result<(u32, i64), PaymentError> {
    let month = u32::try_from(month)
        .ok()
        .filter(|m| (1..=12).contains(m))
        .ok_or_else(|| {
            PaymentError::InvalidCard(format!("exp_month must be 1 to 12, got {month}"))
        })?;
    let year = if (0..100).contains(&year) {
        2000 + year
    } else {
        year
    };
    let (now_year, now_month) = year_month(now_millis);
    if !(2000..=now_year + MAX_CARD_YEARS_AHEAD).contains(&year) {
        return Err(PaymentError::InvalidCard(format!(
            "exp_year must be a year like {now_year}, got {year}"
        )));
    }
    if (year, month) < (now_year, now_month) {
        return Err(PaymentError::CardExpired(format!(
            "the card expired at the end of {month:02}/{year}; use another card"
        )));
    }
    Ok((month, year))
}

/// The UTC year and month of an instant.
pub fn year_month(now_millis: i64) -> (i64, u32) {
    let text = rfc3339(now_millis);
    let year = text.get(..4).and_then(|y| y.parse().ok()).unwrap_or(1970);
    let month = text.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    (year, month)
}

/// The simulated processor: the test cards give their outcome, every other
/// (Luhn-valid) number approves.
pub fn decide(digits: &str) -> Decision {
    match digits {
        DECLINED_CARD => Decision::Decline(DeclineReason::CardDeclined),
        INSUFFICIENT_FUNDS_CARD => Decision::Decline(DeclineReason::InsufficientFunds),
        PROCESSOR_ERROR_CARD => Decision::ProcessorError,
        _ => Decision::Approve,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Authorized,
    Captured,
    PartiallyRefunded,
    Refunded,
    Voided,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorized => "authorized",
            Self::Captured => "captured",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
            Self::Voided => "voided",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Authorized,
            Self::Captured,
            Self::PartiallyRefunded,
            Self::Refunded,
            Self::Voided,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// An authorization and what happened to it since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: String,
    pub status: PaymentStatus,
    /// What was authorized.
    pub amount: Money,
    /// Minor units captured (0 until captured).
    pub captured: i64,
    /// Minor units refunded so far, never above `captured`.
    pub refunded: i64,
    pub card: CardSummary,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub payment_id: String,
    pub amount: i64,
    pub created_at: i64,
}

impl Payment {
    pub fn authorized(id: String, amount: Money, card: CardSummary, now_millis: i64) -> Self {
        Self {
            id,
            status: PaymentStatus::Authorized,
            amount,
            captured: 0,
            refunded: 0,
            card,
            created_at: now_millis,
            updated_at: now_millis,
        }
    }

    fn illegal(&self, action: &'static str) -> PaymentError {
        PaymentError::IllegalTransition {
            id: self.id.clone(),
            status: self.status,
            action,
        }
    }

    fn same_currency(&self, money: &Money) -> Result<(), PaymentError> {
        if money.currency == self.amount.currency {
            Ok(())
        } else {
            Err(PaymentError::CurrencyMismatch {
                expected: self.amount.currency.to_string(),
                got: money.currency.to_string(),
            })
        }
    }

    /// Captures `amount` (all that was authorized when `None`); a partial
    /// capture releases the rest. Only an authorized payment can be captured,
    /// once.
    pub fn capture(&mut self, amount: Option<&Money>, now_millis: i64) -> Result<(), PaymentError> {
        if self.status != PaymentStatus::Authorized {
            return Err(self.illegal("captured"));
        }
        let requested = match amount {
            None => self.amount.amount,
            Some(money) => {
                check_amount(money)?;
                self.same_currency(money)?;
                money.amount
            }
        };
        if requested > self.amount.amount {
            return Err(PaymentError::CaptureExceedsAuthorized {
                requested,
                authorized: self.amount.amount,
            });
        }
        self.captured = requested;
        self.status = PaymentStatus::Captured;
        self.updated_at = now_millis;
        Ok(())
    }

    /// Voids the authorization, releasing the funds. Only while authorized.
    pub fn void(&mut self, now_millis: i64) -> Result<(), PaymentError> {
        if self.status != PaymentStatus::Authorized {
            return Err(self.illegal("voided"));
        }
        self.status = PaymentStatus::Voided;
        self.updated_at = now_millis;
        Ok(())
    }

    /// Refunds `amount` (all that is left when `None`) of what was captured,
    /// never more than captured minus already refunded. Returns the amount.
    pub fn refund(&mut self, amount: Option<&Money>, now_millis: i64) -> Result<i64, PaymentError> {
        if !matches!(
            self.status,
            PaymentStatus::Captured | PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded
        ) {
            return Err(self.illegal("refunded"));
        }
        let refundable = self.captured - self.refunded;
        let requested = match amount {
            None => refundable,
            Some(money) => {
                check_amount(money)?;
                self.same_currency(money)?;
                money.amount
            }
        };
        if requested > refundable || requested == 0 {
            return Err(PaymentError::RefundExceedsCaptured {
                requested,
                refundable,
            });
        }
        self.refunded += requested;
        self.status = if self.refunded == self.captured {
            PaymentStatus::Refunded
        } else {
            PaymentStatus::PartiallyRefunded
        };
        self.updated_at = now_millis;
        Ok(requested)
    }

    fn money(&self, amount: i64) -> Money {
        Money {
            amount,
            currency: self.amount.currency.clone(),
        }
    }

    pub fn view(&self, refunds: &[Refund]) -> PaymentView {
        PaymentView {
            id: self.id.clone(),
            status: self.status,
            amount: self.amount.clone(),
            captured: self.money(self.captured),
            refunded: self.money(self.refunded),
            card: self.card.clone(),
            refunds: refunds
                .iter()
                .map(|refund| self.refund_view(refund))
                .collect(),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }

    pub fn refund_view(&self, refund: &Refund) -> RefundView {
        RefundView {
            id: refund.id.clone(),
            payment_id: refund.payment_id.clone(),
            amount: self.money(refund.amount),
            created_at: rfc3339(refund.created_at),
        }
    }
}

/// A payment as JSON shows it (and as an idempotency record keeps it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentView {
    pub id: String,
    pub status: PaymentStatus,
    pub amount: Money,
    pub captured: Money,
    pub refunded: Money,
    pub card: CardSummary,
    pub refunds: Vec<RefundView>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundView {
    pub id: String,
    pub payment_id: String,
    pub amount: Money,
    pub created_at: String,
}

/// A refund with the payment as it stands after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundReceipt {
    #[serde(flatten)]
    pub refund: RefundView,
    pub payment: PaymentView,
}

/// A decline, kept under its Idempotency-Key like a success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decline {
    pub reason: DeclineReason,
    pub card: CardSummary,
}

/// The first result of an operation: what a retry with the same
/// Idempotency-Key gets back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Outcome {
    Payment(PaymentView),
    Refund(RefundReceipt),
    Declined(Decline),
}

impl Outcome {
    /// The payment the operation made or changed: the authorization of an
    /// authorize, the payment a capture, void or refund applied to; `None`
    /// for a decline, which makes none.
    pub fn payment_id(&self) -> Option<&str> {
        match self {
            Self::Payment(payment) => Some(&payment.id),
            Self::Refund(receipt) => Some(&receipt.payment.id),
            Self::Declined(_) => None,
        }
    }
}

// ---- reacting to events (`events.rs`) -------------------------------------------

/// What `fulfillment.shipped` does to the order's authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnShipped {
    /// Capture it, and publish `payment.captured`.
    Capture,
    /// It was captured before (another delivery of the shipment, under
    /// another event id): nothing to do, nothing to publish again.
    AlreadyCaptured,
}

/// The goods left: an authorized payment is captured. A voided one cannot
/// be — goods shipped on a cancelled payment is for a person to look at, so
/// it is an error (the event becomes a dead letter).
pub fn on_shipped(id: &str, status: PaymentStatus) -> Result<OnShipped, PaymentError> {
    match status {
        PaymentStatus::Authorized => Ok(OnShipped::Capture),
        PaymentStatus::Captured | PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded => {
            Ok(OnShipped::AlreadyCaptured)
        }
        PaymentStatus::Voided => Err(PaymentError::IllegalTransition {
            id: id.to_owned(),
            status,
            action: "captured",
        }),
    }
}

/// What `order.cancelled` does to the order's authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCancelled {
    /// Only authorized: release the funds.
    Void,
    /// Money was taken: give back what is left of it.
    Refund,
    /// Voided or wholly refunded already.
    Nothing,
}

pub fn on_cancelled(status: PaymentStatus) -> OnCancelled {
    match status {
        PaymentStatus::Authorized => OnCancelled::Void,
        PaymentStatus::Captured | PaymentStatus::PartiallyRefunded => OnCancelled::Refund,
        PaymentStatus::Voided | PaymentStatus::Refunded => OnCancelled::Nothing,
    }
}

/// The Idempotency-Key of what an event makes payment do: derived from the
/// event id (`evt_…:capture`), so the same event never does it twice, even
/// if its record in the inbox were lost.
pub fn event_key(event_id: &str, operation: Operation) -> Result<IdempotencyKey, PaymentError> {
    IdempotencyKey::parse(Some(&format!("{event_id}:{}", operation.as_str())))
}

/// The operations an Idempotency-Key can be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Authorize,
    Capture,
    Void,
    Refund,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorize => "authorize",
            Self::Capture => "capture",
            Self::Void => "void",
            Self::Refund => "refund",
        }
    }

    /// The HTTP status of a successful first result.
    pub fn success_status(self) -> u16 {
        match self {
            Self::Authorize | Self::Refund => 201,
            Self::Capture | Self::Void => 200,
        }
    }
}

/// The digest of an operation's request, to tell a retry (same digest) from
/// a reused key (another digest). Built from what may be kept: for a card,
/// its brand, last four digits and expiry, never its number or cvc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn authorize(amount: &Money, card: &CheckedCard) -> Self {
        Self::of(&[
            Operation::Authorize.as_str(),
            &amount.amount.to_string(),
            amount.currency.as_str(),
            &card.summary.brand,
            &card.summary.last4,
            &card.exp_month.to_string(),
            &card.exp_year.to_string(),
        ])
    }

    /// Capture, void or refund of `payment_id`, with the amount asked if any.
    pub fn follow_up(operation: Operation, payment_id: &str, amount: Option<&Money>) -> Self {
        let (amount, currency) = amount.map_or((String::from("all"), ""), |money| {
            (money.amount.to_string(), money.currency.as_str())
        });
        Self::of(&[operation.as_str(), payment_id, &amount, currency])
    }

    fn of(fields: &[&str]) -> Self {
        // Length-prefixed, so no two field lists give the same text.
        let text: String = fields
            .iter()
            .map(|field| format!("{}:{field};", field.len()))
            .collect();
        Self(sha256_hex(text.as_bytes()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_stored(text: String) -> Self {
        Self(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-06-15T00:00:00Z
    const NOW: i64 = 1_781_481_600_000;

    fn eur(amount: i64) -> Money {
        Money::new(amount, "EUR").unwrap()
    }

    fn card(number: &str) -> CardInput {
        CardInput {
            number: number.into(),
            exp_month: 12,
            exp_year: 2030,
            cvc: "123".into(),
        }
    }

    fn payment(amount: i64) -> Payment {
        Payment::authorized(
            "pay_1".into(),
            eur(amount),
            CardSummary {
                brand: "visa".into(),
                last4: "4242".into(),
            },
            0,
        )
    }

    #[test]
    fn luhn_accepts_valid_numbers_only() {
        for good in [
            "4242424242424242",
            "4000000000000002",
            "4000000000009995",
            "4000000000000119",
            "5555555555554444",
            "378282246310005",
            "6011111111111117",
            "79927398713",
        ] {
            assert!(luhn_valid(good), "{good}");
        }
        for bad in [
            "4242424242424241",
            "1234567812345678",
            "",
            "42a2",
            "79927398710",
        ] {
            assert!(!luhn_valid(bad), "{bad}");
        }
    }

    #[test]
    fn brands_come_from_the_leading_digits() {
        let cases = [
            ("4242424242424242", "visa"),
            ("5555555555554444", "mastercard"),
            ("2223003122003222", "mastercard"),
            ("378282246310005", "amex"),
            ("341111111111111", "amex"),
            ("6011111111111117", "discover"),
            ("6500000000000002", "discover"),
            ("3566002020360505", "jcb"),
            ("36227206271667", "diners"),
            ("3056930009020004", "diners"),
            ("6200000000000005", "unionpay"),
            ("9999999999999995", "unknown"),
        ];
        for (number, brand) in cases {
            assert_eq!(brand_of(number), brand, "{number}");
        }
    }

    #[test]
    fn the_test_cards_have_their_outcomes() {
        let outcome = |number: &str| card(number).check(NOW).unwrap().decision;
        assert_eq!(outcome("4242424242424242"), Decision::Approve);
        assert_eq!(
            outcome("4000000000000002"),
            Decision::Decline(DeclineReason::CardDeclined)
        );
        assert_eq!(
            outcome("4000000000009995"),
            Decision::Decline(DeclineReason::InsufficientFunds)
        );
        assert_eq!(outcome("4000000000000119"), Decision::ProcessorError);
        assert_eq!(outcome("5555555555554444"), Decision::Approve);
        // Spaces and dashes as people type them.
        assert_eq!(
            outcome("4000 0000 0000 0002"),
            Decision::Decline(DeclineReason::CardDeclined)
        );
        assert_eq!(outcome("4242-4242-4242-4242"), Decision::Approve);
        assert_eq!(DeclineReason::CardDeclined.code(), "card_declined");
        assert_eq!(
            DeclineReason::InsufficientFunds.code(),
            "insufficient_funds"
        );
    }

    #[test]
    fn only_brand_and_last4_are_kept() {
        let checked = card("4242424242424242").check(NOW).unwrap();
        assert_eq!(
            checked.summary,
            CardSummary {
                brand: "visa".into(),
                last4: "4242".into()
            }
        );
        let debug = format!("{:?}", card("4242424242424242"));
        assert!(
            !debug.contains("4242424242424242") && !debug.contains("123"),
            "{debug}"
        );
    }

    #[test]
    fn malformed_numbers_are_invalid_cards_without_echoing_them() {
        for number in [
            "",
            "4242",
            "42424242424242424242",
            "4242x24242424242",
            "4242424242424241",
        ] {
            match card(number).check(NOW) {
                Err(PaymentError::InvalidCard(message)) => {
                    assert!(number.len() < 5 || !message.contains(number), "{message}")
                }
                other => panic!("{number}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_card_is_good_through_its_expiry_month() {
        let with = |exp_month, exp_year| CardInput {
            exp_month,
            exp_year,
            ..card("4242424242424242")
        };
        assert_eq!(year_month(NOW), (2026, 6));
        assert!(with(6, 2026).check(NOW).is_ok());
        assert!(with(1, 2027).check(NOW).is_ok());
        assert!(with(12, 30).check(NOW).is_ok(), "two-digit years are 20YY");
        assert!(matches!(
            with(5, 2026).check(NOW),
            Err(PaymentError::CardExpired(_))
        ));
        assert!(matches!(
            with(12, 2025).check(NOW),
            Err(PaymentError::CardExpired(_))
        ));
        assert!(matches!(
            with(12, 25).check(NOW),
            Err(PaymentError::CardExpired(_))
        ));
        for (month, year) in [(0, 2030), (13, 2030), (-1, 2030), (1, 1999), (1, 2100)] {
            assert!(
                matches!(
                    with(month, year).check(NOW),
                    Err(PaymentError::InvalidCard(_))
                ),
                "{month}/{year}"
            );
        }
    }

    #[test]
    fn the_cvc_has_the_brands_length() {
        let with = |number: &str, cvc: &str| CardInput {
            cvc: cvc.into(),
            ..card(number)
        };
        assert!(with("4242424242424242", "123").check(NOW).is_ok());
        assert!(with("378282246310005", "1234").check(NOW).is_ok());
        for (number, cvc) in [
            ("4242424242424242", "12"),
            ("4242424242424242", "1234"),
            ("4242424242424242", "12a"),
            ("4242424242424242", ""),
            ("378282246310005", "123"),
        ] {
            assert!(
                matches!(
                    with(number, cvc).check(NOW),
                    Err(PaymentError::InvalidCvc(_))
                ),
                "{number} {cvc}"
            );
        }
    }

    #[test]
    fn amounts_are_positive_and_bounded() {
        assert!(check_amount(&eur(1)).is_ok());
        assert!(check_amount(&eur(MAX_AMOUNT)).is_ok());
        for amount in [0, -1, MAX_AMOUNT + 1] {
            assert!(matches!(
                check_amount(&eur(amount)),
                Err(PaymentError::InvalidAmount(_))
            ));
        }
    }

    #[test]
    fn idempotency_keys_are_required_and_bounded() {
        assert_eq!(
            IdempotencyKey::parse(Some(" k-1 ")).unwrap().as_str(),
            "k-1"
        );
        assert_eq!(
            IdempotencyKey::parse(None),
            Err(PaymentError::IdempotencyKeyRequired)
        );
        assert_eq!(
            IdempotencyKey::parse(Some("  ")),
            Err(PaymentError::IdempotencyKeyRequired)
        );
        assert!(IdempotencyKey::parse(Some(&"k".repeat(200))).is_ok());
        assert!(matches!(
            IdempotencyKey::parse(Some(&"k".repeat(201))),
            Err(PaymentError::InvalidIdempotencyKey(_))
        ));
        assert!(matches!(
            IdempotencyKey::parse(Some("ké")),
            Err(PaymentError::InvalidIdempotencyKey(_))
        ));
    }

    #[test]
    fn capture_all_or_part_once() {
        let mut full = payment(1000);
        full.capture(None, 5).unwrap();
        assert_eq!(
            (full.status, full.captured, full.updated_at),
            (PaymentStatus::Captured, 1000, 5)
        );

        let mut part = payment(1000);
        part.capture(Some(&eur(400)), 5).unwrap();
        assert_eq!(part.captured, 400);
        assert!(matches!(
            part.capture(Some(&eur(100)), 6),
            Err(PaymentError::IllegalTransition {
                status: PaymentStatus::Captured,
                action: "captured",
                ..
            })
        ));

        let mut over = payment(1000);
        assert_eq!(
            over.capture(Some(&eur(1001)), 5),
            Err(PaymentError::CaptureExceedsAuthorized {
                requested: 1001,
                authorized: 1000
            })
        );
        assert!(matches!(
            over.capture(Some(&eur(0)), 5),
            Err(PaymentError::InvalidAmount(_))
        ));
        assert!(matches!(
            over.capture(Some(&Money::new(10, "USD").unwrap()), 5),
            Err(PaymentError::CurrencyMismatch { .. })
        ));
        assert_eq!(
            over.status,
            PaymentStatus::Authorized,
            "a refused capture changes nothing"
        );
    }

    #[test]
    fn a_shipment_captures_an_authorization_once_and_never_a_voided_one() {
        assert_eq!(
            on_shipped("pay_1", PaymentStatus::Authorized),
            Ok(OnShipped::Capture)
        );
        for status in [
            PaymentStatus::Captured,
            PaymentStatus::PartiallyRefunded,
            PaymentStatus::Refunded,
        ] {
            assert_eq!(
                on_shipped("pay_1", status),
                Ok(OnShipped::AlreadyCaptured),
                "{status:?}"
            );
        }
        let error = on_shipped("pay_1", PaymentStatus::Voided).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("is voided and cannot be captured"),
            "{error}"
        );
    }

    #[test]
    fn a_cancellation_voids_what_is_authorized_and_refunds_what_was_taken() {
        assert_eq!(on_cancelled(PaymentStatus::Authorized), OnCancelled::Void);
        assert_eq!(on_cancelled(PaymentStatus::Captured), OnCancelled::Refund);
        assert_eq!(
            on_cancelled(PaymentStatus::PartiallyRefunded),
            OnCancelled::Refund
        );
        assert_eq!(on_cancelled(PaymentStatus::Voided), OnCancelled::Nothing);
        assert_eq!(on_cancelled(PaymentStatus::Refunded), OnCancelled::Nothing);
    }

    #[test]
    fn an_event_derives_one_key_per_operation() {
        let capture = event_key("evt_1", Operation::Capture).unwrap();
        assert_eq!(capture.as_str(), "evt_1:capture");
        assert_eq!(
            event_key("evt_1", Operation::Void).unwrap().as_str(),
            "evt_1:void"
        );
        assert_eq!(
            event_key("evt_1", Operation::Refund).unwrap().as_str(),
            "evt_1:refund"
        );
        let longest = "e".repeat(crate::domain::MAX_IDEMPOTENCY_KEY_LEN - ":capture".len());
        assert!(event_key(&longest, Operation::Capture).is_ok());
        assert!(event_key("évt", Operation::Capture).is_err());
    }

    #[test]
    fn void_only_while_authorized() {
        let mut p = payment(1000);
        p.void(1).unwrap();
        assert_eq!(p.status, PaymentStatus::Voided);
        assert!(matches!(
            p.void(2),
            Err(PaymentError::IllegalTransition { .. })
        ));
        assert!(matches!(
            p.capture(None, 2),
            Err(PaymentError::IllegalTransition { .. })
        ));
        assert!(matches!(
            p.refund(None, 2),
            Err(PaymentError::IllegalTransition { .. })
        ));

        let mut captured = payment(1000);
        captured.capture(None, 1).unwrap();
        let error = captured.void(2).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("is captured and cannot be voided"),
            "{error}"
        );
    }

    #[test]
    fn refunds_never_exceed_captured_minus_refunded() {
        let mut p = payment(1000);
        let error = p.refund(Some(&eur(100)), 1).unwrap_err();
        assert!(matches!(
            error,
            PaymentError::IllegalTransition {
                status: PaymentStatus::Authorized,
                ..
            }
        ));
        assert!(error.to_string().contains("capture it first"), "{error}");

        p.capture(Some(&eur(800)), 1).unwrap();
        assert_eq!(p.refund(Some(&eur(300)), 2), Ok(300));
        assert_eq!(
            (p.status, p.refunded),
            (PaymentStatus::PartiallyRefunded, 300)
        );
        assert_eq!(
            p.refund(Some(&eur(501)), 3),
            Err(PaymentError::RefundExceedsCaptured {
                requested: 501,
                refundable: 500
            })
        );
        assert_eq!(p.refunded, 300, "a refused refund changes nothing");
        assert_eq!(p.refund(Some(&eur(500)), 4), Ok(500));
        assert_eq!((p.status, p.refunded), (PaymentStatus::Refunded, 800));
        assert_eq!(
            p.refund(Some(&eur(1)), 5),
            Err(PaymentError::RefundExceedsCaptured {
                requested: 1,
                refundable: 0
            })
        );
        assert_eq!(
            p.refund(None, 5),
            Err(PaymentError::RefundExceedsCaptured {
                requested: 0,
                refundable: 0
            })
        );

        let mut all = payment(1000);
        all.capture(None, 1).unwrap();
        assert_eq!(all.refund(None, 2), Ok(1000));
        assert_eq!(all.status, PaymentStatus::Refunded);
    }

    #[test]
    fn fingerprints_tell_requests_apart_without_the_card_number() {
        let a = card("4242424242424242").check(NOW).unwrap();
        let b = card("4000056655665556").check(NOW).unwrap();
        let f = Fingerprint::authorize(&eur(100), &a);
        assert_eq!(
            f,
            Fingerprint::authorize(&eur(100), &card("4242 4242 4242 4242").check(NOW).unwrap())
        );
        assert_ne!(f, Fingerprint::authorize(&eur(101), &a));
        assert_ne!(f, Fingerprint::authorize(&eur(100), &b));
        assert_eq!(f.as_str().len(), 64);
        let capture = Fingerprint::follow_up(Operation::Capture, "pay_1", None);
        assert_ne!(
            capture,
            Fingerprint::follow_up(Operation::Void, "pay_1", None)
        );
        assert_ne!(
            capture,
            Fingerprint::follow_up(Operation::Capture, "pay_2", None)
        );
        assert_ne!(
            capture,
            Fingerprint::follow_up(Operation::Capture, "pay_1", Some(&eur(5)))
        );
    }

    #[test]
    fn an_outcome_names_the_payment_it_made_or_changed() {
        let mut p = payment(1000);
        assert_eq!(Outcome::Payment(p.view(&[])).payment_id(), Some("pay_1"));
        p.capture(None, 1).unwrap();
        p.refund(Some(&eur(100)), 2).unwrap();
        let refund = Refund {
            id: "rfd_1".into(),
            payment_id: "pay_1".into(),
            amount: 100,
            created_at: 2,
        };
        let receipt = Outcome::Refund(RefundReceipt {
            refund: p.refund_view(&refund),
            payment: p.view(&[refund]),
        });
        assert_eq!(receipt.payment_id(), Some("pay_1"));
        let decline = Outcome::Declined(Decline {
            reason: DeclineReason::CardDeclined,
            card: CardSummary {
                brand: "visa".into(),
                last4: "0002".into(),
            },
        });
        assert_eq!(decline.payment_id(), None, "a decline makes no payment");
    }

    #[test]
    fn outcomes_round_trip_through_json() {
        let mut p = payment(1000);
        p.capture(None, 1).unwrap();
        p.refund(Some(&eur(100)), 2).unwrap();
        let refund = Refund {
            id: "rfd_1".into(),
            payment_id: "pay_1".into(),
            amount: 100,
            created_at: 2,
        };
        let outcomes = [
            Outcome::Payment(p.view(std::slice::from_ref(&refund))),
            Outcome::Refund(RefundReceipt {
                refund: p.refund_view(&refund),
                payment: p.view(&[refund]),
            }),
            Outcome::Declined(Decline {
                reason: DeclineReason::InsufficientFunds,
                card: CardSummary {
                    brand: "visa".into(),
                    last4: "9995".into(),
                },
            }),
        ];
        for outcome in outcomes {
            let text = serde_json::to_string(&outcome).unwrap();
            assert_eq!(serde_json::from_str::<Outcome>(&text).unwrap(), outcome);
        }
        for status in [
            PaymentStatus::Authorized,
            PaymentStatus::Captured,
            PaymentStatus::PartiallyRefunded,
            PaymentStatus::Refunded,
            PaymentStatus::Voided,
        ] {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
        }
    }
}
