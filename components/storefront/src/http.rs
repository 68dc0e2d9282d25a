//! The storefront's HTTP handler: `GET`/`HEAD` of the pages and files in
//! `assets/` (crate::domain decides which file and how), an HTML 404 page
//! for unknown pages, and the shared JSON error for `/api/...` paths no
//! service serves (Spin routes those here, as `/...` is the catch-all).

use shop_shared::{ApiError, read_request};
use spin_sdk::http::{IncomingRequest, IntoResponse, Method, Response};

use crate::domain::{self, Page};

/// What every page may load: only the shop's own files and APIs. No inline
/// script or style, so an injected one does not run.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; script-src 'self'; \
    style-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn handle(incoming: IncomingRequest) -> Response {
    // Read as every service reads (a bounded body), though no page takes one.
    let request = match read_request(incoming) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    let path = request.path();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::not_found("not_found", format!("no such resource: {path}")).into_response();
    }
    let head = match request.method() {
        Method::Get => false,
        Method::Head => true,
        _ => {
            return Response::builder()
                .status(405)
                .header("allow", "GET, HEAD")
                .header("content-type", "text/plain; charset=utf-8")
                .body("The shop's pages are read with GET.\n")
                .build();
        }
    };
    let header = |name: &str| request.header(name).and_then(|v| v.as_str());
    let (asset, status) = match domain::resolve(path) {
        Page::Found(asset) => (asset, 200),
        Page::Missing(Some(page)) => (page, 404),
        Page::Missing(None) => {
            return Response::builder()
                .status(404)
                .header("content-type", "text/plain; charset=utf-8")
                .body("Not found\n")
                .build();
        }
    };
    let gzipped = asset.gzip.is_some() && domain::accepts_gzip(header("accept-encoding"));
    let etag = domain::etag(asset, gzipped);
    let mut response = Response::builder();
    response.header("content-type", asset.content_type);
    response.header("x-content-type-options", "nosniff");
    if asset.content_type.starts_with("text/html") {
        response.header("content-security-policy", CONTENT_SECURITY_POLICY);
        response.header("referrer-policy", "same-origin");
    }
    if asset.gzip.is_some() {
        response.header("vary", "accept-encoding");
    }
    if status == 404 {
        // The 404 page is not what this path is: never cache it as that.
        response.header("cache-control", "no-store");
        return response.status(404).body(if head { Vec::new() } else { asset.body.to_vec() }).build();
    }
    response.header("etag", etag.as_str());
    response.header("cache-control", domain::cache_control(asset, request.query()));
    if domain::not_modified(header("if-none-match"), &etag) {
        return response.status(304).body(Vec::new()).build();
    }
    let body = match (gzipped, asset.gzip) {
        (true, Some(gz)) => {
            response.header("content-encoding", "gzip");
            gz
        }
        _ => asset.body,
    };
    response.header("content-length", body.len().to_string());
    response.status(status).body(if head { Vec::new() } else { body.to_vec() }).build()
}
