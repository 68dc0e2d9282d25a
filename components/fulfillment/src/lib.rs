//! The fulfillment service: reacts to placed orders (creates a shipment with
//! a tracking number; when it ships, commits the reservation and reports it
//! shipped) and to cancelled ones (cancels a shipment not yet shipped).
//!
//! One component, two exports: the HTTP API (`wasi:http/incoming-handler`)
//! and the Redis receiver (`fermyon:spin/inbound-redis`), over the same
//! domain and store.

// The component's exports exist only in wasm: a native build, which runs the
// unit tests, cannot link them. Natively the code under them has no caller.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod domain;
mod events;
mod http;
mod inventory;
mod store;
mod warehouse;

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
