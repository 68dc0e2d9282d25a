//! The customers service through the real host: customers.wasm on its own
//! SQLite database. Records are read here as the operator (the admin
//! token); what a shopper may see is tests/access.rs.

use shop_tests::*;

fn address(country: &str) -> Value {
    json!({
        "name": "Ada Lovelace",
        "line1": "Heidestraße 17",
        "city": "Köln",
        "postal_code": "51147",
        "country": country,
    })
}

const PASSWORD: &str = "correct horse battery";

fn create(h: &Host, name: &str, email: &str) -> Reply {
    h.post("/api/customers", &json!({ "name": name, "email": email, "password": PASSWORD }))
}

fn a_customer_is_created_and_read_back(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let r = create(&h, "  Ada Lovelace ", " Ada@Example.com ");
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("cus_") && id.len() == 36, "{id}");
    assert_eq!(created["name"], "Ada Lovelace");
    assert_eq!(created["email"], "Ada@Example.com");
    assert_eq!(created["addresses"], json!([]));
    let created_at = created["created_at"].as_str().unwrap();
    assert!(created_at.len() == 24 && created_at.ends_with('Z') && created_at.starts_with("20"), "{created_at}");

    let r = h.admin_get(&format!("/api/customers/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), created);
}

fn an_email_is_taken_whatever_its_letter_case(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    assert_eq!(create(&h, "Ada", "ada@example.com").status, 201);
    let r = create(&h, "Other Ada", "ADA@EXAMPLE.COM");
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.error_code(), "email_taken");
    assert_eq!(create(&h, "Bob", "bob@example.com").status, 201, "other emails are free");
}

fn racing_creates_with_one_email_give_one_customer(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let h = &h;
                let email = if i % 2 == 0 { "race@example.com" } else { "Race@Example.com" };
                s.spawn(move || create(h, &format!("Racer {i}"), email).status)
            })
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|&&s| s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 409).count(), 7, "{statuses:?}");
}

fn addresses_are_validated_saved_and_listed_in_order(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let id = create(&h, "Ada", "ada@example.org").json()["id"].as_str().unwrap().to_string();

    let mut first = address(" de ");
    first["line2"] = json!("  c/o Babbage ");
    let r = h.admin_post(&format!("/api/customers/{id}/addresses"), &first);
    assert_eq!(r.status, 201, "{}", r.text);
    let saved = r.json();
    assert!(saved["id"].as_str().unwrap().starts_with("adr_"), "{saved}");
    assert_eq!(saved["country"], "DE", "the country is uppercased");
    assert_eq!(saved["line2"], "c/o Babbage", "fields are trimmed");
    assert_eq!(saved["postal_code"], "51147");

    let r = h.admin_post(&format!("/api/customers/{id}/addresses"), &address("FI"));
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.json().get("line2").is_none(), "no line2 given, none shown: {}", r.text);

    let customer = h.admin_get(&format!("/api/customers/{id}")).json();
    let countries: Vec<&str> = customer["addresses"].as_array().unwrap().iter().map(|a| a["country"].as_str().unwrap()).collect();
    assert_eq!(countries, ["DE", "FI"]);
    assert_eq!(customer["addresses"][0], saved);

    let listed = h.admin_get(&format!("/api/customers/{id}/addresses"));
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["addresses"], customer["addresses"]);
}

fn a_bad_address_names_its_field_and_saves_nothing(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let id = create(&h, "Ada", "ada@example.net").json()["id"].as_str().unwrap().to_string();
    let path = format!("/api/customers/{id}/addresses");
    for (field, value) in [
        ("name", json!("  ")),
        ("line1", json!("")),
        ("city", json!("x".repeat(201))),
        ("postal_code", json!("1".repeat(21))),
        ("country", json!("Germany")),
        ("country", json!(null)),
    ] {
        let mut bad = address("DE");
        bad[field] = value;
        let r = h.admin_post(&path, &bad);
        assert_eq!(r.status, 422, "{field}: {}", r.text);
        assert_eq!(r.error_code(), "invalid_address", "{field}");
        assert_eq!(r.json()["error"]["field"], field);
    }
    let r = h.admin_post(&path, &address("XK"));
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.error_code(), "unknown_country");
    let r = h.admin_post(&path, &json!({ "name": 5, "line1": "a", "city": "b", "postal_code": "c", "country": "DE" }));
    assert_eq!(r.status, 422, "{}", r.text);
    r.error_code();
    assert_eq!(h.admin_get(&path).json()["addresses"], json!([]), "bad input changed nothing");
}

fn unknown_customers_are_not_found(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let ghost = "cus_0123456789abcdef0123456789abcdef";
    for r in [
        h.admin_get(&format!("/api/customers/{ghost}")),
        h.admin_get("/api/customers/nobody"),
        h.admin_get(&format!("/api/customers/{ghost}/addresses")),
        h.admin_post(&format!("/api/customers/{ghost}/addresses"), &address("DE")),
        h.admin_post("/api/customers/nobody/addresses", &address("DE")),
    ] {
        assert_eq!(r.status, 404, "{}", r.text);
        assert_eq!(r.error_code(), "customer_not_found");
    }
}

fn a_customer_holds_at_most_twenty_addresses(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let id = create(&h, "Ada", "many@example.com").json()["id"].as_str().unwrap().to_string();
    let path = format!("/api/customers/{id}/addresses");
    for _ in 0..20 {
        assert_eq!(h.admin_post(&path, &address("DE")).status, 201);
    }
    let r = h.admin_post(&path, &address("DE"));
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.error_code(), "too_many_addresses");
    assert_eq!(h.admin_get(&path).json()["addresses"].as_array().unwrap().len(), 20);
}

fn bad_names_and_emails_are_refused(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    for (body, code) in [
        (json!({ "name": "Ada", "email": "not-an-email" }), "invalid_email"),
        (json!({ "name": "Ada", "email": "ada@localhost" }), "invalid_email"),
        (json!({ "name": "Ada", "email": format!("{}@example.com", "a".repeat(250)) }), "invalid_email"),
        (json!({ "name": " ", "email": "ada@example.com" }), "invalid_customer"),
        (json!({ "email": "ada@example.com" }), "invalid_request"),
        (json!({ "name": "Ada" }), "invalid_request"),
        (json!({ "name": "Ada", "email": 42 }), "invalid_request"),
        (json!(["Ada", "ada@example.com"]), "invalid_request"),
        (json!({ "name": "Ada", "email": "ada@example.com" }), "invalid_request"),
        (json!({ "name": "Ada", "email": "ada@example.com", "password": "too short" }), "invalid_password"),
        (json!({ "name": "Ada", "email": "ada@example.com", "password": "x".repeat(1025) }), "invalid_password"),
        (json!({ "name": "Ada", "email": "ada@example.com", "password": 1234567890 }), "invalid_request"),
    ] {
        let r = h.post("/api/customers", &body);
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.error_code(), code, "{body}");
    }
    assert_eq!(create(&h, "Ada", "ada@example.com").status, 201, "nothing above took the email");
}

fn bad_bodies_and_routes_get_clear_4xx(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let json_header = [("content-type", "application/json")];
    let r = h.request("POST", "/api/customers", &json_header, Some(b"{\"name\": "));
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "malformed_json");
    let r = h.request("POST", "/api/customers", &json_header, Some(b""));
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "malformed_json");
    let big = vec![b'a'; 10 << 20];
    let r = h.request("POST", "/api/customers", &json_header, Some(&big));
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "payload_too_large");
    let r = h.get("/api/customers");
    assert_eq!(r.status, 405);
    assert_eq!(r.error_code(), "method_not_allowed");
    assert_eq!(r.header("allow"), Some("POST"));
    let r = h.delete("/api/customers/cus_0123456789abcdef0123456789abcdef");
    assert_eq!(r.status, 405);
    r.error_code();
    let r = h.get("/api/customers/a/b/c");
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "not_found");
}

#[test]
fn customers_survive_a_restart() {
    let state = TempDir::new("customers-state");
    let h = HostConfig::shop().state_dir(state.path()).start();
    let id = create(&h, "Ada", "ada@example.com").json()["id"].as_str().unwrap().to_string();
    h.admin_post(&format!("/api/customers/{id}/addresses"), &address("AT"));
    h.kill();
    let h = HostConfig::shop().state_dir(state.path()).start();
    let customer = h.admin_get(&format!("/api/customers/{id}")).json();
    assert_eq!(customer["addresses"][0]["country"], "AT");
    assert_eq!(create(&h, "Ada again", "ADA@example.com").status, 409);
}

on_both_runtimes!(
    a_customer_is_created_and_read_back,
    an_email_is_taken_whatever_its_letter_case,
    racing_creates_with_one_email_give_one_customer,
    addresses_are_validated_saved_and_listed_in_order,
    a_bad_address_names_its_field_and_saves_nothing,
    unknown_customers_are_not_found,
    a_customer_holds_at_most_twenty_addresses,
    bad_names_and_emails_are_refused,
    bad_bodies_and_routes_get_clear_4xx,
);
