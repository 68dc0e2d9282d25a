//! The checkout's rules, with no I/O: the checkout request and its checks,
//! the saga's steps and the planner that decides what to do next from the
//! journal, the totals, the checkout's statuses, and the ids every downstream
//! call uses.
//!
//! The saga, in order (SPEC §4): check the customer (only when the request
//! names one) → load cart → price lines → quote shipping → compute tax →
//! reserve stock → authorize payment → create order → empty cart → publish
//! `order.placed`. Three steps change another service's state and have a
//! compensation: reserve stock (release it), authorize payment (void it) and
//! create order (mark it failed). Before the order exists a failure undoes
//! every one of them that happened, newest first; once the order exists the
//! checkout only goes forward.

use serde::{Deserialize, Serialize};
use shop_shared::{Address, ApiError, Money};

// ---- the request -------------------------------------------------------------

/// How fast the order ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speed {
    Standard,
    Express,
}

impl Speed {
    pub fn parse(text: &str) -> Option<Speed> {
        match text {
            "standard" => Some(Speed::Standard),
            "express" => Some(Speed::Express),
            _ => None,
        }
    }

    /// As the request and the events spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Speed::Standard => "standard",
            Speed::Express => "express",
        }
    }
}

/// A card as the client sends it. Never stored, never logged: only the
/// authorize step sees it, and only its last four digits are kept.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct Card {
    pub number: String,
    pub exp_month: u32,
    pub exp_year: u32,
    pub cvc: String,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Card(…{})", self.last4())
    }
}

impl Card {
    /// Spaces and dashes as people type them are dropped; what remains must be
    /// 12 to 19 digits. Whether the number is valid (Luhn) and accepted is
    /// the payment service's decision.
    pub fn checked(self) -> Result<Card, ApiError> {
        let number: String = self.number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if !(12..=19).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid_card("number", "the card number must be 12 to 19 digits"));
        }
        if !(1..=12).contains(&self.exp_month) {
            return Err(invalid_card("exp_month", "exp_month must be a month from 1 to 12"));
        }
        if !(2000..=2100).contains(&self.exp_year) {
            return Err(invalid_card("exp_year", "exp_year must be a four-digit year, like 2030"));
        }
        let cvc = self.cvc.trim().to_owned();
        if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid_card("cvc", "the cvc must be 3 or 4 digits"));
        }
        Ok(Card { number, cvc, ..self })
    }

    pub fn last4(&self) -> &str {
        let n = self.number.len();
        self.number.get(n.saturating_sub(4)..).unwrap_or_default()
    }
}

fn invalid_card(field: &str, message: &str) -> ApiError {
    ApiError::unprocessable("invalid_card", message).with("field", field)
}

/// A checked `POST /api/checkout` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    pub order: OrderRequest,
    pub card: Card,
}

/// Everything of the request except the card: what the journal keeps, so
/// recovery can finish a checkout without ever having stored a card number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub cart_id: String,
    pub email: String,
    pub customer_id: Option<String>,
    pub address: Address,
    pub shipping: Speed,
    pub card_last4: String,
    /// A guest's checkout: the SHA-256 of the order access token the first
    /// answer hands out (crate::http). Not part of "the same body".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_digest: Option<String>,
}

pub const MAX_CART_ID_LEN: usize = 128;
pub const MAX_EMAIL_LEN: usize = 254;
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

impl CheckoutRequest {
    /// Checks and normalizes the raw fields: an address by the shared rules,
    /// a plausible email, a cart id, a speed, a card of the right shape.
    pub fn new(
        cart_id: String,
        email: String,
        customer_id: Option<String>,
        address: Address,
        shipping: &str,
        card: Card,
    ) -> Result<CheckoutRequest, ApiError> {
        let cart_id = cart_id.trim().to_owned();
        if cart_id.is_empty()
            || cart_id.len() > MAX_CART_ID_LEN
            || !cart_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid_field(
                "cart_id",
                format!("cart_id must be 1 to {MAX_CART_ID_LEN} letters, digits, '-' or '_'"),
            ));
        }
        let email = check_email(&email)?;
        let customer_id = customer_id.map(|id| id.trim().to_owned()).filter(|id| !id.is_empty());
        let address = address.validate()?;
        let shipping = Speed::parse(shipping).ok_or_else(|| {
            invalid_field(
                "shipping",
                format!("shipping must be \"standard\" or \"express\", got {shipping:?}"),
            )
        })?;
        let card = card.checked()?;
        Ok(CheckoutRequest {
            order: OrderRequest {
                cart_id,
                email,
                customer_id,
                address,
                shipping,
                card_last4: card.last4().to_owned(),
                access_token_digest: None,
            },
            card,
        })
    }

    /// A one-way fingerprint of the request as checked, so "the same body"
    /// does not depend on key order or whitespace, and the stored value gives
    /// the card number away no more than any hash of it does.
    pub fn fingerprint(&self) -> String {
        let order = OrderRequest { access_token_digest: None, ..self.order.clone() };
        let canonical = serde_json::json!({
            "order": order,
            "card": [&self.card.number, self.card.exp_month, self.card.exp_year, &self.card.cvc],
        });
        shop_shared::sha256_hex(canonical.to_string().as_bytes())
    }
}

fn check_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim();
    let plausible = email.len() <= MAX_EMAIL_LEN
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@'));
    if plausible {
        Ok(email.to_owned())
    } else {
        Err(ApiError::unprocessable("invalid_email", format!("{email:?} is not an email address"))
            .with("field", "email"))
    }
}

/// The `Idempotency-Key` header: required, 1 to 255 visible ASCII characters.
pub fn check_idempotency_key(key: Option<&str>) -> Result<String, ApiError> {
    let key = key.map(str::trim).unwrap_or_default();
    if key.is_empty() {
        return Err(ApiError::bad_request(
            "missing_idempotency_key",
            "POST /api/checkout needs an `Idempotency-Key` header (any unique text, such as a UUID)",
        ));
    }
    if key.len() > MAX_IDEMPOTENCY_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            format!("the Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
        ));
    }
    Ok(key.to_owned())
}

pub fn invalid_field(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_request", message).with("field", field)
}

// ---- ids ---------------------------------------------------------------------

/// The ids of everything a checkout makes elsewhere, all derived from the
/// checkout id: a retried call, or recovery after a crash between a call and
/// its journal entry, names the same reservation, authorization and order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownstreamIds {
    pub reservation_id: String,
    /// The authorization's idempotency key at the payment service.
    pub payment_key: String,
    /// The idempotency key of the void that undoes it.
    pub void_key: String,
    pub order_id: String,
    /// The `order.placed` event's id: consumers apply it once.
    pub event_id: String,
}

impl DownstreamIds {
    pub fn of(checkout_id: &str) -> DownstreamIds {
        let suffix = checkout_id.strip_prefix("chk_").unwrap_or(checkout_id);
        DownstreamIds {
            reservation_id: format!("res_{suffix}"),
            payment_key: format!("{checkout_id}:authorize"),
            void_key: format!("{checkout_id}:void"),
            order_id: format!("ord_{suffix}"),
            event_id: format!("evt_{suffix}"),
        }
    }
}

// ---- steps and the planner -----------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    CheckCustomer,
    LoadCart,
    PriceLines,
    QuoteShipping,
    ComputeTax,
    ReserveStock,
    AuthorizePayment,
    CreateOrder,
    EmptyCart,
    PublishOrderPlaced,
}

impl Step {
    pub const ALL: [Step; 10] = [
        Step::CheckCustomer,
        Step::LoadCart,
        Step::PriceLines,
        Step::QuoteShipping,
        Step::ComputeTax,
        Step::ReserveStock,
        Step::AuthorizePayment,
        Step::CreateOrder,
        Step::EmptyCart,
        Step::PublishOrderPlaced,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::CheckCustomer => "check_customer",
            Step::LoadCart => "load_cart",
            Step::PriceLines => "price_lines",
            Step::QuoteShipping => "quote_shipping",
            Step::ComputeTax => "compute_tax",
            Step::ReserveStock => "reserve_stock",
            Step::AuthorizePayment => "authorize_payment",
            Step::CreateOrder => "create_order",
            Step::EmptyCart => "empty_cart",
            Step::PublishOrderPlaced => "publish_order_placed",
        }
    }

    pub fn parse(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|step| step.name() == name)
    }

    /// The action that undoes the step, for the steps that change another
    /// service's state.
    pub fn compensation(self) -> Option<&'static str> {
        match self {
            Step::ReserveStock => Some("release_stock"),
            Step::AuthorizePayment => Some("void_payment"),
            Step::CreateOrder => Some("fail_order"),
            _ => None,
        }
    }

    /// Whether the step's `running` entry must be in the journal before its
    /// call: so for the steps that have a compensation, which recovery must
    /// know to have started (to undo, or to look up what it did). The others
    /// only read, or after the order are idempotent and run again.
    pub fn journaled_before_call(self) -> bool {
        self.compensation().is_some()
    }
}

/// The steps of one checkout, in order; a guest checkout has no customer to
/// check.
pub fn plan(has_customer: bool) -> Vec<Step> {
    Step::ALL
        .into_iter()
        .filter(|step| has_customer || *step != Step::CheckCustomer)
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Started and not yet finished: the call may or may not have happened.
    Running,
    Ok,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        [Outcome::Running, Outcome::Ok, Outcome::Failed]
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
    }
}

/// What the journal knows of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepRecord {
    pub step: Step,
    pub outcome: Outcome,
    /// Its compensation ran (to completion).
    pub compensated: bool,
}

impl StepRecord {
    /// The outcome a person reads in the timeline: a step that succeeded and
    /// was undone is `compensated`.
    pub fn shown_outcome(&self) -> &'static str {
        if self.compensated && self.outcome == Outcome::Ok {
            "compensated"
        } else {
            self.outcome.as_str()
        }
    }
}

/// Who is driving the saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The request that started the checkout: it goes forward until a step
    /// fails.
    Live,
    /// Recovery of a checkout whose request died (a host crash): nobody is
    /// waiting for it, so before the order exists it is undone, after it is
    /// finished.
    Recover,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Run(Step),
    /// Recovery only: the step started but its end was never journaled. The
    /// runner finds out what happened (or assumes the worst) and journals it.
    Resolve(Step),
    Compensate(Step),
    Finish(Final),
    /// The order exists but its `order.placed` is not stored: the checkout
    /// stays unfinished, for recovery to store it (a completed checkout
    /// without its event would be an order nobody ships).
    Wait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Final {
    Completed,
    Failed,
}

/// The next thing to do, from the plan and what the journal holds.
///
/// - A step whose end was not journaled is resolved first.
/// - Once `create_order` succeeded, only forward: the remaining steps run
///   whatever their outcome, then the checkout is completed — except that
///   it is never completed while `publish_order_placed` failed: recovery
///   runs that step again ([`Next::Wait`] until then).
/// - Once a step failed (or recovery found the checkout unfinished before the
///   order), every state-changing step that succeeded, or failed with an
///   uncertain effect, is compensated, newest first; then the checkout failed.
///   Compensations are idempotent and treat "nothing to undo" as done, so a
///   failed step is compensated too: its call may have taken effect.
pub fn next(plan: &[Step], journal: &[StepRecord], mode: Mode) -> Next {
    let record = |step: Step| journal.iter().find(|r| r.step == step);
    if let Some(running) = journal.iter().find(|r| r.outcome == Outcome::Running) {
        return Next::Resolve(running.step);
    }
    let order_placed = record(Step::CreateOrder).is_some_and(|r| r.outcome == Outcome::Ok);
    let first_unrun = plan.iter().copied().find(|step| record(*step).is_none());
    if order_placed {
        if journal.iter().any(|r| r.step == Step::PublishOrderPlaced && r.outcome == Outcome::Failed) {
            return match mode {
                Mode::Recover => Next::Run(Step::PublishOrderPlaced),
                Mode::Live => Next::Wait,
            };
        }
        return match first_unrun {
            Some(step) => Next::Run(step),
            None => Next::Finish(Final::Completed),
        };
    }
    let failed = journal.iter().any(|r| r.outcome == Outcome::Failed);
    if failed || mode == Mode::Recover {
        let to_undo = journal
            .iter()
            .rev()
            .find(|r| r.step.compensation().is_some() && !r.compensated);
        return match to_undo {
            Some(r) => Next::Compensate(r.step),
            None => Next::Finish(Final::Failed),
        };
    }
    match first_unrun {
        Some(step) => Next::Run(step),
        // Cannot happen with a plan that holds create_order; finishing as
        // failed is the safe answer.
        None => Next::Finish(Final::Failed),
    }
}

// ---- the checkout's status ---------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The saga is going forward (or stopped by a crash; recovery will see).
    Running,
    /// A step failed and a compensation could not be done yet; recovery
    /// retries it.
    Compensating,
    /// The order is placed and handed to fulfillment. Final.
    Completed,
    /// Nothing is left of it in the other services. Final.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Compensating => "compensating",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [Status::Running, Status::Compensating, Status::Completed, Status::Failed]
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Failed)
    }

    /// running → compensating | completed | failed; compensating → failed.
    /// Staying in a non-final status is allowed (a touch).
    pub fn can_become(self, to: Status) -> bool {
        matches!(
            (self, to),
            (Status::Running, _) | (Status::Compensating, Status::Compensating | Status::Failed)
        )
    }
}

// ---- totals --------------------------------------------------------------------

/// One cart line, priced by the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    pub sku: String,
    pub quantity: u32,
    pub weight_grams: u32,
    pub unit_price: Money,
    pub line_total: Money,
}

/// The response's and the order's totals: integer minor units of `currency`
/// (the same shape as `shop:orders` totals), not money objects, because all
/// four are in the one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub items: i64,
    pub shipping: i64,
    pub tax: i64,
    pub grand_total: i64,
    pub currency: String,
}

fn pricing_error(message: String) -> ApiError {
    ApiError::unavailable("pricing_unavailable", message)
}

/// Prices each `(sku, quantity)` with its catalog price: every price in one
/// currency, no total overflowing.
pub fn price_lines(
    lines: &[(String, u32)],
    prices: &[(String, Money, u32)],
) -> Result<Vec<PricedLine>, ApiError> {
    let mut priced = Vec::with_capacity(lines.len());
    let mut missing = Vec::new();
    for (sku, quantity) in lines {
        let Some((_, unit_price, weight_grams)) = prices.iter().find(|(s, _, _)| s == sku) else {
            missing.push(sku.clone());
            continue;
        };
        let amount = unit_price
            .amount
            .checked_mul(i64::from(*quantity))
            .ok_or_else(|| pricing_error(format!("the total of {sku} is too large")))?;
        priced.push(PricedLine {
            sku: sku.clone(),
            quantity: *quantity,
            weight_grams: *weight_grams,
            unit_price: unit_price.clone(),
            line_total: Money { amount, currency: unit_price.currency.clone() },
        });
    }
    if !missing.is_empty() {
        return Err(unknown_skus(missing));
    }
    if let Some(first) = priced.first()
        && let Some(other) = priced.iter().find(|l| l.unit_price.currency != first.unit_price.currency)
    {
        return Err(pricing_error(format!(
            "the cart mixes currencies: {} is priced in {}, {} in {}",
            first.sku, first.unit_price.currency, other.sku, other.unit_price.currency
        )));
    }
    Ok(priced)
}

/// 422 naming every sku of the cart that the catalog does not sell.
pub fn unknown_skus(skus: Vec<String>) -> ApiError {
    ApiError::unprocessable(
        "unknown_sku",
        format!("the cart holds products the shop does not sell: {}", skus.join(", ")),
    )
    .with("skus", skus)
}

/// The sum of the lines' totals, in their currency.
pub fn goods_total(lines: &[PricedLine]) -> Result<Money, ApiError> {
    let first = lines.first().ok_or_else(empty_cart)?;
    let amount = lines.iter().try_fold(0i64, |sum, line| sum.checked_add(line.line_total.amount));
    Ok(Money {
        amount: amount.ok_or_else(|| pricing_error("the cart's total is too large".into()))?,
        currency: first.line_total.currency.clone(),
    })
}

/// items + shipping + tax, all in one currency.
pub fn totals(lines: &[PricedLine], shipping: &Money, tax: &Money) -> Result<Totals, ApiError> {
    let items = goods_total(lines)?;
    for (what, money) in [("shipping", shipping), ("tax", tax)] {
        if money.currency != items.currency {
            return Err(pricing_error(format!(
                "the {what} is in {} but the goods are in {}",
                money.currency, items.currency
            )));
        }
    }
    let grand_total = items
        .amount
        .checked_add(shipping.amount)
        .and_then(|sum| sum.checked_add(tax.amount))
        .ok_or_else(|| pricing_error("the grand total is too large".into()))?;
    Ok(Totals {
        items: items.amount,
        shipping: shipping.amount,
        tax: tax.amount,
        grand_total,
        currency: items.currency.to_string(),
    })
}

pub fn empty_cart() -> ApiError {
    ApiError::unprocessable("empty_cart", "the cart is empty; add products before checking out")
}

// ---- what a checkout remembers -------------------------------------------------

/// What the saga has learned so far; journaled with every step so recovery
/// can go on from the journal alone.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SagaState {
    pub cart_lines: Vec<(String, u32)>,
    pub lines: Vec<PricedLine>,
    pub shipping: Option<Money>,
    pub tax: Option<Money>,
    pub totals: Option<Totals>,
    pub authorization_id: Option<String>,
    /// The error of the step that failed: the checkout's answer once it is
    /// compensated.
    pub failure: Option<StoredError>,
}

/// An [`ApiError`] as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredError {
    pub status: u16,
    pub body: String,
}

impl From<&ApiError> for StoredError {
    fn from(error: &ApiError) -> Self {
        StoredError { status: error.status, body: error.body().to_string() }
    }
}

/// The answer to a checkout recovery undid: its request is gone, so it says
/// that it was interrupted and that nothing was kept.
pub fn interrupted(checkout_id: &str) -> ApiError {
    ApiError::conflict(
        "checkout_interrupted",
        "the checkout was interrupted and has been rolled back: no stock is held and nothing was charged; start a new checkout",
    )
    .with("checkout_id", checkout_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(amount: i64) -> Money {
        Money::new(amount, "EUR").unwrap()
    }

    fn rec(step: Step, outcome: Outcome) -> StepRecord {
        StepRecord { step, outcome, compensated: false }
    }

    fn ok_until(last: Step) -> Vec<StepRecord> {
        plan(false)
            .into_iter()
            .take_while(|s| *s != last)
            .chain([last])
            .map(|s| rec(s, Outcome::Ok))
            .collect()
    }

    fn address() -> Address {
        Address {
            name: "Erika".into(),
            line1: "Heidestraße 17".into(),
            line2: None,
            city: "Köln".into(),
            postal_code: "51147".into(),
            country: "de".into(),
        }
    }

    fn card(number: &str) -> Card {
        Card { number: number.into(), exp_month: 12, exp_year: 2030, cvc: "123".into() }
    }

    fn request(number: &str) -> Result<CheckoutRequest, ApiError> {
        CheckoutRequest::new("cart-1".into(), " a@b.de ".into(), None, address(), "standard", card(number))
    }

    // -- planner

    #[test]
    fn a_new_checkout_runs_the_steps_in_order() {
        let plan = plan(false);
        assert_eq!(plan.first(), Some(&Step::LoadCart));
        let mut journal = Vec::new();
        for step in plan.clone() {
            assert_eq!(next(&plan, &journal, Mode::Live), Next::Run(step));
            journal.push(rec(step, Outcome::Ok));
        }
        assert_eq!(next(&plan, &journal, Mode::Live), Next::Finish(Final::Completed));
    }

    #[test]
    fn a_registered_customer_is_checked_first() {
        assert_eq!(plan(true)[0], Step::CheckCustomer);
        assert!(!plan(false).contains(&Step::CheckCustomer));
    }

    #[test]
    fn a_failed_read_only_step_fails_with_nothing_to_undo() {
        let plan = plan(false);
        let journal = vec![rec(Step::LoadCart, Outcome::Ok), rec(Step::PriceLines, Outcome::Failed)];
        assert_eq!(next(&plan, &journal, Mode::Live), Next::Finish(Final::Failed));
    }

    #[test]
    fn a_declined_payment_voids_then_releases_the_reservation() {
        let plan = plan(false);
        let mut journal = ok_until(Step::ReserveStock);
        journal.push(rec(Step::AuthorizePayment, Outcome::Failed));
        // The failed authorization is voided too: its effect is uncertain.
        assert_eq!(next(&plan, &journal, Mode::Live), Next::Compensate(Step::AuthorizePayment));
        journal.last_mut().unwrap().compensated = true;
        assert_eq!(next(&plan, &journal, Mode::Live), Next::Compensate(Step::ReserveStock));
        journal.iter_mut().find(|r| r.step == Step::ReserveStock).unwrap().compensated = true;
        assert_eq!(next(&plan, &journal, Mode::Live), Next::Finish(Final::Failed));
    }

    #[test]
    fn a_failed_order_creation_undoes_all_three_newest_first() {
        let plan = plan(false);
        let mut journal = ok_until(Step::AuthorizePayment);
        journal.push(rec(Step::CreateOrder, Outcome::Failed));
        let mut undone = Vec::new();
        loop {
            match next(&plan, &journal, Mode::Live) {
                Next::Compensate(step) => {
                    undone.push(step);
                    journal.iter_mut().find(|r| r.step == step).unwrap().compensated = true;
                }
                Next::Finish(Final::Failed) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(undone, [Step::CreateOrder, Step::AuthorizePayment, Step::ReserveStock]);
    }

    #[test]
    fn after_the_order_exists_the_checkout_only_goes_forward() {
        let plan = plan(false);
        let mut journal = ok_until(Step::CreateOrder);
        journal.push(rec(Step::EmptyCart, Outcome::Failed));
        assert_eq!(next(&plan, &journal, Mode::Live), Next::Run(Step::PublishOrderPlaced));
        journal.push(rec(Step::PublishOrderPlaced, Outcome::Ok));
        assert_eq!(next(&plan, &journal, Mode::Live), Next::Finish(Final::Completed));
        assert_eq!(next(&plan, &journal, Mode::Recover), Next::Finish(Final::Completed));
    }

    #[test]
    fn recovery_before_the_order_compensates_backward() {
        let plan = plan(false);
        let mut journal = ok_until(Step::AuthorizePayment);
        assert_eq!(next(&plan, &journal, Mode::Live), Next::Run(Step::CreateOrder));
        assert_eq!(next(&plan, &journal, Mode::Recover), Next::Compensate(Step::AuthorizePayment));
        for r in &mut journal {
            r.compensated = r.step.compensation().is_some();
        }
        assert_eq!(next(&plan, &journal, Mode::Recover), Next::Finish(Final::Failed));
        // Nothing state-changing happened yet: nothing to undo.
        let early = ok_until(Step::ComputeTax);
        assert_eq!(next(&plan, &early, Mode::Recover), Next::Finish(Final::Failed));
    }

    #[test]
    fn recovery_after_the_order_finishes_forward() {
        let plan = plan(true);
        let journal: Vec<StepRecord> = plan
            .iter()
            .take_while(|s| **s != Step::EmptyCart)
            .map(|s| rec(*s, Outcome::Ok))
            .collect();
        assert_eq!(next(&plan, &journal, Mode::Recover), Next::Run(Step::EmptyCart));
    }

    #[test]
    fn a_checkout_whose_order_placed_failed_waits_and_recovery_stores_it_again() {
        let plan = plan(true);
        let mut journal: Vec<StepRecord> = plan
            .iter()
            .take_while(|s| **s != Step::PublishOrderPlaced)
            .map(|s| rec(*s, Outcome::Ok))
            .collect();
        journal.push(rec(Step::PublishOrderPlaced, Outcome::Failed));
        assert_eq!(next(&plan, &journal, Mode::Live), Next::Wait);
        assert_eq!(next(&plan, &journal, Mode::Recover), Next::Run(Step::PublishOrderPlaced));
        journal.last_mut().unwrap().outcome = Outcome::Ok;
        assert_eq!(next(&plan, &journal, Mode::Recover), Next::Finish(Final::Completed));
        // A failed empty_cart does not hold the order back.
        journal[plan.iter().position(|s| *s == Step::EmptyCart).unwrap()].outcome = Outcome::Failed;
        assert_eq!(next(&plan, &journal, Mode::Live), Next::Finish(Final::Completed));
    }

    #[test]
    fn a_step_interrupted_mid_call_is_resolved_first() {
        let plan = plan(false);
        let mut journal = ok_until(Step::ReserveStock);
        journal.push(rec(Step::AuthorizePayment, Outcome::Running));
        assert_eq!(next(&plan, &journal, Mode::Recover), Next::Resolve(Step::AuthorizePayment));
        // Resolved as failed: it is voided like any uncertain authorization.
        journal.last_mut().unwrap().outcome = Outcome::Failed;
        assert_eq!(next(&plan, &journal, Mode::Recover), Next::Compensate(Step::AuthorizePayment));
    }

    #[test]
    fn the_timeline_shows_undone_steps_as_compensated() {
        let mut r = rec(Step::ReserveStock, Outcome::Ok);
        assert_eq!(r.shown_outcome(), "ok");
        r.compensated = true;
        assert_eq!(r.shown_outcome(), "compensated");
        let failed = StepRecord { compensated: true, ..rec(Step::AuthorizePayment, Outcome::Failed) };
        assert_eq!(failed.shown_outcome(), "failed");
    }

    #[test]
    fn only_state_changing_steps_have_compensations() {
        let with: Vec<Step> = Step::ALL.into_iter().filter(|s| s.compensation().is_some()).collect();
        assert_eq!(with, [Step::ReserveStock, Step::AuthorizePayment, Step::CreateOrder]);
        for step in Step::ALL {
            assert_eq!(Step::parse(step.name()), Some(step));
        }
    }

    // -- statuses

    #[test]
    fn statuses_move_only_forward_and_final_ones_stay() {
        use Status::*;
        assert!(Running.can_become(Completed) && Running.can_become(Failed) && Running.can_become(Compensating));
        assert!(Compensating.can_become(Failed) && !Compensating.can_become(Completed));
        for final_status in [Completed, Failed] {
            assert!(final_status.is_final());
            for to in [Running, Compensating, Completed, Failed] {
                assert!(!final_status.can_become(to), "{final_status:?} -> {to:?}");
            }
        }
        for s in [Running, Compensating, Completed, Failed] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }

    // -- totals

    #[test]
    fn totals_are_lines_plus_shipping_plus_tax() {
        let lines = price_lines(
            &[("A".into(), 2), ("B".into(), 1)],
            &[("B".into(), eur(500), 100), ("A".into(), eur(1490), 240)],
        )
        .unwrap();
        assert_eq!(lines[0].line_total, eur(2980));
        assert_eq!(lines[0].weight_grams, 240);
        let totals = totals(&lines, &eur(495), &eur(660)).unwrap();
        assert_eq!(
            totals,
            Totals { items: 3480, shipping: 495, tax: 660, grand_total: 4635, currency: "EUR".into() }
        );
    }

    #[test]
    fn pricing_names_unknown_skus_and_refuses_mixed_currencies() {
        let error = price_lines(&[("A".into(), 1), ("X".into(), 1)], &[("A".into(), eur(1), 1)]).unwrap_err();
        assert_eq!((error.status, error.code), (422, "unknown_sku"));
        assert_eq!(error.extra["skus"], serde_json::json!(["X"]));
        let usd = Money::new(1, "USD").unwrap();
        let error =
            price_lines(&[("A".into(), 1), ("B".into(), 1)], &[("A".into(), eur(1), 1), ("B".into(), usd.clone(), 1)])
                .unwrap_err();
        assert_eq!(error.status, 503);
        let lines = price_lines(&[("A".into(), 1)], &[("A".into(), eur(1), 1)]).unwrap();
        assert_eq!(totals(&lines, &usd, &eur(0)).unwrap_err().status, 503);
    }

    #[test]
    fn totals_never_overflow_silently() {
        let error = price_lines(&[("A".into(), 99)], &[("A".into(), eur(i64::MAX / 2), 1)]).unwrap_err();
        assert_eq!(error.code, "pricing_unavailable");
        let lines = price_lines(&[("A".into(), 1)], &[("A".into(), eur(i64::MAX - 1), 1)]).unwrap();
        assert!(totals(&lines, &eur(5), &eur(0)).is_err());
        assert_eq!(goods_total(&[]).unwrap_err().code, "empty_cart");
    }

    // -- request

    #[test]
    fn a_valid_request_is_normalized_and_keeps_only_the_last_four_digits() {
        let checked = CheckoutRequest::new(
            " cart-1 ".into(),
            " a@b.de ".into(),
            Some(" ".into()),
            address(),
            "express",
            card("4242 4242 4242 4242"),
        )
        .unwrap();
        assert_eq!(checked.order.cart_id, "cart-1");
        assert_eq!(checked.order.email, "a@b.de");
        assert_eq!(checked.order.customer_id, None);
        assert_eq!(checked.order.address.country, "DE");
        assert_eq!(checked.order.shipping, Speed::Express);
        assert_eq!(checked.order.card_last4, "4242");
        assert_eq!(checked.card.number, "4242424242424242");
        let stored = serde_json::to_string(&checked.order).unwrap();
        assert!(!stored.contains("42424242"), "{stored}");
        assert_eq!(format!("{:?}", checked.card), "Card(…4242)");
    }

    #[test]
    fn bad_fields_are_named() {
        let bad_card = request("4242").unwrap_err();
        assert_eq!((bad_card.code, bad_card.extra["field"].as_str()), ("invalid_card", Some("number")));
        let bad_country = CheckoutRequest::new(
            "c".into(),
            "a@b.de".into(),
            None,
            Address { country: "XX".into(), ..address() },
            "standard",
            card("4242424242424242"),
        )
        .unwrap_err();
        assert_eq!((bad_country.status, bad_country.code), (422, "unknown_country"));
        let bad_city = CheckoutRequest::new(
            "c".into(),
            "a@b.de".into(),
            None,
            Address { city: " ".into(), ..address() },
            "standard",
            card("4242424242424242"),
        )
        .unwrap_err();
        assert_eq!(bad_city.code, "invalid_address");
        let bad_speed =
            CheckoutRequest::new("c".into(), "a@b.de".into(), None, address(), "slow", card("4242424242424242"))
                .unwrap_err();
        assert_eq!(bad_speed.extra["field"], "shipping");
        for email in ["", "a", "a@b", "a b@c.de", "@b.de"] {
            let error =
                CheckoutRequest::new("c".into(), email.into(), None, address(), "standard", card("4242424242424242"))
                    .unwrap_err();
            assert_eq!(error.code, "invalid_email", "{email}");
        }
        let bad_cart =
            CheckoutRequest::new("a/b".into(), "a@b.de".into(), None, address(), "standard", card("4242424242424242"))
                .unwrap_err();
        assert_eq!(bad_cart.extra["field"], "cart_id");
    }

    #[test]
    fn the_fingerprint_tells_bodies_apart_but_not_their_spelling() {
        let a = request("4242424242424242").unwrap();
        let spaced = request("4242 4242 4242 4242").unwrap();
        let other_card = request("4000000000000002").unwrap();
        assert_eq!(a.fingerprint(), spaced.fingerprint());
        assert_ne!(a.fingerprint(), other_card.fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
    }

    #[test]
    fn idempotency_keys_are_required_and_bounded() {
        assert_eq!(check_idempotency_key(None).unwrap_err().code, "missing_idempotency_key");
        assert_eq!(check_idempotency_key(Some("  ")).unwrap_err().code, "missing_idempotency_key");
        assert_eq!(check_idempotency_key(Some("a b")).unwrap_err().code, "invalid_idempotency_key");
        assert!(check_idempotency_key(Some(&"k".repeat(256))).is_err());
        assert_eq!(check_idempotency_key(Some(" key-1 ")).unwrap(), "key-1");
    }

    #[test]
    fn downstream_ids_derive_from_the_checkout_id() {
        let ids = DownstreamIds::of("chk_0123abcd");
        assert_eq!(ids.reservation_id, "res_0123abcd");
        assert_eq!(ids.payment_key, "chk_0123abcd:authorize");
        assert_eq!(ids.order_id, "ord_0123abcd");
        assert_eq!(ids.event_id, "evt_0123abcd");
        assert_eq!(DownstreamIds::of("chk_0123abcd"), ids);
    }
}
