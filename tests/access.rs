//! Shoppers' data is theirs, on both runtimes: every route that serves a
//! shopper's record, addresses, orders, shipments or mails is tried with no
//! token, another shopper's session, a signed-out session, forged tokens,
//! another order's access token, and the right credential; sign-in failures
//! are slowed and do not tell whether an email has an account; passwords
//! and tokens never reach a state file or a log.

use std::time::Duration;

use shop_tests::*;

const SKU: &str = "COF-001";

/// Shipments wait (no capture, no stock committed): these tests look at who
/// may read what, not at the choreography.
fn shop_on(rt: Runtime) -> HostConfig {
    HostConfig::shop_on(rt).variable("fulfillment_auto_ship", "false")
}

struct Shopper {
    id: String,
    email: String,
    password: String,
    token: String,
}

fn sign_up(h: &Host, name: &str, email: &str) -> Shopper {
    let password = format!("pw-{name}-{}", "horse battery staple");
    let r = h.post("/api/customers", &json!({ "name": name, "email": email, "password": password }));
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json();
    assert!(created.get("password").is_none() && !r.text.contains(&password), "{}", r.text);
    let id = created["id"].as_str().unwrap().to_string();
    let token = sign_in(h, email, &password);
    Shopper { id, email: email.into(), password, token }
}

fn sign_in(h: &Host, email: &str, password: &str) -> String {
    let r = h.post("/api/customers/sessions", &json!({ "email": email, "password": password }));
    assert_eq!(r.status, 201, "{}", r.text);
    let session = r.json();
    assert_eq!(session["token_type"], "Bearer");
    let token = session["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("sst_") && token.len() == 68, "{token}");
    token
}

/// Places an order for `email` from a fresh cart, signed in with `token`
/// or as a guest; returns the 201 answer.
fn place(h: &Host, email: &str, token: Option<&str>) -> Value {
    let cart = format!("cart-{}", new_key());
    let r = h.post(&format!("/api/carts/{cart}/items"), &json!({ "sku": SKU, "quantity": 1 }));
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
    let r = checkout(h, &new_key(), token, &checkout_body(&cart, email, "standard"));
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()
}

fn checkout(h: &Host, key: &str, token: Option<&str>, body: &Value) -> Reply {
    let authorization = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json"), ("idempotency-key", key)];
    if let Some(a) = &authorization {
        headers.push(("authorization", a.as_str()));
    }
    h.request("POST", "/api/checkout", &headers, Some(body.to_string().as_bytes()))
}

fn new_key() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// A token of the right shape that nobody issued.
fn forged(prefix: &str) -> String {
    format!("{prefix}_{}", "5a".repeat(32))
}

/// `method path` as `token` (none: no header), with a body for POSTs.
fn call(h: &Host, token: Option<&str>, method: &str, path: &str) -> Reply {
    let body = (method == "POST").then(|| {
        if path.ends_with("/addresses") {
            json!({ "name": "Ada", "line1": "Main St 1", "city": "Berlin", "postal_code": "10115", "country": "DE" })
        } else {
            json!({})
        }
    });
    match token {
        Some(token) => h.as_bearer(token, method, path, body.as_ref()),
        None => match &body {
            Some(body) => h.post(path, body),
            None => h.request(method, path, &[], None),
        },
    }
}

fn status_and_code(r: &Reply) -> (u16, String) {
    (r.status, if r.status >= 400 { r.error_code() } else { String::new() })
}

/// Every route that serves Ada's data, with the 404 code its owner answers
/// for a record the credential does not open.
fn adas_routes(ada: &Shopper, order_id: &str) -> Vec<(&'static str, String, &'static str)> {
    vec![
        ("GET", format!("/api/customers/{}", ada.id), "customer_not_found"),
        ("GET", format!("/api/customers/{}/addresses", ada.id), "customer_not_found"),
        ("POST", format!("/api/customers/{}/addresses", ada.id), "customer_not_found"),
        ("GET", format!("/api/orders/{order_id}"), "order_not_found"),
        ("GET", format!("/api/fulfillment/shipments/{order_id}"), "shipment_not_found"),
        ("POST", format!("/api/orders/{order_id}/cancel"), "order_not_found"),
    ]
}

fn a_shopper_reaches_only_their_own_data(rt: Runtime) {
    let h = shop_on(rt).start();
    let ada = sign_up(&h, "Ada", "ada@example.com");
    let bob = sign_up(&h, "Bob", "bob@example.com");
    let placed = place(&h, &ada.email, Some(&ada.token));
    assert!(placed.get("order_access_token").is_none(), "a shopper's order needs no token: {placed}");
    let order_id = placed["order_id"].as_str().unwrap().to_string();
    let guest = place(&h, "carol@example.com", None);
    let carols_token = guest["order_access_token"].as_str().unwrap().to_string();
    // The shipment exists once fulfillment has consumed order.placed.
    eventually(Duration::from_secs(30), || {
        (h.admin_get(&format!("/api/fulfillment/shipments/{order_id}")).status == 200).then_some(())
    })
    .expect("fulfillment made the shipment");

    // A second session of Ada's, signed out: revoked at once everywhere.
    let signed_out = sign_in(&h, &ada.email, &ada.password);
    let r = h.as_bearer(&signed_out, "DELETE", "/api/customers/sessions/current", None);
    assert_eq!(r.status, 204, "{}", r.text);
    let r = h.as_bearer(&signed_out, "DELETE", "/api/customers/sessions/current", None);
    assert_eq!(r.status, 401, "signing out twice: {}", r.text);

    let unknown_order = "ord_0123456789abcdef0123456789abcdef";
    for (method, path, not_found) in adas_routes(&ada, &order_id) {
        // The cancel is tried last, with the right session, below.
        let wrong: Vec<(&str, Option<String>, (u16, &str))> = vec![
            ("no token", None, (401, "unauthorized")),
            ("signed-out session", Some(signed_out.clone()), (401, "unauthorized")),
            ("forged session", Some(forged("sst")), (401, "unauthorized")),
            ("malformed order token", Some("oat_123".into()), (401, "unauthorized")),
            ("not a bearer token", Some("".into()), (401, "unauthorized")),
            ("another shopper's session", Some(bob.token.clone()), (404, not_found)),
            ("another order's token", Some(carols_token.clone()), (404, not_found)),
            ("forged order token", Some(forged("oat")), (404, not_found)),
        ];
        for (what, token, expected) in wrong {
            let r = match token.as_deref() {
                Some("") => h.request(method, &path, &[("authorization", "Basic YWRhOmFkYQ==")], None),
                token => call(&h, token, method, &path),
            };
            assert_eq!(status_and_code(&r), (expected.0, expected.1.to_string()), "{method} {path} with {what}: {}", r.text);
            assert!(!r.text.contains(&ada.email) && !r.text.contains("Heidestra"), "{what} saw Ada's data: {}", r.text);
            if expected.0 == 401 {
                assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{method} {path} with {what}");
            }
        }
        // Guessing: an id nobody has answers like Ada's, for Bob.
        if path.contains(&order_id) && method == "GET" {
            let r = call(&h, Some(&bob.token), method, &path.replace(&order_id, unknown_order));
            assert_eq!(status_and_code(&r), (404, not_found.to_string()), "{}", r.text);
        }
        if method == "GET" {
            for token in [&ada.token, &ADMIN_TOKEN.to_string()] {
                let r = call(&h, Some(token), method, &path);
                assert_eq!(r.status, 200, "{method} {path}: {}", r.text);
            }
        }
    }
    let r = call(&h, Some(&ada.token), "POST", &format!("/api/customers/{}/addresses", ada.id));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(h.as_bearer(&ada.token, "GET", "/api/customers/me", None).json()["id"], ada.id.as_str());

    // Listings: a shopper's own, by id or by leaving it out; never someone else's.
    let own = h.as_bearer(&ada.token, "GET", "/api/orders", None);
    assert_eq!(own.status, 200, "{}", own.text);
    assert_eq!(own.json()["orders"][0]["id"], order_id.as_str());
    let r = h.as_bearer(&ada.token, "GET", &format!("/api/orders?customer={}", ada.id), None);
    assert_eq!(r.json()["total"], 1, "{}", r.text);
    assert_eq!(h.as_bearer(&bob.token, "GET", "/api/orders", None).json()["total"], 0);
    for listing in ["/api/orders", "/api/notifications"] {
        for customer in [ada.id.as_str(), ada.email.as_str(), "carol@example.com"] {
            let path = format!("{listing}?customer={customer}");
            let r = h.as_bearer(&bob.token, "GET", &path, None);
            assert_eq!(status_and_code(&r), (403, "forbidden".into()), "{path}: {}", r.text);
            for (what, token) in [("no token", None), ("an order token", Some(carols_token.as_str()))] {
                let r = call(&h, token, "GET", &path);
                assert_eq!(status_and_code(&r), (401, "unauthorized".into()), "{path} with {what}: {}", r.text);
            }
            let r = call(&h, Some(&signed_out), "GET", &path);
            assert_eq!(r.status, 401, "{path} signed out: {}", r.text);
        }
    }
    let mails = eventually(Duration::from_secs(30), || {
        let mails = h.as_bearer(&ada.token, "GET", "/api/notifications", None).json();
        (!mails["messages"].as_array()?.is_empty()).then_some(mails)
    })
    .expect("Ada's order.placed mail arrives in her mailbox");
    assert_eq!(mails["messages"][0]["order_id"], order_id.as_str());
    assert_eq!(h.as_bearer(&bob.token, "GET", "/api/notifications", None).json()["messages"], json!([]));

    // Bob's cancel above changed nothing; Ada's own cancels.
    assert_eq!(h.admin_get(&format!("/api/orders/{order_id}")).json()["status"], "placed");
    let r = h.as_bearer(&ada.token, "POST", &format!("/api/orders/{order_id}/cancel"), Some(&json!({})));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "cancelled");
}

fn a_guest_order_token_opens_its_order_only(rt: Runtime) {
    let h = shop_on(rt).start();
    let cart = format!("cart-{}", new_key());
    h.post(&format!("/api/carts/{cart}/items"), &json!({ "sku": SKU, "quantity": 1 }));
    let key = new_key();
    let body = checkout_body(&cart, "carol@example.com", "standard");
    let r = checkout(&h, &key, None, &body);
    assert_eq!(r.status, 201, "{}", r.text);
    let placed = r.json();
    let token = placed["order_access_token"].as_str().expect("a guest gets a token").to_string();
    assert!(token.starts_with("oat_") && token.len() == 68, "{token}");
    let order_id = placed["order_id"].as_str().unwrap().to_string();
    // Shown once: the replayed answer is the order without the token.
    let replay = checkout(&h, &key, None, &body);
    assert_eq!(replay.status, 201, "{}", replay.text);
    assert_eq!(replay.json()["order_id"], order_id.as_str());
    assert!(replay.json().get("order_access_token").is_none(), "{}", replay.text);

    let dave = place(&h, "dave@example.com", None);
    let daves_token = dave["order_access_token"].as_str().unwrap().to_string();
    assert_ne!(daves_token, token);
    let order = format!("/api/orders/{order_id}");
    let r = h.as_bearer(&token, "GET", &order, None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["email"], "carol@example.com");
    let r = h.as_bearer(&daves_token, "GET", &order, None);
    assert_eq!(status_and_code(&r), (404, "order_not_found".into()), "{}", r.text);
    let r = h.get(&order);
    assert_eq!(r.status, 401, "{}", r.text);
    let shipment = eventually(Duration::from_secs(30), || {
        let r = h.as_bearer(&token, "GET", &format!("/api/fulfillment/shipments/{order_id}"), None);
        (r.status == 200).then_some(r)
    })
    .expect("the token opens the order's shipment");
    assert_eq!(shipment.json()["order_id"], order_id.as_str());
    let r = h.as_bearer(&daves_token, "GET", &format!("/api/fulfillment/shipments/{order_id}"), None);
    assert_eq!(status_and_code(&r), (404, "shipment_not_found".into()), "{}", r.text);
    // The token is no account: no listings, no customer records.
    for path in ["/api/orders", "/api/notifications?customer=carol@example.com", "/api/customers/me"] {
        let r = h.as_bearer(&token, "GET", path, None);
        assert_eq!(r.status, 401, "{path}: {}", r.text);
    }
    let r = h.as_bearer(&daves_token, "POST", &format!("{order}/cancel"), Some(&json!({})));
    assert_eq!(r.status, 404, "{}", r.text);
    let r = h.as_bearer(&token, "POST", &format!("{order}/cancel"), Some(&json!({ "reason": "changed my mind" })));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "cancelled");

    // Naming a customer needs that customer's session.
    let ada = sign_up(&h, "Ada", "ada@example.com");
    let mut as_ada = checkout_body(&cart, "carol@example.com", "standard");
    as_ada["customer_id"] = json!(ada.id);
    let r = checkout(&h, &new_key(), None, &as_ada);
    assert_eq!(status_and_code(&r), (401, "unauthorized".into()), "{}", r.text);
    let bob = sign_up(&h, "Bob", "bob@example.com");
    let r = checkout(&h, &new_key(), Some(&bob.token), &as_ada);
    assert_eq!(status_and_code(&r), (403, "forbidden".into()), "{}", r.text);
    assert_eq!(h.as_bearer(&ada.token, "GET", "/api/orders", None).json()["total"], 0, "no order was placed as Ada");
}

fn sign_in_failures_are_slowed_and_tell_nothing(rt: Runtime) {
    let h = shop_on(rt).start();
    let ada = sign_up(&h, "Ada", "ada@example.com");
    let attempt = |email: &str, password: &str| {
        h.post("/api/customers/sessions", &json!({ "email": email, "password": password }))
    };
    let wrong = attempt(&ada.email, "not the password");
    let unknown = attempt("nobody@example.com", "not the password");
    assert_eq!(status_and_code(&wrong), (401, "invalid_credentials".into()), "{}", wrong.text);
    assert_eq!(wrong.json(), unknown.json(), "an unknown email answers like a wrong password");
    assert_eq!(status_and_code(&attempt("not an email", "x")), (401, "invalid_credentials".into()));
    // Five attempts per account in the window (one spent above); then even
    // the right password waits.
    for _ in 0..4 {
        assert_eq!(attempt(&ada.email, "guess guess guess").status, 401);
    }
    let r = attempt(&ada.email, &ada.password);
    assert_eq!(status_and_code(&r), (429, "too_many_attempts".into()), "{}", r.text);
    let wait: u64 = r.header("retry-after").expect("a retry-after header").parse().unwrap();
    assert!((800..=900).contains(&wait), "{wait}");
    // The same for an email without an account: the limit tells nothing.
    for _ in 0..4 {
        assert_eq!(attempt("nobody@example.com", "guess guess guess").status, 401);
    }
    assert_eq!(attempt("nobody@example.com", "guess guess guess").status, 429);
    // Across accounts, one client address gets 20 attempts per window.
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(attempt(&format!("spray{i}@example.com"), "guess guess guess").status);
    }
    let first_refused = statuses.iter().position(|s| *s == 429).expect("the client is slowed");
    assert!(statuses[..first_refused].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[first_refused..].iter().all(|s| *s == 429), "{statuses:?}");
    // Ada's existing session is untouched by all this.
    assert_eq!(h.as_bearer(&ada.token, "GET", "/api/customers/me", None).status, 200);
}

fn an_expired_session_opens_nothing(rt: Runtime) {
    let h = shop_on(rt).variable("session_ttl_seconds", "2").start();
    let ada = sign_up(&h, "Ada", "ada@example.com");
    let r = h.post("/api/customers/sessions", &json!({ "email": ada.email, "password": ada.password }));
    let expires_at = r.json()["expires_at"].as_str().unwrap().to_string();
    assert!(expires_at.ends_with('Z'), "{expires_at}");
    std::thread::sleep(Duration::from_millis(2500));
    for path in ["/api/customers/me".to_string(), format!("/api/customers/{}", ada.id), "/api/orders".into(), "/api/notifications".into()] {
        let r = h.as_bearer(&ada.token, "GET", &path, None);
        assert_eq!(status_and_code(&r), (401, "unauthorized".into()), "{path}: {}", r.text);
    }
    let fresh = sign_in(&h, &ada.email, &ada.password);
    assert_eq!(h.as_bearer(&fresh, "GET", "/api/customers/me", None).status, 200);
}

fn passwords_and_tokens_reach_no_state_file_or_log(rt: Runtime) {
    let h = shop_on(rt).start();
    let ada = sign_up(&h, "Ada", "ada@example.com");
    let typo = format!("{}x", ada.password);
    assert_eq!(h.post("/api/customers/sessions", &json!({ "email": ada.email, "password": typo })).status, 401);
    let guest = place(&h, "carol@example.com", None);
    let order_token = guest["order_access_token"].as_str().unwrap().to_string();
    place(&h, &ada.email, Some(&ada.token));

    let files = files_under(h.state_dir());
    assert!(
        files.iter().any(|p| p.file_name().unwrap().to_string_lossy().starts_with("customers")),
        "no customers database under {}: {files:?}",
        h.state_dir().display()
    );
    let mut hash_seen = false;
    for path in &files {
        // A runtime's journal file may go between listing and reading.
        let Ok(bytes) = std::fs::read(path) else { continue };
        for secret in [&ada.password, &typo, &ada.token, &order_token] {
            assert!(!contains_bytes(&bytes, secret.as_bytes()), "a secret ({}…) is in {}", &secret[..6], path.display());
            // Nor the 64 random hex digits without their prefix.
            assert!(secret.len() < 68 || !contains_bytes(&bytes, secret[4..].as_bytes()), "{}", path.display());
        }
        hash_seen |= contains_bytes(&bytes, b"$argon2id$v=19$m=19456,t=2,p=1$");
    }
    assert!(hash_seen, "the password's argon2id hash is stored, so the scan read the right files");
    if rt == Runtime::ShopHost {
        // (Spin logs no requests; shop-host's log shows the scan read them.)
        assert!(h.logged("/api/customers/sessions"), "the requests were logged: {}", h.logs());
    }
    let logs = h.logs();
    for secret in [&ada.password, &typo, &ada.token, &order_token] {
        assert!(!logs.contains(secret.as_str()), "a secret ({}…) is in the logs", &secret[..6]);
    }
}

on_both_runtimes!(
    a_shopper_reaches_only_their_own_data,
    a_guest_order_token_opens_its_order_only,
    sign_in_failures_are_slowed_and_tell_nothing,
    an_expired_session_opens_nothing,
    passwords_and_tokens_reach_no_state_file_or_log,
);
