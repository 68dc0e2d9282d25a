//! The payment service: card authorizations, captures, voids and refunds,
//! each idempotent by its key. Of a card only the brand and last four digits
//! are ever stored or logged.

// The component's exports (the HTTP handler and the WIT interface) exist only
// in wasm: a native build, which runs the unit tests, cannot link export names
// like `wasi:http/incoming-handler@0.2.0#handle`. Natively the code under them
// is compiled but has no caller; the wasm build still reports dead code.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod domain;
#[cfg(target_arch = "wasm32")]
mod export;
mod http;
mod store;

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
fn handle(request: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    http::handle(request)
}
