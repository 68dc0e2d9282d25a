//! Which file answers a path, and how: the page rules, content negotiation
//! (gzip), conditional requests (ETag) and caching. No I/O: the files are
//! [`ASSETS`], embedded by build.rs.

/// One embedded file.
#[derive(Debug, PartialEq, Eq)]
pub struct Asset {
    /// Where it is served: its path under `assets/`, with a leading `/`.
    pub path: &'static str,
    pub content_type: &'static str,
    /// FNV-1a of `body`, 16 hex digits: the ETag and the `?v=` fingerprint.
    pub hash: &'static str,
    pub body: &'static [u8],
    /// The same bytes gzipped, when that is smaller.
    pub gzip: Option<&'static [u8]>,
}

pub static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Fingerprinted references (`?v=<hash>`) never change: a year, immutable.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Everything else is revalidated each time (a 304 when unchanged).
pub const REVALIDATE: &str = "no-cache";

/// What a `GET` of `path` gets.
#[derive(Debug, PartialEq)]
pub enum Page {
    Found(&'static Asset),
    /// The HTML 404 page (if there is one), with status 404.
    Missing(Option<&'static Asset>),
}

pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

/// `/` is `index.html`; a file is itself; any other path is the page named
/// after its first segment (`/products/COF-001` → `products.html`, whose
/// script reads the rest of the path), or missing.
pub fn resolve(path: &str) -> Page {
    resolve_in(path, asset)
}

fn resolve_in(path: &str, find: impl Fn(&str) -> Option<&'static Asset>) -> Page {
    if path == "/" {
        if let Some(index) = find("/index.html") {
            return Page::Found(index);
        }
    }
    if let Some(file) = find(path) {
        return Page::Found(file);
    }
    let first = path.strip_prefix('/').unwrap_or_default().split('/').next().unwrap_or_default();
    let is_page_name = !first.is_empty() && first.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if is_page_name && let Some(page) = find(&format!("/{first}.html")) {
        return Page::Found(page);
    }
    Page::Missing(find("/404.html"))
}

/// Whether `accept-encoding` lets us send gzip: listed, and not with q=0.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|header| {
        header.split(',').any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}

/// The ETag of one representation: the gzip bytes are another entity.
pub fn etag(asset: &Asset, gzipped: bool) -> String {
    if gzipped { format!("\"{}-gz\"", asset.hash) } else { format!("\"{}\"", asset.hash) }
}

/// Whether `if-none-match` already names `etag` (weakly, as a GET may).
pub fn not_modified(if_none_match: Option<&str>, etag: &str) -> bool {
    if_none_match.is_some_and(|header| {
        header.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
    })
}

/// A request for this very content (`?v=<its hash>`) may be cached for good.
pub fn cache_control(asset: &Asset, query: &str) -> &'static str {
    let fingerprinted = query.split('&').any(|pair| pair.strip_prefix("v=") == Some(asset.hash));
    if fingerprinted { IMMUTABLE } else { REVALIDATE }
}

#[cfg(test)]
mod tests {
    use super::*;

    static INDEX: Asset = Asset { path: "/index.html", content_type: "text/html", hash: "00000000000000aa", body: b"i", gzip: None };
    static CART: Asset = Asset { path: "/cart.html", content_type: "text/html", hash: "00000000000000bb", body: b"c", gzip: None };
    static MISSING: Asset = Asset { path: "/404.html", content_type: "text/html", hash: "00000000000000cc", body: b"m", gzip: None };
    static CSS: Asset = Asset { path: "/css/shop.css", content_type: "text/css", hash: "00000000000000dd", body: b"s", gzip: Some(b"z") };

    fn find(path: &str) -> Option<&'static Asset> {
        [&INDEX, &CART, &MISSING, &CSS].into_iter().find(|a| a.path == path)
    }

    #[test]
    fn paths_find_their_page() {
        assert_eq!(resolve_in("/", find), Page::Found(&INDEX));
        assert_eq!(resolve_in("/css/shop.css", find), Page::Found(&CSS));
        assert_eq!(resolve_in("/cart", find), Page::Found(&CART));
        assert_eq!(resolve_in("/cart/anything/below", find), Page::Found(&CART));
        for missing in ["/nope", "/css/nope.css", "/cart.html.bak", "/../cart", "/%63art", "//cart"] {
            assert_eq!(resolve_in(missing, find), Page::Missing(Some(&MISSING)), "{missing}");
        }
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        assert!(accepts_gzip(Some("gzip, deflate, br")));
        assert!(accepts_gzip(Some("br;q=1.0, gzip;q=0.8")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("br, deflate")));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn etags_match_weakly_and_per_representation() {
        let plain = etag(&CSS, false);
        let gz = etag(&CSS, true);
        assert_ne!(plain, gz);
        assert!(not_modified(Some(&plain), &plain));
        assert!(not_modified(Some(&format!("\"x\", W/{gz}")), &gz));
        assert!(not_modified(Some("*"), &plain));
        assert!(!not_modified(Some(&gz), &plain));
        assert!(!not_modified(None, &plain));
    }

    #[test]
    fn only_fingerprinted_requests_are_cached_for_good() {
        assert_eq!(cache_control(&CSS, "v=00000000000000dd"), IMMUTABLE);
        assert_eq!(cache_control(&CSS, "x=1&v=00000000000000dd"), IMMUTABLE);
        assert_eq!(cache_control(&CSS, "v=0000000000000000"), REVALIDATE, "an old fingerprint is not this content");
        assert_eq!(cache_control(&CSS, ""), REVALIDATE);
    }

    #[test]
    fn every_embedded_page_reference_is_fingerprinted() {
        for page in ASSETS.iter().filter(|a| a.path.ends_with(".html")) {
            let text = std::str::from_utf8(page.body).unwrap();
            for other in ASSETS.iter().filter(|a| !a.path.ends_with(".html")) {
                let bare = format!("=\"{}\"", other.path);
                assert!(!text.contains(&bare), "{} refers to {} without its fingerprint", page.path, other.path);
            }
        }
    }
}
