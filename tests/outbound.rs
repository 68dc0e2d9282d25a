//! Outbound PostgreSQL, MQTT and `wasi:sockets` TCP, on shop-host and on
//! real Spin alike: the probe component (tests/fixtures/probe) talks to a
//! real PostgreSQL, a real mosquitto and a TCP echo server the harness
//! starts on free loopback ports, as far as each component's
//! `allowed_outbound_hosts` lets it. What the servers received is checked
//! from outside (psql, an MQTT subscriber, the echo server's own record),
//! and a denied connection must not reach the server at all.

use std::time::Duration;

use shop_tests::*;

/// Starts the probe on `rt`, allowed the `allowed` outbound hosts.
fn probe(rt: Runtime, allowed: &[String]) -> (Host, TempDir) {
    let dir = TempDir::new("outbound");
    let hosts: Vec<String> = allowed.iter().map(|h| format!("{h:?}")).collect();
    let manifest = write_manifest(
        dir.path(),
        &format!(
            r#"
spin_manifest_version = 2
[application]
name = "outbound"
[[trigger.http]]
route = "/..."
component = "probe"
[component.probe]
source = "{{probe}}"
allowed_outbound_hosts = [{}]
"#,
            hosts.join(", ")
        ),
    );
    (HostConfig::manifest(manifest).runtime(rt).start(), dir)
}

/// Percent-encodes a query value (everything but unreserved characters).
fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /?do=<action>&k=v…`, the values encoded.
fn ask(host: &Host, action: &str, args: &[(&str, &str)]) -> Reply {
    let query: String = args.iter().map(|(k, v)| format!("&{k}={}", enc(v))).collect();
    host.get(&format!("/?do={action}{query}"))
}

fn error_of(r: &Reply) -> String {
    r.json()["error"].as_str().unwrap_or_else(|| panic!("no error text: {}", r.text)).to_string()
}

// ---- PostgreSQL -------------------------------------------------------------------

fn pg(host: &Host, address: &str, sql: &str, params: Value) -> Reply {
    ask(host, "pg", &[("address", address), ("sql", sql), ("params", &params.to_string())])
}

fn pg_execute(host: &Host, address: &str, sql: &str, params: Value) -> Reply {
    ask(host, "pg", &[("address", address), ("sql", sql), ("params", &params.to_string()), ("execute", "1")])
}

fn postgres_values_round_trip(rt: Runtime) {
    let db = PostgresServer::start();
    let (host, _dir) = probe(rt, &[db.allowed_host()]);
    let address = db.address();
    let r = pg_execute(
        &host,
        &address,
        "CREATE TABLE things (id int PRIMARY KEY, name text, price numeric(10,2), at timestamp, \
         doc jsonb, uid uuid, counts int[], span int4range)",
        json!([]),
    );
    assert_eq!((r.status, &r.json()["affected"]), (200, &json!(0)), "{}", r.text);
    let insert = "INSERT INTO things VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    let r = pg_execute(
        &host,
        &address,
        insert,
        json!([
            {"int32": 7},
            {"str": "Grüße, 'world'"},
            {"decimal": "1234.50"},
            {"datetime": [2024, 2, 29, 13, 45, 30, 250_000_000]},
            {"jsonb": {"tags": ["a", "b"], "n": 1}},
            {"uuid": "6f1c2a9e-8d4b-4c3a-9f0e-1b2c3d4e5f60"},
            {"array-int32": [1, null, 3]},
            {"range-int32": [[1, "inclusive"], [10, "inclusive"]]},
        ]),
    );
    assert_eq!((r.status, &r.json()["affected"]), (200, &json!(1)), "{}", r.text);
    let r = pg_execute(&host, &address, insert, json!([{"int32": 8}, null, null, null, null, null, null, null]));
    assert_eq!((r.status, &r.json()["affected"]), (200, &json!(1)), "{}", r.text);

    // The rows are in the database, as PostgreSQL itself shows them.
    assert_eq!(
        db.psql(PostgresServer::DATABASE, "SELECT id, name, price, at, doc, uid, counts, span FROM things ORDER BY id"),
        "7|Grüße, 'world'|1234.50|2024-02-29 13:45:30.25|{\"n\": 1, \"tags\": [\"a\", \"b\"]}|\
         6f1c2a9e-8d4b-4c3a-9f0e-1b2c3d4e5f60|{1,NULL,3}|[1,11)\n8|||||||"
    );

    // And read back through the component, with a parameter in WHERE.
    let r = pg(&host, &address, "SELECT id, name, price, at, doc, uid, counts, span FROM things WHERE id = $1", json!([{"int32": 7}]));
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    assert_eq!(body["rows"], 1, "{}", r.text);
    let columns: Vec<(String, String)> = body["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["type"].as_str().unwrap().to_string()))
        .collect();
    let expected_columns = [
        ("id", "DbDataType::Int32"),
        ("name", "DbDataType::Str"),
        ("price", "DbDataType::Decimal"),
        ("at", "DbDataType::Datetime"),
        ("doc", "DbDataType::Jsonb"),
        ("uid", "DbDataType::Uuid"),
        ("counts", "DbDataType::ArrayInt32"),
        ("span", "DbDataType::RangeInt32"),
    ]
    .map(|(n, t)| (n.to_string(), t.to_string()));
    assert_eq!(columns, expected_columns, "{}", r.text);
    let row: Vec<&str> = body["values"][0].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(row[0], "DbValue::Int32(7)");
    assert_eq!(row[1], r#"DbValue::Str("Grüße, 'world'")"#);
    assert_eq!(row[2], r#"DbValue::Decimal("1234.50")"#);
    assert_eq!(row[3], "DbValue::Datetime((2024, 2, 29, 13, 45, 30, 250000000))");
    let doc: Value = serde_json::from_str(row[4].strip_prefix("Jsonb(").and_then(|d| d.strip_suffix(')')).unwrap()).unwrap();
    assert_eq!(doc, json!({"tags": ["a", "b"], "n": 1}));
    assert_eq!(row[5], r#"DbValue::Uuid("6f1c2a9e-8d4b-4c3a-9f0e-1b2c3d4e5f60")"#);
    assert_eq!(row[6], "DbValue::ArrayInt32([Some(1), None, Some(3)])");
    // int4range [1,10] is stored as PostgreSQL's canonical [1,11).
    assert_eq!(row[7], "DbValue::RangeInt32((Some((1, RangeBoundKind::Inclusive)), Some((11, RangeBoundKind::Exclusive))))");

    // NULLs of every type come back as db-null.
    let r = pg(&host, &address, "SELECT name, price, at, doc, uid, counts, span FROM things WHERE id = 8", json!([]));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["values"], json!([vec!["DbValue::DbNull"; 7]]), "{}", r.text);

    // A query without rows: no rows. (Spin 4.1.0-pre0 never answers one:
    // its `query` waits for a first row that does not come.)
    if rt == Runtime::ShopHost {
        let r = pg(&host, &address, "SELECT id FROM things WHERE id < 0", json!([]));
        assert_eq!((r.status, &r.json()["rows"], &r.json()["values"]), (200, &json!(0), &json!([])), "{}", r.text);
        assert_eq!(r.json()["columns"][0]["name"], "id", "{}", r.text);
    }
}

fn postgres_address_not_allowed_is_refused(rt: Runtime) {
    let db = PostgresServer::start();
    // A listener on another port, to see that nothing connects there.
    let other = EchoServer::start("127.0.0.1");
    let (host, _dir) = probe(rt, &[db.allowed_host()]);
    let denied = [
        // A port not allowed.
        format!("host=127.0.0.1 port={} user=postgres password=postgres dbname={}", other.port(), PostgresServer::DATABASE),
        // The server itself, but by a name: only 127.0.0.1 is allowed.
        format!("host=localhost port={} user=postgres password=postgres dbname={}", db.port, PostgresServer::DATABASE),
        // The URL form.
        format!("postgres://postgres:postgres@127.0.0.1:{}/{}", other.port(), PostgresServer::DATABASE),
        // The server's own Unix socket: never, whatever is allowed.
        format!("host={} port={} user=postgres dbname={}", db.socket_dir().display(), db.port, PostgresServer::DATABASE),
    ];
    for address in &denied {
        let r = pg(&host, address, "SELECT 1", json!([]));
        assert_eq!((r.status, r.json()["stage"].as_str()), (403, Some("open")), "{address}: {}", r.text);
        let error = error_of(&r);
        assert!(error.starts_with("Error::ConnectionFailed("), "{rt:?} {address}: {error}");
        if !address.starts_with("host=/") {
            assert!(error.contains("not permitted"), "{rt:?} {address}: {error}");
        }
        eprintln!("{rt:?} refuses {address:?}: {error}");
    }
    assert_eq!(other.connections(), 0, "a denied address was connected to");
    // The allowed one works meanwhile.
    let r = pg(&host, &db.address(), "SELECT 40 + 2 AS answer", json!([]));
    assert_eq!((r.status, &r.json()["values"]), (200, &json!([["DbValue::Int32(42)"]])), "{}", r.text);
}

fn postgres_wrong_password_fails_cleanly(rt: Runtime) {
    let db = PostgresServer::start();
    let (host, _dir) = probe(rt, &[db.allowed_host()]);
    let r = pg(&host, &db.address_with("not-the-password"), "SELECT 1", json!([]));
    assert_eq!((r.status, r.json()["stage"].as_str()), (403, Some("open")), "{}", r.text);
    let error = error_of(&r);
    assert!(error.starts_with("Error::ConnectionFailed("), "{rt:?}: {error}");
    assert!(error.contains("password authentication failed for user"), "{rt:?}: {error}");
    eprintln!("{rt:?} with a wrong password: {error}");
    // The runtime is still serving, and the right password works.
    let r = pg(&host, &db.address(), "SELECT current_user::text", json!([]));
    assert_eq!((r.status, &r.json()["values"]), (200, &json!([[r#"DbValue::Str("postgres")"#]])), "{}", r.text);
}

fn postgres_bad_sql_returns_the_database_error(rt: Runtime) {
    let db = PostgresServer::start();
    let (host, _dir) = probe(rt, &[db.allowed_host()]);
    for (sql, code, words, execute) in [
        ("SELEC 1", "42601", "syntax error", false),
        ("SELECT * FROM no_such_table", "42P01", "does not exist", false),
        ("INSERT INTO no_such_table VALUES (1)", "42P01", "does not exist", true),
    ] {
        let r = if execute { pg_execute(&host, &db.address(), sql, json!([])) } else { pg(&host, &db.address(), sql, json!([])) };
        assert_eq!((r.status, r.json()["stage"].as_str()), (500, Some("query")), "{sql}: {}", r.text);
        assert_eq!(r.json()["code"], code, "{sql}: {}", r.text);
        let error = error_of(&r);
        assert!(error.starts_with("Error::QueryFailed(QueryError::DbError(") && error.contains(words), "{rt:?} {sql}: {error}");
        eprintln!("{rt:?} on {sql:?}: {error}");
    }
}

// ---- MQTT -------------------------------------------------------------------------

fn publish(host: &Host, address: &str, password: &str, topic: &str, payload: &str) -> Reply {
    ask(
        host,
        "mqtt",
        &[("address", address), ("username", MQTT_USER), ("password", password), ("topic", topic), ("payload", payload)],
    )
}

fn mqtt_publish_reaches_a_subscriber(rt: Runtime) {
    let broker = MosquittoServer::start();
    let (host, _dir) = probe(rt, &[broker.url()]);
    let subscriber = broker.subscribe("#");
    let address = format!("{}?client_id=probe-ok", broker.url());
    for payload in ["first message", "zweite Nachricht ✓"] {
        let r = publish(&host, &address, MQTT_PASSWORD, "shop/outbound", payload);
        assert_eq!((r.status, &r.json()["published"]), (200, &json!(true)), "{}", r.text);
        // At least once: the broker has it when publish returns.
        let got = subscriber.next_message(Duration::from_secs(10));
        assert_eq!(got, Some(("shop/outbound".to_string(), payload.as_bytes().to_vec())), "{}", broker.logs());
    }
}

fn mqtt_wrong_password_is_an_error(rt: Runtime) {
    let broker = MosquittoServer::start();
    let (host, _dir) = probe(rt, &[broker.url()]);
    let subscriber = broker.subscribe("#");
    let r = publish(&host, &format!("{}?client_id=probe-bad", broker.url()), "wrong", "shop/outbound", "must not arrive");
    assert!(r.status >= 400, "{}", r.text);
    let error = error_of(&r);
    assert!(error.starts_with("Error::ConnectionFailed("), "{rt:?}: {error}");
    eprintln!("{rt:?} with a wrong MQTT password ({}): {error}", r.json()["stage"]);
    assert_eq!(subscriber.next_message(Duration::from_secs(2)), None, "published despite the wrong password");
}

fn mqtt_address_not_allowed_is_refused(rt: Runtime) {
    let broker = MosquittoServer::start();
    let (host, _dir) = probe(rt, &[broker.url()]);
    let subscriber = broker.subscribe("#");
    // The same broker by a name: only 127.0.0.1 is allowed.
    let address = format!("mqtt://localhost:{}?client_id=probe-denied", broker.port);
    let r = publish(&host, &address, MQTT_PASSWORD, "shop/outbound", "must not arrive");
    assert_eq!((r.status, r.json()["stage"].as_str()), (403, Some("open")), "{}", r.text);
    let error = error_of(&r);
    assert!(error.starts_with("Error::ConnectionFailed(") && error.contains("not permitted"), "{rt:?}: {error}");
    eprintln!("{rt:?} refuses {address}: {error}");
    assert_eq!(subscriber.next_message(Duration::from_secs(2)), None, "published to a denied address");
}

// ---- TCP (wasi:sockets) -----------------------------------------------------------

fn tcp(host: &Host, address: &str, payload: &str) -> Reply {
    ask(host, "tcp", &[("address", address), ("payload", payload)])
}

/// A refused connect: permission denied, and nothing reached `server`.
fn assert_refused(rt: Runtime, host: &Host, address: &str, server: &EchoServer) {
    let r = tcp(host, address, "must not arrive");
    assert_eq!((r.status, r.json()["stage"].as_str()), (403, Some("connect")), "{rt:?} {address}: {}", r.text);
    assert_eq!(r.json()["kind"], "PermissionDenied", "{rt:?} {address}: {}", r.text);
    eprintln!("{rt:?} refuses tcp {address}: {}", error_of(&r));
    assert_eq!((server.connections(), server.received()), (0, String::new()), "{rt:?}: {address} was reached");
}

fn tcp_echo_through_an_allowed_address(rt: Runtime) {
    let echo = EchoServer::start("127.0.0.1");
    let (host, _dir) = probe(rt, &[format!("*://127.0.0.1:{}", echo.port())]);
    let r = tcp(&host, &echo.addr.to_string(), "ping over wasi:sockets");
    assert_eq!((r.status, &r.json()["echo"]), (200, &json!("ping over wasi:sockets")), "{}", r.text);
    assert_eq!((echo.connections(), echo.received()), (1, "ping over wasi:sockets".to_string()));
}

fn tcp_to_a_port_or_address_not_allowed_is_refused(rt: Runtime) {
    let allowed = EchoServer::start("127.0.0.1");
    let other_port = EchoServer::start("127.0.0.1");
    let other_ip = EchoServer::start("127.0.0.2");
    let by_name = EchoServer::start("127.0.0.1");
    let (host, _dir) = probe(
        rt,
        &[
            format!("*://127.0.0.1:{}", allowed.port()),
            format!("*://127.0.0.1:{}", other_ip.port()),
            // A name never matches an address.
            format!("*://localhost:{}", by_name.port()),
        ],
    );
    assert_refused(rt, &host, &other_port.addr.to_string(), &other_port);
    assert_refused(rt, &host, &other_ip.addr.to_string(), &other_ip);
    assert_refused(rt, &host, &by_name.addr.to_string(), &by_name);
    let r = tcp(&host, &allowed.addr.to_string(), "still allowed");
    assert_eq!((r.status, &r.json()["echo"]), (200, &json!("still allowed")), "{}", r.text);
}

fn tcp_ip_ranges_allow_the_addresses_in_them(rt: Runtime) {
    // 127.0.0.2: an address of the range other than the usual one.
    let inside = EchoServer::start("127.0.0.2");
    let outside = EchoServer::start("127.0.0.1");
    let (host, _dir) = probe(
        rt,
        &[format!("*://127.0.0.0/24:{}", inside.port()), format!("*://10.0.0.0/8:{}", outside.port())],
    );
    let r = tcp(&host, &inside.addr.to_string(), "inside the range");
    assert_eq!((r.status, &r.json()["echo"]), (200, &json!("inside the range")), "{}", r.text);
    assert_eq!(inside.received(), "inside the range");
    assert_refused(rt, &host, &outside.addr.to_string(), &outside);
    // The range's port only.
    assert_refused(rt, &host, &format!("127.0.0.2:{}", outside.port()), &outside);
}

on_both_runtimes!(
    postgres_values_round_trip,
    postgres_address_not_allowed_is_refused,
    postgres_wrong_password_fails_cleanly,
    postgres_bad_sql_returns_the_database_error,
    mqtt_publish_reaches_a_subscriber,
    mqtt_wrong_password_is_an_error,
    mqtt_address_not_allowed_is_refused,
    tcp_echo_through_an_allowed_address,
    tcp_to_a_port_or_address_not_allowed_is_refused,
    tcp_ip_ranges_allow_the_addresses_in_them,
);
