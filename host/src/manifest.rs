//! `spin.toml`, manifest version 2: the only module that knows the TOML.
//!
//! Parsing is strict (unknown keys are errors, as in Spin) so that a typo in
//! a manifest is reported at load time with the file, the key and the
//! problem, instead of silently doing nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::variables::Template;

/// A loaded and validated application manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest file, for messages.
    pub path: PathBuf,
    /// Relative paths in the manifest are relative to this directory.
    pub dir: PathBuf,
    pub name: String,
    pub variables: BTreeMap<String, VariableDecl>,
    pub http_triggers: Vec<HttpTrigger>,
    pub redis_triggers: Vec<RedisTrigger>,
    pub cron_triggers: Vec<CronTrigger>,
    pub components: BTreeMap<String, ComponentDecl>,
}

/// A `[[trigger.cron]]` (Spin's trigger-cron plugin): `component` runs on
/// every tick of `schedule`.
#[derive(Debug, Clone)]
pub struct CronTrigger {
    /// The expression as written, for messages.
    pub cron_expression: String,
    pub schedule: croner::Cron,
    pub component: String,
}

/// A `[[trigger.redis]]`: messages on `channel` go to `component`.
#[derive(Debug, Clone)]
pub struct RedisTrigger {
    /// The trigger's `address`, or `[application.trigger.redis] address`.
    pub address: Template,
    pub channel: String,
    pub component: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// Accepted as in Spin; shop-host never prints any variable's value.
    #[serde(default)]
    #[allow(dead_code)]
    pub secret: bool,
}

#[derive(Debug, Clone)]
pub struct HttpTrigger {
    /// `None` for `route = { private = true }`: reachable only by service
    /// chaining.
    pub route: Option<String>,
    pub component: String,
}

/// One `[component.<id>]` table, with paths resolved and templates parsed.
#[derive(Debug, Clone)]
pub struct ComponentDecl {
    pub id: String,
    pub source: PathBuf,
    pub files: Vec<FileMount>,
    pub environment: BTreeMap<String, String>,
    pub key_value_stores: Vec<String>,
    pub sqlite_databases: Vec<String>,
    pub allowed_outbound_hosts: Vec<Template>,
    /// The same entries as written, for messages and load-time rules.
    pub allowed_outbound_hosts_text: Vec<String>,
    pub variables: BTreeMap<String, Template>,
    /// Imports satisfied by other components (Spin component dependencies).
    pub dependencies: Vec<Dependency>,
    /// `[component.<id>.tool.shop-host]`: this component's own limits.
    pub limits: ComponentLimits,
}

/// What `[component.<id>.tool.shop-host]` may set (Spin keeps a tool's
/// table for the tool, so these do not affect the app on Spin). Each is
/// the command-line default when not given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentLimits {
    /// Largest linear memory one instance may grow to, in MiB.
    pub max_instance_memory_mib: Option<usize>,
    /// Longest time one request (or message, or tick) may run, in seconds.
    pub request_timeout_secs: Option<u64>,
    /// Instances of this component alive at once; more requests are
    /// answered 503 (HTTP) or wait (messages).
    pub max_concurrent_instances: Option<u32>,
}

fn component_limits(tool: Option<&toml::Table>) -> Result<ComponentLimits> {
    let Some(table) = tool.and_then(|t| t.get("shop-host")) else { return Ok(ComponentLimits::default()) };
    let limits: ComponentLimits = table
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("tool.shop-host: {}", e.message()))?;
    let positive = |name: &str, value: Option<u64>, max: u64| match value {
        Some(v) if v == 0 || v > max => bail!("tool.shop-host: `{name}` must be 1 to {max}, not {v}"),
        _ => Ok(()),
    };
    positive("max_instance_memory_mib", limits.max_instance_memory_mib.map(|v| v as u64), 4096)?;
    positive("request_timeout_secs", limits.request_timeout_secs, 3600)?;
    positive("max_concurrent_instances", limits.max_concurrent_instances.map(u64::from), 1000)?;
    Ok(limits)
}

impl ComponentDecl {
    /// The manifest keys by which this component holds resources or
    /// permissions of its own (what Spin forbids in a `{ component = … }`
    /// dependency), sorted.
    pub fn own_grants(&self) -> Vec<&'static str> {
        [
            ("allowed_outbound_hosts", !self.allowed_outbound_hosts.is_empty()),
            ("dependencies", !self.dependencies.is_empty()),
            ("environment", !self.environment.is_empty()),
            ("files", !self.files.is_empty()),
            ("key_value_stores", !self.key_value_stores.is_empty()),
            ("sqlite_databases", !self.sqlite_databases.is_empty()),
            ("variables", !self.variables.is_empty()),
        ]
        .into_iter()
        .filter_map(|(key, held)| held.then_some(key))
        .collect()
    }

    /// The first `allowed_outbound_hosts` entry that asks for local service
    /// chaining (a host under `spin.internal`), as written.
    pub fn chaining_host(&self) -> Option<&str> {
        self.allowed_outbound_hosts_text.iter().map(String::as_str).find(|entry| is_chaining_entry(entry))
    }
}

/// `http://catalog.spin.internal`, `https://*.spin.internal:8080`, … : as
/// in Spin, any scheme and port, a host under `.spin.internal` (the bare
/// `spin.internal` names no component and does not count).
fn is_chaining_entry(entry: &str) -> bool {
    chained_component(entry).is_some()
}

/// The component an `allowed_outbound_hosts` entry chains to (`*` for
/// `*.spin.internal`), or `None` when it is no chaining entry.
fn chained_component(entry: &str) -> Option<String> {
    let rest = entry.split_once("://").map_or(entry, |(_, rest)| rest);
    let host = rest.split(['/', ':']).next().unwrap_or_default().to_ascii_lowercase();
    host.strip_suffix(".spin.internal").filter(|c| !c.is_empty()).map(str::to_owned)
}

/// One `[component.x.dependencies]` entry: an import of `x`, satisfied by the
/// export of the same name (or `export`) of another component.
#[derive(Debug, Clone)]
pub struct Dependency {
    /// `pkg:ns/iface@version`, `pkg:ns/iface` (any version), or a whole
    /// package `pkg:ns[@version]`.
    pub import: String,
    pub source: DependencySource,
    pub export: Option<String>,
    pub inherit: Inherit,
    /// `inherit_configuration` was a list of kinds rather than `true` or
    /// `false` (Spin's trigger-cron plugin cannot compose those).
    pub granular: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencySource {
    /// Another component of this manifest, by id.
    Component(String),
    /// A component file, relative to the manifest.
    Path(PathBuf),
}

/// Which of the parent's grants a dependency receives. Without any, it has
/// only WASI clocks, random and io, as in Spin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inherit {
    pub key_value_stores: bool,
    pub sqlite_databases: bool,
    pub variables: bool,
    pub allowed_outbound_hosts: bool,
}

impl Inherit {
    pub const ALL: Inherit =
        Inherit { key_value_stores: true, sqlite_databases: true, variables: true, allowed_outbound_hosts: true };
}

#[derive(Debug, Clone)]
pub enum FileMount {
    /// A glob relative to the manifest directory; matches keep their relative
    /// path under the guest's `/`.
    Pattern(String),
    /// A host file or directory mounted at a guest path.
    Directory { source: PathBuf, destination: String },
}

// ---- the TOML as written ----------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    trigger: BTreeMap<String, Vec<toml::Table>>,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApplication {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    version: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    authors: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    /// Trigger-wide settings such as `[application.trigger.redis]`.
    #[serde(default)]
    trigger: RawApplicationTriggers,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawApplicationTriggers {
    redis: Option<RawRedisSettings>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedisSettings {
    address: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedisTrigger {
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<String>,
    channel: String,
    component: String,
    address: Option<String>,
}

/// Exactly the plugin's keys: it refuses any other, `id` included.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCronTrigger {
    component: String,
    cron_expression: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpTrigger {
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<String>,
    route: RawRoute,
    component: String,
    #[serde(default)]
    executor: Option<RawExecutor>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private { private: bool },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExecutor {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    source: RawSource,
    #[serde(default)]
    files: Vec<RawFile>,
    #[serde(default)]
    exclude_files: Vec<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    #[allow(dead_code)]
    build: Option<toml::Table>,
    #[serde(default)]
    tool: Option<toml::Table>,
    #[serde(default)]
    dependencies_inherit_configuration: bool,
    #[serde(default)]
    dependencies: BTreeMap<String, RawDependency>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDependency {
    component: Option<String>,
    path: Option<String>,
    version: Option<String>,
    url: Option<String>,
    #[allow(dead_code)]
    digest: Option<String>,
    #[allow(dead_code)]
    registry: Option<String>,
    #[allow(dead_code)]
    package: Option<String>,
    export: Option<String>,
    inherit_configuration: Option<RawInherit>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawInherit {
    All(bool),
    Some(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSource {
    Path(String),
    Remote {
        url: String,
        #[allow(dead_code)]
        digest: String,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawFile {
    Pattern(String),
    Mount { source: String, destination: String },
}

// ---- loading and validation ------------------------------------------------

impl Manifest {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        Self::parse(path, &text)
    }

    /// Parses `text` as the manifest at `path` (which only names it and sets
    /// the base directory).
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let invalid = |problem: String| anyhow::anyhow!("invalid manifest {}: {problem}", path.display());
        let raw: RawManifest = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        match raw.spin_manifest_version {
            toml::Value::Integer(2) => {}
            toml::Value::String(ref v) if v == "2" => {}
            other => {
                return Err(invalid(format!(
                    "`spin_manifest_version` is {other}; shop-host reads version 2"
                )));
            }
        }
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));

        for (name, decl) in &raw.variables {
            check_variable_name(name).map_err(|e| invalid(format!("[variables] {e}")))?;
            if decl.required && decl.default.is_some() {
                return Err(invalid(format!(
                    "[variables] `{name}` is required and has a default; choose one"
                )));
            }
        }

        let app_variables: Vec<String> = raw.variables.keys().cloned().collect();
        let mut components = BTreeMap::new();
        for (id, raw) in raw.component {
            check_component_id(&id).map_err(|e| invalid(format!("[component.{id}] {e:#}")))?;
            let decl = component(&id, raw, &dir, &app_variables)
                .map_err(|e| invalid(format!("[component.{id}] {e:#}")))?;
            components.insert(id, decl);
        }

        for decl in components.values() {
            for dep in &decl.dependencies {
                if let DependencySource::Component(target) = &dep.source {
                    if !components.contains_key(target) {
                        return Err(invalid(format!(
                            "[component.{}] dependencies.\"{}\": component `{target}` is not defined",
                            decl.id, dep.import
                        )));
                    }
                    if *target == decl.id {
                        return Err(invalid(format!(
                            "[component.{}] dependencies.\"{}\": a component cannot depend on itself",
                            decl.id, dep.import
                        )));
                    }
                    let grants = components[target].own_grants();
                    if !grants.is_empty() {
                        return Err(invalid(format!(
                            "[component.{}] dependencies.\"{}\": component `{target}` has resources or permissions of its own ({}), and Spin refuses such a component as a dependency; depend on its file instead (`{{ path = \"….wasm\", inherit_configuration = […] }}`)",
                            decl.id,
                            dep.import,
                            grants.join(", ")
                        )));
                    }
                }
            }
        }

        let mut http_triggers = Vec::new();
        let mut redis_triggers = Vec::new();
        let mut cron_triggers = Vec::new();
        let app_redis_address = raw.application.trigger.redis.map(|r| r.address);
        for (kind, triggers) in raw.trigger {
            match kind.as_str() {
                "http" => {
                    for (i, table) in triggers.into_iter().enumerate() {
                        let at = format!("[[trigger.http]] #{}", i + 1);
                        let raw: RawHttpTrigger = toml::Value::Table(table)
                            .try_into()
                            .map_err(|e: toml::de::Error| invalid(format!("{at}: {}", e.message())))?;
                        http_triggers.push(
                            http_trigger(raw, &components).map_err(|e| invalid(format!("{at}: {e:#}")))?,
                        );
                    }
                }
                "redis" => {
                    for (i, table) in triggers.into_iter().enumerate() {
                        let at = format!("[[trigger.redis]] #{}", i + 1);
                        let raw: RawRedisTrigger = toml::Value::Table(table)
                            .try_into()
                            .map_err(|e: toml::de::Error| invalid(format!("{at}: {}", e.message())))?;
                        let trigger = redis_trigger(raw, app_redis_address.as_deref(), &components, &app_variables)
                            .map_err(|e| invalid(format!("{at}: {e:#}")))?;
                        redis_triggers.push(trigger);
                    }
                }
                "cron" => {
                    for (i, table) in triggers.into_iter().enumerate() {
                        let at = format!("[[trigger.cron]] #{}", i + 1);
                        let raw: RawCronTrigger = toml::Value::Table(table)
                            .try_into()
                            .map_err(|e: toml::de::Error| invalid(format!("{at}: {}", e.message())))?;
                        cron_triggers.push(cron_trigger(raw, &components).map_err(|e| invalid(format!("{at}: {e:#}")))?);
                    }
                }
                other => {
                    return Err(invalid(format!(
                        "[[trigger.{other}]]: shop-host has no `{other}` trigger"
                    )));
                }
            }
        }

        // Spin's Redis trigger and the cron plugin do not provide local
        // service chaining: an app whose such component lists a
        // `*.spin.internal` host is refused.
        let non_http = redis_triggers
            .iter()
            .map(|t| (&t.component, format!("a Redis trigger (channel `{}`)", t.channel)))
            .chain(cron_triggers.iter().map(|t| (&t.component, format!("a cron trigger (`{}`)", t.cron_expression))));
        // The trigger-cron plugin is built on an older Spin whose
        // composition takes only all-or-nothing inheritance: it stops the
        // app (a panic) on a list.
        for trigger in &cron_triggers {
            if let Some(dep) = components[&trigger.component].dependencies.iter().find(|d| d.granular) {
                return Err(invalid(format!(
                    "[component.{}] dependencies.\"{}\": inherit_configuration is a list, and the component is run by a cron trigger (`{}`); Spin's trigger-cron plugin composes only `inherit_configuration = true` or `false`",
                    trigger.component, dep.import, trigger.cron_expression
                )));
            }
        }
        for (component, trigger) in non_http {
            if let Some(host) = components[component].chaining_host() {
                return Err(invalid(format!(
                    "[component.{component}] allowed_outbound_hosts `{host}`: the component is run by {trigger}, which has no local service chaining on Spin; call the service through a WIT import (a component dependency) instead"
                )));
            }
        }

        Ok(Manifest {
            path: path.to_path_buf(),
            dir,
            name: raw.application.name,
            variables: raw.variables,
            http_triggers,
            redis_triggers,
            cron_triggers,
            components,
        })
    }

    /// Keeps only the triggers of `ids` (`--component-id`, as `spin up
    /// --component-id`): the other components are not served. Every id must
    /// be a component of the app.
    pub fn retain_components(&mut self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        for id in ids {
            if !self.components.contains_key(id) {
                bail!(
                    "--component-id `{id}`: {} has no component `{id}` (it has {})",
                    self.path.display(),
                    self.components.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
        let kept = |component: &String| ids.contains(component);
        // As Spin: a selected component may not chain to one not selected.
        for id in ids {
            for entry in &self.components[id].allowed_outbound_hosts_text {
                let Some(target) = chained_component(entry) else { continue };
                let unselected = if target == "*" { self.components.keys().any(|c| !kept(c)) } else { !kept(&target) };
                if unselected {
                    bail!(
                        "--component-id: the selected component `{id}` chains to a component that is not selected (allowed_outbound_hosts `{entry}`); select it too"
                    );
                }
            }
        }
        self.http_triggers.retain(|t| kept(&t.component));
        self.redis_triggers.retain(|t| kept(&t.component));
        self.cron_triggers.retain(|t| kept(&t.component));
        Ok(())
    }
}

/// The plugin's schedule syntax: croner's, with the seconds field required
/// (six fields: `sec min hour dom month dow`, or a nickname such as
/// `@hourly`), in UTC.
pub fn parse_cron_expression(expression: &str) -> Result<croner::Cron> {
    croner::Cron::new(expression)
        .with_seconds_required()
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}; the expression has six fields, `sec min hour day-of-month month day-of-week` (e.g. `*/2 * * * * *`)"))
}

fn cron_trigger(raw: RawCronTrigger, components: &BTreeMap<String, ComponentDecl>) -> Result<CronTrigger> {
    let schedule =
        parse_cron_expression(&raw.cron_expression).with_context(|| format!("cron_expression `{}`", raw.cron_expression))?;
    if !components.contains_key(&raw.component) {
        bail!("component `{}` is not defined (no [component.{}])", raw.component, raw.component);
    }
    Ok(CronTrigger { cron_expression: raw.cron_expression, schedule, component: raw.component })
}

fn http_trigger(raw: RawHttpTrigger, components: &BTreeMap<String, ComponentDecl>) -> Result<HttpTrigger> {
    if let Some(executor) = raw.executor
        && executor.kind != "spin"
    {
        bail!("executor `{}` is not supported; shop-host runs `spin` executors", executor.kind);
    }
    let route = match raw.route {
        RawRoute::Path(route) => {
            crate::routes::RoutePattern::parse(&route)
                .with_context(|| format!("route `{route}`"))?;
            Some(route)
        }
        RawRoute::Private { private: true } => None,
        RawRoute::Private { private: false } => {
            bail!("route must be a path or `{{ private = true }}`, not `{{ private = false }}`")
        }
    };
    if !components.contains_key(&raw.component) {
        bail!("component `{}` is not defined (no [component.{}])", raw.component, raw.component);
    }
    Ok(HttpTrigger { route, component: raw.component })
}

fn redis_trigger(
    raw: RawRedisTrigger,
    app_address: Option<&str>,
    components: &BTreeMap<String, ComponentDecl>,
    app_variables: &[String],
) -> Result<RedisTrigger> {
    let address = raw
        .address
        .as_deref()
        .or(app_address)
        .ok_or_else(|| anyhow::anyhow!("no `address`, and no [application.trigger.redis] address"))?;
    let address = Template::parse(address).context("address")?;
    address.check_references(app_variables).context("address")?;
    if raw.channel.is_empty() {
        bail!("`channel` is empty");
    }
    if !components.contains_key(&raw.component) {
        bail!("component `{}` is not defined (no [component.{}])", raw.component, raw.component);
    }
    Ok(RedisTrigger { address, channel: raw.channel, component: raw.component })
}

fn component(id: &str, raw: RawComponent, dir: &Path, app_variables: &[String]) -> Result<ComponentDecl> {
    let source = match raw.source {
        RawSource::Path(p) => dir.join(p),
        RawSource::Remote { url, digest: _ } => {
            bail!("`source` from a URL ({url}) is not supported; build it locally and give a path")
        }
    };
    if !raw.exclude_files.is_empty() {
        bail!("`exclude_files` is not supported by shop-host");
    }
    let files = raw
        .files
        .into_iter()
        .map(|f| match f {
            RawFile::Pattern(p) => Ok(FileMount::Pattern(p)),
            RawFile::Mount { source, destination } => {
                if !destination.starts_with('/') {
                    bail!("files: destination `{destination}` must be an absolute guest path");
                }
                Ok(FileMount::Directory { source: dir.join(source), destination })
            }
        })
        .collect::<Result<Vec<_>>>()?;
    for label in raw.key_value_stores.iter().chain(&raw.sqlite_databases) {
        check_label(label)?;
    }
    let allowed_outbound_hosts = raw
        .allowed_outbound_hosts
        .iter()
        .map(|h| {
            let t = Template::parse(h).with_context(|| format!("allowed_outbound_hosts `{h}`"))?;
            t.check_references(app_variables)
                .with_context(|| format!("allowed_outbound_hosts `{h}`"))?;
            Ok(t)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut variables = BTreeMap::new();
    for (name, value) in raw.variables {
        check_variable_name(&name).with_context(|| "variables".to_string())?;
        let t = Template::parse(&value).with_context(|| format!("variables.{name}"))?;
        t.check_references(app_variables)
            .with_context(|| format!("variables.{name}"))?;
        variables.insert(name, t);
    }
    let mut dependencies = Vec::new();
    for (import, raw_dep) in raw.dependencies {
        let dep = dependency(&import, raw_dep, dir, raw.dependencies_inherit_configuration)
            .with_context(|| format!("dependencies.\"{import}\""))?;
        dependencies.push(dep);
    }
    Ok(ComponentDecl {
        dependencies,
        id: id.to_string(),
        source,
        files,
        environment: raw.environment,
        key_value_stores: raw.key_value_stores,
        sqlite_databases: raw.sqlite_databases,
        allowed_outbound_hosts,
        allowed_outbound_hosts_text: raw.allowed_outbound_hosts,
        variables,
        limits: component_limits(raw.tool.as_ref())?,
    })
}

fn dependency(import: &str, raw: RawDependency, dir: &Path, inherit_all: bool) -> Result<Dependency> {
    check_import_name(import)?;
    let source = match (raw.component, raw.path, raw.version, raw.url) {
        (Some(c), None, None, None) => DependencySource::Component(c),
        (None, Some(p), None, None) => DependencySource::Path(dir.join(p)),
        (None, None, Some(_), None) => bail!("registry dependencies are not supported by shop-host; use `path` or `component`"),
        (None, None, None, Some(u)) => bail!("dependencies from a URL ({u}) are not supported by shop-host; use `path` or `component`"),
        _ => bail!("give exactly one of `component` or `path`"),
    };
    if raw.export.is_some() && !import.contains('/') {
        bail!("`export` needs an interface import (`pkg:ns/iface`), not a whole package");
    }
    let granular = matches!(raw.inherit_configuration, Some(RawInherit::Some(_)));
    let inherit = match raw.inherit_configuration {
        None if inherit_all => Inherit::ALL,
        None | Some(RawInherit::All(false)) => Inherit::default(),
        Some(RawInherit::All(true)) => Inherit::ALL,
        Some(RawInherit::Some(list)) => {
            let mut inherit = Inherit::default();
            for item in list {
                match item.as_str() {
                    "key_value_stores" => inherit.key_value_stores = true,
                    "sqlite_databases" => inherit.sqlite_databases = true,
                    "variables" => inherit.variables = true,
                    "allowed_outbound_hosts" => inherit.allowed_outbound_hosts = true,
                    other => bail!(
                        "inherit_configuration: `{other}` is not one of key_value_stores, sqlite_databases, variables, allowed_outbound_hosts"
                    ),
                }
            }
            inherit
        }
    };
    Ok(Dependency { import: import.to_string(), source, export: raw.export, inherit, granular })
}

/// `ns:pkg`, `ns:pkg@1.2.3`, `ns:pkg/iface` or `ns:pkg/iface@1.2.3`.
fn check_import_name(name: &str) -> Result<()> {
    let (base, _version) = name.split_once('@').unwrap_or((name, ""));
    let (package, iface) = base.split_once('/').unwrap_or((base, ""));
    let ok = package.split_once(':').is_some_and(|(ns, pkg)| !ns.is_empty() && !pkg.is_empty())
        && !iface.contains('/');
    if !ok {
        bail!("`{name}` is not an import name like `ns:pkg/interface@1.0.0`");
    }
    Ok(())
}

/// Spin's rule for variable names: lowercase ASCII letters, digits and
/// underscores, starting with a letter.
pub fn check_variable_name(name: &str) -> Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        bail!("variable name `{name}` must be lowercase letters, digits and `_`, starting with a letter");
    }
    Ok(())
}

fn check_component_id(id: &str) -> Result<()> {
    let ok = id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!("component id must be lowercase letters, digits, `-` and `_`, starting with a letter");
    }
    Ok(())
}

/// Store labels become file names under the state directory, so they are
/// kept to a safe alphabet.
fn check_label(label: &str) -> Result<()> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!("store label `{label}` must be 1-64 letters, digits, `-` or `_`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest> {
        Manifest::parse(Path::new("/app/spin.toml"), text)
    }

    const MINIMAL: &str = r#"
spin_manifest_version = 2
[application]
name = "shop"
[variables]
token = { required = true }
[[trigger.http]]
route = "/api/..."
component = "api"
[[trigger.http]]
route = { private = true }
component = "hidden"
[component.api]
source = "api.wasm"
key_value_stores = ["cart"]
allowed_outbound_hosts = ["http://hidden.spin.internal"]
variables = { admin_token = "Bearer {{ token }}" }
[component.hidden]
source = "target/hidden.wasm"
"#;

    #[test]
    fn reads_triggers_components_and_variables() {
        let m = parse(MINIMAL).unwrap();
        assert_eq!(m.name, "shop");
        assert_eq!(m.http_triggers.len(), 2);
        assert_eq!(m.http_triggers[0].route.as_deref(), Some("/api/..."));
        assert_eq!(m.http_triggers[1].route, None);
        let api = &m.components["api"];
        assert_eq!(api.source, PathBuf::from("/app/api.wasm"));
        assert_eq!(api.key_value_stores, vec!["cart".to_string()]);
        assert!(m.variables["token"].required);
    }

    #[test]
    fn unknown_key_names_the_file_and_key() {
        let err = parse(&MINIMAL.replace("key_value_stores", "key_value_store")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("/app/spin.toml"), "{msg}");
        assert!(msg.contains("key_value_store"), "{msg}");
    }

    #[test]
    fn trigger_of_unknown_component_is_refused() {
        let err = parse(&MINIMAL.replace("component = \"hidden\"", "component = \"nope\"")).unwrap_err();
        assert!(format!("{err:#}").contains("component `nope` is not defined"), "{err:#}");
    }

    #[test]
    fn template_of_undeclared_variable_is_refused() {
        let err = parse(&MINIMAL.replace("{{ token }}", "{{ tokn }}")).unwrap_err();
        assert!(format!("{err:#}").contains("tokn"), "{err:#}");
    }

    #[test]
    fn wrong_manifest_version_is_refused() {
        let err = parse(&MINIMAL.replace("spin_manifest_version = 2", "spin_manifest_version = 1")).unwrap_err();
        assert!(format!("{err:#}").contains("version 2"), "{err:#}");
    }

    #[test]
    fn dependencies_are_read_with_their_inheritance() {
        let text = MINIMAL.replace(
            "[component.hidden]",
            "[component.api.dependencies]\n\"shop:catalog/catalog@0.1.0\" = { component = \"hidden\", inherit_configuration = [\"sqlite_databases\"] }\n\"shop:tax\" = { path = \"tax.wasm\", inherit_configuration = true }\n[component.hidden]",
        );
        let m = parse(&text).unwrap();
        let deps = &m.components["api"].dependencies;
        let catalog = deps.iter().find(|d| d.import == "shop:catalog/catalog@0.1.0").unwrap();
        assert_eq!(catalog.source, DependencySource::Component("hidden".into()));
        assert!(catalog.inherit.sqlite_databases && !catalog.inherit.key_value_stores);
        let tax = deps.iter().find(|d| d.import == "shop:tax").unwrap();
        assert_eq!(tax.source, DependencySource::Path("/app/tax.wasm".into()));
        assert_eq!(tax.inherit, Inherit::ALL);
    }

    #[test]
    fn dependency_mistakes_are_refused() {
        for (dep, problem) in [
            ("{ component = \"nope\" }", "component `nope` is not defined"),
            ("{ component = \"api\" }", "cannot depend on itself"),
            ("{ version = \"1.0.0\" }", "registry dependencies"),
            ("{ component = \"hidden\", inherit_configuration = [\"files\"] }", "`files`"),
        ] {
            let text = MINIMAL.replace(
                "[component.hidden]",
                &format!("[component.api.dependencies]\n\"shop:catalog/catalog\" = {dep}\n[component.hidden]"),
            );
            let err = format!("{:#}", parse(&text).unwrap_err());
            assert!(err.contains(problem), "{dep}: {err}");
        }
    }

    #[test]
    fn chaining_entries_are_hosts_under_spin_internal() {
        for entry in ["http://catalog.spin.internal", "http://*.spin.internal", "https://A.Spin.Internal:8080", "*://x.spin.internal:*"] {
            assert!(is_chaining_entry(entry), "{entry}");
        }
        for entry in ["http://spin.internal", "https://example.com", "redis://127.0.0.1:6379", "http://spin.internal.example.com"] {
            assert!(!is_chaining_entry(entry), "{entry}");
        }
    }

    #[test]
    fn a_component_dependency_with_its_own_environment_or_dependencies_is_refused() {
        for grant in ["environment = { A = \"1\" }", "files = [\"x.txt\"]", "variables = { a = \"1\" }"] {
            let text = MINIMAL.replace(
                "[component.hidden]\nsource = \"target/hidden.wasm\"",
                &format!("[component.api.dependencies]\n\"shop:catalog/catalog\" = {{ component = \"hidden\" }}\n[component.hidden]\nsource = \"target/hidden.wasm\"\n{grant}"),
            );
            let err = format!("{:#}", parse(&text).unwrap_err());
            let key = grant.split(' ').next().unwrap();
            assert!(err.contains("component `hidden`") && err.contains(key), "{grant}: {err}");
        }
    }

    #[test]
    fn bad_label_is_refused() {
        let err = parse(&MINIMAL.replace("[\"cart\"]", "[\"../etc\"]")).unwrap_err();
        assert!(format!("{err:#}").contains("store label"), "{err:#}");
    }

    fn with_cron(trigger: &str) -> Result<Manifest> {
        parse(&format!("{}\n[[trigger.cron]]\n{trigger}\n", MINIMAL.replace("[component.api]", "[component.tick]\nsource = \"tick.wasm\"\n[component.api]")))
    }

    #[test]
    fn cron_triggers_take_six_field_expressions_and_nicknames() {
        for expression in ["*/2 * * * * *", "0 0 12 * * MON-FRI", "@hourly", "0 0 0 L * *"] {
            let m = with_cron(&format!("component = \"tick\"\ncron_expression = \"{expression}\"")).unwrap();
            assert_eq!(m.cron_triggers[0].cron_expression, expression);
        }
    }

    #[test]
    fn malformed_cron_expressions_are_refused_naming_file_key_and_problem() {
        for expression in ["* * * * *", "* * * * * * 2030", "61 * * * * *", "every minute", ""] {
            let e = format!("{:#}", with_cron(&format!("component = \"tick\"\ncron_expression = \"{expression}\"")).unwrap_err());
            assert!(e.contains("/app/spin.toml") && e.contains("[[trigger.cron]] #1") && e.contains("cron_expression"), "{expression}: {e}");
            assert!(e.contains("six fields"), "{e}");
        }
    }

    #[test]
    fn cron_trigger_keys_are_exactly_the_plugins() {
        let e = format!("{:#}", with_cron("id = \"t\"\ncomponent = \"tick\"\ncron_expression = \"* * * * * *\"").unwrap_err());
        assert!(e.contains("unknown field `id`"), "{e}");
        let e = format!("{:#}", with_cron("component = \"tick\"").unwrap_err());
        assert!(e.contains("cron_expression"), "{e}");
        let e = format!("{:#}", with_cron("component = \"nope\"\ncron_expression = \"* * * * * *\"").unwrap_err());
        assert!(e.contains("component `nope` is not defined"), "{e}");
    }

    #[test]
    fn a_cron_component_may_not_use_service_chaining() {
        let e = format!("{:#}", with_cron("component = \"api\"\ncron_expression = \"* * * * * *\"").unwrap_err());
        assert!(e.contains("cron trigger") && e.contains("hidden.spin.internal"), "{e}");
    }

    #[test]
    fn retaining_components_keeps_only_their_triggers() {
        let mut m = with_cron("component = \"tick\"\ncron_expression = \"* * * * * *\"").unwrap();
        m.retain_components(&["tick".to_string()]).unwrap();
        assert!(m.http_triggers.is_empty());
        assert_eq!(m.cron_triggers.len(), 1);
        let e = m.retain_components(&["nope".to_string()]).unwrap_err().to_string();
        assert!(e.contains("no component `nope`"), "{e}");
        let mut m = with_cron("component = \"tick\"\ncron_expression = \"* * * * * *\"").unwrap();
        let e = m.retain_components(&["api".to_string()]).unwrap_err().to_string();
        assert!(e.contains("`api` chains to a component that is not selected") && e.contains("hidden.spin.internal"), "{e}");
        m.retain_components(&["api".to_string(), "hidden".to_string()]).unwrap();
    }

    #[test]
    fn a_cron_component_with_granular_inheritance_is_refused() {
        let text = MINIMAL.replace(
            "[component.hidden]",
            "[component.api.dependencies]\n\"a:b/c\" = { path = \"c.wasm\", inherit_configuration = [\"sqlite_databases\"] }\n[component.hidden]",
        ).replace("allowed_outbound_hosts = [\"http://hidden.spin.internal\"]\n", "");
        let with = |inherit: &str| parse(&format!("{}\n[[trigger.cron]]\ncomponent = \"api\"\ncron_expression = \"* * * * * *\"\n", text.replace("[\"sqlite_databases\"]", inherit)));
        let e = format!("{:#}", with("[\"sqlite_databases\"]").unwrap_err());
        assert!(e.contains("dependencies.\"a:b/c\"") && e.contains("trigger-cron"), "{e}");
        with("true").unwrap();
        with("false").unwrap();
    }

    #[test]
    fn a_components_own_limits_are_read_from_its_shop_host_tool_table() {
        let text = MINIMAL.replace(
            "[component.hidden]",
            "[component.api.tool.shop-host]\nmax_instance_memory_mib = 16\nrequest_timeout_secs = 2\n[component.api.tool.other]\nanything = 1\n[component.hidden]",
        );
        let m = parse(&text).unwrap();
        let limits = m.components["api"].limits;
        assert_eq!((limits.max_instance_memory_mib, limits.request_timeout_secs, limits.max_concurrent_instances), (Some(16), Some(2), None));
        assert_eq!(m.components["hidden"].limits, ComponentLimits::default());
        for (bad, says) in [("memory = 5", "unknown field `memory`"), ("request_timeout_secs = 0", "must be 1 to 3600"), ("max_instance_memory_mib = \"lots\"", "invalid type")] {
            let text = MINIMAL.replace("[component.hidden]", &format!("[component.api.tool.shop-host]\n{bad}\n[component.hidden]"));
            let e = format!("{:#}", parse(&text).unwrap_err());
            assert!(e.contains("[component.api]") && e.contains("tool.shop-host") && e.contains(says), "{e}");
        }
    }
}
