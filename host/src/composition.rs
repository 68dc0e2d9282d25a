//! Component dependencies (`[component.x.dependencies]`): an import of one
//! component satisfied by the export of another, chosen in spin.toml, so a
//! service can be swapped without rebuilding the component that uses it.
//!
//! Spin composes the two into one component at load time. shop-host links
//! them instead: every function of a satisfied import is defined in the
//! parent's linker as a host function that calls the same export of the
//! dependency, which runs in a Store of its own, created on the first call
//! of a request and kept for the rest of it (one dependency instance per
//! parent instance, as with composition). Why a Store of its own: the
//! dependency then has its own grants (none, or what it inherits from the
//! parent, exactly as Spin decides), its own memory limit, and a trap in it
//! is reported as a failed call of the parent. The values crossing are
//! plain records, lists and variants (`Val`s); interfaces passing resources
//! across are refused at load time.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, Instance, InstancePre, Linker};
use wasmtime::{Engine, Store};

use opentelemetry::trace::TraceContextExt;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::app::{Grants, InstanceState};
use crate::telemetry::Invocation;
use crate::manifest::Dependency;

/// A dependency ready to instantiate.
pub struct LoadedDependency {
    /// The import it satisfies, for messages.
    pub import: String,
    pub pre: InstancePre<InstanceState>,
    pub grants: Arc<Grants>,
}

/// The dependency instances of one parent instance, started on first use.
#[derive(Default)]
pub struct Dependencies {
    plans: Option<Arc<[LoadedDependency]>>,
    live: Vec<Option<Live>>,
}

struct Live {
    store: Store<InstanceState>,
    instance: Instance,
}

impl Dependencies {
    pub fn new(plans: Option<Arc<[LoadedDependency]>>) -> Self {
        let live = plans.as_ref().map_or(0, |p| p.len());
        Dependencies { plans, live: (0..live).map(|_| None).collect() }
    }
}

/// Defines, in a copy of `base`, every function the parent imports from its
/// dependencies. `compile` gives the compiled dependency of an entry and
/// `grants` what it may use.
pub fn link(
    engine: &Engine,
    base: &Linker<InstanceState>,
    parent: &Component,
    dependencies: &[(Dependency, Component, Grants)],
) -> Result<(Linker<InstanceState>, Option<Arc<[LoadedDependency]>>)> {
    if dependencies.is_empty() {
        return Ok((base.clone(), None));
    }
    let mut linker = base.clone();
    let mut plans = Vec::new();
    let mut forwards = Vec::new();
    for (index, (dep, component, grants)) in dependencies.iter().enumerate() {
        let pre = base.instantiate_pre(component).map_err(|e| {
            anyhow!("the dependency for `{}` cannot run on shop-host (a dependency's own imports must be host interfaces): {e}", dep.import)
        })?;
        plans.push(LoadedDependency { import: dep.import.clone(), pre, grants: Arc::new(grants.clone()) });

        let mut satisfied_any = false;
        for (import, item) in parent.component_type().imports(engine) {
            let ComponentItem::ComponentInstance(instance_type) = item.ty else { continue };
            if !satisfies(&dep.import, import) {
                continue;
            }
            satisfied_any = true;
            let export = match &dep.export {
                Some(e) => e.clone(),
                None => import.to_string(),
            };
            let export_name = exported_instance(engine, component, &export)
                .with_context(|| format!("dependency for `{}`", dep.import))?;
            let (_, instance_index) = component
                .get_export(None, &export_name)
                .ok_or_else(|| anyhow!("dependency does not export `{export_name}`"))?;
            for (name, func) in instance_type.exports(engine) {
                match func.ty {
                    ComponentItem::ComponentFunc(_) => {}
                    ComponentItem::Type(_) => continue,
                    ComponentItem::Resource(_) => bail!(
                        "`{import}` passes resources, which shop-host cannot forward between components"
                    ),
                    _ => bail!("`{import}` exports `{name}`, which is not a function"),
                }
                let (_, func_index) = component
                    .get_export(Some(&instance_index), name)
                    .ok_or_else(|| anyhow!("the dependency's `{export_name}` has no function `{name}`"))?;
                forwards.push((import.to_string(), name.to_string(), index, func_index));
            }
        }
        if !satisfied_any {
            tracing::warn!("dependency `{}` matches no import of its component; it is not used", dep.import);
        }
    }
    let plans: Arc<[LoadedDependency]> = plans.into();
    let mut by_import: std::collections::BTreeMap<String, Vec<(String, usize, ComponentExportIndex)>> = Default::default();
    for (import, name, index, func) in forwards {
        by_import.entry(import).or_default().push((name, index, func));
    }
    for (import, funcs) in by_import {
        let mut instance = linker.instance(&import).map_err(|e| anyhow!("{e:?}"))?;
        for (name, index, func_index) in funcs {
            let import_name = import.clone();
            instance
                .func_new_async(&name.clone(), move |mut store, _ty, params, results| {
                    let func_index = func_index.clone();
                    let (import_name, name) = (import_name.clone(), name.clone());
                    let call = tracing::info_span!(
                        target: "shop_host::span",
                        "dependency call",
                        "otel.name" = %format_args!("{} → {import_name}.{name}", store.data().component_id()),
                        "otel.kind" = "client",
                        "otel.status_code" = tracing::field::Empty,
                        "rpc.system" = "wasm-component",
                        "rpc.service" = import_name.as_str(),
                        "rpc.method" = name.as_str(),
                        component = store.data().component_id(),
                    );
                    if let Some(step) = store.data().innermost_span() {
                        // Inside the component's own span (a saga step).
                        let _ = call.set_parent(opentelemetry::Context::new().with_remote_span_context(step.clone()));
                    }
                    let outer = store.data().outer_span().clone();
                    Box::new(
                        async move {
                            let run = Invocation::within(tracing::Span::current(), &outer);
                            let live = start(store.data_mut(), index, &run).await?;
                            let func = live
                                .instance
                                .get_func(&mut live.store, &func_index)
                                .ok_or_else(|| wasmtime::format_err!("dependency function vanished"))?;
                            let result = func.call_async(&mut live.store, params, results).await;
                            if result.is_err() {
                                tracing::Span::current().record("otel.status_code", "ERROR");
                            }
                            result
                        }
                        .instrument(call),
                    )
                })
                .map_err(|e| anyhow!("{e:?}"))?;
        }
    }
    Ok((linker, Some(plans)))
}

/// The dependency instance `index` of this parent instance, started if new.
async fn start<'a>(state: &'a mut InstanceState, index: usize, run: &Invocation) -> wasmtime::Result<&'a mut Live> {
    let (app, dependencies) = state.app_and_dependencies();
    let plans = dependencies
        .plans
        .clone()
        .ok_or_else(|| wasmtime::format_err!("component has no dependencies"))?;
    if dependencies.live[index].is_none() {
        let plan = &plans[index];
        let mut store = app
            // A dependency runs under the host's limits, not its parent's.
            .new_store(&format!("dependency {}", plan.import), &plan.grants, None, &app.limits, run)
            .map_err(|e| wasmtime::format_err!("{e:#}"))?;
        let instance = plan.pre.instantiate_async(&mut store).await?;
        dependencies.live[index] = Some(Live { store, instance });
    }
    Ok(dependencies.live[index].as_mut().expect("started above"))
}

/// Whether a dependency key names `import`: the same name, the same
/// interface at any version, or the import's whole package.
fn satisfies(key: &str, import: &str) -> bool {
    if key == import {
        return true;
    }
    let (import_base, import_version) = import.split_once('@').unwrap_or((import, ""));
    if key.contains('/') {
        return !key.contains('@') && key == import_base;
    }
    let (key_package, key_version) = key.split_once('@').unwrap_or((key, ""));
    let import_package = import_base.split_once('/').map_or(import_base, |(p, _)| p);
    key_package == import_package && (key_version.is_empty() || key_version == import_version)
}

/// The name under which `component` exports the instance `wanted`: exactly
/// that, or the same interface at another version.
fn exported_instance(engine: &Engine, component: &Component, wanted: &str) -> Result<String> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
        .map(|(name, _)| name.to_string())
        .collect();
    if exports.iter().any(|e| e == wanted) {
        return Ok(wanted.to_string());
    }
    let base = wanted.split_once('@').map_or(wanted, |(b, _)| b);
    exports
        .iter()
        .find(|e| e.split_once('@').map_or(e.as_str(), |(b, _)| b) == base)
        .cloned()
        .ok_or_else(|| anyhow!("it does not export `{wanted}` (it exports: {})", exports.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::satisfies;

    #[test]
    fn dependency_keys_match_imports() {
        let import = "shop:tax/tax@0.1.0";
        assert!(satisfies("shop:tax/tax@0.1.0", import));
        assert!(satisfies("shop:tax/tax", import));
        assert!(satisfies("shop:tax", import));
        assert!(satisfies("shop:tax@0.1.0", import));
        assert!(!satisfies("shop:tax@0.2.0", import));
        assert!(!satisfies("shop:tax/tax@0.2.0", import));
        assert!(!satisfies("shop:taxes", import));
        assert!(!satisfies("shop:catalog/catalog", import));
    }
}
