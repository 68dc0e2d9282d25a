//! What the runtimes tell about a checkout: one OpenTelemetry trace from the
//! request through every saga step, dependency call, event and consumer
//! (received by a real OTLP/HTTP collector, tests/otlp.rs); nothing
//! exported without the variables; JSON log lines tied by trace and
//! checkout id; Prometheus metrics that count a known workload and pass
//! `promtool check metrics`.

use std::collections::HashMap;
use std::time::Duration;

use shop_tests::otlp::{self, Collector, Span};
use shop_tests::*;

const SKU: &str = "COF-001";

fn add(h: &Host, cart: &str, sku: &str, quantity: u32) {
    let r = h.post(&format!("/api/carts/{cart}/items"), &json!({"sku": sku, "quantity": quantity}));
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
}

/// Places one order; its checkout id.
fn place_order(h: &Host, cart: &str) -> String {
    add(h, cart, SKU, 1);
    let r = h.request(
        "POST",
        "/api/checkout",
        &[("content-type", "application/json"), ("idempotency-key", cart)],
        Some(checkout_body(cart, "erika@example.com", "standard").to_string().as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["checkout_id"].as_str().expect("a checkout id").to_string()
}

fn traced(rt: Runtime, collector: &Collector) -> HostConfig {
    HostConfig::shop_on(rt)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint())
        .env("OTEL_SERVICE_NAME", "shop")
        // Batches go out every 200 ms instead of every 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
}

/// Whether `ancestor` is `span` or above it.
fn descends(span: &Span, ancestor: &Span, by_id: &HashMap<&str, &Span>) -> bool {
    let mut at = Some(span);
    let mut hops = 0;
    while let Some(s) = at {
        if s.span_id == ancestor.span_id {
            return true;
        }
        at = by_id.get(s.parent_span_id.as_str()).copied();
        hops += 1;
        if hops > 64 {
            return false;
        }
    }
    false
}

/// The consumers' spans every placed order's trace ends with (auto-ship
/// on): fulfillment takes the order, payment captures on shipment,
/// orders and notifications hear of both.
const CONSUMERS: &[&str] = &[
    "fulfillment consumes order.placed",
    "notifications consumes order.placed",
    "payment consumes fulfillment.shipped",
    "orders consumes fulfillment.shipped",
    "notifications consumes fulfillment.shipped",
    "orders consumes payment.captured",
    "notifications consumes payment.captured",
];

fn one_checkout_is_one_trace_from_the_request_to_the_last_mail(rt: Runtime) {
    let collector = Collector::start("127.0.0.1:0", otlp::Keep::Memory).expect("a collector");
    let h = traced(rt, &collector).start();
    let checkout_id = place_order(&h, "traced");
    let steps: Vec<String> = h.get(&format!("/api/checkout/{checkout_id}")).json()["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();

    // Each runtime exports in batches, and Spin's triggers are processes of
    // their own: wait until the whole story is in — every consumer, the
    // saga with each step, and the request at its root.
    let complete = |here: &[Span]| {
        let ids: std::collections::HashSet<&str> = here.iter().map(|s| s.span_id.as_str()).collect();
        let mut roots = here.iter().filter(|s| !ids.contains(s.parent_span_id.as_str()));
        let rooted = matches!((roots.next(), roots.next()), (Some(root), None) if root.kind == "server");
        rooted
            && CONSUMERS.iter().all(|c| here.iter().any(|s| s.name == *c))
            && steps.iter().all(|step| here.iter().any(|s| s.name == format!("saga step {step}")))
    };
    let in_trace = || {
        let spans = collector.spans();
        let traces = otlp::traces_of(&spans, &checkout_id);
        let [trace] = traces.as_slice() else { return None };
        Some(spans.into_iter().filter(|s| &s.trace_id == trace).collect::<Vec<Span>>())
    };
    let spans = eventually(Duration::from_secs(60), || in_trace().filter(|here| complete(here))).unwrap_or_else(|| {
        let spans = collector.spans();
        let traces = otlp::traces_of(&spans, &checkout_id);
        let drawn: String = traces.iter().map(|t| otlp::waterfall(&spans, t)).collect();
        panic!("no single, whole trace of {checkout_id} ({} traces, {} spans):\n{drawn}", traces.len(), spans.len())
    });
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let named = |name: &str| spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no span `{name}` in\n{}", otlp::waterfall(&spans, &spans[0].trace_id)));

    // One root: the request as the runtime received it.
    let roots: Vec<&Span> = spans.iter().filter(|s| !by_id.contains_key(s.parent_span_id.as_str())).collect();
    let summary: Vec<(&str, &str, &str)> = roots.iter().map(|s| (s.name.as_str(), s.span_id.as_str(), s.parent_span_id.as_str())).collect();
    assert_eq!(roots.len(), 1, "every span but the request's has its parent in the trace: {summary:#?}");
    assert_eq!(roots[0].kind, "server");
    assert!(roots[0].name.starts_with("POST"), "{:?}", roots[0].name);

    // The saga, inside the request: one span per step of its journal.
    let saga = named(&format!("checkout {checkout_id}"));
    assert!(descends(saga, roots[0], &by_id));
    assert_eq!(saga.attribute("shop.correlation_id"), Some(checkout_id.as_str()));
    for step in &steps {
        let span = named(&format!("saga step {step}"));
        assert_eq!(span.parent_span_id, saga.span_id, "step {step} is the saga's child");
        assert_eq!(span.status, "ok", "{step}");
    }

    // The event, decided in a step and published in the trace, whoever
    // publishes it; each consumer continues the trace below it.
    let publish = named("publish order.placed");
    assert!(descends(publish, saga, &by_id) || descends(publish, roots[0], &by_id));
    for consumer in CONSUMERS {
        let span = named(consumer);
        assert_eq!(span.kind, "consumer");
        assert_eq!(span.attribute("shop.correlation_id"), Some(checkout_id.as_str()), "{consumer}");
        assert!(descends(span, saga, &by_id), "{consumer} descends from the saga:\n{}", otlp::waterfall(&spans, &saga.trace_id));
    }
    // Capture follows shipment: payment's consumer is below fulfillment's.
    assert!(descends(named("payment consumes fulfillment.shipped"), named("fulfillment consumes order.placed"), &by_id));
    assert!(descends(named("orders consumes payment.captured"), named("payment consumes fulfillment.shipped"), &by_id));

    if rt == Runtime::ShopHost {
        // What only the host sees: each dependency call inside its step,
        // the Redis publish, the deliveries, the SQLite statements.
        let reserve = spans
            .iter()
            .find(|s| s.name.starts_with("checkout → shop:inventory/inventory") && s.name.ends_with(".reserve"))
            .expect("the reserve call");
        assert_eq!(reserve.parent_span_id, named("saga step reserve_stock").span_id);
        assert_eq!(reserve.kind, "client");
        let authorize = spans.iter().find(|s| s.name.ends_with(".authorize")).expect("the authorize call");
        assert_eq!(authorize.parent_span_id, named("saga step authorize_payment").span_id);
        assert!(spans.iter().any(|s| s.name == "shop.order.placed publish" && s.kind == "producer"));
        let delivery = spans.iter().find(|s| s.name == "shop.order.placed receive" && s.attribute("component") == Some("fulfillment")).expect("a delivery");
        assert_eq!(named("fulfillment consumes order.placed").parent_span_id, delivery.span_id);
        assert!(spans.iter().any(|s| s.name.starts_with("sqlite INSERT") && s.attribute("db.namespace").is_some()));
        assert_eq!(roots[0].attribute("http.response.status_code"), Some("201"));
        assert_eq!(roots[0].service, "shop");
    }
}


/// Without an OTLP endpoint nothing goes anywhere: a collector on the
/// exporter's default address (127.0.0.1:4318) hears nothing.
#[test]
fn without_the_variables_nothing_is_exported() {
    let Ok(collector) = Collector::start("127.0.0.1:4318", otlp::Keep::Memory) else {
        eprintln!("skipped: 127.0.0.1:4318 (the OTLP default) is taken on this machine");
        return;
    };
    let h = HostConfig::shop().env("OTEL_EXPORTER_OTLP_ENDPOINT", "").env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").start();
    place_order(&h, "untraced");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(collector.spans().len(), 0);
}

/// `--log-format json`: every line an object; the request that placed the
/// order and every delivery of its events carry the same trace id and the
/// checkout id, so grepping `chk_…` finds the whole story.
#[test]
fn json_log_lines_tie_a_checkout_together_by_trace_and_checkout_id() {
    let h = HostConfig::shop().arg("--log-format").arg("json").start();
    let checkout_id = place_order(&h, "logged");
    let lines = eventually(Duration::from_secs(30), || {
        let logs = h.logs();
        let lines: Vec<Value> = logs.lines().filter(|l| l.contains(&checkout_id)).filter_map(|l| serde_json::from_str(l).ok()).collect();
        let components: std::collections::BTreeSet<String> =
            lines.iter().filter_map(|l| l["span"]["component"].as_str().map(String::from)).collect();
        ["checkout", "fulfillment", "payment", "orders", "notifications"].iter().all(|c| components.contains(*c)).then_some(lines)
    })
    .unwrap_or_else(|| panic!("not every service logged {checkout_id}:\n{}", h.logs()));
    let request = lines
        .iter()
        .find(|l| l["fields"]["message"].as_str().is_some_and(|m| m.starts_with("POST /api/checkout ")))
        .expect("the request's line");
    let trace_id = request["span"]["trace_id"].as_str().expect("a trace id");
    assert_eq!(trace_id.len(), 32);
    assert_eq!(request["span"]["correlation_id"], checkout_id.as_str());
    let deliveries: Vec<&Value> = lines.iter().filter(|l| l["fields"]["message"].as_str().is_some_and(|m| m.starts_with("REDIS "))).collect();
    assert!(deliveries.len() >= 4, "{deliveries:#?}");
    for line in deliveries {
        assert_eq!(line["span"]["trace_id"], trace_id, "{line}");
    }
    // Every line of the log is JSON.
    for line in h.logs().lines().filter(|l| l.starts_with('{')) {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
}

fn scrape(url: &str) -> String {
    ureq::get(url).call().expect("the metrics endpoint answers").into_body().read_to_string().expect("text")
}

/// The value of one sample, `name{labels}`, or 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[test]
fn metrics_count_a_known_workload_and_pass_promtool() {
    let port = free_port();
    let h = HostConfig::shop().arg("--metrics-listen").arg(&format!("127.0.0.1:{port}")).start();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let before = scrape(&url);
    for _ in 0..3 {
        assert_eq!(h.get("/api/products").status, 200);
    }
    assert_eq!(h.get("/api/products/NO-SUCH-1").status, 404);
    let mid = scrape(&url);
    let moved = |series: &str| sample(&mid, series) - sample(&before, series);
    assert_eq!(moved(r#"shop_requests_total{component="catalog",status_class="2xx",trigger="http"}"#), 3.0, "{mid}");
    assert_eq!(moved(r#"shop_requests_total{component="catalog",status_class="4xx",trigger="http"}"#), 1.0);
    assert_eq!(moved(r#"shop_request_duration_seconds_count{component="catalog",trigger="http"}"#), 4.0);
    place_order(&h, "metered");
    let after = eventually(Duration::from_secs(30), || {
        let text = scrape(&url);
        (sample(&text, r#"shop_redis_deliveries_total{channel="shop.payment.captured",component="notifications",outcome="ok"}"#) >= 1.0).then_some(text)
    })
    .expect("the order's events are delivered");
    let moved = |series: &str| sample(&after, series) - sample(&mid, series);
    assert_eq!(moved(r#"shop_requests_total{component="checkout",status_class="2xx",trigger="http"}"#), 1.0);
    assert!(moved(r#"shop_redis_publishes_total{channel="shop.order.placed",outcome="ok"}"#) >= 1.0);
    assert!(moved(r#"shop_redis_deliveries_total{channel="shop.order.placed",component="fulfillment",outcome="ok"}"#) >= 1.0);
    assert!(sample(&after, r#"shop_instance_limit{component="*"}"#) > 0.0);
    assert!(after.contains("shop_instantiation_duration_seconds_bucket"));
    assert!(after.contains("# TYPE shop_sqlite_lock_waits_total counter"));
    assert!(sample(&after, r#"shop_instances_in_use{component="catalog"}"#) == 0.0, "no catalog instance is left alive");

    promtool_check(&after);
}

/// `promtool check metrics` accepts `text` (Debian's prometheus package).
fn promtool_check(text: &str) {
    use std::io::Write;
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut promtool) = promtool else {
        panic!("promtool is needed (Debian: `apt-get install prometheus`; cargo xtask test installs it)");
    };
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(out.status.success(), "promtool check metrics: {}{}\n{text}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// What only the app knows, on both runtimes: `GET /api/admin/metrics`
/// counts checkouts by outcome from the journal and reports every service.
fn the_shops_own_metrics_count_checkouts_by_outcome(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    assert_eq!(h.get("/api/admin/metrics").status, 401, "admin only");
    place_order(&h, "counted");
    add(&h, "declined", SKU, 1);
    let mut body = checkout_body("declined", "erika@example.com", "standard");
    body["card"]["number"] = json!("4000000000000002");
    let r = h.request("POST", "/api/checkout", &[("content-type", "application/json"), ("idempotency-key", "declined")], Some(body.to_string().as_bytes()));
    assert_eq!(r.status, 402, "{}", r.text);
    let r = h.admin_get("/api/admin/metrics");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/plain")), "{:?}", r.header("content-type"));
    let text = r.text.clone();
    assert_eq!(sample(&text, r#"shop_checkouts{outcome="completed"}"#), 1.0, "{text}");
    assert_eq!(sample(&text, r#"shop_checkouts{outcome="payment_declined"}"#), 1.0, "{text}");
    for service in ["fulfillment", "notifications", "checkout", "payment", "orders", "inventory"] {
        assert_eq!(sample(&text, &format!("shop_service_up{{service=\"{service}\"}}")), 1.0, "{service}: {text}");
        assert!(text.contains(&format!("shop_events_due{{service=\"{service}\"}}")), "{service}: {text}");
    }
    promtool_check(&text);
}

on_both_runtimes!(one_checkout_is_one_trace_from_the_request_to_the_last_mail, the_shops_own_metrics_count_checkouts_by_outcome);
