//! The runtime config file (`--runtime-config-file`, the same TOML Spin
//! reads): where each key-value store and SQLite database label lives. The
//! only module that knows that file's shape.
//!
//! As in Spin, a component may use the `default` labels without one; any
//! other label must be declared here (`[key_value_store.<label>]`,
//! `[sqlite_database.<label>]`), or the app is refused at load. shop-host
//! keeps every store in a local SQLite file, so it takes `type = "spin"`
//! only and refuses other backends (Redis, libSQL, …) and other tables by
//! name instead of ignoring them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

/// The label every component may use without a runtime config.
pub const DEFAULT_LABEL: &str = "default";

/// Where each declared store label lives.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// The file, for messages; `None` when none was given.
    pub path: Option<PathBuf>,
    key_value: BTreeMap<String, Option<PathBuf>>,
    sqlite: BTreeMap<String, Option<PathBuf>>,
}

/// The two kinds of store a label may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    KeyValue,
    Sqlite,
}

impl StoreKind {
    /// The manifest key that lists labels of this kind.
    pub fn manifest_key(self) -> &'static str {
        match self {
            StoreKind::KeyValue => "key_value_stores",
            StoreKind::Sqlite => "sqlite_databases",
        }
    }

    fn table(self) -> &'static str {
        match self {
            StoreKind::KeyValue => "key_value_store",
            StoreKind::Sqlite => "sqlite_database",
        }
    }

    /// The directory under the state directory for labels without a path.
    fn state_subdir(self) -> &'static str {
        match self {
            StoreKind::KeyValue => "key_value",
            StoreKind::Sqlite => "sqlite",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    #[serde(rename = "type")]
    kind: String,
    path: Option<PathBuf>,
}

impl RuntimeConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read runtime config {}", path.display()))?;
        Self::parse(path, &text)
    }

    /// Parses `text` as the file at `path`; relative store paths are
    /// relative to that file's directory.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let invalid = |problem: String| anyhow!("invalid runtime config {}: {problem}", path.display());
        let table: toml::Table = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut config = RuntimeConfig { path: Some(path.to_path_buf()), ..Default::default() };
        for (key, value) in table {
            let kind = match key.as_str() {
                "key_value_store" => StoreKind::KeyValue,
                "sqlite_database" => StoreKind::Sqlite,
                other => {
                    return Err(invalid(format!(
                        "[{other}] is not supported by shop-host (it reads [key_value_store.<label>] and [sqlite_database.<label>])"
                    )));
                }
            };
            let toml::Value::Table(stores) = value else {
                return Err(invalid(format!("`{key}` must be a table of labels, e.g. [{key}.cart]")));
            };
            for (label, store) in stores {
                let at = format!("[{key}.{label}]");
                let raw: RawStore = store.try_into().map_err(|e: toml::de::Error| invalid(format!("{at}: {}", e.message())))?;
                if raw.kind != "spin" {
                    return Err(invalid(format!(
                        "{at}: type `{}` is not supported by shop-host, which keeps every store in a local file (type = \"spin\")",
                        raw.kind
                    )));
                }
                let file = raw.path.map(|p| dir.join(p));
                let labels = match kind {
                    StoreKind::KeyValue => &mut config.key_value,
                    StoreKind::Sqlite => &mut config.sqlite,
                };
                labels.insert(label, file);
            }
        }
        Ok(config)
    }

    /// The file that holds `label`: its declared path, or one under
    /// `state_dir`. An undeclared label other than `default` is an error
    /// that says how to declare it.
    pub fn file(&self, kind: StoreKind, label: &str, state_dir: &Path) -> Result<PathBuf> {
        let labels = match kind {
            StoreKind::KeyValue => &self.key_value,
            StoreKind::Sqlite => &self.sqlite,
        };
        let in_state = || state_dir.join(kind.state_subdir()).join(format!("{label}.db"));
        match labels.get(label) {
            Some(Some(path)) => Ok(path.clone()),
            Some(None) => Ok(in_state()),
            None if label == DEFAULT_LABEL => Ok(in_state()),
            None => {
                let table = kind.table();
                let hint = match &self.path {
                    Some(path) => format!("declare [{table}.{label}] in {}", path.display()),
                    None => format!("give a runtime config file (--runtime-config-file) that declares [{table}.{label}]"),
                };
                bail!("{} label `{label}` is not defined: only `default` needs no runtime config; {hint}", kind.manifest_key())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuntimeConfig> {
        RuntimeConfig::parse(Path::new("/app/runtime-config.toml"), text)
    }

    #[test]
    fn declared_labels_live_at_their_path_or_in_the_state_dir() {
        let config = parse(
            "[sqlite_database.orders]\ntype = \"spin\"\npath = \".spin/orders.db\"\n\n[key_value_store.cart]\ntype = \"spin\"\n",
        )
        .unwrap();
        let state = Path::new("/state");
        assert_eq!(config.file(StoreKind::Sqlite, "orders", state).unwrap(), PathBuf::from("/app/.spin/orders.db"));
        assert_eq!(config.file(StoreKind::KeyValue, "cart", state).unwrap(), PathBuf::from("/state/key_value/cart.db"));
        assert_eq!(config.file(StoreKind::Sqlite, "default", state).unwrap(), PathBuf::from("/state/sqlite/default.db"));
    }

    #[test]
    fn an_undeclared_label_is_refused_with_how_to_declare_it() {
        let none = RuntimeConfig::default();
        let err = none.file(StoreKind::Sqlite, "orders", Path::new("/s")).unwrap_err().to_string();
        assert!(err.contains("sqlite_databases label `orders`") && err.contains("[sqlite_database.orders]"), "{err}");
        let config = parse("[key_value_store.cart]\ntype = \"spin\"\n").unwrap();
        let err = config.file(StoreKind::KeyValue, "carts", Path::new("/s")).unwrap_err().to_string();
        assert!(err.contains("/app/runtime-config.toml"), "{err}");
        assert!(config.file(StoreKind::Sqlite, "cart", Path::new("/s")).is_err(), "kinds are apart");
    }

    #[test]
    fn other_backends_and_tables_are_refused_by_name() {
        for (text, problem) in [
            ("[key_value_store.cart]\ntype = \"redis\"\nurl = \"redis://x\"\n", "unknown field `url`"),
            ("[key_value_store.cart]\ntype = \"redis\"\n", "type `redis`"),
            ("[sqlite_database.x]\ntype = \"libsql\"\n", "type `libsql`"),
            ("[llm_compute]\ntype = \"spin\"\n", "[llm_compute]"),
            ("[sqlite_database.x]\npath = \"a.db\"\n", "missing field `type`"),
        ] {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(err.contains(problem) && err.contains("/app/runtime-config.toml"), "{text}: {err}");
        }
    }
}
