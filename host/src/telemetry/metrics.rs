//! Prometheus metrics, served on their own listener (`--metrics-listen`)
//! in the text exposition format. Off by default: with no listener nothing
//! is counted. Labels are components, channels, databases and status
//! classes — all fixed by the manifest — never paths, ids or keys.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_seconds: HistogramVec,
    pub instances_in_use: IntGaugeVec,
    pub instance_limit: IntGaugeVec,
    pub instantiation_seconds: HistogramVec,
    pub sqlite_lock_waits: IntCounter,
    pub sqlite_lock_wait_seconds: prometheus::Counter,
    pub redis_publishes: IntCounterVec,
    pub redis_deliveries: IntCounterVec,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The metrics, when a listener serves them.
pub fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

/// The class of a status code, `2xx` … `5xx`.
pub fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

impl Metrics {
    fn new() -> Result<Metrics> {
        let registry = Registry::new();
        let latency = vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0];
        let requests = IntCounterVec::new(
            Opts::new("shop_requests_total", "Trigger runs (HTTP requests, Redis messages, cron ticks) by component and outcome class"),
            &["component", "trigger", "status_class"],
        )?;
        let request_seconds = HistogramVec::new(
            HistogramOpts::new("shop_request_duration_seconds", "Time to answer a trigger run, by component").buckets(latency.clone()),
            &["component", "trigger"],
        )?;
        let instances_in_use = IntGaugeVec::new(
            Opts::new("shop_instances_in_use", "Component instances alive now (dependencies under `dependency <import>`)"),
            &["component"],
        )?;
        let instance_limit = IntGaugeVec::new(
            Opts::new("shop_instance_limit", "Instances a component may have at once (`*`: the whole host's pool)"),
            &["component"],
        )?;
        let instantiation_seconds = HistogramVec::new(
            HistogramOpts::new("shop_instantiation_duration_seconds", "Time to instantiate a component for one run")
                .buckets(vec![0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05]),
            &["component"],
        )?;
        let sqlite_lock_waits =
            IntCounter::new("shop_sqlite_lock_waits_total", "SQLite statements that found the database locked by another writer and waited")?;
        let sqlite_lock_wait_seconds =
            prometheus::Counter::new("shop_sqlite_lock_wait_seconds_total", "Time SQLite statements spent waiting for another writer's lock")?;
        let redis_publishes = IntCounterVec::new(
            Opts::new("shop_redis_publishes_total", "Messages components published, by channel and outcome"),
            &["channel", "outcome"],
        )?;
        let redis_deliveries = IntCounterVec::new(
            Opts::new("shop_redis_deliveries_total", "Messages handed to Redis-triggered components, by channel, component and outcome"),
            &["channel", "component", "outcome"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_seconds.clone()))?;
        registry.register(Box::new(instances_in_use.clone()))?;
        registry.register(Box::new(instance_limit.clone()))?;
        registry.register(Box::new(instantiation_seconds.clone()))?;
        registry.register(Box::new(sqlite_lock_waits.clone()))?;
        registry.register(Box::new(sqlite_lock_wait_seconds.clone()))?;
        registry.register(Box::new(redis_publishes.clone()))?;
        registry.register(Box::new(redis_deliveries.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            request_seconds,
            instances_in_use,
            instance_limit,
            instantiation_seconds,
            sqlite_lock_waits,
            sqlite_lock_wait_seconds,
            redis_publishes,
            redis_deliveries,
        })
    }

    /// One trigger run's outcome.
    pub fn ran(&self, component: &str, trigger: &str, status: u16, took: Duration) {
        self.requests.with_label_values(&[component, trigger, status_class(status)]).inc();
        self.request_seconds.with_label_values(&[component, trigger]).observe(took.as_secs_f64());
    }

    fn render(&self) -> String {
        let mut text = String::new();
        let _ = prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut text);
        text
    }
}

/// While alive, one more instance of `component` is counted in use.
pub struct InUse(Option<&'static Metrics>, String);

impl InUse {
    pub fn new(component: &str) -> InUse {
        let metrics = get();
        if let Some(m) = metrics {
            m.instances_in_use.with_label_values(&[component]).inc();
        }
        InUse(metrics, component.to_string())
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        if let Some(m) = self.0 {
            m.instances_in_use.with_label_values(&[self.1.as_str()]).dec();
        }
    }
}

/// Starts counting and serves `/metrics` on `addr` until the process ends.
pub async fn serve(addr: SocketAddr, limits: Vec<(String, i64)>) -> Result<SocketAddr> {
    let metrics = Metrics::new()?;
    for (component, limit) in limits {
        metrics.instance_limit.with_label_values(&[component.as_str()]).set(limit);
    }
    let _ = METRICS.set(metrics);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                    let response = match (req.method(), req.uri().path()) {
                        (&http::Method::GET, "/metrics") => http::Response::builder()
                            .header(http::header::CONTENT_TYPE, prometheus::TEXT_FORMAT)
                            .body(Full::new(Bytes::from(get().map(Metrics::render).unwrap_or_default()))),
                        _ => http::Response::builder()
                            .status(http::StatusCode::NOT_FOUND)
                            .body(Full::new(Bytes::from_static(b"metrics are at /metrics\n"))),
                    };
                    Ok::<_, std::convert::Infallible>(response.expect("static response parts are valid"))
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(bound)
}
