//! `shop-host`: runs a Spin application (spin.toml and its WebAssembly
//! components) on wasmtime, where Spin is not installed.
//!
//! Each capability the host provides is one module with the same moments:
//! link its bindings into the linker, read its part of the manifest at load
//! time, and build the small per-instance state a request needs.

mod allowed_hosts;
mod app;
mod bindings;
mod compiled;
mod composition;
mod cron;
mod files;
mod http_trigger;
mod instance_output;
mod key_value;
mod limits;
mod manifest;
mod mqtt;
mod outbound_http;
mod postgres;
mod process;
mod redis;
mod registry;
mod routes;
mod runtime_config;
mod sqlite;
mod telemetry;
mod variables;
mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "shop-host", version, about = "Runs a Spin app's spin.toml and .wasm components on wasmtime")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the application (like `spin up`).
    Up(UpArgs),
}

#[derive(clap::Args)]
struct UpArgs {
    /// The application: a manifest, or a registry reference
    /// (`<registry>/<name>:<tag>`) that `spin registry push` pushed to.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    from: PathBuf,
    /// Pull from a registry over plain HTTP (as Spin's flag of the same name).
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Address to serve HTTP on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Where key-value stores and SQLite databases live.
    #[arg(long, default_value = ".spin")]
    state_dir: PathBuf,
    /// An application variable, `name=value`; may be repeated.
    #[arg(long = "variable", value_name = "NAME=VALUE")]
    variables: Vec<String>,
    /// Largest linear memory one instance may grow to, in MiB.
    #[arg(long, default_value_t = 128)]
    max_instance_memory_mib: usize,
    /// Longest time a component may work on one request, in seconds.
    #[arg(long, default_value_t = 30)]
    request_timeout_secs: u64,
    /// Client requests whose components run at once; more wait their turn
    /// in arrival order (0: no bound). The default is four per core.
    #[arg(long, value_name = "N")]
    max_running_requests: Option<usize>,
    /// A Redis server (`redis://host:port`) for every Redis address of the
    /// app. Without it, addresses the user did not set are served by the
    /// embedded broker.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Spin's runtime config file: the store labels other than `default`
    /// (`[key_value_store.<label>]`, `[sqlite_database.<label>]`).
    #[arg(long, value_name = "FILE")]
    runtime_config_file: Option<PathBuf>,
    /// Serve only the triggers of this component (like `spin up
    /// --component-id`); may be repeated. The default is every component.
    #[arg(short = 'c', long = "component-id", value_name = "ID")]
    component_ids: Vec<String>,
    /// Give components `wasi:otel/tracing`, for spans of their own (as
    /// Spin's flag of the same name does); a component importing it is
    /// refused without.
    #[arg(long)]
    experimental_wasi_otel: bool,
    /// How log lines look on stderr.
    #[arg(long, value_enum, default_value = "human")]
    log_format: telemetry::LogFormat,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (off by default).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Swap a component in while serving when its `.wasm` files or its
    /// manifest entry change (no restart; requests in flight finish on the
    /// old version).
    #[arg(long)]
    watch: bool,
}

fn main() -> Result<()> {
    process::prepare();
    let cli = Cli::parse();
    match cli.command {
        Command::Up(args) => up(args),
    }
}

fn up(args: UpArgs) -> Result<()> {
    let mut variables = BTreeMap::new();
    for v in &args.variables {
        let Some((name, value)) = v.split_once('=') else {
            bail!("--variable `{v}` must be NAME=VALUE");
        };
        variables.insert(name.trim().to_string(), value.to_string());
    }
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("cannot create state directory {}", args.state_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let from_registry = registry::is_reference(&args.from);
    let from = if from_registry {
        if args.watch {
            bail!("--watch needs a manifest on disk; {} is a registry reference", args.from.display());
        }
        let reference = args.from.to_string_lossy().into_owned();
        let into = args.state_dir.join("registry").join(reference.replace(['/', ':', '@'], "_"));
        runtime.block_on(registry::pull(&reference, args.insecure, &into))?
    } else {
        args.from.clone()
    };
    let mut manifest = manifest::Manifest::load(&from)?;
    manifest.retain_components(&args.component_ids)?;
    let options = app::Options {
        state_dir: args.state_dir.clone(),
        variables,
        limits: limits::Limits {
            max_instance_memory: args.max_instance_memory_mib << 20,
            request_timeout: Duration::from_secs(args.request_timeout_secs),
            running_requests: args.max_running_requests.unwrap_or_else(limits::default_running_requests),
            ..limits::Limits::default()
        },
        redis: args.redis.clone(),
        runtime_config: match &args.runtime_config_file {
            Some(path) => runtime_config::RuntimeConfig::load(path)?,
            None => runtime_config::RuntimeConfig::default(),
        },
        wasi_otel: args.experimental_wasi_otel,
        from_registry,
    };
    runtime.block_on(async move {
        // Inside the runtime: the span exporter batches on it. Dropped
        // last, so the spans of the final requests are sent.
        let _telemetry = telemetry::init(args.log_format)?;
        if let Some(addr) = args.metrics_listen {
            let mut limits = vec![("*".to_string(), i64::from(options.limits.max_instances))];
            for decl in manifest.components.values() {
                if let Some(n) = decl.limits.max_concurrent_instances {
                    limits.push((decl.id.clone(), i64::from(n)));
                }
            }
            let bound = telemetry::metrics::serve(addr, limits).await?;
            println!("Metrics: http://{bound}/metrics");
        }
        let (app, loader) = app::App::load(&manifest, &options)?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!("application `{}` loaded from {}", app.name, manifest.path.display());
        println!("Serving http://{addr}");
        println!("Available Routes:");
        for route in app.router.routes() {
            println!("  {}: http://{addr}{}", route.component, route.pattern.raw());
        }
        if !app.redis_triggers.is_empty() {
            println!("Redis channels:");
            for (address, channel, component) in &app.redis_triggers {
                println!("  {component}: {channel} ({})", app.brokers.describe(address));
            }
        }
        if !app.cron_triggers.is_empty() {
            println!("Cron schedules:");
            for trigger in &app.cron_triggers {
                println!("  {}: {}", trigger.component, trigger.cron_expression);
            }
        }
        if args.watch {
            watch::start(app.clone(), loader, manifest.clone(), args.component_ids.clone())?;
        } else {
            drop(loader);
        }
        process::return_idle_memory();
        redis::trigger::start(&app)?;
        cron::start(&app);
        http_trigger::serve(app, listener, shutdown_signal()).await
    })
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
}
