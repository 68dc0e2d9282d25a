//! `cargo xtask load`: shoppers (load/locustfile.py) run by Locust, headless,
//! against a shop this command starts (shop-host or real Spin, fresh state,
//! every sku stocked) or against `--url`. Locust prints a progress line every
//! few seconds; at the end this prints one table from Locust's CSV files:
//! requests/s and p50/p95/p99 per endpoint, failures by kind, and how the
//! checkouts ended. Fails when more than 1% of requests failed unexpectedly
//! (a test card's refusal is an outcome, not a failure), so it can serve as
//! a check.
//!
//! Locust is installed once, pinned, into a venv under
//! `~/.cache/shop-tools/locust-<version>/` (as `fuzz` does schemathesis),
//! from PyPI with pip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Result;
use crate::http_client::{HttpResponse, http_request};
use crate::shop::{Launch, Runtime, Shop, WorkDir, random_hex};

/// Pinned: the CSV columns and the event hooks the locustfile uses are
/// Locust's, and a run must mean the same on every machine.
pub const LOCUST_VERSION: &str = "2.47.0";

/// Over this share of unexpected failures the run fails (the locustfile's
/// `--max-fail-ratio`).
const MAX_FAIL_RATIO: f64 = 0.01;

/// Every sku gets this much stock, so that no checkout of a run fails for
/// want of it (the seed has tens of units).
const ON_HAND: u64 = 10_000_000;

pub struct Options {
    pub users: u32,
    pub duration: u32,
    /// Users started per second; default: all of them within 10 s.
    pub spawn_rate: Option<f64>,
    /// A shop that runs already; otherwise one is built and started on each runtime.
    pub url: Option<String>,
    pub runtimes: Vec<Runtime>,
    /// For stocking a shop at `url` (theirs; ours gets `bench`).
    pub admin_token: String,
    /// Passed on to `locust` (`--html report.html`).
    pub extra: Vec<String>,
}

pub fn run(root: &Path, options: &Options) -> Result {
    // Before building: a machine without python3 hears it at once.
    let python = ensure_locust()?;
    if let Some(url) = &options.url {
        let url = url.trim_end_matches('/');
        let addr = url
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .and_then(|host| std::net::ToSocketAddrs::to_socket_addrs(host).ok()?.next())
            .ok_or_else(|| format!("--url {url}: expected http://<host>:<port>"))?;
        match stock(|m, p, h, b| http_request(addr, m, p, &own(h), Some(b.as_bytes()).filter(|b| !b.is_empty())), &options.admin_token) {
            Ok(n) => eprintln!("xtask: stocked {n} skus with {ON_HAND} units each"),
            Err(e) => eprintln!("xtask: not stocking {url} ({e}); checkouts may run out of stock (--admin-token or SHOP_ADMIN_TOKEN)"),
        }
        return locust(&python, root, url, "the shop at --url", options);
    }
    let built = crate::build()?;
    let mut failures = Vec::new();
    for &runtime in &options.runtimes {
        let mut work = WorkDir::new(&format!("load-{}", runtime.name()))?;
        let state = work.path.join("state");
        let shop = Shop::start(
            &built.host,
            root,
            Launch {
                runtime,
                manifest: &root.join("spin.toml"),
                state: &state,
                variables: vec![("admin_token", "bench".into())],
                ready: "/api/products?per_page=1",
                log_requests: false,
                env: vec![],
                wasi_otel: true,
            },
        )?;
        let n = stock(|m, p, h, b| shop.call(m, p, h, b), "bench")?;
        eprintln!("xtask: {} serves the shop at {}; stocked {n} skus with {ON_HAND} units each", runtime.name(), shop.base);
        let result = locust(&python, root, &shop.base, runtime.name(), options);
        if let Err(e) = result {
            work.keep = true;
            eprintln!("xtask: {}'s log (and Locust's CSV files) are kept in {}; its end:\n{}", runtime.name(), work.path.display(), shop.log_tail(20));
            failures.push(e);
        }
        drop(shop);
    }
    if failures.is_empty() { Ok(()) } else { Err(failures.join("\nxtask: ")) }
}

fn own(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Sets every sku's stock on hand to `ON_HAND` with the admin token; how many skus.
fn stock(call: impl Fn(&str, &str, &[(&str, &str)], &str) -> Result<HttpResponse>, token: &str) -> Result<usize> {
    let auth = format!("Bearer {token}");
    let headers = [("content-type", "application/json"), ("authorization", auth.as_str())];
    let mut skus = Vec::new();
    for page in 1.. {
        let r = call("GET", &format!("/api/products?page={page}&per_page=100"), &[], "")?;
        if r.status != 200 {
            return Err(format!("GET /api/products: {}", r.status));
        }
        // No JSON parser in xtask: every `"sku":"…"` of the page (skus are
        // uppercase letters, digits and dashes, never escaped).
        let body = String::from_utf8_lossy(&r.body);
        let found: Vec<String> = body.split("\"sku\":\"").skip(1).filter_map(|s| s.split('"').next()).map(str::to_string).collect();
        let full = found.len() == 100;
        skus.extend(found);
        if !full {
            break;
        }
    }
    for sku in &skus {
        let r = call("PUT", &format!("/api/inventory/{sku}"), &headers, &format!("{{\"on_hand\":{ON_HAND}}}"))?;
        if r.status >= 300 {
            return Err(format!("PUT /api/inventory/{sku} answered {}", r.status));
        }
    }
    if skus.is_empty() { Err("the catalog lists no products".into()) } else { Ok(skus.len()) }
}

/// Runs Locust headless against `base` and prints the summary; fails when
/// Locust judged the run failed (too many unexpected failures) or crashed.
fn locust(python: &Path, root: &Path, base: &str, target: &str, options: &Options) -> Result {
    let out = WorkDir::new("locust")?;
    let prefix = out.path.join("run");
    let spawn_rate = options.spawn_rate.unwrap_or_else(|| (f64::from(options.users) / 10.0).max(1.0));
    println!("load: {} users (spawned {spawn_rate}/s) for {} s against {target} ({base})", options.users, options.duration);
    let status = Command::new(python)
        .args(["-m", "locust", "-f"])
        .arg(root.join("load").join("locustfile.py"))
        .args(["--headless", "--host", base, "--users", &options.users.to_string(), "--spawn-rate", &spawn_rate.to_string()])
        .args(["--run-time", &format!("{}s", options.duration), "--csv"])
        .arg(&prefix)
        .args(["--no-stats-tables", "--max-fail-ratio", &MAX_FAIL_RATIO.to_string()])
        .args(&options.extra)
        // No keyboard control (it would put the terminal in raw mode).
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run locust: {e}"))?;
    let summary = summary(&prefix, target, options);
    match summary {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("xtask: no summary: {e}"),
    }
    match status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(format!("the load run against {target} failed: no request made, or more than {}% of requests failed unexpectedly", MAX_FAIL_RATIO * 100.0)),
        _ => Err(format!("locust against {target} failed ({status})")),
    }
}

/// The table printed at the end, from Locust's CSV files at `prefix`.
fn summary(prefix: &Path, target: &str, options: &Options) -> Result<String> {
    let read = |suffix: &str| -> Result<Vec<Vec<String>>> {
        let path = PathBuf::from(format!("{}_{suffix}.csv", prefix.display()));
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(csv(&text))
    };
    let stats = read("stats")?;
    let mut s = format!("\nload summary: {target}, {} users, {} s\n", options.users, options.duration);
    let header = stats.first().ok_or("stats.csv is empty")?;
    let col = |name: &str| header.iter().position(|h| h == name).ok_or_else(|| format!("stats.csv has no column {name:?}"));
    let (ty, name, count, fails, rps, p50, p95, p99, max) =
        (col("Type")?, col("Name")?, col("Request Count")?, col("Failure Count")?, col("Requests/s")?, col("50%")?, col("95%")?, col("99%")?, col("Max Response Time")?);
    let width = stats.iter().skip(1).map(|r| r[ty].len() + 1 + r[name].len()).max().unwrap_or(0).max(8);
    s += &format!("{:<width$} {:>8} {:>6} {:>8} {:>7} {:>7} {:>7} {:>7}\n", "endpoint", "requests", "fails", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms");
    for r in stats.iter().skip(1) {
        let endpoint = if r[ty].is_empty() { r[name].clone() } else { format!("{} {}", r[ty], r[name]) };
        let rate = r[rps].parse::<f64>().map_or(r[rps].clone(), |v| format!("{v:.1}"));
        let max_ms = r[max].parse::<f64>().map_or(r[max].clone(), |v| format!("{v:.0}"));
        s += &format!("{endpoint:<width$} {:>8} {:>6} {rate:>8} {:>7} {:>7} {:>7} {max_ms:>7}\n", r[count], r[fails], r[p50], r[p95], r[p99]);
    }
    let failures = read("failures")?;
    s += "\nfailures by kind:";
    if failures.len() <= 1 {
        s += " none\n";
    } else {
        s += "\n";
        let h = &failures[0];
        let col = |n: &str| h.iter().position(|x| x == n).ok_or_else(|| format!("failures.csv has no column {n:?}"));
        let (method, name, error, occurrences) = (col("Method")?, col("Name")?, col("Error")?, col("Occurrences")?);
        let mut rows: Vec<&Vec<String>> = failures.iter().skip(1).collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r[occurrences].parse::<u64>().unwrap_or(0)));
        for r in rows {
            // Locust writes a failure() text as `CatchResponseError('…')`.
            let kind = r[error].strip_prefix("CatchResponseError('").and_then(|k| k.strip_suffix("')")).unwrap_or(&r[error]);
            s += &format!("{:>8}  {kind:<32} {} {}\n", r[occurrences], r[method], r[name]);
        }
    }
    // The locustfile's own tally: refusals of test cards are here, not above.
    if let Ok(outcomes) = read("outcomes") {
        let list: Vec<String> = outcomes.iter().skip(1).filter(|r| r.len() == 2).map(|r| format!("{} {}", r[1], r[0])).collect();
        s += &format!("\ncheckout outcomes: {}\n", if list.is_empty() { "none".into() } else { list.join(", ") });
    }
    let total = stats.iter().find(|r| r[name] == "Aggregated").ok_or("stats.csv has no Aggregated row")?;
    let (n, f): (f64, f64) = (total[count].parse().unwrap_or(0.0), total[fails].parse().unwrap_or(0.0));
    s += &format!(
        "unexpected failures: {} of {} requests ({:.2}%; the run fails above {}%)",
        total[fails],
        total[count],
        if n > 0.0 { 100.0 * f / n } else { 0.0 },
        MAX_FAIL_RATIO * 100.0
    );
    Ok(s)
}

/// Rows of a CSV text (RFC 4180: quoted fields, `""` inside them).
fn csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\r', false) => {}
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// The venv's python with Locust `LOCUST_VERSION`, installed first when missing.
fn ensure_locust() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or("HOME is not set: it says where ~/.cache/shop-tools is")?;
    let tools = PathBuf::from(home).join(".cache").join("shop-tools");
    let venv = tools.join(format!("locust-{LOCUST_VERSION}"));
    let python = venv.join("bin").join("python");
    if locust_works(&python) {
        return Ok(python);
    }
    const HOW: &str = "Locust needs Python 3.10 or newer with venv and pip (Debian/Ubuntu: `sudo apt-get install python3 python3-venv`), and PyPI reachable";
    let version = Command::new("python3").args(["-c", "import sys, venv; print('%d %d' % sys.version_info[:2])"]).stdin(Stdio::null()).output();
    let version = match version {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => return Err(format!("no python3 with the venv module: {HOW}")),
    };
    let parsed: Vec<u32> = version.split(' ').filter_map(|n| n.parse().ok()).collect();
    if parsed.len() != 2 || (parsed[0], parsed[1]) < (3, 10) {
        return Err(format!("python3 is {}: {HOW}", version.replace(' ', ".")));
    }
    std::fs::create_dir_all(&tools).map_err(|e| format!("cannot create {}: {e}", tools.display()))?;
    // Installed beside its place and moved there when complete, so an
    // interrupted install never leaves a venv that looks finished (the venv
    // is used through `python -m`, whose paths follow the interpreter).
    let staging = tools.join(format!(".locust-{LOCUST_VERSION}-{}-{}", std::process::id(), random_hex(4)));
    eprintln!("xtask: installing Locust {LOCUST_VERSION} (PyPI) into {}", venv.display());
    let installed = (|| {
        quiet(Command::new("python3").args(["-m", "venv"]).arg(&staging), "create a venv")?;
        quiet(
            Command::new(staging.join("bin").join("python"))
                .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet"])
                .arg(format!("locust=={LOCUST_VERSION}")),
            &format!("pip install locust=={LOCUST_VERSION}"),
        )?;
        if !locust_works(&staging.join("bin").join("python")) {
            return Err(format!("Locust was installed into {} but does not run", staging.display()));
        }
        Ok(())
    })();
    if let Err(e) = installed {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(format!("{e}\n{HOW}"));
    }
    if venv.exists() {
        // A broken leftover: replace it.
        let _ = std::fs::remove_dir_all(&venv);
    }
    if let Err(e) = std::fs::rename(&staging, &venv) {
        let _ = std::fs::remove_dir_all(&staging);
        if !locust_works(&python) {
            return Err(format!("cannot move the venv to {}: {e}", venv.display()));
        }
    }
    Ok(python)
}

fn locust_works(python: &Path) -> bool {
    python.is_file()
        && Command::new(python)
            .args(["-m", "locust", "--version"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(LOCUST_VERSION))
}

/// Runs `cmd` with its output captured, shown only when it fails.
fn quiet(cmd: &mut Command, what: &str) -> Result {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot {what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!("cannot {what}: {cmd:?} failed ({}):\n{}{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[cfg(test)]
mod tests {
    use super::csv;

    #[test]
    fn csv_fields_may_be_quoted() {
        let rows = csv("Method,Name,Error,Occurrences\r\nPOST,/api/checkout,\"CatchResponseError('409 out_of_stock, \"\"x\"\"')\",3\n");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1], ["POST", "/api/checkout", "CatchResponseError('409 out_of_stock, \"x\"')", "3"]);
        assert_eq!(csv("a,b\n,\n"), [vec!["a", "b"], vec!["", ""]]);
    }
}
