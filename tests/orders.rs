//! The orders service through the real host and the real orders.wasm: orders
//! are created over the admin route (checkout uses the WIT interface), read
//! and listed here as the operator (who may see which shopper's orders is
//! tests/access.rs), and moved through their statuses:
//! placed → shipped → paid (the money is taken after shipping) → delivered,
//! placed → cancelled (only before it ships), placed → failed. The events
//! that move orders in use are in tests/events.rs.

use shop_tests::*;

fn shop_on(rt: Runtime) -> Host {
    HostConfig::shop_on(rt).start()
}

fn bearer() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

/// POST with the admin token.
fn admin(h: &Host, path: &str, body: &Value) -> Reply {
    h.request(
        "POST",
        path,
        &[("content-type", "application/json"), ("authorization", &bearer())],
        Some(body.to_string().as_bytes()),
    )
}

/// A valid order of 2 × 1490 + 1 × 500 = 3480, shipping 590, tax 696.
fn new_order(email: &str) -> Value {
    json!({
        "email": email,
        "lines": [
            {"sku": "MUG-001", "name": "Enamel Camp Mug", "quantity": 2,
             "unit_price": {"amount": 1490, "currency": "EUR"},
             "line_total": {"amount": 2980, "currency": "EUR"}},
            {"sku": "TEA-002", "quantity": 1,
             "unit_price": {"amount": 500, "currency": "EUR"},
             "line_total": {"amount": 500, "currency": "EUR"}}
        ],
        "totals": {"items": 3480, "shipping": 590, "tax": 696, "grand_total": 4766, "currency": "EUR"},
        "address": {"name": "Erika Mustermann", "line1": "Heidestraße 17", "city": "Köln",
                    "postal_code": "51147", "country": "de"},
        "shipping": "standard",
        "payment_authorization_id": "auth_test",
        "reservation_id": "res_test",
        "checkout_id": "chk_test"
    })
}

/// Creates an order and returns its id.
fn create(h: &Host, body: &Value) -> String {
    let r = admin(h, "/api/orders", body);
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["id"].as_str().unwrap().to_string()
}

fn set_status(h: &Host, id: &str, status: &str) -> Reply {
    admin(h, &format!("/api/orders/{id}/status"), &json!({ "status": status }))
}

fn statuses(order: &Value) -> Vec<String> {
    order["history"]
        .as_array()
        .unwrap_or_else(|| panic!("no history: {order}"))
        .iter()
        .map(|change| change["status"].as_str().unwrap().to_string())
        .collect()
}

fn an_admin_creates_an_order_and_reads_it_with_its_history(rt: Runtime) {
    let h = shop_on(rt);
    let r = admin(&h, "/api/orders", &new_order(" Erika@Example.com "));
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json();
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("ord_"), "{id}");
    assert_eq!(created["status"], "placed");
    assert_eq!(created["email"], "erika@example.com");
    assert_eq!(created["address"]["country"], "DE");
    assert_eq!(created["totals"], json!({"items": 3480, "shipping": 590, "tax": 696, "grand_total": 4766, "currency": "EUR"}));
    assert_eq!(created["lines"][0]["line_total"], json!({"amount": 2980, "currency": "EUR"}));
    assert_eq!(created["payment_authorization_id"], "auth_test");
    assert_eq!(created["reservation_id"], "res_test");
    assert_eq!(statuses(&created), ["placed"]);
    let at = created["history"][0]["at"].as_str().unwrap();
    assert!(at.ends_with('Z') && at.len() == 24, "{at}");

    let r = h.admin_get(&format!("/api/orders/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), created);

    let r = h.admin_get("/api/orders/ord_nothing_here");
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.error_code(), "order_not_found");
}

fn creating_the_same_id_again_returns_the_order_and_other_content_conflicts(rt: Runtime) {
    let h = shop_on(rt);
    let mut body = new_order("erika@example.com");
    body["id"] = json!("ord_from-checkout-1");
    let first = admin(&h, "/api/orders", &body);
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.json()["id"], "ord_from-checkout-1");

    // A retry, even after the order moved on, is the same order.
    assert_eq!(set_status(&h, "ord_from-checkout-1", "shipped").status, 200);
    let again = admin(&h, "/api/orders", &body);
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json()["created_at"], first.json()["created_at"]);
    assert_eq!(again.json()["status"], "shipped");

    body["shipping"] = json!("express");
    let r = admin(&h, "/api/orders", &body);
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.error_code(), "order_conflict");
    let stored = h.admin_get("/api/orders/ord_from-checkout-1").json();
    assert_eq!(stored["shipping"], "standard");
    assert_eq!(statuses(&stored), ["placed", "shipped"]);
}

fn a_customers_history_is_newest_first_in_pages(rt: Runtime) {
    let h = shop_on(rt);
    let mut ids = Vec::new();
    for _ in 0..5 {
        let mut body = new_order("registered@example.com");
        body["customer_id"] = json!("cus_history");
        ids.push(create(&h, &body));
    }
    let guest = create(&h, &new_order("Guest@Example.com"));
    create(&h, &new_order("someone-else@example.com"));

    let page = |query: &str| {
        let r = h.admin_get(&format!("/api/orders?{query}"));
        assert_eq!(r.status, 200, "{query}: {}", r.text);
        r.json()
    };
    let ids_of = |page: &Value| -> Vec<String> {
        page["orders"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string()).collect()
    };
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();

    let p1 = page("customer=cus_history&per_page=2");
    assert_eq!((p1["total"].as_u64(), p1["page"].as_u64(), p1["per_page"].as_u64()), (Some(5), Some(1), Some(2)));
    let p2 = page("customer=cus_history&per_page=2&page=2");
    let p3 = page("customer=cus_history&per_page=2&page=3");
    assert_eq!(ids_of(&p1), newest_first[0..2]);
    assert_eq!(ids_of(&p2), newest_first[2..4]);
    assert_eq!(ids_of(&p3), newest_first[4..5]);
    assert!(ids_of(&page("customer=cus_history&per_page=2&page=4")).is_empty());
    assert_eq!(ids_of(&page("customer=cus_history")), newest_first, "default page holds all five");
    assert_eq!(statuses(&p1["orders"][0]), ["placed"]);
    assert_eq!(p1["orders"][0]["lines"].as_array().unwrap().len(), 2);

    // A guest's orders are found by email, however it was typed.
    let guests = page("customer=guest%40example.com");
    assert_eq!(ids_of(&guests), [guest.clone()]);
    assert_eq!(ids_of(&page("customer=GUEST@example.com")), [guest]);
    assert_eq!(page("customer=cus_nobody")["total"], 0);

    for query in ["", "customer=", "customer=cus_history&page=0", "customer=cus_history&per_page=101", "customer=cus_history&page=x"] {
        let r = h.admin_get(&format!("/api/orders?{query}"));
        assert_eq!(r.status, 400, "{query}: {}", r.text);
        assert_eq!(r.error_code(), "invalid_query");
    }
}

fn a_customer_cancels_a_placed_order_once_with_a_reason(rt: Runtime) {
    let h = shop_on(rt);
    let id = create(&h, &new_order("erika@example.com"));
    let r = h.admin_post(&format!("/api/orders/{id}/cancel"), &json!({ "reason": " changed my mind " }));
    assert_eq!(r.status, 200, "{}", r.text);
    let cancelled = r.json();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(statuses(&cancelled), ["placed", "cancelled"]);
    assert_eq!(cancelled["history"][1]["reason"], "changed my mind");

    // Twice is the same as once: no second history row.
    let r = h.request("POST", &format!("/api/orders/{id}/cancel"), &[("authorization", &bearer())], None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(statuses(&r.json()), ["placed", "cancelled"]);
    assert_eq!(h.admin_get(&format!("/api/orders/{id}")).json(), cancelled);

    let r = h.admin_post("/api/orders/ord_unknown/cancel", &json!({}));
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.error_code(), "order_not_found");
}

fn statuses_follow_the_state_machine_and_illegal_moves_change_nothing(rt: Runtime) {
    let h = shop_on(rt);
    let id = create(&h, &new_order("erika@example.com"));
    let order = |h: &Host| h.admin_get(&format!("/api/orders/{id}")).json();

    // Paying before shipping is refused: the money is taken after shipping.
    let r = set_status(&h, &id, "paid");
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.json()["error"]["message"], "cannot pay for an order that is placed");

    let r = set_status(&h, &id, "shipped");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "shipped");
    let r = h.admin_post(&format!("/api/orders/{id}/cancel"), &json!({}));
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.error_code(), "illegal_transition");
    assert_eq!(r.json()["error"]["message"], "cannot cancel an order that is shipped");
    assert_eq!((r.json()["error"]["status"].as_str(), r.json()["error"]["requested"].as_str()), (Some("shipped"), Some("cancelled")));
    for illegal in ["placed", "delivered", "failed", "cancelled"] {
        let r = set_status(&h, &id, illegal);
        assert_eq!(r.status, 409, "{illegal}: {}", r.text);
        assert_eq!(r.error_code(), "illegal_transition");
    }
    assert_eq!(order(&h)["status"], "shipped");
    assert_eq!(statuses(&order(&h)), ["placed", "shipped"]);

    // A repeated event is harmless.
    let r = set_status(&h, &id, "shipped");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(statuses(&r.json()), ["placed", "shipped"]);

    assert_eq!(set_status(&h, &id, "paid").status, 200);
    let r = h.admin_post(&format!("/api/orders/{id}/cancel"), &json!({}));
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.json()["error"]["message"], "cannot cancel an order that is paid");
    assert_eq!(set_status(&h, &id, "delivered").status, 200);
    let delivered = order(&h);
    assert_eq!(statuses(&delivered), ["placed", "shipped", "paid", "delivered"]);
    let times: Vec<&str> = delivered["history"].as_array().unwrap().iter().map(|c| c["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    // placed → failed, and a failed order stays failed.
    let other = create(&h, &new_order("erika@example.com"));
    let r = admin(&h, &format!("/api/orders/{other}/status"), &json!({"status": "failed", "reason": "payment capture failed"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["history"][1]["reason"], "payment capture failed");
    let r = set_status(&h, &other, "shipped");
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.json()["error"]["message"], "cannot ship an order that is failed");

    let r = set_status(&h, &id, "refunded");
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.error_code(), "invalid_status");
    let r = set_status(&h, "ord_unknown", "paid");
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.error_code(), "order_not_found");
}

fn concurrent_transitions_apply_once(rt: Runtime) {
    let h = shop_on(rt);
    let id = create(&h, &new_order("erika@example.com"));

    // Shipping and cancelling a placed order race: exactly one wins, the
    // others are refused.
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let (h, id) = (&h, &id);
                s.spawn(move || {
                    if i % 2 == 0 {
                        set_status(h, id, "shipped")
                    } else {
                        h.admin_post(&format!("/api/orders/{id}/cancel"), &json!({}))
                    }
                })
            })
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let order = h.admin_get(&format!("/api/orders/{id}")).json();
    let winner = order["status"].as_str().unwrap().to_string();
    assert!(winner == "shipped" || winner == "cancelled", "{order}");
    assert_eq!(statuses(&order), ["placed", winner.as_str()]);
    for r in &replies {
        match r.status {
            200 => assert_eq!(r.json()["status"], winner.as_str(), "{}", r.text),
            409 => assert_eq!(r.error_code(), "illegal_transition"),
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
}

fn bad_input_gets_a_clear_4xx(rt: Runtime) {
    let h = shop_on(rt);
    let post_raw = |path: &str, headers: &[(&str, &str)], body: &[u8]| h.request("POST", path, headers, Some(body));
    let bearer = bearer();
    let with_token = [("content-type", "application/json"), ("authorization", bearer.as_str())];

    // Malformed JSON.
    let r = post_raw("/api/orders", &with_token, br#"{"email": "#);
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error_code(), "malformed_json");
    let placed = admin(&h, "/api/orders", &new_order("erika@example.com")).json();
    let cancel = format!("/api/orders/{}/cancel", placed["id"].as_str().unwrap());
    let r = post_raw(&cancel, &with_token, b"{nope");
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error_code(), "malformed_json");

    // Content that breaks the rules names the field.
    let invalid = |change: &dyn Fn(&mut Value), code: &str, field: Option<&str>| {
        let mut body = new_order("erika@example.com");
        change(&mut body);
        let r = admin(&h, "/api/orders", &body);
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(r.error_code(), code, "{}", r.text);
        if let Some(field) = field {
            assert_eq!(r.json()["error"]["field"], field, "{}", r.text);
        }
    };
    invalid(&|b| b["totals"]["grand_total"] = json!(4700), "invalid_order", Some("totals.grand_total"));
    invalid(&|b| b["totals"]["items"] = json!(1), "invalid_order", Some("totals.items"));
    invalid(&|b| b["lines"][0]["line_total"]["amount"] = json!(2981), "invalid_order", Some("lines[0].line_total"));
    invalid(&|b| b["totals"]["currency"] = json!("eur"), "invalid_order", Some("totals.currency"));
    invalid(&|b| b["lines"][1]["unit_price"]["currency"] = json!("USD"), "invalid_order", Some("lines[1].unit_price"));
    invalid(&|b| b["lines"][0]["quantity"] = json!(0), "invalid_order", Some("lines[0].quantity"));
    invalid(&|b| b["lines"][0]["quantity"] = json!(10_000), "invalid_order", Some("lines[0].quantity"));
    invalid(&|b| b["lines"] = json!([]), "invalid_order", Some("lines"));
    invalid(&|b| b["shipping"] = json!("teleport"), "invalid_order", Some("shipping"));
    invalid(&|b| b["email"] = json!("not-an-email"), "invalid_order", Some("email"));
    invalid(&|b| b["address"]["country"] = json!("XX"), "unknown_country", None);
    invalid(&|b| b["address"]["city"] = json!(" "), "invalid_address", Some("city"));
    invalid(&|b| { b.as_object_mut().unwrap().remove("reservation_id"); }, "invalid_request", Some("reservation_id"));
    invalid(&|b| b["lines"][0]["quantity"] = json!("2"), "invalid_request", Some("lines"));

    // A 10 MB body is refused, not read.
    let huge = vec![b' '; 10 * 1024 * 1024];
    let r = post_raw("/api/orders", &with_token, &huge);
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.error_code(), "payload_too_large");

    // The admin routes need the token.
    let body = new_order("erika@example.com").to_string();
    for headers in [vec![("content-type", "application/json")], vec![("authorization", "Bearer wrong-token")]] {
        let r = post_raw("/api/orders", &headers, body.as_bytes());
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.error_code(), "unauthorized");
        let r = post_raw("/api/orders/ord_x/status", &headers, br#"{"status": "paid"}"#);
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.error_code(), "unauthorized");
    }

    // Unknown orders and unknown routes.
    let r = h.admin_get("/api/orders/ord_does_not_exist");
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.error_code(), "order_not_found");
    let r = h.delete("/api/orders/ord_x");
    assert_eq!(r.status, 405, "{}", r.text);
    assert_eq!(r.error_code(), "method_not_allowed");
    let r = h.admin_get("/api/orders/ord_x/items");
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.error_code(), "not_found");

    // Nothing was created by any of it: only the order made to cancel.
    assert_eq!(h.admin_get("/api/orders?customer=erika@example.com").json()["total"], 1);
}

on_both_runtimes!(
    an_admin_creates_an_order_and_reads_it_with_its_history,
    creating_the_same_id_again_returns_the_order_and_other_content_conflicts,
    a_customers_history_is_newest_first_in_pages,
    a_customer_cancels_a_placed_order_once_with_a_reason,
    statuses_follow_the_state_machine_and_illegal_moves_change_nothing,
    concurrent_transitions_apply_once,
    bad_input_gets_a_clear_4xx,
);
