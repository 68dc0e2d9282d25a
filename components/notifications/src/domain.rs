//! The emails the shop sends, composed from events; no I/O.
//!
//! A mailbox belongs to a customer: their customer id, or for a guest the
//! email address (lowercased). An event that names no recipient is
//! addressed to the one its order's `order.placed` named.

use serde::Serialize;
use shop_shared::event::{
    self, Envelope, FulfillmentShipped, OrderCancelled, OrderPlaced, PaymentCaptured, cancel_reason,
};

/// Who a message goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recipient {
    pub email: String,
    pub customer_id: Option<String>,
}

impl Recipient {
    pub fn new(email: &str, customer_id: Option<&str>) -> Recipient {
        Recipient {
            email: email.trim().to_lowercase(),
            customer_id: customer_id.map(str::trim).filter(|id| !id.is_empty()).map(str::to_owned),
        }
    }
}

/// An email to send, before it has an id and a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub order_id: String,
    /// From the event itself, if it names one.
    pub recipient: Option<Recipient>,
    pub subject: String,
    pub body: String,
}

/// What notifications does with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    Send(Draft),
    /// A type notifications does not write about.
    Nothing,
}

pub fn react(envelope: &Envelope) -> Result<Reaction, String> {
    let draft = match envelope.kind.as_str() {
        event::ORDER_PLACED => placed(&envelope.data_as()?),
        event::FULFILLMENT_SHIPPED => shipped(&envelope.data_as()?),
        event::ORDER_CANCELLED => cancelled(&envelope.data_as()?),
        event::PAYMENT_CAPTURED => captured(&envelope.data_as()?),
        _ => return Ok(Reaction::Nothing),
    };
    Ok(Reaction::Send(draft))
}

fn placed(order: &OrderPlaced) -> Draft {
    let mut body = format!("Thank you for your order {}.\n\n", order.order_id);
    for line in &order.lines {
        body.push_str(&format!("  {} × {}\n", line.quantity, line.sku));
    }
    if let Some(totals) = &order.totals {
        body.push_str(&format!("\nTotal: {}\n", amount(totals.grand_total, &totals.currency)));
    }
    let a = &order.address;
    body.push_str(&format!("\nShipping to {}, {}, {} {}, {}.\n", a.name, a.line1, a.postal_code, a.city, a.country));
    Draft {
        order_id: order.order_id.clone(),
        recipient: Some(Recipient::new(&order.email, order.customer_id.as_deref())),
        subject: format!("Your order {} is confirmed", order.order_id),
        body,
    }
}

fn shipped(shipment: &FulfillmentShipped) -> Draft {
    let recipient = (!shipment.email.trim().is_empty())
        .then(|| Recipient::new(&shipment.email, shipment.customer_id.as_deref()));
    Draft {
        order_id: shipment.order_id.clone(),
        recipient,
        subject: format!("Your order {} has shipped", shipment.order_id),
        body: format!(
            "Your order {} is on its way with {}.\nTracking number: {}\n",
            shipment.order_id, shipment.carrier, shipment.tracking_number
        ),
    }
}

fn cancelled(order: &OrderCancelled) -> Draft {
    let why = match order.reason.as_str() {
        cancel_reason::OUT_OF_STOCK => {
            let items: Vec<String> = order
                .shortages
                .iter()
                .map(|s| format!("{} ({} ordered, {} available)", s.sku, s.requested, s.available))
                .collect();
            if items.is_empty() {
                "some items are out of stock".to_owned()
            } else {
                format!("some items are out of stock: {}", items.join(", "))
            }
        }
        cancel_reason::CUSTOMER_REQUEST => "you asked us to".to_owned(),
        cancel_reason::PAYMENT_FAILED => "the payment could not be completed".to_owned(),
        other => format!("of {}", other.replace('_', " ")),
    };
    Draft {
        order_id: order.order_id.clone(),
        recipient: order.email.as_deref().map(|email| Recipient::new(email, order.customer_id.as_deref())),
        subject: format!("Your order {} was cancelled", order.order_id),
        body: format!(
            "We cancelled your order {} because {why}.\nAny payment taken is returned to you.\n",
            order.order_id
        ),
    }
}

fn captured(payment: &PaymentCaptured) -> Draft {
    Draft {
        order_id: payment.order_id.clone(),
        recipient: payment.email.as_deref().map(|email| Recipient::new(email, payment.customer_id.as_deref())),
        subject: format!("Payment received for order {}", payment.order_id),
        body: format!(
            "We received your payment of {} for order {}.\n",
            amount(payment.amount.amount, payment.amount.currency.as_str()),
            payment.order_id
        ),
    }
}

/// `3439, "EUR"` → `34.39 EUR` (two decimals, as the shop's currencies have).
pub fn amount(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", minor / 100, minor % 100)
}

/// The mailbox a `customer=` query names: a customer id as given, an
/// email address lowercased.
pub fn mailbox_key(customer: &str) -> String {
    let customer = customer.trim();
    if customer.contains('@') { customer.to_lowercase() } else { customer.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shop_shared::Address;
    use shop_shared::event::{EventLine, OrderTotals, Shortage};

    fn order(customer_id: Option<&str>) -> OrderPlaced {
        OrderPlaced {
            access_token_digest: None,
            order_id: "ord_1".into(),
            checkout_id: None,
            customer_id: customer_id.map(str::to_owned),
            email: " Erika@Example.com ".into(),
            reservation_id: "res_1".into(),
            payment_authorization_id: None,
            lines: vec![EventLine { sku: "MUG-001".into(), quantity: 2 }],
            totals: Some(OrderTotals { items: 2400, shipping: 490, tax: 549, grand_total: 3439, currency: "EUR".into() }),
            address: Address {
                name: "Erika".into(),
                line1: "Heidestraße 17".into(),
                line2: None,
                city: "Köln".into(),
                postal_code: "51147".into(),
                country: "DE".into(),
            },
            shipping: None,
        }
    }

    fn envelope(kind: &str, data: serde_json::Value) -> Envelope {
        Envelope::new(kind, "chk_1", &data).unwrap()
    }

    fn draft(envelope: &Envelope) -> Draft {
        match react(envelope).unwrap() {
            Reaction::Send(draft) => draft,
            Reaction::Nothing => panic!("no mail for {}", envelope.kind),
        }
    }

    #[test]
    fn a_placed_order_is_confirmed_to_the_customer_with_lines_and_total() {
        let d = draft(&envelope(event::ORDER_PLACED, serde_json::to_value(order(Some("cus_1"))).unwrap()));
        assert_eq!(d.subject, "Your order ord_1 is confirmed");
        assert_eq!(d.recipient, Some(Recipient { email: "erika@example.com".into(), customer_id: Some("cus_1".into()) }));
        assert!(d.body.contains("2 × MUG-001") && d.body.contains("Total: 34.39 EUR") && d.body.contains("Köln"), "{}", d.body);
        let guest = draft(&envelope(event::ORDER_PLACED, serde_json::to_value(order(None)).unwrap()));
        assert_eq!(guest.recipient.unwrap().customer_id, None);
    }

    #[test]
    fn a_shipment_mail_gives_the_tracking_number() {
        let d = draft(&envelope(
            event::FULFILLMENT_SHIPPED,
            json!({"order_id": "ord_1", "shipment_id": "shp_1", "tracking_number": "SP123SH", "carrier": "ShopPost",
                   "reservation_id": "res_1", "email": "e@x.org", "lines": [], "shipped_at": "2026-01-01T00:00:00.000Z"}),
        ));
        assert_eq!(d.subject, "Your order ord_1 has shipped");
        assert!(d.body.contains("SP123SH") && d.body.contains("ShopPost"));
        assert_eq!(d.recipient.unwrap().email, "e@x.org");
    }

    #[test]
    fn a_cancellation_says_why_and_may_leave_the_recipient_to_the_order() {
        let out = OrderCancelled {
            order_id: "ord_1".into(),
            reason: "out_of_stock".into(),
            customer_id: None,
            email: None,
            reservation_id: None,
            payment_authorization_id: None,
            shortages: vec![Shortage { sku: "MUG-005".into(), requested: 9, available: 5 }],
        };
        let d = draft(&envelope(event::ORDER_CANCELLED, serde_json::to_value(&out).unwrap()));
        assert_eq!(d.subject, "Your order ord_1 was cancelled");
        assert!(d.body.contains("MUG-005 (9 ordered, 5 available)"), "{}", d.body);
        assert_eq!(d.recipient, None, "no email in the event: the order's contact is used");
        let asked = draft(&envelope(event::ORDER_CANCELLED, json!({"order_id": "ord_2", "reason": "customer_request"})));
        assert!(asked.body.contains("you asked us to"));
    }

    #[test]
    fn a_capture_is_a_receipt_and_other_types_send_nothing() {
        let d = draft(&envelope(
            event::PAYMENT_CAPTURED,
            json!({"order_id": "ord_1", "authorization_id": "auth_1", "amount": {"amount": 3439, "currency": "EUR"}}),
        ));
        assert!(d.body.contains("34.39 EUR"));
        assert_eq!(react(&envelope("inventory.restocked", json!({}))).unwrap(), Reaction::Nothing);
        assert!(react(&envelope(event::ORDER_PLACED, json!({"order_id": 1}))).is_err());
    }

    #[test]
    fn amounts_and_mailbox_keys() {
        assert_eq!(amount(3439, "EUR"), "34.39 EUR");
        assert_eq!(amount(5, "EUR"), "0.05 EUR");
        assert_eq!(amount(-120, "USD"), "-1.20 USD");
        assert_eq!(mailbox_key(" Erika@Example.COM "), "erika@example.com");
        assert_eq!(mailbox_key("cus_AbC"), "cus_AbC");
    }
}
