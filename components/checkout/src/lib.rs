//! The checkout orchestrator: places an order by running it through the
//! other services as a saga (SPEC §2, §4), with a journal of every step in
//! its own SQLite database. It imports the services' WIT interfaces; which
//! component serves each is spin.toml's choice.

// The component's exports (the HTTP handler) and imports (the services)
// exist only in wasm: natively, where the unit tests run, the saga is driven
// by fakes and the code under the exports has no caller.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod domain;
mod http;
mod saga;
#[cfg(target_arch = "wasm32")]
mod services;
mod store;
#[cfg(target_arch = "wasm32")]
mod timer;

/// Answers first, then publishes what the request decided: the shopper
/// does not wait for the broker.
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle(request: spin_sdk::http::IncomingRequest, out: spin_sdk::http::ResponseOutparam) {
    let answer = http::handle(request, &services::Wired).await;
    shop_shared::request::send(out, answer.response).await;
    if let Some(store) = answer.then_publish {
        store.publish_events();
    }
}

shop_shared::cron_component!(crate::timer::tick);
