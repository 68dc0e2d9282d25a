//! Developer commands: `cargo xtask <build|up|test|browser|fuzz|bench|load|conformance|trace>`.
//!
//! One dependency, clap (derive): a few seconds of compile on the first
//! `cargo xtask` of a fresh machine buy every command the same `--help`,
//! errors, `--flag=value` and defaults, instead of a hand-written parser
//! per command.

use std::ffi::OsStr;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::{self, ExitCode, Stdio};

use clap::builder::{PossibleValue, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

mod bench;
mod browser;
mod conformance;
mod fuzz;
mod http_client;
mod load;
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

/// The shop's developer commands.
#[derive(Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the components (wasm32-wasip2) and a release shop-host
    Build,
    /// Build, then serve the shop on http://127.0.0.1:3000
    Up {
        /// Passed on to `shop-host up` (e.g. --watch)
        #[arg(allow_hyphen_values = true)]
        extra: Vec<String>,
        /// After a leading `--`, which clap would drop (see `passed_on`)
        #[arg(last = true, hide = true)]
        after: Vec<String>,
    },
    /// Build, then run every test (then a short `fuzz`, the `browser` scenarios and, with SHOP_CONFORMANCE_SUITE, `conformance`)
    Test {
        /// Passed on to `cargo test`
        #[arg(allow_hyphen_values = true)]
        extra: Vec<String>,
        /// After a leading `--` (`cargo xtask test -- --nocapture`)
        #[arg(last = true, hide = true)]
        after: Vec<String>,
    },
    /// Build, then run the storefront's browser scenarios (tests/browser/)
    ///
    /// Screenshots go to SHOP_SCREENSHOTS (default <temp>/shop-browser-screenshots/<runtime>).
    #[command(args_override_self = true)]
    Browser {
        /// shop-host, real Spin, or both in turn
        #[arg(long, value_enum, default_value_t = Runtimes::ShopHost)]
        runtime: Runtimes,
    },
    /// Build, then fuzz every HTTP API against api/openapi.json (schemathesis)
    #[command(args_override_self = true)]
    Fuzz(FuzzArgs),
    /// Build, then measure the shop on shop-host beside real Spin and native baselines (one table; docs/performance.md)
    #[command(args_override_self = true)]
    Bench(BenchArgs),
    /// Build, then put shoppers on the shop with Locust (load/locustfile.py) and summarize
    ///
    /// Without --url it starts the shop itself (fresh state, every sku stocked)
    /// on each --runtime in turn; fails above 1% unexpected failures.
    #[command(args_override_self = true)]
    Load(LoadArgs),
    /// Run Spin's conformance suite (a built checkout) on shop-host or Spin
    ///
    /// shop-host: the binary in SHOP_HOST_BIN when set, else `cargo xtask build`'s;
    /// spin: SPIN_BIN, `spin` on PATH, ../shared/tools/spin.
    #[command(args_override_self = true)]
    Conformance {
        /// A built checkout of fermyon/conformance-tests
        suite: PathBuf,
        /// Only these tests of the suite (default: all)
        #[arg(value_name = "TEST")]
        tests: Vec<String>,
        /// shop-host, real Spin, or both in turn
        #[arg(long, value_enum, default_value_t = Runtimes::ShopHost)]
        runtime: Runtimes,
    },
    /// Draw a checkout's trace (the spans `up` collected) as a waterfall
    #[command(args_override_self = true)]
    Trace {
        /// The checkout id, or a trace id
        id: String,
        /// The spans to read [default: .shop/state/traces.jsonl, where `up` keeps them]
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
    },
}

/// Where `browser` and `conformance` run: shop-host, real Spin, or both in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Runtimes {
    ShopHost,
    Spin,
    Both,
}

impl Runtimes {
    fn list(self) -> Vec<shop::Runtime> {
        match self {
            Runtimes::ShopHost => vec![shop::Runtime::ShopHost],
            Runtimes::Spin => vec![shop::Runtime::Spin],
            Runtimes::Both => vec![shop::Runtime::ShopHost, shop::Runtime::Spin],
        }
    }
}

/// `up`'s and `test`'s arguments as they were given. clap keeps a `--` that
/// comes after another argument among the values but consumes one that comes
/// first, whose arguments it puts in `after`: that `--` is put back
/// (`cargo xtask test -- --nocapture` is `cargo test … -- --nocapture`).
fn passed_on(extra: Vec<String>, after: Vec<String>) -> Vec<String> {
    if after.is_empty() { extra } else { extra.into_iter().chain(["--".to_string()]).chain(after).collect() }
}

/// `cargo xtask bench`'s parts, run length and outputs.
#[derive(Args)]
struct BenchArgs {
    /// Only this part (default: the main table and the further parts but tracing)
    #[arg(value_enum, value_name = "PART")]
    only: Option<bench::Part>,
    /// Length of each measured run, in seconds
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=3600))]
    seconds: u32,
    /// Also write the figures as JSON, to FILE or (no FILE, or -) to stdout; the table then goes to stderr
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    json: Option<PathBuf>,
    /// Put the table into docs/performance.md's "Latest results" section (the whole bench only)
    #[arg(long)]
    update_docs: bool,
}

impl BenchArgs {
    fn options(self) -> bench::Options {
        bench::Options { seconds: self.seconds, only: self.only, json: self.json, update_docs: self.update_docs }
    }
}

/// `cargo xtask fuzz`'s budget and callers.
#[derive(Args)]
struct FuzzArgs {
    /// Test cases per operation in the fuzzing phase (`xtask test` uses 25)
    #[arg(long, value_name = "N", default_value_t = fuzz::FUZZ_BUDGET.max_examples.into())]
    max_examples: u64,
    /// schemathesis's random seed
    #[arg(long, value_name = "N", default_value_t = fuzz::FUZZ_BUDGET.seed)]
    seed: u64,
    /// Concurrent schemathesis workers (1: reproducible order; at most 64)
    #[arg(long, value_name = "N", default_value_t = fuzz::FUZZ_BUDGET.workers.into())]
    workers: u64,
    /// Fuzz only as these callers (repeatable, or a,b; default all three)
    #[arg(long = "caller", value_name = "CALLER", value_delimiter = ',', value_parser = Trimmed::<fuzz::Caller>(PhantomData))]
    callers: Vec<fuzz::Caller>,
    /// Keep the temporary directory (host log, schemathesis output) when all pass
    #[arg(long)]
    keep: bool,
    /// Passed on to `schemathesis run` (e.g. --include-path-regex '^/api/carts')
    #[arg(last = true, value_name = "SCHEMATHESIS ARGS")]
    extra: Vec<String>,
}

impl FuzzArgs {
    fn options(self) -> fuzz::Options {
        let mut callers = Vec::new();
        for c in self.callers {
            if !callers.contains(&c) {
                callers.push(c);
            }
        }
        if callers.is_empty() {
            callers = fuzz::Caller::ALL.to_vec();
        }
        let budget = fuzz::Budget {
            max_examples: self.max_examples.clamp(1, u32::MAX.into()) as u32,
            seed: self.seed,
            workers: self.workers.clamp(1, 64) as u32,
        };
        fuzz::Options { budget, keep: self.keep, callers, extra: self.extra }
    }
}

/// `cargo xtask load`'s arguments.
#[derive(Args)]
struct LoadArgs {
    /// Concurrent shoppers
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    users: u32,
    /// Seconds of load
    #[arg(long, value_name = "S", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    duration: u32,
    /// Shoppers started per second [default: all within 10 s]
    #[arg(long, value_name = "R")]
    spawn_rate: Option<f64>,
    /// A shop that runs already (e.g. `cargo xtask up`'s http://127.0.0.1:3000), instead of one of our own
    #[arg(long, value_name = "URL", conflicts_with = "runtime")]
    url: Option<String>,
    /// The admin token for stocking the shop at --url [default: SHOP_ADMIN_TOKEN, else `up`'s dev-admin-token]
    #[arg(long, value_name = "TOKEN", requires = "url")]
    admin_token: Option<String>,
    /// Where our own shop runs: shop-host, real Spin, or both in turn
    #[arg(long, value_enum, default_value_t = Runtimes::ShopHost)]
    runtime: Runtimes,
    /// Passed on to `locust` (e.g. --html report.html)
    #[arg(last = true, value_name = "LOCUST ARGS")]
    extra: Vec<String>,
}

impl LoadArgs {
    fn options(self) -> load::Options {
        let admin_token = self
            .admin_token
            .or_else(|| std::env::var("SHOP_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()))
            .unwrap_or_else(|| DEV_ADMIN_TOKEN.to_string());
        load::Options {
            users: self.users,
            duration: self.duration,
            spawn_rate: self.spawn_rate.filter(|r| *r > 0.0),
            url: self.url,
            runtimes: self.runtime.list(),
            admin_token,
            extra: self.extra,
        }
    }
}

/// A `ValueEnum` value with the spaces around it ignored (`--caller "a, b"`).
#[derive(Clone)]
struct Trimmed<E>(PhantomData<E>);

impl<E: ValueEnum + Clone + Send + Sync + 'static> TypedValueParser for Trimmed<E> {
    type Value = E;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> std::result::Result<E, clap::Error> {
        let value = value.to_str().map_or(value, |v| OsStr::new(v.trim()));
        clap::builder::EnumValueParser::<E>::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(E::value_variants().iter().filter_map(E::to_possible_value)))
    }
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Build => build().map(|_| ()),
        Command::Up { extra, after } => up(&passed_on(extra, after)),
        Command::Test { extra, after } => test(&passed_on(extra, after)),
        Command::Browser { runtime } => build().and_then(|b| browser::run(&b.host, &root(), &runtime.list())),
        Command::Fuzz(args) => build().and_then(|b| fuzz::run(&b.host, &root(), &args.options())),
        Command::Bench(args) => build().and_then(|b| bench::run(&b.host, &root(), &args.options())),
        Command::Load(args) => load::run(&root(), &args.options()),
        Command::Conformance { suite, tests, runtime } => run_conformance(&suite, &tests, &runtime.list()),
        Command::Trace { id, from } => trace(&id, from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

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

fn cargo() -> process::Command {
    let mut c = process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
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

fn run(cmd: &mut process::Command) -> Result {
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
    let installed = process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("rustup is needed to add the {WASM_TARGET} target: {e}"))?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|l| l.trim() == WASM_TARGET) {
        return Ok(());
    }
    eprintln!("xtask: adding the {WASM_TARGET} target");
    run(process::Command::new("rustup").args(["target", "add", WASM_TARGET]))
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
    let mut cmd = process::Command::new(&built.host);
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
        match process::Command::new(&built.trace).args(["collect", "--listen", COLLECTOR, "--keep"]).arg(&kept).stdout(Stdio::null()).spawn() {
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
struct KillOnDrop(process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cargo xtask trace <checkout id> [--from FILE]`: the waterfall of a
/// checkout's trace, from the spans `up` kept.
fn trace(id: &str, from: Option<PathBuf>) -> Result {
    let from = from.unwrap_or_else(|| up_state().join("traces.jsonl"));
    if !from.is_file() {
        return Err(format!("no spans at {}: run `cargo xtask up`, place an order, then ask again", from.display()));
    }
    // Built by `up` already; built now only if it is not.
    let bin = target_dir()?.join("release").join(format!("shop-trace{}", std::env::consts::EXE_SUFFIX));
    let bin = if bin.is_file() { bin } else { build()?.trace };
    run(process::Command::new(&bin).args(["show", id, "--from"]).arg(&from))
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
        process::Command::new(cmd).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
    };
    let missing: Vec<&str> = TEST_SERVERS.iter().filter(|(_, cmd)| !present(cmd)).map(|(package, _)| *package).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let root = process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    if root && present("apt-get") {
        eprintln!("xtask: installing {} (the tests start real servers)", missing.join(", "));
        run(process::Command::new("apt-get").args(["update", "-qq"]))?;
        run(process::Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        // Debian starts the services on install; the tests run their own.
        for package in &missing {
            let _ = process::Command::new("service").args([package, "stop"]).status();
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
            let plugins = process::Command::new(&spin).args(["plugins", "list", "--installed"]).stdin(Stdio::null()).output();
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
    let runtimes = if spin_bin().is_some() { Runtimes::Both.list() } else { Runtimes::ShopHost.list() };
    let browsed = browser::run(&built.host, &root(), &runtimes);
    // Then Spin's conformance suite, when a built checkout is at hand.
    let conformed = conformance_in_test(&built.host);
    let failures: Vec<String> = [suites, fuzzed, browsed, conformed].into_iter().filter_map(|r| r.err()).collect();
    if failures.is_empty() { Ok(()) } else { Err(failures.join("\nxtask: ")) }
}

/// Where `cargo xtask test` looks for a built checkout of Spin's conformance
/// suite (README: "Checking the host against Spin's conformance suite").
const CONFORMANCE_SUITE_ENV: &str = "SHOP_CONFORMANCE_SUITE";

/// `cargo xtask conformance <suite> [TEST...] [--runtime shop-host|spin|both]`.
fn run_conformance(suite: &Path, names: &[String], wanted: &[shop::Runtime]) -> Result {
    // Before building anything: a misspelt test name is an error at once.
    let all = conformance::test_names(suite)?;
    let unknown: Vec<&str> = names.iter().filter(|n| !all.contains(n)).map(String::as_str).collect();
    if !unknown.is_empty() {
        return Err(format!("not a test of the suite at {}: {}; its tests are: {}", suite.display(), unknown.join(", "), all.join(", ")));
    }
    let mut runtimes = Vec::new();
    for &r in wanted {
        let bin = match r {
            shop::Runtime::ShopHost => match std::env::var_os("SHOP_HOST_BIN").filter(|p| !p.is_empty()) {
                Some(bin) => PathBuf::from(bin),
                None => build()?.host,
            },
            shop::Runtime::Spin => spin_bin().ok_or("no Spin found (SPIN_BIN, `spin` on PATH, ../shared/tools/spin)")?,
        };
        runtimes.push((r, bin));
    }
    conformance_on(suite, &runtimes, names)
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> std::result::Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied())).map(|cli| cli.command)
    }

    #[test]
    fn load_options() {
        let Ok(Command::Load(args)) = parse(&["load"]) else { panic!() };
        let o = args.options();
        assert_eq!((o.users, o.duration, o.spawn_rate, o.url), (50, 60, None, None));
        assert_eq!(o.runtimes, [shop::Runtime::ShopHost]);
        assert!(o.extra.is_empty());
        let Ok(Command::Load(args)) = parse(&["load", "--users=5", "--duration", "10", "--spawn-rate", "2.5", "--runtime", "spin", "--", "--html", "r.html"]) else { panic!() };
        let o = args.options();
        assert_eq!((o.users, o.duration, o.spawn_rate), (5, 10, Some(2.5)));
        assert_eq!(o.runtimes, [shop::Runtime::Spin]);
        assert_eq!(o.extra, ["--html", "r.html"]);
        let Ok(Command::Load(args)) = parse(&["load", "--url", "http://127.0.0.1:3000", "--admin-token", "t"]) else { panic!() };
        let o = args.options();
        assert_eq!((o.url.as_deref(), o.admin_token.as_str()), (Some("http://127.0.0.1:3000"), "t"));
        assert!(parse(&["load", "--url", "http://x", "--runtime", "spin"]).is_err());
        assert!(parse(&["load", "--admin-token", "t"]).is_err());
        assert!(parse(&["load", "--users", "0"]).is_err());
        assert!(parse(&["load", "--duration", "1m"]).is_err());
    }

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_command_is_an_error() {
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn up_and_test_pass_their_arguments_on() {
        let passed = |args: &[&str]| match parse(args) {
            Ok(Command::Up { extra, after } | Command::Test { extra, after }) => passed_on(extra, after),
            other => panic!("{args:?}: {:?}", other.err()),
        };
        for args in [
            &["--watch"][..],
            &["-x", "y"],
            &[],
            &["--", "--nocapture"],
            &["checkout", "--", "--nocapture"],
            &["--release", "-p", "x", "--", "y", "--", "z"],
            &["--", "b", "--", "c"],
            &["a", "--help"],
        ] {
            for command in ["up", "test"] {
                let given: Vec<&str> = std::iter::once(command).chain(args.iter().copied()).collect();
                assert_eq!(passed(&given), args, "{given:?}");
            }
        }
        assert!(matches!(parse(&["test", "--help"]), Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp));
    }

    #[test]
    fn runtimes() {
        assert!(matches!(parse(&["browser"]), Ok(Command::Browser { runtime: Runtimes::ShopHost })));
        assert!(matches!(parse(&["browser", "--runtime=both"]), Ok(Command::Browser { runtime: Runtimes::Both })));
        assert!(parse(&["browser", "--runtime", "docker"]).is_err());
        assert_eq!(Runtimes::Both.list(), [shop::Runtime::ShopHost, shop::Runtime::Spin]);
        let Ok(Command::Conformance { suite, tests, runtime }) = parse(&["conformance", "/s", "a", "--runtime", "spin", "b"]) else { panic!() };
        assert_eq!((suite, tests, runtime), (PathBuf::from("/s"), vec!["a".to_string(), "b".to_string()], Runtimes::Spin));
        assert!(parse(&["conformance"]).is_err());
    }

    #[test]
    fn fuzz_options() {
        let Ok(Command::Fuzz(args)) = parse(&["fuzz"]) else { panic!() };
        let o = args.options();
        assert_eq!((o.budget.max_examples, o.budget.seed, o.budget.workers), (250, 20260301, 1));
        assert_eq!(o.callers, fuzz::Caller::ALL);
        assert!(!o.keep && o.extra.is_empty());
        let Ok(Command::Fuzz(args)) = parse(&["fuzz", "--max-examples=0", "--workers", "100", "--seed", "7", "--caller", "admin, shopper", "--caller=admin", "--keep", "--", "--include-path-regex", "^/api/carts"])
        else {
            panic!()
        };
        let o = args.options();
        assert_eq!((o.budget.max_examples, o.budget.seed, o.budget.workers), (1, 7, 64));
        assert_eq!(o.callers, [fuzz::Caller::Admin, fuzz::Caller::Shopper]);
        assert!(o.keep);
        assert_eq!(o.extra, ["--include-path-regex", "^/api/carts"]);
        assert!(parse(&["fuzz", "--caller", "root"]).is_err());
        assert!(parse(&["fuzz", "--seed", "-1"]).is_err());
        assert!(parse(&["fuzz", "extra"]).is_err());
    }

    #[test]
    fn bench_options() {
        let options = |args: &[&str]| match parse(args) {
            Ok(Command::Bench(args)) => args.options(),
            other => panic!("{args:?}: {:?}", other.err()),
        };
        let o = options(&["bench"]);
        assert_eq!((o.seconds, o.only, o.json, o.update_docs), (10, None, None, false));
        let o = options(&["bench", "sign-in", "--seconds", "3"]);
        assert_eq!((o.seconds, o.only), (3, Some(bench::Part::SignIn)));
        // --json alone (or before another option) is stdout, "-".
        assert_eq!(options(&["bench", "--json"]).json, Some(PathBuf::from("-")));
        assert_eq!(options(&["bench", "--json", "--seconds=2"]).json, Some(PathBuf::from("-")));
        let o = options(&["bench", "--seconds", "3", "--json", "/tmp/b.json"]);
        assert_eq!((o.seconds, o.json), (3, Some(PathBuf::from("/tmp/b.json"))));
        assert_eq!(options(&["bench", "--json=-", "events"]).json, Some(PathBuf::from("-")));
        assert!(options(&["bench", "--update-docs"]).update_docs);
        // The last of a repeated option wins, as for the other commands.
        assert_eq!(options(&["bench", "--seconds", "3", "--seconds", "4"]).seconds, 4);
        for wrong in [&["bench", "--seconds", "0"][..], &["bench", "--seconds"], &["bench", "--seconds", "x"], &["bench", "load"], &["bench", "events", "tracing"]] {
            assert!(parse(wrong).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn trace_args() {
        assert!(parse(&["trace"]).is_err());
        assert!(matches!(parse(&["trace", "chk_1", "--from", "f"]), Ok(Command::Trace { id, from: Some(f) }) if id == "chk_1" && f == Path::new("f")));
    }
}
