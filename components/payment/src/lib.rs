//! The payment service: card authorizations, captures, voids and refunds,
//! each idempotent by its key. Of a card only the brand and last four digits
//! are ever stored or logged.
//!
//! Three exports over the same domain and store: the HTTP API, the
//! `shop:payment/payment` WIT interface (checkout authorizes through it) and
//! the Redis receiver (`events.rs`: a shipped order is captured, a cancelled
//! one voided or refunded).

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
