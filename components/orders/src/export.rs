//! The `shop:orders/orders` WIT export, over the same domain and store code as
//! the HTTP routes; generated types are converted here and go no further.

wit_bindgen::generate!({
    world: "shop:orders/service",
    path: ["../../wit/types", "../../wit/orders"],
    // The shared records (money, address) are generated here too; nothing else
    // in this crate provides bindings for `shop:types`.
    with: { "shop:types/types@0.1.0": generate },
});

use exports::shop::orders::orders::{self as wit, Guest};
use shop::types::types::{Address as WitAddress, Money as WitMoney};
use shop_shared::{Address, Money, now_millis};

use crate::domain::{
    check_access_digest,
    Customer, LineDraft, Millis, MoneyDraft, Order, OrderDraft, OrderLine, OrdersError,
    PageRequest, ShippingSpeed, Status, StatusChange, TotalsDraft, normalize_reason,
};
use crate::store::OrdersStore;

struct OrdersExport;

export!(OrdersExport);

impl Guest for OrdersExport {
    fn create_order(order: wit::NewOrder) -> Result<wit::Order, wit::Error> {
        let draft = OrderDraft {
            id: order.id,
            customer_id: order.customer_id,
            email: order.email,
            lines: order.lines.into_iter().map(line_draft).collect(),
            totals: TotalsDraft {
                items: order.totals.items,
                shipping: order.totals.shipping,
                tax: order.totals.tax,
                grand_total: order.totals.grand_total,
                currency: order.totals.currency,
            },
            address: Address {
                name: order.address.name,
                line1: order.address.line1,
                line2: order.address.line2,
                city: order.address.city,
                postal_code: order.address.postal_code,
                country: order.address.country,
            },
            shipping: ShippingSpeed::from(order.shipping).as_str().to_owned(),
            payment_authorization_id: order.payment_authorization_id,
            reservation_id: order.reservation_id,
            checkout_id: order.checkout_id,
        };
        let digest = check_access_digest(order.access_token_digest)?;
        let (id, content) = draft.validate()?;
        let (order, _) = OrdersStore::open()?.create(id, content, digest.as_deref(), Millis(now_millis()))?;
        Ok(order.into())
    }

    fn get_order(id: String) -> Result<wit::Order, wit::Error> {
        Ok(OrdersStore::open()?.order(&id)?.into())
    }

    fn orders_for_customer(
        customer: String,
        page: u32,
        per_page: u32,
    ) -> Result<wit::OrderPage, wit::Error> {
        let customer = Customer::parse(Some(&customer))?;
        let page = PageRequest::new(page, per_page)?;
        let page = OrdersStore::open()?.orders_for(&customer, page)?;
        Ok(wit::OrderPage {
            orders: page.orders.into_iter().map(Into::into).collect(),
            total: page.total,
            page: page.page,
            per_page: page.per_page,
        })
    }

    fn cancel_order(id: String, reason: Option<String>) -> Result<wit::Order, wit::Error> {
        transition(&id, Status::Cancelled, reason)
    }

    fn set_status(
        id: String,
        status: wit::Status,
        reason: Option<String>,
    ) -> Result<wit::Order, wit::Error> {
        transition(&id, status.into(), reason)
    }
}

/// As over HTTP: a cancellation publishes `order.cancelled` (crate::events).
fn transition(id: &str, to: Status, reason: Option<String>) -> Result<wit::Order, wit::Error> {
    let reason = normalize_reason(reason)?;
    Ok(crate::events::request_transition(id, to, reason)?.into())
}

fn line_draft(line: wit::OrderLine) -> LineDraft {
    let money = |money: WitMoney| MoneyDraft {
        amount: money.amount,
        currency: money.currency,
    };
    LineDraft {
        sku: line.sku,
        name: line.name,
        quantity: line.quantity.into(),
        unit_price: money(line.unit_price),
        line_total: money(line.line_total),
    }
}

fn wit_money(money: Money) -> WitMoney {
    WitMoney {
        amount: money.amount,
        currency: money.currency.to_string(),
    }
}

impl From<Order> for wit::Order {
    fn from(order: Order) -> Self {
        let content = order.content;
        Self {
            id: order.id,
            customer_id: content.customer_id,
            email: content.email,
            lines: content.lines.into_iter().map(Into::into).collect(),
            totals: wit::Totals {
                items: content.totals.items,
                shipping: content.totals.shipping,
                tax: content.totals.tax,
                grand_total: content.totals.grand_total,
                currency: content.totals.currency.to_string(),
            },
            address: WitAddress {
                name: content.address.name,
                line1: content.address.line1,
                line2: content.address.line2,
                city: content.address.city,
                postal_code: content.address.postal_code,
                country: content.address.country,
            },
            shipping: content.shipping.into(),
            payment_authorization_id: content.payment_authorization_id,
            reservation_id: content.reservation_id,
            checkout_id: content.checkout_id,
            status: order.status.into(),
            history: order.history.into_iter().map(Into::into).collect(),
            created_at: order.created_at.rfc3339(),
        }
    }
}

impl From<OrderLine> for wit::OrderLine {
    fn from(line: OrderLine) -> Self {
        Self {
            sku: line.sku,
            name: line.name,
            quantity: line.quantity,
            unit_price: wit_money(line.unit_price),
            line_total: wit_money(line.line_total),
        }
    }
}

impl From<StatusChange> for wit::StatusChange {
    fn from(change: StatusChange) -> Self {
        Self {
            status: change.status.into(),
            at: change.at.rfc3339(),
            reason: change.reason,
        }
    }
}

impl From<Status> for wit::Status {
    fn from(status: Status) -> Self {
        match status {
            Status::Placed => Self::Placed,
            Status::Paid => Self::Paid,
            Status::Shipped => Self::Shipped,
            Status::Delivered => Self::Delivered,
            Status::Cancelled => Self::Cancelled,
            Status::Failed => Self::Failed,
        }
    }
}

impl From<wit::Status> for Status {
    fn from(status: wit::Status) -> Self {
        match status {
            wit::Status::Placed => Self::Placed,
            wit::Status::Paid => Self::Paid,
            wit::Status::Shipped => Self::Shipped,
            wit::Status::Delivered => Self::Delivered,
            wit::Status::Cancelled => Self::Cancelled,
            wit::Status::Failed => Self::Failed,
        }
    }
}

impl From<ShippingSpeed> for wit::ShippingSpeed {
    fn from(speed: ShippingSpeed) -> Self {
        match speed {
            ShippingSpeed::Standard => Self::Standard,
            ShippingSpeed::Express => Self::Express,
        }
    }
}

impl From<wit::ShippingSpeed> for ShippingSpeed {
    fn from(speed: wit::ShippingSpeed) -> Self {
        match speed {
            wit::ShippingSpeed::Standard => Self::Standard,
            wit::ShippingSpeed::Express => Self::Express,
        }
    }
}

impl From<OrdersError> for wit::Error {
    fn from(error: OrdersError) -> Self {
        let message = error.to_string();
        match error {
            OrdersError::OrderNotFound(id) => Self::NotFound(id),
            OrdersError::OrderConflict(_) => Self::Conflict(message),
            OrdersError::IllegalTransition { .. } => Self::IllegalTransition(message),
            OrdersError::Unavailable(_) => Self::Unavailable(message),
            OrdersError::InvalidOrder { field, .. } => Self::Invalid(format!("{field}: {message}")),
            OrdersError::InvalidAddress(error) => {
                match error.extra.get("field").and_then(|f| f.as_str()) {
                    Some(field) => Self::Invalid(format!("address.{field}: {message}")),
                    None => Self::Invalid(format!("address: {message}")),
                }
            }
            OrdersError::InvalidStatus(_)
            | OrdersError::InvalidReason(_)
            | OrdersError::InvalidQuery(_) => Self::Invalid(message),
        }
    }
}
