//! shop-host behaves as Spin does for what it supports: routing, the
//! `spin-*` headers, store and outbound permissions, variables, files,
//! load-time refusals, and limits that fail one request, not the host.
//! Driven through the probe component (tests/fixtures/probe).

use std::time::{Duration, Instant};

use shop_tests::*;

/// Several triggers onto the probe; `ID` tells which one answered.
const ROUTES: &str = r#"
spin_manifest_version = 2
[application]
name = "routing"
[variables]
greeting = { default = "hello" }
secret_value = { required = true }

[[trigger.http]]
route = "/exact"
component = "exact"
[[trigger.http]]
route = "/wild/..."
component = "wild"
[[trigger.http]]
route = "/wild/deeper/..."
component = "deeper"
[[trigger.http]]
route = "/users/:id"
component = "user"
[[trigger.http]]
route = "/users/:id/files/..."
component = "user-files"
[[trigger.http]]
route = "/users/me"
component = "me"
[[trigger.http]]
route = { private = true }
component = "hidden"

[component.exact]
source = "{probe}"
environment = { ID = "exact" }
key_value_stores = ["mine"]
sqlite_databases = ["mydb"]
variables = { message = "{{ greeting }}, world", secret = "{{ secret_value }}" }
allowed_outbound_hosts = ["http://hidden.spin.internal", "http://127.0.0.1:*"]
files = [{ source = "assets", destination = "/assets" }]

[component.wild]
source = "{probe}"
environment = { ID = "wild" }
key_value_stores = ["theirs"]

[component.deeper]
source = "{probe}"
environment = { ID = "deeper" }

[component.user]
source = "{probe}"
environment = { ID = "user" }

[component.user-files]
source = "{probe}"
environment = { ID = "user-files" }

[component.me]
source = "{probe}"
environment = { ID = "me" }

[component.hidden]
source = "{probe}"
environment = { ID = "hidden" }
"#;

struct App {
    host: Host,
    _dir: TempDir,
}

fn start(extra_args: &[&str]) -> App {
    let dir = TempDir::new("routes");
    std::fs::create_dir_all(dir.path().join("assets")).unwrap();
    std::fs::write(dir.path().join("assets/note.txt"), "mounted file").unwrap();
    let manifest = write_manifest(dir.path(), ROUTES);
    let mut config = HostConfig::manifest(manifest).variable("secret_value", "s3cret");
    for a in extra_args {
        config = config.arg(a);
    }
    App { host: config.start(), _dir: dir }
}

fn answered_by(host: &Host, path: &str) -> Value {
    let r = host.get(path);
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.json()
}

#[test]
fn lines_printed_by_concurrent_instances_stay_whole() {
    let app = start(&[]);
    let h = &app.host;
    std::thread::scope(|s| {
        for thread in 0..8 {
            s.spawn(move || {
                for i in 0..25 {
                    let text = format!("line-{thread}-{i},{},{}", "x".repeat(40), "y".repeat(40));
                    assert_eq!(h.get(&format!("/exact?do=log&text={text}")).status, 200);
                }
            });
        }
    });
    eventually(Duration::from_secs(5), || (h.logs().matches(" end").count() >= 200).then_some(()))
        .unwrap_or_else(|| panic!("200 lines logged: {}", h.logs()));
    let expected_tail = format!(" {} {} end", "x".repeat(40), "y".repeat(40));
    let lines: Vec<String> = h.logs().lines().filter(|l| l.contains("line-")).map(str::to_owned).collect();
    assert_eq!(lines.len(), 200, "{lines:#?}");
    for line in &lines {
        let ok = line.starts_with("line-") && line.ends_with(&expected_tail) && line.matches("line-").count() == 1;
        assert!(ok, "a spliced line: {line:?}");
    }
}

#[test]
fn routes_pick_the_most_specific_match() {
    let app = start(&[]);
    let h = &app.host;
    for (path, id) in [
        ("/exact", "exact"),
        ("/wild", "wild"),
        ("/wild/a/b", "wild"),
        ("/wild/deeper/x", "deeper"),
        ("/users/42", "user"),
        ("/users/me", "me"),
        ("/users/42/files/a/b.txt", "user-files"),
    ] {
        assert_eq!(answered_by(h, path)["id"], id, "{path}");
    }
}

#[test]
fn unknown_route_is_a_json_404() {
    let app = start(&[]);
    for path in ["/", "/exact/more", "/users", "/users/42/other", "/nothing/here"] {
        let r = app.host.get(path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.error_code(), "not_found");
    }
}

#[test]
fn private_route_is_not_reachable_over_http_but_by_chaining() {
    let app = start(&[]);
    let r = app.host.get("/exact?do=outbound&url=http%3A%2F%2Fhidden.spin.internal%2Fsome%2Fpath%3Fq%3D1");
    assert_eq!(r.status, 200, "{}", r.text);
    let inner: Value = serde_json::from_str(r.json()["body"].as_str().unwrap()).unwrap();
    assert_eq!(inner["id"], "hidden");
    assert_eq!(inner["headers"]["spin-path-info"], "/some/path");
    assert_eq!(inner["headers"]["spin-matched-route"], "/...");
}

#[test]
fn spin_headers_describe_the_match() {
    let app = start(&[]);
    let body = answered_by(&app.host, "/users/42/files/docs/a.txt?x=1");
    let headers = &body["headers"];
    let base = app.host.url("");
    assert_eq!(headers["spin-full-url"], format!("{base}/users/42/files/docs/a.txt?x=1"));
    assert_eq!(headers["spin-path-info"], "/docs/a.txt");
    assert_eq!(headers["spin-matched-route"], "/users/:id/files/...");
    assert_eq!(headers["spin-raw-component-route"], "/users/:id/files/...");
    assert_eq!(headers["spin-component-route"], "/users/:id/files");
    assert_eq!(headers["spin-base-path"], "/");
    assert_eq!(headers["spin-path-match-id"], "42");
    assert!(headers["spin-client-addr"].as_str().unwrap().starts_with("127.0.0.1:"));

    let exact = answered_by(&app.host, "/exact");
    assert_eq!(exact["headers"]["spin-path-info"], "");
    assert_eq!(exact["headers"]["spin-component-route"], "/exact");
}

#[test]
fn a_component_opens_only_its_own_stores() {
    let app = start(&[]);
    let h = &app.host;
    let r = h.get("/exact?do=kv&label=mine&key=k&value=v1");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["value"], "v1");
    // Another component's label, and a label nobody declared.
    for label in ["theirs", "default", "nope"] {
        let r = h.get(&format!("/exact?do=kv&label={label}&key=k"));
        assert_eq!(r.status, 403, "{label}: {}", r.text);
        assert!(r.json()["error"].as_str().unwrap().contains("AccessDenied"), "{label}: {}", r.text);
    }
    // The other component sees its own store, not ours.
    let r = h.get("/wild?do=kv&label=theirs&key=k");
    assert_eq!(r.json()["value"], Value::Null);

    let r = h.get("/exact?do=sqlite&db=mydb");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json()["value"].as_str().unwrap().contains("Integer(42)"), "{}", r.text);
    let r = h.get("/wild?do=sqlite&db=mydb");
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.json()["error"].as_str().unwrap().contains("AccessDenied"), "{}", r.text);
}

#[test]
fn key_value_survives_a_restart() {
    let dir = TempDir::new("kv-restart");
    let state = dir.path().join("state");
    let app_dir = TempDir::new("kv-restart-app");
    std::fs::create_dir_all(app_dir.path().join("assets")).unwrap();
    let manifest = write_manifest(app_dir.path(), ROUTES);
    let config = || HostConfig::manifest(&manifest).variable("secret_value", "x").state_dir(&state);
    let host = config().start();
    assert_eq!(host.get("/exact?do=kv&label=mine&key=k&value=kept").status, 200);
    host.kill();
    let host = config().start();
    assert_eq!(host.get("/exact?do=kv&label=mine&key=k").json()["value"], "kept");
}

#[test]
fn variables_are_the_components_own_rendered_templates() {
    let app = start(&[]);
    let h = &app.host;
    assert_eq!(h.get("/exact?do=variable&name=message").json()["value"], "hello, world");
    assert_eq!(h.get("/exact?do=variable&name=secret").json()["value"], "s3cret");
    // Application variables are not visible directly, nor another's.
    let r = h.get("/exact?do=variable&name=greeting");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("Undefined"), "{}", r.text);
    let r = h.get("/wild?do=variable&name=message");
    assert_eq!(r.status, 404);
    let r = h.get("/exact?do=variable&name=Not-Valid");
    assert!(r.json()["error"].as_str().unwrap().contains("InvalidName"), "{}", r.text);
}

#[test]
fn missing_required_variable_stops_the_start() {
    let dir = TempDir::new("novar");
    std::fs::create_dir_all(dir.path().join("assets")).unwrap();
    let manifest = write_manifest(dir.path(), ROUTES);
    let err = HostConfig::manifest(manifest).try_start().err().expect("must not start");
    assert!(err.contains("secret_value"), "{err}");
}

#[test]
fn outbound_http_only_to_allowed_hosts() {
    let app = start(&[]);
    let h = &app.host;
    // A real server on loopback to call.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming().take(1) {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\npong");
        }
    });
    let url = format!("http%3A%2F%2F127.0.0.1%3A{port}%2Fping");
    let r = h.get(&format!("/exact?do=outbound&url={url}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["body"], "pong");
    // `wild` may call nothing.
    let r = h.get(&format!("/wild?do=outbound&url={url}"));
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(r.json()["error"].as_str().unwrap().contains("HttpRequestDenied"), "{}", r.text);
    let r = h.get("/wild?do=outbound&url=http%3A%2F%2Fhidden.spin.internal%2F");
    assert!(r.json()["error"].as_str().unwrap().contains("HttpRequestDenied"), "{}", r.text);
    assert!(h.logged("allowed_outbound_hosts"), "the denial is explained in the log");
}

#[test]
fn environment_and_files_reach_the_component() {
    let app = start(&[]);
    let h = &app.host;
    assert_eq!(h.get("/exact?do=env&name=ID").json()["value"], "exact");
    let r = h.get("/exact?do=file&path=/assets/note.txt");
    assert_eq!(r.json()["text"], "mounted file", "{}", r.text);
    // Not mounted for another component.
    assert_eq!(h.get("/wild?do=file&path=/assets/note.txt").status, 404);
}

#[test]
fn a_misbehaving_component_fails_only_its_own_request() {
    let app = start(&["--request-timeout-secs", "2", "--max-instance-memory-mib", "64"]);
    let h = &app.host;
    let r = h.get("/exact?do=trap");
    assert_eq!(r.status, 500);
    assert_eq!(r.error_code(), "component_failed");
    let r = h.get("/exact?do=loop");
    assert_eq!(r.status, 504);
    assert_eq!(r.error_code(), "timeout");
    let r = h.get("/exact?do=alloc");
    assert_eq!(r.status, 500);
    assert_eq!(r.error_code(), "memory_limit_exceeded");
    assert!(app.host.logged("component `exact` exceeded its memory limit of 64 MiB"), "{}", app.host.logs());
    // Still serving.
    assert_eq!(answered_by(h, "/exact")["id"], "exact");
}

/// Two components of one file: `tight` with its own limits in its
/// `tool.shop-host` table, `roomy` with the host's defaults.
const LIMITED: &str = r#"
spin_manifest_version = 2
[application]
name = "limits"
[[trigger.http]]
route = "/tight"
component = "tight"
[[trigger.http]]
route = "/roomy"
component = "roomy"
[component.tight]
source = "{probe}"
[component.tight.tool.shop-host]
max_instance_memory_mib = 16
request_timeout_secs = 1
max_concurrent_instances = 1
[component.roomy]
source = "{probe}"
"#;

#[test]
fn a_components_own_limits_fail_only_its_own_requests() {
    let dir = TempDir::new("limits");
    let host = HostConfig::manifest(write_manifest(dir.path(), LIMITED)).start();
    // Memory: 32 MiB is over tight's 16 and within roomy's default 128.
    let r = host.get("/tight?do=alloc&mib=32");
    assert_eq!((r.status, r.error_code().as_str()), (500, "memory_limit_exceeded"), "{}", r.text);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("16 MiB"), "{}", r.text);
    assert!(host.logged("component `tight` exceeded its memory limit of 16 MiB (max_instance_memory_mib)"), "{}", host.logs());
    let r = host.get("/roomy?do=alloc&mib=32");
    assert_eq!((r.status, r.json()["allocated_mib"].as_u64()), (200, Some(32)), "{}", r.text);
    assert_eq!(host.get("/tight?do=alloc&mib=4").status, 200, "within its limit it works");

    // Time and concurrency: a loop holds tight's one instance until its 1 s
    // runs out; meanwhile tight turns a second request away, roomy answers.
    let address = host.url("").trim_start_matches("http://").trim_end_matches('/').to_string();
    let looping = std::thread::spawn(move || {
        use std::io::{Read, Write};
        loop {
            let started = Instant::now();
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            write!(stream, "GET /tight?do=loop HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n").unwrap();
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            let status: u16 = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            // The previous request's instance may not have given its slot
            // back yet (its answer is out before it ends): retry, as the
            // 503 says.
            if status != 503 {
                return (status, started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let busy = eventually(Duration::from_secs(5), || {
        let r = host.get("/tight");
        (r.status == 503).then_some(r)
    })
    .unwrap_or_else(|| panic!("tight never reported being at its instance limit:\n{}", host.logs()));
    assert_eq!(busy.error_code(), "overloaded", "{}", busy.text);
    assert!(busy.json()["error"]["message"].as_str().unwrap().contains("limit of 1 concurrent instances"), "{}", busy.text);
    assert_eq!(host.get("/roomy").status, 200);
    let (status, took) = looping.join().unwrap();
    assert_eq!(status, 504);
    assert!(took < Duration::from_secs(5), "tight's own 1 s limit, not the host's 30 s: {took:?}");
    assert!(host.logged("component `tight` exceeded its time limit of 1 s (request_timeout_secs)"), "{}", host.logs());
    assert!(host.logged("is at its limit of 1 concurrent instances"), "{}", host.logs());
    assert_eq!(host.get("/tight").status, 200, "its slot is free again");
}

/// The tool table is shop-host's alone: Spin runs the same manifest, and the
/// limits do not apply there.
#[test]
fn spin_runs_a_manifest_with_a_shop_host_tool_table_and_ignores_it() {
    if !Runtime::Spin.available() {
        return;
    }
    let dir = TempDir::new("limits-spin");
    let host = HostConfig::manifest(write_manifest(dir.path(), LIMITED)).runtime(Runtime::Spin).start();
    let r = host.get("/tight?do=alloc&mib=32");
    assert_eq!((r.status, r.json()["allocated_mib"].as_u64()), (200, Some(32)), "{}", r.text);
}

#[test]
fn one_log_line_per_request() {
    let app = start(&[]);
    app.host.get("/users/7");
    app.host.get("/nowhere");
    assert!(app.host.logged("GET /nowhere"), "{}", app.host.logs());
    let logs = app.host.logs();
    let line = logs.lines().find(|l| l.contains("GET /users/7")).unwrap_or_else(|| panic!("{logs}"));
    assert!(line.contains("-> user 200"), "{line}");
    assert!(line.contains("ms"), "{line}");
    assert!(logs.lines().any(|l| l.contains("GET /nowhere -> - 404")), "{logs}");
}

#[test]
fn a_component_importing_what_the_host_lacks_is_refused_at_load() {
    let dir = TempDir::new("unknown-import");
    let component = wat::parse_str(
        r#"(component
            (import "shop:missing/thing@1.0.0" (instance (export "poke" (func))))
        )"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("odd.wasm"), component).unwrap();
    let manifest = write_manifest(
        dir.path(),
        r#"
spin_manifest_version = 2
[application]
name = "odd"
[[trigger.http]]
route = "/..."
component = "odd"
[component.odd]
source = "odd.wasm"
"#,
    );
    let err = HostConfig::manifest(manifest).try_start().err().expect("must be refused");
    assert!(err.contains("component `odd`"), "{err}");
    assert!(err.contains("shop:missing/thing@1.0.0"), "{err}");
}

#[test]
fn an_invalid_manifest_names_file_key_and_problem() {
    let dir = TempDir::new("bad-manifest");
    let manifest = write_manifest(
        dir.path(),
        r#"
spin_manifest_version = 2
[application]
name = "bad"
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "{probe}"
key_value_store = ["x"]
"#,
    );
    let err = HostConfig::manifest(&manifest).try_start().err().expect("must be refused");
    assert!(err.contains(&manifest.display().to_string()), "{err}");
    assert!(err.contains("key_value_store"), "{err}");
    assert!(err.contains("unknown field"), "{err}");
}
