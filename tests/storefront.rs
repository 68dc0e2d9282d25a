//! The storefront's files, on both runtimes: every image the catalog names
//! (its seed file and its API alike) is served as SVG, every SVG under
//! `components/storefront/assets/images/` belongs to a product, and the
//! operator page `/admin` is served with everything it loads.

use std::collections::BTreeSet;
use std::path::PathBuf;

use shop_tests::*;

fn images_dir() -> PathBuf {
    root().join("components/storefront/assets/images")
}

/// The catalog's seed: `components/catalog/products.json`.
fn seeded_products() -> Vec<Value> {
    let path = root().join("components/catalog/products.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str::<Value>(&text).unwrap().as_array().unwrap().clone()
}

/// `(sku, image)` of every seeded product.
fn seeded_images() -> Vec<(String, String)> {
    seeded_products()
        .iter()
        .map(|p| {
            let sku = p["sku"].as_str().unwrap().to_owned();
            let image = p["image"].as_str().unwrap_or_else(|| panic!("{sku} has no image")).to_owned();
            (sku, image)
        })
        .collect()
}

/// The `<svg>` document `text` is, or why not.
fn check_svg(what: &str, text: &str) {
    let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("{what} is not XML: {e}"));
    let svg = doc.root_element();
    assert_eq!(svg.tag_name().name(), "svg", "{what}: the root element is <{}>", svg.tag_name().name());
    assert_eq!(svg.tag_name().namespace(), Some("http://www.w3.org/2000/svg"), "{what}: not in the SVG namespace");
}

/// Every product's image, from the seed file and from every page of
/// `GET /api/products`, is served: 200, `image/svg+xml`, an `<svg>` document.
fn every_catalog_image_is_served(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();

    let mut images: BTreeSet<String> = seeded_images().into_iter().map(|(_, image)| image).collect();
    let mut listed = BTreeSet::new();
    let mut total = None;
    for page in 1.. {
        let r = h.get(&format!("/api/products?per_page=7&page={page}"));
        assert_eq!(r.status, 200, "{}", r.text);
        let body = r.json();
        total.get_or_insert(body["total"].as_u64().unwrap());
        let products = body["products"].as_array().unwrap();
        if products.is_empty() {
            break;
        }
        for p in products {
            let image = p["image"].as_str().unwrap_or_else(|| panic!("{} has no image: {p}", p["sku"]));
            listed.insert((p["sku"].as_str().unwrap().to_owned(), image.to_owned()));
        }
        assert!(page < 100, "GET /api/products never ends");
    }
    assert_eq!(listed.len() as u64, total.unwrap(), "the pages hold every product once");
    let seeded: BTreeSet<(String, String)> = seeded_images().into_iter().collect();
    assert!(seeded.is_subset(&listed), "the API lists every seeded product with its image");
    images.extend(listed.into_iter().map(|(_, image)| image));
    assert!(images.len() >= 20, "{} images", images.len());

    for image in &images {
        assert!(image.starts_with("/images/") && image.ends_with(".svg"), "{image}");
        let r = h.get(image);
        assert_eq!(r.status, 200, "GET {image}: {}", r.text);
        let content_type = r.header("content-type").unwrap_or_default();
        assert!(
            content_type.split(';').next().unwrap().trim().eq_ignore_ascii_case("image/svg+xml"),
            "GET {image}: content-type {content_type:?}"
        );
        check_svg(&format!("GET {image}"), &r.text);
    }
}

/// The local files a page or module names: `src="/…"` and `href="/…"` in
/// HTML (without the build's `?v=` fingerprint), `from './x.js'` in a module.
fn references(path: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for piece in text.split(attribute).skip(1) {
            let target = piece.split('"').next().unwrap();
            if target.starts_with('/') && !target.starts_with("//") {
                found.push(target.split(['?', '#']).next().unwrap().to_owned());
            }
        }
    }
    let dir = &path[..=path.rfind('/').unwrap()];
    for piece in text.split(" from '").skip(1) {
        let target = piece.split('\'').next().unwrap();
        if let Some(relative) = target.strip_prefix("./") {
            found.push(format!("{dir}{relative}"));
        }
    }
    found
}

/// `/admin` is the operator page under the pages' CSP, with no inline
/// script, style or handler, and every file it loads, and every module
/// those import, is served.
fn admin_page_and_its_files_are_served(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let page = h.get("/admin");
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.header("content-type").unwrap_or_default().starts_with("text/html"));
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("script-src 'self'") && csp.contains("style-src 'self'"), "{csp}");
    for inline in ["<script>", "style=\"", " onclick=", " onload=", " onsubmit=", "<style"] {
        assert!(!page.text.contains(inline), "/admin has {inline}");
    }
    let mut todo = references("/admin", &page.text);
    assert!(todo.iter().any(|p| p == "/js/admin.js") && todo.iter().any(|p| p == "/css/admin.css"), "{todo:?}");
    let mut seen = BTreeSet::new();
    while let Some(path) = todo.pop() {
        if path == "/admin" || !seen.insert(path.clone()) {
            continue;
        }
        let r = h.get(&path);
        assert_eq!(r.status, 200, "GET {path} (named by the operator page): {}", r.text);
        let content_type = r.header("content-type").unwrap_or_default().to_owned();
        if path.ends_with(".js") {
            assert!(content_type.starts_with("text/javascript"), "GET {path}: {content_type}");
            todo.extend(references(&path, &r.text));
        } else if path.ends_with(".css") {
            assert!(content_type.starts_with("text/css"), "GET {path}: {content_type}");
        }
    }
    assert!(seen.iter().filter(|p| p.starts_with("/js/admin")).count() >= 2, "{seen:?}");
}

on_both_runtimes!(every_catalog_image_is_served, admin_page_and_its_files_are_served);

/// No file under assets/images/ is an orphan: each is `<sku>.svg` of a
/// product whose `image` names it.
#[test]
fn every_image_file_belongs_to_a_product() {
    let referenced: BTreeSet<String> = seeded_images().into_iter().map(|(_, image)| image).collect();
    let files = files_under(&images_dir());
    assert!(!files.is_empty(), "{} holds no images", images_dir().display());
    for file in files {
        let name = file.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(referenced.contains(&format!("/images/{name}")), "{name} belongs to no product in products.json");
    }
    for (sku, image) in seeded_images() {
        assert_eq!(image, format!("/images/{sku}.svg"), "{sku}'s image is named after its sku");
        assert!(images_dir().join(format!("{sku}.svg")).is_file(), "{sku} has no image file");
    }
}

/// Each image is a small, self-contained drawing: the shared 400 × 400
/// viewBox, under 3 KB, no script, no event handlers, no embedded bitmap
/// and no reference to anything outside the file.
#[test]
fn images_are_small_self_contained_svgs() {
    for file in files_under(&images_dir()) {
        let what = file.display().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.len() < 3 * 1024, "{what} is {} bytes", text.len());
        check_svg(&what, &text);
        let doc = roxmltree::Document::parse(&text).unwrap();
        assert_eq!(doc.root_element().attribute("viewBox"), Some("0 0 400 400"), "{what}");
        for node in doc.descendants().filter(|n| n.is_element()) {
            let tag = node.tag_name().name();
            assert!(!["script", "image", "foreignObject", "use", "a", "style"].contains(&tag), "{what}: <{tag}>");
            for attribute in node.attributes() {
                let name = attribute.name();
                assert!(!name.to_ascii_lowercase().starts_with("on"), "{what}: <{tag} {name}>");
                assert!(!["href", "src"].contains(&name), "{what}: <{tag} {name}>");
                assert!(!attribute.value().contains("url("), "{what}: <{tag} {name}> refers to something");
            }
        }
    }
}
