//! The inventory service (being written).

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
fn handle(_request: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    spin_sdk::http::IntoResponse::into_response(shop_shared::ApiError::not_found("not_found", "inventory is not served yet"))
}
