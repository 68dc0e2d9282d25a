//! The customers service: who buys, and where their orders go.

// The component's exports (the HTTP handler and the WIT interface) exist only
// in wasm: a native build, which runs the unit tests, cannot link export names
// like `wasi:http/incoming-handler@0.2.0#handle`. Natively the code under them
// is compiled but has no caller; the wasm build still reports dead code.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod credentials;
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
