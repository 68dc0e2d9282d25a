//! The services a test's preconditions ask for, each on a free loopback port with a
//! fresh directory, stopped (its whole process group) when dropped.
//!
//! | precondition | guest port | what runs |
//! | --- | --- | --- |
//! | `http-echo` | 80 | in-process, like the suite's `http-echo.py` |
//! | `tcp-echo` | 7 | in-process, like the suite's `tcp-echo.py` (it prints `PORT=(7,…)`) |
//! | `redis` | 6379 | Debian's `redis-server`, no persistence |
//! | `mqtt` | 1883 | Debian's `mosquitto`: anonymous allowed, and user `user` / `password` |
//! | `postgres` | 5432 | Debian's PostgreSQL: superuser `postgres` / `postgres`, database `spin_dev`, the suite's `postgres-init/*.sql` run in it |
//!
//! The guest ports are the ones the suite's service definitions expose
//! (`crates/test-environment/services/`: the Python scripts' `PORT=(guest,host)`
//! lines and the images' `EXPOSE`). A missing program is installed with `apt-get`
//! when running as root where there is apt-get; otherwise the test is skipped with a
//! message naming the package.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::http_client::read_line;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const LOG_TAIL_LINES: usize = 15;

/// Why a service could not be had.
pub(super) enum Unavailable {
    /// The test cannot run here (a program is missing and cannot be installed).
    Skip(String),
    /// The service should have started and did not.
    Fail(String),
}

/// A running service.
pub(super) struct Started {
    pub name: &'static str,
    pub guest_port: u16,
    pub port: u16,
    inner: Inner,
}

enum Inner {
    InProcess(InProcess),
    Process(ServiceProcess),
}

impl Started {
    /// What the service saw (in-process) or the tail of its log, for a failure report.
    pub fn report(&self) -> String {
        let mut s = String::new();
        match &self.inner {
            Inner::InProcess(svc) => {
                let seen = svc.log.lock().map(|l| l.clone()).unwrap_or_default();
                let _ = write!(s, "{} service on port {} saw:", self.name, self.port);
                if seen.is_empty() {
                    s.push_str(" nothing");
                }
                for line in seen {
                    let _ = write!(s, "\n    {line}");
                }
            }
            Inner::Process(p) => {
                let text = std::fs::read_to_string(&p.log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let start = lines.len().saturating_sub(LOG_TAIL_LINES);
                let _ = write!(
                    s,
                    "{} service on port {} ({}), last {} log lines:",
                    self.name,
                    self.port,
                    p.log.display(),
                    lines.len() - start
                );
                for line in &lines[start..] {
                    let _ = write!(s, "\n    | {line}");
                }
            }
        }
        s
    }
}

/// Starts services; remembers, for the whole run, which programs were found or
/// could not be had, and installs a missing package at most once.
pub(super) struct Provider {
    suite_dir: PathBuf,
    tools: HashMap<&'static str, Result<Tools, String>>,
    apt_updated: bool,
}

/// Programs found for a service kind, by name.
#[derive(Clone)]
struct Tools(HashMap<&'static str, PathBuf>);

impl Tools {
    fn get(&self, name: &str) -> &Path {
        &self.0[name]
    }
}

impl Provider {
    pub fn new(suite_dir: &Path) -> Provider {
        Provider {
            suite_dir: suite_dir.to_path_buf(),
            tools: HashMap::new(),
            apt_updated: false,
        }
    }

    /// Starts the service for precondition `kind`; `dir` is the test's own
    /// directory (the service gets a fresh directory in it).
    pub fn start(&mut self, kind: &str, dir: &Path) -> Result<Started, Unavailable> {
        let (name, guest_port): (&'static str, u16) = match kind {
            "http-echo" => ("http-echo", 80),
            "tcp-echo" => ("tcp-echo", 7),
            "redis" => ("redis", 6379),
            "mqtt" => ("mqtt", 1883),
            "postgres" => ("postgres", 5432),
            other => {
                return Err(Unavailable::Fail(format!(
                    "precondition '{other}' is unknown to this runner (it knows key-value-store, \
                     sqlite, http-echo, tcp-echo, redis, mqtt, postgres)"
                )));
            }
        };
        let (port, inner) = match name {
            "http-echo" => {
                let svc = InProcess::start(name, handle_http_echo).map_err(Unavailable::Fail)?;
                (svc.port, Inner::InProcess(svc))
            }
            "tcp-echo" => {
                let svc = InProcess::start(name, handle_tcp_echo).map_err(Unavailable::Fail)?;
                (svc.port, Inner::InProcess(svc))
            }
            _ => {
                let tools = self.tools(name).map_err(Unavailable::Skip)?;
                let svc_dir = dir.join(name);
                make_dir(&svc_dir).map_err(Unavailable::Fail)?;
                let port = crate::shop::free_port();
                let p = match name {
                    "redis" => start_redis(&tools, &svc_dir, port),
                    "mqtt" => start_mosquitto(&tools, &svc_dir, port),
                    _ => start_postgres(&tools, &svc_dir, port, &self.suite_dir),
                }
                .map_err(Unavailable::Fail)?;
                (port, Inner::Process(p))
            }
        };
        Ok(Started {
            name,
            guest_port,
            port,
            inner,
        })
    }

    /// The programs service `name` needs: found, else installed where we can.
    fn tools(&mut self, name: &'static str) -> Result<Tools, String> {
        if let Some(known) = self.tools.get(name) {
            return known.clone();
        }
        let (package, service) = match name {
            "redis" => ("redis-server", "redis-server"),
            "mqtt" => ("mosquitto", "mosquitto"),
            _ => ("postgresql", "postgresql"),
        };
        let result = match find_tools(name) {
            Ok(tools) => Ok(tools),
            Err(missing) => {
                let can_install = is_root() && find_program("apt-get").is_some();
                if !can_install {
                    Err(format!(
                        "{missing} not found: install Debian's `{package}` package \
                         (`sudo apt-get install {package}`)"
                    ))
                } else {
                    self.install(package, service).and_then(|()| {
                        find_tools(name).map_err(|missing| {
                            format!("{missing} not found, even after `apt-get install {package}`")
                        })
                    })
                }
            }
        };
        self.tools.insert(name, result.clone());
        result
    }

    fn install(&mut self, package: &str, service: &str) -> Result<(), String> {
        eprintln!("conformance: installing {package} (apt-get), for the tests that need it");
        if !self.apt_updated {
            run_quiet(Command::new("apt-get").args(["update", "-qq"]))
                .map_err(|e| format!("`apt-get update` failed: {e}"))?;
            self.apt_updated = true;
        }
        run_quiet(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", package])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
        .map_err(|e| format!("`apt-get install {package}` failed: {e}"))?;
        // Debian starts the service on install; the runner starts its own.
        let _ = Command::new("service")
            .args([service, "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        Ok(())
    }
}

fn run_quiet(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} — {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The programs of service `name`, or a description of what is missing.
fn find_tools(name: &str) -> Result<Tools, String> {
    let mut tools = HashMap::new();
    let mut need = |prog: &'static str, found: Option<PathBuf>| match found {
        Some(p) => {
            tools.insert(prog, p);
            Ok(())
        }
        None => Err(format!("`{prog}`")),
    };
    match name {
        "redis" => need("redis-server", find_program("redis-server"))?,
        "mqtt" => {
            need("mosquitto", find_program("mosquitto"))?;
            need("mosquitto_passwd", find_program("mosquitto_passwd"))?;
        }
        _ => {
            let bin = postgres_bin_dir().ok_or("PostgreSQL's `initdb` and `postgres`")?;
            let in_bin = |p: &str| Some(bin.join(p)).filter(|p| p.is_file());
            need("initdb", in_bin("initdb"))?;
            need("postgres", in_bin("postgres"))?;
            need(
                "pg_isready",
                in_bin("pg_isready").or_else(|| find_program("pg_isready")),
            )?;
            need("psql", in_bin("psql").or_else(|| find_program("psql")))?;
            if is_root() {
                // PostgreSQL refuses to run as root: it runs as its own user.
                need("runuser", find_program("runuser"))?;
                if os_user_ids("postgres").is_none() {
                    return Err("an OS user `postgres` (PostgreSQL refuses to run as root)".into());
                }
            }
        }
    }
    Ok(Tools(tools))
}

/// `name` on `PATH`, or in the sbin directories (`mosquitto` is in /usr/sbin, which
/// a non-root `PATH` may lack).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Debian keeps PostgreSQL's server programs in /usr/lib/postgresql/<major>/bin
/// (the newest is taken); elsewhere, where `initdb` on `PATH` really lives.
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
    let initdb = std::fs::canonicalize(find_program("initdb")?).ok()?;
    let bin = initdb.parent()?.to_path_buf();
    bin.join("postgres").is_file().then_some(bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `(uid, gid)` of an OS user.
fn os_user_ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// Creates `dir` readable and searchable by everyone: the brokers drop to their
/// own OS users (mosquitto) and must reach their files.
fn make_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("cannot set the permissions of {}: {e}", dir.display()))
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------
// Services that are processes
// ---------------------------------------------------------------------------------

/// A server process in its own process group, its output in `log`; `stop` is sent
/// to the group on drop, then SIGKILL if it is still there after 10 s.
struct ServiceProcess {
    child: Child,
    log: PathBuf,
    stop: &'static str,
}

impl ServiceProcess {
    fn spawn(mut cmd: Command, log: &Path, stop: &'static str) -> Result<ServiceProcess, String> {
        let out = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
        Ok(ServiceProcess {
            child,
            log: log.to_path_buf(),
            stop,
        })
    }

    /// Waits until `ready` says so, failing early if the process exits.
    fn wait_ready(
        &mut self,
        what: &str,
        mut ready: impl FnMut() -> Result<(), String>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{what} exited ({status}) before it was ready; its log:\n{}",
                    self.log_tail()
                ));
            }
            let last = match ready() {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "{what} was not ready within {} s ({last}); its log:\n{}",
                    READY_TIMEOUT.as_secs(),
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..]
            .iter()
            .map(|l| format!("    | {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        signal_group(&self.child, self.stop);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        signal_group(&self.child, "KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `signal` to the process group that `child` leads (started with
/// `process_group(0)`).
pub(super) fn signal_group(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// One request/response exchange on a fresh connection to 127.0.0.1:`port`.
fn exchange(port: u16, request: &[u8], want: usize) -> Result<Vec<u8>, String> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map_err(|e| format!("connect: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    s.write_all(request).map_err(|e| format!("write: {e}"))?;
    let mut buf = vec![0u8; want];
    s.read_exact(&mut buf).map_err(|e| format!("read: {e}"))?;
    Ok(buf)
}

/// `redis-server` on 127.0.0.1:`port`, nothing saved; ready when it answers PING.
fn start_redis(tools: &Tools, dir: &Path, port: u16) -> Result<ServiceProcess, String> {
    let mut cmd = Command::new(tools.get("redis-server"));
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .current_dir(dir);
    let mut p = ServiceProcess::spawn(cmd, &dir.join("redis.log"), "TERM")?;
    p.wait_ready("redis-server", || {
        let reply = exchange(port, b"PING\r\n", 7)?;
        if reply == b"+PONG\r\n" {
            Ok(())
        } else {
            Err(format!(
                "PING answered {:?}",
                String::from_utf8_lossy(&reply)
            ))
        }
    })?;
    Ok(p)
}

/// `mosquitto` listening on 127.0.0.1:`port`, as the suite's `mqtt.Dockerfile`
/// configures it: anonymous clients allowed, and a password file with `user` /
/// `password`. Ready when an MQTT CONNECT gets a CONNACK that accepts it.
fn start_mosquitto(tools: &Tools, dir: &Path, port: u16) -> Result<ServiceProcess, String> {
    use std::os::unix::fs::PermissionsExt;
    let passwd = dir.join("passwd");
    let out = Command::new(tools.get("mosquitto_passwd"))
        .args(["-b", "-c"])
        .arg(&passwd)
        .args(["user", "password"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run mosquitto_passwd: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "mosquitto_passwd failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    // mosquitto started as root reads its files as the `mosquitto` user.
    let _ = std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o644));
    let conf = dir.join("mosquitto.conf");
    write_file(
        &conf,
        &format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npassword_file {}\n\
             persistence false\nlog_dest stderr\nlog_type all\n",
            passwd.display()
        ),
    )?;
    let _ = std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644));
    let mut cmd = Command::new(tools.get("mosquitto"));
    cmd.arg("-c").arg(&conf).current_dir(dir);
    let mut p = ServiceProcess::spawn(cmd, &dir.join("mosquitto.log"), "TERM")?;
    // CONNECT, MQTT 3.1.1, clean session, keep-alive 60 s, empty client id.
    const CONNECT: &[u8] = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00";
    p.wait_ready("mosquitto", || {
        let reply = exchange(port, CONNECT, 4)?;
        if reply == b"\x20\x02\x00\x00" {
            Ok(())
        } else {
            Err(format!("CONNECT answered {reply:02x?}"))
        }
    })?;
    Ok(p)
}

/// PostgreSQL on 127.0.0.1:`port` as the suite's `postgres.Dockerfile` (the official
/// image) sets it up: superuser `postgres` with password `postgres` (password
/// authentication over TCP), database `spin_dev`, and the suite's
/// `postgres-init/*.sql` run in it in name order, as the image's
/// `/docker-entrypoint-initdb.d` does. As root, initdb and the server run as the
/// `postgres` OS user (`runuser`), which owns the cluster's directory.
fn start_postgres(
    tools: &Tools,
    dir: &Path,
    port: u16,
    suite_dir: &Path,
) -> Result<ServiceProcess, String> {
    let init_dir = suite_dir.join("crates/test-environment/services/postgres-init");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&init_dir)
        .map_err(|e| {
            format!(
                "cannot read the suite's PostgreSQL init scripts in {} ({e}): the \
                 postgres test needs a checkout of the suite, not the packaged tests",
                init_dir.display()
            )
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    scripts.sort();

    let data = dir.join("data");
    let sock = dir.join("sock");
    let pwfile = dir.join("pwfile");
    make_dir(&sock)?;
    write_file(&pwfile, "postgres\n")?;
    let as_postgres = if is_root() {
        let (uid, gid) = os_user_ids("postgres").ok_or("no OS user `postgres`")?;
        for p in [dir, &sock, &pwfile] {
            std::os::unix::fs::chown(p, Some(uid), Some(gid))
                .map_err(|e| format!("cannot give {} to user postgres: {e}", p.display()))?;
        }
        true
    } else {
        false
    };
    let command = |program: &Path| {
        if as_postgres {
            let mut c = Command::new(find_program("runuser").unwrap_or("runuser".into()));
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    };

    let mut initdb = command(tools.get("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
        .current_dir(dir);
    let out = initdb
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {initdb:?}: {e}"))?;
    let _ = std::fs::write(
        dir.join("initdb.log"),
        [&out.stdout[..], &out.stderr].concat(),
    );
    if !out.status.success() {
        return Err(format!(
            "initdb failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }

    let mut server = command(tools.get("postgres"));
    server
        .arg("-D")
        .arg(&data)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
        .arg(&sock)
        .args(["-c", "fsync=off"])
        .current_dir(dir);
    // SIGINT: the "fast" shutdown; the postmaster then stops its backends (which
    // sit in process groups of their own).
    let mut p = ServiceProcess::spawn(server, &dir.join("postgres.log"), "INT")?;
    let pg_isready = tools.get("pg_isready").to_path_buf();
    p.wait_ready("postgres", || {
        let status = Command::new(&pg_isready)
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
            ])
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run pg_isready: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("pg_isready: {status}"))
        }
    })?;

    // Over the Unix socket (trust), as the image's entrypoint does.
    let psql = |db: &str, what: &mut dyn FnMut(&mut Command)| -> Result<(), String> {
        let mut c = Command::new(tools.get("psql"));
        c.arg("-h")
            .arg(&sock)
            .args(["-p", &port.to_string(), "-U", "postgres", "-d", db])
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"]);
        what(&mut c);
        let out = c
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{c:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    psql("postgres", &mut |c| {
        c.args(["-c", "CREATE DATABASE spin_dev"]);
    })?;
    for script in &scripts {
        psql("spin_dev", &mut |c| {
            c.arg("-f").arg(script);
        })?;
    }
    Ok(p)
}

// ---------------------------------------------------------------------------------
// In-process services (std only)
// ---------------------------------------------------------------------------------

type ServiceLog = Arc<Mutex<Vec<String>>>;

struct InProcess {
    port: u16,
    log: ServiceLog,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl InProcess {
    fn start(name: &str, handler: fn(TcpStream, &ServiceLog)) -> Result<InProcess, String> {
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
        Ok(InProcess {
            port,
            log,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for InProcess {
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
pub(super) fn http_date(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}
