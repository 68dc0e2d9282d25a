//! Asking the catalog whether a sku exists.
//!
//! Through Spin service chaining — an HTTP request to
//! `catalog.spin.internal`, answered in-process by the catalog component —
//! rather than importing `shop:catalog/catalog`: cart and catalog stay
//! separately deployable (each keeps its own HTTP API and can be replaced or
//! scaled alone), and the WIT import path is reserved for the checkout
//! composition, where `spin.toml` wires the services into one component.

use serde_json::json;
use shop_shared::is_valid_sku;
use spin_sdk::http::{Request, Response};

use crate::domain::CartError;

const PRICES_URL: &str = "http://catalog.spin.internal/api/products/prices";

/// `Ok` if the catalog has `sku`; `UnknownSku` if it says it has not;
/// `CatalogUnavailable` if it cannot be asked or answers anything else.
pub async fn ensure_known(sku: &str) -> Result<(), CartError> {
    // A malformed sku cannot be in the catalog; no need to ask.
    if !is_valid_sku(sku) {
        return Err(CartError::UnknownSku(sku.to_owned()));
    }
    let request = Request::post(PRICES_URL, json!({ "skus": [sku] }).to_string())
        .header("content-type", "application/json")
        .build();
    let response: Response = spin_sdk::http::send(request).await.map_err(|e| {
        eprintln!("catalog request failed: {e}");
        CartError::CatalogUnavailable("the catalog cannot be reached".into())
    })?;
    match *response.status() {
        200 => Ok(()),
        404 if error_code(&response).as_deref() == Some("unknown_sku") => {
            Err(CartError::UnknownSku(sku.to_owned()))
        }
        status => {
            eprintln!("catalog answered {status} for {sku}");
            Err(CartError::CatalogUnavailable(format!(
                "the catalog answered {status}"
            )))
        }
    }
}

/// The `error.code` of an error answer, to tell "no such sku" from "no such
/// route" (a 404 from a catalog that is not deployed where expected).
fn error_code(response: &Response) -> Option<String> {
    let body: serde_json::Value = serde_json::from_slice(response.body()).ok()?;
    body["error"]["code"].as_str().map(str::to_owned)
}
