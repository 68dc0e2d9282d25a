//! The shipping service through the real host: shipping.wasm quoting from its
//! compiled-in rate table (components/shipping/rates.json).

use shop_tests::*;

fn quote(h: &Host, items: Value, country: &str, speed: &str) -> Reply {
    h.post(
        "/api/shipping/quote",
        &json!({ "items": items, "destination": { "country": country }, "speed": speed }),
    )
}

/// The table the component embeds, read from the repository.
fn table() -> Value {
    let text = std::fs::read_to_string(root().join("components/shipping/rates.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn row(table: &Value, zone: &str, speed: &str) -> Value {
    table["rates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["zone"] == zone && r["speed"] == speed)
        .unwrap()
        .clone()
}

fn a_quote_prices_the_total_weight_by_zone_and_speed(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let table = table();
    let items = json!([{ "weight_grams": 400, "quantity": 2 }, { "weight_grams": 150, "quantity": 1 }]);
    for (country, zone) in [("DE", "domestic"), ("fr", "eu"), ("FI", "eu"), ("CH", "world"), ("US", "world")] {
        for speed in ["standard", "express"] {
            let r = quote(&h, items.clone(), country, speed);
            assert_eq!(r.status, 200, "{country} {speed}: {}", r.text);
            let rates = row(&table, zone, speed);
            assert_eq!(
                r.json(),
                json!({
                    "cost": { "amount": rates["costs"][0], "currency": "EUR" },
                    "zone": zone,
                    "speed": speed,
                    "weight_grams": 950,
                    "estimated_days": { "min": rates["days"]["min_days"], "max": rates["days"]["max_days"] },
                }),
                "{country} {speed}"
            );
        }
    }
}

fn express_costs_more_and_arrives_sooner_than_standard(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let items = json!([{ "weight_grams": 2500, "quantity": 1 }]);
    let standard = quote(&h, items.clone(), "IT", "standard").json();
    let express = quote(&h, items, "IT", "express").json();
    assert!(express["cost"]["amount"].as_i64() > standard["cost"]["amount"].as_i64());
    assert!(express["estimated_days"]["max"].as_u64() <= standard["estimated_days"]["max"].as_u64());
}

fn a_bracket_includes_its_upper_limit(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let table = table();
    let brackets = table["brackets_max_grams"].as_array().unwrap().clone();
    let costs = row(&table, "domestic", "standard")["costs"].as_array().unwrap().clone();
    for (i, limit) in brackets.iter().enumerate() {
        let limit = limit.as_u64().unwrap();
        let at = quote(&h, json!([{ "weight_grams": limit, "quantity": 1 }]), "DE", "standard");
        assert_eq!(at.json()["cost"]["amount"], costs[i], "{limit} g");
        if i + 1 < brackets.len() {
            let above = quote(&h, json!([{ "weight_grams": limit + 1, "quantity": 1 }]), "DE", "standard");
            assert_eq!(above.json()["cost"]["amount"], costs[i + 1], "{} g", limit + 1);
        }
    }
}

fn a_whole_address_is_a_destination_too(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let address = json!({ "name": "Ada", "line1": "Rue 1", "city": "Paris", "postal_code": "75001", "country": "FR" });
    let body = json!({ "items": [{ "weight_grams": 100, "quantity": 1 }], "destination": address, "speed": "standard" });
    let r = h.post("/api/shipping/quote", &body);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["zone"], "eu");
    let mut bad = body.clone();
    bad["destination"]["city"] = json!("");
    let r = h.post("/api/shipping/quote", &bad);
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.error_code(), "invalid_address");
    assert_eq!(r.json()["error"]["field"], "city");
}

fn too_heavy_a_shipment_is_refused(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let r = quote(&h, json!([{ "weight_grams": 31_500, "quantity": 1 }]), "DE", "standard");
    assert_eq!(r.status, 200, "the heaviest bracket's limit still ships: {}", r.text);
    let r = quote(&h, json!([{ "weight_grams": 10_501, "quantity": 3 }]), "DE", "standard");
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.error_code(), "too_heavy");
    assert_eq!(r.json()["error"]["weight_grams"], 31_503);
    assert_eq!(r.json()["error"]["max_weight_grams"], 31_500);
    let r = quote(&h, json!([{ "weight_grams": 4_000_000_000u64, "quantity": 4_000_000_000u64 }]), "US", "express");
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.error_code(), "too_heavy");
}

fn unknown_countries_are_refused(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let items = json!([{ "weight_grams": 100, "quantity": 1 }]);
    for country in ["XX", "EU", "UK", "zz"] {
        let r = quote(&h, items.clone(), country, "standard");
        assert_eq!(r.status, 422, "{country}: {}", r.text);
        assert_eq!(r.error_code(), "unknown_country", "{country}");
    }
    for country in ["", "DEU", "1"] {
        let r = quote(&h, items.clone(), country, "standard");
        assert_eq!(r.status, 422, "{country}: {}", r.text);
        assert_eq!(r.error_code(), "invalid_address", "{country}");
    }
}

fn bad_items_and_speeds_get_clear_codes(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let one = json!([{ "weight_grams": 100, "quantity": 1 }]);
    for (items, code) in [
        (json!([]), "no_items"),
        (json!([{ "weight_grams": 0, "quantity": 1 }]), "invalid_item"),
        (json!([{ "weight_grams": 100, "quantity": 0 }]), "invalid_item"),
        (json!([{ "weight_grams": -5, "quantity": 1 }]), "invalid_item"),
        (json!([{ "weight_grams": 1.5, "quantity": 1 }]), "invalid_item"),
        (json!([{ "weight_grams": "100", "quantity": 1 }]), "invalid_item"),
        (json!([{ "quantity": 1 }]), "invalid_item"),
        (Value::Array(vec![json!({ "weight_grams": 100, "quantity": 1 }); 101]), "too_many_items"),
        (json!({ "weight_grams": 100 }), "invalid_request"),
        (json!(null), "invalid_request"),
    ] {
        let r = quote(&h, items.clone(), "DE", "standard");
        assert_eq!(r.status, 422, "{items}: {}", r.text);
        assert_eq!(r.error_code(), code, "{items}");
    }
    let r = quote(&h, json!([{ "weight_grams": 1, "quantity": 1 }, { "weight_grams": 0, "quantity": 1 }]), "DE", "standard");
    assert_eq!((r.json()["error"]["index"].clone(), r.json()["error"]["field"].clone()), (json!(1), json!("weight_grams")));
    for speed in ["overnight", "Express", ""] {
        let r = quote(&h, one.clone(), "DE", speed);
        assert_eq!(r.status, 422, "{speed}: {}", r.text);
        assert_eq!(r.error_code(), "invalid_speed");
    }
    let r = h.post("/api/shipping/quote", &json!({ "items": one, "destination": { "country": "DE" } }));
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"]["field"], "speed");
    let r = h.post("/api/shipping/quote", &json!({ "items": one, "speed": "standard" }));
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"]["field"], "destination");
}

fn bad_bodies_and_routes_get_clear_4xx(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let json_header = [("content-type", "application/json")];
    let r = h.request("POST", "/api/shipping/quote", &json_header, Some(b"{\"items\": [}"));
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "malformed_json");
    let big = vec![b' '; 10 << 20];
    let r = h.request("POST", "/api/shipping/quote", &json_header, Some(&big));
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "payload_too_large");
    let r = h.get("/api/shipping/quote");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    r.error_code();
    for path in ["/api/shipping", "/api/shipping/rates", "/api/shipping/quote/1"] {
        let r = h.post(path, &json!({}));
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.error_code(), "not_found");
    }
}

on_both_runtimes!(
    a_quote_prices_the_total_weight_by_zone_and_speed,
    express_costs_more_and_arrives_sooner_than_standard,
    a_bracket_includes_its_upper_limit,
    a_whole_address_is_a_destination_too,
    too_heavy_a_shipment_is_refused,
    unknown_countries_are_refused,
    bad_items_and_speeds_get_clear_codes,
    bad_bodies_and_routes_get_clear_4xx,
);
