//! The catalog service on both runtimes, the real catalog.wasm.

use shop_tests::*;

fn shop(rt: Runtime) -> Host {
    HostConfig::shop_on(rt).start()
}

fn lists_at_least_twenty_seeded_products(rt: Runtime) {
    let h = shop(rt);
    let r = h.get("/api/products?per_page=100");
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    let products = body["products"].as_array().unwrap();
    assert!(products.len() >= 20, "{} products", products.len());
    assert_eq!(body["total"].as_u64().unwrap() as usize, products.len());
    for p in products {
        assert!(p["sku"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(p["name"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(p["price"]["amount"].as_i64().unwrap() > 0);
        assert_eq!(p["price"]["currency"].as_str().unwrap().len(), 3);
        assert!(p["weight_grams"].as_u64().unwrap() > 0);
        assert!(!p["categories"].as_array().unwrap().is_empty());
        assert!(p["image"].as_str().unwrap().starts_with('/'));
    }
}

fn search_category_and_pages(rt: Runtime) {
    let h = shop(rt);
    let all = h.get("/api/products?per_page=100").json();
    let first = &all["products"][0];
    let category = first["categories"][0].as_str().unwrap();

    let by_category = h.get(&format!("/api/products?category={category}&per_page=100")).json();
    let n = by_category["products"].as_array().unwrap().len();
    assert!(n >= 1 && n < all["products"].as_array().unwrap().len(), "category filters");
    assert!(by_category["products"].as_array().unwrap().iter().all(|p| p["categories"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == category)));

    // A word of a product's name finds it, whatever the case.
    let word = first["name"].as_str().unwrap().split_whitespace().next().unwrap().to_uppercase();
    let found = h.get(&format!("/api/products?q={word}&per_page=100")).json();
    assert!(found["products"].as_array().unwrap().iter().any(|p| p["sku"] == first["sku"]), "{found}");
    let none = h.get("/api/products?q=zzzznotathing").json();
    assert_eq!(none["products"].as_array().unwrap().len(), 0);
    assert_eq!(none["total"], 0);

    let page1 = h.get("/api/products?per_page=5&page=1").json();
    let page2 = h.get("/api/products?per_page=5&page=2").json();
    assert_eq!(page1["products"].as_array().unwrap().len(), 5);
    assert_eq!(page2["page"], 2);
    assert_ne!(page1["products"][0]["sku"], page2["products"][0]["sku"]);
    let beyond = h.get("/api/products?per_page=5&page=1000").json();
    assert_eq!(beyond["products"].as_array().unwrap().len(), 0);
}

fn bad_list_parameters_are_400(rt: Runtime) {
    let h = shop(rt);
    for q in ["page=0", "page=abc", "per_page=0", "per_page=1000", "per_page=-1"] {
        let r = h.get(&format!("/api/products?{q}"));
        assert_eq!(r.status, 400, "{q}: {}", r.text);
        r.error_code();
    }
}

fn get_one_product_or_404(rt: Runtime) {
    let h = shop(rt);
    let sku = h.get("/api/products").json()["products"][0]["sku"].as_str().unwrap().to_string();
    let r = h.get(&format!("/api/products/{sku}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["sku"], sku.as_str());
    let r = h.get("/api/products/NOPE-404");
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "product_not_found");
}

fn batch_prices_name_every_unknown_sku(rt: Runtime) {
    let h = shop(rt);
    let products = h.get("/api/products").json()["products"].clone();
    let a = products[0]["sku"].as_str().unwrap();
    let b = products[1]["sku"].as_str().unwrap();
    let r = h.post("/api/products/prices", &json!({ "skus": [b, a] }));
    assert_eq!(r.status, 200, "{}", r.text);
    let prices = r.json()["prices"].clone();
    assert_eq!(prices[0]["sku"], b);
    assert_eq!(prices[1]["sku"], a);
    assert_eq!(prices[1]["price"], products[0]["price"]);
    assert!(prices[0]["weight_grams"].as_u64().unwrap() > 0);

    let r = h.post("/api/products/prices", &json!({ "skus": [a, "GHOST-1", "GHOST-2"] }));
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.error_code(), "unknown_sku");
    assert_eq!(r.json()["error"]["skus"], json!(["GHOST-1", "GHOST-2"]));

    let r = h.post("/api/products/prices", &json!({ "skus": [] }));
    assert_eq!(r.status, 400, "{}", r.text);
}

fn admin_upsert_needs_the_token_and_valid_fields(rt: Runtime) {
    let h = shop(rt);
    let product = json!({
        "name": "Test Kettle",
        "description": "Boils water.",
        "price": { "amount": 4599, "currency": "EUR" },
        "weight_grams": 900,
        "categories": ["kitchen"],
        "image": "/images/TEST-KETTLE.svg"
    });
    let body = product.to_string();
    let put = |token: Option<&str>, body: &str| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        h.request("PUT", "/api/products/TEST-KETTLE", &headers, Some(body.as_bytes()))
    };
    let r = put(None, &body);
    assert_eq!(r.status, 401, "{}", r.text);
    r.error_code();
    assert_eq!(put(Some("wrong"), &body).status, 401);
    assert_eq!(h.get("/api/products/TEST-KETTLE").status, 404, "nothing written without the token");

    let r = put(Some(ADMIN_TOKEN), &body);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(h.get("/api/products/TEST-KETTLE").json()["price"]["amount"], 4599);

    let mut cheaper = product.clone();
    cheaper["price"]["amount"] = json!(3999);
    let r = put(Some(ADMIN_TOKEN), &cheaper.to_string());
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(h.get("/api/products/TEST-KETTLE").json()["price"]["amount"], 3999);

    for (field, value) in [
        ("name", json!("")),
        ("price", json!({ "amount": -1, "currency": "EUR" })),
        ("price", json!({ "amount": 100, "currency": "euro" })),
        ("weight_grams", json!(0)),
    ] {
        let mut bad = product.clone();
        bad[field] = value;
        let r = put(Some(ADMIN_TOKEN), &bad.to_string());
        assert_eq!(r.status, 422, "{field}: {}", r.text);
        r.error_code();
    }
    assert_eq!(h.get("/api/products/TEST-KETTLE").json()["price"]["amount"], 3999, "bad input changed nothing");
}

fn bad_bodies_get_clear_4xx(rt: Runtime) {
    let h = shop(rt);
    let r = h.request("POST", "/api/products/prices", &[("content-type", "application/json")], Some(b"{not json"));
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "malformed_json");
    let big = vec![b'a'; 10 << 20];
    let r = h.request("POST", "/api/products/prices", &[("content-type", "application/json")], Some(&big));
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "payload_too_large");
    let r = h.request("DELETE", "/api/products/MUG-1", &[], None);
    assert_eq!(r.status, 405);
    r.error_code();
    let r = h.get("/api/products/a/b/c");
    assert_eq!(r.status, 404);
    r.error_code();
}

on_both_runtimes!(
    lists_at_least_twenty_seeded_products,
    search_category_and_pages,
    bad_list_parameters_are_400,
    get_one_product_or_404,
    batch_prices_name_every_unknown_sku,
    admin_upsert_needs_the_token_and_valid_fields,
    bad_bodies_get_clear_4xx,
);
