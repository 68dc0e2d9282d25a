//! The payment service through the real host and the real payment.wasm.

use std::sync::Barrier;
use std::sync::atomic::{AtomicU32, Ordering};

use shop_tests::*;

const APPROVES: &str = "4242424242424242";
const DECLINES: &str = "4000000000000002";
const INSUFFICIENT_FUNDS: &str = "4000000000009995";
const PROCESSOR_ERROR: &str = "4000000000000119";
const MASTERCARD: &str = "5555555555554444";
const AMEX: &str = "378282246310005";

fn shop() -> Host {
    shop_on(Runtime::ShopHost)
}

fn shop_on(rt: Runtime) -> Host {
    HostConfig::shop_on(rt).start()
}

/// A key no other request in this run uses.
fn fresh_key() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("test-key-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn authorization(number: &str, amount: i64) -> Value {
    let cvc = if number.starts_with("37") { "1234" } else { "123" };
    json!({
        "amount": { "amount": amount, "currency": "EUR" },
        "card": { "number": number, "exp_month": 12, "exp_year": 2039, "cvc": cvc }
    })
}

fn post_with_key(h: &Host, path: &str, key: &str, body: Option<&Value>) -> Reply {
    let text = body.map(Value::to_string);
    h.request(
        "POST",
        path,
        &[("content-type", "application/json"), ("idempotency-key", key)],
        text.as_deref().map(str::as_bytes),
    )
}

fn authorize(h: &Host, key: &str, body: &Value) -> Reply {
    post_with_key(h, "/api/payments/authorizations", key, Some(body))
}

/// A fresh authorization of `amount` on the approving card; its id.
fn authorized(h: &Host, amount: i64) -> String {
    let r = authorize(h, &fresh_key(), &authorization(APPROVES, amount));
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["id"].as_str().unwrap().to_string()
}

fn eur(amount: i64) -> Value {
    json!({ "amount": { "amount": amount, "currency": "EUR" } })
}

fn a_good_card_is_authorized_and_only_its_last_four_digits_are_shown(rt: Runtime) {
    let h = shop_on(rt);
    let r = authorize(&h, &fresh_key(), &authorization(APPROVES, 2599));
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.header("idempotent-replayed").is_none());
    let body = r.json();
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("pay_"), "{id}");
    assert_eq!(body["status"], "authorized");
    assert_eq!(body["amount"], json!({ "amount": 2599, "currency": "EUR" }));
    assert_eq!(body["card"], json!({ "brand": "visa", "last4": "4242" }));
    assert_eq!(body["captured"]["amount"], 0);
    assert!(!r.text.contains(APPROVES));

    for path in [format!("/api/payments/{id}"), format!("/api/payments/authorizations/{id}")] {
        let got = h.get(&path);
        assert_eq!(got.status, 200, "{}", got.text);
        assert_eq!(got.json()["id"], id);
        assert_eq!(got.json()["status"], "authorized");
    }

    let r = authorize(&h, &fresh_key(), &authorization(MASTERCARD, 100));
    assert_eq!(r.status, 201, "any other Luhn-valid number approves: {}", r.text);
    assert_eq!(r.json()["card"], json!({ "brand": "mastercard", "last4": "4444" }));
    let r = authorize(&h, &fresh_key(), &authorization(AMEX, 100));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["card"], json!({ "brand": "amex", "last4": "0005" }));

    let r = h.get("/api/payments/pay_doesnotexist");
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "payment_not_found");
}

fn the_test_cards_decline_report_insufficient_funds_and_fail(rt: Runtime) {
    let h = shop_on(rt);
    let cases = [
        (DECLINES, 402, "card_declined"),
        (INSUFFICIENT_FUNDS, 402, "insufficient_funds"),
        (PROCESSOR_ERROR, 503, "processor_error"),
    ];
    for (number, status, code) in cases {
        let r = authorize(&h, &fresh_key(), &authorization(number, 1000));
        assert_eq!(r.status, status, "{number}: {}", r.text);
        assert_eq!(r.error_code(), code, "{number}");
        assert!(!r.text.contains(number), "{}", r.text);
    }
}

fn invalid_cards_and_requests_get_a_clear_4xx(rt: Runtime) {
    let h = shop_on(rt);
    let with_card = |card: Value| json!({ "amount": { "amount": 100, "currency": "EUR" }, "card": card });
    let cases = [
        (with_card(json!({ "number": "4242424242424241", "exp_month": 12, "exp_year": 2039, "cvc": "123" })), 422, "invalid_card"),
        (with_card(json!({ "number": "4242", "exp_month": 12, "exp_year": 2039, "cvc": "123" })), 422, "invalid_card"),
        (with_card(json!({ "number": "abcdabcdabcdabcd", "exp_month": 12, "exp_year": 2039, "cvc": "123" })), 422, "invalid_card"),
        (with_card(json!({ "number": 4242424242424242u64, "exp_month": 12, "exp_year": 2039, "cvc": "123" })), 422, "invalid_card"),
        (with_card(json!({ "number": APPROVES, "exp_month": 13, "exp_year": 2039, "cvc": "123" })), 422, "invalid_card"),
        (with_card(json!({ "number": APPROVES, "exp_month": 1, "exp_year": 2020, "cvc": "123" })), 422, "card_expired"),
        (with_card(json!({ "number": APPROVES, "exp_month": 12, "exp_year": 2039, "cvc": "12" })), 422, "invalid_cvc"),
        (with_card(json!({ "number": AMEX, "exp_month": 12, "exp_year": 2039, "cvc": "123" })), 422, "invalid_cvc"),
        (with_card(json!("4242424242424242")), 422, "invalid_card"),
        (json!({ "card": { "number": APPROVES, "exp_month": 12, "exp_year": 2039, "cvc": "123" } }), 422, "invalid_request"),
        (json!({ "amount": { "amount": 0, "currency": "EUR" }, "card": { "number": APPROVES, "exp_month": 12, "exp_year": 2039, "cvc": "123" } }), 422, "invalid_amount"),
        (json!({ "amount": { "amount": -5, "currency": "EUR" }, "card": { "number": APPROVES, "exp_month": 12, "exp_year": 2039, "cvc": "123" } }), 422, "invalid_amount"),
        (json!({ "amount": { "amount": 5, "currency": "eur" }, "card": { "number": APPROVES, "exp_month": 12, "exp_year": 2039, "cvc": "123" } }), 422, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let r = authorize(&h, &fresh_key(), &body);
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert_eq!(r.error_code(), code, "{body}");
        assert!(!r.text.contains(APPROVES), "an error never repeats the number: {}", r.text);
    }

    let body = authorization(APPROVES, 100).to_string();
    let r = h.request("POST", "/api/payments/authorizations", &[("content-type", "application/json")], Some(body.as_bytes()));
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error_code(), "idempotency_key_required");
    let long = "k".repeat(201);
    let r = authorize(&h, &long, &authorization(APPROVES, 100));
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error_code(), "invalid_idempotency_key");
    let r = authorize(&h, &"k".repeat(200), &authorization(APPROVES, 100));
    assert_eq!(r.status, 201, "200 characters are fine: {}", r.text);

    let key = fresh_key();
    let r = h.request("POST", "/api/payments/authorizations", &[("idempotency-key", key.as_str())], Some(b"{not json"));
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "malformed_json");
    let big = vec![b'a'; 10 << 20];
    let r = h.request("POST", "/api/payments/authorizations", &[("idempotency-key", key.as_str())], Some(&big));
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "payload_too_large");
    let r = h.request("DELETE", "/api/payments/authorizations", &[], None);
    assert_eq!(r.status, 405);
    r.error_code();
    let r = h.get("/api/payments/a/b/c/d");
    assert_eq!(r.status, 404);
    r.error_code();
}

fn capture_then_refund_in_parts_never_above_what_was_captured(rt: Runtime) {
    let h = shop_on(rt);
    let id = authorized(&h, 1000);
    let capture = format!("/api/payments/authorizations/{id}/capture");
    let refunds = format!("/api/payments/{id}/refunds");

    let r = post_with_key(&h, &capture, &fresh_key(), Some(&eur(1001)));
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.error_code(), "capture_exceeds_authorized");
    let r = post_with_key(&h, &refunds, &fresh_key(), Some(&eur(100)));
    assert_eq!(r.status, 409, "nothing captured yet: {}", r.text);
    assert_eq!(r.error_code(), "illegal_transition");

    let r = post_with_key(&h, &capture, &fresh_key(), Some(&eur(800)));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "captured");
    assert_eq!(r.json()["captured"], json!({ "amount": 800, "currency": "EUR" }));

    let r = post_with_key(&h, &capture, &fresh_key(), Some(&eur(100)));
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.error_code(), "illegal_transition");
    assert_eq!(r.json()["error"]["status"], "captured");
    let r = post_with_key(&h, &format!("/api/payments/authorizations/{id}/void"), &fresh_key(), None);
    assert_eq!(r.status, 409, "a captured payment cannot be voided: {}", r.text);
    assert_eq!(r.error_code(), "illegal_transition");

    let r = post_with_key(&h, &refunds, &fresh_key(), Some(&eur(300)));
    assert_eq!(r.status, 201, "{}", r.text);
    let receipt = r.json();
    assert!(receipt["id"].as_str().unwrap().starts_with("rfd_"));
    assert_eq!(receipt["payment_id"], id.as_str());
    assert_eq!(receipt["amount"]["amount"], 300);
    assert_eq!(receipt["payment"]["status"], "partially_refunded");

    let r = post_with_key(&h, &refunds, &fresh_key(), Some(&eur(501)));
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.error_code(), "refund_exceeds_captured");
    assert_eq!(r.json()["error"]["refundable"], 500);
    let r = post_with_key(&h, &refunds, &fresh_key(), Some(&json!({ "amount": { "amount": 5, "currency": "USD" } })));
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.error_code(), "currency_mismatch");
    let r = post_with_key(&h, &refunds, &fresh_key(), Some(&eur(0)));
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.error_code(), "invalid_amount");

    let r = post_with_key(&h, &refunds, &fresh_key(), Some(&eur(500)));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["payment"]["status"], "refunded");
    let r = post_with_key(&h, &refunds, &fresh_key(), Some(&eur(1)));
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.error_code(), "refund_exceeds_captured");

    let payment = h.get(&format!("/api/payments/{id}")).json();
    assert_eq!(payment["status"], "refunded");
    assert_eq!(payment["captured"]["amount"], 800);
    assert_eq!(payment["refunded"]["amount"], 800);
    assert_eq!(payment["refunds"].as_array().unwrap().len(), 2);

    // Capture and refund without an amount take everything.
    let id = authorized(&h, 700);
    let r = post_with_key(&h, &format!("/api/payments/authorizations/{id}/capture"), &fresh_key(), None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["captured"]["amount"], 700);
    let r = post_with_key(&h, &format!("/api/payments/{id}/refunds"), &fresh_key(), Some(&json!({})));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["amount"]["amount"], 700);
    assert_eq!(r.json()["payment"]["status"], "refunded");

    for path in ["/api/payments/authorizations/pay_nope/capture", "/api/payments/pay_nope/refunds"] {
        let r = post_with_key(&h, path, &fresh_key(), None);
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert_eq!(r.error_code(), "payment_not_found");
    }
    let r = h.post(&format!("/api/payments/{id}/refunds"), &eur(1));
    assert_eq!(r.status, 400, "a refund needs a key too: {}", r.text);
    assert_eq!(r.error_code(), "idempotency_key_required");
}

fn a_void_releases_an_authorization_that_then_cannot_be_captured(rt: Runtime) {
    let h = shop_on(rt);
    let id = authorized(&h, 500);
    let void = format!("/api/payments/authorizations/{id}/void");
    let r = post_with_key(&h, &void, &fresh_key(), None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "voided");
    let r = post_with_key(&h, &void, &fresh_key(), None);
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.error_code(), "illegal_transition");
    let r = post_with_key(&h, &format!("/api/payments/authorizations/{id}/capture"), &fresh_key(), None);
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.error_code(), "illegal_transition");
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("voided"), "{message}");
    let r = post_with_key(&h, &format!("/api/payments/{id}/refunds"), &fresh_key(), None);
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(h.get(&format!("/api/payments/{id}")).json()["status"], "voided");
}

fn the_same_key_returns_the_first_result_and_never_charges_twice(rt: Runtime) {
    let h = shop_on(rt);
    let key = fresh_key();
    let body = authorization(APPROVES, 4200);
    let first = authorize(&h, &key, &body);
    assert_eq!(first.status, 201, "{}", first.text);
    let second = authorize(&h, &key, &body);
    assert_eq!(second.status, 201, "{}", second.text);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(second.json(), first.json(), "the stored first result");

    // Reused for another request: refused, whatever differs.
    for other in [authorization(APPROVES, 4201), authorization(MASTERCARD, 4200)] {
        let r = authorize(&h, &key, &other);
        assert_eq!(r.status, 409, "{}", r.text);
        assert_eq!(r.error_code(), "idempotency_key_reused");
    }

    // A decline is stored and replayed too.
    let key = fresh_key();
    let declined = authorize(&h, &key, &authorization(DECLINES, 100));
    assert_eq!(declined.status, 402, "{}", declined.text);
    let again = authorize(&h, &key, &authorization(DECLINES, 100));
    assert_eq!(again.status, 402);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), declined.json());

    // A capture retried gets its first answer, even after the payment moved on.
    let id = first.json()["id"].as_str().unwrap().to_string();
    let capture = format!("/api/payments/authorizations/{id}/capture");
    let capture_key = fresh_key();
    let captured = post_with_key(&h, &capture, &capture_key, Some(&eur(4000)));
    assert_eq!(captured.status, 200, "{}", captured.text);
    let refund_key = fresh_key();
    let refund = post_with_key(&h, &format!("/api/payments/{id}/refunds"), &refund_key, Some(&eur(1000)));
    assert_eq!(refund.status, 201, "{}", refund.text);
    let retried = post_with_key(&h, &capture, &capture_key, Some(&eur(4000)));
    assert_eq!(retried.status, 200, "{}", retried.text);
    assert_eq!(retried.json(), captured.json());
    let retried = post_with_key(&h, &format!("/api/payments/{id}/refunds"), &refund_key, Some(&eur(1000)));
    assert_eq!(retried.status, 201, "{}", retried.text);
    assert_eq!(retried.json(), refund.json());
    let r = post_with_key(&h, &capture, &refund_key, Some(&eur(1000)));
    assert_eq!(r.status, 409, "a refund's key used for a capture: {}", r.text);
    assert_eq!(r.error_code(), "idempotency_key_reused");
    let payment = h.get(&format!("/api/payments/{id}")).json();
    assert_eq!(payment["refunded"]["amount"], 1000, "refunded once");
    assert_eq!(payment["refunds"].as_array().unwrap().len(), 1);
}

fn a_payment_is_found_by_the_key_of_the_operation_that_made_or_changed_it(rt: Runtime) {
    let h = shop_on(rt);
    let find = |key: &str| h.get(&format!("/api/payments?idempotency_key={key}"));
    let key = fresh_key();
    let r = authorize(&h, &key, &authorization(APPROVES, 1200));
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let found = find(&key);
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!((found.json()["id"].as_str(), found.json()["status"].as_str()), (Some(id.as_str()), Some("authorized")));

    // As it stands now, also under the void's key.
    let void_key = fresh_key();
    let r = post_with_key(&h, &format!("/api/payments/authorizations/{id}/void"), &void_key, None);
    assert_eq!(r.status, 200, "{}", r.text);
    for key in [&key, &void_key] {
        let found = find(key);
        assert_eq!((found.json()["id"].as_str(), found.json()["status"].as_str()), (Some(id.as_str()), Some("voided")));
    }

    // A decline made no payment, an unused key none either.
    let declined = fresh_key();
    assert_eq!(authorize(&h, &declined, &authorization(DECLINES, 1200)).status, 402);
    for key in [declined, fresh_key()] {
        let r = find(&key);
        assert_eq!((r.status, r.error_code().as_str()), (404, "payment_not_found"), "{}", r.text);
    }
    let r = h.get("/api/payments");
    assert_eq!((r.status, r.error_code().as_str()), (400, "idempotency_key_required"), "{}", r.text);
}

fn racing_identical_requests_make_one_authorization(rt: Runtime) {
    let h = shop_on(rt);
    const RACERS: usize = 24;
    let key = fresh_key();
    let body = authorization(APPROVES, 999);
    let barrier = Barrier::new(RACERS);
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..RACERS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    authorize(&h, &key, &body)
                })
            })
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let ids: std::collections::HashSet<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", r.text);
            r.json()["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one authorization: {ids:?}");
    let firsts = replies.iter().filter(|r| r.header("idempotent-replayed").is_none()).count();
    assert_eq!(firsts, 1, "one request did the work, the others got its result");

    // Racing captures with one key capture once.
    let id = ids.into_iter().next().unwrap();
    let capture_key = fresh_key();
    let path = format!("/api/payments/authorizations/{id}/capture");
    let barrier = Barrier::new(RACERS);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..RACERS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    post_with_key(&h, &path, &capture_key, None).status
                })
            })
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(h.get(&format!("/api/payments/{id}")).json()["captured"]["amount"], 999);
}

#[test]
fn no_full_card_number_reaches_the_store_or_the_logs() {
    let h = shop();
    let numbers = [APPROVES, DECLINES, INSUFFICIENT_FUNDS, PROCESSOR_ERROR, MASTERCARD, AMEX];
    let mut bodies = Vec::new();
    for (i, number) in numbers.iter().enumerate() {
        let body = authorization(number, 1000 + i as i64);
        let key = fresh_key();
        let r = authorize(&h, &key, &body);
        assert!(matches!(r.status, 201 | 402 | 503), "{number}: {}", r.text);
        // Retries, captures and refunds write too.
        authorize(&h, &key, &body);
        if r.status == 201 {
            let id = r.json()["id"].as_str().unwrap().to_string();
            let c = post_with_key(&h, &format!("/api/payments/authorizations/{id}/capture"), &fresh_key(), None);
            assert_eq!(c.status, 200, "{}", c.text);
            let f = post_with_key(&h, &format!("/api/payments/{id}/refunds"), &fresh_key(), Some(&eur(10)));
            assert_eq!(f.status, 201, "{}", f.text);
        }
        bodies.push(body.to_string());
    }
    // Invalid cards too: a bad cvc, an expired card.
    let mut expired = authorization(APPROVES, 5);
    expired["card"]["exp_year"] = json!(2020);
    let mut bad_cvc = authorization(MASTERCARD, 5);
    bad_cvc["card"]["cvc"] = json!("98765");
    for body in [expired, bad_cvc] {
        let r = authorize(&h, &fresh_key(), &body);
        assert_eq!(r.status, 422, "{}", r.text);
        bodies.push(body.to_string());
    }

    let files = files_under(h.state_dir());
    let payment_files: Vec<_> = files
        .iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("payment.db"))
        .collect();
    assert!(!payment_files.is_empty(), "no payment database under {}: {files:?}", h.state_dir().display());
    let mut last4_seen = false;
    for path in &files {
        // A journal file may go between listing and reading.
        let Ok(bytes) = std::fs::read(path) else { continue };
        for number in numbers {
            assert!(!contains_bytes(&bytes, number.as_bytes()), "{number} is in {}", path.display());
        }
        for body in &bodies {
            assert!(!contains_bytes(&bytes, body.as_bytes()), "a request body is in {}", path.display());
        }
        last4_seen |= contains_bytes(&bytes, b"4242") && contains_bytes(&bytes, b"0005");
    }
    assert!(last4_seen, "the last four digits are stored, so the scan looked at the right data");

    assert!(h.logged("/api/payments"), "the host logged the requests: {}", h.logs());
    let logs = h.logs();
    for number in numbers {
        assert!(!logs.contains(number), "{number} is in the logs");
    }
    for body in &bodies {
        assert!(!logs.contains(body.as_str()), "a request body is in the logs");
    }
}

on_both_runtimes!(
    a_good_card_is_authorized_and_only_its_last_four_digits_are_shown,
    the_test_cards_decline_report_insufficient_funds_and_fail,
    invalid_cards_and_requests_get_a_clear_4xx,
    capture_then_refund_in_parts_never_above_what_was_captured,
    a_void_releases_an_authorization_that_then_cannot_be_captured,
    the_same_key_returns_the_first_result_and_never_charges_twice,
    a_payment_is_found_by_the_key_of_the_operation_that_made_or_changed_it,
    racing_identical_requests_make_one_authorization,
);
