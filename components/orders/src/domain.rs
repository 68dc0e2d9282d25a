//! Orders and their rules: what a valid order is (one currency, line totals
//! that are unit price × quantity, a grand total that adds up), the state
//! machine of statuses, and pages of a customer's history. No I/O.
//!
//! Statuses follow the ship-then-capture choreography of SPEC §5: the goods
//! ship first (`fulfillment.shipped`), then payment takes the money
//! (`payment.captured`). An order can be cancelled only before it ships.
//!
//! | from \ to | shipped | paid | delivered | cancelled | failed |
//! |-----------|---------|------|-----------|-----------|--------|
//! | placed    | yes     |      |           | yes       | yes    |
//! | shipped   |         | yes  |           |           |        |
//! | paid      |         |      | yes       |           |        |
//!
//! (`paid → delivered` is kept for a carrier's delivery event.) Everything
//! else is refused, except moving an order to the status it already has:
//! that changes nothing and is not an error, because the events that drive
//! transitions may be delivered more than once.
//!
//! Events are applied with [`Status::steps_to`], which also accepts them out
//! of order: an event reporting a status the order has already passed on the
//! way placed → shipped → paid → delivered changes nothing, and one that
//! skips a step (`payment.captured` before `fulfillment.shipped`) records the
//! skipped step too.

use serde::{Deserialize, Serialize, Serializer};
use shop_shared::event::{OrderCancelled, cancel_reason};
use shop_shared::{Address, ApiError, Currency, MAX_ID_LEN, Money, is_valid_id, is_valid_sku, rfc3339};

pub const DEFAULT_PER_PAGE: u32 = 20;
pub const MAX_PER_PAGE: u32 = 100;
/// An order is a cart's contents: at most 100 lines of 1 to 99 each.
pub const MAX_LINES: usize = 100;
pub const MAX_QUANTITY: i64 = 99;

const MAX_REFERENCE_LEN: usize = 128;
const MAX_EMAIL_LEN: usize = 254;
const MAX_NAME_CHARS: usize = 200;
const MAX_REASON_CHARS: usize = 500;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Placed,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
    Failed,
}

/// What moving an order to a status amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// A legal move: the status changes and the history grows by one row.
    Apply,
    /// The order already has that status: nothing changes.
    AlreadyThere,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Placed,
        Status::Paid,
        Status::Shipped,
        Status::Delivered,
        Status::Cancelled,
        Status::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "placed",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Result<Self, OrdersError> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
                OrdersError::InvalidStatus(format!(
                    "unknown status {text:?}: expected one of {}",
                    names.join(", ")
                ))
            })
    }

    /// The legal moves of the state machine (see the module's table).
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Placed, Shipped)
                | (Shipped, Paid)
                | (Paid, Delivered)
                | (Placed, Cancelled)
                | (Placed, Failed)
        )
    }

    /// Whether an order in this status may move to `to`, and what that does.
    pub fn transition_to(self, to: Status) -> Result<Transition, OrdersError> {
        if self == to {
            Ok(Transition::AlreadyThere)
        } else if self.can_become(to) {
            Ok(Transition::Apply)
        } else {
            Err(OrdersError::IllegalTransition { from: self, to })
        }
    }

    /// Where the status is on the way of an order that goes well; `None`
    /// for the ends of the other ways (cancelled, failed).
    fn stage(self) -> Option<usize> {
        Self::FORWARD.iter().position(|status| *status == self)
    }

    /// The way of an order that goes well.
    const FORWARD: [Status; 4] = [Status::Placed, Status::Shipped, Status::Paid, Status::Delivered];

    /// What an event reporting that the order is now `to` does to an order
    /// in this status: the statuses it goes through, in order. Empty when
    /// it already is there or past it (a late or repeated event); the
    /// skipped steps first when the event overtook an earlier one
    /// (`payment.captured` before `fulfillment.shipped`: shipped, paid).
    /// Any other move follows [`Status::transition_to`].
    pub fn steps_to(self, to: Status) -> Result<Vec<Status>, OrdersError> {
        match (self.stage(), to.stage()) {
            _ if self == to => Ok(Vec::new()),
            (Some(from), Some(target)) if target < from => Ok(Vec::new()),
            (Some(from), Some(target)) => Ok(Self::FORWARD[from + 1..=target].to_vec()),
            _ => self.transition_to(to).map(|_| vec![to]),
        }
    }

    /// "cannot {verb} an order that is {status}".
    fn verb(self) -> &'static str {
        match self {
            Self::Placed => "place",
            Self::Paid => "pay for",
            Self::Shipped => "ship",
            Self::Delivered => "deliver",
            Self::Cancelled => "cancel",
            Self::Failed => "fail",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How fast the order ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShippingSpeed {
    Standard,
    Express,
}

impl ShippingSpeed {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Express => "express",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "standard" => Some(Self::Standard),
            "express" => Some(Self::Express),
            _ => None,
        }
    }
}

/// A moment, kept as milliseconds since the Unix epoch and shown as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Millis(pub i64);

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&rfc3339(self.0))
    }
}

impl Millis {
    pub fn rfc3339(self) -> String {
        rfc3339(self.0)
    }
}

/// One line of an order, priced when the order was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    pub sku: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub quantity: u32,
    pub unit_price: Money,
    pub line_total: Money,
}

/// What the order costs, in minor units of one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub items: i64,
    pub shipping: i64,
    pub tax: i64,
    pub grand_total: i64,
    pub currency: Currency,
}

/// Everything the creator of an order decides. Creating an order again under
/// the same id succeeds only with equal content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderContent {
    /// The registered customer, if any; guests have only the email.
    pub customer_id: Option<String>,
    /// Trimmed and lowercased.
    pub email: String,
    pub lines: Vec<OrderLine>,
    pub totals: Totals,
    pub address: Address,
    pub shipping: ShippingSpeed,
    pub payment_authorization_id: String,
    pub reservation_id: String,
    pub checkout_id: Option<String>,
}

/// One step of an order's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusChange {
    pub status: Status,
    pub at: Millis,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    pub id: String,
    #[serde(flatten)]
    pub content: OrderContent,
    pub status: Status,
    /// Oldest first; the first row is always `placed`.
    pub history: Vec<StatusChange>,
    pub created_at: Millis,
}

impl Order {
    /// A new order: placed, at `at`.
    pub fn place(id: String, content: OrderContent, at: Millis) -> Self {
        Self {
            id,
            content,
            status: Status::Placed,
            history: vec![StatusChange {
                status: Status::Placed,
                at,
                reason: None,
            }],
            created_at: at,
        }
    }

    /// Moves the order to `to`; `Ok(None)` when it already was there.
    pub fn transition(
        &mut self,
        to: Status,
        reason: Option<String>,
        at: Millis,
    ) -> Result<Option<StatusChange>, OrdersError> {
        match self.status.transition_to(to)? {
            Transition::AlreadyThere => Ok(None),
            Transition::Apply => {
                let change = StatusChange {
                    status: to,
                    at,
                    reason,
                };
                self.status = to;
                self.history.push(change.clone());
                Ok(Some(change))
            }
        }
    }

    /// Moves the order as an event reports it (see [`Status::steps_to`]):
    /// the changes made, none for a late or repeated event. A step the
    /// event skipped gets the reason `implied by <event type>`; the last one
    /// gets `reason`.
    pub fn follow(
        &mut self,
        to: Status,
        event_type: &str,
        reason: Option<String>,
        at: Millis,
    ) -> Result<Vec<StatusChange>, OrdersError> {
        let steps = self.status.steps_to(to)?;
        let last = steps.len().saturating_sub(1);
        let changes: Vec<StatusChange> = steps
            .into_iter()
            .enumerate()
            .map(|(i, status)| StatusChange {
                status,
                at,
                reason: if i == last {
                    reason.clone()
                } else {
                    Some(format!("implied by {event_type}"))
                },
            })
            .collect();
        if let Some(change) = changes.last() {
            self.status = change.status;
        }
        self.history.extend(changes.iter().cloned());
        Ok(changes)
    }

    /// The id events about this order carry as their correlation id: the
    /// checkout that placed it, or the order itself.
    pub fn correlation_id(&self) -> &str {
        self.content.checkout_id.as_deref().unwrap_or(&self.id)
    }

    /// The `order.cancelled` orders publishes when a customer (or an
    /// operator) cancels: what payment (void), inventory (release),
    /// fulfillment (cancel the shipment) and notifications need.
    pub fn cancelled_event(&self) -> OrderCancelled {
        OrderCancelled {
            order_id: self.id.clone(),
            reason: cancel_reason::CUSTOMER_REQUEST.to_owned(),
            customer_id: self.content.customer_id.clone(),
            email: Some(self.content.email.clone()),
            reservation_id: Some(self.content.reservation_id.clone()),
            payment_authorization_id: Some(self.content.payment_authorization_id.clone()),
            shortages: Vec::new(),
        }
    }
}

/// A reason taken from an event for the history: at most
/// [`MAX_REASON_CHARS`] characters, never an error.
pub fn event_reason(reason: &str) -> Option<String> {
    let reason = reason.trim();
    (!reason.is_empty()).then(|| reason.chars().take(MAX_REASON_CHARS).collect())
}

/// An amount as submitted, before its currency has been checked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MoneyDraft {
    pub amount: i64,
    pub currency: String,
}

/// A line as submitted. The quantity is wide so that 0 or -1 gets this
/// module's message rather than a type error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LineDraft {
    pub sku: String,
    #[serde(default)]
    pub name: Option<String>,
    pub quantity: i64,
    pub unit_price: MoneyDraft,
    pub line_total: MoneyDraft,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TotalsDraft {
    pub items: i64,
    pub shipping: i64,
    pub tax: i64,
    pub grand_total: i64,
    pub currency: String,
}

/// An order as its creator submits it, before the rules have been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderDraft {
    /// Chosen by the creator (for idempotent creation), or `None` for a new id.
    pub id: Option<String>,
    pub customer_id: Option<String>,
    pub email: String,
    pub lines: Vec<LineDraft>,
    pub totals: TotalsDraft,
    pub address: Address,
    pub shipping: String,
    pub payment_authorization_id: String,
    pub reservation_id: String,
    pub checkout_id: Option<String>,
}

impl OrderDraft {
    /// The id asked for (if any) and the order's content, if every rule holds.
    pub fn validate(self) -> Result<(Option<String>, OrderContent), OrdersError> {
        let id = self
            .id
            .map(|id| check_id("id", "an order id", &id).map(|()| id))
            .transpose()?;
        let customer_id = self
            .customer_id
            .map(|id| check_id("customer_id", "a customer id", &id).map(|()| id))
            .transpose()?;
        let email = normalize_email(&self.email)?;

        let currency = Currency::parse(&self.totals.currency)
            .map_err(|e| invalid("totals.currency", e.to_string()))?;
        let lines = check_lines(self.lines, &currency)?;
        let totals = check_totals(self.totals, currency, &lines)?;

        let address = self
            .address
            .validate()
            .map_err(OrdersError::InvalidAddress)?;
        let shipping = ShippingSpeed::parse(&self.shipping).ok_or_else(|| {
            invalid(
                "shipping",
                format!(
                    "shipping must be \"standard\" or \"express\", got {:?}",
                    self.shipping
                ),
            )
        })?;
        check_reference("payment_authorization_id", &self.payment_authorization_id)?;
        check_reference("reservation_id", &self.reservation_id)?;
        if let Some(checkout_id) = &self.checkout_id {
            check_reference("checkout_id", checkout_id)?;
        }

        Ok((
            id,
            OrderContent {
                customer_id,
                email,
                lines,
                totals,
                address,
                shipping,
                payment_authorization_id: self.payment_authorization_id,
                reservation_id: self.reservation_id,
                checkout_id: self.checkout_id,
            },
        ))
    }
}

fn check_lines(drafts: Vec<LineDraft>, currency: &Currency) -> Result<Vec<OrderLine>, OrdersError> {
    if drafts.is_empty() {
        return Err(invalid("lines", "an order has at least one line"));
    }
    if drafts.len() > MAX_LINES {
        return Err(invalid(
            "lines",
            format!(
                "an order has at most {MAX_LINES} lines, got {}",
                drafts.len()
            ),
        ));
    }
    let mut lines: Vec<OrderLine> = Vec::with_capacity(drafts.len());
    for (i, draft) in drafts.into_iter().enumerate() {
        let field = |name: &str| format!("lines[{i}].{name}");
        if !is_valid_sku(&draft.sku) {
            return Err(invalid(
                &field("sku"),
                format!(
                    "sku {:?} must be 1 to 64 uppercase letters, digits and dashes, like \"MUG-001\"",
                    draft.sku
                ),
            ));
        }
        if lines.iter().any(|line| line.sku == draft.sku) {
            return Err(invalid(
                &field("sku"),
                format!("sku {} is on more than one line", draft.sku),
            ));
        }
        let name = draft
            .name
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty());
        if name
            .as_ref()
            .is_some_and(|name| name.chars().count() > MAX_NAME_CHARS)
        {
            return Err(invalid(
                &field("name"),
                format!("a line's name must be at most {MAX_NAME_CHARS} characters"),
            ));
        }
        let quantity = u32::try_from(draft.quantity)
            .ok()
            .filter(|n| (1..=MAX_QUANTITY).contains(&i64::from(*n)))
            .ok_or_else(|| {
                invalid(
                    &field("quantity"),
                    format!(
                        "quantity must be a whole number from 1 to {MAX_QUANTITY}, got {}",
                        draft.quantity
                    ),
                )
            })?;
        let unit_price = money_in(&field("unit_price"), draft.unit_price, currency)?;
        let line_total = money_in(&field("line_total"), draft.line_total, currency)?;
        let expected = unit_price.amount.checked_mul(i64::from(quantity));
        if expected != Some(line_total.amount) {
            return Err(invalid(
                &field("line_total"),
                format!(
                    "line_total must be unit_price × quantity = {} × {quantity}, got {}",
                    unit_price.amount, line_total.amount
                ),
            ));
        }
        lines.push(OrderLine {
            sku: draft.sku,
            name,
            quantity,
            unit_price,
            line_total,
        });
    }
    Ok(lines)
}

/// A non-negative amount in the order's currency.
fn money_in(field: &str, draft: MoneyDraft, currency: &Currency) -> Result<Money, OrdersError> {
    let money = Money::non_negative(draft.amount, &draft.currency)
        .map_err(|e| invalid(field, e.to_string()))?;
    if &money.currency != currency {
        return Err(invalid(
            field,
            format!(
                "all amounts of an order are in one currency: {field} is in {}, the totals in {currency}",
                money.currency
            ),
        ));
    }
    Ok(money)
}

fn check_totals(
    draft: TotalsDraft,
    currency: Currency,
    lines: &[OrderLine],
) -> Result<Totals, OrdersError> {
    for (name, amount) in [
        ("items", draft.items),
        ("shipping", draft.shipping),
        ("tax", draft.tax),
        ("grand_total", draft.grand_total),
    ] {
        if amount < 0 {
            return Err(invalid(
                &format!("totals.{name}"),
                format!("totals.{name} must not be negative, got {amount}"),
            ));
        }
    }
    let items = lines
        .iter()
        .try_fold(0i64, |sum, line| sum.checked_add(line.line_total.amount));
    if items != Some(draft.items) {
        return Err(invalid(
            "totals.items",
            format!(
                "totals.items must be the sum of the line totals, {}, got {}",
                items.map_or_else(|| "too large".to_owned(), |sum| sum.to_string()),
                draft.items
            ),
        ));
    }
    let grand_total = draft
        .items
        .checked_add(draft.shipping)
        .and_then(|sum| sum.checked_add(draft.tax));
    if grand_total != Some(draft.grand_total) {
        return Err(invalid(
            "totals.grand_total",
            format!(
                "totals.grand_total must be items + shipping + tax = {} + {} + {}, got {}",
                draft.items, draft.shipping, draft.tax, draft.grand_total
            ),
        ));
    }
    Ok(Totals {
        items: draft.items,
        shipping: draft.shipping,
        tax: draft.tax,
        grand_total: draft.grand_total,
        currency,
    })
}

fn check_id(field: &str, what: &str, id: &str) -> Result<(), OrdersError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{what} is 1 to {MAX_ID_LEN} letters, digits, '_' or '-', got {id:?}"),
        ))
    }
}

/// Another service's id (an authorization, a reservation, a checkout): 1–128
/// printable ASCII characters without spaces.
fn check_reference(field: &str, reference: &str) -> Result<(), OrdersError> {
    let valid = !reference.is_empty()
        && reference.len() <= MAX_REFERENCE_LEN
        && reference.bytes().all(|b| b.is_ascii_graphic());
    if valid {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{field} must be 1 to {MAX_REFERENCE_LEN} printable characters without spaces"),
        ))
    }
}

/// Trimmed and lowercased, so that one customer's orders are found however
/// the address was typed. Only the shape is checked: something@domain.
pub fn normalize_email(email: &str) -> Result<String, OrdersError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= MAX_EMAIL_LEN
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(email)
    } else {
        Err(invalid(
            "email",
            format!(
                "email must be an address like \"ada@example.com\", at most {MAX_EMAIL_LEN} characters"
            ),
        ))
    }
}

/// The reason given for a transition: trimmed, blank means none.
pub fn normalize_reason(reason: Option<String>) -> Result<Option<String>, OrdersError> {
    let reason = reason
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty());
    if reason
        .as_ref()
        .is_some_and(|text| text.chars().count() > MAX_REASON_CHARS)
    {
        return Err(OrdersError::InvalidReason(format!(
            "reason must be at most {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(reason)
}

/// Whose orders to list: a registered customer's id, or a (guest's) email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Customer {
    Id(String),
    /// Normalized like an order's email.
    Email(String),
}

impl Customer {
    /// Text with an `@` is an email, anything else a customer id.
    pub fn parse(text: Option<&str>) -> Result<Self, OrdersError> {
        let text = text.map(str::trim).unwrap_or_default();
        if text.is_empty() {
            return Err(OrdersError::InvalidQuery(
                "customer is required: a customer id or an email".into(),
            ));
        }
        if text.contains('@') {
            normalize_email(text).map(Self::Email).map_err(|_| {
                OrdersError::InvalidQuery(format!("customer {text:?} is not a valid email"))
            })
        } else if is_valid_id(text) {
            Ok(Self::Id(text.to_owned()))
        } else {
            Err(OrdersError::InvalidQuery(format!(
                "customer {text:?} is neither an email nor a customer id (1 to {MAX_ID_LEN} letters, digits, '_' or '-')"
            )))
        }
    }
}

/// Which page of a list: `page` from 1, `per_page` from 1 to [`MAX_PER_PAGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub per_page: u32,
}

impl PageRequest {
    pub fn new(page: u32, per_page: u32) -> Result<Self, OrdersError> {
        if page == 0 {
            return Err(OrdersError::InvalidQuery(
                "page must be a whole number from 1".into(),
            ));
        }
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(OrdersError::InvalidQuery(format!(
                "per_page must be a whole number from 1 to {MAX_PER_PAGE}"
            )));
        }
        Ok(Self { page, per_page })
    }

    /// How many items come before this page.
    pub fn offset(self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.per_page)
    }

    /// The page of a list of `total` items whose slice for this page is
    /// `orders` (newest first). A page past the end is empty.
    pub fn page_of(self, orders: Vec<Order>, total: u64) -> OrderPage {
        OrderPage {
            orders,
            total: u32::try_from(total).unwrap_or(u32::MAX),
            page: self.page,
            per_page: self.per_page,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderPage {
    /// Newest first.
    pub orders: Vec<Order>,
    /// The customer's orders over all pages.
    pub total: u32,
    pub page: u32,
    pub per_page: u32,
}

/// Whether a create made the order or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    Existing,
}

/// What creating `content` under an id that already holds `existing` does:
/// the same content is the same order (a retried create), other content is a
/// conflict.
pub fn check_recreate(existing: &Order, content: &OrderContent) -> Result<(), OrdersError> {
    if &existing.content == content {
        Ok(())
    } else {
        Err(OrdersError::OrderConflict(existing.id.clone()))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum OrdersError {
    OrderNotFound(String),
    /// A rule of the order's content is broken; `field` names where, like
    /// `lines[2].line_total`.
    InvalidOrder {
        field: String,
        message: String,
    },
    /// The address's own rules, as every service checks them: 422
    /// `invalid_address` naming the field, or `unknown_country`.
    InvalidAddress(ApiError),
    InvalidStatus(String),
    InvalidReason(String),
    /// A page, page size or customer out of range.
    InvalidQuery(String),
    IllegalTransition {
        from: Status,
        to: Status,
    },
    /// An order with this id exists with other content.
    OrderConflict(String),
    /// The orders database failed.
    Unavailable(String),
}

impl std::fmt::Display for OrdersError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OrderNotFound(id) => write!(f, "no order with id {id:?}"),
            Self::IllegalTransition { from, to } => {
                write!(f, "cannot {} an order that is {from}", to.verb())
            }
            Self::OrderConflict(id) => write!(
                f,
                "an order with id {id:?} already exists with other content"
            ),
            Self::InvalidOrder { message, .. }
            | Self::InvalidStatus(message)
            | Self::InvalidReason(message)
            | Self::InvalidQuery(message)
            | Self::Unavailable(message) => f.write_str(message),
            Self::InvalidAddress(error) => f.write_str(&error.message),
        }
    }
}

/// An access token digest as the creator must give it: SHA-256, 64
/// lowercase hex digits.
pub fn check_access_digest(digest: Option<String>) -> Result<Option<String>, OrdersError> {
    match digest {
        Some(d) if d.len() != 64 || !d.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => Err(invalid(
            "access_token_digest",
            "access_token_digest must be a SHA-256 as 64 lowercase hex digits",
        )),
        other => Ok(other),
    }
}

fn invalid(field: &str, message: impl Into<String>) -> OrdersError {
    OrdersError::InvalidOrder {
        field: field.to_owned(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    fn address() -> Address {
        Address {
            name: "Ada Lovelace".into(),
            line1: "12 St James's Square".into(),
            line2: None,
            city: "London".into(),
            postal_code: "SW1Y 4JH".into(),
            country: "GB".into(),
        }
    }

    fn money(amount: i64) -> MoneyDraft {
        MoneyDraft {
            amount,
            currency: "EUR".into(),
        }
    }

    fn line(sku: &str, quantity: i64, unit: i64) -> LineDraft {
        LineDraft {
            sku: sku.into(),
            name: Some(format!("  {sku} name ")),
            quantity,
            unit_price: money(unit),
            line_total: money(unit * quantity),
        }
    }

    /// 2 × 1490 + 1 × 500 = 3480 items, 590 shipping, 696 tax.
    fn draft() -> OrderDraft {
        OrderDraft {
            id: Some("ord_test-1".into()),
            customer_id: None,
            email: " Ada@Example.COM ".into(),
            lines: vec![line("MUG-001", 2, 1490), line("TEA-002", 1, 500)],
            totals: TotalsDraft {
                items: 3480,
                shipping: 590,
                tax: 696,
                grand_total: 4766,
                currency: "EUR".into(),
            },
            address: address(),
            shipping: "standard".into(),
            payment_authorization_id: "auth_1".into(),
            reservation_id: "res_1".into(),
            checkout_id: Some("chk_1".into()),
        }
    }

    fn field_of(result: Result<(Option<String>, OrderContent), OrdersError>) -> String {
        match result {
            Err(OrdersError::InvalidOrder { field, .. }) => field,
            other => panic!("expected an invalid order, got {other:?}"),
        }
    }

    fn order() -> Order {
        let (id, content) = draft().validate().unwrap();
        Order::place(id.unwrap(), content, Millis(1_000))
    }

    // ---- state machine -------------------------------------------------

    const LEGAL: [(Status, Status); 5] = [
        (Placed, Shipped),
        (Shipped, Paid),
        (Paid, Delivered),
        (Placed, Cancelled),
        (Placed, Failed),
    ];

    #[test]
    fn every_pair_of_statuses_is_legal_idempotent_or_refused() {
        for from in Status::ALL {
            for to in Status::ALL {
                let result = from.transition_to(to);
                if from == to {
                    assert_eq!(result, Ok(Transition::AlreadyThere), "{from} → {to}");
                } else if LEGAL.contains(&(from, to)) {
                    assert_eq!(result, Ok(Transition::Apply), "{from} → {to}");
                    assert!(from.can_become(to));
                } else {
                    assert_eq!(
                        result,
                        Err(OrdersError::IllegalTransition { from, to }),
                        "{from} → {to}"
                    );
                    assert!(!from.can_become(to));
                }
            }
        }
    }

    #[test]
    fn terminal_statuses_go_nowhere() {
        for from in [Delivered, Cancelled, Failed] {
            assert!(Status::ALL.iter().all(|to| !from.can_become(*to)), "{from}");
        }
    }

    #[test]
    fn an_order_can_be_cancelled_only_before_it_ships() {
        assert_eq!(Placed.transition_to(Cancelled), Ok(Transition::Apply));
        for from in [Shipped, Paid, Delivered, Failed] {
            assert!(Placed.can_become(Cancelled) && !from.can_become(Cancelled), "{from}");
        }
        // Nothing produces these any more: the money is taken after shipping.
        assert!(!Placed.can_become(Paid));
        assert!(!Paid.can_become(Shipped));
    }

    #[test]
    fn refusals_say_what_and_from_where() {
        let error = Shipped.transition_to(Cancelled).unwrap_err();
        assert_eq!(error.to_string(), "cannot cancel an order that is shipped");
        let error = Cancelled.transition_to(Paid).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot pay for an order that is cancelled"
        );
        let error = Paid.transition_to(Placed).unwrap_err();
        assert_eq!(error.to_string(), "cannot place an order that is paid");
        let error = Placed.transition_to(Paid).unwrap_err();
        assert_eq!(error.to_string(), "cannot pay for an order that is placed");
    }

    #[test]
    fn transitions_append_history_once() {
        let mut order = order();
        assert_eq!(order.status, Placed);
        assert_eq!(order.history.len(), 1);
        let change = order
            .transition(Shipped, None, Millis(2_000))
            .unwrap()
            .unwrap();
        assert_eq!((change.status, change.at), (Shipped, Millis(2_000)));
        assert_eq!(
            order.transition(Shipped, Some("again".into()), Millis(3_000)),
            Ok(None)
        );
        assert_eq!(order.history.len(), 2);
        order
            .transition(Paid, Some("captured".into()), Millis(4_000))
            .unwrap();
        assert_eq!(order.status, Paid);
        assert_eq!(
            order.history.iter().map(|c| c.status).collect::<Vec<_>>(),
            [Placed, Shipped, Paid]
        );
        assert_eq!(order.history[2].reason.as_deref(), Some("captured"));
        let before = order.clone();
        assert!(order.transition(Cancelled, None, Millis(5_000)).is_err());
        assert_eq!(order, before, "a refused transition changes nothing");
    }

    #[test]
    fn events_move_orders_forward_once_whatever_their_order() {
        // In order, and repeated.
        assert_eq!(Placed.steps_to(Shipped), Ok(vec![Shipped]));
        assert_eq!(Shipped.steps_to(Paid), Ok(vec![Paid]));
        assert_eq!(Shipped.steps_to(Shipped), Ok(vec![]));
        assert_eq!(Cancelled.steps_to(Cancelled), Ok(vec![]));
        // Late: the order is already past it.
        assert_eq!(Paid.steps_to(Shipped), Ok(vec![]));
        assert_eq!(Delivered.steps_to(Paid), Ok(vec![]));
        // Early: the capture overtook the shipment.
        assert_eq!(Placed.steps_to(Paid), Ok(vec![Shipped, Paid]));
        // Off the way: the state machine decides.
        assert_eq!(Placed.steps_to(Cancelled), Ok(vec![Cancelled]));
        assert_eq!(
            Shipped.steps_to(Cancelled),
            Err(OrdersError::IllegalTransition { from: Shipped, to: Cancelled })
        );
        assert_eq!(
            Cancelled.steps_to(Shipped),
            Err(OrdersError::IllegalTransition { from: Cancelled, to: Shipped })
        );
        assert!(Failed.steps_to(Paid).is_err());
    }

    #[test]
    fn following_an_event_records_the_steps_it_implies() {
        let mut order = order();
        let changes = order
            .follow(Paid, "payment.captured", Some("auth_1".into()), Millis(2_000))
            .unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(order.status, Paid);
        assert_eq!(
            order.history.iter().map(|c| (c.status, c.reason.as_deref())).collect::<Vec<_>>(),
            [(Placed, None), (Shipped, Some("implied by payment.captured")), (Paid, Some("auth_1"))]
        );
        // The late fulfillment.shipped changes nothing.
        assert_eq!(order.follow(Shipped, "fulfillment.shipped", None, Millis(3_000)), Ok(vec![]));
        assert_eq!(order.history.len(), 3);
        let before = order.clone();
        assert!(order.follow(Cancelled, "order.cancelled", None, Millis(4_000)).is_err());
        assert_eq!(order, before);
    }

    #[test]
    fn a_cancellation_carries_what_its_consumers_need() {
        let mut order = order();
        order.content.customer_id = Some("cus_1".into());
        let event = order.cancelled_event();
        assert_eq!(event.order_id, "ord_test-1");
        assert_eq!(event.reason, "customer_request");
        assert_eq!(event.customer_id.as_deref(), Some("cus_1"));
        assert_eq!(event.email.as_deref(), Some("ada@example.com"));
        assert_eq!(event.reservation_id.as_deref(), Some("res_1"));
        assert_eq!(event.payment_authorization_id.as_deref(), Some("auth_1"));
        assert!(event.shortages.is_empty());
        assert_eq!(order.correlation_id(), "chk_1");
        order.content.checkout_id = None;
        assert_eq!(order.correlation_id(), "ord_test-1");
    }

    #[test]
    fn event_reasons_are_trimmed_and_cut_never_refused() {
        assert_eq!(event_reason("  "), None);
        assert_eq!(event_reason(" out_of_stock "), Some("out_of_stock".into()));
        assert_eq!(event_reason(&"é".repeat(600)).unwrap().chars().count(), 500);
    }

    #[test]
    fn statuses_parse_by_name() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Ok(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::from(status.as_str())
            );
        }
        assert!(matches!(
            Status::parse("Paid"),
            Err(OrdersError::InvalidStatus(_))
        ));
        assert!(matches!(
            Status::parse("refunded"),
            Err(OrdersError::InvalidStatus(_))
        ));
    }

    #[test]
    fn reasons_are_trimmed_and_bounded() {
        assert_eq!(normalize_reason(None), Ok(None));
        assert_eq!(normalize_reason(Some("  ".into())), Ok(None));
        assert_eq!(
            normalize_reason(Some(" late ".into())),
            Ok(Some("late".into()))
        );
        assert!(normalize_reason(Some("x".repeat(501))).is_err());
    }

    // ---- validation ----------------------------------------------------

    #[test]
    fn a_valid_draft_is_normalized() {
        let (id, content) = draft().validate().unwrap();
        assert_eq!(id.as_deref(), Some("ord_test-1"));
        assert_eq!(content.email, "ada@example.com");
        assert_eq!(content.lines[0].name.as_deref(), Some("MUG-001 name"));
        assert_eq!(content.lines[0].quantity, 2);
        assert_eq!(content.totals.grand_total, 4766);
        assert_eq!(content.totals.currency.as_str(), "EUR");
        assert_eq!(content.shipping, ShippingSpeed::Standard);
    }

    #[test]
    fn line_totals_must_be_unit_price_times_quantity() {
        let mut d = draft();
        d.lines[0].line_total.amount = 2979;
        assert_eq!(field_of(d.validate()), "lines[0].line_total");
        let mut d = draft();
        d.lines[1].unit_price.amount = i64::MAX;
        d.lines[1].quantity = 2;
        assert_eq!(
            field_of(d.validate()),
            "lines[1].line_total",
            "overflow is refused"
        );
    }

    #[test]
    fn totals_must_add_up() {
        let mut d = draft();
        d.totals.items += 1;
        d.totals.grand_total += 1;
        assert_eq!(field_of(d.validate()), "totals.items");
        let mut d = draft();
        d.totals.grand_total -= 1;
        assert_eq!(field_of(d.validate()), "totals.grand_total");
        let mut d = draft();
        d.totals.tax = -1;
        d.totals.grand_total -= 697;
        assert_eq!(field_of(d.validate()), "totals.tax");
        let mut d = draft();
        d.totals.shipping = i64::MAX;
        assert_eq!(
            field_of(d.validate()),
            "totals.grand_total",
            "overflow is refused"
        );
    }

    #[test]
    fn all_money_is_in_one_valid_currency() {
        let mut d = draft();
        d.totals.currency = "eur".into();
        assert_eq!(field_of(d.validate()), "totals.currency");
        let mut d = draft();
        d.lines[1].unit_price.currency = "USD".into();
        assert_eq!(field_of(d.validate()), "lines[1].unit_price");
        let mut d = draft();
        d.lines[0].line_total.currency = "GBP".into();
        assert_eq!(field_of(d.validate()), "lines[0].line_total");
        let mut d = draft();
        d.lines[0].unit_price.currency = "EURO".into();
        assert_eq!(field_of(d.validate()), "lines[0].unit_price");
    }

    #[test]
    fn lines_are_bounded_and_distinct() {
        let mut d = draft();
        d.lines.clear();
        assert_eq!(field_of(d.validate()), "lines");
        let mut d = draft();
        d.lines = (0..=MAX_LINES)
            .map(|i| line(&format!("SKU-{i}"), 1, 0))
            .collect();
        d.totals = TotalsDraft {
            items: 0,
            shipping: 0,
            tax: 0,
            grand_total: 0,
            currency: "EUR".into(),
        };
        assert_eq!(field_of(d.validate()), "lines");
        for quantity in [0, -1, 100, 10_000] {
            let mut d = draft();
            d.lines[0] = line("MUG-001", quantity, 1490);
            assert_eq!(field_of(d.validate()), "lines[0].quantity", "{quantity}");
        }
        let mut d = draft();
        d.lines[1].sku = "MUG-001".into();
        assert_eq!(field_of(d.validate()), "lines[1].sku");
        let mut d = draft();
        d.lines[0].sku = "mug 1".into();
        assert_eq!(field_of(d.validate()), "lines[0].sku");
        let mut d = draft();
        d.lines[0].unit_price.amount = -1;
        assert_eq!(field_of(d.validate()), "lines[0].unit_price");
    }

    #[test]
    fn ids_emails_and_references_are_checked() {
        let mut d = draft();
        d.id = Some("ord/1".into());
        assert_eq!(field_of(d.validate()), "id");
        let mut d = draft();
        d.customer_id = Some(String::new());
        assert_eq!(field_of(d.validate()), "customer_id");
        for email in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a b@example.com",
            "a@b@c",
        ] {
            let mut d = draft();
            d.email = email.into();
            assert_eq!(field_of(d.validate()), "email", "{email:?}");
        }
        let mut d = draft();
        d.shipping = "overnight".into();
        assert_eq!(field_of(d.validate()), "shipping");
        let mut d = draft();
        d.payment_authorization_id = "has space".into();
        assert_eq!(field_of(d.validate()), "payment_authorization_id");
        let mut d = draft();
        d.reservation_id = String::new();
        assert_eq!(field_of(d.validate()), "reservation_id");
        let mut d = draft();
        d.checkout_id = Some("x".repeat(129));
        assert_eq!(field_of(d.validate()), "checkout_id");
    }

    #[test]
    fn the_address_is_checked_and_normalized() {
        let code_of = |country: &str| {
            let mut d = draft();
            d.address.country = country.into();
            match d.validate() {
                Err(OrdersError::InvalidAddress(error)) => error.code,
                other => panic!("expected an invalid address, got {other:?}"),
            }
        };
        assert_eq!(code_of("G1"), "invalid_address");
        assert_eq!(code_of("XX"), "unknown_country");
        let mut d = draft();
        d.address.country = " gb ".into();
        d.address.city = " London ".into();
        let (_, content) = d.validate().unwrap();
        assert_eq!(content.address, address());
    }

    #[test]
    fn recreating_needs_the_same_content() {
        let existing = order();
        let (_, same) = draft().validate().unwrap();
        assert_eq!(check_recreate(&existing, &same), Ok(()));
        let mut other = draft();
        other.shipping = "express".into();
        let (_, other) = other.validate().unwrap();
        assert_eq!(
            check_recreate(&existing, &other),
            Err(OrdersError::OrderConflict("ord_test-1".into()))
        );
    }

    #[test]
    fn orders_serialize_with_history_and_timestamps() {
        let value = serde_json::to_value(order()).unwrap();
        assert_eq!(value["id"], "ord_test-1");
        assert_eq!(value["status"], "placed");
        assert_eq!(
            value["history"],
            serde_json::json!([{"status": "placed", "at": "1970-01-01T00:00:01.000Z"}])
        );
        assert_eq!(value["created_at"], "1970-01-01T00:00:01.000Z");
        assert_eq!(value["totals"]["grand_total"], 4766);
        assert_eq!(
            value["lines"][0]["unit_price"],
            serde_json::json!({"amount": 1490, "currency": "EUR"})
        );
        assert_eq!(value["address"]["country"], "GB");
        assert_eq!(value["shipping"], "standard");
    }

    // ---- lists ---------------------------------------------------------

    #[test]
    fn pages_start_at_one_and_are_bounded() {
        assert!(PageRequest::new(0, 20).is_err());
        assert!(PageRequest::new(1, 0).is_err());
        assert!(PageRequest::new(1, MAX_PER_PAGE + 1).is_err());
        assert_eq!(PageRequest::new(1, 20).unwrap().offset(), 0);
        assert_eq!(PageRequest::new(3, 20).unwrap().offset(), 40);
        assert_eq!(
            PageRequest::new(u32::MAX, MAX_PER_PAGE).unwrap().offset(),
            u64::from(u32::MAX - 1) * 100
        );
    }

    #[test]
    fn pages_slice_the_list_and_keep_the_total() {
        let all: Vec<u32> = (1..=7).rev().collect(); // newest first
        let pages: Vec<Vec<u32>> = (1..=4)
            .map(|page| {
                // What the store's `LIMIT per_page OFFSET offset` selects.
                let request = PageRequest::new(page, 3).unwrap();
                let skip = request.offset() as usize;
                all.iter()
                    .skip(skip)
                    .take(request.per_page as usize)
                    .copied()
                    .collect()
            })
            .collect();
        assert_eq!(pages, [vec![7, 6, 5], vec![4, 3, 2], vec![1], vec![]]);
        let page = PageRequest::new(4, 3).unwrap().page_of(Vec::new(), 7);
        assert_eq!((page.total, page.page, page.per_page), (7, 4, 3));
        assert!(page.orders.is_empty());
    }

    #[test]
    fn customers_are_ids_or_emails() {
        assert_eq!(
            Customer::parse(Some("cus_42")),
            Ok(Customer::Id("cus_42".into()))
        );
        assert_eq!(
            Customer::parse(Some(" Ada@Example.com ")),
            Ok(Customer::Email("ada@example.com".into()))
        );
        for bad in [None, Some(""), Some("  "), Some("a@"), Some("not an id")] {
            assert!(
                matches!(Customer::parse(bad), Err(OrdersError::InvalidQuery(_))),
                "{bad:?}"
            );
        }
    }
}
