//! The inventory's HTTP API: routes to the domain and the store, JSON in and out.
//!
//! - `GET /api/inventory/{sku}` · `PUT /api/inventory/{sku}` (admin)
//! - `POST /api/inventory/reservations` · `GET|DELETE …/reservations/{id}` ·
//!   `POST …/reservations/{id}/commit`
//! - `/api/inventory/admin/...` (admin): dead letters, replay, outbox flush
//!   ([`shop_shared::event_admin`]) of the `order.cancelled` receiver

use serde_json::Value;
use shop_shared::{
    ApiError, JsonBody, Router, event_admin, is_valid_sku, json_response, read_request,
    require_admin,
};
use spin_sdk::http::{IncomingRequest, IntoResponse, Method, Request, Response};

use crate::domain::{
    InventoryError, MAX_LINE_QUANTITY, ReservationId, ReservationRequest, on_hand_level,
};
use crate::events;
use crate::store::{InventoryStore, Reserved, Upserted};

#[derive(Clone, Copy)]
enum Route {
    Reserve,
    GetReservation,
    Commit,
    Release,
    GetStock,
    SetStock,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Post, "/api/inventory/reservations", Route::Reserve)
        .route(
            Method::Get,
            "/api/inventory/reservations/:id",
            Route::GetReservation,
        )
        .route(
            Method::Delete,
            "/api/inventory/reservations/:id",
            Route::Release,
        )
        .route(
            Method::Post,
            "/api/inventory/reservations/:id/commit",
            Route::Commit,
        )
        .route(Method::Get, "/api/inventory/:sku", Route::GetStock)
        .route(Method::Put, "/api/inventory/:sku", Route::SetStock)
}

pub async fn handle(incoming: IncomingRequest) -> Response {
    respond(incoming).await.unwrap_or_else(IntoResponse::into_response)
}

async fn respond(incoming: IncomingRequest) -> Result<Response, ApiError> {
    let request = read_request(incoming)?;
    let admin = event_admin::serve(&request, "inventory", InventoryStore::open, async |store, envelope| {
        events::apply(store, envelope)
    });
    if let Some(answer) = admin.await {
        return answer;
    }
    let (route, params) = router().resolve(request.method(), request.path())?;
    match route {
        Route::Reserve => reserve(&request),
        Route::GetReservation => {
            let id = ReservationId::parse(params.get("id"))?;
            let store = InventoryStore::open()?;
            let reservation = store
                .reservation(&id)?
                .ok_or_else(|| InventoryError::ReservationNotFound(id.as_str().to_owned()))?;
            Ok(json_response(
                200,
                &reservation.view(shop_shared::now_millis()),
            ))
        }
        Route::Commit => {
            let id = ReservationId::parse(params.get("id"))?;
            let (reservation, now) = InventoryStore::open()?.commit(&id)?;
            Ok(json_response(200, &reservation.view(now)))
        }
        Route::Release => {
            let id = ReservationId::parse(params.get("id"))?;
            let (reservation, now) = InventoryStore::open()?.release(&id)?;
            Ok(json_response(200, &reservation.view(now)))
        }
        Route::GetStock => get_stock(params.get("sku")),
        Route::SetStock => set_stock(&request, params.get("sku")),
    }
}

/// `GET /api/inventory/{sku}` → `{sku, on_hand, reserved, available}`
fn get_stock(sku: &str) -> Result<Response, ApiError> {
    let level = InventoryStore::open()?
        .availability(&[sku.to_owned()])?
        .pop()
        .ok_or_else(|| InventoryError::UnknownSkus(vec![sku.to_owned()]))?;
    Ok(json_response(200, &level))
}

/// `PUT /api/inventory/{sku}` (admin) `{"on_hand": 10}`: 200 when the sku was
/// stocked, 201 when it is new to the warehouse.
fn set_stock(request: &Request, sku: &str) -> Result<Response, ApiError> {
    require_admin(request)?;
    if !is_valid_sku(sku) {
        return Err(InventoryError::InvalidSku(format!(
            "sku {sku:?} must be 1 to 64 uppercase letters, digits and dashes, like \"MUG-001\""
        ))
        .into());
    }
    let body = JsonBody::parse(request.body())?;
    let on_hand = match body.value("on_hand") {
        Some(value) => on_hand_level(whole_number(value).ok_or_else(|| {
            InventoryError::InvalidStock(format!(
                "on_hand must be a whole number of units, got {value}"
            ))
        })?)?,
        None => {
            return Err(InventoryError::InvalidStock("on_hand is required".into()).into());
        }
    };
    let (upserted, level) = InventoryStore::open()?.set_on_hand(sku, on_hand)?;
    let status = match upserted {
        Upserted::Created => 201,
        Upserted::Updated => 200,
    };
    Ok(json_response(status, &level))
}

/// `POST /api/inventory/reservations`
/// `{"id"?, "lines": [{"sku", "quantity"}], "ttl_seconds"?}`: 201 with the new
/// reservation, 200 with the existing one when `id` was reserved before with
/// the same lines.
fn reserve(request: &Request) -> Result<Response, ApiError> {
    let body = JsonBody::parse(request.body())?;
    let id = match body.optional::<String>("id")? {
        Some(id) => ReservationId::parse(&id)?,
        None => ReservationId::generate(),
    };
    let ttl_seconds = match body.value("ttl_seconds") {
        None => None,
        Some(value) => Some(whole_number(value).ok_or_else(|| {
            InventoryError::InvalidTtl(format!("ttl_seconds must be a whole number, got {value}"))
        })?),
    };
    let request = ReservationRequest::new(lines(&body)?, ttl_seconds)?;
    let (reserved, reservation, now) = InventoryStore::open()?.reserve(&id, &request)?;
    let status = match reserved {
        Reserved::Created => 201,
        Reserved::Existing => 200,
    };
    Ok(json_response(status, &reservation.view(now)))
}

/// The body's `lines` as `(sku, quantity)`; a quantity that is not a whole
/// number (`1.5`, `"2"`) gets the same message as one out of range.
fn lines(body: &JsonBody) -> Result<Vec<(String, i64)>, InventoryError> {
    let invalid = |message: String| InventoryError::InvalidLines(message);
    let Some(Value::Array(items)) = body.value("lines") else {
        return Err(invalid(
            "lines is required: a list of {\"sku\", \"quantity\"}".into(),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let sku = item
                .get("sku")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("lines[{i}].sku is required: a string")))?;
            let quantity = item.get("quantity").and_then(whole_number).ok_or_else(|| {
                InventoryError::InvalidQuantity(format!(
                    "the quantity of {sku} must be a whole number from 1 to {MAX_LINE_QUANTITY}"
                ))
            })?;
            Ok((sku.to_owned(), quantity))
        })
        .collect()
}

/// A JSON integer (saturating at `i64::MAX`), or `None` for anything else.
fn whole_number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) if n.is_i64() => n.as_i64(),
        Value::Number(n) if n.is_u64() => Some(i64::MAX),
        _ => None,
    }
}

impl From<InventoryError> for ApiError {
    fn from(error: InventoryError) -> Self {
        let message = error.to_string();
        match error {
            InventoryError::InvalidLines(_) => ApiError::unprocessable("invalid_lines", message),
            InventoryError::InvalidQuantity(_) => {
                ApiError::unprocessable("invalid_quantity", message)
            }
            InventoryError::InvalidTtl(_) => ApiError::unprocessable("invalid_ttl", message),
            InventoryError::InvalidStock(_) => ApiError::unprocessable("invalid_stock", message),
            InventoryError::InvalidSku(_) => ApiError::bad_request("invalid_sku", message),
            InventoryError::InvalidReservationId(_) => {
                ApiError::bad_request("invalid_reservation_id", message)
            }
            InventoryError::UnknownSkus(skus) => {
                ApiError::not_found("unknown_sku", message).with("skus", skus)
            }
            InventoryError::InsufficientStock(shortages) => {
                ApiError::conflict("insufficient_stock", message).with(
                    "shortages",
                    serde_json::to_value(shortages).unwrap_or_default(),
                )
            }
            InventoryError::ReservationNotFound(id) => {
                ApiError::not_found("reservation_not_found", message).with("id", id)
            }
            InventoryError::ReservationConflict(id) => {
                ApiError::conflict("reservation_conflict", message).with("id", id)
            }
            InventoryError::ReservationExpired { id, expired_at } => {
                ApiError::conflict("reservation_expired", message)
                    .with("id", id)
                    .with("expired_at", shop_shared::rfc3339(expired_at))
            }
            InventoryError::ReservationReleased(id) => {
                ApiError::conflict("reservation_released", message).with("id", id)
            }
            InventoryError::ReservationCommitted(id) => {
                ApiError::conflict("reservation_committed", message).with("id", id)
            }
            InventoryError::Unavailable(_) => {
                ApiError::unavailable("inventory_unavailable", message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Shortage;
    use serde_json::json;

    fn lines_of(json: &str) -> Result<Vec<(String, i64)>, InventoryError> {
        lines(&JsonBody::parse(json.as_bytes()).unwrap())
    }

    #[test]
    fn lines_are_read_with_whole_quantities() {
        assert_eq!(
            lines_of(r#"{"lines": [{"sku": "A-1", "quantity": 2}]}"#),
            Ok(vec![("A-1".into(), 2)])
        );
        assert_eq!(
            lines_of(r#"{"lines": [{"sku": "A-1", "quantity": 18446744073709551615}]}"#),
            Ok(vec![("A-1".into(), i64::MAX)])
        );
        for body in [
            r#"{"lines": [{"sku": "A-1", "quantity": 1.5}]}"#,
            r#"{"lines": [{"sku": "A-1", "quantity": "2"}]}"#,
            r#"{"lines": [{"sku": "A-1"}]}"#,
        ] {
            assert!(
                matches!(lines_of(body), Err(InventoryError::InvalidQuantity(_))),
                "{body}"
            );
        }
        for body in [
            r#"{}"#,
            r#"{"lines": 3}"#,
            r#"{"lines": [{"quantity": 1}]}"#,
        ] {
            assert!(
                matches!(lines_of(body), Err(InventoryError::InvalidLines(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn errors_have_their_status_and_code() {
        let cases = [
            (
                InventoryError::InvalidLines("x".into()),
                422,
                "invalid_lines",
            ),
            (
                InventoryError::InvalidQuantity("x".into()),
                422,
                "invalid_quantity",
            ),
            (InventoryError::InvalidTtl("x".into()), 422, "invalid_ttl"),
            (
                InventoryError::InvalidStock("x".into()),
                422,
                "invalid_stock",
            ),
            (InventoryError::InvalidSku("x".into()), 400, "invalid_sku"),
            (
                InventoryError::InvalidReservationId("x".into()),
                400,
                "invalid_reservation_id",
            ),
            (
                InventoryError::UnknownSkus(vec!["A-1".into()]),
                404,
                "unknown_sku",
            ),
            (
                InventoryError::InsufficientStock(vec![]),
                409,
                "insufficient_stock",
            ),
            (
                InventoryError::ReservationNotFound("r".into()),
                404,
                "reservation_not_found",
            ),
            (
                InventoryError::ReservationConflict("r".into()),
                409,
                "reservation_conflict",
            ),
            (
                InventoryError::ReservationExpired {
                    id: "r".into(),
                    expired_at: 0,
                },
                409,
                "reservation_expired",
            ),
            (
                InventoryError::ReservationReleased("r".into()),
                409,
                "reservation_released",
            ),
            (
                InventoryError::ReservationCommitted("r".into()),
                409,
                "reservation_committed",
            ),
            (
                InventoryError::Unavailable("x".into()),
                503,
                "inventory_unavailable",
            ),
        ];
        for (error, status, code) in cases {
            let error = ApiError::from(error);
            assert_eq!((error.status, error.code), (status, code));
        }
    }

    #[test]
    fn a_shortage_lists_every_short_sku() {
        let error = ApiError::from(InventoryError::InsufficientStock(vec![
            Shortage {
                sku: "A-1".into(),
                requested: 3,
                available: 1,
            },
            Shortage {
                sku: "B-1".into(),
                requested: 2,
                available: 0,
            },
        ]));
        assert_eq!(
            error.body()["error"]["shortages"],
            json!([
                {"sku": "A-1", "requested": 3, "available": 1},
                {"sku": "B-1", "requested": 2, "available": 0}
            ])
        );
        assert!(error.message.contains("A-1") && error.message.contains("B-1"));
    }
}
