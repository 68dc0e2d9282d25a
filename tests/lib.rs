//! The harness every end-to-end suite shares: it starts the real
//! `shop-host` binary on the real `.wasm` files, on a port the OS picks,
//! with a fresh state directory, and talks to it over HTTP.
//!
//! `cargo xtask test` builds everything first and tells the harness where
//! the host is (`SHOP_HOST_BIN`); run through plain `cargo test`, it looks
//! in the usual places and says what to do if nothing is built.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use serde_json::{Value, json};

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
    manifest: PathBuf,
    state_dir: Option<PathBuf>,
    variables: Vec<(String, String)>,
    args: Vec<String>,
}

/// The app's own spin.toml with a test admin token.
pub const ADMIN_TOKEN: &str = "test-admin-token";

impl HostConfig {
    /// The repository's spin.toml.
    pub fn shop() -> HostConfig {
        HostConfig::manifest(root().join("spin.toml")).variable("admin_token", ADMIN_TOKEN)
    }

    pub fn manifest(path: impl Into<PathBuf>) -> HostConfig {
        HostConfig { manifest: path.into(), state_dir: None, variables: Vec::new(), args: Vec::new() }
    }

    pub fn variable(mut self, name: &str, value: &str) -> HostConfig {
        self.variables.push((name.into(), value.into()));
        self
    }

    pub fn arg(mut self, arg: &str) -> HostConfig {
        self.args.push(arg.into());
        self
    }

    /// Reuse a state directory (e.g. across a restart).
    pub fn state_dir(mut self, dir: &Path) -> HostConfig {
        self.state_dir = Some(dir.to_path_buf());
        self
    }

    fn command(&self, state: &Path) -> Command {
        let mut cmd = Command::new(host_bin());
        cmd.args(["up", "--from"])
            .arg(&self.manifest)
            .args(["--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state)
            .args(&self.args)
            .env("SHOP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
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
    pub fn try_start(self) -> Result<Host, String> {
        let temp = TempDir::new("host");
        let state = self.state_dir.clone().unwrap_or_else(|| temp.path().join("state"));
        let mut child = self.command(&state).spawn().expect("cannot start shop-host");
        let logs = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut line = String::new();
        loop {
            line.clear();
            let n = stdout.read_line(&mut line).unwrap_or(0);
            if n == 0 || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                return Err(format!("shop-host did not start:\n{}", logs.lock().unwrap()));
            }
            if let Some(url) = line.trim().strip_prefix("Serving ") {
                let base = url.to_string();
                // Keep draining stdout so the host never blocks on it.
                std::thread::spawn(move || {
                    let mut sink = Vec::new();
                    let _ = stdout.read_to_end(&mut sink);
                });
                return Ok(Host { child, base, logs, _temp: temp, state });
            }
        }
    }
}

/// A running `shop-host`; stopped when dropped.
pub struct Host {
    child: Child,
    base: String,
    logs: Arc<Mutex<String>>,
    state: PathBuf,
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

    /// Stops the host as a crash would (SIGKILL), keeping its state dir.
    pub fn kill(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.state.clone()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
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
