//! The harness every end-to-end suite shares: it starts a real runtime on
//! the real `.wasm` files, on a free port, with a fresh state directory,
//! and talks to it over HTTP. The runtime is `shop-host`, or real Spin
//! ([`Runtime::Spin`]) with a runtime config file in the test's temporary
//! directory and a `redis-server` the harness starts; [`on_both_runtimes!`]
//! runs one test body on each.
//!
//! `cargo xtask test` builds everything first and tells the harness where
//! the host is (`SHOP_HOST_BIN`); run through plain `cargo test`, it looks
//! in the usual places and says what to do if nothing is built.

pub mod otlp;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use serde_json::{Value, json};

/// `rediss://:secret@host:6380/1` as `rediss://host:6380`: what an allowed
/// host says of a Redis address.
pub fn without_userinfo(address: &str) -> String {
    let (scheme, rest) = address.split_once("://").unwrap_or(("redis", address));
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}")
}

/// A checkout request for `cart` by `email`: a German address, `shipping`
/// (`standard` or `express`), and the test card that approves.
pub fn checkout_body(cart: &str, email: &str, shipping: &str) -> Value {
    json!({
        "cart_id": cart,
        "email": email,
        "address": {"name": "Erika Mustermann", "line1": "Heidestraße 17", "city": "Köln",
                    "postal_code": "51147", "country": "DE"},
        "shipping": shipping,
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    })
}

/// Every file under `dir`, recursively: what a state-file scan reads.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// The repository root.
pub fn root() -> PathBuf {
    std::env::var_os("SHOP_ROOT")
        .map(PathBuf::from)
        // cargo runs a test with its package directory as the current one;
        // unlike env!(), that follows the checkout the test runs from.
        .unwrap_or_else(|| std::env::current_dir().unwrap().parent().unwrap().to_path_buf())
}

/// A built component, e.g. `wasm("catalog")`.
pub fn wasm(name: &str) -> PathBuf {
    let path = root().join("target/wasm32-wasip2/release").join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} is missing: run `cargo xtask test` (it builds the components first)", path.display());
    path
}

/// Which runtime serves the app in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// This project's host, `shop-host up`.
    ShopHost,
    /// Real Spin, `spin up` (found by [`spin_bin`]).
    Spin,
}

impl Runtime {
    /// Whether this runtime can run here: shop-host always; Spin when a
    /// binary is found.
    pub fn available(self) -> bool {
        match self {
            Runtime::ShopHost => true,
            Runtime::Spin => spin_bin().is_some(),
        }
    }
}

/// Real Spin: `SPIN_BIN`, then `spin` on `PATH`, then `../shared/tools/spin`
/// beside the repository. `None` on a machine without Spin: the Spin half of
/// the suites is then skipped (`cargo xtask test` says so once).
pub fn spin_bin() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SPIN_BIN").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "SPIN_BIN={} is not a file", path.display());
        return Some(path);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("spin"))
        .find(|p| p.is_file());
    on_path.or_else(|| Some(root().join("../shared/tools/spin")).filter(|p| p.is_file()))
}

/// Runs each named test body, a `fn(Runtime)`, once on shop-host (in module
/// `shop_host`) and once on real Spin (in module `spin`; it returns at once
/// where no Spin is found).
#[macro_export]
macro_rules! on_both_runtimes {
    ($($name:ident),* $(,)?) => {
        mod shop_host {
            $( #[test] fn $name() { super::$name($crate::Runtime::ShopHost) } )*
        }
        mod spin {
            $( #[test] fn $name() {
                if $crate::Runtime::Spin.available() { super::$name($crate::Runtime::Spin) }
            } )*
        }
    };
}

/// A free loopback port for a server the harness starts by port (Spin,
/// redis-server, docker-registry). It is taken below the kernel's
/// ephemeral range: a port from there (`bind :0`) can be handed to some
/// outgoing connection's local end before the server binds it, and a Redis
/// trigger then talks to a stranger.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let ephemeral_start: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u32, ephemeral_start.max(10_001));
    // Spread processes apart (each test binary counts from its own pid).
    let seed = std::process::id().wrapping_mul(7919);
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = (low + (seed.wrapping_add(n.wrapping_mul(104_729)) % (high - low))) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn host_bin() -> PathBuf {
    let path = std::env::var_os("SHOP_HOST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/release/shop-host"));
    assert!(path.is_file(), "{} is missing: run `cargo xtask test`", path.display());
    path
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("shop-{tag}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How to start a host.
pub struct HostConfig {
    runtime: Runtime,
    manifest: PathBuf,
    state_dir: Option<PathBuf>,
    variables: Vec<(String, String)>,
    args: Vec<String>,
    /// Environment variables for the runtime's process.
    env: Vec<(String, String)>,
    /// Whether the runtime config declares every store label the manifest
    /// lists (the default), or only the shop's.
    declare_stores: bool,
}

/// The app's own spin.toml with a test admin token.
pub const ADMIN_TOKEN: &str = "test-admin-token";

impl HostConfig {
    /// The repository's spin.toml on shop-host.
    pub fn shop() -> HostConfig {
        HostConfig::shop_on(Runtime::ShopHost)
    }

    /// The repository's spin.toml, unmodified, on `runtime`.
    pub fn shop_on(runtime: Runtime) -> HostConfig {
        HostConfig::manifest(root().join("spin.toml")).runtime(runtime).variable("admin_token", ADMIN_TOKEN)
    }

    pub fn manifest(path: impl Into<PathBuf>) -> HostConfig {
        HostConfig {
            runtime: Runtime::ShopHost,
            manifest: path.into(),
            state_dir: None,
            variables: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            declare_stores: true,
        }
    }

    /// Declare only the shop's store labels in the runtime config, so that
    /// a test app's other labels are undeclared (which both runtimes refuse).
    pub fn only_shop_stores(mut self) -> HostConfig {
        self.declare_stores = false;
        self
    }

    pub fn runtime(mut self, runtime: Runtime) -> HostConfig {
        self.runtime = runtime;
        self
    }

    /// The variable's value as set so far.
    fn variable_set(&self, name: &str) -> Option<&str> {
        self.variables.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn variable(mut self, name: &str, value: &str) -> HostConfig {
        self.variables.push((name.into(), value.into()));
        self
    }

    pub fn arg(mut self, arg: &str) -> HostConfig {
        self.args.push(arg.into());
        self
    }

    /// An environment variable of the runtime's process (e.g. `SSL_CERT_FILE`).
    pub fn env(mut self, name: &str, value: &str) -> HostConfig {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Reuse a state directory (e.g. across a restart).
    pub fn state_dir(mut self, dir: &Path) -> HostConfig {
        self.state_dir = Some(dir.to_path_buf());
        self
    }

    fn command(&self, temp: &Path, state: &Path) -> Command {
        let mut cmd = match self.runtime {
            Runtime::ShopHost => {
                let mut cmd = Command::new(host_bin());
                cmd.args(["up", "--from"])
                    .arg(&self.manifest)
                    .args(["--listen", "127.0.0.1:0", "--state-dir"])
                    .arg(state)
                    .arg("--runtime-config-file")
                    .arg(runtime_config(temp, state, &self.manifest, self.declare_stores))
                    // The shop's components make spans of their own (wasi:otel).
                    .arg("--experimental-wasi-otel")
                    .env("SHOP_LOG", "info");
                cmd
            }
            Runtime::Spin => {
                let spin = spin_bin().expect("Runtime::Spin needs a spin binary");
                let mut cmd = Command::new(spin);
                cmd.args(["up", "--from"])
                    .arg(&self.manifest)
                    .args(["--listen", &format!("127.0.0.1:{}", free_port()), "--state-dir"])
                    .arg(state)
                    .arg("--runtime-config-file")
                    .arg(runtime_config(temp, state, &self.manifest, self.declare_stores))
                    .arg("--experimental-wasi-otel");
                cmd
            }
        };
        cmd.args(&self.args).envs(self.env.iter().cloned()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // Its own process group, so that stopping it stops what it started:
        // `spin up` runs each trigger as a child process, which outlives a
        // killed parent.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        for (k, v) in &self.variables {
            cmd.arg("--variable").arg(format!("{k}={v}"));
        }
        cmd
    }

    /// Starts the host and waits until it serves.
    pub fn start(self) -> Host {
        match self.try_start() {
            Ok(host) => host,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts the host; `Err` carries what it printed if it did not come up.
    pub fn try_start(mut self) -> Result<Host, String> {
        let temp = TempDir::new("host");
        let state = self.state_dir.clone().unwrap_or_else(|| temp.path().join("state"));
        // Spin needs a real Redis for its Redis triggers; shop-host serves
        // the manifest's default address with its embedded broker.
        let redis = (self.runtime == Runtime::Spin && self.variable_set("redis_address").is_none()).then(|| {
            let redis = RedisServer::start();
            self.variables.push(("redis_address".into(), redis.url()));
            redis
        });
        // The manifest's permission for that server (`redis_host`) is the
        // address without its password, unless the test chose it.
        // (A registry reference is no file: the shop's app, which declares it.)
        let declares_host = std::fs::read_to_string(&self.manifest)
            .map_or(true, |text| text.lines().any(|l| l.trim_start().starts_with("redis_host ")));
        if let (Some(address), None, true) = (self.variable_set("redis_address"), self.variable_set("redis_host"), declares_host) {
            let host = without_userinfo(address);
            self.variables.push(("redis_host".into(), host));
        }
        let mut child = self.command(temp.path(), &state).spawn().expect("cannot start the runtime");
        let logs = Arc::new(Mutex::new(String::new()));
        let (serving, url) = std::sync::mpsc::channel();
        // Both streams go to `logs`; whichever prints `Serving <url>` first
        // (shop-host: stdout, Spin: stdout) says the runtime is up.
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        for stream in [stdout, stderr] {
            let (sink, serving) = (logs.clone(), serving.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(url) = line.trim().strip_prefix("Serving ") {
                        let _ = serving.send(url.trim_end_matches('/').to_string());
                    }
                    let mut l = sink.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Ok(base) = url.recv_timeout(Duration::from_millis(100)) {
                return Ok(Host { child, base, logs, state, _redis: redis, _temp: temp });
            }
            if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
                kill_group(&mut child);
                // Let the reader threads take the last lines (the reason).
                std::thread::sleep(Duration::from_millis(500));
                return Err(format!("{:?} did not start:\n{}", self.runtime, logs.lock().unwrap()));
            }
        }
    }
}

/// The runtime config for the shop's store labels, the same for both
/// runtimes: the repository's runtime-config.toml, written into `dir`, with
/// every store file under the state directory `state` (so a restart on the
/// same state finds them).
fn runtime_config(dir: &Path, state: &Path, manifest: &Path, declare_all: bool) -> PathBuf {
    let text = std::fs::read_to_string(root().join("runtime-config.toml")).unwrap();
    let mut text = text.replace("path = \".spin/", &format!("path = \"{}/stores/", state.display()));
    if declare_all {
        // A test app's own labels are declared too, in the state directory.
        for (table, label) in store_labels(manifest) {
            if !text.contains(&format!("[{table}.{label}]")) {
                text.push_str(&format!("\n[{table}.{label}]\ntype = \"spin\"\npath = \"{}/stores/{label}.db\"\n", state.display()));
            }
        }
    }
    let path = dir.join("runtime-config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A running runtime; stopped when dropped.
pub struct Host {
    child: Child,
    base: String,
    logs: Arc<Mutex<String>>,
    state: PathBuf,
    /// The Redis the harness started for Spin.
    _redis: Option<RedisServer>,
    _temp: TempDir,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The `error.code` of a JSON error body, checking the shape on the way.
    pub fn error_code(&self) -> String {
        let body = self.json();
        let code = body["error"]["code"].as_str().unwrap_or_else(|| panic!("not a JSON error: {}", self.text));
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "error without message: {}", self.text);
        code.to_string()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

impl Host {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// Everything the host logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Whether the log shows `text` within a few seconds: a line is read
    /// from the host's stderr by another thread, and a component's own
    /// output may come after the host's, so a test never assumes it is
    /// already there.
    pub fn logged(&self, text: &str) -> bool {
        eventually(Duration::from_secs(5), || self.logs().contains(text).then_some(())).is_some()
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
        let uri = self.url(path);
        let mut builder = ureq::http::Request::builder().method(method).uri(&uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let agent = agent();
        let result = match body {
            Some(b) => agent.run(builder.body(b.to_vec()).unwrap()),
            None => agent.run(builder.body(()).unwrap()),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap_or_else(|e| panic!("{method} {path}: reading body: {e}"));
        Reply { status, headers, text }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], None)
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.request("DELETE", path, &[], None)
    }

    pub fn send_json(&self, method: &str, path: &str, body: &Value) -> Reply {
        self.request(method, path, &[("content-type", "application/json")], Some(body.to_string().as_bytes()))
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.send_json("POST", path, body)
    }

    pub fn put(&self, path: &str, body: &Value) -> Reply {
        self.send_json("PUT", path, body)
    }

    /// As the operator: `Authorization: Bearer <admin token>`. Tests that
    /// watch orders, shipments and mailboxes from outside read them so.
    pub fn admin_get(&self, path: &str) -> Reply {
        self.request("GET", path, &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))], None)
    }

    pub fn admin_post(&self, path: &str, body: &Value) -> Reply {
        self.as_bearer(ADMIN_TOKEN, "POST", path, Some(body))
    }

    /// A request with `Authorization: Bearer <token>` (a session, an order
    /// access token, the admin token), and a JSON body if given.
    pub fn as_bearer(&self, token: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let authorization = format!("Bearer {token}");
        match body {
            Some(body) => self.request(
                method,
                path,
                &[("content-type", "application/json"), ("authorization", &authorization)],
                Some(body.to_string().as_bytes()),
            ),
            None => self.request(method, path, &[("authorization", &authorization)], None),
        }
    }

    /// Whether the runtime ends by itself within `timeout` (Spin starts its
    /// triggers separately: the HTTP one may print `Serving` before another
    /// refuses the app and Spin stops).
    pub fn exits_within(&mut self, timeout: Duration) -> bool {
        eventually(timeout, || self.child.try_wait().ok().flatten().map(|_| ())).is_some()
    }

    /// Stops the host as a crash would (SIGKILL), keeping its state dir.
    pub fn kill(mut self) -> PathBuf {
        kill_group(&mut self.child);
        self.state.clone()
    }
}

/// SIGKILL to the process group `child` leads (it was started with
/// `process_group(0)`), then reaps it.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Host {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// The repository's spin.toml with its component files (`source` and
/// dependency `path`s under `target/`) made absolute, to be edited by a
/// test and written elsewhere with [`write_manifest`].
pub fn shop_manifest_text() -> String {
    let root = root();
    std::fs::read_to_string(root.join("spin.toml"))
        .unwrap()
        .replace("source = \"target/", &format!("source = \"{}/target/", root.display()))
        .replace("path = \"target/", &format!("path = \"{}/target/", root.display()))
}

/// `(runtime config table, label)` of every store a manifest's components
/// list; none when `manifest` is not a file (a registry reference).
fn store_labels(manifest: &Path) -> Vec<(&'static str, String)> {
    let Ok(text) = std::fs::read_to_string(manifest) else { return Vec::new() };
    let manifest: toml::Table = toml::from_str(&text).unwrap_or_default();
    let mut labels = Vec::new();
    let components = manifest.get("component").and_then(|c| c.as_table()).cloned().unwrap_or_default();
    for component in components.values() {
        for (key, table) in [("key_value_stores", "key_value_store"), ("sqlite_databases", "sqlite_database")] {
            for label in component.get(key).and_then(|l| l.as_array()).into_iter().flatten() {
                if let Some(label) = label.as_str().filter(|l| *l != "default") {
                    labels.push((table, label.to_string()));
                }
            }
        }
    }
    labels
}

/// Writes a manifest into `dir` and returns its path; `{probe}` in the text
/// stands for the probe component's path.
pub fn write_manifest(dir: &Path, text: &str) -> PathBuf {
    let text = text.replace("{probe}", &wasm("probe").to_string_lossy());
    let path = dir.join("spin.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A real `redis-server` on a free loopback port, stopped when dropped.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = free_port();
        let mut server = RedisServer { child: None, port, dir: TempDir::new("redis") };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed: `cargo xtask test` installs it, or `apt-get install redis-server`");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.command(&["PING"]).is_none() {
            assert!(Instant::now() < deadline, "redis-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (as an outage would); `resume` starts it again on
    /// the same port, empty.
    pub fn pause(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn resume(&mut self) {
        self.spawn();
    }

    /// Sends one command; `None` if the server does not answer.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).ok()?;
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).ok()?;
        (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.pause();
    }
}

/// A real OCI registry (Debian's `docker-registry`) on a free loopback
/// port, storing into a temporary directory, stopped when dropped.
pub struct OciRegistry {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

impl OciRegistry {
    pub fn start() -> OciRegistry {
        let dir = TempDir::new("registry");
        let port = free_port();
        let config = dir.path().join("config.yml");
        let data = dir.path().join("data");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                data.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is needed: `cargo xtask test` installs it, or `apt-get install docker-registry`");
        let up = eventually(Duration::from_secs(15), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
        });
        assert!(up.is_some(), "docker-registry did not start on port {port}");
        OciRegistry { child, port, _dir: dir }
    }

    /// `127.0.0.1:<port>/<name>`.
    pub fn reference(&self, name: &str) -> String {
        format!("127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Retries `check` until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
