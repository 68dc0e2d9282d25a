//! Checkout on both runtimes: the saga across the real services, its
//! compensations checked in the other services' own HTTP APIs, idempotency,
//! swapping the tax implementation in spin.toml alone; and, on shop-host,
//! recovery after the host is killed mid-checkout.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use shop_tests::*;

const APPROVE: &str = "4242424242424242";
const DECLINE: &str = "4000000000000002";
const INSUFFICIENT: &str = "4000000000009995";
const PROCESSOR_ERROR: &str = "4000000000000119";

/// Two skus the catalog sells and the warehouse stocks.
const SKU: &str = "COF-001";
const OTHER_SKU: &str = "COF-002";

/// The shop with its shipments held back. These tests check what the saga
/// itself does (the stock reserved, the payment authorized, the order
/// placed); a shipment would commit the stock and capture the money at once
/// (that is tests/events.rs). With `fulfillment_auto_ship = false` the
/// events still flow, and fulfillment keeps each shipment waiting.
fn shop_on(rt: Runtime) -> HostConfig {
    HostConfig::shop_on(rt).variable("fulfillment_auto_ship", "false")
}

fn shop() -> HostConfig {
    shop_on(Runtime::ShopHost)
}

fn body(cart: &str, card: &str) -> Value {
    json!({
        "cart_id": cart,
        "email": "erika@example.com",
        "address": {"name": "Erika Mustermann", "line1": "Heidestraße 17", "city": "Köln",
                    "postal_code": "51147", "country": "DE"},
        "shipping": "standard",
        "card": {"number": card, "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    })
}

fn add(h: &Host, cart: &str, sku: &str, quantity: u32) {
    let r = h.post(&format!("/api/carts/{cart}/items"), &json!({"sku": sku, "quantity": quantity}));
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
}

fn checkout(h: &Host, key: &str, body: &Value) -> Reply {
    h.request(
        "POST",
        "/api/checkout",
        &[("content-type", "application/json"), ("idempotency-key", key)],
        Some(body.to_string().as_bytes()),
    )
}

fn stock(h: &Host, sku: &str) -> Value {
    let r = h.get(&format!("/api/inventory/{sku}"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

fn reserved(h: &Host, sku: &str) -> i64 {
    stock(h, sku)["reserved"].as_i64().unwrap()
}

fn journal(h: &Host, id: &str) -> Value {
    let r = h.get(&format!("/api/checkout/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

fn outcome(journal: &Value, step: &str) -> Option<String> {
    journal["steps"].as_array().unwrap().iter().find(|s| s["name"] == step).map(|s| s["outcome"].as_str().unwrap().to_string())
}

fn payment_status(h: &Host, authorization_id: &str) -> String {
    let r = h.get(&format!("/api/payments/authorizations/{authorization_id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["status"].as_str().unwrap().to_string()
}

fn orders_of(h: &Host, email: &str) -> Value {
    let r = h.admin_get(&format!("/api/orders?customer={email}"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

/// The checkout id an error answer names, else the most recent one in the logs.
fn checkout_id_of_failure(h: &Host) -> String {
    // The component's stderr reaches the host's a moment after the answer may.
    let line = eventually(Duration::from_secs(5), || {
        h.logs().lines().rev().find(|l| l.starts_with("checkout chk_")).map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("a checkout log line:\n{}", h.logs()));
    line.split_whitespace().nth(1).unwrap().trim_end_matches(':').to_string()
}

fn tax_for(h: &Host, country: &str, goods: i64, shipping: i64) -> i64 {
    let r = h.post(
        "/api/tax/quote",
        &json!({"destination": {"country": country}, "goods": {"amount": goods, "currency": "EUR"},
                "shipping": {"amount": shipping, "currency": "EUR"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["total_tax"]["amount"].as_i64().unwrap()
}

fn price_of(h: &Host, sku: &str) -> i64 {
    h.get(&format!("/api/products/{sku}")).json()["price"]["amount"].as_i64().unwrap()
}

fn a_checkout_places_the_order_with_stock_reserved_payment_authorized_and_the_cart_emptied(rt: Runtime) {
    let h = shop_on(rt).start();
    add(&h, "happy", SKU, 2);
    add(&h, "happy", OTHER_SKU, 1);
    let r = checkout(&h, "happy-1", &body("happy", APPROVE));
    assert_eq!(r.status, 201, "{}", r.text);
    let placed = r.json();
    let totals = &placed["totals"];
    let items = 2 * price_of(&h, SKU) + price_of(&h, OTHER_SKU);
    let shipping = totals["shipping"].as_i64().unwrap();
    assert_eq!(totals["items"], items);
    assert!(shipping > 0, "{placed}");
    assert_eq!(totals["tax"], tax_for(&h, "DE", items, shipping), "German VAT on goods and shipping");
    assert_eq!(totals["grand_total"], items + shipping + totals["tax"].as_i64().unwrap());
    assert_eq!((totals["currency"].as_str(), placed["status"].as_str()), (Some("EUR"), Some("completed")));

    let order_id = placed["order_id"].as_str().unwrap();
    let order = h.admin_get(&format!("/api/orders/{order_id}")).json();
    assert_eq!(order["status"], "placed");
    assert_eq!(order["totals"], *totals);
    assert_eq!(order["checkout_id"], placed["checkout_id"]);
    assert_eq!((reserved(&h, SKU), reserved(&h, OTHER_SKU)), (2, 1));
    let reservation = h.get(&format!("/api/inventory/reservations/{}", order["reservation_id"].as_str().unwrap())).json();
    assert_eq!(reservation["status"], "held");
    let authorization = order["payment_authorization_id"].as_str().unwrap();
    assert_eq!(payment_status(&h, authorization), "authorized");
    assert_eq!(
        h.get(&format!("/api/payments/authorizations/{authorization}")).json()["amount"]["amount"],
        totals["grand_total"]
    );
    assert_eq!(h.get("/api/carts/happy").json()["lines"], json!([]));

    let timeline = journal(&h, placed["checkout_id"].as_str().unwrap());
    assert_eq!((timeline["status"].as_str(), timeline["order_id"].as_str()), (Some("completed"), Some(order_id)));
    let names: Vec<&str> = timeline["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["load_cart", "price_lines", "quote_shipping", "compute_tax", "reserve_stock", "authorize_payment",
         "create_order", "empty_cart", "publish_order_placed"]
    );
    for step in timeline["steps"].as_array().unwrap() {
        assert_eq!(step["outcome"], "ok", "{step}");
        assert!(step["started_at"].as_str().unwrap().ends_with('Z') && step["duration_ms"].is_u64(), "{step}");
    }

    // Its order.placed left checkout's outbox (admin only), and
    // fulfillment keeps the shipment waiting (auto_ship off).
    let auth = format!("Bearer {ADMIN_TOKEN}");
    assert_eq!(h.get("/api/checkout/admin/outbox").status, 401);
    let sent = eventually(Duration::from_secs(10), || {
        let outbox = h.request("GET", "/api/checkout/admin/outbox", &[("authorization", &auth)], None);
        assert_eq!(outbox.status, 200, "{}", outbox.text);
        let outbox = outbox.json();
        (outbox["pending"] == 0).then_some(outbox)
    })
    .expect("order.placed is published");
    let event = &sent["recent"][0];
    assert_eq!((event["type"].as_str(), event["correlation_id"].as_str()), (Some("order.placed"), placed["checkout_id"].as_str()));
    assert!(event["sent_at"].is_string(), "{event}");
    let shipment = eventually(Duration::from_secs(10), || {
        let r = h.admin_get(&format!("/api/fulfillment/shipments/{}", placed["order_id"].as_str().unwrap()));
        (r.status == 200).then(|| r.json())
    })
    .expect("fulfillment made a shipment");
    assert_eq!(shipment["status"], "pending", "{shipment}");
}

fn out_of_stock_names_the_skus_and_neither_reserves_nor_charges(rt: Runtime) {
    let h = shop_on(rt).start();
    let r = h.request(
        "PUT",
        &format!("/api/inventory/{SKU}"),
        &[("content-type", "application/json"), ("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        Some(br#"{"on_hand": 1}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    add(&h, "short", SKU, 3);
    add(&h, "short", OTHER_SKU, 1);
    let r = checkout(&h, "short-1", &body("short", APPROVE));
    assert_eq!((r.status, r.error_code().as_str()), (409, "out_of_stock"), "{}", r.text);
    assert_eq!(r.json()["error"]["skus"], json!([SKU]));
    assert_eq!((reserved(&h, SKU), reserved(&h, OTHER_SKU)), (0, 0));
    let timeline = journal(&h, &checkout_id_of_failure(&h));
    assert_eq!(timeline["status"], "failed");
    assert_eq!(outcome(&timeline, "reserve_stock").as_deref(), Some("failed"));
    assert_eq!(outcome(&timeline, "authorize_payment"), None, "nothing was authorized");
    assert!(timeline.get("authorization_id").is_none());
    assert_eq!(orders_of(&h, "erika@example.com")["total"], 0);
    assert_eq!(h.get("/api/carts/short").json()["lines"].as_array().unwrap().len(), 2, "the cart is kept");
}

fn a_refused_payment_releases_the_reservation_and_places_no_order(rt: Runtime) {
    let h = shop_on(rt).start();
    for (i, (card, status, code)) in [
        (DECLINE, 402, "card_declined"),
        (INSUFFICIENT, 402, "insufficient_funds"),
        (PROCESSOR_ERROR, 503, "payment_processor_error"),
    ]
    .into_iter()
    .enumerate()
    {
        let cart = format!("refused-{i}");
        add(&h, &cart, SKU, 2);
        let before = stock(&h, SKU);
        let r = checkout(&h, &format!("refused-key-{i}"), &body(&cart, card));
        assert_eq!((r.status, r.error_code().as_str()), (status, code), "{}", r.text);
        assert_eq!(stock(&h, SKU), before, "{code}: the reservation was released");
        let timeline = journal(&h, &checkout_id_of_failure(&h));
        assert_eq!(timeline["status"], "failed");
        assert_eq!(outcome(&timeline, "reserve_stock").as_deref(), Some("compensated"), "{timeline}");
        assert_eq!(timeline["steps"].as_array().unwrap().iter().find(|s| s["name"] == "reserve_stock").unwrap()["compensation"]["name"], "release_stock");
        assert_eq!(outcome(&timeline, "authorize_payment").as_deref(), Some("failed"));
        assert_eq!(outcome(&timeline, "create_order"), None);
        assert_eq!(timeline["error"]["code"], code);
        let reservation = h.get(&format!("/api/inventory/reservations/{}", timeline["reservation_id"].as_str().unwrap())).json();
        assert_eq!(reservation["status"], "released");
        assert_eq!(h.get(&format!("/api/carts/{cart}")).json()["lines"].as_array().unwrap().len(), 1);
    }
    assert_eq!(orders_of(&h, "erika@example.com")["total"], 0);
}

fn bad_addresses_and_empty_carts_are_refused_with_422_and_change_nothing(rt: Runtime) {
    let h = shop_on(rt).start();
    add(&h, "addr", SKU, 1);
    let mut unknown_country = body("addr", APPROVE);
    unknown_country["address"]["country"] = json!("XX");
    let r = checkout(&h, "addr-1", &unknown_country);
    assert_eq!((r.status, r.error_code().as_str()), (422, "unknown_country"), "{}", r.text);
    let mut no_city = body("addr", APPROVE);
    no_city["address"]["city"] = json!("  ");
    let r = checkout(&h, "addr-2", &no_city);
    assert_eq!((r.status, r.error_code().as_str()), (422, "invalid_address"), "{}", r.text);
    assert_eq!(r.json()["error"]["field"], "city");
    let mut no_address = body("addr", APPROVE);
    no_address.as_object_mut().unwrap().remove("address");
    assert_eq!(checkout(&h, "addr-3", &no_address).error_code(), "invalid_address");
    assert_eq!(reserved(&h, SKU), 0);

    let r = checkout(&h, "empty-1", &body("never-filled", APPROVE));
    assert_eq!((r.status, r.error_code().as_str()), (422, "empty_cart"), "{}", r.text);
    let timeline = journal(&h, &checkout_id_of_failure(&h));
    assert_eq!(timeline["status"], "failed");
    assert_eq!(outcome(&timeline, "load_cart").as_deref(), Some("failed"));
    assert_eq!(timeline["steps"].as_array().unwrap().len(), 1);

    let r = h.request("POST", "/api/checkout", &[("content-type", "application/json")], Some(body("addr", APPROVE).to_string().as_bytes()));
    assert_eq!((r.status, r.error_code().as_str()), (400, "missing_idempotency_key"));
    assert_eq!(h.get("/api/checkout/chk_nope").error_code(), "checkout_not_found");
    assert_eq!(orders_of(&h, "erika@example.com")["total"], 0);
}

fn without_token(mut answer: Value) -> Value {
    answer.as_object_mut().unwrap().remove("order_access_token");
    answer
}

fn the_same_idempotency_key_replays_the_first_answer_and_never_charges_twice(rt: Runtime) {
    let h = shop_on(rt).start();
    add(&h, "replay", SKU, 1);
    let first = checkout(&h, "replay-1", &body("replay", APPROVE));
    assert_eq!(first.status, 201, "{}", first.text);
    // The cart is empty now: a second run would fail, a replay does not. It
    // is the first answer without the guest's order access token, which is
    // shown once (tests/access.rs).
    let again = checkout(&h, "replay-1", &body("replay", APPROVE));
    assert_eq!((again.status, again.json()), (201, without_token(first.json())));
    assert_eq!(reserved(&h, SKU), 1);
    assert_eq!(orders_of(&h, "erika@example.com")["total"], 1);

    let r = checkout(&h, "replay-1", &body("replay", DECLINE));
    assert_eq!((r.status, r.error_code().as_str()), (422, "idempotency_key_reused"), "{}", r.text);

    // A failure replays as the same failure.
    add(&h, "replay-2", SKU, 1);
    let declined = checkout(&h, "replay-2", &body("replay-2", DECLINE));
    assert_eq!(declined.status, 402);
    let again = checkout(&h, "replay-2", &body("replay-2", DECLINE));
    assert_eq!((again.status, again.text), (402, declined.text));
}

fn identical_requests_racing_make_one_order_and_one_authorization(rt: Runtime) {
    let h = shop_on(rt).start();
    add(&h, "race", SKU, 2);
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4).map(|_| s.spawn(|| checkout(&h, "race-1", &body("race", APPROVE)))).collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for r in &replies {
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(without_token(r.json()), without_token(replies[0].json()));
    }
    let with_token = replies.iter().filter(|r| r.json().get("order_access_token").is_some()).count();
    assert_eq!(with_token, 1, "only the checkout that ran shows the order's token");
    assert_eq!(reserved(&h, SKU), 2);
    let orders = orders_of(&h, "erika@example.com");
    assert_eq!(orders["total"], 1, "{orders}");
    let authorization = orders["orders"][0]["payment_authorization_id"].as_str().unwrap();
    assert_eq!(payment_status(&h, authorization), "authorized");
    if rt == Runtime::ShopHost {
        // shop-host logs each request; Spin logs none.
        let four = eventually(Duration::from_secs(5), || (h.logs().matches("POST /api/checkout -> checkout 201").count() == 4).then_some(()));
        assert!(four.is_some(), "{}", h.logs());
    }
}

fn file_hash(path: &std::path::Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(path).unwrap().hash(&mut hasher);
    hasher.finish()
}

fn swapping_the_tax_dependency_in_spin_toml_changes_totals_without_rebuilding_checkout(rt: Runtime) {
    let checkout_wasm = wasm("checkout");
    let before = file_hash(&checkout_wasm);
    let modified = std::fs::metadata(&checkout_wasm).unwrap().modified().unwrap();

    let vat = shop_on(rt).start();
    add(&vat, "swap", SKU, 3);
    let with_vat = checkout(&vat, "swap-1", &body("swap", APPROVE));
    assert_eq!(with_vat.status, 201, "{}", with_vat.text);
    drop(vat);

    let dir = TempDir::new("swap");
    let original = shop_manifest_text();
    let tax = wasm("tax").display().to_string();
    let dependency = format!(r#""shop:tax/tax@0.1.0" = {{ path = "{tax}" }}"#);
    assert!(original.contains(&dependency), "spin.toml wires checkout's tax to tax.wasm");
    let flat = wasm("tax_flat").display().to_string();
    let swapped = original.replace(
        &dependency,
        &format!(r#""shop:tax/tax@0.1.0" = {{ path = "{flat}", inherit_configuration = true }}"#),
    );
    let flat = HostConfig::manifest(write_manifest(dir.path(), &swapped))
        .runtime(rt)
        .variable("admin_token", ADMIN_TOKEN)
        .variable("fulfillment_auto_ship", "false")
        .variable("flat_tax_rate_basis_points", "1000")
        .start();
    add(&flat, "swap", SKU, 3);
    let with_flat = checkout(&flat, "swap-1", &body("swap", APPROVE));
    assert_eq!(with_flat.status, 201, "{}", with_flat.text);

    let (vat_totals, flat_totals) = (&with_vat.json()["totals"], &with_flat.json()["totals"]);
    assert_eq!(vat_totals["items"], flat_totals["items"]);
    assert_eq!(vat_totals["shipping"], flat_totals["shipping"]);
    let taxed = vat_totals["items"].as_i64().unwrap() + vat_totals["shipping"].as_i64().unwrap();
    assert_eq!(vat_totals["tax"], tax_for(&flat, "DE", vat_totals["items"].as_i64().unwrap(), vat_totals["shipping"].as_i64().unwrap()));
    assert_eq!(flat_totals["tax"].as_i64().unwrap(), (taxed as f64 * 0.10).round() as i64, "10 % flat");
    assert_ne!(vat_totals["tax"], flat_totals["tax"]);
    assert_eq!(file_hash(&checkout_wasm), before, "checkout.wasm is the same file");
    assert_eq!(std::fs::metadata(&checkout_wasm).unwrap().modified().unwrap(), modified);
}

// ---- crash recovery --------------------------------------------------------------

/// Sends a checkout and does not wait for the answer: the host is killed
/// while the checkout is paused.
fn send_in_background(h: &Host, key: &str, body: &Value) {
    let address = h.url("").trim_start_matches("http://").trim_end_matches('/').to_string();
    let payload = body.to_string();
    let request = format!(
        "POST /api/checkout HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\nidempotency-key: {key}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
        payload.len()
    );
    std::thread::spawn(move || {
        if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
            let _ = stream.write_all(request.as_bytes());
            let _ = stream.read_to_end(&mut Vec::new());
        }
    });
}

/// Waits for the checkout to block after `step`; returns its id.
fn paused_checkout(h: &Host, step: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let marker = format!("paused after {step} ");
    loop {
        if let Some(line) = h.logs().lines().find(|l| l.contains(&marker)) {
            return line.split_whitespace().nth(1).unwrap().trim_end_matches(':').to_string();
        }
        assert!(Instant::now() < deadline, "the checkout never paused after {step}:\n{}", h.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The shop after a crash, on `state`, every checkout stale at once; without
/// checkout's cron trigger unless `timer`, so that a test sees who recovers
/// (the admin route, the next checkout) rather than racing the tick.
fn restarted(dir: &TempDir, state: &std::path::Path, timer: bool) -> Host {
    const CHECKOUT_TIMER: &str = "[[trigger.cron]]\ncomponent = \"checkout-timer\"\ncron_expression = \"*/2 * * * * *\"\n";
    let text = shop_manifest_text();
    assert!(text.contains(CHECKOUT_TIMER), "spin.toml gives checkout a cron trigger");
    let text = if timer { text } else { text.replace(CHECKOUT_TIMER, "") };
    HostConfig::manifest(write_manifest(dir.path(), &text))
        .variable("admin_token", ADMIN_TOKEN)
        .variable("fulfillment_auto_ship", "false")
        .state_dir(state)
        .variable("checkout_recovery_grace_seconds", "0")
        .start()
}

/// Kills the host while a checkout is paused after `step`, restarts it on the
/// same state without the pause, and lets `recover` run recovery.
fn crash_after(step: &str, recover: impl FnOnce(&Host)) -> (Host, String, TempDir) {
    let dir = TempDir::new("crash");
    let state = dir.path().join("state");
    let h = shop().state_dir(&state).variable("checkout_pause_after_step", step).start();
    add(&h, "crash", SKU, 2);
    send_in_background(&h, "crash-1", &body("crash", APPROVE));
    let id = paused_checkout(&h, step);
    assert_eq!(journal(&h, &id)["status"], "running");
    h.kill();
    let h = restarted(&dir, &state, false);
    assert_eq!(journal(&h, &id)["status"], "running", "nothing finished it while the host was down");
    recover(&h);
    (h, id, dir)
}

fn recover_by_admin(h: &Host) {
    let r = h.request("POST", "/api/checkout/recover", &[], None);
    assert_eq!(r.status, 401);
    let r = h.request("POST", "/api/checkout/recover", &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))], None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["recovered"].as_array().unwrap().len(), 1, "{}", r.text);
}

#[test]
fn a_checkout_killed_after_reserving_is_undone_by_recovery() {
    let (h, id, _dir) = crash_after("reserve_stock", recover_by_admin);
    let timeline = journal(&h, &id);
    assert_eq!(timeline["status"], "failed", "{timeline}");
    assert_eq!(outcome(&timeline, "reserve_stock").as_deref(), Some("compensated"));
    assert_eq!(timeline["error"]["code"], "checkout_interrupted");
    assert_eq!(reserved(&h, SKU), 0, "the reservation was released");
    assert_eq!(orders_of(&h, "erika@example.com")["total"], 0);
    // The client's retry with the same key gets the final answer.
    let r = checkout(&h, "crash-1", &body("crash", APPROVE));
    assert_eq!((r.status, r.error_code().as_str()), (409, "checkout_interrupted"));
}

#[test]
fn a_checkout_killed_after_authorizing_voids_and_releases_on_the_next_checkout() {
    // Lazy recovery: the next POST /api/checkout finishes stale checkouts.
    let (h, id, _dir) = crash_after("authorize_payment", |h| {
        add(h, "next", OTHER_SKU, 1);
        assert_eq!(checkout(h, "next-1", &body("next", APPROVE)).status, 201);
    });
    let timeline = journal(&h, &id);
    assert_eq!(timeline["status"], "failed", "{timeline}");
    assert_eq!(outcome(&timeline, "authorize_payment").as_deref(), Some("compensated"));
    assert_eq!(outcome(&timeline, "reserve_stock").as_deref(), Some("compensated"));
    assert_eq!(payment_status(&h, timeline["authorization_id"].as_str().unwrap()), "voided");
    assert_eq!(reserved(&h, SKU), 0);
    assert_eq!(orders_of(&h, "erika@example.com")["total"], 1, "only the next checkout's order");
}

#[test]
fn a_checkout_killed_after_authorizing_is_undone_by_the_cron_tick_with_no_request_at_all() {
    let (h, id, _dir) = crash_after_with_timer("authorize_payment");
    let done = eventually(Duration::from_secs(20), || {
        let timeline = journal(&h, &id);
        (timeline["status"] == "failed").then_some(timeline)
    });
    let timeline = done.unwrap_or_else(|| panic!("the tick never recovered {id}: {}\n{}", journal(&h, &id), h.logs()));
    assert_eq!(outcome(&timeline, "authorize_payment").as_deref(), Some("compensated"), "{timeline}");
    assert_eq!(outcome(&timeline, "reserve_stock").as_deref(), Some("compensated"), "{timeline}");
    assert_eq!(payment_status(&h, timeline["authorization_id"].as_str().unwrap()), "voided");
    assert_eq!(reserved(&h, SKU), 0, "the reservation was released");
}

/// As [`crash_after`], but the restarted shop keeps checkout's cron trigger
/// and nothing else is done: only the tick can recover.
fn crash_after_with_timer(step: &str) -> (Host, String, TempDir) {
    let dir = TempDir::new("crash-tick");
    let state = dir.path().join("state");
    let h = shop().state_dir(&state).variable("checkout_pause_after_step", step).start();
    add(&h, "crash", SKU, 2);
    send_in_background(&h, "crash-1", &body("crash", APPROVE));
    let id = paused_checkout(&h, step);
    h.kill();
    (restarted(&dir, &state, true), id, dir)
}

#[test]
fn a_checkout_killed_after_creating_the_order_is_finished_forward() {
    let (h, id, _dir) = crash_after("create_order", recover_by_admin);
    let timeline = journal(&h, &id);
    assert_eq!(timeline["status"], "completed", "{timeline}");
    assert_eq!(outcome(&timeline, "empty_cart").as_deref(), Some("ok"));
    assert_eq!(outcome(&timeline, "publish_order_placed").as_deref(), Some("ok"));
    let order_id = timeline["order_id"].as_str().unwrap();
    let order = h.admin_get(&format!("/api/orders/{order_id}")).json();
    assert_eq!(order["status"], "placed");
    assert_eq!(payment_status(&h, order["payment_authorization_id"].as_str().unwrap()), "authorized");
    assert_eq!(reserved(&h, SKU), 2, "the reservation belongs to the order");
    assert_eq!(h.get("/api/carts/crash").json()["lines"], json!([]));
    let r = checkout(&h, "crash-1", &body("crash", APPROVE));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["order_id"], order_id);
}

#[test]
fn an_authorization_whose_answer_was_lost_in_a_crash_is_found_by_its_key_and_voided() {
    // The host dies after payment committed the authorization and before
    // checkout journaled its id: only the deterministic key leads to it.
    let step = "authorize_payment:before_journal";
    let dir = TempDir::new("lost");
    let state = dir.path().join("state");
    let h = shop().state_dir(&state).variable("checkout_pause_after_step", step).start();
    let before = stock(&h, SKU);
    add(&h, "lost", SKU, 2);
    send_in_background(&h, "lost-1", &body("lost", APPROVE));
    let id = paused_checkout(&h, step);
    let timeline = journal(&h, &id);
    assert_eq!(outcome(&timeline, "authorize_payment").as_deref(), Some("running"), "{timeline}");
    assert!(timeline.get("authorization_id").is_none(), "the journal never learned it: {timeline}");
    let by_key = format!("/api/payments?idempotency_key={id}:authorize");
    let found = h.get(&by_key);
    assert_eq!(found.status, 200, "payment committed the authorization: {}", found.text);
    assert_eq!(found.json()["status"], "authorized");
    let authorization = found.json()["id"].as_str().unwrap().to_string();
    assert_eq!(reserved(&h, SKU), 2);
    h.kill();

    let h = restarted(&dir, &state, false);
    assert_eq!(journal(&h, &id)["status"], "running", "nothing finished it while the host was down");
    recover_by_admin(&h);

    let timeline = journal(&h, &id);
    assert_eq!(timeline["status"], "failed", "{timeline}");
    assert_eq!(timeline["error"]["code"], "checkout_interrupted");
    let authorize = timeline["steps"].as_array().unwrap().iter().find(|s| s["name"] == "authorize_payment").unwrap();
    assert_eq!(authorize["compensation"]["name"], "void_payment", "{timeline}");
    assert_eq!(outcome(&timeline, "reserve_stock").as_deref(), Some("compensated"));
    assert_eq!(timeline["authorization_id"].as_str(), Some(authorization.as_str()), "recovery names what it voided");
    let payment = h.get(&format!("/api/payments/{authorization}"));
    assert_eq!((payment.status, payment.json()["status"].as_str()), (200, Some("voided")), "{}", payment.text);
    assert_eq!(h.get(&by_key).json()["status"], "voided");
    assert_eq!(stock(&h, SKU), before, "the reservation was released");
    let suffix = id.strip_prefix("chk_").unwrap();
    assert_eq!(h.admin_get(&format!("/api/orders/ord_{suffix}")).status, 404, "no order");
    assert_eq!(orders_of(&h, "erika@example.com")["total"], 0);
    let r = checkout(&h, "lost-1", &body("lost", APPROVE));
    assert_eq!((r.status, r.error_code().as_str()), (409, "checkout_interrupted"), "{}", r.text);
}

on_both_runtimes!(
    a_checkout_places_the_order_with_stock_reserved_payment_authorized_and_the_cart_emptied,
    out_of_stock_names_the_skus_and_neither_reserves_nor_charges,
    a_refused_payment_releases_the_reservation_and_places_no_order,
    bad_addresses_and_empty_carts_are_refused_with_422_and_change_nothing,
    the_same_idempotency_key_replays_the_first_answer_and_never_charges_twice,
    identical_requests_racing_make_one_order_and_one_authorization,
    swapping_the_tax_dependency_in_spin_toml_changes_totals_without_rebuilding_checkout,
);
