//! Embeds `assets/` into the component: for every file its content type, a
//! content hash (the ETag and the `?v=` fingerprint), and a gzip copy when
//! that is smaller. HTML pages get `?v=<hash>` appended to their references
//! to the other assets (`src="/js/app.js"`), so those can be cached for a
//! year and still change the moment the file does.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("assets");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();

    // Hashes of everything but pages first: pages refer to them.
    let mut fingerprints = Vec::new();
    for (path, file) in &files {
        if !path.ends_with(".html") {
            fingerprints.push((path.clone(), hex(fnv1a(&std::fs::read(file).unwrap()))));
        }
    }
    let mut table = String::from("&[\n");
    for (index, (path, file)) in files.iter().enumerate() {
        println!("cargo:rerun-if-changed={}", file.display());
        let mut body = std::fs::read(file).unwrap();
        if path.ends_with(".html") {
            let mut text = String::from_utf8(body).unwrap_or_else(|_| panic!("{path} is not UTF-8"));
            for (asset, hash) in &fingerprints {
                for quote in ['"', '\''] {
                    text = text.replace(&format!("={quote}{asset}{quote}"), &format!("={quote}{asset}?v={hash}{quote}"));
                }
            }
            body = text.into_bytes();
        }
        let hash = hex(fnv1a(&body));
        let content_type = content_type(path);
        let identity = out.join(format!("asset-{index}"));
        std::fs::write(&identity, &body).unwrap();
        let gzip = if compressible(content_type) {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            encoder.write_all(&body).unwrap();
            let compressed = encoder.finish().unwrap();
            (compressed.len() < body.len()).then(|| {
                let gz = out.join(format!("asset-{index}.gz"));
                std::fs::write(&gz, compressed).unwrap();
                gz
            })
        } else {
            None
        };
        let gzip = match gzip {
            Some(gz) => format!("Some(include_bytes!({:?}))", gz.display().to_string()),
            None => "None".to_owned(),
        };
        writeln!(
            table,
            "    Asset {{ path: {path:?}, content_type: {content_type:?}, hash: {hash:?}, body: include_bytes!({:?}), gzip: {gzip} }},",
            identity.display().to_string()
        )
        .unwrap();
    }
    table.push(']');
    std::fs::write(out.join("assets.rs"), table).unwrap();
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            // Editors' and the OS's leftovers are not the shop's.
            if !relative.split('/').any(|part| part.starts_with('.')) && !relative.ends_with('~') {
                files.push((format!("/{relative}"), path));
            }
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        other => panic!("assets: no content type known for .{other} ({path})"),
    }
}

fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/") || content_type.contains("svg") || content_type.contains("json")
}

/// FNV-1a, 64 bits: a fingerprint of the content, not a security measure.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

fn hex(value: u64) -> String {
    format!("{value:016x}")
}
