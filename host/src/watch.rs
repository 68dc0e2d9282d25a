//! `shop-host up --watch`: a changed component is swapped in while the app
//! serves, without the restart `spin watch` does.
//!
//! The watcher looks at the manifest and at every `.wasm` file a served
//! component is made of (its source and its dependencies'). When one
//! changes and has stopped changing, it reads the manifest again and, for
//! each served component whose entry or files changed, loads it anew in the
//! background (files compiled only when they changed) with the same checks
//! as at start-up: its imports are linked, its exports match its triggers,
//! its stores exist. Then [`App::swap`] makes new requests use it; requests
//! in flight finish on the old version. A component that fails to load
//! leaves the old one serving, and the log says why. Changes to triggers,
//! application variables or the set of components need a restart, and the
//! log says so.
//!
//! Files are polled (a few `stat`s every [`POLL`]) rather than watched with
//! inotify: cargo and editors replace files by renaming, which ends an
//! inotify watch on the file, and a poll sees every way a file can change.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::{App, FileStamp, Loader};
use crate::manifest::{ComponentDecl, DependencySource, Manifest};

/// How often files are looked at; a change is acted on once two looks in a
/// row agree, so a file still being written is not loaded half done.
pub const POLL: Duration = Duration::from_millis(200);

type Stamps = HashMap<PathBuf, Option<FileStamp>>;

/// Starts the watcher on its own thread, for the life of the process.
pub fn start(app: Arc<App>, loader: Loader, manifest: Manifest, component_ids: Vec<String>) -> std::io::Result<()> {
    let mut watch = Watch { app, loader, stamps: Stamps::new(), manifest, component_ids };
    watch.stamps = watch.look();
    tracing::info!("watching {} and the components' files for changes", watch.manifest.path.display());
    std::thread::Builder::new().name("watch".into()).spawn(move || watch.run())?;
    Ok(())
}

struct Watch {
    app: Arc<App>,
    loader: Loader,
    /// The manifest as the app serves it now.
    manifest: Manifest,
    component_ids: Vec<String>,
    /// The files as they were when last acted on.
    stamps: Stamps,
}

/// The files a component is made of.
fn files_of(manifest: &Manifest, decl: &ComponentDecl) -> Vec<PathBuf> {
    let mut files = vec![decl.source.clone()];
    for dep in &decl.dependencies {
        files.push(match &dep.source {
            DependencySource::Component(id) => manifest.components.get(id).map_or_else(PathBuf::new, |c| c.source.clone()),
            DependencySource::Path(p) => p.clone(),
        });
    }
    files
}

/// What only a restart changes, for comparing two manifests.
fn fixed_part(m: &Manifest) -> String {
    format!("{:?} {:?} {:?} {:?} {:?}", m.name, m.variables, m.http_triggers, m.redis_triggers, m.cron_triggers)
}

impl Watch {
    fn look(&self) -> Stamps {
        let mut files = vec![self.manifest.path.clone()];
        for id in self.app.served() {
            if let Some(decl) = self.manifest.components.get(id) {
                files.extend(files_of(&self.manifest, decl));
            }
        }
        files.into_iter().map(|f| (FileStamp::of(&f), f)).map(|(s, f)| (f, s)).collect()
    }

    fn run(mut self) {
        loop {
            std::thread::sleep(POLL);
            let mut now = self.look();
            if now == self.stamps {
                continue;
            }
            loop {
                std::thread::sleep(POLL);
                let again = self.look();
                if again == now {
                    break;
                }
                now = again;
            }
            self.reload();
        }
    }

    fn reload(&mut self) {
        let path = self.manifest.path.clone();
        let next = Manifest::load(&path).and_then(|mut m| {
            m.retain_components(&self.component_ids)?;
            Ok(m)
        });
        let mut next = match next {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("{}: {e:#}; the app keeps serving as it was", path.display());
                self.stamps = self.look();
                return;
            }
        };
        if fixed_part(&next) != fixed_part(&self.manifest) {
            tracing::warn!(
                "{}: changes to triggers, routes or application variables need a restart; only component entries are swapped",
                path.display()
            );
        }
        let before = std::mem::take(&mut self.stamps);
        let served: Vec<String> = self.app.served().map(String::from).collect();
        for id in served {
            let Some(old) = self.manifest.components.get(&id).cloned() else { continue };
            let Some(decl) = next.components.get(&id).cloned() else {
                tracing::warn!("component `{id}` is no longer in {}; it keeps serving until a restart", path.display());
                next.components.insert(id.clone(), old);
                continue;
            };
            let files_changed = files_of(&next, &decl).iter().any(|f| before.get(f).copied().flatten() != FileStamp::of(f));
            if !files_changed && format!("{decl:?}") == format!("{old:?}") {
                continue;
            }
            let started = Instant::now();
            match self.loader.reload(&self.app, &next, &decl) {
                Ok(loaded) => {
                    let compiled = self.loader.compiler.take_compiled();
                    self.app.swap(loaded);
                    let names: Vec<String> = compiled
                        .iter()
                        .map(|f| f.file_name().map_or_else(|| f.display().to_string(), |n| n.to_string_lossy().into_owned()))
                        .collect();
                    tracing::info!(
                        component = %id,
                        "component `{id}` swapped in {:.0} ms; new requests use it (compiled: {})",
                        started.elapsed().as_secs_f64() * 1000.0,
                        if names.is_empty() { "nothing, every file was unchanged".to_string() } else { names.join(", ") }
                    );
                }
                Err(e) => {
                    self.loader.compiler.take_compiled();
                    tracing::warn!(component = %id, "component `{id}` not swapped: {e:#}; the previous version keeps serving");
                    // Kept as it was, so fixing the entry or file is a change again.
                    next.components.insert(id.clone(), old);
                }
            }
        }
        self.manifest = next;
        self.stamps = self.look();
    }
}
