//! `cargo xtask bench`: throughput and latency of the shop through
//! shop-host, measured with wrk on 127.0.0.1, each figure next to baselines
//! measured in the same run on the same machine:
//!
//! - `native hello`: a plain Rust HTTP server answering a constant, the
//!   ceiling of what loopback and wrk allow here;
//! - `wasm hello`: a component that does no I/O, through the same host, the
//!   host's own per-request cost (instantiate, route, headers, log).
//!
//! Machines are shared and noisy, so the ratios are what to compare between
//! runs, not the absolute numbers.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;
use crate::shop::{Launch, Runtime, Shop};
use crate::http_client::{HttpResponse, http_request};

/// One wrk run's figures.
struct Measure {
    requests_per_sec: f64,
    p50: String,
    p99: String,
    errors: u64,
}

/// A part of the bench to run alone.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Time from checkout to payment.captured on a real Redis
    Events,
    /// What a sign-in (argon2id) costs, against GET /api/customers/me
    SignIn,
    /// What tracing costs: no OTLP endpoint against exporting every span
    Tracing,
}

/// Runs every part, or only `only`.
pub fn run(host_bin: &Path, root: &Path, seconds: u32, only: Option<Part>) -> Result {
    if only == Some(Part::Tracing) {
        return tracing_cost(host_bin, root, seconds);
    }
    if only == Some(Part::Events) {
        let work = std::env::temp_dir().join(format!("shop-bench-{}", std::process::id()));
        std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
        let result = events_latency(host_bin, root, &work);
        let _ = std::fs::remove_dir_all(&work);
        return result;
    }
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|_| "wrk is needed: install it with `sudo apt-get install wrk` (Debian/Ubuntu)".to_string())?;

    let work = std::env::temp_dir().join(format!("shop-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let hello_manifest = work.join("hello.toml");
    std::fs::write(
        &hello_manifest,
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"hello\"\n[[trigger.http]]\nroute = \"/hello\"\ncomponent = \"hello\"\n[component.hello]\nsource = {:?}\n",
            root.join("target/wasm32-wasip2/release/probe.wasm")
        ),
    )
    .map_err(|e| e.to_string())?;

    let native = native_hello()?;
    let hello = serve(host_bin, root, &hello_manifest, &work.join("hello-state"), vec![], "/hello")?;
    let mut shop = serve(host_bin, root, &root.join("spin.toml"), &work.join("shop-state"), admin(), SHOP_READY)?;
    if only == Some(Part::SignIn) {
        let result = sign_in_cost(&shop.base);
        drop(shop);
        drop(hello);
        let _ = std::fs::remove_dir_all(&work);
        return result;
    }
    // Warm the catalog's seed and a cart before measuring.
    let sku = first_sku(&shop.base)?;
    call(&shop.base, "POST", "/api/carts/bench/items", &[("content-type", "application/json")], Some(&format!("{{\"sku\":\"{sku}\",\"quantity\":1}}")))?;

    let targets = [
        ("native hello (baseline)", format!("http://{native}/")),
        ("wasm hello through shop-host", format!("{}/hello", hello.base)),
        ("GET /api/products/{sku} (SQLite)", format!("{}/api/products/{sku}", shop.base)),
        ("GET /api/carts/{id} (SQLite)", format!("{}/api/carts/bench", shop.base)),
    ];
    println!("wrk -t1, {seconds}s per run, 127.0.0.1, {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()));
    println!("{:<36} {:>6} {:>11} {:>10} {:>10} {:>8} {:>9}", "target", "conns", "req/s", "p50", "p99", "errors", "vs hello");
    for connections in [1, 8] {
        let mut hello_rps = None;
        for (name, url) in &targets {
            let m = wrk(url, connections, seconds)?;
            let ratio = match hello_rps {
                Some(h) if !name.contains("hello") => format!("{:.2}x", m.requests_per_sec / h),
                _ => "-".to_string(),
            };
            if name.starts_with("wasm hello") {
                hello_rps = Some(m.requests_per_sec);
            }
            println!(
                "{:<36} {:>6} {:>11.0} {:>10} {:>10} {:>8} {:>9}",
                name, connections, m.requests_per_sec, m.p50, m.p99, m.errors, ratio
            );
        }
    }

    sign_in_cost(&shop.base)?;

    // Enough stock that no checkout fails for want of it.
    let stock = call(&shop.base, "PUT", &format!("/api/inventory/{sku}"), &[("content-type", "application/json"), ("authorization", "Bearer bench")], Some("{\"on_hand\":10000000}"))?;
    if stock.status >= 300 {
        return Err(format!("cannot stock {sku}: {}", stock.summary()));
    }
    println!();
    println!("POST /api/checkout (cart of one line; the saga through 8 imported services)");
    println!("{:>8} {:>10} {:>10} {:>10} {:>10} {:>9}", "clients", "checkouts", "per sec", "p50", "p99", "failures");
    for clients in [1, 16] {
        let (n, rate, p50, p99, failures) = checkout_latency(&shop.base, &sku, clients, seconds)?;
        println!("{clients:>8} {n:>10} {rate:>10.1} {:>10} {:>10} {failures:>9}", format!("{:.2}ms", p50.as_secs_f64() * 1000.0), format!("{:.2}ms", p99.as_secs_f64() * 1000.0));
    }
    delivery_cost(&shop.base)?;
    println!("shop-host resident memory after the runs: {} (shop), {} (hello)", shop.rss(), hello.rss());
    drop(hello);
    if let Some(baseline) = std::env::var_os("SHOP_BENCH_BASELINE").filter(|v| !v.is_empty()) {
        compare_checkout(host_bin, &mut shop, Path::new(&baseline), &sku, seconds, &work)?;
    }
    drop(shop);
    events_latency(host_bin, root, &work)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// What a sign-in costs (argon2id, 19 MiB, t=2, p=1, in wasm), against the
/// same component answering `GET /api/customers/me` in the same run; and a
/// wrong password against an unknown email, which must cost the same.
/// Successful sign-ins reset their account's attempt count, so 20 in a row
/// stay under the limits; the failures are 4 of each (5 per account, 20
/// per client in a window).
fn sign_in_cost(base: &str) -> Result {
    let json = [("content-type", "application/json")];
    let email = format!("bench-{}@example.com", std::process::id());
    let password = "bench horse battery staple";
    let r = call(base, "POST", "/api/customers", &json, Some(&format!(
        "{{\"name\":\"Bench\",\"email\":\"{email}\",\"password\":\"{password}\"}}"
    )))?;
    if r.status != 201 {
        return Err(format!("sign-up: {}", r.summary()));
    }
    let timed = |body: String, expected: u16| -> Result<(Duration, String)> {
        let started = Instant::now();
        let r = call(base, "POST", "/api/customers/sessions", &json, Some(&body))?;
        let took = started.elapsed();
        if r.status != expected {
            return Err(format!("sign-in answered {} (expected {expected})", r.summary()));
        }
        Ok((took, String::from_utf8_lossy(&r.body).into_owned()))
    };
    let sign_in = |pw: &str, who: &str| format!("{{\"email\":\"{who}\",\"password\":\"{pw}\"}}");
    let mut ok = Vec::new();
    let mut token = String::new();
    for _ in 0..20 {
        let (took, body) = timed(sign_in(password, &email), 201)?;
        ok.push(took);
        token = body.split("\"token\":\"").nth(1).and_then(|t| t.split('"').next()).unwrap_or_default().to_string();
    }
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..4 {
        wrong.push(timed(sign_in("not the password", &email), 401)?.0);
        unknown.push(timed(sign_in("not the password", &format!("nobody-{i}-{email}")), 401)?.0);
    }
    let mut me = Vec::new();
    let auth = format!("Bearer {token}");
    for _ in 0..20 {
        let started = Instant::now();
        let r = call(base, "GET", "/api/customers/me", &[("authorization", &auth)], None)?;
        me.push(started.elapsed());
        if r.status != 200 {
            return Err(format!("GET /api/customers/me: {}", r.summary()));
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1000.0
    };
    let (ok, wrong, unknown, me) = (median(&mut ok), median(&mut wrong), median(&mut unknown), median(&mut me));
    println!();
    println!("sign-in (argon2id m=19 MiB t=2 p=1 in wasm), medians, one client");
    println!("  POST /api/customers/sessions, right password  {ok:>8.1} ms  (20)");
    println!("  POST /api/customers/sessions, wrong password  {wrong:>8.1} ms  (4)");
    println!("  POST /api/customers/sessions, unknown email   {unknown:>8.1} ms  (4; {:.2}x the wrong password)", unknown / wrong);
    println!("  GET /api/customers/me (baseline: no hash)     {me:>8.1} ms  (20; sign-in costs {:.1} ms more)", ok - me);
    Ok(())
}

/// What at-least-once delivery cost during the checkout runs: publishes
/// and re-publishes over every service's outbox, once the first look for
/// acknowledgements (5 s after a publish) has passed for the last events.
fn delivery_cost(base: &str) -> Result {
    std::thread::sleep(Duration::from_secs(8));
    let r = call(base, "GET", "/api/admin/events", &[("authorization", "Bearer bench")], None)?;
    if r.status != 200 {
        return Err(format!("GET /api/admin/events: {}", r.summary()));
    }
    // No JSON parser in xtask: the numbers after `"key":`, in the order they come
    // (serde_json writes keys sorted, so the totals precede "services").
    let body = String::from_utf8_lossy(&r.body);
    let numbers = |key: &str| -> Vec<u64> {
        let pattern = format!("\"{key}\":");
        body.match_indices(&pattern)
            .filter_map(|(i, _)| {
                let rest = &body[i + pattern.len()..];
                rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len())].parse().ok()
            })
            .collect()
    };
    let republishes = numbers("republishes").first().copied().unwrap_or(0);
    let due = numbers("due").first().copied().unwrap_or(0);
    let publishes: u64 = numbers("publishes").iter().sum();
    let first = publishes.saturating_sub(republishes).max(1);
    println!(
        "events: {first} published, {republishes} re-published ({:.1} per 1000), {due} still due 8 s after the last checkout",
        republishes as f64 * 1000.0 / first as f64
    );
    Ok(())
}

/// `SHOP_BENCH_BASELINE=<another checkout of the shop, its components
/// built>`: the checkout measured on that tree's spin.toml and `.wasm`
/// files with the same host, in turns with this tree's, so that a change
/// is judged against a baseline of the same run on the same noisy machine.
fn compare_checkout(host_bin: &Path, shop: &mut Shop, baseline_root: &Path, sku: &str, seconds: u32, work: &Path) -> Result {
    let baseline = serve(host_bin, baseline_root, &baseline_root.join("spin.toml"), &work.join("baseline-state"), admin(), SHOP_READY)?;
    let stock = call(&baseline.base, "PUT", &format!("/api/inventory/{sku}"), &[("content-type", "application/json"), ("authorization", "Bearer bench")], Some("{\"on_hand\":10000000}"))?;
    if stock.status >= 300 {
        return Err(format!("cannot stock {sku} in the baseline: {}", stock.summary()));
    }
    println!();
    println!("POST /api/checkout, this tree against {} (same host, in turns)", baseline_root.display());
    println!("{:>8} {:>6} {:>12} {:>12} {:>8} {:>9}", "clients", "round", "this tree/s", "baseline/s", "ratio", "failures");
    for clients in [1, 16] {
        let (mut ours, mut theirs) = (0.0, 0.0);
        for round in 1..=4 {
            // Who goes first alternates, so a machine getting busier or
            // quieter during the run favours neither.
            let (a, b) = if round % 2 == 1 {
                let a = checkout_latency(&shop.base, sku, clients, seconds)?;
                (a, checkout_latency(&baseline.base, sku, clients, seconds)?)
            } else {
                let b = checkout_latency(&baseline.base, sku, clients, seconds)?;
                (checkout_latency(&shop.base, sku, clients, seconds)?, b)
            };
            let (a_failures, b_failures) = (a.4, b.4);
            let (a, b) = (a.1, b.1);
            println!("{clients:>8} {round:>6} {a:>12.1} {b:>12.1} {:>7.2}x {:>9}", a / b, format!("{a_failures}/{b_failures}"));
            ours += a;
            theirs += b;
        }
        println!("{clients:>8} {:>6} {:>12.1} {:>12.1} {:>7.2}x", "all", ours / 4.0, theirs / 4.0, ours / theirs);
    }
    drop(baseline);
    Ok(())
}

fn wrk(url: &str, connections: u32, seconds: u32) -> Result<Measure> {
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency", url])
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
    };
    let requests_per_sec = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("unexpected wrk output:\n{text}"))?;
    let errors = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok(Measure {
        requests_per_sec,
        p50: field("50%").unwrap_or_default(),
        p99: field("99%").unwrap_or_default(),
        errors,
    })
}

/// The baseline: one thread per connection, keep-alive, a constant answer.
fn native_hello() -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?.to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve_hello(stream));
        }
    });
    Ok(addr)
}

fn serve_hello(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut writer = stream;
    let mut line = String::new();
    loop {
        // Read one request head; the benchmark sends no bodies.
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => {}
            }
        }
        let answer = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello";
        if writer.write_all(answer).is_err() {
            return;
        }
    }
}

/// The app at `manifest` on shop-host, fresh state under `state`; no
/// per-request log lines, which would be part of what is measured.
fn serve(host_bin: &Path, root: &Path, manifest: &Path, state: &Path, variables: Vec<(&str, String)>, ready: &str) -> Result<Shop> {
    Shop::start(host_bin, root, Launch { runtime: Runtime::ShopHost, manifest, state, variables, ready, log_requests: false, env: Vec::new(), wasi_otel: true })
}

/// `cargo xtask bench tracing`: what traces cost a checkout, at 1 and 16
/// clients: the shop with no OTLP endpoint against the same shop exporting
/// every span to a collector (tests/otlp.rs, on this machine, counting
/// bytes only so that its own work costs the shop next to nothing), in
/// alternating rounds; and, with `SHOP_BENCH_BASELINE=<a built tree from
/// before the traces>`, against that tree's own shop-host and components
/// (what "tracing off" costs against not having it at all).
pub fn tracing_cost(host_bin: &Path, root: &Path, seconds: u32) -> Result {
    let work = std::env::temp_dir().join(format!("shop-bench-tracing-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let collector_port = crate::shop::free_port();
    let trace_bin = host_bin.with_file_name("shop-trace");
    let mut collector = Command::new(&trace_bin)
        .args(["collect", "--count-only", "--listen", &format!("127.0.0.1:{collector_port}"), "--keep"])
        .arg(work.join("received"))
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", trace_bin.display()))?;
    let launch = |name: &str, host: &Path, tree: &Path, env: Vec<(&'static str, String)>, wasi_otel: bool| {
        let state = work.join(name);
        let manifest = tree.join("spin.toml");
        let shop = Shop::start(host, tree, Launch { runtime: Runtime::ShopHost, manifest: &manifest, state: &state, variables: admin(), ready: SHOP_READY, log_requests: false, env, wasi_otel })?;
        let sku = first_sku(&shop.base)?;
        let stock = call(&shop.base, "PUT", &format!("/api/inventory/{sku}"), &[("content-type", "application/json"), ("authorization", "Bearer bench")], Some("{\"on_hand\":10000000}"))?;
        if stock.status >= 300 {
            return Err(format!("cannot stock {sku}: {}", stock.summary()));
        }
        Ok::<_, String>((shop, sku))
    };
    let mut shops = vec![
        ("tracing off", launch("off", host_bin, root, Vec::new(), true)?),
        (
            "tracing on",
            launch("on", host_bin, root, vec![("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{collector_port}")), ("OTEL_SERVICE_NAME", "shop".into())], true)?,
        ),
    ];
    if let Some(baseline) = std::env::var_os("SHOP_BENCH_BASELINE").filter(|v| !v.is_empty()).map(std::path::PathBuf::from) {
        let host = baseline.join("target/release/shop-host");
        let host = if host.is_file() { host } else { host_bin.to_path_buf() };
        shops.push(("baseline", launch("baseline", &host, &baseline, Vec::new(), false)?));
    }
    println!();
    println!("POST /api/checkout: what traces cost (same machine, in turns, {seconds}s per run)");
    print!("{:>8} {:>6}", "clients", "round");
    for (name, _) in &shops {
        print!(" {name:>13}/s {:>9}", "p99");
    }
    println!();
    for clients in [1, 16] {
        let mut sums = vec![0.0; shops.len()];
        for round in 1..=4 {
            print!("{clients:>8} {round:>6}");
            let mut order: Vec<usize> = (0..shops.len()).collect();
            // Who goes first rotates, so a machine getting busier or
            // quieter during the run favours none.
            order.rotate_left(round % shops.len());
            let mut row = vec![None; shops.len()];
            for i in order {
                let (_, (shop, sku)) = &shops[i];
                row[i] = Some(checkout_latency(&shop.base, sku, clients, seconds)?);
            }
            for (i, m) in row.into_iter().enumerate() {
                let (_, rate, _, p99, failures) = m.expect("measured");
                sums[i] += rate;
                let failed = if failures > 0 { format!(" ({failures} failed)") } else { String::new() };
                print!(" {rate:>15.1} {:>9}{failed}", format!("{:.1}ms", p99.as_secs_f64() * 1000.0));
            }
            println!();
        }
        print!("{clients:>8} {:>6}", "mean");
        for sum in &sums {
            print!(" {:>15.1} {:>9}", sum / 4.0, "");
        }
        println!();
        for (i, (name, _)) in shops.iter().enumerate().skip(1) {
            println!("{clients:>8}   {name} ÷ tracing off: {:.3}", sums[i] / sums[0]);
        }
    }
    let received = std::fs::read_to_string(work.join("received")).unwrap_or_default();
    println!("the collector (counting only, on this machine) received: {}", received.trim());
    drop(shops);
    let _ = collector.kill();
    let _ = collector.wait();
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// The shop's admin token here: `bench`.
fn admin() -> Vec<(&'static str, String)> {
    vec![("admin_token", "bench".to_string())]
}

/// Answers 200 once the shop's catalog is seeded.
const SHOP_READY: &str = "/api/products?per_page=1";

/// Time from sending `POST /api/checkout` to `payment.captured` on a
/// real Redis: the choreography placed → shipped → captured, each hop a
/// pub/sub delivery and an instance. Measured by subscribing to the capture
/// channel, 200 orders one after the other.
fn events_latency(host_bin: &Path, root: &Path, work: &Path) -> Result {
    const ORDERS: usize = 200;
    if Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_err() {
        println!("(no redis-server: the event latency is not measured; install redis-server)");
        return Ok(());
    }
    let port = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?.local_addr().map_err(|e| e.to_string())?.port();
    let mut redis = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start redis-server: {e}"))?;
    let url = format!("redis://127.0.0.1:{port}");
    let outcome = (|| {
        let mut variables = admin();
        variables.extend([("redis_address", url.clone()), ("redis_host", url.clone())]);
        let shop = serve(host_bin, root, &root.join("spin.toml"), &work.join("events-state"), variables, SHOP_READY)?;
        let sku = first_sku(&shop.base)?;
        call(&shop.base, "PUT", &format!("/api/inventory/{sku}"), &[("content-type", "application/json"), ("authorization", "Bearer bench")], Some("{\"on_hand\":10000000}"))?;
        // Listen for captures before any order exists.
        let (tx, rx) = std::sync::mpsc::channel::<(String, Instant)>();
        let mut sub = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        let channel = "shop.payment.captured";
        sub.write_all(format!("*2\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{channel}\r\n", channel.len()).as_bytes())
            .map_err(|e| e.to_string())?;
        std::thread::spawn(move || {
            let mut reader = BufReader::new(sub);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if let Some(at) = line.find("\"order_id\":\"") {
                    let rest = &line[at + 12..];
                    if let Some(end) = rest.find('"') {
                        let _ = tx.send((rest[..end].to_string(), Instant::now()));
                    }
                }
                line.clear();
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        let mut sent = std::collections::HashMap::new();
        for i in 0..ORDERS {
            let cart = format!("events-{i}");
            call(&shop.base, "POST", &format!("/api/carts/{cart}/items"), &[("content-type", "application/json")], Some(&format!("{{\"sku\":\"{sku}\",\"quantity\":1}}")))?;
            let body = format!(
                "{{\"cart_id\":\"{cart}\",\"email\":\"bench@example.com\",\"address\":{{\"name\":\"Ada\",\"line1\":\"Hauptstr. 1\",\"city\":\"Berlin\",\"postal_code\":\"10115\",\"country\":\"DE\"}},\"shipping\":\"standard\",\"card\":{{\"number\":\"4242424242424242\",\"exp_month\":12,\"exp_year\":2030,\"cvc\":\"123\"}}}}"
            );
            let posted = Instant::now();
            let r = call(&shop.base, "POST", "/api/checkout", &[("content-type", "application/json"), ("idempotency-key", &cart)], Some(&body))?;
            if r.status != 201 {
                return Err(format!("checkout failed: {}", r.summary()));
            }
            let text = String::from_utf8_lossy(&r.body).into_owned();
            let order = text.find("\"order_id\":\"").and_then(|at| {
                let rest = &text[at + 12..];
                rest.find('"').map(|end| rest[..end].to_string())
            });
            sent.insert(order.ok_or("no order_id in the checkout answer")?, posted);
        }
        let mut latencies = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while latencies.len() < ORDERS && Instant::now() < deadline {
            if let Ok((order, at)) = rx.recv_timeout(Duration::from_millis(500))
                && let Some(start) = sent.remove(&order)
            {
                latencies.push(at.saturating_duration_since(start));
            }
        }
        drop(shop);
        latencies.sort();
        let ms = |d: Duration| format!("{:.1}ms", d.as_secs_f64() * 1000.0);
        println!();
        println!("POST /api/checkout sent -> payment.captured on a real Redis ({ORDERS} orders, one at a time)");
        match latencies.len() {
            0 => println!("  no capture observed"),
            n => println!(
                "  captured {n}/{ORDERS}: p50 {}  p90 {}  p99 {}",
                ms(latencies[n / 2]),
                ms(latencies[(n * 9 / 10).min(n - 1)]),
                ms(latencies[(n * 99 / 100).min(n - 1)])
            ),
        }
        Ok(())
    })();
    let _ = redis.kill();
    let _ = redis.wait();
    outcome
}

fn addr(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().expect("the host prints an address")
}

fn call(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Result<HttpResponse> {
    let headers: Vec<(String, String)> =
        headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    http_request(addr(base), method, path, &headers, body.map(str::as_bytes))
}

fn first_sku(base: &str) -> Result<String> {
    let r = call(base, "GET", "/api/products?per_page=1", &[], None)?;
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let key = "\"sku\":\"";
    let start = text.find(key).ok_or_else(|| format!("no product in {text}"))? + key.len();
    let end = text[start..].find('"').ok_or("malformed product")? + start;
    Ok(text[start..end].to_string())
}

/// Latency of `POST /api/checkout` (the whole saga through eight imported
/// services) with `clients` clients each checking out carts back to back.
fn checkout_latency(base: &str, sku: &str, clients: usize, seconds: u32) -> Result<(usize, f64, Duration, Duration, usize)> {
    // Every run its own carts (and so idempotency keys): a key seen before
    // would replay its stored answer instead of checking out.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds as u64);
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let base = base.to_string();
            let sku = sku.to_string();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut failures = 0;
                let mut n = 0;
                while Instant::now() < until {
                    n += 1;
                    let cart = format!("bench-{run}-{clients}-{client}-{n}");
                    let item = format!("{{\"sku\":\"{sku}\",\"quantity\":1}}");
                    if call(&base, "POST", &format!("/api/carts/{cart}/items"), &[("content-type", "application/json")], Some(&item)).is_err() {
                        failures += 1;
                        continue;
                    }
                    let body = format!(
                        "{{\"cart_id\":\"{cart}\",\"email\":\"bench@example.com\",\"address\":{{\"name\":\"Ada\",\"line1\":\"Hauptstr. 1\",\"city\":\"Berlin\",\"postal_code\":\"10115\",\"country\":\"DE\"}},\"shipping\":\"standard\",\"card\":{{\"number\":\"4242424242424242\",\"exp_month\":12,\"exp_year\":2030,\"cvc\":\"123\"}}}}"
                    );
                    let t = Instant::now();
                    let r = call(&base, "POST", "/api/checkout", &[("content-type", "application/json"), ("idempotency-key", &cart)], Some(&body));
                    let elapsed = t.elapsed();
                    match r {
                        Ok(r) if r.status == 201 => latencies.push(elapsed),
                        Ok(r) => {
                            if failures == 0 {
                                eprintln!("bench: checkout answered {}", r.summary());
                            }
                            failures += 1;
                        }
                        Err(e) => {
                            if failures == 0 {
                                eprintln!("bench: checkout failed: {e}");
                            }
                            failures += 1;
                        }
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut failures = 0;
    for w in workers {
        let (l, f) = w.join().map_err(|_| "a bench client panicked")?;
        all.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or_default();
    Ok((all.len(), all.len() as f64 / elapsed, pct(0.50), pct(0.99), failures))
}
