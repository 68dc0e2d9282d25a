//! The orders service: orders and their status history.
//!
//! One component, three exports: the HTTP API, the `shop:orders/orders` WIT
//! interface (checkout creates orders through it) and the Redis receiver
//! (fulfillment's and payment's events move orders), over the same domain
//! and store.

// The component's exports (the HTTP handler and the WIT interface) exist only
// in wasm: a native build, which runs the unit tests, cannot link export names
// like `wasi:http/incoming-handler@0.2.0#handle`. Natively the code under them
// is compiled but has no caller; the wasm build still reports dead code.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod domain;
mod events;
#[cfg(target_arch = "wasm32")]
mod export;
mod http;
mod store;

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle(request: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    http::handle(request).await
}

#[cfg(target_arch = "wasm32")]
#[spin_sdk::redis_component]
async fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
    events::receive(&message).await.map_err(anyhow::Error::msg)
}

// Its outbox's due work, on `[[trigger.cron]]`.
shop_shared::cron_component!(crate::events::tick);
