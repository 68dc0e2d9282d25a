//! Fulfillment's HTTP API.
//!
//! - `GET  /api/fulfillment/shipments/{order_id}` → the order's shipment, for
//!   the order's customer (their session), the holder of the order's access
//!   token, or the admin; 401 without a credential, 404 for the rest
//! - `POST /api/fulfillment/shipments/{order_id}/ship` (admin): the warehouse
//!   ships a waiting shipment (with `auto_ship = false`); its reservation is
//!   committed now. 409 `shipment_cancelled`, 409 `out_of_stock` (expired
//!   and the goods gone: the order is cancelled), 502 `inventory_failed`.
//! - `/api/fulfillment/admin/...` (admin): dead letters, replay, outbox flush
//!   ([`shop_shared::event_admin`])

use shop_shared::{
    ApiError, Caller, Owner, Router, db, event_admin, json_response, now_millis, read_request, require_admin,
};
use spin_sdk::http::{IncomingRequest, IntoResponse, Method, Response};

use crate::domain::{self, Status};
use crate::warehouse::{self, Dispatched};
use crate::{events, store};

#[derive(Clone, Copy)]
enum Route {
    Shipment,
    Ship,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Get, "/api/fulfillment/shipments/:order_id", Route::Shipment)
        .route(Method::Post, "/api/fulfillment/shipments/:order_id/ship", Route::Ship)
}

pub async fn handle(incoming: IncomingRequest) -> Response {
    respond(incoming).await.unwrap_or_else(IntoResponse::into_response)
}

async fn respond(incoming: IncomingRequest) -> Result<Response, ApiError> {
    let request = read_request(incoming)?;
    if let Some(answer) = event_admin::serve(&request, "fulfillment", store::open, events::apply).await {
        return answer;
    }
    let (route, params) = router().resolve(request.method(), request.path())?;
    if !matches!(route, Route::Shipment) {
        require_admin(&request)?;
    }
    let conn = store::open()?;
    match route {
        Route::Shipment => {
            let caller = Caller::of(&request)?;
            caller.require_credential()?;
            let order_id = params.get("order_id");
            let shipment = store::shipment(&conn, order_id)
                .map_err(store::unavailable)?
                .ok_or_else(|| not_found(order_id))?;
            let digest = match caller {
                Caller::OrderHolder { .. } => store::access_digest(&conn, order_id).map_err(store::unavailable)?,
                _ => None,
            };
            let owner = Owner { customer_id: shipment.customer_id.as_deref(), order_token_digest: digest.as_deref() };
            if !caller.may_access(owner) {
                return Err(not_found(order_id));
            }
            Ok(json_response(200, &shipment))
        }
        Route::Ship => ship(&conn, params.get("order_id")).await,
    }
}

fn not_found(order_id: &str) -> ApiError {
    ApiError::not_found("shipment_not_found", format!("there is no shipment for order {order_id}"))
        .with("order_id", order_id)
}

/// Ships a waiting shipment: commits its reservation (or reserves the goods
/// again) and publishes `fulfillment.shipped`, in one transaction
/// ([`warehouse::dispatch`]); shipping again answers the same shipment.
/// Goods that are gone cancel it as out of stock (409 `out_of_stock`, with
/// `order.cancelled` published).
async fn ship(conn: &spin_sdk::sqlite::Connection, order_id: &str) -> Result<Response, ApiError> {
    enum Outcome {
        Shipped(domain::Shipment),
        OutOfStock(domain::Shipment),
        NotFound,
        Cancelled,
        InventoryFailed(String),
    }
    let outcome = db::in_transaction(conn, async |conn| {
        let Some(mut shipment) = store::shipment(conn, order_id)? else {
            return Ok(Outcome::NotFound);
        };
        match shipment.status {
            Status::Shipped => Ok(Outcome::Shipped(shipment)),
            Status::Cancelled => Ok(Outcome::Cancelled),
            Status::Pending => match warehouse::dispatch(conn, &mut shipment, now_millis()).await {
                Ok(Dispatched::Shipped) => Ok(Outcome::Shipped(shipment)),
                Ok(Dispatched::OutOfStock) => Ok(Outcome::OutOfStock(shipment)),
                // Nothing was saved before the inventory failed: committing
                // the empty transaction changes nothing.
                Err(warehouse::Failed::Inventory(e)) => Ok(Outcome::InventoryFailed(e)),
                Err(failed) => Err(failed.into()),
            },
        }
    })
    .await
    .map_err(store::unavailable)?;
    event_admin::publish_quietly(conn);
    match outcome {
        Outcome::Shipped(shipment) => Ok(json_response(200, &shipment)),
        Outcome::NotFound => Err(not_found(order_id)),
        Outcome::Cancelled => Err(ApiError::conflict(
            "shipment_cancelled",
            format!("the shipment of order {order_id} was cancelled; it cannot ship"),
        )
        .with("order_id", order_id)),
        Outcome::OutOfStock(shipment) => Err(ApiError::conflict(
            "out_of_stock",
            format!("the reservation of order {order_id} expired and the goods are gone; the order is cancelled"),
        )
        .with("order_id", order_id)
        .with("shipment", serde_json::to_value(shipment).unwrap_or_default())),
        Outcome::InventoryFailed(e) => {
            eprintln!("shipping order {order_id}: {e}");
            Err(ApiError::new(502, "inventory_failed", format!("the inventory did not release the goods: {e}"))
                .with("order_id", order_id))
        }
    }
}
