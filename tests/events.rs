//! Events (SPEC §5) through the real host and the real .wasm files:
//! fulfillment and notifications react to `order.placed`, fulfillment's
//! outbox publishes `fulfillment.shipped`, consumers apply an event once,
//! failures become dead letters replayed through the admin API, and the
//! outbox is flushed after a Redis outage. On the embedded broker and on a
//! real `redis-server`.

use std::time::Duration;

use shop_tests::*;

const WAIT: Duration = Duration::from_secs(20);

/// Where events travel in a test.
enum Broker {
    /// shop-host's in-process broker (the manifest's default address).
    Embedded,
    /// A real `redis-server`, the address given as `redis_address`.
    Real(RedisServer),
}

impl Broker {
    fn address(&self) -> String {
        match self {
            Broker::Embedded => "redis://127.0.0.1:6379".into(),
            Broker::Real(redis) => redis.url(),
        }
    }
}

/// The repository's spin.toml (sources made absolute), plus the probe on
/// `/test-probe/...`, allowed to publish to the app's Redis.
fn manifest(dir: &TempDir) -> std::path::PathBuf {
    let root = root();
    let shop = std::fs::read_to_string(root.join("spin.toml"))
        .unwrap()
        .replace("source = \"target/", &format!("source = \"{}/target/", root.display()));
    let text = format!(
        "{shop}\n[[trigger.http]]\nroute = \"/test-probe/...\"\ncomponent = \"test-probe\"\n\n\
         [component.test-probe]\nsource = \"{{probe}}\"\nallowed_outbound_hosts = [\"{{{{ redis_address }}}}\"]\n"
    );
    write_manifest(dir.path(), &text)
}

struct Shop {
    host: Host,
    broker: Broker,
    _dir: TempDir,
}

fn start(broker: Broker, variables: &[(&str, &str)]) -> Shop {
    let dir = TempDir::new("events");
    let mut config = HostConfig::manifest(manifest(&dir)).variable("admin_token", ADMIN_TOKEN);
    if let Broker::Real(redis) = &broker {
        config = config.variable("redis_address", &redis.url());
    }
    for (name, value) in variables {
        config = config.variable(name, value);
    }
    let shop = Shop { host: config.start(), broker, _dir: dir };
    if let Broker::Real(redis) = &shop.broker {
        for channel in ["shop.order.placed", "shop.order.cancelled", "shop.fulfillment.shipped"] {
            wait_subscribed(redis, channel);
        }
    }
    shop
}

/// Until the host's subscription is registered, a message would be lost.
fn wait_subscribed(redis: &RedisServer, channel: &str) {
    let subscribed = eventually(Duration::from_secs(15), || {
        let reply = redis.command(&["PUBSUB", "NUMSUB", channel])?;
        (!reply.ends_with(":0\r\n")).then_some(())
    });
    assert!(subscribed.is_some(), "the host never subscribed to {channel}");
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

impl Shop {
    /// Publishes `message` on `channel` from inside the app (the probe's
    /// outbound Redis), on whichever broker the app uses.
    fn publish(&self, channel: &str, message: &str) {
        let r = self.host.get(&format!(
            "/test-probe/?do=publish&address={}&channel={channel}&payload={}",
            percent_encode(&self.broker.address()),
            percent_encode(message)
        ));
        assert_eq!(r.status, 200, "publishing on {channel}: {}", r.text);
    }

    fn admin(&self, method: &str, path: &str) -> Reply {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        self.host.request(method, path, &[("authorization", &auth), ("content-type", "application/json")], Some(b"{}"))
    }

    fn stock(&self, sku: &str, on_hand: u32) {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let body = json!({ "on_hand": on_hand }).to_string();
        let r = self.host.request(
            "PUT",
            &format!("/api/inventory/{sku}"),
            &[("authorization", &auth), ("content-type", "application/json")],
            Some(body.as_bytes()),
        );
        assert!(r.status == 200 || r.status == 201, "{}", r.text);
    }

    /// `(on_hand, reserved)` of a sku.
    fn level(&self, sku: &str) -> (u64, u64) {
        let r = self.host.get(&format!("/api/inventory/{sku}"));
        assert_eq!(r.status, 200, "{}", r.text);
        let l = r.json();
        (l["on_hand"].as_u64().unwrap(), l["reserved"].as_u64().unwrap())
    }

    fn reserve(&self, id: &str, sku: &str, quantity: u32, ttl_seconds: u32) {
        let r = self.host.post(
            "/api/inventory/reservations",
            &json!({ "id": id, "ttl_seconds": ttl_seconds, "lines": [{ "sku": sku, "quantity": quantity }] }),
        );
        assert_eq!(r.status, 201, "{}", r.text);
    }

    fn shipment(&self, order_id: &str) -> Option<Value> {
        let r = self.host.get(&format!("/api/fulfillment/shipments/{order_id}"));
        match r.status {
            200 => Some(r.json()),
            404 => {
                assert_eq!(r.error_code(), "shipment_not_found");
                None
            }
            _ => panic!("{}", r.text),
        }
    }

    fn wait_shipment(&self, order_id: &str, status: &str) -> Value {
        eventually(WAIT, || self.shipment(order_id).filter(|s| s["status"] == status)).unwrap_or_else(|| {
            panic!("no {status} shipment for {order_id}: {:?}\n{}", self.shipment(order_id), self.host.logs())
        })
    }

    fn mailbox(&self, customer: &str) -> Vec<Value> {
        let r = self.host.get(&format!("/api/notifications?customer={}", percent_encode(customer)));
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["messages"].as_array().unwrap().clone()
    }

    /// Waits until the mailbox holds a message whose subject contains `subject`.
    fn wait_mail(&self, customer: &str, subject: &str) -> Value {
        eventually(WAIT, || {
            self.mailbox(customer).into_iter().find(|m| m["subject"].as_str().unwrap_or_default().contains(subject))
        })
        .unwrap_or_else(|| panic!("no mail {subject:?} for {customer}: {:?}\n{}", self.mailbox(customer), self.host.logs()))
    }

    /// How many deliveries of `channel` to `component` the host has logged.
    fn deliveries(&self, channel: &str, component: &str) -> usize {
        self.host.logs().matches(&format!("REDIS {channel} -> {component} ")).count()
    }

    fn wait_deliveries(&self, channel: &str, component: &str, n: usize) {
        let done = eventually(WAIT, || (self.deliveries(channel, component) >= n).then_some(()));
        assert!(done.is_some(), "{channel} reached {component} fewer than {n} times:\n{}", self.host.logs());
    }

    fn dead_letters(&self, status: &str) -> Vec<Value> {
        let r = self.admin("GET", &format!("/api/admin/dead-letters?status={status}"));
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["complete"], true, "{}", r.text);
        r.json()["dead_letters"].as_array().unwrap().clone()
    }
}

/// An `order.placed` envelope as checkout publishes it.
fn order_placed(event_id: &str, order_id: &str, reservation_id: &str, sku: &str, quantity: u32, email: &str) -> Value {
    json!({
        "id": event_id,
        "type": "order.placed",
        "version": 1,
        "occurred_at": "2026-03-01T10:00:00.000Z",
        "correlation_id": format!("chk_{order_id}"),
        "data": {
            "order_id": order_id,
            "checkout_id": format!("chk_{order_id}"),
            "email": email,
            "reservation_id": reservation_id,
            "payment_authorization_id": format!("auth_{order_id}"),
            "lines": [{ "sku": sku, "quantity": quantity }],
            "totals": { "items": 2400, "shipping": 490, "tax": 549, "grand_total": 3439, "currency": "EUR" },
            "address": { "name": "Erika Mustermann", "line1": "Heidestraße 17", "city": "Köln",
                         "postal_code": "51147", "country": "DE" },
            "shipping": "standard"
        }
    })
}

fn order_cancelled(event_id: &str, order_id: &str, email: &str) -> Value {
    json!({
        "id": event_id, "type": "order.cancelled", "version": 1,
        "occurred_at": "2026-03-01T10:05:00.000Z", "correlation_id": format!("chk_{order_id}"),
        "data": { "order_id": order_id, "reason": "customer_request", "email": email }
    })
}

/// Reserve, publish `order.placed`, and check everything that must follow.
fn placed_order_is_committed_shipped_and_mailed(shop: &Shop, publish: impl Fn(&str)) {
    shop.stock("EVT-SHIP-1", 10);
    shop.reserve("res-ship-1", "EVT-SHIP-1", 3, 600);
    assert_eq!(shop.level("EVT-SHIP-1"), (10, 3));

    publish(&order_placed("evt_ship_1", "ord_ship_1", "res-ship-1", "EVT-SHIP-1", 3, "Erika@Example.com").to_string());

    let shipment = shop.wait_shipment("ord_ship_1", "shipped");
    assert_eq!(shipment["reservation_id"], "res-ship-1");
    assert_eq!(shipment["carrier"], "ShopPost");
    let tracking = shipment["tracking_number"].as_str().unwrap().to_owned();
    assert!(tracking.starts_with("SP") && tracking.len() == 16, "{tracking}");
    assert_eq!(shop.level("EVT-SHIP-1"), (7, 0), "the committed reservation left the warehouse");

    // fulfillment.shipped went out through the outbox and reached notifications.
    let shipped = shop.wait_mail("erika@example.com", "has shipped");
    assert!(shipped["body"].as_str().unwrap().contains(&tracking), "{shipped}");
    assert_eq!(shipped["to"], "erika@example.com");
    let mails = shop.mailbox("erika@example.com");
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert_eq!(mails[0]["type"], "fulfillment.shipped", "newest first");
    assert_eq!(mails[1]["type"], "order.placed");
    assert_eq!(mails[1]["event_id"], "evt_ship_1");
    assert_eq!(mails[1]["subject"], "Your order ord_ship_1 is confirmed");
    assert!(mails[1]["body"].as_str().unwrap().contains("Total: 34.39 EUR"));
    for field in ["id", "event_id", "type", "to", "subject", "body", "sent_at"] {
        assert!(mails[0][field].is_string(), "{field} in {}", mails[0]);
    }
    assert!(shop.dead_letters("pending").is_empty());
}

#[test]
fn a_placed_order_is_committed_shipped_and_mailed_on_the_embedded_broker() {
    let shop = start(Broker::Embedded, &[]);
    placed_order_is_committed_shipped_and_mailed(&shop, |m| shop.publish("shop.order.placed", m));
}

#[test]
fn a_placed_order_published_to_a_real_redis_by_any_client_is_committed_shipped_and_mailed() {
    let shop = start(Broker::Real(RedisServer::start()), &[]);
    let Broker::Real(redis) = &shop.broker else { unreachable!() };
    placed_order_is_committed_shipped_and_mailed(&shop, |m| {
        let reply = redis.command(&["PUBLISH", "shop.order.placed", m]).unwrap();
        assert_eq!(reply, ":2\r\n", "fulfillment and notifications both listen");
    });
}

fn the_same_event_twice_is_applied_once(shop: &Shop) {
    shop.stock("EVT-TWICE-1", 5);
    shop.reserve("res-twice-1", "EVT-TWICE-1", 2, 600);
    let event = order_placed("evt_twice_1", "ord_twice_1", "res-twice-1", "EVT-TWICE-1", 2, "twice@example.com").to_string();
    shop.publish("shop.order.placed", &event);
    let first = shop.wait_shipment("ord_twice_1", "shipped");
    shop.wait_mail("twice@example.com", "has shipped");

    shop.publish("shop.order.placed", &event);
    shop.publish("shop.order.placed", &event);
    shop.wait_deliveries("shop.order.placed", "fulfillment", 3);
    shop.wait_deliveries("shop.order.placed", "notifications", 3);

    let again = shop.shipment("ord_twice_1").unwrap();
    assert_eq!(again["id"], first["id"], "one shipment");
    assert_eq!(again["tracking_number"], first["tracking_number"]);
    assert_eq!(shop.level("EVT-TWICE-1"), (3, 0), "stock taken once");
    let mails = shop.mailbox("twice@example.com");
    let confirmations = mails.iter().filter(|m| m["type"] == "order.placed").count();
    let shipped = mails.iter().filter(|m| m["type"] == "fulfillment.shipped").count();
    assert_eq!((confirmations, shipped), (1, 1), "{mails:?}");
    assert!(shop.dead_letters("pending").is_empty());
}

#[test]
fn the_same_event_delivered_three_times_is_applied_once_on_the_embedded_broker() {
    the_same_event_twice_is_applied_once(&start(Broker::Embedded, &[]));
}

#[test]
fn the_same_event_delivered_three_times_is_applied_once_on_a_real_redis() {
    the_same_event_twice_is_applied_once(&start(Broker::Real(RedisServer::start()), &[]));
}

#[test]
fn a_reservation_that_expired_before_fulfillment_is_reserved_again_and_shipped() {
    let shop = start(Broker::Embedded, &[]);
    shop.stock("EVT-LATE-1", 4);
    shop.reserve("res-late-1", "EVT-LATE-1", 3, 1);
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(shop.level("EVT-LATE-1"), (4, 0), "the reservation expired");

    shop.publish(
        "shop.order.placed",
        &order_placed("evt_late_1", "ord_late_1", "res-late-1", "EVT-LATE-1", 3, "late@example.com").to_string(),
    );
    let shipment = shop.wait_shipment("ord_late_1", "shipped");
    let again = shipment["reservation_id"].as_str().unwrap();
    assert!(again.starts_with("ful_"), "a new reservation: {shipment}");
    assert_eq!(shop.level("EVT-LATE-1"), (1, 0), "the new reservation was committed");
    let r = shop.host.get(&format!("/api/inventory/reservations/{again}"));
    assert_eq!(r.json()["status"], "committed", "{}", r.text);
    shop.wait_mail("late@example.com", "has shipped");
}

#[test]
fn an_expired_reservation_with_the_stock_gone_cancels_the_order_as_out_of_stock() {
    let shop = start(Broker::Embedded, &[]);
    shop.stock("EVT-GONE-1", 2);
    shop.reserve("res-gone-1", "EVT-GONE-1", 2, 1);
    std::thread::sleep(Duration::from_millis(1300));
    // Someone else takes the stock meanwhile.
    shop.reserve("res-gone-other", "EVT-GONE-1", 2, 600);

    shop.publish(
        "shop.order.placed",
        &order_placed("evt_gone_1", "ord_gone_1", "res-gone-1", "EVT-GONE-1", 2, "gone@example.com").to_string(),
    );
    let shipment = shop.wait_shipment("ord_gone_1", "cancelled");
    assert_eq!(shipment["cancel_reason"], "out_of_stock");
    assert_eq!(shop.level("EVT-GONE-1"), (2, 2), "nothing committed; the other hold stands");

    // order.cancelled went out through fulfillment's outbox.
    let mail = shop.wait_mail("gone@example.com", "was cancelled");
    assert_eq!(mail["type"], "order.cancelled");
    let body = mail["body"].as_str().unwrap();
    assert!(body.contains("EVT-GONE-1 (2 ordered, 0 available)"), "{body}");
    // Fulfillment hears its own order.cancelled too, and changes nothing.
    shop.wait_deliveries("shop.order.cancelled", "fulfillment", 1);
    assert_eq!(shop.shipment("ord_gone_1").unwrap()["cancel_reason"], "out_of_stock");
    assert!(shop.dead_letters("pending").is_empty());
}

#[test]
fn a_cancelled_order_cancels_a_shipment_not_yet_shipped_and_one_cancelled_early_never_ships() {
    let shop = start(Broker::Embedded, &[("fulfillment_auto_ship", "false")]);
    shop.stock("EVT-CANCEL-1", 5);
    shop.reserve("res-cancel-1", "EVT-CANCEL-1", 1, 600);
    shop.publish(
        "shop.order.placed",
        &order_placed("evt_cancel_1", "ord_cancel_1", "res-cancel-1", "EVT-CANCEL-1", 1, "c@example.com").to_string(),
    );
    let pending = shop.wait_shipment("ord_cancel_1", "pending");
    assert!(pending["shipped_at"].is_null() && pending["tracking_number"].as_str().unwrap().starts_with("SP"));

    shop.publish("shop.order.cancelled", &order_cancelled("evt_cancel_2", "ord_cancel_1", "c@example.com").to_string());
    let cancelled = shop.wait_shipment("ord_cancel_1", "cancelled");
    assert_eq!(cancelled["cancel_reason"], "customer_request");
    let r = shop.admin("POST", "/api/fulfillment/shipments/ord_cancel_1/ship");
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.error_code(), "shipment_cancelled");
    shop.wait_mail("c@example.com", "was cancelled");

    // The cancellation overtakes the order: the late order.placed ships nothing.
    shop.reserve("res-cancel-3", "EVT-CANCEL-1", 2, 600);
    shop.publish("shop.order.cancelled", &order_cancelled("evt_cancel_3", "ord_cancel_3", "c@example.com").to_string());
    shop.wait_shipment("ord_cancel_3", "cancelled");
    shop.publish(
        "shop.order.placed",
        &order_placed("evt_cancel_4", "ord_cancel_3", "res-cancel-3", "EVT-CANCEL-1", 2, "c@example.com").to_string(),
    );
    shop.wait_deliveries("shop.order.placed", "fulfillment", 2);
    assert_eq!(shop.shipment("ord_cancel_3").unwrap()["status"], "cancelled");
    assert_eq!(shop.level("EVT-CANCEL-1"), (4, 2), "its reservation was not committed");
}

#[test]
fn an_event_that_fails_becomes_a_dead_letter_and_is_replayed_once_the_fault_is_gone() {
    let shop = start(Broker::Embedded, &[]);
    shop.stock("EVT-DEAD-1", 6);
    // The order names a reservation the inventory does not have (yet).
    shop.publish(
        "shop.order.placed",
        &order_placed("evt_dead_1", "ord_dead_1", "res-dead-1", "EVT-DEAD-1", 2, "dead@example.com").to_string(),
    );
    let letter = eventually(WAIT, || shop.dead_letters("pending").into_iter().find(|l| l["event_id"] == "evt_dead_1"))
        .unwrap_or_else(|| panic!("no dead letter:\n{}", shop.host.logs()));
    let id = letter["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("fulfillment:dl_"), "{letter}");
    assert_eq!((letter["service"].as_str(), letter["type"].as_str()), (Some("fulfillment"), Some("order.placed")));
    assert_eq!(letter["attempts"], 1);
    assert!(letter["error"].as_str().unwrap().contains("reservation_not_found"), "{letter}");
    assert_eq!(letter["envelope"]["data"]["order_id"], "ord_dead_1", "the envelope is kept whole");
    assert!(shop.shipment("ord_dead_1").is_none(), "the failed attempt left nothing behind");
    // Notifications applied the same event fine: dead letters are per consumer.
    shop.wait_mail("dead@example.com", "is confirmed");

    // Replaying while the fault is still there fails again and counts.
    let r = shop.admin("POST", &format!("/api/admin/dead-letters/{id}/replay"));
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.error_code(), "replay_failed");
    assert_eq!(r.json()["error"]["dead_letter"]["attempts"], 2);
    assert_eq!(r.json()["error"]["dead_letter"]["id"], id.as_str());

    // The fault goes away: the reservation now exists.
    shop.reserve("res-dead-1", "EVT-DEAD-1", 2, 600);
    let r = shop.admin("POST", &format!("/api/admin/dead-letters/{id}/replay"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["outcome"], "applied");
    assert_eq!(r.json()["dead_letter"]["status"], "replayed");
    assert_eq!(r.json()["dead_letter"]["id"], id.as_str());
    assert_eq!(shop.shipment("ord_dead_1").unwrap()["status"], "shipped");
    assert_eq!(shop.level("EVT-DEAD-1"), (4, 0));
    shop.wait_mail("dead@example.com", "has shipped");

    // Replaying again changes nothing.
    let r = shop.admin("POST", &format!("/api/admin/dead-letters/{id}/replay"));
    assert_eq!((r.status, r.json()["outcome"].as_str()), (200, Some("already_applied")), "{}", r.text);
    assert_eq!(shop.level("EVT-DEAD-1"), (4, 0));
    assert!(shop.dead_letters("pending").is_empty());
    let replayed = shop.dead_letters("replayed");
    assert_eq!(replayed.len(), 1);
    assert!(replayed[0]["replayed_at"].is_string());
}

#[test]
fn a_message_that_is_no_envelope_is_kept_as_a_dead_letter_by_each_consumer() {
    let shop = start(Broker::Embedded, &[]);
    shop.publish("shop.order.placed", "hello");
    let letters = eventually(WAIT, || {
        let letters = shop.dead_letters("pending");
        (letters.len() == 2).then_some(letters)
    })
    .unwrap_or_else(|| panic!("{:?}", shop.dead_letters("pending")));
    let mut services: Vec<&str> = letters.iter().map(|l| l["service"].as_str().unwrap()).collect();
    services.sort_unstable();
    assert_eq!(services, ["fulfillment", "notifications"]);
    assert!(letters.iter().all(|l| l["envelope"] == "hello" && l["error"].as_str().unwrap().contains("not an event envelope")));
    let r = shop.admin("POST", &format!("/api/admin/dead-letters/{}/replay", letters[0]["id"].as_str().unwrap()));
    assert_eq!((r.status, r.error_code().as_str()), (409, "replay_failed"), "{}", r.text);
}

#[test]
fn events_stored_while_redis_is_down_are_published_by_the_outbox_flush() {
    let mut shop = start(Broker::Real(RedisServer::start()), &[("fulfillment_auto_ship", "false")]);
    shop.stock("EVT-FLUSH-1", 3);
    shop.reserve("res-flush-1", "EVT-FLUSH-1", 1, 600);
    shop.publish(
        "shop.order.placed",
        &order_placed("evt_flush_1", "ord_flush_1", "res-flush-1", "EVT-FLUSH-1", 1, "flush@example.com").to_string(),
    );
    shop.wait_shipment("ord_flush_1", "pending");
    shop.wait_mail("flush@example.com", "is confirmed");

    let Broker::Real(redis) = &mut shop.broker else { unreachable!() };
    redis.pause();
    // The warehouse ships while Redis is down: the state change commits,
    // the event waits in the outbox.
    let r = shop.admin("POST", "/api/fulfillment/shipments/ord_flush_1/ship");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "shipped");
    let outbox = shop.admin("GET", "/api/admin/outbox");
    assert_eq!(outbox.status, 200, "{}", outbox.text);
    let fulfillment = &outbox.json()["services"][0];
    assert_eq!((fulfillment["name"].as_str(), fulfillment["pending"].as_u64()), (Some("fulfillment"), Some(1)), "{}", outbox.text);
    assert!(fulfillment["recent"][0]["last_error"].is_string(), "{}", outbox.text);

    // A flush while Redis is still down publishes nothing, and says why.
    let r = shop.admin("POST", "/api/admin/outbox/flush");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.json()["published"].as_u64(), r.json()["pending"].as_u64()), (Some(0), Some(1)), "{}", r.text);
    assert_eq!(r.json()["complete"], false);

    let Broker::Real(redis) = &mut shop.broker else { unreachable!() };
    redis.resume();
    wait_subscribed(redis, "shop.fulfillment.shipped");
    assert!(shop.mailbox("flush@example.com").iter().all(|m| m["type"] != "fulfillment.shipped"));

    let r = shop.admin("POST", "/api/admin/outbox/flush");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.json()["published"].as_u64(), r.json()["pending"].as_u64()), (Some(1), Some(0)), "{}", r.text);
    assert_eq!(r.json()["complete"], true, "{}", r.text);
    let mail = shop.wait_mail("flush@example.com", "has shipped");
    assert_eq!(mail["type"], "fulfillment.shipped");

    // Flushing again publishes nothing more.
    let r = shop.admin("POST", "/api/admin/outbox/flush");
    assert_eq!(r.json()["published"], 0, "{}", r.text);
}

#[test]
fn admin_routes_need_the_token_and_name_what_is_wrong() {
    let shop = start(Broker::Embedded, &[]);
    for (method, path) in [
        ("GET", "/api/admin/dead-letters"),
        ("POST", "/api/admin/outbox/flush"),
        ("POST", "/api/admin/dead-letters/fulfillment:dl_1/replay"),
        ("GET", "/api/fulfillment/admin/dead-letters"),
        ("POST", "/api/notifications/admin/outbox/flush"),
    ] {
        let r = shop.host.request(method, path, &[], None);
        assert_eq!((r.status, r.error_code().as_str()), (401, "unauthorized"), "{method} {path}");
    }
    for id in ["nope:dl_1", "dl_1", "fulfillment:dl_missing"] {
        let r = shop.admin("POST", &format!("/api/admin/dead-letters/{id}/replay"));
        assert_eq!((r.status, r.error_code().as_str()), (404, "dead_letter_not_found"), "{id}: {}", r.text);
    }
    let r = shop.admin("GET", "/api/admin/dead-letters?status=lost");
    assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_query"), "{}", r.text);
    let r = shop.host.get("/api/notifications");
    assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_query"), "{}", r.text);
    let r = shop.host.get("/api/fulfillment/shipments/ord_unknown");
    assert_eq!((r.status, r.error_code().as_str()), (404, "shipment_not_found"), "{}", r.text);
}
