//! `cargo xtask fuzz` (and the last part of `cargo xtask test`): every public
//! HTTP operation fuzzed against its contract, `api/openapi.json`, with
//! [schemathesis](https://schemathesis.readthedocs.io), bounded and seeded.
//!
//! One real shop-host serves the shop from a fresh state directory on a port
//! the system picks, with a random admin token; schemathesis reads the
//! document the app itself serves (`GET /api/openapi.json`, compiled into the
//! `openapi` component, so it is the document of this build) and runs it three
//! times, once per caller: anonymous, a signed-in shopper and the operator
//! (admin token). Every run must end with no failure: no 5xx, no status code,
//! content type, header or body outside what the document says for the
//! operation, no request slower than the request timeout (a hang); `CHECKS`
//! has the list. Before the runs, xtask places an order as the shopper and
//! makes a cart, payments and a reservation, and the runs' path parameters
//! name these half of the time, so the operations on one resource are fuzzed
//! past their 404.
//!
//! schemathesis is a Python tool; it is installed once per version into a
//! virtual environment under `~/.cache/shop-tools/schemathesis-<version>/`
//! (outside the repository), from PyPI with pip, and reused from there.
//! Everything a run writes (host state and log, schemathesis's config, output
//! and JUnit report) is under one temporary directory, removed when the run
//! passes and kept, with its path printed, when it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::Result;
use crate::http_client::HttpResponse;
use crate::shop::{Launch, Runtime, Shop, WorkDir, random_hex};

/// The schemathesis release, pinned exactly: its checks and generators change
/// between releases, and a run must mean the same thing on every machine.
pub const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// The checks every response must pass: the five of the contract itself
/// (no 5xx; status code, content type, headers and body as documented for
/// the operation), and what the document promises besides: a missing
/// required header (`Idempotency-Key`) is a 4xx, a method the path does not
/// have is 405 with an `allow` header naming the ones it has, a secured
/// operation refuses a caller without (or with a wrong) credential, and a
/// deleted resource (a cart, a reservation) is gone.
///
/// Left out, as inapplicable to this API:
/// - `positive_data_acceptance` expects a 2xx (or 404/409) for every
///   schema-valid input, but many valid inputs are refused by rules that
///   depend on the state, as documented: a cart line past 99 units, a 21st
///   saved address, an `Idempotency-Key` reused with another body, a refund
///   larger than what is left, a card expiring more than 30 years ahead
///   (422); and `2.0` where an integer is asked (JSON Schema counts it as one;
///   the services take integer literals only, as the document says).
/// - `negative_data_rejection` expects a 4xx for every input outside the
///   schema, but the API legitimately takes some: unknown query parameters
///   and body fields are ignored, and bodies are read as JSON whatever their
///   content-type (documented).
/// - `ensure_resource_availability` expects what a POST created to be
///   readable by the same caller, but a shopper who signs up another
///   customer (`POST /api/customers`) may not read that one (404, by design:
///   another's data is not found).
/// - `object_level_authorization` needs a second identity per resource, which
///   the runs do not have; `tests/access.rs` covers who may see what.
const CHECKS: &[&str] = &[
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
    "use_after_free",
];

/// A request that takes longer is a failure (a hang).
const REQUEST_TIMEOUT_SECONDS: u32 = 10;

/// How much each run tries; `max_examples` bounds the fuzzing phase per
/// operation (the examples, coverage and stateful phases are bounded by the
/// document).
#[derive(Clone, Debug)]
pub struct Budget {
    pub max_examples: u32,
    pub seed: u64,
    pub workers: u32,
}

/// `cargo xtask test`: the three runs in about two and a half minutes on two
/// cores. One worker: the same seed then sends the same requests in the same
/// order, and no two generator threads meet CPython 3.11's non-thread-safe
/// `ast.parse` (hypothesis describes its lambdas with it; schemathesis 4.32.5
/// with two workers once failed with "AST constructor recursion depth
/// mismatch"). Two workers were no faster here: shop-host is the bottleneck.
pub const TEST_BUDGET: Budget = Budget { max_examples: 25, seed: 20260301, workers: 1 };
/// `cargo xtask fuzz`: ten times the fuzzing phase's cases.
pub const FUZZ_BUDGET: Budget = Budget { max_examples: 250, seed: 20260301, workers: 1 };

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Caller {
    Anonymous,
    Shopper,
    Admin,
}

impl Caller {
    pub const ALL: [Caller; 3] = [Caller::Anonymous, Caller::Shopper, Caller::Admin];

    fn name(self) -> &'static str {
        match self {
            Caller::Anonymous => "anonymous",
            Caller::Shopper => "shopper",
            Caller::Admin => "admin",
        }
    }
}

/// What `cargo xtask fuzz` was asked for.
pub struct Options {
    pub budget: Budget,
    /// Keep the temporary directory even when every run passes.
    pub keep: bool,
    pub callers: Vec<Caller>,
    pub extra: Vec<String>,
}

/// One run's outcome, as schemathesis summarized it.
struct Outcome {
    caller: Caller,
    passed: bool,
    operations: String,
    cases: String,
    /// schemathesis's warnings (operations it could not get past 401/404, ...).
    warnings: Vec<String>,
    seconds: f64,
    output: PathBuf,
}

/// Fuzzes the shop served by `host_bin` (a `cargo xtask build`), as each of
/// `options.callers`.
pub fn run(host_bin: &Path, root: &Path, options: &Options) -> Result {
    let python = ensure_schemathesis()?;
    // Kept when anything fails, for its host log and schemathesis's output.
    let mut work = WorkDir::new("fuzz")?;
    work.keep = true;
    let result = fuzz_in(&work.path, &python, host_bin, root, options);
    match &result {
        Ok(()) if options.keep => println!("the runs' files: {}", work.path.display()),
        Ok(()) => work.keep = false,
        Err(_) => {}
    }
    result.map_err(|e| format!("{e}\nxtask: the fuzz runs' files (shop-host's log, schemathesis's output and JUnit report) are in {}", work.path.display()))
}

fn fuzz_in(work: &Path, python: &Path, host_bin: &Path, root: &Path, options: &Options) -> Result {
    let started = Instant::now();
    let admin_token = format!("fuzz-admin-{}", random_hex(16));
    let state = work.join("state");
    let manifest = root.join("spin.toml");
    let launch = Launch {
        runtime: Runtime::ShopHost,
        manifest: &manifest,
        state: &state,
        variables: vec![("admin_token", admin_token.clone())],
        ready: "/api/openapi.json",
        log_requests: true,
        env: Vec::new(),
        wasi_otel: true,
    };
    let mut host = Shop::start(host_bin, root, launch)?;
    let base = host.base.clone();
    eprintln!("xtask: fuzzing {base} (shop-host, state in {}) against its /api/openapi.json with schemathesis {SCHEMATHESIS_VERSION}, seed {}, --max-examples {}", work.join("state").display(), options.budget.seed, options.budget.max_examples);

    // Sessions are made before any run: the runs sign in with fuzzed
    // credentials too, and sign-in attempts are limited per client address.
    let shopper = sign_up_shopper(&host)?;
    let seeded = seed(&host, &admin_token, &shopper)?;

    let mut outcomes = Vec::new();
    for &caller in &options.callers {
        let dir = work.join(caller.name());
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let config = schemathesis_config(caller, &admin_token, &shopper, &seeded);
        let config_path = dir.join("schemathesis.toml");
        std::fs::write(&config_path, config).map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
        eprintln!("xtask: schemathesis as {} ...", caller.name());
        let outcome = run_schemathesis(python, &base, caller, &dir, &config_path, options)?;
        if caller == Caller::Shopper {
            // The run must have been the shopper's to its end, not signed out midway.
            let me = host.call("GET", "/api/customers/me", &[("authorization", &format!("Bearer {}", shopper.session))], "")?;
            if me.status != 200 {
                return Err(format!("the shopper's session stopped working during its run, so the run was not the shopper's: GET /api/customers/me: {}", me.summary()));
            }
        }
        if let Some(exit) = host.exited() {
            return Err(format!("shop-host stopped during the {} run ({exit}); its log:\n{}", caller.name(), host.log_tail(100)));
        }
        eprintln!(
            "xtask: fuzz as {:<9}: {}; {} ({:.0} s){}",
            caller.name(),
            outcome.operations,
            outcome.cases,
            outcome.seconds,
            if outcome.passed { String::new() } else { format!(" FAILED, output in {}", outcome.output.display()) }
        );
        outcomes.push(outcome);
    }
    drop(host);

    println!("fuzz summary (schemathesis {SCHEMATHESIS_VERSION}, seed {}, --max-examples {}, {:.0} s in all):", options.budget.seed, options.budget.max_examples, started.elapsed().as_secs_f64());
    for o in &outcomes {
        println!("  {:<9} {} | {} | {}", o.caller.name(), o.operations, o.cases, if o.passed { "ok" } else { "FAILED" });
        for w in &o.warnings {
            println!("            {w}");
        }
    }
    let failed: Vec<&str> = outcomes.iter().filter(|o| !o.passed).map(|o| o.caller.name()).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("the API breaks its contract (api/openapi.json) as {}: schemathesis's reports are above", failed.join(", ")))
    }
}

/// The credentials of the shopper the `shopper` run acts as: `session` for
/// every operation, and a second session, `revocable`, for the one operation
/// that signs its caller out (`DELETE /api/customers/sessions/current`), so
/// fuzzing it does not sign out the rest of the run.
struct Shopper {
    customer_id: String,
    email: String,
    session: String,
    revocable: String,
}

fn sign_up_shopper(host: &Shop) -> Result<Shopper> {
    let email = format!("fuzz-{}@example.com", random_hex(6));
    let password = format!("fuzz-password-{}", random_hex(8));
    let json = [("content-type", "application/json")];
    let created = host.call("POST", "/api/customers", &json, &format!("{{\"name\":\"Fuzz Shopper\",\"email\":\"{email}\",\"password\":\"{password}\"}}"))?;
    let customer_id = json_string_field(&String::from_utf8_lossy(&created.body), "id");
    let Some(customer_id) = customer_id.filter(|_| created.status == 201) else {
        return Err(format!("cannot create the shopper: {}", created.summary()));
    };
    let sign_in = || -> Result<String> {
        let r = host.call("POST", "/api/customers/sessions", &json, &format!("{{\"email\":\"{email}\",\"password\":\"{password}\"}}"))?;
        let token = json_string_field(&String::from_utf8_lossy(&r.body), "token");
        match token {
            Some(t) if r.status == 201 => Ok(t),
            _ => Err(format!("cannot sign the shopper in: {}", r.summary())),
        }
    };
    let (session, revocable) = (sign_in()?, sign_in()?);
    Ok(Shopper { customer_id, email, session, revocable })
}

/// Resources that exist before the runs, so that the operations on one
/// (`/api/orders/{id}`, `/capture`, `/refunds`, ...) are fuzzed past their 404:
/// the shopper's placed order (its checkout, payment, reservation and
/// shipment), a cart with a line, a bare authorization, a captured payment and
/// a reservation. Each run's path parameters take one of them half of the
/// time (schemathesis "dictionaries") and a generated value otherwise.
struct Seeded {
    sku: String,
    carts: Vec<String>,
    order: String,
    checkout: String,
    payments: Vec<String>,
    reservations: Vec<String>,
}

fn seed(host: &Shop, admin_token: &str, shopper: &Shopper) -> Result<Seeded> {
    let admin = format!("Bearer {admin_token}");
    let session = format!("Bearer {}", shopper.session);
    let json = ("content-type", "application/json");
    let expect = |what: &str, r: HttpResponse, statuses: &[u16], field: &str| -> Result<String> {
        let body = String::from_utf8_lossy(&r.body).into_owned();
        match json_string_field(&body, field) {
            Some(v) if statuses.contains(&r.status) => Ok(v),
            _ => Err(format!("cannot seed the fuzz runs' data ({what}): {}", r.summary())),
        }
    };
    // A card good for years from now (the processor refuses expiries more
    // than 30 years ahead).
    let exp_year = 1970 + std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) / 31_556_952 + 5;
    let card = format!("{{\"number\":\"4242424242424242\",\"exp_month\":12,\"exp_year\":{exp_year},\"cvc\":\"123\"}}");
    let sku = expect("a product", host.call("GET", "/api/products?per_page=1", &[], "")?, &[200], "sku")?;
    expect(
        "stock",
        host.call("PUT", &format!("/api/inventory/{sku}"), &[json, ("authorization", &admin)], "{\"on_hand\":1000000}")?,
        &[200, 201],
        "sku",
    )?;
    let line = format!("{{\"sku\":\"{sku}\",\"quantity\":2}}");
    let checked_out = format!("fuzz-cart-{}", random_hex(4));
    expect("a cart", host.call("POST", &format!("/api/carts/{checked_out}/items"), &[json], &line)?, &[200], "id")?;
    let body = format!(
        "{{\"cart_id\":\"{checked_out}\",\"email\":\"{}\",\"address\":{{\"name\":\"Fuzz Shopper\",\"line1\":\"Hauptstr. 1\",\"city\":\"Berlin\",\"postal_code\":\"10115\",\"country\":\"DE\"}},\"shipping\":\"standard\",\"card\":{card}}}",
        shopper.email
    );
    let placed = host.call("POST", "/api/checkout", &[json, ("authorization", &session), ("idempotency-key", &format!("fuzz-{}", random_hex(8)))], &body)?;
    let placed_text = String::from_utf8_lossy(&placed.body).into_owned();
    let order = expect("the shopper's checkout", placed, &[201], "order_id")?;
    let checkout = json_string_field(&placed_text, "checkout_id").ok_or("the checkout's answer has no checkout_id")?;
    let order_text = host.call("GET", &format!("/api/orders/{order}"), &[("authorization", &admin)], "")?;
    let order_text = String::from_utf8_lossy(&order_text.body).into_owned();
    let order_payment = json_string_field(&order_text, "payment_authorization_id").ok_or(format!("the order has no payment_authorization_id: {order_text}"))?;
    let order_reservation = json_string_field(&order_text, "reservation_id").ok_or(format!("the order has no reservation_id: {order_text}"))?;

    let cart = format!("fuzz-cart-{}", random_hex(4));
    expect("a cart", host.call("POST", &format!("/api/carts/{cart}/items"), &[json], &line)?, &[200], "id")?;
    let authorize = |what: &str| -> Result<String> {
        let body = format!("{{\"amount\":{{\"amount\":2599,\"currency\":\"EUR\"}},\"card\":{card}}}");
        expect(what, host.call("POST", "/api/payments/authorizations", &[json, ("idempotency-key", &format!("fuzz-{}", random_hex(8)))], &body)?, &[201], "id")
    };
    let authorized = authorize("an authorization")?;
    let captured = authorize("an authorization to capture")?;
    expect(
        "a capture",
        host.call("POST", &format!("/api/payments/authorizations/{captured}/capture"), &[json, ("idempotency-key", &format!("fuzz-{}", random_hex(8)))], "{\"amount\":{\"amount\":2599,\"currency\":\"EUR\"}}")?,
        &[200],
        "id",
    )?;
    let reservation = expect(
        "a reservation",
        host.call("POST", "/api/inventory/reservations", &[json], &format!("{{\"lines\":[{{\"sku\":\"{sku}\",\"quantity\":1}}]}}"))?,
        &[201],
        "id",
    )?;
    Ok(Seeded {
        sku,
        carts: vec![cart, checked_out],
        order,
        checkout,
        payments: vec![authorized, captured, order_payment],
        reservations: vec![reservation, order_reservation],
    })
}

/// The schemathesis config of one caller's run: its credentials (as headers,
/// so that an operation can have its own) and the seeded resources.
fn schemathesis_config(caller: Caller, admin_token: &str, shopper: &Shopper, seeded: &Seeded) -> String {
    let header = |token: &str| format!("headers = {{ Authorization = \"Bearer {token}\" }}\n");
    let list = |values: &[&String]| values.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ");
    let mut config = match caller {
        Caller::Anonymous => String::new(),
        Caller::Admin => header(admin_token),
        Caller::Shopper => header(&shopper.session),
    };
    // Half of the time a seeded resource, half a generated value.
    let binding = |dictionary: &str| format!("{{ dictionary = \"{dictionary}\", probability = 0.5 }}");
    config.push_str(&format!(
        "\n[parameters]\n\"path.sku\" = {}\n\"path.cart_id\" = {}\n\"path.order_id\" = {}\n",
        binding("skus"),
        binding("carts"),
        binding("orders")
    ));
    let dictionaries: [(&str, Vec<&String>); 7] = [
        ("skus", vec![&seeded.sku]),
        ("carts", seeded.carts.iter().collect()),
        ("orders", vec![&seeded.order]),
        ("checkouts", vec![&seeded.checkout]),
        ("customers", vec![&shopper.customer_id]),
        ("payments", seeded.payments.iter().collect()),
        ("reservations", seeded.reservations.iter().collect()),
    ];
    for (name, values) in &dictionaries {
        config.push_str(&format!("\n[dictionaries.{name}]\nvalues = [{}]\n", list(values)));
    }
    // `{id}` means another resource on each service.
    for (path, dictionary) in [
        ("^/api/orders/\\{id\\}", "orders"),
        ("^/api/checkout/\\{id\\}$", "checkouts"),
        ("^/api/customers/\\{id\\}", "customers"),
        ("^/api/payments/(authorizations/)?\\{id\\}", "payments"),
        ("^/api/inventory/reservations/\\{id\\}", "reservations"),
    ] {
        // A TOML literal string: the regex's backslashes as they are.
        config.push_str(&format!("\n[[operations]]\ninclude-path-regex = '{path}'\nparameters = {{ \"path.id\" = {} }}\n", binding(dictionary)));
    }
    if caller == Caller::Shopper {
        config.push_str(&format!("\n[[operations]]\ninclude-name = \"DELETE /api/customers/sessions/current\"\n{}", header(&shopper.revocable)));
    }
    config
}

fn run_schemathesis(python: &Path, base: &str, caller: Caller, dir: &Path, config: &Path, options: &Options) -> Result<Outcome> {
    let output_path = dir.join("schemathesis.log");
    let output = std::fs::File::create(&output_path).map_err(|e| format!("cannot create {}: {e}", output_path.display()))?;
    let errors = output.try_clone().map_err(|e| e.to_string())?;
    let budget = &options.budget;
    let mut cmd = Command::new(python);
    cmd.args(["-m", "schemathesis.cli", "--no-color", "--config-file"])
        .arg(config)
        .args(["run", &format!("{base}/api/openapi.json")])
        .args(["--checks", &CHECKS.join(",")])
        .args(["--request-timeout", &REQUEST_TIMEOUT_SECONDS.to_string()])
        .args(["--seed", &budget.seed.to_string()])
        .args(["--max-examples", &budget.max_examples.to_string()])
        .args(["--workers", &budget.workers.to_string()])
        // Nothing kept between runs (hypothesis would otherwise keep an
        // example database in the working directory and replay it).
        .args(["--generation-database", "none"])
        // The tokens are this run's own, random, and the host is gone
        // afterwards: a reproduction curl is more use with them than masked.
        .args(["--output-sanitize", "false"])
        .args(["--report", "junit", "--report-dir"])
        .arg(dir.join("report"))
        .args(&options.extra)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors);
    let started = Instant::now();
    let status = cmd.status().map_err(|e| format!("cannot run schemathesis ({}): {e}", python.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&output_path).unwrap_or_default();
    let operations = summary_value(&text, "Tested:").map_or_else(|| "operations: ?".to_string(), |n| {
        // `Selected: 77/77`: selected by the filters, of all the document has.
        let total = summary_value(&text, "Selected:").and_then(|s| s.split('/').nth(1).map(str::to_string)).unwrap_or_else(|| "?".into());
        format!("{n} of {total} operations tested")
    });
    let cases = after_line(&text, "Test cases:").map_or_else(|| "test cases: ?".to_string(), |l| format!("test cases: {l}"));
    let warnings = block_after(&text, "Warnings:");
    let passed = status.success();
    if !passed {
        // schemathesis's own report: each failure, its response and the
        // curl that reproduces it.
        println!("---- schemathesis as {} ({status}) ----\n{text}---- end of schemathesis as {} ----", caller.name(), caller.name());
    }
    Ok(Outcome { caller, passed, operations, cases, warnings, seconds, output: output_path })
}

/// `Tested: 77` → `77`, from schemathesis's summary.
fn summary_value(text: &str, key: &str) -> Option<String> {
    text.lines().rev().find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
}

/// The lines after the last line that is `heading`, up to a blank line.
fn block_after(text: &str, heading: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(at) = lines.iter().rposition(|l| l.trim() == heading) else { return Vec::new() };
    lines[at + 1..].iter().map(|l| l.trim()).take_while(|l| !l.is_empty()).map(str::to_string).collect()
}

/// The first non-empty line after the last line that is `heading`.
fn after_line(text: &str, heading: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().rposition(|l| l.trim() == heading)?;
    lines[at + 1..].iter().map(|l| l.trim()).find(|l| !l.is_empty()).map(str::to_string)
}

/// The venv's python with schemathesis `SCHEMATHESIS_VERSION` importable,
/// installing it when it is not there yet.
pub fn ensure_schemathesis() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or("HOME is not set: it says where ~/.cache/shop-tools is")?;
    let tools = PathBuf::from(home).join(".cache").join("shop-tools");
    let venv = tools.join(format!("schemathesis-{SCHEMATHESIS_VERSION}"));
    let python = venv_python(&venv);
    if schemathesis_works(&python) {
        return Ok(python);
    }
    let system_python = find_python()?;
    std::fs::create_dir_all(&tools).map_err(|e| format!("cannot create {}: {e}", tools.display()))?;
    // Installed next to its place and moved there when complete, so an
    // interrupted install or a concurrent one never leaves a half venv that
    // looks finished. (The venv is used through `python -m`, whose paths are
    // relative to the interpreter, not through the scripts pip writes, which
    // name the directory they were installed into.)
    let staging = tools.join(format!(".schemathesis-{SCHEMATHESIS_VERSION}-{}-{}", std::process::id(), random_hex(4)));
    eprintln!("xtask: installing schemathesis {SCHEMATHESIS_VERSION} (PyPI) into {}", venv.display());
    let result = (|| {
        quiet_run(Command::new(&system_python).args(["-m", "venv"]).arg(&staging), "create a Python venv (Debian/Ubuntu: `sudo apt-get install python3-venv`)")?;
        quiet_run(
            Command::new(venv_python(&staging))
                .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet"])
                .arg(format!("schemathesis=={SCHEMATHESIS_VERSION}"))
                .env("PIP_NO_INPUT", "1"),
            &format!("pip install schemathesis=={SCHEMATHESIS_VERSION} (is PyPI reachable?)"),
        )?;
        if !schemathesis_works(&venv_python(&staging)) {
            return Err(format!("schemathesis {SCHEMATHESIS_VERSION} was installed into {} but does not run", staging.display()));
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if venv.exists() && !schemathesis_works(&python) {
        // A broken leftover (not ours to repair in place): replace it.
        let _ = std::fs::remove_dir_all(&venv);
    }
    if let Err(e) = std::fs::rename(&staging, &venv) {
        let _ = std::fs::remove_dir_all(&staging);
        // Another run may have installed it meanwhile.
        if !schemathesis_works(&python) {
            return Err(format!("cannot move the venv to {}: {e}", venv.display()));
        }
    }
    if !schemathesis_works(&python) {
        return Err(format!("schemathesis {SCHEMATHESIS_VERSION} in {} does not run", venv.display()));
    }
    Ok(python)
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) { venv.join("Scripts").join("python.exe") } else { venv.join("bin").join("python") }
}

fn schemathesis_works(python: &Path) -> bool {
    python.is_file()
        && Command::new(python)
            .args(["-m", "schemathesis.cli", "--version"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(SCHEMATHESIS_VERSION))
}

/// A Python 3.9+ (schemathesis 4 needs it) with the venv module.
fn find_python() -> Result<PathBuf> {
    const HOW: &str = "install it (Debian/Ubuntu: `sudo apt-get install python3 python3-venv`)";
    for candidate in ["python3", "python"] {
        let Ok(out) = Command::new(candidate)
            .args(["-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        else {
            continue;
        };
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() {
            // A python without the venv module (Debian splits it out).
            if Command::new(candidate).arg("--version").stdin(Stdio::null()).output().is_ok_and(|o| o.status.success()) {
                return Err(format!("{candidate} has no venv module, which the fuzz tests' schemathesis is installed with: {HOW}"));
            }
            continue;
        }
        let (major, minor) = version.split_once('.').and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?))).unwrap_or((0, 0));
        if (major, minor) >= (3, 9) {
            return Ok(PathBuf::from(candidate));
        }
        return Err(format!("{candidate} is Python {version}; schemathesis {SCHEMATHESIS_VERSION} needs 3.9 or newer: {HOW}"));
    }
    Err(format!("the fuzz tests need python3 to install schemathesis {SCHEMATHESIS_VERSION} from PyPI: {HOW}"))
}

/// Runs `cmd` with its output captured, shown only when it fails.
fn quiet_run(cmd: &mut Command, what: &str) -> Result {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot {what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "cannot {what}: {cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}


/// `"key":"value"` in a flat JSON text (the answers xtask reads are its own
/// API's, with no escapes in these fields).
fn json_string_field(text: &str, key: &str) -> Option<String> {
    let pattern = format!("\"{key}\":\"");
    let start = text.find(&pattern)? + pattern.len();
    let end = text[start..].find('"')? + start;
    Some(text[start..end].to_string())
}

