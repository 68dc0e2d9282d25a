//! The tax services through the real host: tax.wasm (EU VAT) on the repo's
//! spin.toml, and tax_flat.wasm swapped in by a manifest that differs only in
//! which component serves `/api/tax/...`.

use shop_tests::*;

fn eur(amount: i64) -> Value {
    json!({ "amount": amount, "currency": "EUR" })
}

fn quote(h: &Host, country: &str, goods: i64, shipping: i64) -> Reply {
    h.post(
        "/api/tax/quote",
        &json!({ "destination": { "country": country }, "goods": eur(goods), "shipping": eur(shipping) }),
    )
}

/// The repository's spin.toml with `/api/tax/...` served by `tax-flat`, and
/// every component source made absolute so the copy runs from anywhere.
fn flat_tax_manifest(dir: &std::path::Path) -> std::path::PathBuf {
    let original = std::fs::read_to_string(root().join("spin.toml")).unwrap();
    let route = "route = \"/api/tax/...\"\ncomponent = \"tax\"\n";
    assert!(original.contains(route), "spin.toml no longer routes /api/tax/... to tax");
    let text = original
        .replace(route, "route = \"/api/tax/...\"\ncomponent = \"tax-flat\"\n")
        .replace("\"target/", &format!("\"{}/target/", root().display()));
    write_manifest(dir, &text)
}

fn eu_destinations_pay_their_standard_vat_on_goods_and_shipping(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let r = quote(&h, "DE", 10_000, 499);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({
            "country": "DE",
            "rate_basis_points": 1900,
            "rule": "eu_standard",
            "goods_tax": eur(1900),
            "shipping_tax": eur(95),
            "total_tax": eur(1995),
            "currency": "EUR",
        })
    );
    for (country, basis_points) in [("FI", 2550), ("EE", 2400), ("SK", 2300), ("RO", 2100), ("HU", 2700), ("LU", 1700), ("gr", 2400)] {
        let r = quote(&h, country, 10_000, 0);
        assert_eq!(r.status, 200, "{country}: {}", r.text);
        let body = r.json();
        assert_eq!(body["rate_basis_points"], basis_points, "{country}");
        assert_eq!(body["goods_tax"]["amount"], basis_points, "{country}: 10 000 cents × rate");
        assert_eq!(body["country"], country.to_uppercase());
    }
}

fn each_amount_is_rounded_half_away_from_zero_on_its_own(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    // Finland, 25.5 %: 19.99 € → 5.097 45 € → 5.10 €; 4.90 € → 1.2495 € → 1.25 €.
    let body = quote(&h, "FI", 1999, 490).json();
    assert_eq!((&body["goods_tax"], &body["shipping_tax"], &body["total_tax"]), (&eur(510), &eur(125), &eur(635)));
    // Germany, 19 %: 0.50 € → 9.5 cents → 10, twice; the total is the sum (20), not 19.
    let body = quote(&h, "DE", 50, 50).json();
    assert_eq!((&body["goods_tax"], &body["shipping_tax"], &body["total_tax"]), (&eur(10), &eur(10), &eur(20)));
    let body = quote(&h, "DE", 0, 0).json();
    assert_eq!(body["total_tax"], eur(0));
    // The largest amount there is: 19 % of i64::MAX cents, exact (no float, no overflow).
    let body = quote(&h, "DE", i64::MAX, 0).json();
    assert_eq!(body["goods_tax"], eur(1_752_440_687_002_407_403), "large amounts are exact");
}

fn export_outside_the_eu_is_zero_rated(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    for country in ["CH", "GB", "NO", "US", "JP"] {
        let r = quote(&h, country, 12_345, 999);
        assert_eq!(r.status, 200, "{country}: {}", r.text);
        let body = r.json();
        assert_eq!(body["rule"], "export", "{country}");
        assert_eq!(body["rate_basis_points"], 0);
        assert_eq!(body["total_tax"], eur(0));
    }
}

fn a_whole_address_is_a_destination_too(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let address = json!({ "name": "Aino", "line1": "Mannerheimintie 1", "city": "Helsinki", "postal_code": "00100", "country": "FI" });
    let r = h.post("/api/tax/quote", &json!({ "destination": address, "goods": eur(1000), "shipping": eur(0) }));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["goods_tax"], eur(255));
}

fn bad_quotes_get_clear_codes(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let destination = json!({ "country": "DE" });
    for (body, status, code) in [
        (json!({ "destination": { "country": "XX" }, "goods": eur(1), "shipping": eur(1) }), 422, "unknown_country"),
        (json!({ "destination": { "country": "Deutschland" }, "goods": eur(1), "shipping": eur(1) }), 422, "invalid_address"),
        (json!({ "destination": destination, "goods": eur(1), "shipping": { "amount": 1, "currency": "USD" } }), 422, "currency_mismatch"),
        (json!({ "destination": destination, "goods": eur(-1), "shipping": eur(1) }), 422, "invalid_amount"),
        (json!({ "destination": destination, "goods": { "amount": 1.5, "currency": "EUR" }, "shipping": eur(1) }), 422, "invalid_request"),
        (json!({ "destination": destination, "goods": { "amount": 1, "currency": "euro" }, "shipping": eur(1) }), 422, "invalid_request"),
        (json!({ "destination": destination, "goods": eur(1) }), 422, "invalid_request"),
        (json!({ "goods": eur(1), "shipping": eur(1) }), 422, "invalid_request"),
        (json!({ "destination": "DE", "goods": eur(1), "shipping": eur(1) }), 422, "invalid_request"),
    ] {
        let r = h.post("/api/tax/quote", &body);
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert_eq!(r.error_code(), code, "{body}");
    }
}

fn bad_bodies_and_routes_get_clear_4xx(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let json_header = [("content-type", "application/json")];
    let r = h.request("POST", "/api/tax/quote", &json_header, Some(b"not json"));
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "malformed_json");
    let big = vec![b'{'; 10 << 20];
    let r = h.request("POST", "/api/tax/quote", &json_header, Some(&big));
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "payload_too_large");
    let r = h.put("/api/tax/quote", &json!({}));
    assert_eq!(r.status, 405);
    r.error_code();
    let r = h.get("/api/tax/rates");
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "not_found");
}

#[test]
fn swapping_in_tax_flat_changes_the_totals_not_the_shapes() {
    let dir = TempDir::new("tax-flat");
    let manifest = flat_tax_manifest(dir.path());
    let vat = HostConfig::shop().start();
    let flat = HostConfig::manifest(&manifest).variable("admin_token", ADMIN_TOKEN).start();

    // Finland: 25.5 % VAT, 20 % flat (the manifest's default).
    let with_vat = quote(&vat, "FI", 1999, 499).json();
    let with_flat = quote(&flat, "FI", 1999, 499).json();
    assert_eq!((&with_vat["rule"], &with_vat["total_tax"]), (&json!("eu_standard"), &eur(510 + 127)));
    assert_eq!((&with_flat["rule"], &with_flat["rate_basis_points"]), (&json!("flat"), &json!(2000)));
    assert_eq!((&with_flat["goods_tax"], &with_flat["shipping_tax"], &with_flat["total_tax"]), (&eur(400), &eur(100), &eur(500)));
    assert_ne!(with_vat["total_tax"], with_flat["total_tax"]);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&with_vat), keys(&with_flat), "the same answer shape");

    // An export is zero-rated under VAT, taxed under the flat rule.
    assert_eq!(quote(&vat, "US", 1000, 0).json()["total_tax"], eur(0));
    assert_eq!(quote(&flat, "US", 1000, 0).json()["total_tax"], eur(200));

    // The flat tax still checks the country and the input.
    let r = quote(&flat, "XX", 1000, 0);
    assert_eq!((r.status, r.error_code()), (422, "unknown_country".to_string()));
    let r = flat.post("/api/tax/quote", &json!({ "destination": { "country": "DE" }, "goods": eur(1), "shipping": { "amount": 1, "currency": "GBP" } }));
    assert_eq!((r.status, r.error_code()), (422, "currency_mismatch".to_string()));
}

#[test]
fn the_flat_rate_comes_from_the_app_variable() {
    let dir = TempDir::new("tax-flat-rate");
    let manifest = flat_tax_manifest(dir.path());
    let h = HostConfig::manifest(&manifest)
        .variable("admin_token", ADMIN_TOKEN)
        .variable("flat_tax_rate_basis_points", "750")
        .start();
    let body = quote(&h, "DE", 10_000, 1000).json();
    assert_eq!(body["rate_basis_points"], 750);
    assert_eq!(body["total_tax"], eur(825));
}

#[test]
fn a_misconfigured_flat_rate_is_a_clear_503() {
    let dir = TempDir::new("tax-flat-bad");
    let manifest = flat_tax_manifest(dir.path());
    for bad in ["20%", "abc", "10001", "-5"] {
        let h = HostConfig::manifest(&manifest)
            .variable("admin_token", ADMIN_TOKEN)
            .variable("flat_tax_rate_basis_points", bad)
            .start();
        let r = quote(&h, "DE", 1000, 0);
        assert_eq!(r.status, 503, "{bad}: {}", r.text);
        assert_eq!(r.error_code(), "tax_unavailable");
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("flat_rate_basis_points"), "{}", r.text);
    }
}

on_both_runtimes!(
    eu_destinations_pay_their_standard_vat_on_goods_and_shipping,
    each_amount_is_rounded_half_away_from_zero_on_its_own,
    export_outside_the_eu_is_zero_rated,
    a_whole_address_is_a_destination_too,
    bad_quotes_get_clear_codes,
    bad_bodies_and_routes_get_clear_4xx,
);
