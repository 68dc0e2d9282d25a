//! Apps from an OCI registry: `shop-host up --from <registry>/<name>:<tag>`
//! runs what `spin registry push` pushed.
//!
//! Spin's layout: one layer of media type
//! `application/vnd.fermyon.spin.application.v1+config` holds the *locked*
//! app (JSON: triggers, components with their grants, variables), each
//! component's and dependency's `.wasm` is a layer
//! (`application/vnd.wasm.content.layer.v1+wasm`) named in the locked app
//! by its digest, and each static file a data layer
//! (`application/vnd.wasm.content.layer.v1+data`) or inlined. The pull goes
//! through oci-client; `--insecure` talks plain HTTP, as Spin's flag does.
//!
//! The pulled app is written out as a directory — the `.wasm` files by
//! digest, the files of each component, and a `spin.toml` made from the
//! locked app — which is then loaded like any manifest, so an app from a
//! registry obeys exactly the rules of one on disk.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_client::client::{ClientConfig, ClientProtocol, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::Value;
use toml::Table;

const LOCKED_APP: &str = "application/vnd.fermyon.spin.application.v1+config";
const WASM_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";
const WASM_LAYER_WKG: &str = "application/wasm";
const DATA_LAYER: &str = "application/vnd.wasm.content.layer.v1+data";
const ARCHIVE_LAYER: &str = "application/vnd.wasm.content.bundle.v1.tar+gzip";

/// Whether `--from` names a registry reference rather than a file: it is no
/// existing path and reads as `host/name[:tag|@digest]`.
pub fn is_reference(from: &Path) -> bool {
    if from.exists() {
        return false;
    }
    let text = from.to_string_lossy();
    !text.ends_with(".toml") && text.contains('/') && text.parse::<Reference>().is_ok()
}

/// Pulls `reference` into `into` and returns the path of the `spin.toml`
/// written there.
pub async fn pull(reference: &str, insecure: bool, into: &Path) -> Result<PathBuf> {
    let parsed: Reference = reference.parse().with_context(|| format!("`{reference}` is not a registry reference"))?;
    // reqwest's TLS needs a provider; the tree's rustls has ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::new(ClientConfig {
        protocol: if insecure { ClientProtocol::Http } else { ClientProtocol::Https },
        ..ClientConfig::default()
    });
    let image = client
        .pull(&parsed, &RegistryAuth::Anonymous, vec![LOCKED_APP, WASM_LAYER, WASM_LAYER_WKG, DATA_LAYER, ARCHIVE_LAYER])
        .await
        .with_context(|| {
            format!("cannot pull {reference}{}", if insecure { "" } else { " (a plain-HTTP registry needs --insecure)" })
        })?;
    let locked = image
        .layers
        .iter()
        .find(|l| l.media_type == LOCKED_APP)
        .map(|l| l.data.to_vec())
        .or_else(|| (image.config.media_type == LOCKED_APP).then(|| image.config.data.to_vec()))
        .with_context(|| format!("{reference} is not a Spin application (it has no {LOCKED_APP} layer)"))?;
    let locked: Value = serde_json::from_slice(&locked).with_context(|| format!("{reference}: the locked app is not JSON"))?;
    std::fs::create_dir_all(into).with_context(|| format!("cannot create {}", into.display()))?;
    let layers = Layers { layers: &image.layers };
    let manifest = manifest_of(&locked, &layers, into).with_context(|| format!("{reference}: cannot read the locked app"))?;
    let path = into.join("spin.toml");
    std::fs::write(&path, manifest).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!("pulled {reference} ({}) into {}", image.digest.as_deref().unwrap_or("no digest"), into.display());
    Ok(path)
}

/// As Spin does: a locked app may say the host must understand some of its
/// fields (`must_understand`) or have some features (`host_requirements`,
/// app-wide or per component); anything beyond local service chaining, which
/// shop-host has, refuses the app.
fn refuse_what_is_not_understood(locked: &Value) -> Result<()> {
    for field in strings(locked.get("must_understand")) {
        let field = field.as_str().unwrap_or_default();
        if !["host_requirements", "component_host_requirements"].contains(&field) {
            bail!("the app requires the host to understand `{field}`, which shop-host does not");
        }
    }
    let requirements = std::iter::once(locked.get("host_requirements"))
        .chain(locked.get("components").and_then(Value::as_array).into_iter().flatten().map(|c| c.get("host_requirements")));
    for map in requirements.flatten().filter_map(Value::as_object) {
        for (feature, level) in map {
            if feature != "local_service_chaining" && level.as_str() != Some("optional") {
                bail!("the app requires the feature `{feature}`, which shop-host does not have");
            }
        }
    }
    Ok(())
}

struct Layers<'a> {
    layers: &'a [ImageLayer],
}

impl Layers<'_> {
    /// The bytes a locked app's content reference stands for: inline
    /// (base64) or a layer by digest.
    fn content(&self, content: &Value) -> Result<Vec<u8>> {
        if let Some(inline) = content.get("inline").and_then(Value::as_str) {
            use base64::Engine as _;
            return base64::engine::general_purpose::STANDARD.decode(inline).context("inline content is not base64");
        }
        let digest = content.get("digest").and_then(Value::as_str).context("content has neither `inline` nor `digest`")?;
        let layer = self
            .layers
            .iter()
            .find(|l| l.sha256_digest() == digest)
            .with_context(|| format!("no layer has digest {digest}"))?;
        if layer.media_type == ARCHIVE_LAYER {
            bail!("files pushed as archive layers (SPIN_OCI_ARCHIVE_LAYERS) are not supported by shop-host");
        }
        Ok(layer.data.to_vec())
    }

    /// Writes a `.wasm` by its digest into `dir`; returns its path.
    fn wasm(&self, source: &Value, dir: &Path) -> Result<PathBuf> {
        let bytes = self.content(source)?;
        let name = source.get("digest").and_then(Value::as_str).map_or_else(|| format!("inline-{}", bytes.len()), |d| d.replace(':', "-"));
        let path = dir.join("wasm").join(format!("{name}.wasm"));
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

fn strings(v: Option<&Value>) -> Vec<Value> {
    v.and_then(Value::as_array).map(|a| a.iter().filter(|s| s.is_string()).cloned().collect()).unwrap_or_default()
}

fn string_map(v: Option<&Value>) -> Table {
    let mut t = Table::new();
    for (k, v) in v.and_then(Value::as_object).into_iter().flatten() {
        if let Some(s) = v.as_str() {
            t.insert(k.clone(), toml::Value::String(s.to_string()));
        }
    }
    t
}

fn toml_of(v: &Value) -> Result<toml::Value> {
    toml::Value::try_from(v).context("value has no TOML form")
}

/// The manifest (v2) a locked app stands for, with its content written
/// under `dir`.
fn manifest_of(locked: &Value, layers: &Layers<'_>, dir: &Path) -> Result<String> {
    refuse_what_is_not_understood(locked)?;
    let meta = locked.get("metadata").cloned().unwrap_or(Value::Null);
    let mut application = Table::new();
    application.insert("name".into(), meta.get("name").and_then(Value::as_str).unwrap_or("app").into());
    for key in ["version", "description"] {
        if let Some(s) = meta.get(key).and_then(Value::as_str) {
            application.insert(key.into(), s.into());
        }
    }
    if let Some(triggers) = meta.get("triggers").filter(|t| t.is_object()) {
        application.insert("trigger".into(), toml_of(triggers)?);
    }

    let mut variables = Table::new();
    for (name, decl) in locked.get("variables").and_then(Value::as_object).into_iter().flatten() {
        let mut v = Table::new();
        match decl.get("default").and_then(Value::as_str) {
            Some(d) => v.insert("default".into(), d.into()),
            None => v.insert("required".into(), true.into()),
        };
        if decl.get("secret").and_then(Value::as_bool) == Some(true) {
            v.insert("secret".into(), true.into());
        }
        variables.insert(name.clone(), v.into());
    }

    let mut triggers = Table::new();
    for t in locked.get("triggers").and_then(Value::as_array).into_iter().flatten() {
        let kind = t.get("trigger_type").and_then(Value::as_str).context("a trigger has no trigger_type")?;
        let config = t.get("trigger_config").context("a trigger has no trigger_config")?;
        let entry = toml_of(config)?;
        match triggers.entry(kind.to_string()).or_insert_with(|| toml::Value::Array(Vec::new())) {
            toml::Value::Array(list) => list.push(entry),
            _ => unreachable!(),
        }
    }

    let mut components = Table::new();
    for c in locked.get("components").and_then(Value::as_array).into_iter().flatten() {
        let id = c.get("id").and_then(Value::as_str).context("a component has no id")?;
        let source = c.get("source").with_context(|| format!("component `{id}` has no source"))?;
        let mut component = Table::new();
        let wasm = layers.wasm(source, dir).with_context(|| format!("component `{id}`"))?;
        component.insert("source".into(), wasm.to_string_lossy().into_owned().into());
        let m = c.get("metadata");
        for (from, to) in [("allowed_outbound_hosts", "allowed_outbound_hosts"), ("key_value_stores", "key_value_stores"), ("databases", "sqlite_databases")] {
            let list = strings(m.and_then(|m| m.get(from)));
            if !list.is_empty() {
                component.insert(to.into(), toml::Value::try_from(list)?);
            }
        }
        let env = string_map(c.get("env"));
        if !env.is_empty() {
            component.insert("environment".into(), env.into());
        }
        let config = string_map(c.get("config"));
        if !config.is_empty() {
            component.insert("variables".into(), config.into());
        }
        let files: Vec<&Value> = c.get("files").and_then(Value::as_array).into_iter().flatten().collect();
        if !files.is_empty() {
            let root = dir.join("files").join(id);
            for f in files {
                let guest = f.get("path").and_then(Value::as_str).context("a file has no path")?;
                let relative = Path::new(guest.trim_start_matches('/'));
                if relative.components().any(|p| matches!(p, std::path::Component::ParentDir)) {
                    bail!("component `{id}`: file path {guest} leaves its directory");
                }
                let at = root.join(relative);
                std::fs::create_dir_all(at.parent().unwrap_or(&root))?;
                std::fs::write(&at, layers.content(f).with_context(|| format!("component `{id}`: file {guest}"))?)?;
            }
            let mount: Table = [("source".to_string(), toml::Value::from(root.to_string_lossy().into_owned())), ("destination".to_string(), "/".into())]
                .into_iter()
                .collect();
            component.insert("files".into(), toml::Value::Array(vec![mount.into()]));
        }
        let mut dependencies = Table::new();
        for (name, dep) in c.get("dependencies").and_then(Value::as_object).into_iter().flatten() {
            let mut d = Table::new();
            let path = layers.wasm(dep.get("source").context("a dependency has no source")?, dir)?;
            d.insert("path".into(), path.to_string_lossy().into_owned().into());
            if let Some(export) = dep.get("export").and_then(Value::as_str) {
                d.insert("export".into(), export.into());
            }
            match dep.get("inherit") {
                Some(Value::String(s)) if s == "All" => {
                    d.insert("inherit_configuration".into(), true.into());
                }
                Some(Value::Object(o)) if o.contains_key("Some") => {
                    d.insert("inherit_configuration".into(), toml::Value::try_from(strings(o.get("Some")))?);
                }
                _ => {}
            }
            dependencies.insert(name.clone(), d.into());
        }
        if !dependencies.is_empty() {
            component.insert("dependencies".into(), dependencies.into());
        }
        components.insert(id.to_string(), component.into());
    }

    let mut manifest = Table::new();
    manifest.insert("spin_manifest_version".into(), 2.into());
    manifest.insert("application".into(), application.into());
    if !variables.is_empty() {
        manifest.insert("variables".into(), variables.into());
    }
    manifest.insert("trigger".into(), triggers.into());
    manifest.insert("component".into(), components.into());
    Ok(format!("# Written by shop-host from a registry's locked app.\n{}", toml::to_string(&manifest)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_paths_are_told_apart() {
        assert!(is_reference(Path::new("127.0.0.1:5000/shop:v1")));
        assert!(is_reference(Path::new("ghcr.io/acme/shop@sha256:0123456789012345678901234567890123456789012345678901234567890123")));
        assert!(!is_reference(Path::new("spin.toml")));
        assert!(!is_reference(Path::new("apps/shop/spin.toml")));
        assert!(!is_reference(Path::new("/")));
    }

    #[test]
    fn a_locked_app_becomes_a_manifest() {
        let dir = std::env::temp_dir().join(format!("shop-registry-test-{}", std::process::id()));
        let wasm = ImageLayer::new(b"\0asm".to_vec(), WASM_LAYER.to_string(), None);
        let digest = wasm.sha256_digest();
        let locked = serde_json::json!({
            "spin_lock_version": 1,
            "metadata": { "name": "shop", "triggers": { "redis": { "address": "{{ redis }}" } } },
            "variables": { "token": { "secret": true }, "redis": { "default": "redis://127.0.0.1:6379" } },
            "triggers": [
                { "id": "t1", "trigger_type": "http", "trigger_config": { "component": "web", "route": "/..." } },
                { "id": "t2", "trigger_type": "redis", "trigger_config": { "component": "web", "channel": "c" } }
            ],
            "components": [{
                "id": "web",
                "source": { "content_type": "application/wasm", "digest": digest },
                "metadata": { "allowed_outbound_hosts": ["redis://x"], "databases": ["orders"], "build": { "command": "x" } },
                "config": { "token": "{{ token }}" },
                "files": [{ "inline": "aGk=", "path": "/static/a.txt" }]
            }]
        });
        let layers = [wasm];
        let text = manifest_of(&locked, &Layers { layers: &layers }, &dir).unwrap();
        let parsed: Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["variables"]["token"]["required"].as_bool(), Some(true));
        assert_eq!(parsed["trigger"]["http"][0]["route"].as_str(), Some("/..."));
        assert_eq!(parsed["component"]["web"]["sqlite_databases"][0].as_str(), Some("orders"));
        assert_eq!(std::fs::read(dir.join("files/web/static/a.txt")).unwrap(), b"hi");
        let source = parsed["component"]["web"]["source"].as_str().unwrap();
        assert_eq!(std::fs::read(source).unwrap(), b"\0asm");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn requirements_the_host_does_not_meet_are_refused() {
        let ok = serde_json::json!({ "must_understand": ["component_host_requirements"], "components": [{ "host_requirements": { "local_service_chaining": "required" } }] });
        assert!(refuse_what_is_not_understood(&ok).is_ok());
        let field = serde_json::json!({ "must_understand": ["time_travel"] });
        assert!(refuse_what_is_not_understood(&field).unwrap_err().to_string().contains("`time_travel`"));
        let feature = serde_json::json!({ "host_requirements": { "gpu": "required" } });
        assert!(refuse_what_is_not_understood(&feature).unwrap_err().to_string().contains("`gpu`"));
        let optional = serde_json::json!({ "host_requirements": { "gpu": "optional" } });
        assert!(refuse_what_is_not_understood(&optional).is_ok());
    }

    #[test]
    fn a_file_outside_its_directory_is_refused() {
        let dir = std::env::temp_dir().join(format!("shop-registry-escape-{}", std::process::id()));
        let wasm = ImageLayer::new(b"\0asm".to_vec(), WASM_LAYER.to_string(), None);
        let locked = serde_json::json!({
            "triggers": [],
            "components": [{ "id": "web", "source": { "digest": wasm.sha256_digest() }, "files": [{ "inline": "aGk=", "path": "/../../x" }] }]
        });
        let layers = [wasm];
        let e = manifest_of(&locked, &Layers { layers: &layers }, &dir).unwrap_err();
        assert!(format!("{e:#}").contains("leaves its directory"), "{e:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
