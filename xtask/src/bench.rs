//! `cargo xtask bench`: the goals of the performance work, measured with wrk
//! and with clients of our own on 127.0.0.1, each figure next to baselines
//! measured in the same run on the same machine (docs/performance.md):
//!
//! - real Spin, when one is found: the same `.wasm` files and manifests,
//!   so `shop-host ÷ Spin` is the host's own gain;
//! - `native hello`: a plain Rust HTTP server answering a constant, the
//!   ceiling of what loopback and wrk allow here;
//! - the checkout's own peak so far as clients are added (1, 4, 16, 64),
//!   which it should hold.
//!
//! Machines are shared and noisy, so the ratios are what to compare between
//! runs, not the absolute numbers. Everything ends in one table (and, with
//! `--json`, the same figures as JSON).

mod report;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::Result;
use crate::http_client::{HttpResponse, http_request};
use crate::shop::{Launch, Runtime, Shop, WorkDir};
use report::{Context, Goal, NO_SPIN, NOT_ON_SPIN, On, Report, Row, SPIN_FAILED, Section, Spin, Unit};

/// Set when the JSON goes to stdout: the live lines and the table go to
/// stderr then, so that stdout is JSON only.
static TO_STDERR: AtomicBool = AtomicBool::new(false);

/// `println!` for the bench's human-readable lines (see `TO_STDERR`).
macro_rules! say {
    ($($t:tt)*) => {
        if TO_STDERR.load(Ordering::Relaxed) { eprintln!($($t)*) } else { println!($($t)*) }
    };
}

/// A part of the bench to run alone.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Part {
    /// Checkouts on shop-host alone (1, 4, 16, 64 clients), no Spin: for
    /// trying a change quickly
    Checkout,
    /// Time from checkout to payment.captured on a real Redis
    Events,
    /// What a sign-in (argon2id) costs, against GET /api/customers/me
    SignIn,
    /// What tracing costs: no OTLP endpoint against exporting every span
    Tracing,
}

pub struct Options {
    /// Length of each measured run.
    pub seconds: u32,
    /// Only this part; None: the main table and the further parts (all but
    /// tracing, which takes long and is asked for by name).
    pub only: Option<Part>,
    /// Where the JSON goes: a file, or `-` for stdout.
    pub json: Option<PathBuf>,
    /// Put the table into docs/performance.md's "Latest results".
    pub update_docs: bool,
}

pub fn run(host_bin: &Path, root: &Path, options: &Options) -> Result {
    if options.update_docs && options.only.is_some() {
        // A part's rows alone would replace a full run's table.
        return Err("--update-docs needs the whole bench, not one part".into());
    }
    let json_to_stdout = options.json.as_deref() == Some(Path::new("-"));
    TO_STDERR.store(json_to_stdout, Ordering::Relaxed);
    let mut report = Report { context: Context::of_this_machine(root, options.seconds), rows: Vec::new() };
    let work = WorkDir::new("bench")?;
    let seconds = options.seconds;
    let outcome = match options.only {
        Some(Part::Tracing) => tracing_cost(host_bin, root, seconds, &work.path, &mut report),
        Some(Part::Events) => events_latency(host_bin, root, &work.path, &mut report),
        Some(Part::Checkout) => checkouts_alone(host_bin, root, seconds, &work.path, &mut report),
        only => main_table(host_bin, root, seconds, only == Some(Part::SignIn), &work.path, &mut report),
    };
    // What was measured is shown even when a later part failed.
    if !report.rows.is_empty() {
        say!();
        say!("{}", report.markdown());
    }
    if let Some(path) = &options.json {
        let text = serde_json::to_string_pretty(&report.json()).map_err(|e| e.to_string())?;
        if json_to_stdout {
            println!("{text}");
        } else {
            std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            say!("the figures as JSON: {}", path.display());
        }
    }
    if options.update_docs && outcome.is_ok() {
        let doc = root.join("docs/performance.md");
        report.write_into_docs(&doc)?;
        say!("the table is in {} (Latest results)", doc.display());
    }
    outcome
}

/// The same app on real Spin, or why there is none.
enum OnSpin {
    NotFound,
    Failed,
    Up { probe: Shop, shop: Shop, sku: String },
}

impl OnSpin {
    /// The cell for a row this side did not measure.
    fn absent(&self) -> Spin {
        match self {
            OnSpin::NotFound => NO_SPIN,
            OnSpin::Failed => SPIN_FAILED,
            OnSpin::Up { .. } => NOT_ON_SPIN,
        }
    }
}

/// The probe component (tests/fixtures/probe) twice: `/hello` with no
/// stores (it echoes a few headers: the host's own per-request cost), and
/// `/kv` granted the `default` key-value store, whose `?do=kv&key=…` reads
/// one key and nothing else. No shop endpoint reads key-value alone (the
/// session readers read SQLite too).
fn write_probe_manifest(root: &Path, work: &Path) -> Result<PathBuf> {
    let probe = root.join("target/wasm32-wasip2/release/probe.wasm");
    let manifest = work.join("probe.toml");
    std::fs::write(
        &manifest,
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"probe\"\n\n\
             [[trigger.http]]\nroute = \"/hello\"\ncomponent = \"hello\"\n[component.hello]\nsource = {probe:?}\n\n\
             [[trigger.http]]\nroute = \"/kv\"\ncomponent = \"kv\"\n[component.kv]\nsource = {probe:?}\nkey_value_stores = [\"default\"]\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    Ok(manifest)
}

const KV_READ: &str = "/kv?do=kv&label=default&key=bench";

/// The key `KV_READ` reads, written once.
fn prepare_probe(base: &str) -> Result {
    let r = call(base, "GET", &format!("{KV_READ}&value=hello"), &[], None)?;
    if r.status != 200 {
        return Err(format!("the probe cannot write its key: {}", r.summary()));
    }
    Ok(())
}

/// Seeds the shop for the runs: its first sku, stocked so that no checkout
/// fails for want of it, and a cart for the cart read.
fn prepare_shop(base: &str) -> Result<String> {
    let sku = first_sku(base)?;
    let stock = call(base, "PUT", &format!("/api/inventory/{sku}"), &[("content-type", "application/json"), ("authorization", "Bearer bench")], Some("{\"on_hand\":10000000}"))?;
    if stock.status >= 300 {
        return Err(format!("cannot stock {sku}: {}", stock.summary()));
    }
    let r = call(base, "POST", "/api/carts/bench/items", &[("content-type", "application/json")], Some(&format!("{{\"sku\":\"{sku}\",\"quantity\":1}}")))?;
    if r.status >= 300 {
        return Err(format!("cannot fill the cart: {}", r.summary()));
    }
    Ok(sku)
}

fn start_spin(host_bin: &Path, root: &Path, probe_manifest: &Path, work: &Path) -> OnSpin {
    let Some(spin) = crate::spin_bin() else {
        say!("no Spin found (SPIN_BIN, `spin` on PATH, ../shared/tools/spin): the Spin column says \"no spin\"");
        return OnSpin::NotFound;
    };
    say!("real Spin: {}", spin.display());
    let started = (|| {
        let launch = |manifest: &Path, state: &str, variables, ready| {
            let state = work.join(state);
            Shop::start(host_bin, root, Launch { runtime: Runtime::Spin, manifest, state: &state, variables, ready, log_requests: false, env: Vec::new(), wasi_otel: true })
        };
        let probe = launch(probe_manifest, "spin-probe-state", vec![], "/hello")?;
        prepare_probe(&probe.base)?;
        let shop = launch(&root.join("spin.toml"), "spin-shop-state", admin(), SHOP_READY)?;
        let sku = prepare_shop(&shop.base)?;
        Ok::<_, String>(OnSpin::Up { probe, shop, sku })
    })();
    started.unwrap_or_else(|e| {
        say!("Spin did not start, its column says \"spin failed\": {e}");
        OnSpin::Failed
    })
}

fn need_wrk() -> Result {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|_| ())
        .map_err(|_| "wrk is needed: install it with `sudo apt-get install wrk` (Debian/Ubuntu)".to_string())
}

/// The main table, then the further parts (sign-in, delivery, the
/// SHOP_BENCH_BASELINE comparison, events on a real Redis).
fn main_table(host_bin: &Path, root: &Path, seconds: u32, sign_in_only: bool, work: &Path, report: &mut Report) -> Result {
    let mut shop = serve(host_bin, root, &root.join("spin.toml"), &work.join("shop-state"), admin(), SHOP_READY)?;
    if sign_in_only {
        return sign_in_cost(&shop.base, report);
    }
    need_wrk()?;
    let probe_manifest = write_probe_manifest(root, work)?;
    let probe = serve(host_bin, root, &probe_manifest, &work.join("probe-state"), vec![], "/hello")?;
    prepare_probe(&probe.base)?;
    let sku = prepare_shop(&shop.base)?;
    let native = format!("http://{}", native_hello()?);
    let spin = start_spin(host_bin, root, &probe_manifest, work);
    say!("wrk -t1, {seconds}s per run, 127.0.0.1, {} cores", report.context.cores);

    reads(&probe, &shop, &native, &sku, &spin, seconds, report)?;
    checkouts(&shop, &sku, &spin, seconds, report)?;
    sign_in_cost(&shop.base, report)?;
    delivery_cost(&shop.base, report)?;

    let mut memory = Row::new(Section::Memory, "RSS after the bench", None, Unit::MiB);
    memory.shop_host = shop.rss_kib().map(mib);
    memory.spin = match &spin {
        OnSpin::Up { shop, .. } => shop.rss_kib().map_or(SPIN_FAILED, |k| Spin::Value(mib(k))),
        other => other.absent(),
    };
    memory.goals.push(Goal::at_most(On::ShopHost, 100.0));
    if let Some(k) = probe.rss_kib() {
        memory.details.push(("probe_app_MiB", mib(k)));
    }
    say!("resident memory after the runs: shop-host {} (the probe app: {})", shop.rss(), probe.rss());
    report.push(memory);
    drop((probe, spin));

    if let Some(baseline) = std::env::var_os("SHOP_BENCH_BASELINE").filter(|v| !v.is_empty()) {
        compare_checkout(host_bin, &mut shop, Path::new(&baseline), &sku, seconds, work, report)?;
    }
    drop(shop);
    events_latency(host_bin, root, work, report)
}

fn checkouts_alone(host_bin: &Path, root: &Path, seconds: u32, work: &Path, report: &mut Report) -> Result {
    let shop = serve(host_bin, root, &root.join("spin.toml"), &work.join("shop-state"), admin(), SHOP_READY)?;
    let sku = prepare_shop(&shop.base)?;
    checkouts(&shop, &sku, &OnSpin::NotFound, seconds, report)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Reads at 1 and 8 connections on shop-host, on Spin, and (hello) native.
fn reads(probe: &Shop, shop: &Shop, native: &str, sku: &str, spin: &OnSpin, seconds: u32, report: &mut Report) -> Result {
    // (row, path, on the probe app (else the shop), goal shop-host ÷ Spin)
    let targets: [(&str, String, bool, Option<f64>); 4] = [
        ("hello (probe, no I/O)", "/hello".into(), true, Some(3.0)),
        ("key-value read (probe ?do=kv)", KV_READ.into(), true, Some(3.0)),
        ("SQLite read: GET /api/products/{sku}", format!("/api/products/{sku}"), false, Some(3.0)),
        ("GET /api/carts/{id} (SQLite, 1 line)", "/api/carts/bench".into(), false, None),
    ];
    let mut hello_c8 = (None, None);
    for (what, path, on_probe, goal) in &targets {
        for connections in [1, 8] {
            let base = |probe_app: &Shop, shop_app: &Shop| format!("{}{path}", if *on_probe { &probe_app.base } else { &shop_app.base });
            let ours = wrk(&base(probe, shop), connections, seconds)?;
            live(what, connections, "shop-host", &ours);
            let mut row = Row::new(Section::Spin, *what, Some(connections), Unit::PerSec);
            row.shop_host = Some(ours.requests_per_sec);
            row.details = vec![("p50_ms", ours.p50_ms), ("p99_ms", ours.p99_ms)];
            if ours.errors > 0 {
                row.details.push(("errors", ours.errors as f64));
            }
            row.spin = match spin {
                OnSpin::Up { probe: spin_probe, shop: spin_shop, .. } => match wrk(&base(spin_probe, spin_shop), connections, seconds) {
                    Ok(theirs) => {
                        live(what, connections, "spin", &theirs);
                        row.details.extend([("spin_p50_ms", theirs.p50_ms), ("spin_p99_ms", theirs.p99_ms)]);
                        if theirs.errors > 0 {
                            row.details.push(("spin_errors", theirs.errors as f64));
                        }
                        Spin::Value(theirs.requests_per_sec)
                    }
                    Err(e) => {
                        say!("{what} on Spin: {e}");
                        SPIN_FAILED
                    }
                },
                other => other.absent(),
            };
            if *on_probe && path == "/hello" {
                let n = wrk(native, connections, seconds)?;
                live("native hello (baseline)", connections, "native", &n);
                row.native = Some(n.requests_per_sec);
                if connections == 8 {
                    hello_c8 = (row.shop_host, row.native);
                }
            }
            if let Some(goal) = goal {
                row.goals.push(Goal::at_least(On::Ratio, *goal));
            }
            report.push(row.ratio_to_spin());
        }
        if let (true, (Some(wasm), Some(plain))) = (path == "/hello", hello_c8) {
            // The host's own per-request cost against what loopback allows.
            let mut row = Row::new(Section::Spin, "hello, shop-host ÷ native", Some(8), Unit::PerSec);
            (row.shop_host, row.native, row.ratio) = (Some(wasm), Some(plain), Some((wasm / plain, "native")));
            row.goals.push(Goal::at_least(On::Ratio, 0.40));
            report.push(row);
        }
    }
    Ok(())
}

fn live(what: &str, connections: usize, runtime: &str, m: &Measure) {
    say!(
        "  {what:<38} c{connections:<3} {runtime:<9} {:>9.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms{}",
        m.requests_per_sec,
        m.p50_ms,
        m.p99_ms,
        if m.errors > 0 { format!("  {} errors", m.errors) } else { String::new() }
    );
}

/// Checkout at 1, 4, 16 and 64 clients on shop-host (and 1 and 16 on
/// Spin), the resident memory after each run, every run's orders checked.
fn checkouts(shop: &Shop, sku: &str, spin: &OnSpin, seconds: u32, report: &mut Report) -> Result {
    const CLIENTS: [usize; 4] = [1, 4, 16, 64];
    const ON_SPIN: [usize; 2] = [1, 16];
    const SETTLE: Duration = Duration::from_secs(30);
    say!();
    say!("POST /api/checkout (a cart of one line; the saga through 8 imported services), {seconds}s per run");
    let mut runs = Vec::new();
    for clients in CLIENTS {
        let ours = checkout_run(&shop.base, sku, clients, seconds)?;
        let rss = shop.rss_kib();
        live_checkout(clients, "shop-host", &ours);
        // Each run starts on idle cores: the runtime before it may still be
        // delivering its orders' events.
        shop.settle(SETTLE);
        let theirs = match spin {
            OnSpin::Up { shop: spin_shop, sku: spin_sku, .. } if ON_SPIN.contains(&clients) => {
                let run = checkout_run(&spin_shop.base, spin_sku, clients, seconds);
                spin_shop.settle(SETTLE);
                match run {
                    Ok(run) => {
                        live_checkout(clients, "spin", &run);
                        Some((run, spin_shop.rss_kib()))
                    }
                    Err(e) => {
                        say!("checkout on Spin: {e}");
                        None
                    }
                }
            }
            _ => None,
        };
        runs.push((clients, ours, rss, theirs));
    }
    let spin_cell = |theirs: &Option<(CheckoutRun, Option<u64>)>, clients: usize, figure: fn(&CheckoutRun) -> f64| match (theirs, spin) {
        (Some((run, _)), _) => Spin::Value(figure(run)),
        (None, OnSpin::Up { .. }) if ON_SPIN.contains(&clients) => SPIN_FAILED,
        (None, other) => other.absent(),
    };
    // "Rises or holds as clients are added": each run against the best of
    // the runs with fewer clients (and itself), so a fall shows where it
    // happens and a rise from one client is not counted against it.
    let mut peak = 0.0_f64;
    let (mut failures, mut spin_failures) = (0, None::<usize>);
    for (clients, ours, rss, theirs) in &runs {
        let clients = *clients;
        failures += ours.failed();
        if let Some((run, _)) = theirs {
            spin_failures = Some(spin_failures.unwrap_or(0) + run.failed());
        }
        let mut details = vec![("p50_ms", ours.p50_ms), ("p99_ms", ours.p99_ms), ("failures", ours.failed() as f64)];
        if let Some((run, _)) = theirs {
            details.extend([("spin_p50_ms", run.p50_ms), ("spin_p99_ms", run.p99_ms), ("spin_failures", run.failed() as f64)]);
        }

        // Throughput against its peak so far ("never falls more than 10%").
        peak = peak.max(ours.per_sec);
        let mut row = Row::new(Section::Checkout, "checkouts/s", Some(clients), Unit::PerSec);
        row.shop_host = Some(ours.per_sec);
        row.spin = spin_cell(theirs, clients, |r| r.per_sec);
        row.ratio = (peak > 0.0).then(|| (ours.per_sec / peak, "peak"));
        if clients == 16 {
            row.goals.push(Goal::at_least(On::ShopHost, 500.0));
        }
        row.goals.push(Goal::at_least(On::Ratio, 0.90));
        row.details = details.clone();
        report.push(row);

        if clients == 1 {
            let mut row = Row::new(Section::Checkout, "checkout p50", Some(1), Unit::Ms);
            row.shop_host = Some(ours.p50_ms);
            row.spin = spin_cell(theirs, clients, |r| r.p50_ms);
            row.goals.push(Goal::at_most(On::ShopHost, 2.0));
            report.push(row);
        }
        if clients == 16 {
            let mut row = Row::new(Section::Checkout, "checkout p99", Some(16), Unit::Ms);
            row.shop_host = Some(ours.p99_ms);
            row.spin = spin_cell(theirs, clients, |r| r.p99_ms);
            row.goals.push(Goal::at_most(On::ShopHost, 50.0));
            report.push(row);
        }
        if ON_SPIN.contains(&clients) {
            let mut row = Row::new(Section::Spin, "checkout (201, order readable)", Some(clients), Unit::PerSec);
            row.shop_host = Some(ours.per_sec);
            row.spin = spin_cell(theirs, clients, |r| r.per_sec);
            row.goals.push(Goal::at_least(On::Ratio, 10.0));
            row.details = details;
            report.push(row.ratio_to_spin());
        }

        let mut row = Row::new(Section::Memory, "RSS after the checkout run", Some(clients), Unit::MiB);
        row.shop_host = rss.map(mib);
        row.spin = match theirs {
            Some((_, Some(k))) => Spin::Value(mib(*k)),
            Some((_, None)) => SPIN_FAILED,
            // Not measured on Spin: the cell says why (no figure is read).
            None => spin_cell(theirs, clients, |r| r.per_sec),
        };
        let first = runs[0].2;
        row.ratio = match (rss, first) {
            (Some(r), Some(f)) if clients > 1 && f > 0 => Some((*r as f64 / f as f64, "c1")),
            _ => None,
        };
        report.push(row);
    }
    let mut row = Row::new(Section::Checkout, "checkout failures (not 201, or order unreadable)", None, Unit::Count);
    row.shop_host = Some(failures as f64);
    row.spin = spin_failures.map_or_else(|| spin.absent(), |n| Spin::Value(n as f64));
    row.goals.push(Goal::at_most(On::ShopHost, 0.0));
    report.push(row);
    Ok(())
}

fn live_checkout(clients: usize, runtime: &str, run: &CheckoutRun) {
    say!(
        "  checkout c{clients:<3} {runtime:<9} {:>6} done {:>8.1}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  {} failed, {} of {} orders checked unreadable",
        run.checkouts,
        run.per_sec,
        run.p50_ms,
        run.p99_ms,
        run.failures,
        run.unreadable,
        run.checked
    );
}

/// What a sign-in costs (argon2id, 19 MiB, t=2, p=1, in wasm), against the
/// same component answering `GET /api/customers/me` in the same run; and a
/// wrong password against an unknown email, which must cost the same.
/// Successful sign-ins reset their account's attempt count, so 20 in a row
/// stay under the limits; the failures are 4 of each (5 per account, 20
/// per client in a window).
fn sign_in_cost(base: &str, report: &mut Report) -> Result {
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
    say!();
    say!("sign-in (argon2id m=19 MiB t=2 p=1 in wasm), medians, one client");
    say!("  POST /api/customers/sessions, right password  {ok:>8.1} ms  (20)");
    say!("  POST /api/customers/sessions, wrong password  {wrong:>8.1} ms  (4)");
    say!("  POST /api/customers/sessions, unknown email   {unknown:>8.1} ms  (4; {:.2}x the wrong password)", unknown / wrong);
    say!("  GET /api/customers/me (baseline: no hash)     {me:>8.1} ms  (20; sign-in costs {:.1} ms more)", ok - me);
    let mut row = Row::new(Section::Further, "sign-in, median (argon2id in wasm)", Some(1), Unit::Ms);
    row.shop_host = Some(ok);
    // The failures must cost what a success does, or timing tells an
    // attacker which emails have accounts.
    row.details = vec![("wrong_password_ms", wrong), ("unknown_email_ms", unknown)];
    report.push(row);
    let mut row = Row::new(Section::Further, "GET /api/customers/me, median (no hash)", Some(1), Unit::Ms);
    row.shop_host = Some(me);
    report.push(row);
    Ok(())
}

/// What at-least-once delivery cost during the checkout runs: publishes
/// and re-publishes over every service's outbox, once the first look for
/// acknowledgements (5 s after a publish) has passed for the last events.
fn delivery_cost(base: &str, report: &mut Report) -> Result {
    std::thread::sleep(Duration::from_secs(8));
    let r = call(base, "GET", "/api/admin/events", &[("authorization", "Bearer bench")], None)?;
    if r.status != 200 {
        return Err(format!("GET /api/admin/events: {}", r.summary()));
    }
    let body: serde_json::Value = serde_json::from_slice(&r.body).map_err(|e| format!("GET /api/admin/events is not JSON: {e}"))?;
    let number = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let republishes = number(&body["republishes"]);
    let due = number(&body["due"]);
    // Every service's outbox counts its publishes, re-publishes included.
    let publishes: u64 = body["services"].as_array().map_or(0, |services| services.iter().map(|s| number(&s["outbox"]["publishes"])).sum());
    let first = publishes.saturating_sub(republishes).max(1);
    let per_1000 = republishes as f64 * 1000.0 / first as f64;
    say!("events: {first} published, {republishes} re-published ({per_1000:.1} per 1000), {due} still due 8 s after the last checkout");
    let mut row = Row::new(Section::Further, "event re-publishes per 1000 events", None, Unit::Count);
    row.shop_host = Some(per_1000);
    row.details = vec![("published", first as f64), ("republished", republishes as f64), ("still_due", due as f64)];
    report.push(row);
    Ok(())
}

/// `SHOP_BENCH_BASELINE=<another checkout of the shop, its components
/// built>`: the checkout measured on that tree's spin.toml and `.wasm`
/// files with the same host, in turns with this tree's, so that a change
/// is judged against a baseline of the same run on the same noisy machine.
fn compare_checkout(host_bin: &Path, shop: &mut Shop, baseline_root: &Path, sku: &str, seconds: u32, work: &Path, report: &mut Report) -> Result {
    let baseline = serve(host_bin, baseline_root, &baseline_root.join("spin.toml"), &work.join("baseline-state"), admin(), SHOP_READY)?;
    let stock = call(&baseline.base, "PUT", &format!("/api/inventory/{sku}"), &[("content-type", "application/json"), ("authorization", "Bearer bench")], Some("{\"on_hand\":10000000}"))?;
    if stock.status >= 300 {
        return Err(format!("cannot stock {sku} in the baseline: {}", stock.summary()));
    }
    say!();
    say!("POST /api/checkout, this tree against {} (same host, in turns)", baseline_root.display());
    say!("{:>8} {:>6} {:>12} {:>12} {:>8} {:>9}", "clients", "round", "this tree/s", "baseline/s", "ratio", "failures");
    for clients in [1, 16] {
        let (mut ours, mut theirs) = (0.0, 0.0);
        for round in 1..=4 {
            // Who goes first alternates, so a machine getting busier or
            // quieter during the run favours neither.
            let (a, b) = if round % 2 == 1 {
                let a = checkout_run(&shop.base, sku, clients, seconds)?;
                (a, checkout_run(&baseline.base, sku, clients, seconds)?)
            } else {
                let b = checkout_run(&baseline.base, sku, clients, seconds)?;
                (checkout_run(&shop.base, sku, clients, seconds)?, b)
            };
            let (a_failures, b_failures) = (a.failed(), b.failed());
            let (a, b) = (a.per_sec, b.per_sec);
            say!("{clients:>8} {round:>6} {a:>12.1} {b:>12.1} {:>7.2}x {:>9}", a / b, format!("{a_failures}/{b_failures}"));
            ours += a;
            theirs += b;
        }
        say!("{clients:>8} {:>6} {:>12.1} {:>12.1} {:>7.2}x", "all", ours / 4.0, theirs / 4.0, ours / theirs);
        let mut row = Row::new(Section::Further, "checkouts/s, this tree ÷ SHOP_BENCH_BASELINE", Some(clients), Unit::Times);
        row.shop_host = Some(ours / theirs);
        row.details = vec![("this_tree_per_sec", ours / 4.0), ("baseline_per_sec", theirs / 4.0)];
        report.push(row);
    }
    drop(baseline);
    Ok(())
}

/// One wrk run's figures.
struct Measure {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Answers other than 2xx/3xx, and socket errors (timeouts included).
    errors: u64,
}

fn wrk(url: &str, connections: usize, seconds: u32) -> Result<Measure> {
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
    let non_2xx: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    // "Socket errors: connect 0, read 3, write 0, timeout 1"
    let socket: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|v| v.split(',').filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    let latency = |p: &str| field(p).as_deref().and_then(wrk_ms).ok_or_else(|| format!("no {p} latency in wrk's output:\n{text}"));
    Ok(Measure { requests_per_sec, p50_ms: latency("50%")?, p99_ms: latency("99%")?, errors: non_2xx + socket })
}

/// wrk's latency ("812.00us", "1.23ms", "2.01s", "1.00m") in milliseconds.
fn wrk_ms(text: &str) -> Option<f64> {
    let at = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = text.split_at(at);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        _ => return None,
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
fn tracing_cost(host_bin: &Path, root: &Path, seconds: u32, work: &Path, report: &mut Report) -> Result {
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
    say!();
    say!("POST /api/checkout: what traces cost (same machine, in turns, {seconds}s per run)");
    let mut line = format!("{:>8} {:>6}", "clients", "round");
    for (name, _) in &shops {
        line += &format!(" {name:>13}/s {:>9}", "p99");
    }
    say!("{line}");
    for clients in [1, 16] {
        let mut sums = vec![0.0; shops.len()];
        for round in 1..=4 {
            let mut line = format!("{clients:>8} {round:>6}");
            let mut order: Vec<usize> = (0..shops.len()).collect();
            // Who goes first rotates, so a machine getting busier or
            // quieter during the run favours none.
            order.rotate_left(round % shops.len());
            let mut row: Vec<Option<CheckoutRun>> = shops.iter().map(|_| None).collect();
            for i in order {
                let (_, (shop, sku)) = &shops[i];
                row[i] = Some(checkout_run(&shop.base, sku, clients, seconds)?);
            }
            for (i, m) in row.into_iter().enumerate() {
                let m = m.expect("measured");
                sums[i] += m.per_sec;
                let failed = if m.failed() > 0 { format!(" ({} failed)", m.failed()) } else { String::new() };
                line += &format!(" {:>15.1} {:>9}{failed}", m.per_sec, format!("{:.1}ms", m.p99_ms));
            }
            say!("{line}");
        }
        let mut line = format!("{clients:>8} {:>6}", "mean");
        for sum in &sums {
            line += &format!(" {:>15.1} {:>9}", sum / 4.0, "");
        }
        say!("{line}");
        for (i, (name, _)) in shops.iter().enumerate().skip(1) {
            say!("{clients:>8}   {name} ÷ tracing off: {:.3}", sums[i] / sums[0]);
            let mut row = Row::new(Section::Further, format!("checkouts/s, {name} ÷ tracing off"), Some(clients), Unit::Times);
            row.shop_host = Some(sums[i] / sums[0]);
            row.details = vec![("tracing_off_per_sec", sums[0] / 4.0), ("per_sec", sums[i] / 4.0)];
            report.push(row);
        }
    }
    let received = std::fs::read_to_string(work.join("received")).unwrap_or_default();
    say!("the collector (counting only, on this machine) received: {}", received.trim());
    drop(shops);
    let _ = collector.kill();
    let _ = collector.wait();
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
fn events_latency(host_bin: &Path, root: &Path, work: &Path, report: &mut Report) -> Result {
    const ORDERS: usize = 200;
    if Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_err() {
        say!("(no redis-server: the event latency is not measured; install redis-server)");
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
        say!();
        say!("POST /api/checkout sent -> payment.captured on a real Redis ({ORDERS} orders, one at a time)");
        let mut row = Row::new(Section::Further, "checkout sent → payment.captured (real Redis), p50", Some(1), Unit::Ms);
        match latencies.len() {
            0 => say!("  no capture observed"),
            n => {
                let at = |q: usize| latencies[(n * q / 100).min(n - 1)];
                say!("  captured {n}/{ORDERS}: p50 {}  p90 {}  p99 {}", ms(at(50)), ms(at(90)), ms(at(99)));
                row.shop_host = Some(at(50).as_secs_f64() * 1000.0);
                row.details = vec![("p90_ms", at(90).as_secs_f64() * 1000.0), ("p99_ms", at(99).as_secs_f64() * 1000.0)];
            }
        }
        row.details.push(("captured", latencies.len() as f64));
        row.details.push(("orders", ORDERS as f64));
        report.push(row);
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

/// One checkout run's figures.
struct CheckoutRun {
    /// Checkouts answered 201.
    checkouts: usize,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Checkouts (or their cart's fill) that were not answered 201.
    failures: usize,
    /// Orders of the run looked up afterwards, and of those the ones that
    /// could not be read: a fast checkout that loses its order is no gain.
    checked: usize,
    unreadable: usize,
}

impl CheckoutRun {
    fn failed(&self) -> usize {
        self.failures + self.unreadable
    }
}

/// `POST /api/checkout` (the whole saga through eight imported services)
/// with `clients` clients each checking out carts back to back for
/// `seconds`; then the first and last order of every client read back
/// with `GET /api/orders/{id}`.
fn checkout_run(base: &str, sku: &str, clients: usize, seconds: u32) -> Result<CheckoutRun> {
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
                let mut orders: Vec<String> = Vec::new();
                let mut n = 0;
                while Instant::now() < until {
                    n += 1;
                    let cart = format!("bench-{run}-{clients}-{client}-{n}");
                    let item = format!("{{\"sku\":\"{sku}\",\"quantity\":1}}");
                    match call(&base, "POST", &format!("/api/carts/{cart}/items"), &[("content-type", "application/json")], Some(&item)) {
                        Ok(r) if r.status < 300 => {}
                        _ => {
                            failures += 1;
                            continue;
                        }
                    }
                    let body = format!(
                        "{{\"cart_id\":\"{cart}\",\"email\":\"bench@example.com\",\"address\":{{\"name\":\"Ada\",\"line1\":\"Hauptstr. 1\",\"city\":\"Berlin\",\"postal_code\":\"10115\",\"country\":\"DE\"}},\"shipping\":\"standard\",\"card\":{{\"number\":\"4242424242424242\",\"exp_month\":12,\"exp_year\":2030,\"cvc\":\"123\"}}}}"
                    );
                    let t = Instant::now();
                    let r = call(&base, "POST", "/api/checkout", &[("content-type", "application/json"), ("idempotency-key", &cart)], Some(&body));
                    let elapsed = t.elapsed();
                    match r {
                        Ok(r) if r.status == 201 => {
                            latencies.push(elapsed);
                            match order_id(&r.body) {
                                // Kept: the first order and the latest.
                                Some(id) if orders.len() < 2 => orders.push(id),
                                Some(id) => orders[1] = id,
                                None => failures += 1,
                            }
                        }
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
                (latencies, failures, orders)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut failures = 0;
    let mut orders = Vec::new();
    for w in workers {
        let (l, f, o) = w.join().map_err(|_| "a bench client panicked")?;
        all.extend(l);
        failures += f;
        orders.extend(o);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut unreadable = 0;
    for id in &orders {
        let r = call(base, "GET", &format!("/api/orders/{id}"), &[("authorization", "Bearer bench")], None);
        if !matches!(&r, Ok(r) if r.status == 200 && order_id_field(&r.body, "id").as_deref() == Some(id.as_str())) {
            if unreadable == 0 {
                eprintln!("bench: order {id} is not readable: {}", r.map_or_else(|e| e, |r| r.summary()));
            }
            unreadable += 1;
        }
    }
    all.sort();
    let pct = |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or_default().as_secs_f64() * 1000.0;
    Ok(CheckoutRun {
        checkouts: all.len(),
        per_sec: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        failures,
        checked: orders.len(),
        unreadable,
    })
}

/// The `order_id` of a checkout's answer.
fn order_id(body: &[u8]) -> Option<String> {
    order_id_field(body, "order_id")
}

fn order_id_field(body: &[u8], field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v[field].as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrk_latencies_in_ms() {
        // Decimal fractions are not exact in binary: compare within a nanosecond.
        let ms = |text: &str| super::wrk_ms(text).map(|ms| (ms * 1e6).round() / 1e6);
        assert_eq!(ms("812.00us"), Some(0.812));
        assert_eq!(ms("1.23ms"), Some(1.23));
        assert_eq!(ms("2.01s"), Some(2010.0));
        assert_eq!(ms("1.00m"), Some(60_000.0));
        assert_eq!(super::wrk_ms("fast"), None);
        assert_eq!(super::wrk_ms(""), None);
    }
}
