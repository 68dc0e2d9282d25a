//! Compiled components kept on disk and mapped into memory, not copied.
//!
//! Compiling a component with Cranelift takes seconds, so its machine code
//! is kept in a file (`<cache>/shop-host/compiled/<stem>-<hash>.cwasm`) and
//! a restart loads that instead. The file is mapped (`deserialize_file`),
//! so only the pages of code an app really runs become resident, and they
//! are file pages the kernel can drop and share; a copy on the heap would
//! keep every byte of every component resident. On this shop that is most
//! of its idle memory: 35 MiB of code and metadata for 11 MiB of `.wasm`,
//! of which a checkout touches a small part.
//!
//! The key is the SHA-256 of the `.wasm` bytes and wasmtime's compatibility
//! hash of the engine's settings, so a changed component or a changed
//! engine never meets an old file. Files are written whole under a
//! temporary name and renamed, so a reader never sees half of one. A few
//! versions per component are kept (several checkouts of the tree may
//! share the cache); older ones are removed when a new one is written.
//! When the cache cannot be written, the component is compiled in memory
//! and the host runs as before.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Versions of one component's code kept side by side.
const KEPT_PER_COMPONENT: usize = 4;

/// Where compiled code lives: `$SHOP_COMPILED_CACHE`, else
/// `$XDG_CACHE_HOME/shop-host/compiled`, else `~/.cache/shop-host/compiled`;
/// `None` when none of them can be named (then nothing is kept).
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SHOP_COMPILED_CACHE").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|d| !d.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("shop-host").join("compiled"))
}

/// The compiled component of `source`, from the cache in `dir` or compiled
/// now (and then kept there).
pub fn load(engine: &Engine, dir: Option<&Path>, source: &Path) -> Result<Component> {
    let wasm = std::fs::read(source).map_err(|e| anyhow!("cannot read {}: {e}", source.display()))?;
    let invalid = |e: wasmtime::Error| anyhow!("{} is not a valid WebAssembly component: {e:?}", source.display());
    let Some(dir) = dir else {
        return Component::new(engine, &wasm).map_err(invalid);
    };
    let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("component");
    let cached = dir.join(format!("{stem}-{}.cwasm", key(engine, &wasm)));
    if cached.is_file() {
        // SAFETY: the file was written by `keep` below from this engine's
        // own compilation of these bytes (the name says which), whole, by
        // rename; wasmtime checks its header and settings again on load.
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => return Ok(component),
            Err(e) => tracing::warn!("compiled code in {} is unusable, compiling again: {e}", cached.display()),
        }
    }
    let code = engine.precompile_component(&wasm).map_err(invalid)?;
    match keep(dir, stem, &cached, &code) {
        // SAFETY: as above; it is the file just written.
        Ok(()) => match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => return Ok(component),
            Err(e) => tracing::warn!("cannot map {}: {e}", cached.display()),
        },
        Err(e) => tracing::warn!("compiled code of {} not kept ({e}); it stays in memory", source.display()),
    }
    // SAFETY: `code` is what this engine's `precompile_component` returned.
    unsafe { Component::deserialize(engine, &code) }.map_err(invalid)
}

fn key(engine: &Engine, wasm: &[u8]) -> String {
    let mut settings = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut settings);
    let mut hash = Sha256::new();
    hash.update(wasm);
    hash.update(settings.finish().to_le_bytes());
    hash.update(env!("CARGO_PKG_VERSION").as_bytes());
    let digest = hash.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `code` to `path` whole, then removes the oldest other versions
/// of the same component beyond [`KEPT_PER_COMPONENT`].
fn keep(dir: &Path, stem: &str, path: &Path, code: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let partial = dir.join(format!(".{stem}-{}.partial", std::process::id()));
    std::fs::write(&partial, code)?;
    std::fs::rename(&partial, path)?;
    let prefix = format!("{stem}-");
    let mut versions: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            // `<stem>-<32 hex>.cwasm` only: another component's stem may
            // itself start with this one's and a dash.
            name.strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".cwasm"))
                .is_some_and(|hash| hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    for (_, old) in versions.into_iter().skip(KEPT_PER_COMPONENT) {
        // A process still running an old version keeps its mapping.
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = r#"(component
        (core module $m (func (export "f") (result i32) i32.const 7))
        (core instance $i (instantiate $m))
        (func (export "f") (result u32) (canon lift (core func $i "f"))))"#;

    /// A directory of this test alone, removed when dropped.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("shop-compiled-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
        fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).unwrap()
    }

    /// A scratch directory holding `hello.wasm` (the component above).
    fn with_hello(name: &str) -> (Scratch, PathBuf) {
        let tmp = Scratch::new(name);
        let source = tmp.path().join("hello.wasm");
        std::fs::write(&source, wat::parse_str(HELLO).unwrap()).unwrap();
        (tmp, source)
    }

    fn call(engine: &Engine, component: &Component) -> u32 {
        let mut store = wasmtime::Store::new(engine, ());
        let linker = wasmtime::component::Linker::new(engine);
        let instance = linker.instantiate(&mut store, component).unwrap();
        let f = instance.get_typed_func::<(), (u32,)>(&mut store, "f").unwrap();
        f.call(&mut store, ()).unwrap().0
    }

    #[test]
    fn compiles_once_then_maps_the_kept_file() {
        let (tmp, source) = with_hello("once");
        let cache = tmp.path().join("cache");
        let engine = engine();

        let first = load(&engine, Some(&cache), &source).unwrap();
        assert_eq!(call(&engine, &first), 7);
        let kept: Vec<_> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        let written = std::fs::metadata(&kept[0]).unwrap().modified().unwrap();

        let second = load(&engine, Some(&cache), &source).unwrap();
        assert_eq!(call(&engine, &second), 7);
        assert_eq!(std::fs::metadata(&kept[0]).unwrap().modified().unwrap(), written, "not written again");
    }

    #[test]
    fn a_damaged_file_is_compiled_again_and_replaced() {
        let (tmp, source) = with_hello("damaged");
        let cache = tmp.path().join("cache");
        let engine = engine();
        load(&engine, Some(&cache), &source).unwrap();
        let kept = std::fs::read_dir(&cache).unwrap().next().unwrap().unwrap().path();
        std::fs::write(&kept, b"not machine code").unwrap();

        let again = load(&engine, Some(&cache), &source).unwrap();
        assert_eq!(call(&engine, &again), 7);
        assert_ne!(std::fs::read(&kept).unwrap(), b"not machine code");
    }

    #[test]
    fn old_versions_beyond_the_few_kept_are_removed() {
        let tmp = Scratch::new("old");
        let cache = tmp.path().join("cache");
        let engine = engine();
        let source = tmp.path().join("hello.wasm");
        // Another component whose name starts with this one's is left alone.
        std::fs::create_dir_all(&cache).unwrap();
        let other = cache.join(format!("hello-world-{}.cwasm", "0".repeat(32)));
        std::fs::write(&other, b"x").unwrap();
        for n in 0..KEPT_PER_COMPONENT + 2 {
            let wat = HELLO.replace("i32.const 7", &format!("i32.const {n}"));
            std::fs::write(&source, wat::parse_str(&wat).unwrap()).unwrap();
            let component = load(&engine, Some(&cache), &source).unwrap();
            assert_eq!(call(&engine, &component), n as u32);
            // Distinct modification times, so "oldest" is well defined.
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mine = std::fs::read_dir(&cache)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name().to_string_lossy().into_owned();
                name.starts_with("hello-") && !name.starts_with("hello-world-")
            })
            .count();
        assert_eq!(mine, KEPT_PER_COMPONENT);
        assert!(other.exists());
    }

    #[test]
    fn an_unwritable_cache_still_loads() {
        let (tmp, source) = with_hello("unwritable");
        // A file where the directory should be.
        let blocked = tmp.path().join("blocked");
        std::fs::write(&blocked, b"").unwrap();
        let engine = engine();
        let component = load(&engine, Some(&blocked.join("compiled")), &source).unwrap();
        assert_eq!(call(&engine, &component), 7);
    }

    #[test]
    fn not_a_component_is_a_clear_error() {
        let tmp = Scratch::new("invalid");
        let source = tmp.path().join("broken.wasm");
        std::fs::write(&source, b"\0asm garbage").unwrap();
        let e = load(&engine(), Some(&tmp.path().join("cache")), &source).unwrap_err();
        assert!(format!("{e}").contains("is not a valid WebAssembly component"), "{e}");
        assert!(!tmp.path().join("cache").exists() || std::fs::read_dir(tmp.path().join("cache")).unwrap().count() == 0);
    }
}
