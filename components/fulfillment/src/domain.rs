//! Shipments and the rules for them; no I/O.
//!
//! A shipment is created for a placed order, waiting (`pending`) with the
//! order's reservation still held, not committed. It ships when the
//! warehouse says so — at once with `auto_ship` (the default), otherwise on
//! `POST /api/fulfillment/shipments/{order_id}/ship` — and only then is its
//! reservation committed (or, if it expired, the goods reserved again and
//! committed), so a shipment cancelled while it waits never took stock: the
//! `order.cancelled` that cancels it makes the inventory release the
//! reservation. Goods that are gone by then cancel the shipment as out of
//! stock. A cancellation that arrives before the order itself leaves a
//! `cancelled` shipment behind, so the late order is not shipped.

use serde::Serialize;
use shop_shared::event::{EventLine, FulfillmentShipped, OrderCancelled, OrderPlaced, Shortage, cancel_reason};
use shop_shared::{Address, rfc3339, sha256_hex};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Shipped,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Shipped => "shipped",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "pending" => Some(Status::Pending),
            "shipped" => Some(Status::Shipped),
            "cancelled" => Some(Status::Cancelled),
            _ => None,
        }
    }
}

/// A shipment, one per order. `id`, `tracking_number` and `carrier` are
/// empty for an order cancelled before fulfillment saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shipment {
    pub id: String,
    pub order_id: String,
    pub status: Status,
    pub carrier: String,
    pub tracking_number: String,
    /// The reservation holding its goods: the order's while it waits; once
    /// shipped, the one committed (the order's, or the one made again when
    /// that had expired).
    pub reservation_id: String,
    pub lines: Vec<EventLine>,
    pub address: Option<Address>,
    pub email: Option<String>,
    pub customer_id: Option<String>,
    pub payment_authorization_id: Option<String>,
    pub correlation_id: String,
    #[serde(serialize_with = "as_rfc3339")]
    pub created_at: i64,
    #[serde(serialize_with = "as_opt_rfc3339")]
    pub shipped_at: Option<i64>,
    #[serde(serialize_with = "as_opt_rfc3339")]
    pub cancelled_at: Option<i64>,
    pub cancel_reason: Option<String>,
}

fn as_rfc3339<S: serde::Serializer>(millis: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*millis))
}

fn as_opt_rfc3339<S: serde::Serializer>(millis: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match millis {
        Some(millis) => s.serialize_str(&rfc3339(*millis)),
        None => s.serialize_none(),
    }
}

/// What to do with an `order.placed`, given the order's shipment so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnPlaced {
    /// Commit the reservation and ship.
    Fulfill,
    /// Already shipped or waiting (the same order in another event), or
    /// cancelled before it arrived: nothing to do.
    Ignore,
}

pub fn on_placed(existing: Option<&Shipment>) -> OnPlaced {
    match existing {
        None => OnPlaced::Fulfill,
        Some(_) => OnPlaced::Ignore,
    }
}

/// What to do with an `order.cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCancelled {
    /// Cancel the waiting shipment.
    Cancel,
    /// The order is not known yet: remember it is cancelled.
    RecordCancelled,
    /// Too late (it left) or already done.
    Ignore,
}

pub fn on_cancelled(existing: Option<&Shipment>) -> OnCancelled {
    match existing.map(|s| s.status) {
        None => OnCancelled::RecordCancelled,
        Some(Status::Pending) => OnCancelled::Cancel,
        Some(Status::Shipped | Status::Cancelled) => OnCancelled::Ignore,
    }
}

/// The carrier for a shipping speed.
pub fn carrier(speed: Option<&str>) -> &'static str {
    match speed {
        Some("express") => "ShopExpress",
        _ => "ShopPost",
    }
}

/// A tracking number derived from the shipment id: `SP` + 12 digits + `SH`,
/// the shape of a postal parcel number.
pub fn tracking_number(shipment_id: &str) -> String {
    let digest = sha256_hex(shipment_id.as_bytes());
    let digits: String = digest
        .bytes()
        .map(|b| char::from(b'0' + (b % 10)))
        .take(12)
        .collect();
    format!("SP{digits}SH")
}

/// The id of the reservation fulfillment makes when the order's own has
/// expired: derived from the order, so a retry reserves nothing twice.
pub fn rereservation_id(order_id: &str) -> String {
    format!("ful_{}", &sha256_hex(order_id.as_bytes())[..32])
}

/// A new shipment for `placed`, waiting; its reservation is the order's,
/// held until the shipment ships ([`ship`]).
pub fn new_shipment(id: String, placed: &OrderPlaced, correlation_id: &str, now: i64) -> Shipment {
    Shipment {
        tracking_number: tracking_number(&id),
        id,
        order_id: placed.order_id.clone(),
        status: Status::Pending,
        carrier: carrier(placed.shipping.as_deref()).to_owned(),
        reservation_id: placed.reservation_id.clone(),
        lines: placed.lines.clone(),
        address: Some(placed.address.clone()),
        email: Some(placed.email.clone()),
        customer_id: placed.customer_id.clone(),
        payment_authorization_id: placed.payment_authorization_id.clone(),
        correlation_id: correlation_id.to_owned(),
        created_at: now,
        shipped_at: None,
        cancelled_at: None,
        cancel_reason: None,
    }
}

/// Cancels a waiting shipment (a cancelled order, goods out of stock).
pub fn cancel(shipment: &mut Shipment, reason: &str, now: i64) {
    shipment.status = Status::Cancelled;
    shipment.cancelled_at = Some(now);
    shipment.cancel_reason = Some(reason.to_owned());
}

/// The record of an order cancelled before it could ship (or before it was
/// seen at all).
pub fn cancelled_shipment(order_id: &str, reason: &str, correlation_id: &str, now: i64) -> Shipment {
    Shipment {
        id: String::new(),
        order_id: order_id.to_owned(),
        status: Status::Cancelled,
        carrier: String::new(),
        tracking_number: String::new(),
        reservation_id: String::new(),
        lines: Vec::new(),
        address: None,
        email: None,
        customer_id: None,
        payment_authorization_id: None,
        correlation_id: correlation_id.to_owned(),
        created_at: now,
        shipped_at: None,
        cancelled_at: Some(now),
        cancel_reason: Some(reason.to_owned()),
    }
}

/// Why marking a shipment shipped is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipError {
    Cancelled,
}

/// The warehouse ships a waiting shipment; shipping again is a retry.
pub fn ship(shipment: &mut Shipment, now: i64) -> Result<bool, ShipError> {
    match shipment.status {
        Status::Pending => {
            shipment.status = Status::Shipped;
            shipment.shipped_at = Some(now);
            Ok(true)
        }
        Status::Shipped => Ok(false),
        Status::Cancelled => Err(ShipError::Cancelled),
    }
}

/// The `fulfillment.shipped` data of a shipped shipment.
pub fn shipped_event(shipment: &Shipment) -> FulfillmentShipped {
    FulfillmentShipped {
        order_id: shipment.order_id.clone(),
        shipment_id: shipment.id.clone(),
        tracking_number: shipment.tracking_number.clone(),
        carrier: shipment.carrier.clone(),
        reservation_id: shipment.reservation_id.clone(),
        customer_id: shipment.customer_id.clone(),
        email: shipment.email.clone().unwrap_or_default(),
        payment_authorization_id: shipment.payment_authorization_id.clone(),
        lines: shipment.lines.clone(),
        shipped_at: rfc3339(shipment.shipped_at.unwrap_or(shipment.created_at)),
    }
}

/// The `order.cancelled` fulfillment publishes when the goods of a waiting
/// shipment are gone; `reservation_id` is the order's (expired: releasing
/// it changes nothing).
pub fn out_of_stock_event(shipment: &Shipment, shortages: Vec<Shortage>) -> OrderCancelled {
    OrderCancelled {
        order_id: shipment.order_id.clone(),
        reason: cancel_reason::OUT_OF_STOCK.to_owned(),
        customer_id: shipment.customer_id.clone(),
        email: shipment.email.clone(),
        reservation_id: Some(shipment.reservation_id.clone()),
        payment_authorization_id: shipment.payment_authorization_id.clone(),
        shortages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(speed: Option<&str>) -> OrderPlaced {
        OrderPlaced {
            access_token_digest: None,
            order_id: "ord_1".into(),
            checkout_id: None,
            customer_id: Some("cus_1".into()),
            email: "erika@example.com".into(),
            reservation_id: "res_1".into(),
            payment_authorization_id: Some("auth_1".into()),
            lines: vec![EventLine { sku: "MUG-001".into(), quantity: 2 }],
            totals: None,
            address: Address {
                name: "Erika".into(),
                line1: "Heidestraße 17".into(),
                line2: None,
                city: "Köln".into(),
                postal_code: "51147".into(),
                country: "DE".into(),
            },
            shipping: speed.map(str::to_owned),
        }
    }

    #[test]
    fn a_new_shipment_waits_with_the_orders_reservation_then_ships_with_a_tracking_number() {
        let mut s = new_shipment("shp_1".into(), &placed(Some("express")), "chk_1", 1000);
        assert_eq!((s.status, s.shipped_at, s.carrier.as_str()), (Status::Pending, None, "ShopExpress"));
        assert_eq!(s.reservation_id, "res_1", "held, not committed yet");
        assert_eq!(s.tracking_number, tracking_number("shp_1"));
        assert_eq!(ship(&mut s, 1000), Ok(true));
        let event = shipped_event(&s);
        assert_eq!((event.order_id.as_str(), event.email.as_str()), ("ord_1", "erika@example.com"));
        assert_eq!(event.payment_authorization_id.as_deref(), Some("auth_1"));
        assert_eq!(event.shipped_at, "1970-01-01T00:00:01.000Z");
    }

    #[test]
    fn a_waiting_shipment_ships_once_and_never_after_cancel() {
        let mut s = new_shipment("shp_1".into(), &placed(None), "c", 1000);
        assert_eq!((s.status, s.carrier.as_str()), (Status::Pending, "ShopPost"));
        assert_eq!(on_cancelled(Some(&s)), OnCancelled::Cancel);
        assert_eq!(ship(&mut s, 2000), Ok(true));
        assert_eq!((s.status, s.shipped_at), (Status::Shipped, Some(2000)));
        assert_eq!(ship(&mut s, 3000), Ok(false), "shipping again is a retry");
        assert_eq!(s.shipped_at, Some(2000));
        assert_eq!(on_cancelled(Some(&s)), OnCancelled::Ignore, "too late to cancel");
        let mut cancelled = cancelled_shipment("ord_2", "customer_request", "c", 5);
        assert_eq!(ship(&mut cancelled, 6), Err(ShipError::Cancelled));
        let mut waiting = new_shipment("shp_3".into(), &placed(None), "c", 1000);
        cancel(&mut waiting, "customer_request", 1500);
        assert_eq!((waiting.status, waiting.cancelled_at), (Status::Cancelled, Some(1500)));
        assert_eq!(ship(&mut waiting, 1600), Err(ShipError::Cancelled));
    }

    #[test]
    fn a_cancel_before_the_order_keeps_the_order_from_shipping() {
        assert_eq!(on_cancelled(None), OnCancelled::RecordCancelled);
        let tombstone = cancelled_shipment("ord_1", "customer_request", "c", 5);
        assert_eq!(on_placed(Some(&tombstone)), OnPlaced::Ignore);
        assert_eq!(on_cancelled(Some(&tombstone)), OnCancelled::Ignore);
        assert_eq!(on_placed(None), OnPlaced::Fulfill);
    }

    #[test]
    fn tracking_numbers_and_rereservation_ids_are_stable_and_well_formed() {
        let t = tracking_number("shp_abc");
        assert_eq!(t, tracking_number("shp_abc"));
        assert_ne!(t, tracking_number("shp_abd"));
        assert!(t.len() == 16 && t.starts_with("SP") && t.ends_with("SH") && t[2..14].bytes().all(|b| b.is_ascii_digit()), "{t}");
        let r = rereservation_id("ord_0123456789abcdef0123456789abcdef");
        assert_eq!(r, rereservation_id("ord_0123456789abcdef0123456789abcdef"));
        assert!(r.len() <= 64 && r.starts_with("ful_"), "{r}");
        assert!(r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    }

    #[test]
    fn out_of_stock_cancels_with_what_payment_and_inventory_need() {
        let shipment = new_shipment("shp_1".into(), &placed(None), "c", 1000);
        let event = out_of_stock_event(&shipment, vec![Shortage { sku: "MUG-001".into(), requested: 2, available: 0 }]);
        assert_eq!(event.reason, "out_of_stock");
        assert_eq!(event.payment_authorization_id.as_deref(), Some("auth_1"));
        assert_eq!(event.reservation_id.as_deref(), Some("res_1"));
        assert_eq!(event.email.as_deref(), Some("erika@example.com"));
        assert_eq!(event.customer_id.as_deref(), Some("cus_1"));
        assert_eq!(event.shortages.len(), 1);
    }
}
