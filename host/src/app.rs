//! A loaded application: every component compiled once and pre-instantiated
//! against the host's capabilities, ready to serve. Each request gets a
//! fresh instance (a new `Store`), as in Spin, so no state leaks between
//! requests and a failing instance takes nothing else down.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::compiled;
use crate::composition::{self, Dependencies, LoadedDependency};
use crate::files::{self, Mount};
use crate::instance_output::{LineBuffered, Target};
use crate::key_value::{self, KeyValueState, KeyValueStores};
use crate::limits::{Limits, MemoryLimit};
use crate::manifest::{ComponentDecl, CronTrigger, DependencySource, Inherit, Manifest};
use crate::bindings::cron_trigger::SpinCronPre;
use crate::bindings::redis_trigger::RedisTriggerPre;
use crate::allowed_hosts::AllowedHosts;
use crate::outbound_http::OutboundHttp;
use crate::mqtt::MqttState;
use crate::postgres::PostgresState;
use crate::redis::{self, Brokers, RedisState};
use crate::routes::Router;
use crate::runtime_config::{RuntimeConfig, StoreKind};
use crate::sqlite::{self, SqliteDatabases, SqliteState};
use crate::telemetry::Invocation;
use crate::telemetry::guest::{self, GuestSpans};
use crate::telemetry::metrics::InUse;
use crate::variables::{self, AppVariables, VariablesState};
use opentelemetry::trace::SpanContext;

/// How the app is run, beyond its manifest.
#[derive(Debug, Clone)]
pub struct Options {
    pub state_dir: PathBuf,
    /// `--variable name=value`.
    pub variables: BTreeMap<String, String>,
    pub limits: Limits,
    /// `--redis URL`: one Redis server for every Redis address of the app.
    pub redis: Option<String>,
    /// `--runtime-config-file`: where the store labels live.
    pub runtime_config: RuntimeConfig,
    /// `--experimental-wasi-otel`: components may import `wasi:otel`, as
    /// Spin allows only with the same flag.
    pub wasi_otel: bool,
    /// The app was pulled from a registry (`up --from <reference>`).
    pub from_registry: bool,
}

pub struct App {
    pub name: String,
    pub router: Router,
    pub limits: Limits,
    /// Each served component; `--watch` swaps one while requests run
    /// (those in flight keep the `Arc` they started with).
    components: HashMap<String, RwLock<Arc<LoadedComponent>>>,
    key_value: Arc<KeyValueStores>,
    sqlite: Arc<SqliteDatabases>,
    pub brokers: Arc<Brokers>,
    /// `(address, channel, component)` of every Redis trigger, rendered.
    pub redis_triggers: Vec<(String, String, String)>,
    pub cron_triggers: Vec<CronTrigger>,
    /// Turns for client requests.
    pub admission: crate::limits::Admission,
    engine: Engine,
}

/// What an instance may use: its manifest entry's grants, rendered.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    environment: Vec<(String, String)>,
    mounts: Vec<Mount>,
    key_value_labels: Arc<[String]>,
    sqlite_labels: Arc<[String]>,
    variables: Arc<BTreeMap<String, String>>,
    allowed_hosts: Arc<AllowedHosts>,
}

impl Grants {
    /// What a dependency receives from its parent: only what it inherits.
    /// WASI clocks, random and io need no grant.
    fn inherited(&self, inherit: &Inherit) -> Grants {
        Grants {
            environment: Vec::new(),
            mounts: Vec::new(),
            key_value_labels: if inherit.key_value_stores { self.key_value_labels.clone() } else { Arc::new([]) },
            sqlite_labels: if inherit.sqlite_databases { self.sqlite_labels.clone() } else { Arc::new([]) },
            variables: if inherit.variables { self.variables.clone() } else { Arc::default() },
            allowed_hosts: if inherit.allowed_outbound_hosts { self.allowed_hosts.clone() } else { Arc::default() },
        }
    }
}

/// One component, compiled and linked, with what its manifest entry grants.
pub struct LoadedComponent {
    pub id: String,
    /// Present when an HTTP trigger names the component.
    pub(crate) http: Option<ProxyPre<InstanceState>>,
    /// Present when a Redis trigger names the component.
    pub(crate) redis: Option<RedisTriggerPre<InstanceState>>,
    /// Present when a cron trigger names the component.
    pub(crate) cron: Option<SpinCronPre<InstanceState>>,
    /// The host's limits with the component's own (`tool.shop-host`).
    pub limits: Limits,
    /// Its `max_concurrent_instances`, when it has one: a permit per instance.
    pub slots: Option<(u32, Arc<tokio::sync::Semaphore>)>,
    grants: Grants,
    dependencies: Option<Arc<[LoadedDependency]>>,
}

/// The data of one instance's `Store`: WASI, and each capability's state.
pub struct InstanceState {
    app: Arc<App>,
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    outbound: OutboundHttp,
    key_value: KeyValueState,
    sqlite: SqliteState,
    variables: VariablesState,
    redis: RedisState,
    mqtt: MqttState,
    postgres: PostgresState,
    dependencies: Dependencies,
    limits: MemoryLimit,
    otel: GuestSpans,
    outer: SpanContext,
    _in_use: InUse,
}

impl InstanceState {
    pub(crate) fn app_and_dependencies(&mut self) -> (&Arc<App>, &mut Dependencies) {
        (&self.app, &mut self.dependencies)
    }

    /// The component (or `dependency <import>`) this instance runs.
    pub(crate) fn component_id(&self) -> &str {
        &self.outbound.component
    }

    /// The component's innermost open span of its own, if any.
    pub(crate) fn innermost_span(&self) -> Option<&SpanContext> {
        self.otel.innermost()
    }

    /// The trace context this instance runs in.
    pub(crate) fn outer_span(&self) -> &SpanContext {
        &self.outer
    }

    /// Set once this instance was refused memory past its limit.
    pub(crate) fn memory_refused(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.limits.refused()
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound }
    }
}

/// Everything the host provides to components; a component importing
/// anything else is refused at load time.
fn linker(engine: &Engine, wasi_otel: bool) -> Result<Linker<InstanceState>> {
    let mut linker: Linker<InstanceState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow!("{e:?}"))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(|e| anyhow!("{e:?}"))?;
    key_value::add_to_linker(&mut linker, |s| &mut s.key_value)?;
    sqlite::add_to_linker(&mut linker, |s| &mut s.sqlite)?;
    variables::add_to_linker(&mut linker, |s| &mut s.variables)?;
    redis::add_to_linker(&mut linker, |s| &mut s.redis)?;
    crate::mqtt::add_to_linker(&mut linker, |s| &mut s.mqtt)?;
    crate::postgres::add_to_linker(&mut linker, |s| &mut s.postgres)?;
    if wasi_otel {
        guest::add_to_linker(&mut linker, |s| &mut s.otel)?;
    }
    Ok(linker)
}

/// A file's identity for reuse: same length and modification time, same
/// compiled component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl FileStamp {
    pub fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp { len: meta.len(), modified: meta.modified().ok() })
    }
}

/// Compiles each component file once, however many entries name it, and
/// again only when the file changes (`--watch`).
pub struct Compiler {
    engine: Engine,
    /// Where compiled code is kept between runs ([`compiled`]).
    kept: Option<PathBuf>,
    compiled: HashMap<PathBuf, (Option<FileStamp>, Component)>,
    /// Files compiled since the last `take_compiled`, for the reload log.
    fresh: Vec<PathBuf>,
}

impl Compiler {
    fn new(engine: &Engine) -> Compiler {
        Compiler { engine: engine.clone(), kept: compiled::default_dir(), compiled: HashMap::new(), fresh: Vec::new() }
    }

    fn compile(&mut self, source: &Path) -> Result<Component> {
        let stamp = FileStamp::of(source);
        if let Some((seen, c)) = self.compiled.get(source)
            && *seen == stamp
        {
            return Ok(c.clone());
        }
        if !source.is_file() {
            anyhow::bail!("source {} does not exist (build the components first)", source.display());
        }
        let component = compiled::load(&self.engine, self.kept.as_deref(), source)?;
        self.compiled.insert(source.to_path_buf(), (stamp, component.clone()));
        self.fresh.push(source.to_path_buf());
        Ok(component)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The files compiled since the last call.
    pub fn take_compiled(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.fresh)
    }
}

/// What loading a component needs, kept after start-up so `--watch` can
/// load a component again the same way: the linker, the compiled files,
/// the resolved variables and the options.
pub struct Loader {
    linker: Linker<InstanceState>,
    pub compiler: Compiler,
    app_variables: AppVariables,
    options: Options,
}

impl Loader {
    /// Loads `decl` of `manifest` anew, to replace the one `app` serves.
    /// Refused, with the reason, when it needs what only a restart gives: a
    /// store the app has not opened, or a trigger it does not have.
    pub fn reload(&mut self, app: &App, manifest: &Manifest, decl: &ComponentDecl) -> Result<LoadedComponent> {
        for label in &decl.key_value_stores {
            if !app.key_value.has(label) {
                anyhow::bail!("key-value store `{label}` is new; a new store needs a restart");
            }
        }
        for label in &decl.sqlite_databases {
            if !app.sqlite.has(label) {
                anyhow::bail!("SQLite database `{label}` is new; a new database needs a restart");
            }
        }
        let triggers = Triggers::of(manifest, &decl.id);
        load_component(&self.linker, &mut self.compiler, manifest, decl, triggers, &self.app_variables, &self.options)
    }
}

impl App {
    pub fn load(manifest: &Manifest, options: &Options) -> Result<(Arc<App>, Loader)> {
        let app_variables = AppVariables::resolve(&manifest.variables, &options.variables, |k| std::env::var(k).ok())
            .with_context(|| format!("cannot start {}", manifest.path.display()))?;
        // The pool's slots must hold the largest memory any component may have.
        let largest = manifest
            .components
            .values()
            .filter_map(|c| c.limits.max_instance_memory_mib.map(|mib| mib << 20))
            .fold(options.limits.max_instance_memory, usize::max);
        let engine = Limits { max_instance_memory: largest, ..options.limits.clone() }.engine()?;
        let linker = linker(&engine, options.wasi_otel)?;
        let mut compiler = Compiler::new(&engine);

        let served: Vec<&ComponentDecl> = manifest
            .components
            .values()
            .filter(|c| {
                manifest.http_triggers.iter().any(|t| t.component == c.id)
                    || manifest.redis_triggers.iter().any(|t| t.component == c.id)
                    || manifest.cron_triggers.iter().any(|t| t.component == c.id)
            })
            .collect();

        let mut components = HashMap::new();
        for decl in &served {
            let triggers = Triggers::of(manifest, &decl.id);
            let loaded =
                load_component(&linker, &mut compiler, manifest, decl, triggers, &app_variables, options)
                    .with_context(|| format!("component `{}` in {}", decl.id, manifest.path.display()))?;
            components.insert(decl.id.clone(), RwLock::new(Arc::new(loaded)));
        }

        // Addresses nobody chose (variable defaults) are served by the
        // embedded broker; see `redis::Brokers`.
        let mut embedded_addresses = std::collections::HashSet::new();
        let mut redis_triggers = Vec::new();
        for t in &manifest.redis_triggers {
            let address = t.address.render(&app_variables)?;
            if t.address.only_defaults(&app_variables) {
                embedded_addresses.insert(address.clone());
            }
            redis_triggers.push((address, t.channel.clone(), t.component.clone()));
        }
        for decl in manifest.components.values() {
            for template in decl.variables.values() {
                let value = template.render(&app_variables)?;
                if value.starts_with("redis://") && template.only_defaults(&app_variables) {
                    embedded_addresses.insert(value);
                }
            }
        }
        let brokers = Brokers::new(options.redis.as_deref(), embedded_addresses)?;

        // Every label a served component lists must be `default` or
        // declared in the runtime config, as in Spin.
        let store_files = |kind: StoreKind, labels: fn(&ComponentDecl) -> &Vec<String>| {
            let mut files = Vec::new();
            for decl in &served {
                for label in labels(decl) {
                    let file = options
                        .runtime_config
                        .file(kind, label, &options.state_dir)
                        .with_context(|| format!("invalid manifest {}: [component.{}] {}", manifest.path.display(), decl.id, kind.manifest_key()))?;
                    files.push((label.clone(), file));
                }
            }
            Ok::<_, anyhow::Error>(files)
        };
        let key_value = KeyValueStores::open(store_files(StoreKind::KeyValue, |d| &d.key_value_stores)?)?;
        let sqlite = SqliteDatabases::open(store_files(StoreKind::Sqlite, |d| &d.sqlite_databases)?)?;

        let (router, replaced) = Router::build(
            manifest
                .http_triggers
                .iter()
                .filter_map(|t| t.route.clone().map(|r| (r, t.component.clone()))),
        )?;
        for r in replaced {
            tracing::warn!(
                "route `{}` of component `{}` is also given later; the later one is used",
                r.pattern.raw(),
                r.component
            );
        }

        compiler.take_compiled();
        let loader = Loader { linker, compiler, app_variables, options: options.clone() };
        let app = Arc::new(App {
            name: manifest.name.clone(),
            router,
            limits: options.limits.clone(),
            components,
            key_value: Arc::new(key_value),
            sqlite: Arc::new(sqlite),
            brokers: Arc::new(brokers),
            redis_triggers,
            cron_triggers: manifest.cron_triggers.clone(),
            admission: crate::limits::Admission::new(&options.limits),
            engine,
        });
        Ok((app, loader))
    }

    /// The version of component `id` that new requests get.
    pub fn component(&self, id: &str) -> Option<Arc<LoadedComponent>> {
        self.components.get(id).map(|slot| slot.read().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// Serves `next` for its id from the next request on; requests in
    /// flight finish on the version they started with. `false` if the app
    /// serves no such component.
    pub fn swap(&self, next: LoadedComponent) -> bool {
        match self.components.get(&next.id) {
            Some(slot) => {
                *slot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
                true
            }
            None => false,
        }
    }

    /// The ids of the components the app serves.
    pub fn served(&self) -> impl Iterator<Item = &str> {
        self.components.keys().map(String::as_str)
    }

    /// The end of a trigger run that is not an HTTP request (`REDIS
    /// <channel>`, `CRON <tick>`): its span's status, its metrics, and its
    /// one log line — failures at warn, successes at info, or at debug for
    /// runs too frequent to read (`quiet`).
    pub fn finish_run(run: &Invocation, trigger: &str, what: &str, component_id: &str, started: std::time::Instant, outcome: &Result<()>, quiet: bool) {
        if outcome.is_err() {
            run.span.record("otel.status_code", "ERROR");
        }
        if let Some(m) = crate::telemetry::metrics::get() {
            m.ran(component_id, trigger, if outcome.is_ok() { 200 } else { 500 }, started.elapsed());
        }
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let _in_run = run.span.enter();
        match outcome {
            Ok(()) if quiet => tracing::debug!(target: "shop_host::request", "{what} -> {component_id} ok {ms:.3}ms"),
            Ok(()) => tracing::info!(target: "shop_host::request", "{what} -> {component_id} ok {ms:.3}ms"),
            Err(e) => tracing::warn!(target: "shop_host::request", "{what} -> {component_id} failed {ms:.3}ms: {e:#}"),
        }
    }

    /// A fresh store for one invocation of `component`.
    pub fn new_component_store(self: &Arc<Self>, component: &LoadedComponent, run: &Invocation) -> Result<Store<InstanceState>> {
        self.new_store(&component.id, &component.grants, component.dependencies.clone(), &component.limits, run)
    }

    /// A fresh store for an instance called `id` (for messages) with
    /// `grants`, whose imports from `dependencies` start on first use.
    pub fn new_store(
        self: &Arc<Self>,
        id: &str,
        grants: &Grants,
        dependencies: Option<Arc<[LoadedDependency]>>,
        limits: &Limits,
        run: &Invocation,
    ) -> Result<Store<InstanceState>> {
        crate::process::instance_started();
        let mut wasi = WasiCtx::builder();
        wasi.stdout(LineBuffered::new(Target::Stdout, &run.span))
            .stderr(LineBuffered::new(Target::Stderr, &run.span))
            .envs(&grants.environment);
        // wasi:sockets: TCP connections where allowed_outbound_hosts allows
        // them as `tcp://ip:port`. A bind is refused, but for the implicit
        // one a connect asks about (any address, port 0); UDP is off.
        let allowed = grants.allowed_hosts.clone();
        wasi.allow_tcp(allowed.any()).allow_ip_name_lookup(allowed.any()).socket_addr_check(move |addr, using| {
            use wasmtime_wasi::sockets::SocketAddrUse;
            let allowed = allowed.clone();
            Box::pin(async move {
                match using {
                    SocketAddrUse::TcpConnect => allowed.allows_tcp(addr),
                    SocketAddrUse::TcpBind => allowed.any() && addr.ip().is_unspecified() && addr.port() == 0,
                    _ => false,
                }
            })
        });
        for mount in &grants.mounts {
            wasi.preopened_dir(&mount.host, &mount.guest, FsPerms::ReadOnly)
                .map_err(|e| anyhow!("cannot mount {}: {e:?}", mount.host.display()))?;
        }
        let state = InstanceState {
            app: self.clone(),
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            outbound: OutboundHttp {
                app: self.clone(),
                component: id.to_string(),
                allowed: grants.allowed_hosts.clone(),
                outer: run.context.clone(),
            },
            key_value: KeyValueState::new(self.key_value.clone(), grants.key_value_labels.clone()),
            sqlite: SqliteState::new(self.sqlite.clone(), grants.sqlite_labels.clone()),
            variables: VariablesState::new(grants.variables.clone()),
            redis: RedisState::new(self.brokers.clone(), grants.allowed_hosts.clone()),
            mqtt: MqttState::new(grants.allowed_hosts.clone()),
            postgres: PostgresState::new(grants.allowed_hosts.clone()),
            dependencies: Dependencies::new(dependencies),
            limits: limits.store_limits(),
            otel: GuestSpans::new(run.context.clone(), run.span.clone()),
            outer: run.context.clone(),
            _in_use: InUse::new(id),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        limits.arm(&mut store);
        Ok(store)
    }
}

fn grants(decl: &ComponentDecl, app_variables: &AppVariables, mounts: Vec<Mount>) -> Result<Grants> {
    let rendered = |t: &crate::variables::Template| t.render(app_variables);
    let allowed: Vec<String> = decl.allowed_outbound_hosts.iter().map(rendered).collect::<Result<_>>()?;
    let allowed_hosts = AllowedHosts::parse(&allowed).context("allowed_outbound_hosts")?;
    let variables = decl
        .variables
        .iter()
        .map(|(k, t)| Ok((k.clone(), rendered(t).with_context(|| format!("variables.{k}"))?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    Ok(Grants {
        environment: decl.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        mounts,
        key_value_labels: decl.key_value_stores.clone().into(),
        sqlite_labels: decl.sqlite_databases.clone().into(),
        variables: Arc::new(variables),
        allowed_hosts: Arc::new(allowed_hosts),
    })
}

/// Spin links `wasi:otel` only under `--experimental-wasi-otel`; a
/// component importing it is refused without the flag, here as there, with
/// a message that names the flag.
fn refuse_otel_without_flag(engine: &Engine, component: &Component, wasi_otel: bool) -> Result<()> {
    if wasi_otel {
        return Ok(());
    }
    if let Some((import, _)) = component.component_type().imports(engine).find(|(name, _)| name.starts_with("wasi:otel/")) {
        anyhow::bail!("it imports `{import}`, which is provided only with --experimental-wasi-otel (as in Spin)");
    }
    Ok(())
}

/// Links each import *instance* the linker has nothing for to functions
/// that fail when called (and resources nobody can make), one at a time
/// as instantiation names them; returns their names. An instance the host
/// provides is never touched, so a missing function in it still refuses
/// the component.
fn stub_missing_instances(linker: &mut Linker<InstanceState>, engine: &Engine, component: &Component) -> Result<Vec<String>> {
    use wasmtime::component::types::ComponentItem;
    let imports: HashMap<String, ComponentItem> = component.component_type().imports(engine).map(|(n, i)| (n.to_string(), i.ty)).collect();
    let mut stubbed = Vec::new();
    while let Err(e) = linker.instantiate_pre(component) {
        let message = e.to_string();
        let name = message
            .strip_prefix("component imports instance `")
            .and_then(|rest| rest.split_once("`, but a matching implementation was not found"))
            .map(|(name, _)| name.to_string());
        let Some(ComponentItem::ComponentInstance(instance)) = name.as_ref().and_then(|n| imports.get(n)) else {
            anyhow::bail!("{message}");
        };
        let name = name.unwrap();
        if stubbed.contains(&name) {
            anyhow::bail!("{message}");
        }
        let wasm = |e: wasmtime::Error| anyhow!("{e:?}");
        let mut stub = linker.instance(&name).map_err(wasm)?;
        for (item, ty) in instance.exports(engine) {
            let qualified = format!("{name}#{item}");
            match ty.ty {
                ComponentItem::ComponentFunc(f) if f.async_() => stub.func_new_concurrent(item, move |_, _, _, _| {
                    let qualified = qualified.clone();
                    Box::pin(async move { Err(wasmtime::Error::msg(format!("`{qualified}` is not provided by shop-host"))) })
                }).map_err(wasm)?,
                ComponentItem::ComponentFunc(_) => {
                    stub.func_new(item, move |_, _, _, _| Err(wasmtime::Error::msg(format!("`{qualified}` is not provided by shop-host")))).map_err(wasm)?
                }
                ComponentItem::Resource(_) => stub.resource(item, wasmtime::component::ResourceType::host::<()>(), |_, _| Ok(())).map_err(wasm)?,
                _ => {}
            }
        }
        stubbed.push(name);
    }
    Ok(stubbed)
}

/// Which triggers name a component, so which exports it must have.
#[derive(Clone, Copy)]
struct Triggers {
    http: bool,
    redis: bool,
    cron: bool,
}

impl Triggers {
    fn of(manifest: &Manifest, id: &str) -> Triggers {
        Triggers {
            http: manifest.http_triggers.iter().any(|t| t.component == id),
            redis: manifest.redis_triggers.iter().any(|t| t.component == id),
            cron: manifest.cron_triggers.iter().any(|t| t.component == id),
        }
    }
}

fn load_component(
    linker: &Linker<InstanceState>,
    compiler: &mut Compiler,
    manifest: &Manifest,
    decl: &ComponentDecl,
    triggers: Triggers,
    app_variables: &AppVariables,
    options: &Options,
) -> Result<LoadedComponent> {
    let (state_dir, host_limits) = (options.state_dir.as_path(), &options.limits);
    let source = &decl.source;
    let component = compiler.compile(source)?;
    refuse_otel_without_flag(&compiler.engine, &component, options.wasi_otel)?;
    let grants = grants(decl, app_variables, files::prepare(decl, &manifest.dir, state_dir)?)?;

    let mut dependencies = Vec::new();
    for dep in &decl.dependencies {
        let dep_source = match &dep.source {
            DependencySource::Component(id) => manifest.components[id].source.clone(),
            DependencySource::Path(p) => p.clone(),
        };
        let dep_component = compiler
            .compile(&dep_source)
            .with_context(|| format!("dependencies.\"{}\"", dep.import))?;
        dependencies.push((dep.clone(), dep_component, grants.inherited(&dep.inherit)));
    }
    let (linker, plans) = composition::link(&compiler.engine, linker, &component, &dependencies)?;

    let pre = match linker.instantiate_pre(&component) {
        Ok(pre) => pre,
        // What `spin registry push` composed carries Spin's own adapters for
        // the dependencies, which import every interface Spin has (WASI 0.3
        // release candidates among them) although nothing calls those. For
        // an app from a registry only, such imports fail when called
        // instead of refusing the app; the log names the first.
        Err(first) if options.from_registry => {
            let mut linker = linker.clone();
            let stubbed = stub_missing_instances(&mut linker, compiler.engine(), &component)
                .map_err(|e| anyhow!("{} cannot run on shop-host: {e}", source.display()))?;
            if stubbed.is_empty() {
                anyhow::bail!("{} cannot run on shop-host: {first}", source.display());
            }
            tracing::warn!(
                component = %decl.id,
                "component `{}` imports interfaces shop-host does not provide ({}); as `spin registry push` composed it, they fail if called",
                decl.id,
                stubbed.join(", ")
            );
            linker.instantiate_pre(&component).map_err(|e| anyhow!("{} cannot run on shop-host: {e}", source.display()))?
        }
        Err(e) => anyhow::bail!("{} cannot run on shop-host: {e}", source.display()),
    };
    let http = triggers
        .http
        .then(|| ProxyPre::new(pre.clone()))
        .transpose()
        .map_err(|e| anyhow!("{} does not export wasi:http/incoming-handler: {e}", source.display()))?;
    let cron = triggers
        .cron
        .then(|| SpinCronPre::new(pre.clone()))
        .transpose()
        .map_err(|e| anyhow!("{} does not export handle-cron-event (world fermyon:spin-cron/spin-cron): {e}", source.display()))?;
    let redis = triggers
        .redis
        .then(|| RedisTriggerPre::new(pre))
        .transpose()
        .map_err(|e| anyhow!("{} does not export fermyon:spin/inbound-redis: {e}", source.display()))?;

    let limits = host_limits.for_component(&decl.limits);
    let slots = decl.limits.max_concurrent_instances.map(|n| (n, Arc::new(tokio::sync::Semaphore::new(n as usize))));
    Ok(LoadedComponent { id: decl.id.clone(), http, redis, cron, limits, slots, grants, dependencies: plans })
}
