//! The cart service on both runtimes: cart.wasm, with skus checked against
//! catalog.wasm by service chaining, its lines in SQLite transactions.

use shop_tests::*;

fn skus(h: &Host) -> Vec<String> {
    h.get("/api/products?per_page=100").json()["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap().to_string())
        .collect()
}

fn lines(reply: &Reply) -> Vec<(String, u64)> {
    reply.json()["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("no lines: {}", reply.text))
        .iter()
        .map(|l| (l["sku"].as_str().unwrap().to_string(), l["quantity"].as_u64().unwrap()))
        .collect()
}

fn a_cart_is_built_changed_and_emptied(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let skus = skus(&h);
    let (a, b) = (&skus[0], &skus[1]);

    let r = h.get("/api/carts/c-1");
    assert_eq!(r.status, 200);
    assert!(lines(&r).is_empty(), "an unknown cart is empty");

    let r = h.post("/api/carts/c-1/items", &json!({ "sku": a, "quantity": 2 }));
    assert_eq!(r.status, 200, "{}", r.text);
    h.post("/api/carts/c-1/items", &json!({ "sku": b, "quantity": 1 }));
    let r = h.post("/api/carts/c-1/items", &json!({ "sku": a, "quantity": 3 }));
    assert_eq!(lines(&r), vec![(a.clone(), 5), (b.clone(), 1)], "adding again grows the line");

    let r = h.put(&format!("/api/carts/c-1/items/{b}"), &json!({ "quantity": 7 }));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(lines(&h.get("/api/carts/c-1")), vec![(a.clone(), 5), (b.clone(), 7)]);

    let r = h.delete(&format!("/api/carts/c-1/items/{a}"));
    assert_eq!(lines(&r), vec![(b.clone(), 7)]);

    // Other carts are untouched.
    h.post("/api/carts/c-2/items", &json!({ "sku": a, "quantity": 1 }));
    let r = h.delete("/api/carts/c-1");
    assert_eq!(r.status, 204);
    assert!(lines(&h.get("/api/carts/c-1")).is_empty());
    assert_eq!(lines(&h.get("/api/carts/c-2")).len(), 1);
}

fn unknown_sku_is_refused_by_asking_the_catalog(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let r = h.post("/api/carts/c-3/items", &json!({ "sku": "GHOST-1", "quantity": 1 }));
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.error_code(), "unknown_sku");
    assert!(r.text.contains("GHOST-1"));
    assert!(lines(&h.get("/api/carts/c-3")).is_empty(), "nothing was added");
    if rt == Runtime::ShopHost {
        // Spin logs nothing per chained request; shop-host does.
        assert!(h.logged("(chained)"), "the catalog was asked in-process");
    }
}

fn quantities_outside_one_to_ninety_nine_are_refused(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let sku = skus(&h)[0].clone();
    for q in [json!(0), json!(100), json!(1000), json!(10000), json!(-1), json!(1.5), json!("2")] {
        let r = h.post("/api/carts/c-4/items", &json!({ "sku": sku, "quantity": q }));
        assert!(r.status == 422 || r.status == 400, "{q}: {} {}", r.status, r.text);
        r.error_code();
    }
    h.post("/api/carts/c-4/items", &json!({ "sku": sku, "quantity": 98 }));
    let r = h.post("/api/carts/c-4/items", &json!({ "sku": sku, "quantity": 2 }));
    assert_eq!(r.status, 422, "a line cannot grow past 99: {}", r.text);
    let r = h.put(&format!("/api/carts/c-4/items/{sku}"), &json!({ "quantity": 0 }));
    assert_eq!(r.status, 422);
    assert_eq!(lines(&h.get("/api/carts/c-4")), vec![(sku, 98)], "bad input changed nothing");
}

fn a_cart_holds_at_most_one_hundred_lines(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    // Make enough products to fill a cart.
    for i in 0..101 {
        let r = h.request(
            "PUT",
            &format!("/api/products/LINE-{i:03}"),
            &[("content-type", "application/json"), ("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            Some(
                json!({
                    "name": format!("Line filler {i}"), "description": "x",
                    "price": { "amount": 100, "currency": "EUR" }, "weight_grams": 10,
                    "categories": ["test"], "image": "/images/x.svg"
                })
                .to_string()
                .as_bytes(),
            ),
        );
        assert!(r.status == 201 || r.status == 200, "{}", r.text);
    }
    for i in 0..100 {
        let r = h.post("/api/carts/full/items", &json!({ "sku": format!("LINE-{i:03}"), "quantity": 1 }));
        assert_eq!(r.status, 200, "line {i}: {}", r.text);
    }
    let r = h.post("/api/carts/full/items", &json!({ "sku": "LINE-100", "quantity": 1 }));
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.error_code(), "too_many_lines");
    assert_eq!(lines(&h.get("/api/carts/full")).len(), 100);
}

fn bad_requests_get_json_errors(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let sku = skus(&h)[0].clone();
    let r = h.request("POST", "/api/carts/c-5/items", &[("content-type", "application/json")], Some(b"{\"sku\":"));
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "malformed_json");
    let r = h.post("/api/carts/c-5/items", &json!({ "quantity": 1 }));
    assert!(r.status == 400 || r.status == 422, "{}", r.text);
    r.error_code();
    let big = vec![b' '; 10 << 20];
    let r = h.request("POST", "/api/carts/c-5/items", &[("content-type", "application/json")], Some(&big));
    assert_eq!(r.status, 413);
    r.error_code();
    let r = h.post("/api/carts/bad%20id!/items", &json!({ "sku": sku, "quantity": 1 }));
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error_code(), "invalid_cart_id");
    let r = h.put("/api/carts/c-5/items/NOT-IN-CART", &json!({ "quantity": 1 }));
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "not_in_cart");
    let r = h.request("PATCH", "/api/carts/c-5", &[], None);
    assert_eq!(r.status, 405);
    r.error_code();
}

/// Concurrent adds of different skus to one cart each keep their line: a
/// change is one transaction, so none overwrites another (with the cart
/// under one key-value entry, Spin kept 6 of 20).
fn concurrent_adds_to_one_cart_keep_every_line(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let skus = skus(&h);
    assert!(skus.len() >= 20);
    for round in 0..3 {
        let cart = format!("busy-{round}");
        std::thread::scope(|scope| {
            for sku in &skus[..20] {
                let (h, cart) = (&h, &cart);
                scope.spawn(move || {
                    let r = h.post(&format!("/api/carts/{cart}/items"), &json!({ "sku": sku, "quantity": 1 }));
                    assert_eq!(r.status, 200, "{}", r.text);
                });
            }
        });
        let mut kept: Vec<String> = lines(&h.get(&format!("/api/carts/{cart}"))).into_iter().map(|(s, _)| s).collect();
        kept.sort();
        let mut expected = skus[..20].to_vec();
        expected.sort();
        assert_eq!(kept, expected, "round {round}: every concurrent add kept its line");
    }
    // And concurrent adds of the same sku add up.
    std::thread::scope(|scope| {
        for _ in 0..10 {
            let h = &h;
            let sku = &skus[0];
            scope.spawn(move || {
                let r = h.post("/api/carts/same/items", &json!({ "sku": sku, "quantity": 2 }));
                assert_eq!(r.status, 200, "{}", r.text);
            });
        }
    });
    assert_eq!(lines(&h.get("/api/carts/same")), vec![(skus[0].clone(), 20)]);
}

on_both_runtimes!(
    a_cart_is_built_changed_and_emptied,
    unknown_sku_is_refused_by_asking_the_catalog,
    quantities_outside_one_to_ninety_nine_are_refused,
    a_cart_holds_at_most_one_hundred_lines,
    bad_requests_get_json_errors,
    concurrent_adds_to_one_cart_keep_every_line,
);
