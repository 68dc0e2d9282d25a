//! The cart's HTTP API: routes to the domain and the store, JSON in and out.

use serde_json::Value;
use shop_shared::{ApiError, JsonBody, Router, json_response, read_request};
use spin_sdk::http::{IncomingRequest, IntoResponse, Method, Request, Response};

use crate::catalog;
use crate::domain::{CartError, CartId, MAX_QUANTITY, Quantity};
use crate::store::CartStore;

#[derive(Clone, Copy)]
enum Route {
    GetCart,
    EmptyCart,
    AddItem,
    SetQuantity,
    RemoveItem,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Get, "/api/carts/:cart_id", Route::GetCart)
        .route(Method::Delete, "/api/carts/:cart_id", Route::EmptyCart)
        .route(Method::Post, "/api/carts/:cart_id/items", Route::AddItem)
        .route(
            Method::Put,
            "/api/carts/:cart_id/items/:sku",
            Route::SetQuantity,
        )
        .route(
            Method::Delete,
            "/api/carts/:cart_id/items/:sku",
            Route::RemoveItem,
        )
}

pub async fn handle(incoming: IncomingRequest) -> Response {
    respond(incoming)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn respond(incoming: IncomingRequest) -> Result<Response, ApiError> {
    let request = read_request(incoming)?;
    let (route, params) = router().resolve(request.method(), request.path())?;
    let id = CartId::parse(params.get("cart_id"))?;
    match route {
        Route::GetCart => {
            let cart = CartStore::open()?.load(&id)?;
            Ok(json_response(200, &cart))
        }
        Route::EmptyCart => {
            CartStore::open()?.delete(&id)?;
            Ok(Response::new(204, ()))
        }
        Route::AddItem => add_item(&request, &id).await,
        Route::SetQuantity => {
            let sku = params.get("sku");
            let quantity = quantity(&JsonBody::parse(request.body())?)?;
            let cart = CartStore::open()?.update(&id, |cart| cart.set_quantity(sku, quantity))?;
            Ok(json_response(200, &cart))
        }
        Route::RemoveItem => {
            let sku = params.get("sku");
            let cart = CartStore::open()?.update(&id, |cart| cart.remove(sku))?;
            Ok(json_response(200, &cart))
        }
    }
}

/// `POST /api/carts/{cart_id}/items` `{"sku": "MUG-001", "quantity": 2}`; the
/// sku is checked with the catalog first.
async fn add_item(request: &Request, id: &CartId) -> Result<Response, ApiError> {
    let body = JsonBody::parse(request.body())?;
    let sku: String = body.required("sku")?;
    let quantity = quantity(&body)?;
    catalog::ensure_known(&sku).await?;
    let cart = CartStore::open()?.update(id, |cart| cart.add(&sku, quantity))?;
    Ok(json_response(200, &cart))
}

/// The body's `quantity`. Anything but a whole number (missing, `1.5`, `"2"`)
/// gets the same message as one out of range.
fn quantity(body: &JsonBody) -> Result<Quantity, CartError> {
    match body.value("quantity") {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
            Quantity::new(n.as_i64().unwrap_or(i64::MAX))
        }
        Some(other) => Err(CartError::InvalidQuantity(format!(
            "quantity must be a whole number from 1 to {MAX_QUANTITY}, got {other}"
        ))),
        None => Err(CartError::InvalidQuantity(format!(
            "quantity is required: a whole number from 1 to {MAX_QUANTITY}"
        ))),
    }
}

impl From<CartError> for ApiError {
    fn from(error: CartError) -> Self {
        let message = error.to_string();
        match error {
            CartError::InvalidCartId(_) => ApiError::bad_request("invalid_cart_id", message),
            CartError::InvalidQuantity(_) => ApiError::unprocessable("invalid_quantity", message),
            CartError::UnknownSku(sku) => {
                ApiError::not_found("unknown_sku", message).with("skus", vec![sku])
            }
            CartError::NotInCart(sku) => {
                ApiError::not_found("not_in_cart", message).with("sku", sku)
            }
            CartError::TooManyLines => ApiError::unprocessable("too_many_lines", message),
            CartError::CatalogUnavailable(_) => {
                ApiError::unavailable("catalog_unavailable", message)
            }
            CartError::StoreUnavailable(_) => ApiError::unavailable("cart_unavailable", message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantity_of(json: &str) -> Result<u32, CartError> {
        quantity(&JsonBody::parse(json.as_bytes()).unwrap()).map(Quantity::get)
    }

    #[test]
    fn quantity_must_be_a_whole_number_in_range() {
        assert_eq!(quantity_of(r#"{"quantity": 2}"#), Ok(2));
        for body in [
            r#"{"quantity": 0}"#,
            r#"{"quantity": 100}"#,
            r#"{"quantity": 10000}"#,
            r#"{"quantity": -1}"#,
            r#"{"quantity": 1.5}"#,
            r#"{"quantity": 2.0}"#,
            r#"{"quantity": "2"}"#,
            r#"{"quantity": 18446744073709551615}"#,
            r#"{"quantity": null}"#,
            r#"{}"#,
        ] {
            assert!(
                matches!(quantity_of(body), Err(CartError::InvalidQuantity(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn errors_have_their_status_and_code() {
        let cases = [
            (CartError::InvalidCartId("x".into()), 400, "invalid_cart_id"),
            (
                CartError::InvalidQuantity("x".into()),
                422,
                "invalid_quantity",
            ),
            (CartError::UnknownSku("A-1".into()), 404, "unknown_sku"),
            (CartError::NotInCart("A-1".into()), 404, "not_in_cart"),
            (CartError::TooManyLines, 422, "too_many_lines"),
            (
                CartError::CatalogUnavailable("x".into()),
                503,
                "catalog_unavailable",
            ),
            (
                CartError::StoreUnavailable("x".into()),
                503,
                "cart_unavailable",
            ),
        ];
        for (error, status, code) in cases {
            let error = ApiError::from(error);
            assert_eq!((error.status, error.code), (status, code));
        }
        let unknown = ApiError::from(CartError::UnknownSku("A-1".into()));
        assert_eq!(unknown.extra["skus"], serde_json::json!(["A-1"]));
        assert!(unknown.message.contains("A-1"));
    }
}
