//! Events between services (SPEC §5): the envelope every event travels in,
//! the event types with their `data`, and the Redis channel each type is
//! published on. The reliable part (store, publish, apply once, dead letters)
//! is in [`crate::outbox`] and [`crate::inbox`]; docs/events.md is the guide.
//!
//! Envelope: `{"id": "evt_…", "type": "order.placed", "version": 1,
//! "occurred_at": "2026-…Z", "correlation_id": "chk_…", "data": {…}}`.
//!
//! Channels: one Redis channel per event type, the type prefixed with
//! `shop.` (`shop.order.placed`). A Spin Redis trigger subscribes a component
//! to one channel, so with a channel per type each component is started only
//! for the events it consumes, and `spin.toml` lists who consumes what. The
//! prefix keeps the shop's channels apart on a Redis shared with other apps.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Address, Money, new_id, now_millis, rfc3339};

/// The checkout placed an order: fulfillment ships it, notifications confirm it.
pub const ORDER_PLACED: &str = "order.placed";
/// Fulfillment shipped an order: payment captures, orders updates the status,
/// notifications tell the customer.
pub const FULFILLMENT_SHIPPED: &str = "fulfillment.shipped";
/// Payment captured an authorization: notifications send the receipt.
pub const PAYMENT_CAPTURED: &str = "payment.captured";
/// An order was cancelled (by the customer, or by fulfillment when the goods
/// are gone): payment voids or refunds, inventory releases, fulfillment
/// cancels the shipment, notifications tell the customer.
pub const ORDER_CANCELLED: &str = "order.cancelled";

/// Every event type the shop publishes.
pub const EVENT_TYPES: [&str; 4] = [ORDER_PLACED, FULFILLMENT_SHIPPED, PAYMENT_CAPTURED, ORDER_CANCELLED];

/// The services that must apply an event of `event_type` before its
/// producer stops re-publishing it: the consumers column of docs/events.md,
/// which is also the `[[trigger.redis]]` list of spin.toml. Each name is the
/// one the service acknowledges with ([`crate::ack`]). A type nobody
/// consumes needs no acknowledgement.
pub fn consumers(event_type: &str) -> &'static [&'static str] {
    match event_type {
        ORDER_PLACED => &["fulfillment", "notifications"],
        FULFILLMENT_SHIPPED => &["payment", "orders", "notifications"],
        PAYMENT_CAPTURED => &["orders", "notifications"],
        ORDER_CANCELLED => &["payment", "inventory", "fulfillment", "orders", "notifications"],
        _ => &[],
    }
}

/// What every channel name starts with.
pub const CHANNEL_PREFIX: &str = "shop.";

/// The envelope version this code writes; consumers accept it and older.
pub const ENVELOPE_VERSION: u32 = 1;

/// The Spin variable holding the Redis address events are published to.
pub const REDIS_ADDRESS_VARIABLE: &str = "redis_address";

/// The longest event id accepted, in bytes.
pub const MAX_EVENT_ID_LEN: usize = 128;

/// The Redis channel events of `event_type` are published on:
/// `shop.order.placed` for `order.placed`.
pub fn channel(event_type: &str) -> String {
    format!("{CHANNEL_PREFIX}{event_type}")
}

/// The Redis address of the component's `redis_address` variable
/// (`variables = { redis_address = "{{ redis_address }}" }` in spin.toml).
pub fn redis_address() -> Result<String, String> {
    match spin_sdk::variables::get(REDIS_ADDRESS_VARIABLE) {
        Ok(address) if !address.trim().is_empty() => Ok(address.trim().to_owned()),
        Ok(_) => Err(format!("the variable `{REDIS_ADDRESS_VARIABLE}` is empty")),
        Err(e) => Err(format!("the variable `{REDIS_ADDRESS_VARIABLE}` is not available: {e}")),
    }
}

/// `address` fit for a log line or a stored error: a password in it
/// (`rediss://:secret@host`, `redis://user:secret@host`) shown as `***`.
pub fn redacted(address: &str) -> String {
    let Some((scheme, rest)) = address.split_once("://") else { return address.to_owned() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => address.to_owned(),
    }
}

/// An event as it travels: SPEC §5's envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique per event (`evt_…`); consumers apply an id once.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    /// RFC 3339 UTC, when the producer decided the event.
    pub occurred_at: String,
    /// Ties the events of one business transaction together (the checkout
    /// id for everything that follows a checkout).
    pub correlation_id: String,
    pub data: Value,
    /// The W3C trace context of the span that decided the event, so its
    /// consumers' spans join that trace (`shop_shared::trace`). Optional:
    /// an event without one starts a trace of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl Envelope {
    /// A new event with a fresh `evt_` id, occurring now.
    pub fn new(kind: &str, correlation_id: &str, data: &impl Serialize) -> Result<Envelope, String> {
        Envelope::with_id(new_id("evt"), kind, correlation_id, data)
    }

    /// An event whose id the producer derives itself, so that deciding it
    /// twice (a retry, a recovery) yields the same event, applied once.
    pub fn with_id(id: String, kind: &str, correlation_id: &str, data: &impl Serialize) -> Result<Envelope, String> {
        let data = serde_json::to_value(data).map_err(|e| format!("serializing the {kind} event: {e}"))?;
        Ok(Envelope {
            id,
            kind: kind.to_owned(),
            version: ENVELOPE_VERSION,
            occurred_at: rfc3339(now_millis()),
            correlation_id: correlation_id.to_owned(),
            data,
            traceparent: crate::trace::traceparent(),
        })
    }

    /// Reads a message: JSON of the envelope's shape, with a non-empty id
    /// and type and a version this code understands.
    pub fn parse(bytes: &[u8]) -> Result<Envelope, String> {
        let envelope: Envelope =
            serde_json::from_slice(bytes).map_err(|e| format!("the message is not an event envelope: {e}"))?;
        if envelope.id.trim().is_empty() || envelope.id.len() > MAX_EVENT_ID_LEN {
            return Err(format!("the event id must be 1 to {MAX_EVENT_ID_LEN} bytes long"));
        }
        if envelope.kind.trim().is_empty() {
            return Err("the event has no type".into());
        }
        if envelope.version == 0 || envelope.version > ENVELOPE_VERSION {
            return Err(format!(
                "the event {} has version {}; this service reads versions 1 to {ENVELOPE_VERSION}",
                envelope.id, envelope.version
            ));
        }
        Ok(envelope)
    }

    /// The envelope as JSON bytes, what goes on the channel.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The envelope as JSON text, what the outbox and dead letters store.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The channel this event is published on.
    pub fn channel(&self) -> String {
        channel(&self.kind)
    }

    /// `data` read as the event type's struct, or why it cannot be.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, String> {
        T::deserialize(&self.data).map_err(|e| format!("the {} event {} has invalid data: {e}", self.kind, self.id))
    }
}

// ---- the data of each event type ------------------------------------------------
//
// Events carry what their consumers need (order, customer, email, payment
// authorization), so no consumer has to ask the producer's service back.

/// A line of an order: a sku and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLine {
    pub sku: String,
    pub quantity: u32,
}

/// What an order costs, in minor units of `currency` (the checkout's totals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTotals {
    pub items: i64,
    pub shipping: i64,
    pub tax: i64,
    pub grand_total: i64,
    pub currency: String,
}

/// `order.placed`, produced by checkout (the saga's last step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_id: Option<String>,
    /// `None` for a guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    pub email: String,
    /// The inventory reservation holding the lines.
    pub reservation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_authorization_id: Option<String>,
    pub lines: Vec<EventLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<OrderTotals>,
    pub address: Address,
    /// `standard` or `express`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<String>,
    /// A guest's order: the SHA-256 of its access token, so that the
    /// services keeping data about the order (fulfillment's shipment) let
    /// the token's holder see it too. Never the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_digest: Option<String>,
}

/// `fulfillment.shipped`, produced by fulfillment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FulfillmentShipped {
    pub order_id: String,
    pub shipment_id: String,
    pub tracking_number: String,
    pub carrier: String,
    /// The reservation committed for it (a new one if the first expired).
    pub reservation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    pub email: String,
    /// For payment to capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_authorization_id: Option<String>,
    pub lines: Vec<EventLine>,
    pub shipped_at: String,
}

/// Why an order was cancelled.
pub mod cancel_reason {
    /// Fulfillment found the reservation expired and the goods gone.
    pub const OUT_OF_STOCK: &str = "out_of_stock";
    /// The customer (or an operator) asked.
    pub const CUSTOMER_REQUEST: &str = "customer_request";
    /// The payment could not be captured.
    pub const PAYMENT_FAILED: &str = "payment_failed";
}

/// A sku fulfillment could not get enough of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortage {
    pub sku: String,
    pub requested: u64,
    pub available: u64,
}

/// `order.cancelled`, produced by orders (a cancel request) and by
/// fulfillment (out of stock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: String,
    /// One of [`cancel_reason`].
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// For inventory to release (releasing an expired or released one is a no-op).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<String>,
    /// For payment to void (or refund, if captured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_authorization_id: Option<String>,
    /// With reason `out_of_stock`: what was missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shortages: Vec<Shortage>,
}

/// `payment.captured`, produced by payment after `fulfillment.shipped`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    pub order_id: String,
    pub authorization_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_id: Option<String>,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn placed() -> OrderPlaced {
        OrderPlaced {
            access_token_digest: None,
            order_id: "ord_1".into(),
            checkout_id: Some("chk_1".into()),
            customer_id: None,
            email: "erika@example.com".into(),
            reservation_id: "res_1".into(),
            payment_authorization_id: Some("auth_1".into()),
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
            shipping: Some("standard".into()),
        }
    }

    #[test]
    fn the_envelope_has_the_six_fields_of_the_spec() {
        let envelope = Envelope::new(ORDER_PLACED, "chk_1", &placed()).unwrap();
        let value = serde_json::to_value(&envelope).unwrap();
        let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["correlation_id", "data", "id", "occurred_at", "type", "version"]);
        assert_eq!(value["type"], "order.placed");
        assert_eq!(value["version"], 1);
        assert_eq!(value["correlation_id"], "chk_1");
        assert!(value["id"].as_str().unwrap().starts_with("evt_"));
        let occurred_at = value["occurred_at"].as_str().unwrap();
        assert!(occurred_at.len() == 24 && occurred_at.ends_with('Z') && occurred_at.contains('T'), "{occurred_at}");
        assert_eq!(value["data"]["lines"], json!([{"sku": "MUG-001", "quantity": 2}]));
        assert_eq!(value["data"]["address"]["country"], "DE");
        assert!(value["data"].get("customer_id").is_none(), "a guest has no customer_id field");
    }

    #[test]
    fn an_envelope_survives_the_wire_and_its_data_reads_back() {
        let envelope = Envelope::with_id("evt_fixed".into(), ORDER_PLACED, "chk_1", &placed()).unwrap();
        let back = Envelope::parse(&envelope.to_bytes()).unwrap();
        assert_eq!(back, envelope);
        assert_eq!(back.data_as::<OrderPlaced>().unwrap(), placed());
        assert_eq!(Envelope::parse(envelope.to_json().as_bytes()).unwrap().id, "evt_fixed");
    }

    #[test]
    fn ids_are_fresh_per_event() {
        let a = Envelope::new(ORDER_PLACED, "c", &json!({})).unwrap();
        let b = Envelope::new(ORDER_PLACED, "c", &json!({})).unwrap();
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn malformed_messages_say_why() {
        let ok = json!({"id": "evt_1", "type": "order.placed", "version": 1,
                        "occurred_at": "2026-01-01T00:00:00.000Z", "correlation_id": "c", "data": {}});
        assert!(Envelope::parse(ok.to_string().as_bytes()).is_ok());
        let with = |field: &str, value: Value| {
            let mut v = ok.clone();
            v[field] = value;
            Envelope::parse(v.to_string().as_bytes()).unwrap_err()
        };
        assert!(with("id", json!("")).contains("id"));
        assert!(with("id", json!("x".repeat(129))).contains("id"));
        assert!(with("type", json!(" ")).contains("type"));
        assert!(with("version", json!(2)).contains("version"));
        assert!(with("version", json!(0)).contains("version"));
        assert!(Envelope::parse(b"hello").unwrap_err().contains("not an event envelope"));
        assert!(Envelope::parse(b"{\"id\": \"evt_1\"}").unwrap_err().contains("not an event envelope"));
    }

    #[test]
    fn data_of_the_wrong_shape_names_the_event() {
        let envelope = Envelope::with_id("evt_9".into(), ORDER_PLACED, "c", &json!({"order_id": 5})).unwrap();
        let error = envelope.data_as::<OrderPlaced>().unwrap_err();
        assert!(error.contains("order.placed") && error.contains("evt_9"), "{error}");
    }

    #[test]
    fn every_event_type_has_its_own_prefixed_channel() {
        assert_eq!(channel(ORDER_PLACED), "shop.order.placed");
        assert_eq!(channel(FULFILLMENT_SHIPPED), "shop.fulfillment.shipped");
        assert_eq!(channel(PAYMENT_CAPTURED), "shop.payment.captured");
        assert_eq!(channel(ORDER_CANCELLED), "shop.order.cancelled");
        let mut channels: Vec<String> = EVENT_TYPES.iter().map(|t| channel(t)).collect();
        channels.sort();
        channels.dedup();
        assert_eq!(channels.len(), EVENT_TYPES.len());
        let envelope = Envelope::new(ORDER_CANCELLED, "c", &json!({})).unwrap();
        assert_eq!(envelope.channel(), "shop.order.cancelled");
    }

    #[test]
    fn optional_fields_may_be_absent_from_what_producers_send() {
        let cancelled: OrderCancelled =
            serde_json::from_value(json!({"order_id": "ord_1", "reason": "customer_request"})).unwrap();
        assert_eq!((cancelled.email, cancelled.shortages.len()), (None, 0));
        let value = serde_json::to_value(OrderCancelled {
            order_id: "ord_1".into(),
            reason: cancel_reason::OUT_OF_STOCK.into(),
            customer_id: None,
            email: Some("e@x.org".into()),
            reservation_id: None,
            payment_authorization_id: Some("auth_1".into()),
            shortages: vec![Shortage { sku: "MUG-005".into(), requested: 9, available: 5 }],
        })
        .unwrap();
        assert_eq!(
            value,
            json!({"order_id": "ord_1", "reason": "out_of_stock", "email": "e@x.org",
                   "payment_authorization_id": "auth_1",
                   "shortages": [{"sku": "MUG-005", "requested": 9, "available": 5}]})
        );
    }

    #[test]
    fn addresses_lose_their_password_in_messages() {
        assert_eq!(redacted("rediss://:s3cret@cache.example:6380"), "rediss://:***@cache.example:6380");
        assert_eq!(redacted("redis://app:s3cret@10.0.0.1:6379/2"), "redis://app:***@10.0.0.1:6379/2");
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redacted("not an address"), "not an address");
    }
}
