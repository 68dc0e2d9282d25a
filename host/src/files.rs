//! The `files` a component asks for, offered to it read-only through WASI
//! filesystem preopens.
//!
//! A `{ source, destination }` entry mounts a host directory as is. Glob
//! entries (`"static/**/*"`) are resolved at load time and the matches are
//! copied into `<state-dir>/files/<component>/`, which is mounted at `/`, as
//! Spin's local loader does: the guest sees exactly the files it listed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::manifest::{ComponentDecl, FileMount};

/// A host directory and where the guest sees it.
#[derive(Debug, Clone)]
pub struct Mount {
    pub host: PathBuf,
    pub guest: String,
}

pub fn prepare(decl: &ComponentDecl, app_dir: &Path, state_dir: &Path) -> Result<Vec<Mount>> {
    let mut mounts = Vec::new();
    let mut patterns = Vec::new();
    for file in &decl.files {
        match file {
            FileMount::Directory { source, destination } => {
                if !source.is_dir() {
                    bail!("files: `{}` is not a directory", source.display());
                }
                mounts.push(Mount { host: source.clone(), guest: destination.clone() });
            }
            FileMount::Pattern(p) => patterns.push(p.as_str()),
        }
    }
    if !patterns.is_empty() {
        let root = state_dir.join("files").join(&decl.id);
        if root.exists() {
            std::fs::remove_dir_all(&root).with_context(|| format!("cannot clear {}", root.display()))?;
        }
        let mut found = Vec::new();
        walk(app_dir, app_dir, &mut found)?;
        for pattern in patterns {
            let matched: Vec<&PathBuf> = found
                .iter()
                .filter(|rel| glob_matches(pattern, &rel.to_string_lossy()))
                .collect();
            if matched.is_empty() {
                bail!("files: `{pattern}` matches no file under {}", app_dir.display());
            }
            for rel in matched {
                let to = root.join(rel);
                std::fs::create_dir_all(to.parent().unwrap_or(&root))?;
                std::fs::copy(app_dir.join(rel), &to)
                    .with_context(|| format!("cannot copy {} for component `{}`", rel.display(), decl.id))?;
            }
        }
        mounts.push(Mount { host: root, guest: "/".to_string() });
    }
    Ok(mounts)
}

/// Regular files under `dir`, relative to `root`; build output and VCS
/// folders are never part of an app's files.
fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            out.push(path.strip_prefix(root).expect("walk stays under root").to_path_buf());
        }
    }
    Ok(())
}

/// `*` and `?` match within one path segment, `**` any number of segments.
fn glob_matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.trim_start_matches("./").split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    segments_match(&pattern, &path)
}

fn segments_match(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| segments_match(rest, &path[skip..])),
        Some((first, rest)) => match path.split_first() {
            Some((name, path_rest)) => segment_matches(first.as_bytes(), name.as_bytes()) && segments_match(rest, path_rest),
            None => false,
        },
    }
}

fn segment_matches(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| segment_matches(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && segment_matches(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && segment_matches(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob_matches("static/**/*", "static/css/site.css"));
        assert!(glob_matches("static/**/*", "static/index.html"));
        assert!(!glob_matches("static/**/*", "other/index.html"));
        assert!(glob_matches("*.txt", "a.txt"));
        assert!(!glob_matches("*.txt", "dir/a.txt"));
        assert!(glob_matches("data/products.json", "data/products.json"));
        assert!(glob_matches("img/?.png", "img/a.png"));
    }
}
