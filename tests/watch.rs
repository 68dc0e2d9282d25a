//! `shop-host up --watch`: a component swapped while the shop serves.
//!
//! Checkout's `shop:tax` dependency is switched from tax.wasm to
//! tax_flat.wasm in spin.toml while clients keep the shop busy: no request
//! fails, the next checkout is taxed by the flat rate, only checkout is
//! swapped and only tax_flat.wasm compiled. A component file that does not
//! load leaves the old version serving. shop-host only: Spin's `spin watch`
//! restarts the app instead.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use shop_tests::*;

const APPROVE: &str = "4242424242424242";

fn checkout(h: &Host, cart: &str) -> Reply {
    let r = h.post(&format!("/api/carts/{cart}/items"), &json!({"sku": "COF-001", "quantity": 2}));
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
    h.request(
        "POST",
        "/api/checkout",
        &[("content-type", "application/json"), ("idempotency-key", cart)],
        Some(checkout_body(cart, "erika@example.com", "standard").to_string().as_bytes()),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn swapped_lines(h: &Host) -> Vec<String> {
    h.logs().lines().filter(|l| l.contains("swapped in")).map(String::from).collect()
}

#[test]
fn tax_is_swapped_for_tax_flat_under_load_without_a_failed_request() {
    let _ = APPROVE;
    let dir = TempDir::new("watch");
    let tax = wasm("tax").display().to_string();
    let original = shop_manifest_text();
    // checkout's own entry (the first); checkout-timer's stays as it is.
    let dependency = format!(r#""shop:tax/tax@0.1.0" = {{ path = "{tax}" }}"#);
    assert!(original.contains(&dependency), "spin.toml wires checkout's tax to tax.wasm");
    let manifest = write_manifest(dir.path(), &original);
    let h = HostConfig::manifest(&manifest)
        .arg("--watch")
        .variable("admin_token", ADMIN_TOKEN)
        .variable("fulfillment_auto_ship", "false")
        .variable("flat_tax_rate_basis_points", "1000")
        .start();
    assert!(h.logged("watching"), "{}", h.logs());

    let before = checkout(&h, "watch-before");
    assert_eq!(before.status, 201, "{}", before.text);
    let checkout_id = before.json()["checkout_id"].as_str().unwrap().to_string();
    let vat = before.json()["totals"].clone();

    // Clients keep checkout (and another component) busy throughout.
    let stop = AtomicBool::new(false);
    let failures = AtomicUsize::new(0);
    let samples: Mutex<Vec<(Instant, Duration)>> = Mutex::new(Vec::new());
    let (changed_at, swapped_at, after) = std::thread::scope(|s| {
        for client in 0..4 {
            let (h, stop, failures, samples, checkout_id) = (&h, &stop, &failures, &samples, &checkout_id);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let path = if client % 2 == 0 { format!("/api/checkout/{checkout_id}") } else { "/api/products?per_page=1".to_string() };
                    let started = Instant::now();
                    let r = h.get(&path);
                    let took = started.elapsed();
                    if r.status != 200 {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("failed during the swap: GET {path} -> {} {}", r.status, r.text);
                    }
                    samples.lock().unwrap().push((started, took));
                }
            });
        }
        std::thread::sleep(Duration::from_secs(2));
        let flat = wasm("tax_flat").display().to_string();
        let swapped = original.replacen(
            &dependency,
            &format!(r#""shop:tax/tax@0.1.0" = {{ path = "{flat}", inherit_configuration = true }}"#),
            1,
        );
        let changed_at = Instant::now();
        std::fs::write(&manifest, swapped).unwrap();
        let swapped_at = eventually(Duration::from_secs(60), || (!swapped_lines(&h).is_empty()).then(Instant::now));
        assert!(swapped_at.is_some(), "checkout was not swapped:\n{}", h.logs());
        // From the next request on, the flat rate.
        let after = checkout(&h, "watch-after");
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::Relaxed);
        (changed_at, swapped_at.unwrap(), after)
    });

    assert_eq!(failures.load(Ordering::Relaxed), 0, "requests failed during the swap:\n{}", h.logs());
    assert_eq!(after.status, 201, "{}", after.text);
    let flat = after.json()["totals"].clone();
    assert_eq!(vat["items"], flat["items"]);
    let taxed = flat["items"].as_i64().unwrap() + flat["shipping"].as_i64().unwrap();
    assert_eq!(flat["tax"].as_i64().unwrap(), (taxed as f64 * 0.10).round() as i64, "10 % flat: {flat}");
    assert_ne!(vat["tax"], flat["tax"]);

    let lines = swapped_lines(&h);
    assert_eq!(lines.len(), 1, "only checkout is swapped: {lines:?}");
    assert!(lines[0].contains("component `checkout` swapped"), "{lines:?}");
    assert!(lines[0].contains("compiled: tax_flat.wasm)"), "only tax_flat.wasm is compiled: {lines:?}");

    let samples = samples.into_inner().unwrap();
    let window_end = swapped_at + Duration::from_millis(500);
    let mut steady: Vec<Duration> = samples.iter().filter(|(t, _)| *t < changed_at).map(|(_, d)| *d).collect();
    let mut during: Vec<Duration> = samples.iter().filter(|(t, _)| *t >= changed_at && *t <= window_end).map(|(_, d)| *d).collect();
    steady.sort();
    during.sort();
    eprintln!(
        "watch: change to serving {:.0} ms (detected and swapped); p99 before {:.1} ms over {} requests, during the swap {:.1} ms over {} requests; {} requests in all, 0 failed",
        (swapped_at - changed_at).as_secs_f64() * 1000.0,
        percentile(&steady, 0.99).as_secs_f64() * 1000.0,
        steady.len(),
        percentile(&during, 0.99).as_secs_f64() * 1000.0,
        during.len(),
        samples.len()
    );
    eprintln!("watch: {}", lines[0]);
}

#[test]
fn a_component_that_does_not_load_leaves_the_old_one_serving() {
    let dir = TempDir::new("watch-broken");
    let tax = dir.path().join("tax.wasm");
    std::fs::copy(wasm("tax"), &tax).unwrap();
    let original = shop_manifest_text();
    let dependency = format!(r#""shop:tax/tax@0.1.0" = {{ path = "{}" }}"#, wasm("tax").display());
    let text = original.replacen(&dependency, &format!(r#""shop:tax/tax@0.1.0" = {{ path = "{}" }}"#, tax.display()), 1);
    let h = HostConfig::manifest(write_manifest(dir.path(), &text))
        .arg("--watch")
        .variable("admin_token", ADMIN_TOKEN)
        .variable("fulfillment_auto_ship", "false")
        .start();
    let first = checkout(&h, "broken-1");
    assert_eq!(first.status, 201, "{}", first.text);

    // A file that is no component: refused, logged, the old one serves.
    std::fs::write(&tax, b"not a component").unwrap();
    let refused = eventually(Duration::from_secs(30), || h.logged("component `checkout` not swapped").then_some(()));
    assert!(refused.is_some(), "{}", h.logs());
    assert!(h.logs().contains("is not a valid WebAssembly component"), "the log says why:\n{}", h.logs());
    let second = checkout(&h, "broken-2");
    assert_eq!(second.status, 201, "{}", second.text);
    assert_eq!(second.json()["totals"]["tax"], first.json()["totals"]["tax"]);

    // A component with the wrong exports for its place: refused too.
    std::fs::copy(wasm("catalog"), &tax).unwrap();
    let refused_again =
        eventually(Duration::from_secs(30), || (h.logs().matches("component `checkout` not swapped").count() >= 2).then_some(()));
    assert!(refused_again.is_some(), "{}", h.logs());
    assert_eq!(checkout(&h, "broken-3").status, 201);

    // Fixed: swapped in.
    std::fs::copy(wasm("tax"), &tax).unwrap();
    let swapped = eventually(Duration::from_secs(30), || (!swapped_lines(&h).is_empty()).then_some(()));
    assert!(swapped.is_some(), "{}", h.logs());
    assert_eq!(checkout(&h, "broken-4").status, 201);

    // A broken manifest: logged, nothing changes.
    std::fs::write(dir.path().join("spin.toml"), "spin_manifest_version = 2\n[application\n").unwrap();
    let logged = eventually(Duration::from_secs(30), || h.logged("the app keeps serving as it was").then_some(()));
    assert!(logged.is_some(), "{}", h.logs());
    assert_eq!(checkout(&h, "broken-5").status, 201);
}

#[test]
fn a_request_in_flight_finishes_on_the_version_it_started_with() {
    use std::io::{Read, Write};
    let dir = TempDir::new("watch-in-flight");
    let entry = |version: &str| {
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"in-flight\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"probe\"\n[component.probe]\nsource = \"{{probe}}\"\nenvironment = {{ VERSION = \"{version}\" }}\n"
        )
    };
    let manifest = write_manifest(dir.path(), &entry("1"));
    let h = HostConfig::manifest(&manifest).arg("--watch").start();
    assert_eq!(h.get("/?do=env&name=VERSION").json()["value"], "1");

    // A request whose body is still coming: its instance (version 1) is in flight.
    let address = h.url("").trim_start_matches("http://").trim_end_matches('/').to_string();
    let mut slow = std::net::TcpStream::connect(&address).unwrap();
    slow.write_all(format!("POST /?do=env&name=VERSION HTTP/1.1\r\nhost: {address}\r\ncontent-length: 10\r\nconnection: close\r\n\r\nhalf.").as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    write_manifest(dir.path(), &entry("2"));
    let swapped = eventually(Duration::from_secs(30), || (!swapped_lines(&h).is_empty()).then_some(()));
    assert!(swapped.is_some(), "{}", h.logs());
    assert_eq!(h.get("/?do=env&name=VERSION").json()["value"], "2", "new requests get the new version");

    slow.write_all(b"rest!").unwrap();
    let mut response = String::new();
    slow.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""value":"1""#), "the request in flight finished on version 1: {response}");
}
