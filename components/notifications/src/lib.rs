//! The notifications service: a mock mailbox. It reacts to the shop's
//! events with the emails a customer would get, and lists them per customer.
//!
//! One component, two exports: the HTTP API and the Redis receiver.

// The component's exports exist only in wasm: a native build, which runs the
// unit tests, cannot link them. Natively the code under them has no caller.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod domain;
mod events;
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
