//! A shop served for an xtask command (bench, fuzz, browser): a manifest on
//! shop-host or real Spin, its stores under a fresh state directory, a free
//! port, its log in a file; stopped — its whole process group and its
//! redis-server — when dropped, whatever happened. The one way xtask starts
//! a runtime.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;
use crate::http_client::{HttpResponse, http_request};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Runtime {
    ShopHost,
    Spin,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Runtime::ShopHost => "shop-host",
            Runtime::Spin => "spin",
        }
    }
}

/// What to serve, and how.
pub struct Launch<'a> {
    pub runtime: Runtime,
    pub manifest: &'a Path,
    /// Fresh per run: the stores (runtime-config.toml's labels, moved
    /// here), the host log.
    pub state: &'a Path,
    pub variables: Vec<(&'a str, String)>,
    /// A `GET` that answers 200 once the app is up, not only listening.
    pub ready: &'a str,
    /// A line per request in the log (helps reading a failure; off when it
    /// would be part of what is measured).
    pub log_requests: bool,
    /// Environment for the runtime (`OTEL_EXPORTER_OTLP_ENDPOINT`, …).
    pub env: Vec<(&'a str, String)>,
    /// `--experimental-wasi-otel`: the shop's components need it; a
    /// baseline tree from before them may run a host without the flag.
    pub wasi_otel: bool,
}

pub struct Shop {
    child: Child,
    pub base: String,
    pub addr: SocketAddr,
    log: PathBuf,
    redis: Option<Child>,
}

impl Shop {
    pub fn start(host_bin: &Path, root: &Path, launch: Launch<'_>) -> Result<Shop> {
        let runtime = launch.runtime;
        let config = crate::runtime_config_in(launch.state)?;
        let log = launch.state.join("host.log");
        let log_file = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut redis = None;
        let mut cmd = match runtime {
            Runtime::ShopHost => {
                let mut cmd = Command::new(host_bin);
                // Port 0: the system picks a free one and shop-host prints it.
                cmd.args(["up", "--from"]).arg(launch.manifest).args(["--listen", "127.0.0.1:0"]);
                cmd
            }
            Runtime::Spin => {
                let spin = crate::spin_bin().ok_or("no Spin found (SPIN_BIN, `spin` on PATH, ../shared/tools/spin)")?;
                // Spin's Redis triggers need a real server.
                let port = free_port();
                redis = Some(
                    Command::new("redis-server")
                        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                        .current_dir(launch.state)
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .map_err(|e| format!("cannot start redis-server (install it: `sudo apt-get install redis-server`): {e}"))?,
                );
                let url = format!("redis://127.0.0.1:{port}");
                let mut cmd = Command::new(spin);
                cmd.args(["up", "--from"])
                    .arg(launch.manifest)
                    .args(["--listen", &format!("127.0.0.1:{}", free_port())])
                    .args(["--variable", &format!("redis_address={url}"), "--variable", &format!("redis_host={url}")]);
                cmd
            }
        };
        cmd.current_dir(root).arg("--state-dir").arg(launch.state).arg("--runtime-config-file").arg(&config);
        // The shop's components make spans of their own (wasi:otel), which
        // both runtimes link only with this flag.
        if launch.wasi_otel {
            cmd.arg("--experimental-wasi-otel");
        }
        cmd.envs(launch.env.iter().map(|(k, v)| (*k, v.as_str())));
        for (name, value) in &launch.variables {
            cmd.args(["--variable", &format!("{name}={value}")]);
        }
        if !launch.log_requests {
            cmd.env("SHOP_LOG", "warn");
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log_file);
        // Its own process group: `spin up` runs each trigger as a child process.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                if let Some(mut r) = redis {
                    let _ = r.kill();
                    let _ = r.wait();
                }
                return Err(format!("cannot start {}: {e}", runtime.name()));
            }
        };
        let stdout = child.stdout.take().expect("piped");
        let mut shop = Shop { child, base: String::new(), addr: SocketAddr::from(([127, 0, 0, 1], 0)), log, redis };
        // From here on, an error drops `shop`, which stops it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut out = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match out.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if let Some(url) = line.trim().strip_prefix("Serving ") {
                            let _ = tx.send(url.trim_end_matches('/').to_string());
                            break;
                        }
                    }
                }
            }
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        let deadline = Instant::now() + Duration::from_secs(180);
        shop.base = loop {
            if let Ok(base) = rx.recv_timeout(Duration::from_millis(100)) {
                break base;
            }
            if Instant::now() > deadline || shop.exited().is_some() {
                return Err(format!("{} did not start serving:\n{}", runtime.name(), shop.log_tail(60)));
            }
        };
        shop.addr = shop
            .base
            .trim_start_matches("http://")
            .parse()
            .map_err(|_| format!("{} serves on {:?}, not http://<ip>:<port>", runtime.name(), shop.base))?;
        // Serving means listening; wait until the app answers too.
        loop {
            match shop.call("GET", launch.ready, &[], "") {
                Ok(r) if r.status == 200 => break,
                _ if Instant::now() > deadline => {
                    return Err(format!("{} at {} does not answer {}:\n{}", runtime.name(), shop.base, launch.ready, shop.log_tail(60)));
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        Ok(shop)
    }

    pub fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Result<HttpResponse> {
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        http_request(self.addr, method, path, &headers, (!body.is_empty()).then_some(body.as_bytes()))
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The runtime process's resident memory, as /proc says.
    pub fn rss(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l[6..].trim().to_string()))
            .unwrap_or_else(|| "unknown".into())
    }

    /// Resident memory, in KiB, of every process in the runtime's process
    /// group: `spin up` runs its triggers as child processes (and the
    /// wrapper script of ../shared/tools/spin is one more), so the parent's
    /// figure alone would undercount Spin. Not the redis-server started
    /// for Spin, which is outside the group.
    pub fn rss_kib(&self) -> Option<u64> {
        let mut total = None;
        for (dir, _) in self.group() {
            let kib = std::fs::read_to_string(dir.join("status"))
                .ok()
                .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse::<u64>().ok());
            if let Some(kib) = kib {
                total = Some(total.unwrap_or(0) + kib);
            }
        }
        total
    }

    /// Waits (up to `at_most`) until the runtime is idle: less than a tenth
    /// of a core used over half a second. After a run the runtime may still
    /// be working off its event backlog, which would slow the next run down.
    pub fn settle(&self, at_most: std::time::Duration) {
        const WINDOW: std::time::Duration = std::time::Duration::from_millis(500);
        let cpu_ticks = || -> u64 {
            // utime and stime, in clock ticks (100 per second).
            self.group()
                .map(|(_, fields)| fields.iter().skip(11).take(2).filter_map(|f| f.parse::<u64>().ok()).sum::<u64>())
                .sum()
        };
        let until = std::time::Instant::now() + at_most;
        let mut before = cpu_ticks();
        while std::time::Instant::now() < until {
            std::thread::sleep(WINDOW);
            let now = cpu_ticks();
            if now.saturating_sub(before) < 5 {
                return;
            }
            before = now;
        }
    }

    /// The runtime's process group: each process's /proc directory and its
    /// stat fields after the command name.
    fn group(&self) -> impl Iterator<Item = (std::path::PathBuf, Vec<String>)> {
        let group = self.child.id().to_string();
        std::fs::read_dir("/proc").into_iter().flatten().flatten().filter_map(move |entry| {
            let dir = entry.path();
            // /proc/<pid>/stat: "pid (comm) state ppid pgrp …"; comm may hold spaces.
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            let (_, after_comm) = stat.rsplit_once(')')?;
            let fields: Vec<String> = after_comm.split_whitespace().map(str::to_owned).collect();
            (fields.get(2) == Some(&group)).then_some((dir, fields))
        })
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(redis) = &mut self.redis {
            let _ = redis.kill();
            let _ = redis.wait();
        }
    }
}

/// A temporary directory of one run: removed when dropped unless `keep`.
pub struct WorkDir {
    pub path: PathBuf,
    pub keep: bool,
}

impl WorkDir {
    pub fn new(tag: &str) -> Result<WorkDir> {
        let path = std::env::temp_dir().join(format!("shop-{tag}-{}-{:x}", std::process::id(), nanos()));
        std::fs::create_dir_all(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(WorkDir { path, keep: false })
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A free loopback port for a server started by port (Spin, redis-server),
/// below the kernel's ephemeral range, as tests/lib.rs picks them: a port
/// from there can be handed to an outgoing connection before the server binds it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_start: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u32, ephemeral_start.max(10_001));
    let seed = std::process::id().wrapping_mul(7919) ^ 0x5bd1_e995;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (low + (seed.wrapping_add(n.wrapping_mul(104_729)) % (high - low))) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `bytes` random bytes as hex, from the system's random source.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf)).is_ok();
    if !filled {
        // No /dev/urandom: std's per-process random hash keys.
        use std::hash::{BuildHasher, Hasher};
        for chunk in buf.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
            let n = h.finish().to_le_bytes();
            chunk.copy_from_slice(&n[..chunk.len()]);
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
