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
    let shop = shop_manifest_text();
    let text = format!(
        "{shop}\n[[trigger.http]]\nroute = \"/test-probe/...\"\ncomponent = \"test-probe\"\n\n\
         [component.test-probe]\nsource = \"{{probe}}\"\nallowed_outbound_hosts = [\"{{{{ redis_address }}}}\"]\n"
    );
    write_manifest(dir.path(), &text)
}

struct Shop {
    host: Host,
    broker: Broker,
    runtime: Runtime,
    _dir: TempDir,
}

/// The shop on shop-host, its events on `broker`.
fn start(broker: Broker, variables: &[(&str, &str)]) -> Shop {
    start_with(Runtime::ShopHost, broker, variables)
}

/// The shop on `rt`: shop-host on its embedded broker (the default), or
/// real Spin on a real `redis-server`.
fn start_on(rt: Runtime, variables: &[(&str, &str)]) -> Shop {
    let broker = match rt {
        Runtime::ShopHost => Broker::Embedded,
        Runtime::Spin => Broker::Real(RedisServer::start()),
    };
    start_with(rt, broker, variables)
}

fn start_with(runtime: Runtime, broker: Broker, variables: &[(&str, &str)]) -> Shop {
    start_without(runtime, broker, &[], variables)
}

/// The shop with every component but `absent` running (`--component-id`
/// for each of the others): their triggers never run.
fn start_without(runtime: Runtime, broker: Broker, absent: &[&str], variables: &[(&str, &str)]) -> Shop {
    let dir = TempDir::new("events");
    let mut config = HostConfig::manifest(manifest(&dir)).runtime(runtime).variable("admin_token", ADMIN_TOKEN);
    if !absent.is_empty() {
        let text = std::fs::read_to_string(manifest(&dir)).unwrap();
        let ids = text.lines().filter_map(|l| l.strip_prefix("[component.")?.strip_suffix(']')).filter(|id| !id.contains('.'));
        for id in ids.filter(|id| !absent.contains(id)) {
            config = config.arg("--component-id").arg(id);
        }
    }
    if let Broker::Real(redis) = &broker {
        config = config.variable("redis_address", &redis.url());
    }
    for (name, value) in variables {
        config = config.variable(name, value);
    }
    let shop = Shop { host: config.start(), broker, runtime, _dir: dir };
    if let Broker::Real(redis) = &shop.broker {
        wait_subscribed_but(redis, runtime, absent);
    }
    shop
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
        let r = self.host.admin_get(&format!("/api/fulfillment/shipments/{order_id}"));
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
        let r = self.host.admin_get(&format!("/api/notifications?customer={}", percent_encode(customer)));
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

    /// How many deliveries of `channel` to `component` were logged:
    /// shop-host logs each trigger run; on Spin, the consumer's own line
    /// (`received <type> event …`, shop_shared::inbox) in its stderr log.
    fn deliveries(&self, channel: &str, component: &str) -> usize {
        match self.runtime {
            Runtime::ShopHost => self.host.logs().matches(&format!("REDIS {channel} -> {component} ")).count(),
            Runtime::Spin => {
                let log = self.host.state_dir().join("logs").join(format!("{component}_stderr.txt"));
                let kind = channel.strip_prefix("shop.").unwrap_or(channel);
                let text = std::fs::read_to_string(log).unwrap_or_default();
                text.matches(&format!("received {kind} event ")).count()
            }
        }
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

/// An `order.placed` envelope as checkout publishes it, without a payment
/// authorization: payment knows none by a made-up id and would keep the
/// `fulfillment.shipped` that follows as a dead letter. The tests that go on
/// to payment start from real checkouts (at the end of this file).
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
    shop.create_order("ord_ship_1", "res-ship-1", "pay_ord_ship_1", "EVT-SHIP-1", 3, "erika@example.com");

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
    // The two mails come from two channels handled concurrently, so either
    // may be written first; the mailbox lists them newest first.
    assert!(mails[0]["sent_at"].as_str() >= mails[1]["sent_at"].as_str(), "newest first: {mails:?}");
    let placed = mails.iter().find(|m| m["type"] == "order.placed").expect("a confirmation mail");
    assert!(mails.iter().any(|m| m["type"] == "fulfillment.shipped"), "{mails:?}");
    assert_eq!(placed["event_id"], "evt_ship_1");
    assert_eq!(placed["subject"], "Your order ord_ship_1 is confirmed");
    assert!(placed["body"].as_str().unwrap().contains("Total: 34.39 EUR"));
    for field in ["id", "event_id", "type", "to", "subject", "body", "sent_at"] {
        assert!(mails[0][field].is_string(), "{field} in {}", mails[0]);
    }
    // Orders follows fulfillment.shipped.
    assert_eq!(history(&shop.wait_order("ord_ship_1", "shipped")), ["placed", "shipped"]);
    assert!(shop.dead_letters("pending").is_empty());
}

fn a_placed_order_is_committed_shipped_and_mailed(rt: Runtime) {
    let shop = start_on(rt, &[]);
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
    shop.create_order("ord_twice_1", "res-twice-1", "pay_ord_twice_1", "EVT-TWICE-1", 2, "twice@example.com");
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

fn the_same_event_delivered_three_times_is_applied_once(rt: Runtime) {
    the_same_event_twice_is_applied_once(&start_on(rt, &[]));
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
    shop.create_order("ord_gone_1", "res-gone-1", "pay_ord_gone_1", "EVT-GONE-1", 2, "gone@example.com");

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
    // Orders follows it (fulfillment was the producer).
    let order = shop.wait_order("ord_gone_1", "cancelled");
    assert_eq!(order["history"][1]["reason"], "out_of_stock");
    shop.wait_deliveries("shop.order.cancelled", "inventory", 1);
    assert_eq!(shop.level("EVT-GONE-1"), (2, 2), "releasing the expired reservation changes nothing");
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
    assert_eq!(shop.level("EVT-CANCEL-1"), (5, 1), "a waiting shipment has not committed its reservation");

    let mut cancel = order_cancelled("evt_cancel_2", "ord_cancel_1", "c@example.com");
    cancel["data"]["reservation_id"] = json!("res-cancel-1");
    shop.publish("shop.order.cancelled", &cancel.to_string());
    let cancelled = shop.wait_shipment("ord_cancel_1", "cancelled");
    assert_eq!(cancelled["cancel_reason"], "customer_request");
    let r = shop.admin("POST", "/api/fulfillment/shipments/ord_cancel_1/ship");
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.error_code(), "shipment_cancelled");
    shop.wait_mail("c@example.com", "was cancelled");

    // The cancellation overtakes the order: the late order.placed ships nothing.
    shop.reserve("res-cancel-3", "EVT-CANCEL-1", 2, 600);
    let mut cancel = order_cancelled("evt_cancel_3", "ord_cancel_3", "c@example.com");
    cancel["data"]["reservation_id"] = json!("res-cancel-3");
    shop.publish("shop.order.cancelled", &cancel.to_string());
    shop.wait_shipment("ord_cancel_3", "cancelled");
    shop.publish(
        "shop.order.placed",
        &order_placed("evt_cancel_4", "ord_cancel_3", "res-cancel-3", "EVT-CANCEL-1", 2, "c@example.com").to_string(),
    );
    shop.wait_deliveries("shop.order.placed", "fulfillment", 2);
    assert_eq!(shop.shipment("ord_cancel_3").unwrap()["status"], "cancelled");
    // Inventory released both reservations; neither shipment took stock.
    shop.wait_deliveries("shop.order.cancelled", "inventory", 2);
    assert_eq!(shop.level("EVT-CANCEL-1"), (5, 0), "nothing committed, everything released");
}

fn an_event_that_fails_becomes_a_dead_letter_and_is_replayed_once_the_fault_is_gone(rt: Runtime) {
    let shop = start_on(rt, &[]);
    shop.stock("EVT-DEAD-1", 6);
    shop.create_order("ord_dead_1", "res-dead-1", "pay_ord_dead_1", "EVT-DEAD-1", 2, "dead@example.com");
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

fn a_message_that_is_no_envelope_is_kept_as_a_dead_letter_by_each_consumer(rt: Runtime) {
    let shop = start_on(rt, &[]);
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
fn events_stored_while_redis_is_down_are_published_once_it_is_back_with_no_one_asking() {
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

    // Back: nobody needs to ask. Fulfillment's cron tick publishes the
    // event, and once every consumer has it the outbox has nothing due.
    let Broker::Real(redis) = &mut shop.broker else { unreachable!() };
    redis.resume();
    let mail = shop.wait_mail("flush@example.com", "has shipped");
    assert_eq!(mail["type"], "fulfillment.shipped");
    let (_, events) = shop.outbox_of("fulfillment", "fulfillment.shipped");
    assert!(events[0]["sent_at"].is_string() && events[0]["publishes"].as_u64() >= Some(1), "{events:?}");
    // The order was never placed through orders (this test published its
    // order.placed by hand), so orders cannot apply the shipment: it keeps
    // a dead letter and does not acknowledge, and fulfillment keeps the
    // event due for it — every re-publish is another try.
    assert_eq!(events[0]["awaiting"], json!(["payment", "orders", "notifications"]));
    let letter = eventually(WAIT, || shop.dead_letters_of("orders").into_iter().next()).expect("orders' dead letter");
    assert_eq!(letter["event_id"], events[0]["id"]);
    assert!(events[0]["delivered_at"].is_null(), "{events:?}");
}

fn admin_routes_need_the_token_and_name_what_is_wrong(rt: Runtime) {
    let shop = start_on(rt, &[]);
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
    // Every service's own admin routes: the token first, then the method.
    for service in ["checkout", "payments", "orders", "inventory", "fulfillment", "notifications"] {
        let admin = format!("/api/{service}/admin");
        for (method, path) in [
            ("GET", format!("{admin}/dead-letters")),
            ("POST", format!("{admin}/dead-letters/dl_1/replay")),
            ("POST", format!("{admin}/outbox/flush")),
            ("GET", format!("{admin}/outbox")),
        ] {
            let r = shop.host.request(method, &path, &[], None);
            assert_eq!((r.status, r.error_code().as_str()), (401, "unauthorized"), "{method} {path}");
        }
        for (method, path, allow) in [
            ("DELETE", format!("{admin}/outbox"), "GET"),
            ("GET", format!("{admin}/outbox/flush"), "POST"),
            ("POST", format!("{admin}/dead-letters"), "GET"),
        ] {
            let r = shop.admin(method, &path);
            assert_eq!((r.status, r.error_code().as_str()), (405, "method_not_allowed"), "{method} {path}");
            assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
        }
        let r = shop.admin("GET", &format!("{admin}/outboxes"));
        assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"), "{service}: {}", r.text);
    }
    let r = shop.host.admin_get("/api/notifications");
    assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_query"), "{}", r.text);
    let r = shop.host.admin_get("/api/fulfillment/shipments/ord_unknown");
    assert_eq!((r.status, r.error_code().as_str()), (404, "shipment_not_found"), "{}", r.text);
    // Without a credential, whether it exists is not told.
    let r = shop.host.get("/api/fulfillment/shipments/ord_unknown");
    assert_eq!((r.status, r.error_code().as_str()), (401, "unauthorized"), "{}", r.text);
}

// ---- orders and inventory follow the choreography -----------------------------
//
// Orders moves an order as fulfillment and payment report it (placed →
// shipped → paid: the money is taken after shipping) and publishes
// `order.cancelled` when a customer cancels before it ships; inventory
// releases a cancelled order's reservation; fulfillment, which commits a
// reservation only when the shipment ships, cancels a waiting one.

impl Shop {
    fn admin_post(&self, path: &str, body: &Value) -> Reply {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        self.host.request(
            "POST",
            path,
            &[("authorization", &auth), ("content-type", "application/json")],
            Some(body.to_string().as_bytes()),
        )
    }

    /// Creates the order at orders as checkout would (the admin route, as in
    /// tests/orders.rs): `quantity` × 12.00 EUR of `sku` plus 4.90 shipping,
    /// its goods held by `reservation_id`, paid with `authorization_id`.
    fn create_order(&self, order_id: &str, reservation_id: &str, authorization_id: &str, sku: &str, quantity: u32, email: &str) -> Value {
        let items = 1200 * i64::from(quantity);
        let body = json!({
            "id": order_id,
            "customer_id": format!("cus_{order_id}"),
            "email": email,
            "lines": [{ "sku": sku, "quantity": quantity,
                        "unit_price": { "amount": 1200, "currency": "EUR" },
                        "line_total": { "amount": items, "currency": "EUR" } }],
            "totals": { "items": items, "shipping": 490, "tax": 0, "grand_total": items + 490, "currency": "EUR" },
            "address": { "name": "Erika Mustermann", "line1": "Heidestraße 17", "city": "Köln",
                         "postal_code": "51147", "country": "DE" },
            "shipping": "standard",
            "payment_authorization_id": authorization_id,
            "reservation_id": reservation_id,
            "checkout_id": format!("chk_{order_id}")
        });
        let r = self.admin_post("/api/orders", &body);
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()
    }

    fn order(&self, order_id: &str) -> Value {
        let r = self.host.admin_get(&format!("/api/orders/{order_id}"));
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    }

    fn wait_order(&self, order_id: &str, status: &str) -> Value {
        eventually(WAIT, || Some(self.order(order_id)).filter(|o| o["status"] == status)).unwrap_or_else(|| {
            panic!("order {order_id} never became {status}: {}\n{}", self.order(order_id), self.host.logs())
        })
    }

    /// A real authorization of `amount` EUR cents at payment, on the approving card.
    fn authorize(&self, key: &str, amount: i64) -> String {
        let body = json!({
            "amount": { "amount": amount, "currency": "EUR" },
            "card": { "number": APPROVE, "exp_month": 12, "exp_year": 2031, "cvc": "123" }
        });
        let r = self.host.request(
            "POST",
            "/api/payments/authorizations",
            &[("content-type", "application/json"), ("idempotency-key", key)],
            Some(body.to_string().as_bytes()),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()["id"].as_str().unwrap().to_owned()
    }

    fn reservation_status(&self, id: &str) -> String {
        let r = self.host.get(&format!("/api/inventory/reservations/{id}"));
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["status"].as_str().unwrap().to_owned()
    }
}

/// A `payment.captured` as payment publishes it after a shipment.
fn payment_captured(event_id: &str, order_id: &str, amount: i64, email: &str) -> String {
    json!({
        "id": event_id, "type": "payment.captured", "version": 1,
        "occurred_at": "2026-03-01T11:00:00.000Z", "correlation_id": format!("chk_{order_id}"),
        "data": { "order_id": order_id, "authorization_id": format!("pay_{order_id}"),
                  "amount": { "amount": amount, "currency": "EUR" }, "email": email }
    })
    .to_string()
}

/// The history's statuses and times, oldest first; the times never go back.
fn history(order: &Value) -> Vec<String> {
    let history = order["history"].as_array().unwrap_or_else(|| panic!("no history: {order}"));
    let times: Vec<&str> = history.iter().map(|c| c["at"].as_str().unwrap()).collect();
    assert!(times.iter().all(|t| t.len() == 24 && t.ends_with('Z')), "{times:?}");
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    history.iter().map(|c| c["status"].as_str().unwrap().to_owned()).collect()
}

/// A placed order, its shipment waiting: the customer cancels, and orders'
/// `order.cancelled` makes inventory release the stock, fulfillment cancel
/// the shipment, payment void the authorization and notifications mail.
fn a_customer_cancels_a_placed_order_and_every_service_follows(shop: &Shop) {
    let email = "cancel@example.com";
    shop.stock("EVT-CXL-1", 5);
    shop.reserve("res-cxl-1", "EVT-CXL-1", 2, 600);
    let authorization = shop.authorize("cxl-1", 2890);
    shop.create_order("ord_cxl_1", "res-cxl-1", &authorization, "EVT-CXL-1", 2, email);
    let mut placed = order_placed("evt_cxl_1", "ord_cxl_1", "res-cxl-1", "EVT-CXL-1", 2, email);
    placed["data"]["payment_authorization_id"] = json!(authorization);
    shop.publish("shop.order.placed", &placed.to_string());
    shop.wait_shipment("ord_cxl_1", "pending");
    shop.wait_mail(email, "is confirmed");
    assert_eq!(shop.level("EVT-CXL-1"), (5, 2), "a waiting shipment commits nothing; the reservation holds");

    let r = shop.host.admin_post("/api/orders/ord_cxl_1/cancel", &json!({ "reason": "changed my mind" }));
    assert_eq!(r.status, 200, "{}", r.text);
    let cancelled = r.json();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(history(&cancelled), ["placed", "cancelled"]);
    assert_eq!(cancelled["history"][1]["reason"], "changed my mind");

    // The event left through orders' outbox, published with the request.
    let events = shop.delivered_outbox_of("orders", "order.cancelled");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["correlation_id"], "chk_ord_cxl_1");
    assert!(events[0]["sent_at"].is_string(), "{events:?}");
    assert_eq!(events[0]["publishes"], 1, "acknowledged by all five consumers at once: {events:?}");

    let shipment = shop.wait_shipment("ord_cxl_1", "cancelled");
    assert_eq!(shipment["cancel_reason"], "customer_request");
    let released = eventually(WAIT, || (shop.level("EVT-CXL-1") == (5, 0)).then_some(()));
    assert!(released.is_some(), "the reservation was not released: {:?}\n{}", shop.level("EVT-CXL-1"), shop.host.logs());
    assert_eq!(shop.reservation_status("res-cxl-1"), "released");
    shop.wait_payment(&authorization, "voided");
    let mail = shop.wait_mail(email, "was cancelled");
    assert_eq!((mail["type"].as_str(), mail["order_id"].as_str()), (Some("order.cancelled"), Some("ord_cxl_1")));

    // Orders hears its own event and changes nothing; the warehouse is too late.
    shop.wait_deliveries("shop.order.cancelled", "orders", 1);
    assert_eq!(history(&shop.order("ord_cxl_1")), ["placed", "cancelled"]);
    let r = shop.admin("POST", "/api/fulfillment/shipments/ord_cxl_1/ship");
    assert_eq!((r.status, r.error_code().as_str()), (409, "shipment_cancelled"), "{}", r.text);

    // Cancelling again is a retry: no second history row, no second event.
    let r = shop.host.admin_post("/api/orders/ord_cxl_1/cancel", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(history(&r.json()), ["placed", "cancelled"]);
    assert_eq!(shop.outbox_of("orders", "order.cancelled").1.len(), 1);
    assert!(shop.dead_letters("pending").is_empty(), "{:?}", shop.dead_letters("pending"));
}

fn a_customer_cancels_a_placed_order_and_every_service_follows_on_either_runtime(rt: Runtime) {
    a_customer_cancels_a_placed_order_and_every_service_follows(&start_on(rt, &[("fulfillment_auto_ship", "false")]));
}

#[test]
fn a_customer_cancels_a_placed_order_and_every_service_follows_on_a_real_redis() {
    let shop = start(Broker::Real(RedisServer::start()), &[("fulfillment_auto_ship", "false")]);
    let Broker::Real(redis) = &shop.broker else { unreachable!() };
    wait_all_subscribed(redis, shop.runtime);
    a_customer_cancels_a_placed_order_and_every_service_follows(&shop);
}

/// Shipped (from fulfillment's event), then paid (from payment's), each
/// applied once however often delivered; a shipped order cannot be cancelled.
fn a_shipped_order_cannot_be_cancelled_and_is_paid_once_captured(shop: &Shop) {
    let email = "paid@example.com";
    shop.stock("EVT-PAID-1", 5);
    shop.reserve("res-paid-1", "EVT-PAID-1", 1, 600);
    shop.create_order("ord_paid_1", "res-paid-1", "pay_ord_paid_1", "EVT-PAID-1", 1, email);
    shop.publish("shop.order.placed", &order_placed("evt_paid_0", "ord_paid_1", "res-paid-1", "EVT-PAID-1", 1, email).to_string());
    let shipment = shop.wait_shipment("ord_paid_1", "shipped");
    assert_eq!(shop.level("EVT-PAID-1"), (4, 0), "auto_ship commits at once");

    let shipped = shop.wait_order("ord_paid_1", "shipped");
    assert_eq!(history(&shipped), ["placed", "shipped"]);
    let reason = shipped["history"][1]["reason"].as_str().unwrap();
    assert!(reason.contains(shipment["tracking_number"].as_str().unwrap()), "{reason}");
    let r = shop.host.admin_post("/api/orders/ord_paid_1/cancel", &json!({}));
    assert_eq!((r.status, r.error_code().as_str()), (409, "illegal_transition"), "{}", r.text);
    assert_eq!(r.json()["error"]["message"], "cannot cancel an order that is shipped");

    let captured = payment_captured("evt_paid_1", "ord_paid_1", 1690, email);
    shop.publish("shop.payment.captured", &captured);
    let paid = shop.wait_order("ord_paid_1", "paid");
    assert_eq!(history(&paid), ["placed", "shipped", "paid"]);
    assert!(paid["history"][2]["reason"].as_str().unwrap().contains("1690 EUR captured"), "{paid}");

    // The same capture twice more, and a late shipment report: nothing moves.
    shop.publish("shop.payment.captured", &captured);
    shop.publish("shop.payment.captured", &captured);
    let late = json!({
        "id": "evt_paid_late", "type": "fulfillment.shipped", "version": 1,
        "occurred_at": "2026-03-01T10:30:00.000Z", "correlation_id": "chk_ord_paid_1",
        "data": { "order_id": "ord_paid_1", "shipment_id": "shp_other", "tracking_number": "SP000000000000SH",
                  "carrier": "ShopPost", "reservation_id": "res-paid-1", "email": email,
                  "lines": [{ "sku": "EVT-PAID-1", "quantity": 1 }], "shipped_at": "2026-03-01T10:30:00.000Z" }
    });
    shop.publish("shop.fulfillment.shipped", &late.to_string());
    shop.wait_deliveries("shop.payment.captured", "orders", 3);
    shop.wait_deliveries("shop.fulfillment.shipped", "orders", 2);
    assert_eq!(shop.order("ord_paid_1")["history"], paid["history"], "applied once");
    assert!(shop.dead_letters("pending").is_empty(), "{:?}", shop.dead_letters("pending"));
}

fn a_shipped_order_cannot_be_cancelled_and_is_paid_once_captured_on_either_runtime(rt: Runtime) {
    a_shipped_order_cannot_be_cancelled_and_is_paid_once_captured(&start_on(rt, &[]));
}

#[test]
fn a_shipped_order_cannot_be_cancelled_and_is_paid_once_captured_on_a_real_redis() {
    let shop = start(Broker::Real(RedisServer::start()), &[]);
    let Broker::Real(redis) = &shop.broker else { unreachable!() };
    wait_all_subscribed(redis, shop.runtime);
    a_shipped_order_cannot_be_cancelled_and_is_paid_once_captured(&shop);
}

#[test]
fn a_capture_that_overtakes_the_shipment_report_still_leaves_the_order_paid() {
    let shop = start(Broker::Embedded, &[("fulfillment_auto_ship", "false")]);
    let email = "overtaken@example.com";
    shop.stock("EVT-OVER-1", 3);
    shop.reserve("res-over-1", "EVT-OVER-1", 1, 600);
    shop.create_order("ord_over_1", "res-over-1", "pay_ord_over_1", "EVT-OVER-1", 1, email);
    shop.publish("shop.order.placed", &order_placed("evt_over_0", "ord_over_1", "res-over-1", "EVT-OVER-1", 1, email).to_string());
    shop.wait_shipment("ord_over_1", "pending");

    shop.publish("shop.payment.captured", &payment_captured("evt_over_1", "ord_over_1", 1690, email));
    let paid = shop.wait_order("ord_over_1", "paid");
    assert_eq!(history(&paid), ["placed", "shipped", "paid"]);
    assert_eq!(paid["history"][1]["reason"], "implied by payment.captured");

    // The shipment's own report comes later and changes nothing.
    let r = shop.admin("POST", "/api/fulfillment/shipments/ord_over_1/ship");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["reservation_id"], "res-over-1");
    assert_eq!(shop.level("EVT-OVER-1"), (2, 0), "committed when it shipped");
    shop.wait_deliveries("shop.fulfillment.shipped", "orders", 1);
    assert_eq!(shop.order("ord_over_1")["history"], paid["history"]);
    assert!(shop.dead_letters("pending").is_empty(), "{:?}", shop.dead_letters("pending"));
}

#[test]
fn a_cancellation_by_another_service_is_applied_once_and_releases_the_stock_once() {
    let shop = start(Broker::Embedded, &[("fulfillment_auto_ship", "false")]);
    let email = "other@example.com";
    shop.stock("EVT-OTHER-1", 4);
    shop.reserve("res-other-1", "EVT-OTHER-1", 3, 600);
    shop.create_order("ord_other_1", "res-other-1", "pay_ord_other_1", "EVT-OTHER-1", 3, email);
    // As fulfillment publishes it when the goods are gone.
    let cancelled = json!({
        "id": "evt_other_1", "type": "order.cancelled", "version": 1,
        "occurred_at": "2026-03-01T10:05:00.000Z", "correlation_id": "chk_ord_other_1",
        "data": { "order_id": "ord_other_1", "reason": "out_of_stock", "email": email, "reservation_id": "res-other-1" }
    })
    .to_string();
    for _ in 0..3 {
        shop.publish("shop.order.cancelled", &cancelled);
    }
    shop.wait_deliveries("shop.order.cancelled", "orders", 3);
    shop.wait_deliveries("shop.order.cancelled", "inventory", 3);
    let order = shop.wait_order("ord_other_1", "cancelled");
    assert_eq!(history(&order), ["placed", "cancelled"]);
    assert_eq!(order["history"][1]["reason"], "out_of_stock");
    assert_eq!(shop.level("EVT-OTHER-1"), (4, 0));
    assert_eq!(shop.reservation_status("res-other-1"), "released");
    // Orders was not the producer: it publishes nothing.
    assert!(shop.outbox_of("orders", "order.cancelled").1.is_empty());
    assert!(shop.dead_letters("pending").is_empty(), "{:?}", shop.dead_letters("pending"));
}

#[test]
fn a_cancellation_after_shipping_is_a_dead_letter_at_orders_and_takes_no_stock_back() {
    let shop = start(Broker::Embedded, &[]);
    let email = "toolate@example.com";
    shop.stock("EVT-LATE-CXL-1", 5);
    shop.reserve("res-late-cxl-1", "EVT-LATE-CXL-1", 2, 600);
    shop.create_order("ord_late_cxl_1", "res-late-cxl-1", "pay_ord_late_cxl_1", "EVT-LATE-CXL-1", 2, email);
    shop.publish(
        "shop.order.placed",
        &order_placed("evt_late_cxl_0", "ord_late_cxl_1", "res-late-cxl-1", "EVT-LATE-CXL-1", 2, email).to_string(),
    );
    shop.wait_order("ord_late_cxl_1", "shipped");
    assert_eq!(shop.level("EVT-LATE-CXL-1"), (3, 0));

    let mut cancelled = order_cancelled("evt_late_cxl_1", "ord_late_cxl_1", email);
    cancelled["data"]["reservation_id"] = json!("res-late-cxl-1");
    shop.publish("shop.order.cancelled", &cancelled.to_string());
    let letter = eventually(WAIT, || shop.dead_letters("pending").into_iter().next())
        .unwrap_or_else(|| panic!("no dead letter:\n{}", shop.host.logs()));
    assert_eq!((letter["service"].as_str(), letter["event_id"].as_str()), (Some("orders"), Some("evt_late_cxl_1")));
    assert!(letter["error"].as_str().unwrap().contains("cannot cancel an order that is shipped"), "{letter}");
    assert!(letter["id"].as_str().unwrap().starts_with("orders:dl_"), "{letter}");
    // Inventory applied it: the goods left with the shipment, nothing to release.
    shop.wait_deliveries("shop.order.cancelled", "inventory", 1);
    assert_eq!(shop.level("EVT-LATE-CXL-1"), (3, 0));
    assert_eq!(shop.reservation_status("res-late-cxl-1"), "committed");
    assert_eq!(shop.dead_letters("pending").len(), 1, "{:?}", shop.dead_letters("pending"));
    assert_eq!(shop.order("ord_late_cxl_1")["status"], "shipped");

    // Replaying cannot help: the order shipped.
    let r = shop.admin("POST", &format!("/api/admin/dead-letters/{}/replay", letter["id"].as_str().unwrap()));
    assert_eq!((r.status, r.error_code().as_str()), (409, "replay_failed"), "{}", r.text);
    let r = shop.admin("GET", "/api/orders/admin/dead-letters");
    assert_eq!(r.json()["dead_letters"][0]["attempts"], 2, "{}", r.text);
}

// ---- the whole choreography, from a real checkout ------------------------------
//
// POST /api/checkout → checkout's outbox publishes `order.placed` →
// fulfillment commits the reservation and ships (`fulfillment.shipped`) →
// payment captures the authorization (`payment.captured`, from payment's own
// outbox) → notifications mails all three; orders follows when it consumes.

/// A sku the catalog sells (checkout prices it there).
const CHECKOUT_SKU: &str = "COF-001";
const APPROVE: &str = "4242424242424242";

/// Every `[[trigger.redis]]` of the repository's spin.toml: `(channel, component)`.
fn redis_triggers() -> Vec<(String, String)> {
    let manifest = std::fs::read_to_string(root().join("spin.toml")).unwrap();
    let mut triggers = Vec::new();
    let mut current: Option<(Option<String>, Option<String>)> = None;
    for line in manifest.lines().map(str::trim).chain(["[end]"]) {
        if line.starts_with('[') {
            if let Some((Some(channel), Some(component))) = current.take() {
                triggers.push((channel, component));
            }
            current = (line == "[[trigger.redis]]").then_some((None, None));
        } else if let Some((channel, component)) = current.as_mut()
            && let Some((key, value)) = line.split_once('=')
        {
            let value = value.trim().trim_matches('"').to_string();
            match key.trim() {
                "channel" => *channel = Some(value),
                "component" => *component = Some(value),
                _ => {}
            }
        }
    }
    triggers
}

fn consumes(component: &str, channel: &str) -> bool {
    redis_triggers().iter().any(|(ch, c)| ch == channel && c == component)
}

/// Until every trigger of every channel is subscribed (one subscription per
/// trigger), a message would miss a consumer.
fn wait_all_subscribed(redis: &RedisServer, runtime: Runtime) {
    wait_subscribed_but(redis, runtime, &[])
}

/// As [`wait_all_subscribed`], the triggers of `absent` left out.
fn wait_subscribed_but(redis: &RedisServer, runtime: Runtime, absent: &[&str]) {
    let triggers: Vec<(String, String)> =
        redis_triggers().into_iter().filter(|(_, component)| !absent.contains(&component.as_str())).collect();
    for channel in ["shop.order.placed", "shop.fulfillment.shipped", "shop.payment.captured", "shop.order.cancelled"] {
        // Spin subscribes once per channel and fans each message out to the
        // channel's components; shop-host subscribes once per trigger.
        let expected = match runtime {
            Runtime::ShopHost => triggers.iter().filter(|(ch, _)| ch == channel).count(),
            Runtime::Spin => 1,
        };
        let subscribed = eventually(Duration::from_secs(15), || {
            let reply = redis.command(&["PUBSUB", "NUMSUB", channel])?;
            let count: usize = reply.rsplit(':').next()?.trim().parse().ok()?;
            (count >= expected).then_some(())
        });
        assert!(subscribed.is_some(), "the host never subscribed all {expected} triggers of {channel}");
    }
}

/// Milliseconds between two of the shop's RFC 3339 times (`…T10:00:00.123Z`)
/// of the same day.
fn millis_between(from: &str, to: &str) -> i64 {
    let of_day = |t: &str| {
        let time = &t[t.find('T').unwrap() + 1..t.len() - 1];
        let mut parts = time.split(':');
        let (h, m, s): (i64, i64, f64) = (
            parts.next().unwrap().parse().unwrap(),
            parts.next().unwrap().parse().unwrap(),
            parts.next().unwrap().parse().unwrap(),
        );
        (h * 3600 + m * 60) * 1000 + (s * 1000.0).round() as i64
    };
    of_day(to) - of_day(from)
}

/// What a checkout placed.
struct Placed {
    checkout_id: String,
    order_id: String,
    authorization_id: String,
    grand_total: i64,
    currency: String,
}

impl Shop {
    /// A cart with `quantity` of [`CHECKOUT_SKU`], checked out with the
    /// approving test card: 201, or the test fails.
    fn place(&self, key: &str, email: &str, quantity: u32) -> Placed {
        let cart = format!("cart-{key}");
        let r = self.host.post(&format!("/api/carts/{cart}/items"), &json!({"sku": CHECKOUT_SKU, "quantity": quantity}));
        assert!(r.status == 200 || r.status == 201, "{}", r.text);
        let body = checkout_body(&cart, email, "standard");
        let r = self.host.request(
            "POST",
            "/api/checkout",
            &[("content-type", "application/json"), ("idempotency-key", key)],
            Some(body.to_string().as_bytes()),
        );
        assert_eq!(r.status, 201, "checkout {key}: {}", r.text);
        let placed = r.json();
        let checkout_id = placed["checkout_id"].as_str().unwrap().to_string();
        let journal = self.host.get(&format!("/api/checkout/{checkout_id}")).json();
        Placed {
            order_id: placed["order_id"].as_str().unwrap().to_string(),
            authorization_id: journal["authorization_id"].as_str().unwrap_or_else(|| panic!("{journal}")).to_string(),
            grand_total: placed["totals"]["grand_total"].as_i64().unwrap(),
            currency: placed["totals"]["currency"].as_str().unwrap().to_string(),
            checkout_id,
        }
    }

    fn payment(&self, authorization_id: &str) -> Value {
        let r = self.host.get(&format!("/api/payments/{authorization_id}"));
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    }

    fn wait_payment(&self, authorization_id: &str, status: &str) -> Value {
        eventually(WAIT, || Some(self.payment(authorization_id)).filter(|p| p["status"] == status)).unwrap_or_else(|| {
            panic!("payment {authorization_id} never became {status}: {}\n{}", self.payment(authorization_id), self.host.logs())
        })
    }

    /// The mails of `email` about `order_id` of event `type`.
    fn mails_of(&self, email: &str, order_id: &str, kind: &str) -> Vec<Value> {
        self.mailbox(email).into_iter().filter(|m| m["order_id"] == order_id && m["type"] == kind).collect()
    }

    fn order_statuses(&self, order_id: &str) -> Vec<String> {
        let r = self.host.admin_get(&format!("/api/orders/{order_id}"));
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap().to_string()).collect()
    }

    /// The pending dead letters of `service`.
    fn dead_letters_of(&self, service: &str) -> Vec<Value> {
        self.dead_letters("pending").into_iter().filter(|l| l["service"] == service).collect()
    }

    /// The events in `service`'s outbox of type `kind`, as `GET /api/admin/outbox` shows them.
    /// The events of `kind` (every kind for "") in `service`'s outbox, once
    /// none of the service's events is due any more (each acknowledged by
    /// all its consumers).
    fn delivered_outbox_of(&self, service: &str, kind: &str) -> Vec<Value> {
        let done = eventually(WAIT, || {
            let (pending, events) = self.outbox_of(service, kind);
            (pending == 0).then_some(events)
        });
        done.unwrap_or_else(|| panic!("{service}'s outbox still has due events: {:?}\n{}", self.outbox_of(service, kind), self.host.logs()))
    }

    fn outbox_of(&self, service: &str, kind: &str) -> (u64, Vec<Value>) {
        let r = self.admin("GET", "/api/admin/outbox");
        assert_eq!(r.status, 200, "{}", r.text);
        let body = r.json();
        let member = body["services"].as_array().unwrap().iter().find(|m| m["name"] == service).cloned();
        let member = member.unwrap_or_else(|| panic!("{service} is no admin member: {body}"));
        assert_eq!(member["ok"], true, "{member}");
        let events = member["recent"].as_array().unwrap().iter().filter(|e| kind.is_empty() || e["type"] == kind).cloned().collect();
        (member["pending"].as_u64().unwrap(), events)
    }

    /// Everything that must hold once a placed order went all the way:
    /// shipped, captured once for its grand total, one mail per event.
    fn assert_went_all_the_way(&self, placed: &Placed, email: &str) {
        let shipment = self.wait_shipment(&placed.order_id, "shipped");
        assert_eq!(shipment["payment_authorization_id"], placed.authorization_id.as_str(), "{shipment}");
        let payment = self.wait_payment(&placed.authorization_id, "captured");
        assert_eq!(payment["captured"], json!({"amount": placed.grand_total, "currency": placed.currency}), "{payment}");
        assert_eq!(payment["amount"], payment["captured"], "the whole authorization, once");
        let receipt = self.wait_mail(email, &format!("Payment received for order {}", placed.order_id));
        assert_eq!(receipt["type"], "payment.captured");
        let grand = format!("{}.{:02} {}", placed.grand_total / 100, placed.grand_total % 100, placed.currency);
        assert!(receipt["body"].as_str().unwrap().contains(&grand), "{receipt} names {grand}");
        for kind in ["order.placed", "fulfillment.shipped", "payment.captured"] {
            // The mails come from three channels handled concurrently (and
            // queue on notifications' database): the receipt being there
            // says nothing about the shipping mail, so each is waited for.
            let _ = eventually(WAIT, || (!self.mails_of(email, &placed.order_id, kind).is_empty()).then_some(()));
            let mails = self.mails_of(email, &placed.order_id, kind);
            assert_eq!(mails.len(), 1, "one {kind} mail for {}: {:?}", placed.order_id, self.mailbox(email));
        }
    }
}

/// A real checkout, then the events all the way to the captured payment.
fn a_checkout_goes_all_the_way(shop: &Shop) {
    shop.stock(CHECKOUT_SKU, 50);
    let email = "chain@example.com";
    let started = std::time::Instant::now();
    let placed = shop.place("chain-1", email, 2);
    let answered = started.elapsed();
    let order = shop.host.admin_get(&format!("/api/orders/{}", placed.order_id)).json();
    assert_eq!(order["payment_authorization_id"], placed.authorization_id.as_str());

    // The event checkout published is exactly what fulfillment and
    // notifications read: shipped, and confirmed with the checkout's total.
    shop.assert_went_all_the_way(&placed, email);
    let captured_after = started.elapsed();
    let confirmation = &shop.mails_of(email, &placed.order_id, "order.placed")[0];
    assert_eq!(confirmation["subject"], format!("Your order {} is confirmed", placed.order_id));
    let shipment = shop.shipment(&placed.order_id).unwrap();
    assert_eq!(shipment["reservation_id"], order["reservation_id"], "checkout's reservation was committed");
    assert_eq!(shop.level(CHECKOUT_SKU), (48, 0), "two left the warehouse, nothing stays reserved");

    // Each producer's outbox sent its event, under the ids it derived, once:
    // every consumer acknowledged it before the first re-check.
    let placed_events = shop.delivered_outbox_of("checkout", "order.placed");
    assert_eq!(placed_events.len(), 1, "{placed_events:?}");
    assert_eq!(placed_events[0]["correlation_id"], placed.checkout_id.as_str());
    assert!(placed_events[0]["sent_at"].is_string() && placed_events[0]["last_error"].is_null(), "{placed_events:?}");
    assert_eq!(placed_events[0]["publishes"], 1, "{placed_events:?}");
    assert_eq!(placed_events[0]["awaiting"], json!(["fulfillment", "notifications"]));
    let captured_events = shop.delivered_outbox_of("payment", "payment.captured");
    assert_eq!(captured_events.len(), 1, "{captured_events:?}");
    assert_eq!(captured_events[0]["publishes"], 1, "{captured_events:?}");
    assert_eq!(captured_events[0]["correlation_id"], placed.checkout_id.as_str(), "the checkout ties the chain together");

    // Orders follows the chain where it consumes it (its part of the issue).
    let mut expected = vec!["placed"];
    if consumes("orders", "shop.fulfillment.shipped") {
        expected.push("shipped");
    }
    if consumes("orders", "shop.payment.captured") {
        expected.push("paid");
    }
    let statuses = eventually(WAIT, || {
        let statuses = shop.order_statuses(&placed.order_id);
        expected.iter().all(|s| statuses.iter().any(|h| h == s)).then_some(statuses)
    });
    assert!(statuses.is_some(), "order history {:?} lacks one of {expected:?}", shop.order_statuses(&placed.order_id));

    for service in ["checkout", "payment", "fulfillment", "notifications"] {
        assert!(shop.dead_letters_of(service).is_empty(), "{service}: {:?}", shop.dead_letters_of(service));
    }
    let payment = shop.payment(&placed.authorization_id);
    eprintln!(
        "checkout → payment.captured: checkout answered in {answered:?}, captured seen after {captured_after:?}; \
         checkout created → capture recorded: {} ms",
        millis_between(shop.host.get(&format!("/api/checkout/{}", placed.checkout_id)).json()["created_at"].as_str().unwrap(),
                       payment["updated_at"].as_str().unwrap())
    );
}

fn a_checkout_is_shipped_captured_and_mailed(rt: Runtime) {
    a_checkout_goes_all_the_way(&start_on(rt, &[]));
}

#[test]
fn a_checkout_is_shipped_captured_and_mailed_on_a_real_redis() {
    let shop = start(Broker::Real(RedisServer::start()), &[]);
    let Broker::Real(redis) = &shop.broker else { unreachable!() };
    wait_all_subscribed(redis, shop.runtime);
    a_checkout_goes_all_the_way(&shop);
}

/// A `fulfillment.shipped` for a real order, as fulfillment publishes it.
fn fulfillment_shipped(event_id: &str, placed: &Placed, email: &str) -> String {
    json!({
        "id": event_id, "type": "fulfillment.shipped", "version": 1,
        "occurred_at": "2026-03-01T11:00:00.000Z", "correlation_id": placed.checkout_id,
        "data": {
            "order_id": placed.order_id, "shipment_id": "shp_test", "tracking_number": "SP00000000000001",
            "carrier": "ShopPost", "reservation_id": "res_test", "email": email,
            "payment_authorization_id": placed.authorization_id,
            "lines": [{ "sku": CHECKOUT_SKU, "quantity": 1 }], "shipped_at": "2026-03-01T11:00:00.000Z"
        }
    })
    .to_string()
}

fn a_shipment_reported_three_times_and_once_more_under_another_id_captures_once(rt: Runtime) {
    // The warehouse holds shipments: only the events below ship.
    let shop = start_on(rt, &[("fulfillment_auto_ship", "false")]);
    shop.stock(CHECKOUT_SKU, 10);
    let email = "twice-shipped@example.com";
    let placed = shop.place("twice-1", email, 1);
    shop.wait_shipment(&placed.order_id, "pending");
    assert_eq!(shop.payment(&placed.authorization_id)["status"], "authorized", "nothing shipped, nothing taken");

    let shipped = fulfillment_shipped("evt_shipped_twice", &placed, email);
    for _ in 0..3 {
        shop.publish("shop.fulfillment.shipped", &shipped);
    }
    shop.wait_deliveries("shop.fulfillment.shipped", "payment", 3);
    let payment = shop.wait_payment(&placed.authorization_id, "captured");
    assert_eq!(payment["captured"]["amount"], placed.grand_total);
    shop.wait_mail(email, "Payment received");

    // The same shipment reported again under a new event id (a second
    // publisher, an operator's republish): the capture is not repeated.
    shop.publish("shop.fulfillment.shipped", &fulfillment_shipped("evt_shipped_again", &placed, email));
    shop.wait_deliveries("shop.fulfillment.shipped", "payment", 4);
    // Give a wrongly repeated capture the time to show up.
    shop.wait_deliveries("shop.payment.captured", "notifications", 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(shop.mails_of(email, &placed.order_id, "payment.captured").len(), 1, "{:?}", shop.mailbox(email));
    let (_, captured_events) = shop.outbox_of("payment", "payment.captured");
    assert_eq!(captured_events.len(), 1, "one payment.captured: {captured_events:?}");
    // (Three instances applying the three deliveries each publish what is
    // pending afterwards, so payment.captured may go out more than once —
    // at least once, docs/events.md; notifications' inbox applied it once.)
    assert!(shop.deliveries("shop.payment.captured", "notifications") >= 1);
    // The component's own stderr line may reach the log after the host's
    // delivery line, so it is waited for.
    assert!(shop.host.logged("was captured before; evt_shipped_again changes nothing"), "{}", shop.host.logs());
    assert!(shop.dead_letters_of("payment").is_empty(), "{:?}", shop.dead_letters_of("payment"));

    // Asked directly, the capture under the event's derived key is the one made.
    let r = shop.host.get("/api/payments?idempotency_key=evt_shipped_twice:capture");
    assert_eq!((r.status, r.json()["id"].as_str()), (200, Some(placed.authorization_id.as_str())), "{}", r.text);
    assert_eq!(shop.host.get("/api/payments?idempotency_key=evt_shipped_again:capture").status, 404);
}

fn cancel_event(event_id: &str, placed: &Placed, email: &str) -> String {
    json!({
        "id": event_id, "type": "order.cancelled", "version": 1,
        "occurred_at": "2026-03-01T12:00:00.000Z", "correlation_id": placed.checkout_id,
        "data": { "order_id": placed.order_id, "reason": "customer_request", "email": email,
                  "payment_authorization_id": placed.authorization_id }
    })
    .to_string()
}

fn a_cancelled_order_voids_an_authorization_and_refunds_a_capture_once(rt: Runtime) {
    let shop = start_on(rt, &[("fulfillment_auto_ship", "false")]);
    shop.stock(CHECKOUT_SKU, 10);

    // Cancelled before it shipped: the authorization is voided.
    let early = shop.place("cancel-early", "early@example.com", 1);
    shop.wait_shipment(&early.order_id, "pending");
    let cancel = cancel_event("evt_cancel_early", &early, "early@example.com");
    shop.publish("shop.order.cancelled", &cancel);
    shop.wait_payment(&early.authorization_id, "voided");
    shop.wait_shipment(&early.order_id, "cancelled");

    // Cancelled after the money was taken: refunded, once, however often it is said.
    let late = shop.place("cancel-late", "late@example.com", 1);
    shop.wait_shipment(&late.order_id, "pending");
    let r = shop.admin("POST", &format!("/api/fulfillment/shipments/{}/ship", late.order_id));
    assert_eq!(r.status, 200, "{}", r.text);
    shop.wait_payment(&late.authorization_id, "captured");
    let cancel = cancel_event("evt_cancel_late", &late, "late@example.com");
    shop.publish("shop.order.cancelled", &cancel);
    shop.publish("shop.order.cancelled", &cancel);
    shop.publish("shop.order.cancelled", &cancel_event("evt_cancel_late_again", &late, "late@example.com"));
    shop.wait_deliveries("shop.order.cancelled", "payment", 4);
    let payment = shop.wait_payment(&late.authorization_id, "refunded");
    assert_eq!(payment["refunded"]["amount"], late.grand_total, "{payment}");
    assert_eq!(payment["refunds"].as_array().unwrap().len(), 1, "one refund: {payment}");
    let r = shop.host.get("/api/payments?idempotency_key=evt_cancel_late:refund");
    assert_eq!(r.status, 200, "{}", r.text);

    // The early order's void came from its event's key, and happened once too.
    let r = shop.host.get("/api/payments?idempotency_key=evt_cancel_early:void");
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("voided")), "{}", r.text);
    assert!(shop.dead_letters_of("payment").is_empty(), "{:?}", shop.dead_letters_of("payment"));

    // A shipment reported for the voided order cannot take money: kept as a
    // dead letter for a person to look at.
    shop.publish("shop.fulfillment.shipped", &fulfillment_shipped("evt_shipped_voided", &early, "early@example.com"));
    let letter = eventually(WAIT, || shop.dead_letters_of("payment").into_iter().next())
        .unwrap_or_else(|| panic!("no dead letter:\n{}", shop.host.logs()));
    assert_eq!(letter["event_id"], "evt_shipped_voided");
    assert!(letter["error"].as_str().unwrap().contains("is voided and cannot be captured"), "{letter}");
    assert_eq!(shop.payment(&early.authorization_id)["status"], "voided");
}

#[test]
fn checkouts_while_redis_is_down_succeed_and_every_order_is_captured_exactly_once_afterwards() {
    let mut shop = start(Broker::Real(RedisServer::start()), &[]);
    let Broker::Real(redis) = &shop.broker else { unreachable!() };
    wait_all_subscribed(redis, shop.runtime);
    shop.stock(CHECKOUT_SKU, 50);
    let email = |i: usize| format!("outage-{i}@example.com");
    let mut placed = Vec::new();

    // Down: checkouts still answer 201 (the event is published after the
    // commit); their order.placed waits in checkout's outbox.
    let Broker::Real(redis) = &mut shop.broker else { unreachable!() };
    redis.pause();
    for i in 0..2 {
        placed.push(shop.place(&format!("outage-{i}"), &email(i), 1));
    }
    let (pending, _) = shop.outbox_of("checkout", "order.placed");
    assert_eq!(pending, 2);
    for p in &placed {
        assert_eq!(shop.payment(&p.authorization_id)["status"], "authorized");
        assert!(shop.shipment(&p.order_id).is_none(), "nothing reached fulfillment");
    }

    // Back: the next checkout (or the cron tick) publishes what waited,
    // oldest first, with its own.
    let Broker::Real(redis) = &mut shop.broker else { unreachable!() };
    redis.resume();
    wait_all_subscribed(redis, shop.runtime);
    placed.push(shop.place("outage-2", &email(2), 1));
    assert_eq!(shop.delivered_outbox_of("checkout", "order.placed").len(), 3, "everything went out");
    // (Before the next outage: a message Redis took is lost to a subscriber
    // whose connection dies before it arrives — pub/sub, docs/events.md.)
    for (i, p) in placed.iter().enumerate() {
        shop.assert_went_all_the_way(p, &email(i));
    }

    // Down again: a flush cannot publish; nobody needs to ask later.
    let Broker::Real(redis) = &mut shop.broker else { unreachable!() };
    redis.pause();
    for i in 3..5 {
        placed.push(shop.place(&format!("outage-{i}"), &email(i), 1));
    }
    let r = shop.admin("POST", "/api/admin/outbox/flush");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.json()["published"].as_u64(), r.json()["pending"].as_u64()), (Some(0), Some(2)), "{}", r.text);
    assert_eq!(r.json()["complete"], false, "{}", r.text);
    let Broker::Real(redis) = &mut shop.broker else { unreachable!() };
    redis.resume();
    // No flush and no traffic: checkout's cron tick publishes its two.

    // Every order went all the way, each event applied once.
    for (i, p) in placed.iter().enumerate() {
        shop.assert_went_all_the_way(p, &email(i));
    }
    let payments: Vec<Value> = placed.iter().map(|p| shop.payment(&p.authorization_id)).collect();
    let distinct: std::collections::HashSet<&str> = payments.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(distinct.len(), 5, "five orders, five captured authorizations");
    let (_, captured_events) = shop.outbox_of("payment", "payment.captured");
    assert_eq!(captured_events.len(), placed.len(), "one payment.captured per order: {captured_events:?}");
    assert_eq!(shop.level(CHECKOUT_SKU), (45, 0));
    for service in ["checkout", "payment", "fulfillment", "notifications"] {
        assert!(shop.dead_letters_of(service).is_empty(), "{service}: {:?}", shop.dead_letters_of(service));
    }
    for service in ["checkout", "payment", "fulfillment", "orders"] {
        shop.delivered_outbox_of(service, "");
    }
}

fn an_event_a_consumer_never_acknowledges_becomes_the_producers_dead_letter_and_is_replayed(rt: Runtime) {
    // Notifications is not running (nor admin, which chains to it, and Spin
    // runs no component whose chaining target is left out): checkout's
    // order.placed reaches fulfillment, which acknowledges it, and never
    // notifications. The services' own admin routes are asked instead.
    let broker = match rt {
        Runtime::ShopHost => Broker::Embedded,
        Runtime::Spin => Broker::Real(RedisServer::start()),
    };
    let shop = start_without(rt, broker, &["notifications", "admin"], &[("event_publish_attempts", "2"), ("fulfillment_auto_ship", "false")]);
    shop.stock(CHECKOUT_SKU, 5);
    let placed = shop.place("unacked-1", "unacked@example.com", 1);
    shop.wait_shipment(&placed.order_id, "pending");

    // The operator's view: one event due at checkout, waiting for notifications.
    let view = shop.admin("GET", "/api/checkout/admin/events");
    assert_eq!(view.status, 200, "{}", view.text);
    assert_eq!(view.json()["outbox"]["due"], 1, "{}", view.text);
    assert!(view.json()["outbox"]["oldest_due_age_seconds"].as_f64().is_some(), "{}", view.text);
    let outbox = || shop.admin("GET", "/api/checkout/admin/outbox").json();
    let events = outbox()["recent"].as_array().unwrap().clone();
    assert_eq!(events[0]["awaiting"], json!(["fulfillment", "notifications"]));

    // Published twice (the second 5 s after the first), then given up on
    // after the second wait: a dead letter of checkout's, naming who is missing.
    let letters = || shop.admin("GET", "/api/checkout/admin/dead-letters?status=pending").json()["dead_letters"].as_array().unwrap().clone();
    let letter = eventually(Duration::from_secs(40), || letters().into_iter().next())
        .unwrap_or_else(|| panic!("no dead letter at checkout: {}\n{}", outbox(), shop.host.logs()));
    assert_eq!(letter["origin"], "outbox", "{letter}");
    assert_eq!(letter["event_id"], events[0]["id"], "{letter}");
    assert_eq!(letter["type"], "order.placed");
    assert_eq!(letter["error"], "not acknowledged by notifications after 2 publishes", "{letter}");
    let view = shop.admin("GET", "/api/checkout/admin/events").json();
    assert_eq!((view["outbox"]["due"].as_u64(), view["outbox"]["undeliverable"].as_u64()), (Some(0), Some(1)), "{view}");
    assert_eq!(view["outbox"]["republishes"], 1, "{view}");
    assert_eq!(view["dead_letters"]["pending"], 1, "{view}");
    // The re-publish reached fulfillment again, which applied it once.
    assert!(shop.host.logged(&format!("received order.placed event {}: a duplicate, changes nothing", letter["event_id"].as_str().unwrap())) || rt == Runtime::Spin);
    assert_eq!(shop.shipment(&placed.order_id).unwrap()["status"], "pending");

    // Replayed, the event is due again with a fresh budget.
    let r = shop.admin("POST", &format!("/api/checkout/admin/dead-letters/{}/replay", letter["id"].as_str().unwrap()));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["outcome"], "republished", "{}", r.text);
    assert_eq!(r.json()["dead_letter"]["status"], "replayed", "{}", r.text);
    let outbox = outbox();
    assert_eq!(outbox["pending"], 1, "{outbox}");
    assert!(outbox["recent"][0]["dead_at"].is_null(), "{outbox}");
}

on_both_runtimes!(
    an_event_a_consumer_never_acknowledges_becomes_the_producers_dead_letter_and_is_replayed,
    admin_routes_need_the_token_and_name_what_is_wrong,
    a_placed_order_is_committed_shipped_and_mailed,
    the_same_event_delivered_three_times_is_applied_once,
    an_event_that_fails_becomes_a_dead_letter_and_is_replayed_once_the_fault_is_gone,
    a_message_that_is_no_envelope_is_kept_as_a_dead_letter_by_each_consumer,
    a_customer_cancels_a_placed_order_and_every_service_follows_on_either_runtime,
    a_shipped_order_cannot_be_cancelled_and_is_paid_once_captured_on_either_runtime,
    a_checkout_is_shipped_captured_and_mailed,
    a_shipment_reported_three_times_and_once_more_under_another_id_captures_once,
    a_cancelled_order_voids_an_authorization_and_refunds_a_capture_once,
);
