//! The admin component: one admin API (SPEC §3) over the event stores that
//! every service keeps for itself. It owns no data: each request fans out by
//! service chaining to the members' own admin routes and merges the answers.

// The component's export exists only in wasm: a native build, which runs
// the unit tests, cannot link it. Natively the code under it has no caller.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod domain;
mod http;

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle(request: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    http::handle(request).await
}
