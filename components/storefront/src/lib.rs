//! The storefront: the shop's pages and their files, served by a component
//! of their own like every other service (SPEC §3), at `/` and every path
//! no service's `/api/...` route takes.

// The HTTP export exists only in wasm; natively (unit tests) the handler has
// no caller.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod domain;
mod http;

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
fn handle(request: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    http::handle(request)
}
