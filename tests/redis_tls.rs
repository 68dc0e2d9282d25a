//! Redis over TLS with a password, as managed Redis services run it: a
//! `redis-server` with only a TLS port and `requirepass`, its certificate
//! signed by a CA made here at run time (the `openssl` CLI), trusted through
//! `SSL_CERT_FILE`. The shop's events go over
//! `redis_address=rediss://:<password>@127.0.0.1:<port>`; a wrong password,
//! an untrusted certificate and a password in `allowed_outbound_hosts` are
//! refused, with messages that do not show the password.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shop_tests::*;

const WAIT: Duration = Duration::from_secs(30);
const PASSWORD: &str = "tls-s3cret-pw";

/// A `redis-server` listening on TLS only, with a password, and the CA
/// that signed its certificate; stopped when dropped.
struct TlsRedis {
    child: Child,
    port: u16,
    dir: TempDir,
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed to make the test CA (apt-get install openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl TlsRedis {
    fn start() -> TlsRedis {
        let dir = TempDir::new("redis-tls");
        let d = dir.path();
        // A CA, and a certificate for 127.0.0.1 it signs (P-256 keys: quick to make).
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            d,
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=shop test CA"],
            ]
            .concat(),
        );
        openssl(
            d,
            &[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]].concat(),
        );
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--tls-cert-file", "server.crt", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.crt"])
            .args(["--tls-auth-clients", "no", "--requirepass", PASSWORD, "--save", "", "--appendonly", "no"])
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed: `cargo xtask test` installs it, or `apt-get install redis-server`");
        let redis = TlsRedis { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis.cli(&["PING"]).as_deref() != Some("PONG") {
            assert!(Instant::now() < deadline, "redis-server with TLS did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        redis
    }

    /// The address with the right password.
    fn url(&self) -> String {
        self.url_with(PASSWORD)
    }

    fn url_with(&self, password: &str) -> String {
        format!("rediss://:{password}@127.0.0.1:{}", self.port)
    }

    /// The address as a component's `allowed_outbound_hosts` must name it:
    /// without the userinfo, which Spin refuses there.
    fn host(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }

    fn ca(&self) -> String {
        self.dir.path().join("ca.crt").to_string_lossy().into_owned()
    }

    /// One command through `redis-cli` over TLS; its answer, trimmed.
    fn cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["--tls", "--cacert", &self.ca(), "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-a", PASSWORD, "--no-auth-warning"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// How many subscribers `channel` has.
    fn subscribers(&self, channel: &str) -> usize {
        let reply = self.cli(&["PUBSUB", "NUMSUB", channel]).unwrap_or_default();
        reply.lines().nth(1).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// The repository's spin.toml as it is: its components' permission is
/// `redis_host`, the server without the password, which the harness derives
/// from `redis_address`.
fn shop_manifest(dir: &TempDir) -> PathBuf {
    write_manifest(dir.path(), &shop_manifest_text())
}

/// Every `[[trigger.redis]]` channel of the manifest, with how many
/// triggers it has.
fn channels(manifest: &std::path::Path) -> Vec<(String, usize)> {
    let manifest: toml::Table = toml::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    let mut channels: Vec<(String, usize)> = Vec::new();
    let triggers = manifest["trigger"].get("redis").and_then(|r| r.as_array()).cloned().unwrap_or_default();
    for trigger in triggers {
        let channel = trigger["channel"].as_str().unwrap().to_string();
        match channels.iter_mut().find(|(c, _)| *c == channel) {
            Some((_, n)) => *n += 1,
            None => channels.push((channel, 1)),
        }
    }
    channels
}

/// Until every trigger is subscribed (shop-host: one subscription per
/// trigger; Spin: one per channel), a message would miss a consumer.
fn wait_all_subscribed(redis: &TlsRedis, manifest: &std::path::Path, rt: Runtime) {
    for (channel, triggers) in channels(manifest) {
        let expected = if rt == Runtime::Spin { 1 } else { triggers };
        let subscribed = eventually(WAIT, || (redis.subscribers(&channel) >= expected).then_some(()));
        assert!(subscribed.is_some(), "{rt:?} never subscribed {expected} to {channel} over TLS");
    }
}

fn a_checkout_over_tls_with_a_password_is_shipped_captured_and_mailed(rt: Runtime) {
    let redis = TlsRedis::start();
    let dir = TempDir::new("redis-tls-shop");
    let manifest = shop_manifest(&dir);
    let host = HostConfig::manifest(&manifest)
        .runtime(rt)
        .variable("admin_token", ADMIN_TOKEN)
        .variable("redis_address", &redis.url())
        .env("SSL_CERT_FILE", &redis.ca())
        .start();
    wait_all_subscribed(&redis, &manifest, rt);

    let auth = format!("Bearer {ADMIN_TOKEN}");
    let admin = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let sku = "COF-001";
    let r = host.request(
        "PUT",
        &format!("/api/inventory/{sku}"),
        &admin,
        Some(json!({"on_hand": 10}).to_string().as_bytes()),
    );
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
    let r = host.post("/api/carts/tls-cart/items", &json!({"sku": sku, "quantity": 1}));
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
    let email = "tls@example.com";
    let body = json!({
        "cart_id": "tls-cart", "email": email, "shipping": "standard",
        "address": {"name": "Ada Lovelace", "line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"},
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    });
    let r = host.request(
        "POST",
        "/api/checkout",
        &[("content-type", "application/json"), ("idempotency-key", "tls-1")],
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let order_id = r.json()["order_id"].as_str().unwrap().to_string();
    let checkout_id = r.json()["checkout_id"].as_str().unwrap().to_string();
    let journal = host.get(&format!("/api/checkout/{checkout_id}")).json();
    let authorization = journal["authorization_id"].as_str().unwrap_or_else(|| panic!("{journal}")).to_string();

    // order.placed reached fulfillment (shipped) and notifications (mail);
    // fulfillment.shipped reached payment (captured); payment.captured
    // reached notifications (receipt) — every hop over TLS.
    let shipped = eventually(WAIT, || {
        let r = host.admin_get(&format!("/api/fulfillment/shipments/{order_id}"));
        (r.status == 200 && r.json()["status"] == "shipped").then_some(())
    });
    assert!(shipped.is_some(), "never shipped: {}", host.logs());
    let captured = eventually(WAIT, || {
        let r = host.get(&format!("/api/payments/{authorization}"));
        (r.status == 200 && r.json()["status"] == "captured").then_some(())
    });
    assert!(captured.is_some(), "never captured: {}", host.logs());
    let mailed = eventually(WAIT, || {
        let mails = host.admin_get(&format!("/api/notifications?customer={}", percent_encode(email))).json();
        let kinds: Vec<String> = mails["messages"]
            .as_array()?
            .iter()
            .filter(|m| m["order_id"] == order_id.as_str())
            .map(|m| m["type"].as_str().unwrap_or_default().to_string())
            .collect();
        ["order.placed", "payment.captured"].iter().all(|k| kinds.iter().any(|m| m == k)).then_some(())
    });
    assert!(mailed.is_some(), "mails missing: {}", host.logs());
    assert!(!host.logs().contains(PASSWORD), "the password was logged:\n{}", host.logs());
}

/// A Redis trigger and the probe, which may publish to `allowed`.
fn probe_app(dir: &TempDir, allowed: &str) -> PathBuf {
    let text = format!(
        r#"
spin_manifest_version = 2
[application]
name = "redis-tls"
[variables]
redis_address = {{ default = "redis://127.0.0.1:6379" }}
[application.trigger.redis]
address = "{{{{ redis_address }}}}"

[[trigger.redis]]
channel = "events"
component = "listener"
[[trigger.http]]
route = "/..."
component = "probe"

[component.listener]
source = "{listener}"
key_value_stores = ["events"]
[component.probe]
source = "{{probe}}"
key_value_stores = ["events"]
allowed_outbound_hosts = ["{allowed}"]
"#,
        listener = wasm("listener").to_string_lossy()
    );
    write_manifest(dir.path(), &text)
}

/// What a runtime printed when it would not run the app: it may print
/// `Serving` before its Redis trigger gives up (Spin always does).
fn refusal(config: HostConfig) -> String {
    match config.try_start() {
        Ok(mut host) => {
            assert!(host.exits_within(WAIT), "kept running:\n{}", host.logs());
            std::thread::sleep(Duration::from_millis(300));
            host.logs()
        }
        Err(logs) => logs,
    }
}

fn a_wrong_password_stops_the_trigger_with_a_clear_message(rt: Runtime) {
    let redis = TlsRedis::start();
    let dir = TempDir::new("redis-tls-wrong");
    let wrong = "not-the-pw-4711";
    let logs = refusal(
        HostConfig::manifest(probe_app(&dir, &redis.host()))
            .runtime(rt)
            .variable("redis_address", &redis.url_with(wrong))
            .env("SSL_CERT_FILE", &redis.ca()),
    );
    assert!(logs.to_lowercase().contains("authentication failed"), "{logs}");
    assert!(logs.contains(&format!("127.0.0.1:{}", redis.port)), "names the server: {logs}");
    assert!(!logs.contains(wrong), "the password was shown: {logs}");
    if rt == Runtime::ShopHost {
        assert!(logs.contains(&format!("rediss://:***@127.0.0.1:{}", redis.port)), "{logs}");
    }
}

fn a_certificate_from_an_unknown_ca_is_refused(rt: Runtime) {
    let redis = TlsRedis::start();
    let dir = TempDir::new("redis-tls-ca");
    // No SSL_CERT_FILE: the system's roots do not know the test CA.
    let logs = refusal(
        HostConfig::manifest(probe_app(&dir, &redis.host())).runtime(rt).variable("redis_address", &redis.url()),
    );
    assert!(logs.contains("certificate"), "{logs}");
    assert!(!logs.contains(PASSWORD), "the password was shown: {logs}");
}

fn a_component_opening_with_a_wrong_password_gets_an_error(rt: Runtime) {
    let redis = TlsRedis::start();
    let dir = TempDir::new("redis-tls-open");
    let host = HostConfig::manifest(probe_app(&dir, &redis.host()))
        .runtime(rt)
        .variable("redis_address", &redis.url())
        .env("SSL_CERT_FILE", &redis.ca())
        .start();
    let wrong = "not-the-pw-4712";
    let r =
        host.get(&format!("/?do=publish&address={}&channel=events&payload=x", percent_encode(&redis.url_with(wrong))));
    // Both runtimes connect when a component opens: that is what fails.
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("Other") && r.text.to_lowercase().contains("authentication failed"), "{}", r.text);
    assert!(
        !r.text.contains(wrong) && !host.logs().contains(wrong),
        "the password was shown: {}\n{}",
        r.text,
        host.logs()
    );
    // With the right one, the message gets through (once the trigger is
    // subscribed: both runtimes may serve HTTP before that).
    let subscribed = eventually(WAIT, || (redis.subscribers("events") >= 1).then_some(()));
    assert!(subscribed.is_some(), "never subscribed: {}", host.logs());
    let r = host.get(&format!("/?do=publish&address={}&channel=events&payload=over-tls", percent_encode(&redis.url())));
    assert_eq!(r.status, 200, "{}", r.text);
    let received = eventually(WAIT, || {
        let r = host.get("/?do=kv&label=events&key=received");
        r.json()["value"].as_str().is_some_and(|v| v.lines().any(|l| l == "over-tls")).then_some(())
    });
    assert!(received.is_some(), "{}", host.logs());
}

fn a_user_and_a_database_in_the_address_are_used(rt: Runtime) {
    let redis = TlsRedis::start();
    let acl = redis.cli(&["ACL", "SETUSER", "shop", "on", ">shop-user-pw", "~*", "&*", "+@all"]);
    assert_eq!(acl.as_deref(), Some("OK"));
    let address = format!("rediss://shop:shop-user-pw@127.0.0.1:{}/1", redis.port);
    let dir = TempDir::new("redis-tls-user");
    let host = HostConfig::manifest(probe_app(&dir, &redis.host()))
        .runtime(rt)
        .variable("redis_address", &address)
        .env("SSL_CERT_FILE", &redis.ca())
        .start();
    let subscribed = eventually(WAIT, || (redis.subscribers("events") >= 1).then_some(()));
    assert!(subscribed.is_some(), "never subscribed: {}", host.logs());
    let clients = redis.cli(&["CLIENT", "LIST"]).unwrap_or_default();
    assert!(clients.lines().any(|c| c.contains("user=shop") && c.contains("db=1")), "{clients}");
    let r = host.get(&format!("/?do=publish&address={}&channel=events&payload=as-shop", percent_encode(&address)));
    assert_eq!(r.status, 200, "{}", r.text);
    let received = eventually(WAIT, || {
        let r = host.get("/?do=kv&label=events&key=received");
        r.json()["value"].as_str().is_some_and(|v| v.lines().any(|l| l == "as-shop")).then_some(())
    });
    assert!(received.is_some(), "{}", host.logs());
    assert!(!host.logs().contains("shop-user-pw"), "the password was logged:\n{}", host.logs());
}

fn a_password_in_allowed_outbound_hosts_is_no_allowed_host(rt: Runtime) {
    let redis = TlsRedis::start();
    let dir = TempDir::new("redis-tls-allowed");
    // The shop's own pattern: `allowed_outbound_hosts` names the variable,
    // which holds a password. Spin checks a template only against its
    // default at load, so the app loads; the first `open` is refused (Spin:
    // "Invalid allowed host", quoting the password; shop-host: no entry
    // matches). Written out literally, Spin refuses the app at load.
    let host = HostConfig::manifest(probe_app(&dir, "{{ redis_address }}"))
        .runtime(rt)
        .variable("redis_address", &redis.url())
        .env("SSL_CERT_FILE", &redis.ca())
        .start();
    let r = host.get(&format!("/?do=publish&address={}&channel=events&payload=x", percent_encode(&redis.url())));
    assert_eq!(r.status, 403, "{}", r.text);
}

on_both_runtimes!(
    a_checkout_over_tls_with_a_password_is_shipped_captured_and_mailed,
    a_wrong_password_stops_the_trigger_with_a_clear_message,
    a_certificate_from_an_unknown_ca_is_refused,
    a_component_opening_with_a_wrong_password_gets_an_error,
    a_user_and_a_database_in_the_address_are_used,
    a_password_in_allowed_outbound_hosts_is_no_allowed_host,
);
