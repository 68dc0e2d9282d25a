//! Serves the shop's HTTP contract, `api/openapi.json` (OpenAPI 3.1), at
//! `GET /api/openapi.json`. The document is compiled in, byte for byte.

// The HTTP export exists only in wasm (see the other components); natively
// the code under it is compiled but has no caller.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use shop_shared::{ApiError, Router, read_request};
use spin_sdk::http::{IncomingRequest, Method, Response};

/// The document, as `api/openapi.json` holds it.
pub const DOCUMENT: &str = include_str!("../../../api/openapi.json");

#[derive(Clone, Copy)]
enum Route {
    Document,
}

fn router() -> Router<Route> {
    Router::new().route(Method::Get, "/api/openapi.json", Route::Document)
}

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
fn handle(request: IncomingRequest) -> Response {
    respond(request).unwrap_or_else(spin_sdk::http::IntoResponse::into_response)
}

fn respond(incoming: IncomingRequest) -> Result<Response, ApiError> {
    let request = read_request(incoming)?;
    let (route, _) = router().resolve(request.method(), request.path())?;
    match route {
        Route::Document => Ok(Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(DOCUMENT.as_bytes().to_vec())
            .build()),
    }
}
