//! The storefront's files, on both runtimes: every image the catalog names
//! (its seed file and its API alike) is served as SVG, every SVG under
//! `components/storefront/assets/images/` belongs to a product, and the
//! operator page `/admin` is served with everything it loads; and how the
//! files are served: pages by path, ETag and 304, gzip when asked for, a
//! year's caching only for fingerprinted references, an HTML 404 for
//! unknown pages and the JSON error for unknown `/api/` paths.

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

/// `GET path` over a plain socket, so that the bytes (gzip too) arrive as
/// sent: `(status, lowercase headers, body)`.
fn raw_get(h: &Host, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::{Read, Write};
    let authority = h.url("").trim_start_matches("http://").trim_end_matches('/').to_string();
    let mut stream = std::net::TcpStream::connect(&authority).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = bytes.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&bytes[..line_end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&bytes[line_end + 2..line_end + 2 + size]);
        bytes = &bytes[line_end + 2 + size + 2..];
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn pages_are_served_with_etags_gzip_and_caching(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let index = std::fs::read(root().join("components/storefront/assets/index.html")).unwrap();
    let (status, headers, body) = raw_get(&h, "/", &[]);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("text/html; charset=utf-8"));
    assert!(header(&headers, "content-security-policy").unwrap().contains("script-src 'self'"));
    assert_eq!(header(&headers, "cache-control"), Some("no-cache"));
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("<html") && page.len() >= index.len(), "the page is index.html, fingerprinted");
    let etag = header(&headers, "etag").expect("an etag").to_string();
    let (status, headers, body) = raw_get(&h, "/", &[("if-none-match", &etag)]);
    assert_eq!((status, body.len()), (304, 0), "unchanged: 304 and no body");
    assert_eq!(header(&headers, "etag"), Some(etag.as_str()));

    // Gzip only when accepted, and it is the same page.
    let (status, headers, gz) = raw_get(&h, "/", &[("accept-encoding", "gzip, br")]);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
    assert_eq!(header(&headers, "vary"), Some("accept-encoding"));
    assert_ne!(header(&headers, "etag"), Some(etag.as_str()), "the gzip bytes are another representation");
    assert!(gz.len() < page.len() / 2, "{} of {}", gz.len(), page.len());
    let mut unzipped = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut unzipped).unwrap();
    assert_eq!(unzipped, page);

    // A page's references carry their content's fingerprint, and only those
    // requests may be kept for a year.
    let reference = page
        .split('"')
        .find(|part| part.starts_with("/css/") && part.contains("?v="))
        .unwrap_or_else(|| panic!("no fingerprinted stylesheet in {page}"))
        .to_string();
    let (status, headers, _) = raw_get(&h, &reference, &[]);
    assert_eq!(status, 200, "{reference}");
    assert_eq!(header(&headers, "content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(header(&headers, "cache-control"), Some("public, max-age=31536000, immutable"));
    let bare = reference.split('?').next().unwrap();
    let (_, headers, _) = raw_get(&h, &format!("{bare}?v=0000000000000000"), &[]);
    assert_eq!(header(&headers, "cache-control"), Some("no-cache"), "an old fingerprint is not this content");

    // Pages by path; unknown pages and API paths.
    let r = h.get("/products/COF-001");
    assert_eq!(r.status, 200);
    assert!(r.text.contains("<html"), "{}", r.text);
    let r = h.get("/no/such/page");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r.text.contains("<html"), "{}", r.text);
    let r = h.get("/api/no-such-service");
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    let r = h.request("POST", "/", &[], Some(b"x"));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = h.request("HEAD", "/", &[], None);
    assert_eq!((r.status, r.text.as_str()), (200, ""));
}

on_both_runtimes!(
    every_catalog_image_is_served,
    admin_page_and_its_files_are_served,
    pages_are_served_with_etags_gzip_and_caching,
);

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
