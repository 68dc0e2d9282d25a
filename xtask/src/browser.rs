//! `cargo xtask browser`: the storefront's browser scenarios
//! (`tests/browser/*.test.mjs`, node:test + playwright-core driving the
//! system's chromium) against a shop of their own. Also the last part of
//! `cargo xtask test`.
//!
//! What it needs and sees to:
//! - `/usr/bin/chromium` (or `CHROMIUM`): installed with apt-get when
//!   running as root, otherwise it says how;
//! - node and npm (it says how when they are missing);
//! - playwright-core, exactly as `tests/browser/package-lock.json` pins it,
//!   installed by `npm ci` into `~/.cache/shop-tools/browser-<hash of the
//!   lockfile>/node_modules` (never into the repository) and found by the
//!   scenarios through `NODE_PATH`. Playwright downloads no browser.
//!
//! Each run starts two shops on free ports with fresh state under a
//! temporary directory and a random admin token: the shop as it ships
//! (`fulfillment_auto_ship=true`: orders ship and are paid by themselves)
//! and one whose warehouse waits (`fulfillment_auto_ship=false`), where an
//! order stays `placed` long enough for the account scenario to cancel it.
//! The runtime is shop-host, or real Spin (each with a redis-server of its
//! own), or both one after the other. Screenshots go to `SHOP_SCREENSHOTS`
//! (default `<temp>/shop-browser-screenshots/<runtime>`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::Result;
pub use crate::shop::Runtime;
use crate::shop::{Launch, Shop, WorkDir, random_hex};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Ensures the tools, then runs the scenarios once per runtime (all of
/// them, whatever the first said).
pub fn run(host_bin: &Path, root: &Path, runtimes: &[Runtime]) -> Result {
    let chromium = ensure_chromium()?;
    ensure_node()?;
    let node_modules = ensure_node_modules(root)?;
    let mut failures = Vec::new();
    for &runtime in runtimes {
        let started = Instant::now();
        let outcome = run_on(runtime, host_bin, root, &chromium, &node_modules);
        let took = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => eprintln!("xtask: browser scenarios on {}: passed ({took:.0} s)", runtime.name()),
            Err(e) => {
                eprintln!("xtask: browser scenarios on {}: FAILED ({took:.0} s)", runtime.name());
                failures.push(format!("browser scenarios on {}: {e}", runtime.name()));
            }
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(failures.join("\nxtask: ")) }
}

fn run_on(runtime: Runtime, host_bin: &Path, root: &Path, chromium: &Path, node_modules: &Path) -> Result {
    let work = WorkDir::new(&format!("browser-{}", runtime.name()))?;
    let admin_token = format!("browser-admin-{}", random_hex(16));
    let mut shop = start_shop(runtime, host_bin, root, &work.path.join("shop"), &admin_token, true)?;
    let mut held = start_shop(runtime, host_bin, root, &work.path.join("held"), &admin_token, false)?;
    let shots = match std::env::var_os("SHOP_SCREENSHOTS").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join(runtime.name()),
        None => std::env::temp_dir().join("shop-browser-screenshots").join(runtime.name()),
    };
    // Last run's pictures are not this run's.
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).map_err(|e| format!("cannot create {}: {e}", shots.display()))?;
    let dir = root.join("tests").join("browser");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".test.mjs")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no *.test.mjs in {}", dir.display()));
    }
    eprintln!(
        "xtask: browser scenarios ({} files) on {} ({}; a held shop at {}), chromium {}, screenshots in {}",
        files.len(),
        runtime.name(),
        shop.base,
        held.base,
        chromium.display(),
        shots.display()
    );
    // The files one after the other (each starts its own chromium; this is
    // a 2-core machine); the test names are tests/browser/'s own.
    let status = Command::new("node")
        .current_dir(root)
        .args(["--test", "--test-reporter=spec", "--test-concurrency=1"])
        .args(files.iter().map(|f| f.strip_prefix(root).unwrap_or(f)))
        .env("NODE_PATH", node_modules)
        .env("SHOP_BASE_URL", &shop.base)
        .env("SHOP_HELD_BASE_URL", &held.base)
        .env("SHOP_ADMIN_TOKEN", &admin_token)
        .env("SHOP_SCREENSHOTS", &shots)
        .env("CHROMIUM", chromium)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run node: {e}"))?;
    let mut problems = Vec::new();
    if !status.success() {
        problems.push(format!("node --test failed ({status}); screenshots in {}", shots.display()));
    }
    for s in [&mut shop, &mut held] {
        if let Some(exit) = s.exited() {
            problems.push(format!("{} stopped during the run ({exit}); its log:\n{}", runtime.name(), s.log_tail(60)));
        }
    }
    drop(held);
    drop(shop);
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
}

// ---- the tools ------------------------------------------------------------

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n") || o.stdout == b"0")
}

fn works(cmd: &str, arg: &str) -> bool {
    Command::new(cmd).arg(arg).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// `CHROMIUM`, else /usr/bin/chromium, installed with apt-get when missing
/// and we are root.
fn ensure_chromium() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() { Ok(path) } else { Err(format!("CHROMIUM={} is not a file", path.display())) };
    }
    let path = PathBuf::from(CHROMIUM);
    if path.is_file() {
        return Ok(path);
    }
    if is_root() && works("apt-get", "--version") {
        eprintln!("xtask: installing chromium (the browser scenarios drive it)");
        crate::run(Command::new("apt-get").args(["update", "-qq"]))?;
        crate::run(Command::new("apt-get").args(["install", "-y", "-qq", "chromium"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
        if path.is_file() {
            return Ok(path);
        }
        return Err(format!("apt-get installed chromium but {CHROMIUM} is missing: set CHROMIUM to the browser"));
    }
    Err(format!(
        "the browser scenarios need {CHROMIUM}: install it (Debian/Ubuntu: `sudo apt-get install chromium`), or set CHROMIUM to a Chromium binary"
    ))
}

fn ensure_node() -> Result {
    for tool in ["node", "npm"] {
        if !works(tool, "--version") {
            return Err(format!(
                "the browser scenarios need {tool} (Node.js 20 or newer, with npm): install it (https://nodejs.org, or your distribution's nodejs and npm packages)"
            ));
        }
    }
    Ok(())
}

/// playwright-core as tests/browser/package-lock.json pins it, in a cache
/// directory keyed by the lockfile: its node_modules.
fn ensure_node_modules(root: &Path) -> Result<PathBuf> {
    let dir = root.join("tests").join("browser");
    let lock = std::fs::read(dir.join("package-lock.json")).map_err(|e| format!("cannot read tests/browser/package-lock.json: {e}"))?;
    let manifest = std::fs::read(dir.join("package.json")).map_err(|e| format!("cannot read tests/browser/package.json: {e}"))?;
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or("HOME is not set: it says where ~/.cache/shop-tools is")?;
    let tools = PathBuf::from(home).join(".cache").join("shop-tools");
    let key = format!("{:016x}", fnv1a(&[&lock[..], &manifest[..]]));
    let cache = tools.join(format!("browser-{key}"));
    let installed = |at: &Path| at.join("node_modules").join("playwright-core").join("package.json").is_file();
    if installed(&cache) {
        return Ok(cache.join("node_modules"));
    }
    // Installed next to its place and moved there when complete, so an
    // interrupted or concurrent install never leaves a half one that looks done.
    let staging = tools.join(format!(".browser-{key}-{}-{}", std::process::id(), random_hex(4)));
    std::fs::create_dir_all(&staging).map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    eprintln!("xtask: installing tests/browser's npm dependencies (npm ci) into {}", cache.display());
    let result = (|| {
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(dir.join(file), staging.join(file)).map_err(|e| format!("cannot copy {file}: {e}"))?;
        }
        let out = Command::new("npm")
            .current_dir(&staging)
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"])
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run npm: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "npm ci in {} failed ({}; is the npm registry reachable?):\n{}{}",
                staging.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if !installed(&staging) {
            return Err("npm ci did not install playwright-core".into());
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&staging, &cache) {
        let _ = std::fs::remove_dir_all(&staging);
        // Another run may have installed it meanwhile.
        if !installed(&cache) {
            return Err(format!("cannot move {} to {}: {e}", staging.display(), cache.display()));
        }
    }
    Ok(cache.join("node_modules"))
}

/// FNV-1a, 64 bits: a cache key, not a checksum anyone relies on.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

// ---- the shops ------------------------------------------------------------

/// spin.toml with fresh state under `state`; `auto_ship = false` holds
/// shipments, so that an order stays cancellable (scenario h).
fn start_shop(runtime: Runtime, host_bin: &Path, root: &Path, state: &Path, admin_token: &str, auto_ship: bool) -> Result<Shop> {
    let manifest = root.join("spin.toml");
    let launch = Launch {
        runtime,
        manifest: &manifest,
        state,
        variables: vec![("admin_token", admin_token.to_string()), ("fulfillment_auto_ship", auto_ship.to_string())],
        ready: "/api/products?per_page=1",
        log_requests: false,
        env: Vec::new(),
        wasi_otel: true,
    };
    Shop::start(host_bin, root, launch)
}

