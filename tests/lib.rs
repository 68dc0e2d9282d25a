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

/// `name` on `PATH`, or in the sbin directories a non-root `PATH` may lack
/// (Debian's `mosquitto` is /usr/sbin/mosquitto).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `(uid, gid)` of an OS user.
fn os_user_ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().parse().ok())?
    };
    Some((id("-u")?, id("-g")?))
}

/// The password of the `postgres` superuser of a [`PostgresServer`].
pub const POSTGRES_PASSWORD: &str = "postgres";

/// A real PostgreSQL (Debian's, in /usr/lib/postgresql/<major>/bin) on a free
/// loopback port: a fresh cluster in a temporary directory, superuser
/// `postgres` with password [`POSTGRES_PASSWORD`] (password authentication
/// over TCP), and a database [`PostgresServer::DATABASE`]. PostgreSQL refuses
/// to run as root: as root, its programs run as the `postgres` OS user,
/// which owns the directory. Stopped when dropped.
pub struct PostgresServer {
    child: Option<Child>,
    pub port: u16,
    bin: PathBuf,
    as_postgres: bool,
    dir: TempDir,
}

impl PostgresServer {
    /// The database made for the test.
    pub const DATABASE: &'static str = "shop_test";

    pub fn start() -> PostgresServer {
        let bin = postgres_bin_dir().expect(
            "PostgreSQL's initdb and postgres are needed: `cargo xtask test` installs them, or `apt-get install postgresql`",
        );
        let dir = TempDir::new("postgres");
        let (data, sock, pwfile) = (dir.path().join("data"), dir.path().join("sock"), dir.path().join("pwfile"));
        std::fs::create_dir_all(&sock).unwrap();
        std::fs::write(&pwfile, format!("{POSTGRES_PASSWORD}\n")).unwrap();
        let as_postgres = running_as_root();
        if as_postgres {
            let (uid, gid) = os_user_ids("postgres").expect("running as root, PostgreSQL needs an OS user `postgres` to run as");
            for p in [dir.path(), &sock, &pwfile] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
            }
        }
        let mut server = PostgresServer { child: None, port: 0, bin, as_postgres, dir };
        let out = server
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .stdin(Stdio::null())
            .output()
            .expect("cannot run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        // A port taken between choosing and binding: try another.
        for _ in 0..5 {
            server.port = free_port();
            let log = std::fs::File::create(server.dir.path().join("postgres.log")).unwrap();
            let mut cmd = server.command("postgres");
            cmd.arg("-D")
                .arg(&data)
                .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-k"])
                .arg(&sock)
                .args(["-c", "fsync=off"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            // Its own group, so that dropping it stops all of it.
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            let mut child = cmd.spawn().expect("cannot start postgres");
            let ready = eventually(Duration::from_secs(30), || {
                if child.try_wait().ok().flatten().is_some() {
                    return Some(false);
                }
                let status = Command::new(server.tool("pg_isready"))
                    .args(["-q", "-h", "127.0.0.1", "-p", &server.port.to_string(), "-U", "postgres"])
                    .status()
                    .ok()?;
                status.success().then_some(true)
            });
            server.child = Some(child);
            if ready == Some(true) {
                server.psql("postgres", &format!("CREATE DATABASE {}", Self::DATABASE));
                return server;
            }
            kill_group(server.child.as_mut().unwrap());
            server.child = None;
        }
        panic!("postgres did not start:\n{}", std::fs::read_to_string(server.dir.path().join("postgres.log")).unwrap_or_default());
    }

    fn tool(&self, name: &str) -> PathBuf {
        let own = self.bin.join(name);
        if own.is_file() { own } else { find_program(name).unwrap_or(own) }
    }

    /// A server program, as the `postgres` OS user when we are root.
    fn command(&self, program: &str) -> Command {
        let mut cmd = if self.as_postgres {
            let mut c = Command::new(find_program("runuser").unwrap_or_else(|| "runuser".into()));
            c.args(["-u", "postgres", "--"]).arg(self.tool(program));
            c
        } else {
            Command::new(self.tool(program))
        };
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// A libpq connection string for the test database with `password`.
    pub fn address_with(&self, password: &str) -> String {
        format!("host=127.0.0.1 port={} user=postgres password={password} dbname={}", self.port, Self::DATABASE)
    }

    /// The connection string with the right password.
    pub fn address(&self) -> String {
        self.address_with(POSTGRES_PASSWORD)
    }

    /// The directory of its Unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// What a component's `allowed_outbound_hosts` names it by.
    pub fn allowed_host(&self) -> String {
        format!("postgres://127.0.0.1:{}", self.port)
    }

    /// Runs `sql` in database `db` with `psql` (over the Unix socket, as
    /// the superuser): its output, unaligned and without headers.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.tool("psql"))
            .arg("-h")
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("cannot run psql");
        assert!(out.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // A fast shutdown (the backends are stopped too), then the group.
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["stop", "-m", "fast", "-w", "-t", "10"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(child) = &mut self.child {
            kill_group(child);
        }
    }
}

/// Debian keeps PostgreSQL's server programs in /usr/lib/postgresql/<major>/bin
/// (the newest is taken; /usr/local/bin/postgres, where there is one, may be
/// anything); elsewhere, where `initdb` on `PATH` really lives.
fn postgres_bin_dir() -> Option<PathBuf> {
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((major, bin))
        })
        .collect();
    majors.sort();
    if let Some((_, bin)) = majors.pop() {
        return Some(bin);
    }
    let bin = std::fs::canonicalize(find_program("initdb")?).ok()?.parent()?.to_path_buf();
    bin.join("postgres").is_file().then_some(bin)
}

/// The user and password a [`MosquittoServer`] accepts.
pub const MQTT_USER: &str = "user";
pub const MQTT_PASSWORD: &str = "password";

/// A real `mosquitto` on a free loopback port that accepts only
/// [`MQTT_USER`] / [`MQTT_PASSWORD`] (`allow_anonymous false`); stopped when
/// dropped. [`MosquittoServer::subscribe`] watches what reaches it.
pub struct MosquittoServer {
    child: Child,
    pub port: u16,
    dir: TempDir,
}

impl MosquittoServer {
    pub fn start() -> MosquittoServer {
        use std::os::unix::fs::PermissionsExt;
        let missing = "mosquitto is needed: `cargo xtask test` installs it, or `apt-get install mosquitto`";
        let dir = TempDir::new("mosquitto");
        let passwd = dir.path().join("passwd");
        let out = Command::new(find_program("mosquitto_passwd").expect(missing))
            .args(["-b", "-c"])
            .arg(&passwd)
            .args([MQTT_USER, MQTT_PASSWORD])
            .stdin(Stdio::null())
            .output()
            .expect("cannot run mosquitto_passwd");
        assert!(out.status.success(), "mosquitto_passwd: {}", String::from_utf8_lossy(&out.stderr));
        // Started as root, mosquitto reads its files as the `mosquitto` user.
        std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mosquitto = find_program("mosquitto").expect(missing);
        for _ in 0..5 {
            let port = free_port();
            let conf = dir.path().join("mosquitto.conf");
            std::fs::write(
                &conf,
                format!(
                    "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\npersistence false\nlog_dest stderr\n",
                    passwd.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
            let log = std::fs::File::create(dir.path().join("mosquitto.log")).unwrap();
            let mut cmd = Command::new(&mosquitto);
            cmd.arg("-c").arg(&conf).current_dir(dir.path()).stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            let mut child = cmd.spawn().expect(missing);
            let ready = eventually(Duration::from_secs(10), || {
                if child.try_wait().ok().flatten().is_some() {
                    return Some(false);
                }
                mqtt_connect(port, MQTT_USER, MQTT_PASSWORD).ok().map(|_| true)
            });
            if ready == Some(true) {
                return MosquittoServer { child, port, dir };
            }
            kill_group(&mut child);
        }
        panic!("mosquitto did not start:\n{}", std::fs::read_to_string(dir.path().join("mosquitto.log")).unwrap_or_default());
    }

    /// `mqtt://127.0.0.1:<port>` (a client still needs `?client_id=…`).
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// What the broker logged.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// A subscriber to `filter` (e.g. `#`), subscribed when this returns.
    pub fn subscribe(&self, filter: &str) -> MqttSubscriber {
        MqttSubscriber::start(self.port, filter)
    }
}

impl Drop for MosquittoServer {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// An MQTT 3.1.1 length or string: what a packet is made of.
fn mqtt_remaining_length(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return out;
        }
    }
}

fn mqtt_string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

/// One packet: its first byte and its body.
fn mqtt_read_packet(stream: &mut std::net::TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut first = [0u8; 1];
    stream.read_exact(&mut first)?;
    let (mut length, mut shift) = (0usize, 0);
    loop {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte)?;
        length |= ((byte[0] & 0x7f) as usize) << shift;
        shift += 7;
        if byte[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok((first[0], body))
}

/// An MQTT 3.1.1 session with `user`/`password` (clean session, no
/// keep-alive): the stream once the broker accepted it (CONNACK 0).
fn mqtt_connect(port: u16, user: &str, password: &str) -> Result<std::net::TcpStream, String> {
    use std::io::Write;
    static CLIENT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let client_id = format!("shop-tests-{}-{}", std::process::id(), CLIENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Protocol "MQTT" level 4; flags: user name, password, clean session.
    let mut body = mqtt_string("MQTT");
    body.extend_from_slice(&[4, 0xC2, 0, 0]);
    for field in [client_id.as_str(), user, password] {
        body.extend(mqtt_string(field));
    }
    let mut packet = vec![0x10];
    packet.extend(mqtt_remaining_length(body.len()));
    packet.extend(body);
    stream.write_all(&packet).map_err(|e| e.to_string())?;
    match mqtt_read_packet(&mut stream).map_err(|e| e.to_string())? {
        (0x20, body) if body.len() == 2 && body[1] == 0 => Ok(stream),
        (first, body) => Err(format!("CONNECT answered {first:#04x} {body:02x?}")),
    }
}

/// A subscriber that collects the messages (topic, payload) it receives,
/// on a thread of its own; its session ends when dropped.
pub struct MqttSubscriber {
    stream: std::net::TcpStream,
    messages: Mutex<std::sync::mpsc::Receiver<(String, Vec<u8>)>>,
}

impl MqttSubscriber {
    fn start(port: u16, filter: &str) -> MqttSubscriber {
        use std::io::Write;
        let mut stream = mqtt_connect(port, MQTT_USER, MQTT_PASSWORD).expect("the subscriber cannot connect");
        // SUBSCRIBE, packet id 1, QoS 0 (so nothing to acknowledge).
        let mut body = vec![0, 1];
        body.extend(mqtt_string(filter));
        body.push(0);
        let mut packet = vec![0x82];
        packet.extend(mqtt_remaining_length(body.len()));
        packet.extend(body);
        stream.write_all(&packet).unwrap();
        let (first, body) = mqtt_read_packet(&mut stream).expect("no SUBACK");
        assert!(first == 0x90 && body.get(2) == Some(&0), "SUBSCRIBE {filter} answered {first:#04x} {body:02x?}");
        stream.set_read_timeout(None).unwrap();
        let (sink, messages) = std::sync::mpsc::channel();
        let mut reader = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            while let Ok((first, body)) = mqtt_read_packet(&mut reader) {
                if first >> 4 != 3 || body.len() < 2 {
                    continue;
                }
                // PUBLISH: topic, a packet id when QoS > 0, the payload.
                let topic_len = u16::from_be_bytes([body[0], body[1]]) as usize;
                let topic = String::from_utf8_lossy(&body[2..2 + topic_len]).into_owned();
                let at = 2 + topic_len + if (first >> 1) & 3 > 0 { 2 } else { 0 };
                if sink.send((topic, body[at..].to_vec())).is_err() {
                    break;
                }
            }
        });
        MqttSubscriber { stream, messages: Mutex::new(messages) }
    }

    /// The next message within `timeout`, if one comes.
    pub fn next_message(&self, timeout: Duration) -> Option<(String, Vec<u8>)> {
        self.messages.lock().unwrap().recv_timeout(timeout).ok()
    }
}

impl Drop for MqttSubscriber {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// A TCP echo server (std only) on `ip` and a free port: whatever a
/// connection sends comes back. It counts the connections it accepted and
/// keeps what it received. Stopped when dropped.
pub struct EchoServer {
    pub addr: std::net::SocketAddr,
    connections: Arc<std::sync::atomic::AtomicUsize>,
    received: Arc<Mutex<Vec<u8>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl EchoServer {
    /// On `ip`, e.g. `127.0.0.1` (any address of 127.0.0.0/8 works on Linux).
    pub fn start(ip: &str) -> EchoServer {
        let listener = loop {
            if let Ok(l) = std::net::TcpListener::bind((ip, free_port())) {
                break l;
            }
        };
        let addr = listener.local_addr().unwrap();
        let server = EchoServer { addr, connections: Arc::default(), received: Arc::default(), stop: Arc::default() };
        let (connections, received, stop) = (server.connections.clone(), server.received.clone(), server.stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let received = received.clone();
                std::thread::spawn(move || {
                    use std::io::Write;
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = conn.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        received.lock().unwrap().extend_from_slice(&buf[..n]);
                        if conn.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        server
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many connections it accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Everything it received, as text.
    pub fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stop`.
        let _ = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
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
