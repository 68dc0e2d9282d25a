//! The inventory service through the real host and the real inventory.wasm.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use shop_tests::*;

fn shop_on(rt: Runtime) -> Host {
    HostConfig::shop_on(rt).start()
}

fn admin_put(h: &Host, sku: &str, body: &Value) -> Reply {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    h.request(
        "PUT",
        &format!("/api/inventory/{sku}"),
        &[("content-type", "application/json"), ("authorization", &auth)],
        Some(body.to_string().as_bytes()),
    )
}

/// Sets `sku`'s stock through the admin route.
fn stock(h: &Host, sku: &str, on_hand: u32) {
    let r = admin_put(h, sku, &json!({ "on_hand": on_hand }));
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
    assert_eq!(r.json()["on_hand"], on_hand);
}

fn level(h: &Host, sku: &str) -> Value {
    let r = h.get(&format!("/api/inventory/{sku}"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

fn counts(h: &Host, sku: &str) -> (u64, u64, u64) {
    let l = level(h, sku);
    (
        l["on_hand"].as_u64().unwrap(),
        l["reserved"].as_u64().unwrap(),
        l["available"].as_u64().unwrap(),
    )
}

fn reserve(h: &Host, body: Value) -> Reply {
    h.post("/api/inventory/reservations", &body)
}

fn every_catalog_product_is_stocked_from_the_data_file(rt: Runtime) {
    let h = shop_on(rt);
    let seed: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("components/inventory/stock.json")).unwrap())
            .unwrap();
    let products: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("components/catalog/products.json")).unwrap())
            .unwrap();
    for product in products.as_array().unwrap() {
        let sku = product["sku"].as_str().unwrap();
        let l = level(&h, sku);
        assert_eq!(l["sku"], sku);
        assert_eq!(l["on_hand"], seed[sku], "{sku}");
        assert_eq!(l["reserved"], 0);
        assert_eq!(l["available"], seed[sku]);
    }
    let r = h.get("/api/inventory/NOPE-404");
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.error_code(), "unknown_sku");
    assert_eq!(r.json()["error"]["skus"], json!(["NOPE-404"]));
}

fn reserve_then_commit_takes_the_stock_out_of_the_warehouse(rt: Runtime) {
    let h = shop_on(rt);
    stock(&h, "LIFE-001", 10);
    let r = reserve(&h, json!({ "id": "order-1", "lines": [{ "sku": "LIFE-001", "quantity": 3 }] }));
    assert_eq!(r.status, 201, "{}", r.text);
    let body = r.json();
    assert_eq!(body["id"], "order-1");
    assert_eq!(body["status"], "held");
    assert_eq!(body["lines"], json!([{ "sku": "LIFE-001", "quantity": 3 }]));
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(counts(&h, "LIFE-001"), (10, 3, 7));

    let got = h.get("/api/inventory/reservations/order-1");
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json()["status"], "held");
    assert_eq!(got.json()["expires_at"], body["expires_at"]);

    let r = h.post("/api/inventory/reservations/order-1/commit", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "committed");
    assert_eq!(counts(&h, "LIFE-001"), (7, 0, 7), "committed stock left the warehouse");

    // Committing again is a retry: same answer, stock taken once.
    let r = h.request("POST", "/api/inventory/reservations/order-1/commit", &[], None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "committed");
    assert_eq!(counts(&h, "LIFE-001"), (7, 0, 7));

    let r = h.delete("/api/inventory/reservations/order-1");
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.error_code(), "reservation_committed");
    assert_eq!(counts(&h, "LIFE-001"), (7, 0, 7));
}

fn release_gives_the_stock_back(rt: Runtime) {
    let h = shop_on(rt);
    stock(&h, "LIFE-002", 5);
    let r = reserve(&h, json!({ "lines": [{ "sku": "LIFE-002", "quantity": 5 }] }));
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("res_"), "{id}");
    assert_eq!(counts(&h, "LIFE-002"), (5, 5, 0));

    let r = h.delete(&format!("/api/inventory/reservations/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "released");
    assert_eq!(counts(&h, "LIFE-002"), (5, 0, 5));
    let r = h.delete(&format!("/api/inventory/reservations/{id}"));
    assert_eq!(r.status, 200, "releasing again is a retry: {}", r.text);
    assert_eq!(counts(&h, "LIFE-002"), (5, 0, 5));

    let r = h.post(&format!("/api/inventory/reservations/{id}/commit"), &json!({}));
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.error_code(), "reservation_released");

    for path in [
        "/api/inventory/reservations/res_nothere",
        "/api/inventory/reservations/res_nothere/commit",
    ] {
        let r = if path.ends_with("commit") { h.post(path, &json!({})) } else { h.get(path) };
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert_eq!(r.error_code(), "reservation_not_found");
    }
    let r = h.delete("/api/inventory/reservations/res_nothere");
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "reservation_not_found");
}

fn a_refusal_names_every_short_sku_and_reserves_nothing(rt: Runtime) {
    let h = shop_on(rt);
    stock(&h, "SHORT-A", 1);
    stock(&h, "SHORT-B", 0);
    stock(&h, "PLENTY-C", 50);
    let r = reserve(
        &h,
        json!({ "lines": [
            { "sku": "PLENTY-C", "quantity": 2 },
            { "sku": "SHORT-B", "quantity": 1 },
            { "sku": "SHORT-A", "quantity": 2 }
        ] }),
    );
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.error_code(), "insufficient_stock");
    let error = &r.json()["error"];
    assert_eq!(
        error["shortages"],
        json!([
            { "sku": "SHORT-A", "requested": 2, "available": 1 },
            { "sku": "SHORT-B", "requested": 1, "available": 0 }
        ])
    );
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("SHORT-A") && message.contains("SHORT-B"), "{message}");
    assert_eq!(counts(&h, "PLENTY-C"), (50, 0, 50), "all or nothing");
    assert_eq!(counts(&h, "SHORT-A"), (1, 0, 1));

    let r = reserve(
        &h,
        json!({ "lines": [
            { "sku": "PLENTY-C", "quantity": 1 },
            { "sku": "GHOST-2", "quantity": 1 },
            { "sku": "GHOST-1", "quantity": 1 }
        ] }),
    );
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.error_code(), "unknown_sku");
    assert_eq!(r.json()["error"]["skus"], json!(["GHOST-1", "GHOST-2"]));
    assert_eq!(counts(&h, "PLENTY-C"), (50, 0, 50));
}

fn reserving_again_with_the_same_id_returns_the_same_reservation(rt: Runtime) {
    let h = shop_on(rt);
    stock(&h, "IDEM-A", 10);
    stock(&h, "IDEM-B", 10);
    let body = json!({ "id": "checkout-7", "ttl_seconds": 600, "lines": [
        { "sku": "IDEM-A", "quantity": 2 }, { "sku": "IDEM-B", "quantity": 1 }
    ] });
    let first = reserve(&h, body.clone());
    assert_eq!(first.status, 201, "{}", first.text);
    // The same lines in another order are the same goods.
    let again = reserve(
        &h,
        json!({ "id": "checkout-7", "ttl_seconds": 600, "lines": [
            { "sku": "IDEM-B", "quantity": 1 }, { "sku": "IDEM-A", "quantity": 2 }
        ] }),
    );
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json(), first.json());
    assert_eq!(counts(&h, "IDEM-A"), (10, 2, 8), "held once");

    let other = reserve(
        &h,
        json!({ "id": "checkout-7", "lines": [{ "sku": "IDEM-A", "quantity": 3 }] }),
    );
    assert_eq!(other.status, 409, "{}", other.text);
    assert_eq!(other.error_code(), "reservation_conflict");
    assert_eq!(counts(&h, "IDEM-A"), (10, 2, 8));

    // Concurrent retries of one reserve hold the stock once.
    let body = json!({ "id": "checkout-8", "lines": [{ "sku": "IDEM-B", "quantity": 4 }] });
    let barrier = Barrier::new(16);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    reserve(&h, body.clone()).status
                })
            })
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 15, "{statuses:?}");
    assert_eq!(counts(&h, "IDEM-B"), (10, 5, 5));
}

fn an_expired_reservation_stops_holding_by_itself(rt: Runtime) {
    let h = shop_on(rt);
    stock(&h, "TTL-001", 2);
    let r = reserve(&h, json!({ "id": "short-lived", "ttl_seconds": 1, "lines": [{ "sku": "TTL-001", "quantity": 2 }] }));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(counts(&h, "TTL-001"), (2, 2, 0));
    let refused = reserve(&h, json!({ "lines": [{ "sku": "TTL-001", "quantity": 1 }] }));
    assert_eq!(refused.status, 409, "{}", refused.text);

    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(counts(&h, "TTL-001"), (2, 0, 2), "no timer ran, yet the hold is gone");
    assert_eq!(h.get("/api/inventory/reservations/short-lived").json()["status"], "expired");
    let r = h.post("/api/inventory/reservations/short-lived/commit", &json!({}));
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.error_code(), "reservation_expired");
    assert_eq!(counts(&h, "TTL-001"), (2, 0, 2), "an expired commit takes nothing");
    let r = reserve(&h, json!({ "lines": [{ "sku": "TTL-001", "quantity": 2 }] }));
    assert_eq!(r.status, 201, "the stock is available again: {}", r.text);
    // Releasing an expired reservation is allowed and changes nothing.
    let r = h.delete("/api/inventory/reservations/short-lived");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(counts(&h, "TTL-001"), (2, 2, 0));
}

fn admin_sets_stock_with_the_token_only(rt: Runtime) {
    let h = shop_on(rt);
    let body = json!({ "on_hand": 7 }).to_string();
    for auth in [None, Some("Bearer wrong-token"), Some("Basic abc")] {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        let r = h.request("PUT", "/api/inventory/COF-001", &headers, Some(body.as_bytes()));
        assert_eq!(r.status, 401, "{auth:?}: {}", r.text);
        assert_eq!(r.error_code(), "unauthorized");
    }
    let before = counts(&h, "COF-001");

    let r = admin_put(&h, "NEW-SKU-1", &json!({ "on_hand": 4 }));
    assert_eq!(r.status, 201, "a new sku: {}", r.text);
    assert_eq!(r.json(), json!({ "sku": "NEW-SKU-1", "on_hand": 4, "reserved": 0, "available": 4 }));
    let r = admin_put(&h, "NEW-SKU-1", &json!({ "on_hand": 0 }));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(counts(&h, "NEW-SKU-1"), (0, 0, 0));

    for bad in [json!({ "on_hand": -1 }), json!({ "on_hand": 1.5 }), json!({ "on_hand": "3" }), json!({}), json!({ "on_hand": 10_000_000_000u64 })] {
        let r = admin_put(&h, "COF-001", &bad);
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        assert_eq!(r.error_code(), "invalid_stock");
    }
    let r = admin_put(&h, "bad%20sku", &json!({ "on_hand": 1 }));
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error_code(), "invalid_sku");
    assert_eq!(counts(&h, "COF-001"), before, "refused changes changed nothing");
}

fn an_admin_count_below_the_holds_leaves_nothing_available(rt: Runtime) {
    let h = shop_on(rt);
    stock(&h, "RECOUNT-1", 5);
    let r = reserve(&h, json!({ "id": "held-4", "lines": [{ "sku": "RECOUNT-1", "quantity": 4 }] }));
    assert_eq!(r.status, 201, "{}", r.text);
    stock(&h, "RECOUNT-1", 2);
    assert_eq!(counts(&h, "RECOUNT-1"), (2, 4, 0), "available never goes negative");
    let r = h.post("/api/inventory/reservations/held-4/commit", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(counts(&h, "RECOUNT-1"), (0, 0, 0), "on hand never goes negative");
}

fn bad_input_gets_a_clear_4xx(rt: Runtime) {
    let h = shop_on(rt);
    let post = |body: &[u8]| {
        h.request("POST", "/api/inventory/reservations", &[("content-type", "application/json")], Some(body))
    };
    let r = post(b"{not json");
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "malformed_json");
    let r = post(b"");
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "malformed_json");
    let big = vec![b'a'; 10 << 20];
    let r = post(&big);
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "payload_too_large");

    let cases = [
        (json!({ "lines": [{ "sku": "COF-001", "quantity": 0 }] }), 422, "invalid_quantity"),
        (json!({ "lines": [{ "sku": "COF-001", "quantity": 10000 }] }), 422, "invalid_quantity"),
        (json!({ "lines": [{ "sku": "COF-001", "quantity": -2 }] }), 422, "invalid_quantity"),
        (json!({ "lines": [{ "sku": "COF-001", "quantity": 1.5 }] }), 422, "invalid_quantity"),
        (json!({ "lines": [{ "sku": "COF-001" }] }), 422, "invalid_quantity"),
        (json!({ "lines": [] }), 422, "invalid_lines"),
        (json!({}), 422, "invalid_lines"),
        (json!({ "lines": "COF-001" }), 422, "invalid_lines"),
        (json!({ "lines": [{ "sku": "cof-001", "quantity": 1 }] }), 422, "invalid_lines"),
        (
            json!({ "lines": [{ "sku": "COF-001", "quantity": 1 }, { "sku": "COF-001", "quantity": 1 }] }),
            422,
            "invalid_lines",
        ),
        (json!({ "lines": [{ "sku": "COF-001", "quantity": 1 }], "ttl_seconds": 0 }), 422, "invalid_ttl"),
        (json!({ "lines": [{ "sku": "COF-001", "quantity": 1 }], "ttl_seconds": 3601 }), 422, "invalid_ttl"),
        (json!({ "lines": [{ "sku": "COF-001", "quantity": 1 }], "ttl_seconds": "60" }), 422, "invalid_ttl"),
        (json!({ "id": "a b", "lines": [{ "sku": "COF-001", "quantity": 1 }] }), 400, "invalid_reservation_id"),
        (json!({ "id": 5, "lines": [{ "sku": "COF-001", "quantity": 1 }] }), 422, "invalid_request"),
        (json!([1, 2]), 422, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let r = reserve(&h, body.clone());
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert_eq!(r.error_code(), code, "{body}");
    }
    assert_eq!(counts(&h, "COF-001").1, 0, "nothing was reserved");

    let r = h.request("PATCH", "/api/inventory/COF-001", &[], None);
    assert_eq!(r.status, 405);
    r.error_code();
    let r = h.get("/api/inventory/a/b/c/d");
    assert_eq!(r.status, 404);
    r.error_code();
    let r = h.get("/api/inventory/reservations/bad%20id");
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error_code(), "invalid_reservation_id");
}

/// Fires `n` single-unit reserves of `sku` at once, each from its own thread
/// and its own HTTP request; returns (succeeded, refused, elapsed) and checks
/// every refusal is `insufficient_stock` and the count never passes `on_hand`.
fn race(h: &Host, sku: &str, n: usize, ttl_seconds: u32, on_hand: u64) -> (usize, usize, Duration) {
    let barrier = Barrier::new(n + 1);
    let done = std::sync::atomic::AtomicBool::new(false);
    let started = Instant::now();
    let (replies, max_reserved) = std::thread::scope(|s| {
        // A watcher reading the level while the race runs.
        let watcher = s.spawn(|| {
            barrier.wait();
            let mut max_reserved = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (seen_on_hand, reserved, available) = counts(h, sku);
                assert_eq!(seen_on_hand, on_hand);
                assert!(reserved <= on_hand, "oversold: {reserved} reserved of {on_hand}");
                assert_eq!(available, on_hand - reserved);
                max_reserved = max_reserved.max(reserved);
                std::thread::sleep(Duration::from_millis(5));
            }
            max_reserved
        });
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    reserve(h, json!({ "ttl_seconds": ttl_seconds, "lines": [{ "sku": sku, "quantity": 1 }] }))
                })
            })
            .collect();
        let replies: Vec<Reply> = handles.into_iter().map(|t| t.join().unwrap()).collect();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (replies, watcher.join().unwrap())
    });
    let elapsed = started.elapsed();
    let succeeded = replies.iter().filter(|r| r.status == 201).count();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status != 201).collect();
    for r in &refused {
        assert_eq!(r.status, 409, "{}", r.text);
        assert_eq!(r.error_code(), "insufficient_stock");
        let shortage = &r.json()["error"]["shortages"][0];
        assert_eq!(shortage["sku"], sku);
        assert_eq!(shortage["requested"], 1);
        assert_eq!(shortage["available"], 0);
    }
    let ids: std::collections::HashSet<String> = replies
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), succeeded, "every success is its own reservation");
    assert!(max_reserved <= on_hand);
    (succeeded, refused.len(), elapsed)
}

fn concurrent_checkouts_never_oversell(rt: Runtime) {
    let h = shop_on(rt);
    const RACERS: usize = 120;
    stock(&h, "RACE-001", 10);

    // Short holds (3 s): exactly 10 win as long as none expires mid-race.
    const SHORT_TTL: u32 = 3;
    let (won, lost, took) = race(&h, "RACE-001", RACERS, SHORT_TTL, 10);
    eprintln!("race 1: {RACERS} concurrent reserves of 1 unit on 10: {won} held, {lost} refused, in {took:?}");
    assert!(
        took < Duration::from_secs(SHORT_TTL.into()),
        "the race took {took:?}, longer than its holds last; the machine is too loaded for this check"
    );
    assert_eq!((won, lost), (10, RACERS - 10));
    assert_eq!(counts(&h, "RACE-001"), (10, 10, 0));

    // The holds expire by the clock alone; wait for that, then race again.
    let waited = Instant::now();
    while counts(&h, "RACE-001") != (10, 0, 10) {
        assert!(waited.elapsed() < Duration::from_secs(15), "the holds never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("race 1's holds expired {:?} after it ended", waited.elapsed());

    let (won, lost, took) = race(&h, "RACE-001", RACERS, 60, 10);
    eprintln!("race 2: {RACERS} concurrent reserves of 1 unit on 10: {won} held, {lost} refused, in {took:?}");
    assert_eq!((won, lost), (10, RACERS - 10));
    assert_eq!(counts(&h, "RACE-001"), (10, 10, 0));
}

on_both_runtimes!(
    every_catalog_product_is_stocked_from_the_data_file,
    reserve_then_commit_takes_the_stock_out_of_the_warehouse,
    release_gives_the_stock_back,
    a_refusal_names_every_short_sku_and_reserves_nothing,
    reserving_again_with_the_same_id_returns_the_same_reservation,
    an_expired_reservation_stops_holding_by_itself,
    admin_sets_stock_with_the_token_only,
    an_admin_count_below_the_holds_leaves_nothing_available,
    bad_input_gets_a_clear_4xx,
    concurrent_checkouts_never_oversell,
);
