//! Developer commands: `cargo xtask <build|up|test|browser|fuzz|bench|conformance>`.
//!
//! Only std, so the first `cargo xtask` on a fresh machine compiles in
//! seconds.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

mod bench;
mod browser;
mod conformance;
mod fuzz;
mod http_client;
mod shop;

/// Components built for wasm32-wasip2, in one cargo invocation.
const WASM_PACKAGES: &[&str] = &[
    "catalog", "cart", "customers", "shipping", "tax", "tax-flat", "inventory", "payment", "orders", "checkout", "fulfillment", "notifications", "admin", "openapi", "storefront", "probe", "consumer", "listener",
];
/// Components that make spans (wasi:otel), built a second time without
/// them for the cron triggers: Spin's trigger-cron plugin links no
/// wasi:otel, so what it runs (and composes) must not import it.
const TIMER_PACKAGES: &[&str] = &["inventory", "payment", "orders", "checkout", "fulfillment"];
const WASM_TARGET: &str = "wasm32-wasip2";
const DEV_ADMIN_TOKEN: &str = "dev-admin-token";

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => build().map(|_| ()),
        Some("up") => up(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("browser") => browser::parse_args(&args[1..]).and_then(|runtimes| build().and_then(|b| browser::run(&b.host, &root(), &runtimes))),
        Some("fuzz") => fuzz::parse_args(&args[1..]).and_then(|options| build().and_then(|b| fuzz::run(&b.host, &root(), &options))),
        Some("bench") => build().and_then(|b| bench::run(&b.host, &root(), 10, args.get(1).map(String::as_str))),
        Some("conformance") => run_conformance(&args[1..]),
        Some("trace") => trace(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: cargo xtask <command>
  build                 build the components (wasm32-wasip2) and a release shop-host
  up                    build, then serve the shop on http://127.0.0.1:3000
  test                  build, then run every test (then a short `fuzz`, the `browser` scenarios and, with SHOP_CONFORMANCE_SUITE, `conformance`)
  browser [--runtime shop-host|spin|both]  build, then run the storefront's browser scenarios (tests/browser/)
  fuzz [options]        build, then fuzz every HTTP API against api/openapi.json (schemathesis; --help)
  bench [events|sign-in|tracing] build, then measure the shop through shop-host (wrk, checkout, sign-in, events, traces)
  conformance <suite> [TEST...] [--runtime shop-host|spin|both]  run Spin's conformance suite (a built checkout) on shop-host or Spin
  trace <checkout id>   draw that checkout's trace (the spans `up` collected) as a waterfall";

fn root() -> PathBuf {
    // Read at run time, not baked in with env!(): cargo may reuse an xtask
    // binary built from another checkout of this workspace (its fingerprint
    // does not depend on where the checkout is), and `cargo run` tells the
    // binary where its package is now.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::current_dir().expect("a current directory").join("xtask"));
    dir.parent().expect("xtask lives in the workspace").to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    // `cargo run` gave xtask its own package's variables; passed on, some
    // build scripts (ring's) see them change and rebuild every time.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || ["CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE"].contains(&key.as_ref())
        {
            c.env_remove(key.as_ref());
        }
    }
    c
}

fn run(cmd: &mut Command) -> Result {
    let status = cmd.status().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed ({status})")) }
}

/// cargo's target directory, honouring CARGO_TARGET_DIR and config.
fn target_dir() -> Result<PathBuf> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let key = "\"target_directory\":\"";
    let start = text.find(key).ok_or("cargo metadata has no target_directory")? + key.len();
    let end = text[start..].find('"').ok_or("malformed cargo metadata")? + start;
    Ok(PathBuf::from(text[start..end].replace("\\\\", "\\")))
}

fn ensure_wasm_target() -> Result {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("rustup is needed to add the {WASM_TARGET} target: {e}"))?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|l| l.trim() == WASM_TARGET) {
        return Ok(());
    }
    eprintln!("xtask: adding the {WASM_TARGET} target");
    run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// Paths of what `build` produced.
struct Built {
    host: PathBuf,
    /// The span collector and waterfall (`tests/trace_cli.rs`).
    trace: PathBuf,
}

fn build() -> Result<Built> {
    ensure_wasm_target()?;
    let mut wasm = cargo();
    wasm.args(["build", "--release", "--target", WASM_TARGET]);
    for p in WASM_PACKAGES {
        wasm.args(["-p", p]);
    }
    run(&mut wasm)?;
    let mut timers = cargo();
    timers.args(["build", "--profile", "timer", "--target", WASM_TARGET, "--no-default-features"]);
    for p in TIMER_PACKAGES {
        timers.args(["-p", p]);
    }
    run(&mut timers)?;
    // The same package set as `test` below, so dependencies are built once
    // with one set of features.
    run(cargo().args(["build", "--release", "--workspace", "--exclude", "probe", "--exclude", "consumer", "--exclude", "listener"]))?;

    // spin.toml names components by their path under the repo's own
    // target/ (where `spin build` puts them); when cargo builds elsewhere,
    // put copies there.
    let target = target_dir()?;
    for (profile, packages) in [("release", WASM_PACKAGES), ("timer", TIMER_PACKAGES)] {
        let built = target.join(WASM_TARGET).join(profile);
        let expected = root().join("target").join(WASM_TARGET).join(profile);
        if built == expected {
            continue;
        }
        std::fs::create_dir_all(&expected).map_err(|e| format!("cannot create {}: {e}", expected.display()))?;
        for p in packages {
            // cargo names the artifact after the crate: `tax-flat` -> `tax_flat.wasm`.
            let file = format!("{}.wasm", p.replace('-', "_"));
            std::fs::copy(built.join(&file), expected.join(&file))
                .map_err(|e| format!("cannot copy {file}: {e}"))?;
        }
    }
    let bin = |name: &str| target.join("release").join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    Ok(Built { host: bin("shop-host"), trace: bin("shop-trace") })
}

/// The repository's runtime-config.toml with every store file under `dir`
/// (written there), for runs that must not touch the repository's `.spin/`.
fn runtime_config_in(dir: &Path) -> Result<PathBuf> {
    let text = std::fs::read_to_string(root().join("runtime-config.toml"))
        .map_err(|e| format!("cannot read runtime-config.toml: {e}"))?;
    let text = text.replace("path = \".spin/", &format!("path = \"{}/", dir.display()));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("runtime-config.toml");
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Where `up` keeps the shop's state, and the spans it collects.
fn up_state() -> PathBuf {
    root().join(".shop").join("state")
}

/// The address `up` collects spans on: OTLP/HTTP's usual port.
const COLLECTOR: &str = "127.0.0.1:4318";

fn up(extra: &[String]) -> Result {
    let built = build()?;
    let state = up_state();
    std::fs::create_dir_all(&state).map_err(|e| format!("cannot create {}: {e}", state.display()))?;
    let mut cmd = Command::new(&built.host);
    cmd.current_dir(root())
        .args(["up", "--from", "spin.toml", "--listen", "127.0.0.1:3000", "--runtime-config-file", "runtime-config.toml", "--experimental-wasi-otel", "--state-dir"])
        .arg(&state)
        .args(["--metrics-listen", "127.0.0.1:9464"]);
    if std::env::var_os("SPIN_VARIABLE_ADMIN_TOKEN").is_none() {
        eprintln!("xtask: admin routes take `Authorization: Bearer {DEV_ADMIN_TOKEN}` (set SPIN_VARIABLE_ADMIN_TOKEN to change)");
        cmd.args(["--variable", &format!("admin_token={DEV_ADMIN_TOKEN}")]);
    }
    // Spans go to a collector of our own (for `cargo xtask trace`), unless
    // the user sends them somewhere already.
    let _collector = if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none() && std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none() {
        let kept = state.join("traces.jsonl");
        match Command::new(&built.trace).args(["collect", "--listen", COLLECTOR, "--keep"]).arg(&kept).stdout(Stdio::null()).spawn() {
            Ok(child) => {
                cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{COLLECTOR}")).env("OTEL_SERVICE_NAME", "shop");
                eprintln!("xtask: spans are kept in {} (`cargo xtask trace <checkout id>` draws one); metrics at http://127.0.0.1:9464/metrics", kept.display());
                Some(KillOnDrop(child))
            }
            Err(e) => {
                eprintln!("xtask: no span collector ({e}); traces are off");
                None
            }
        }
    } else {
        None
    };
    cmd.args(extra);
    run(&mut cmd)
}

/// A helper process that ends with the command that started it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cargo xtask trace <checkout id> [--from FILE]`: the waterfall of a
/// checkout's trace, from the spans `up` kept.
fn trace(args: &[String]) -> Result {
    let id = args.first().filter(|a| !a.starts_with('-')).ok_or("usage: cargo xtask trace <checkout id, or trace id> [--from FILE]")?;
    let from = match args.iter().position(|a| a == "--from") {
        Some(i) => PathBuf::from(args.get(i + 1).ok_or("--from needs a file")?),
        None => up_state().join("traces.jsonl"),
    };
    if !from.is_file() {
        return Err(format!("no spans at {}: run `cargo xtask up`, place an order, then ask again", from.display()));
    }
    // Built by `up` already; built now only if it is not.
    let bin = target_dir()?.join("release").join(format!("shop-trace{}", std::env::consts::EXE_SUFFIX));
    let bin = if bin.is_file() { bin } else { build()?.trace };
    run(Command::new(&bin).args(["show", id, "--from"]).arg(&from))
}

/// Servers the tests start themselves, each on a free port, and tools they
/// run (`promtool check metrics`): the Debian package and a command of it
/// on a non-root `PATH` too. `mosquitto_passwd` stands for `mosquitto`
/// (/usr/sbin/mosquitto), `pg_ctlcluster` (postgresql-common, which every
/// PostgreSQL server package brings and no client package does) for
/// `postgresql`, whose server programs are in /usr/lib/postgresql/<major>/bin.
const TEST_SERVERS: &[(&str, &str)] = &[
    ("redis-server", "redis-server"),
    ("docker-registry", "docker-registry"),
    ("prometheus", "promtool"),
    ("mosquitto", "mosquitto_passwd"),
    ("postgresql", "pg_ctlcluster"),
];

/// Installs the test servers that are missing, where we can (root with
/// apt-get); otherwise says how.
fn ensure_test_servers() -> Result {
    // Present when it starts at all: mosquitto's and PostgreSQL's commands
    // exit non-zero for `--version`.
    let present = |cmd: &str| {
        Command::new(cmd).arg("--version").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status().is_ok()
    };
    let missing: Vec<&str> = TEST_SERVERS.iter().filter(|(_, cmd)| !present(cmd)).map(|(package, _)| *package).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    if root && present("apt-get") {
        eprintln!("xtask: installing {} (the tests start real servers)", missing.join(", "));
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        // Debian starts the services on install; the tests run their own.
        for package in &missing {
            let _ = Command::new("service").args([package, "stop"]).status();
        }
        return Ok(());
    }
    Err(format!(
        "the tests need {}: install it (Debian/Ubuntu: `sudo apt-get install {}`)",
        missing.join(" and "),
        missing.join(" ")
    ))
}

/// Real Spin, looked for as the end-to-end harness does (tests/lib.rs):
/// `SPIN_BIN`, then `spin` on `PATH`, then `../shared/tools/spin`.
fn spin_bin() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SPIN_BIN").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("spin"))
        .find(|p| p.is_file())
        .or_else(|| Some(root().join("../shared/tools/spin")).filter(|p| p.is_file()))
}

fn test(extra: &[String]) -> Result {
    ensure_test_servers()?;
    // Before the suites, so a machine without python3 hears it at once.
    fuzz::ensure_schemathesis()?;
    match spin_bin() {
        Some(spin) => {
            // spin.toml's timers are `[[trigger.cron]]`: Spin runs them with a plugin.
            let plugins = Command::new(&spin).args(["plugins", "list", "--installed"]).stdin(Stdio::null()).output();
            let has_cron = plugins.as_ref().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("trigger-cron"));
            if !has_cron {
                return Err(format!(
                    "{} has no trigger-cron plugin, which spin.toml's [[trigger.cron]] need: install it with `spin plugins install trigger-cron` (or set SPIN_BIN to a Spin that has it)",
                    spin.display()
                ));
            }
            eprintln!("xtask: the end-to-end suites run on shop-host and on real Spin ({}, with trigger-cron)", spin.display())
        }
        None => eprintln!(
            "xtask: no Spin found (SPIN_BIN, `spin` on PATH, ../shared/tools/spin): the suites' Spin half is skipped"
        ),
    }
    let built = build()?;
    // Release, so tests reuse the artifacts `build` just made instead of
    // compiling wasmtime a second time in debug.
    let mut cmd = cargo();
    cmd.args(["test", "--release", "--workspace", "--exclude", "probe", "--exclude", "consumer", "--exclude", "listener", "--no-fail-fast"])
        .env("SHOP_HOST_BIN", &built.host)
        .env("SHOP_ROOT", root());
    // The components' domain tests run natively too.
    cmd.args(extra);
    let suites = run(&mut cmd);
    // Then every HTTP API against its contract, on a shop-host of its own
    // (fresh state, a free port), whatever the suites said.
    let options = fuzz::Options { budget: fuzz::TEST_BUDGET, keep: false, callers: fuzz::Caller::ALL.to_vec(), extra: Vec::new() };
    let fuzzed = fuzz::run(&built.host, &root(), &options);
    // Then the storefront in a browser (chromium, playwright-core), on
    // shop-host and, as the suites do, on real Spin when there is one.
    let runtimes = if spin_bin().is_some() { vec![browser::Runtime::ShopHost, browser::Runtime::Spin] } else { vec![browser::Runtime::ShopHost] };
    let browsed = browser::run(&built.host, &root(), &runtimes);
    // Then Spin's conformance suite, when a built checkout is at hand.
    let conformed = conformance_in_test(&built.host);
    let failures: Vec<String> = [suites, fuzzed, browsed, conformed].into_iter().filter_map(|r| r.err()).collect();
    if failures.is_empty() { Ok(()) } else { Err(failures.join("\nxtask: ")) }
}

/// Where `cargo xtask test` looks for a built checkout of Spin's conformance
/// suite (README: "Checking the host against Spin's conformance suite").
const CONFORMANCE_SUITE_ENV: &str = "SHOP_CONFORMANCE_SUITE";

const CONFORMANCE_USAGE: &str = "usage: cargo xtask conformance <path to a built conformance-tests checkout> [TEST...] [--runtime shop-host|spin|both]
  (shop-host: the binary in SHOP_HOST_BIN when set, else `cargo xtask build`'s; spin: SPIN_BIN, `spin` on PATH, ../shared/tools/spin)";

/// `cargo xtask conformance <suite> [TEST...] [--runtime shop-host|spin|both]`.
fn run_conformance(args: &[String]) -> Result {
    let mut suite = None;
    let mut names = Vec::new();
    let mut runtime = "shop-host".to_string();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runtime" => runtime = args.next().ok_or(CONFORMANCE_USAGE)?.clone(),
            "-h" | "--help" => return Err(CONFORMANCE_USAGE.into()),
            a if a.starts_with("--runtime=") => runtime = a["--runtime=".len()..].to_string(),
            a if a.starts_with('-') => return Err(format!("unknown option {a}\n{CONFORMANCE_USAGE}")),
            a if suite.is_none() => suite = Some(PathBuf::from(a)),
            a => names.push(a.to_string()),
        }
    }
    let suite = suite.ok_or(CONFORMANCE_USAGE)?;
    // Before building anything: a misspelt test name is an error at once.
    let all = conformance::test_names(&suite)?;
    let unknown: Vec<&str> = names.iter().filter(|n| !all.contains(n)).map(String::as_str).collect();
    if !unknown.is_empty() {
        return Err(format!("not a test of the suite at {}: {}; its tests are: {}", suite.display(), unknown.join(", "), all.join(", ")));
    }
    let wanted = match runtime.as_str() {
        "shop-host" => vec![shop::Runtime::ShopHost],
        "spin" => vec![shop::Runtime::Spin],
        "both" => vec![shop::Runtime::ShopHost, shop::Runtime::Spin],
        other => return Err(format!("unknown runtime {other:?}\n{CONFORMANCE_USAGE}")),
    };
    let mut runtimes = Vec::new();
    for r in wanted {
        let bin = match r {
            shop::Runtime::ShopHost => match std::env::var_os("SHOP_HOST_BIN").filter(|p| !p.is_empty()) {
                Some(bin) => PathBuf::from(bin),
                None => build()?.host,
            },
            shop::Runtime::Spin => spin_bin().ok_or("no Spin found (SPIN_BIN, `spin` on PATH, ../shared/tools/spin)")?,
        };
        runtimes.push((r, bin));
    }
    conformance_on(&suite, &runtimes, &names)
}

/// Runs the suite's tests (`names`, or all) on each runtime in turn and prints
/// each one's summary line; fails when any test failed.
fn conformance_on(suite: &Path, runtimes: &[(shop::Runtime, PathBuf)], names: &[String]) -> Result {
    let mut failures = Vec::new();
    let mut summaries = Vec::new();
    for (runtime, bin) in runtimes {
        let mut work = shop::WorkDir::new(&format!("conformance-{}", runtime.name()))?;
        let results = conformance::run(suite, *runtime, bin, &work.path, names)?;
        let failed = results.iter().filter(|(_, o)| matches!(o, conformance::Outcome::Failed(_))).count();
        let summary = conformance::summary(*runtime, &results);
        println!("{summary}");
        summaries.push(summary);
        if failed > 0 {
            // Kept for reading: manifests, state, service and runtime logs.
            work.keep = true;
            println!("conformance ({}): the failed tests' files are in {}", runtime.name(), work.path.display());
            failures.push(format!("{failed} conformance tests failed on {}", runtime.name()));
        }
    }
    if runtimes.len() > 1 {
        for s in &summaries {
            println!("{s}");
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) }
}

/// `cargo xtask test`'s last part: the conformance suite on shop-host (and on
/// Spin when there is one) when SHOP_CONFORMANCE_SUITE names a built checkout;
/// otherwise a line saying it is skipped.
fn conformance_in_test(host: &Path) -> Result {
    let Some(suite) = std::env::var_os(CONFORMANCE_SUITE_ENV).filter(|s| !s.is_empty()) else {
        eprintln!(
            "xtask: Spin's conformance suite is skipped: set {CONFORMANCE_SUITE_ENV} to a built checkout of fermyon/conformance-tests (README: \"Checking the host against Spin's conformance suite\")"
        );
        return Ok(());
    };
    let mut runtimes = vec![(shop::Runtime::ShopHost, host.to_path_buf())];
    if let Some(spin) = spin_bin() {
        runtimes.push((shop::Runtime::Spin, spin));
    }
    conformance_on(Path::new(&suite), &runtimes, &[])
}
