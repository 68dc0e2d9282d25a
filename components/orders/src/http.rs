//! The orders' HTTP API: routes to the domain and the store, JSON in and out.
//!
//! A shopper's (SPEC §3), for the order's own customer (their session),
//! the guest holding the order's access token, or the admin
//! ([`shop_shared::Caller`]): 401 without a credential, 404
//! `order_not_found` for an order the credential does not open.
//! - `GET /api/orders/{id}` → the order, with its `history`
//! - `GET /api/orders?customer=&page=&per_page=` → `{orders, total, page,
//!   per_page}`, newest first: a shopper's own (`customer` absent or their
//!   id), or for the admin anyone's by customer id or email
//! - `POST /api/orders/{id}/cancel` `{"reason"?}` → the cancelled order; only
//!   before it ships (409 `illegal_transition` after). Publishes
//!   `order.cancelled` through the outbox (crate::events).
//!
//! Admin (`Authorization: Bearer <admin_token>`), for operators and tests:
//! - `POST /api/orders` → 201 with the new order, 200 with the existing one
//!   when the same `id` is created again with the same content
//! - `POST /api/orders/{id}/status` `{"status", "reason"?}` → the order
//! - `/api/orders/admin/...`: dead letters, replay, outbox flush
//!   ([`shop_shared::event_admin`])
//!
//! Services do not use the admin routes: checkout creates orders through the
//! `shop:orders/orders` WIT interface (export.rs), and fulfillment's and
//! payment's events move them (events.rs), over the same domain and store.

use shop_shared::{
    Address, ApiError, Caller, JsonBody, Listing, Owner, Query, Router, event_admin, json_response,
    now_millis, read_request, require_admin,
};
use spin_sdk::http::{IncomingRequest, IntoResponse, Method, Request, Response};

use crate::domain::{
    Created, Customer, DEFAULT_PER_PAGE, LineDraft, Millis, Order, OrderDraft, OrdersError, PageRequest,
    Status, TotalsDraft, check_access_digest, normalize_reason,
};
use crate::events;
use crate::store::OrdersStore;

#[derive(Clone, Copy)]
enum Route {
    ListOrders,
    CreateOrder,
    GetOrder,
    CancelOrder,
    SetStatus,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Get, "/api/orders", Route::ListOrders)
        .route(Method::Post, "/api/orders", Route::CreateOrder)
        .route(Method::Get, "/api/orders/:id", Route::GetOrder)
        .route(Method::Post, "/api/orders/:id/cancel", Route::CancelOrder)
        .route(Method::Post, "/api/orders/:id/status", Route::SetStatus)
}

pub async fn handle(incoming: IncomingRequest) -> Response {
    respond(incoming).await.unwrap_or_else(IntoResponse::into_response)
}

async fn respond(incoming: IncomingRequest) -> Result<Response, ApiError> {
    let request = read_request(incoming)?;
    let admin = event_admin::serve(&request, "orders", OrdersStore::open, async |store, envelope| {
        events::apply(store, envelope)
    });
    if let Some(answer) = admin.await {
        return answer;
    }
    let (route, params) = router().resolve(request.method(), request.path())?;
    match route {
        Route::ListOrders => list_orders(&request),
        Route::CreateOrder => create_order(&request),
        Route::GetOrder => {
            let order = accessible_order(&request, params.get("id"))?;
            Ok(json_response(200, &order))
        }
        Route::CancelOrder => cancel_order(&request, params.get("id")),
        Route::SetStatus => set_status(&request, params.get("id")),
    }
}

/// The order, if the caller's credential opens it.
fn accessible_order(request: &Request, id: &str) -> Result<Order, ApiError> {
    let caller = Caller::of(request)?;
    caller.require_credential()?;
    let store = OrdersStore::open()?;
    let order = store.order(id)?;
    let digest = match caller {
        Caller::OrderHolder { .. } => store.access_digest(id)?,
        _ => None,
    };
    let owner = Owner { customer_id: order.content.customer_id.as_deref(), order_token_digest: digest.as_deref() };
    if !caller.may_access(owner) {
        return Err(OrdersError::OrderNotFound(id.to_owned()).into());
    }
    Ok(order)
}

/// `GET /api/orders?customer=&page=&per_page=`
fn list_orders(request: &Request) -> Result<Response, ApiError> {
    let query = Query::parse(request.query());
    let caller = Caller::of(request)?;
    let requested = query.get("customer").map(str::trim).filter(|c| !c.is_empty());
    let customer = match caller.listing(requested)? {
        Listing::Anyone(requested) => Customer::parse(requested)?,
        Listing::Own(id) => Customer::Id(id.to_owned()),
    };
    let page = PageRequest::new(
        page_number(&query, "page", 1)?,
        page_number(&query, "per_page", DEFAULT_PER_PAGE)?,
    )?;
    let page = OrdersStore::open()?.orders_for(&customer, page)?;
    Ok(json_response(200, &page))
}

/// A positive whole number, or `default` when absent or blank.
fn page_number(query: &Query, name: &str, default: u32) -> Result<u32, OrdersError> {
    match query.get(name).map(str::trim) {
        None | Some("") => Ok(default),
        Some(text) => text.parse().map_err(|_| {
            OrdersError::InvalidQuery(format!("{name} must be a whole number, got {text:?}"))
        }),
    }
}

/// `POST /api/orders` (admin): the fields of `shop:orders/orders.new-order`,
/// snake_case, totals as `{"items", "shipping", "tax", "grand_total",
/// "currency"}` in minor units, line amounts as money objects.
fn create_order(request: &Request) -> Result<Response, ApiError> {
    require_admin(request)?;
    let body = JsonBody::parse(request.body())?;
    let draft = OrderDraft {
        id: body.optional("id")?,
        customer_id: body.optional("customer_id")?,
        email: body.required("email")?,
        lines: body.required::<Vec<LineDraft>>("lines")?,
        totals: body.required::<TotalsDraft>("totals")?,
        address: body.required::<Address>("address")?,
        shipping: body.required("shipping")?,
        payment_authorization_id: body.required("payment_authorization_id")?,
        reservation_id: body.required("reservation_id")?,
        checkout_id: body.optional("checkout_id")?,
    };
    let digest = check_access_digest(body.optional("access_token_digest")?)?;
    let (id, content) = draft.validate()?;
    let (order, created) = OrdersStore::open()?.create(id, content, digest.as_deref(), Millis(now_millis()))?;
    let status = match created {
        Created::New => 201,
        Created::Existing => 200,
    };
    Ok(json_response(status, &order))
}

/// `POST /api/orders/{id}/cancel` with an optional `{"reason": "..."}`; an
/// empty body is no reason.
fn cancel_order(request: &Request, id: &str) -> Result<Response, ApiError> {
    accessible_order(request, id)?;
    let reason = if request.body().iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        JsonBody::parse(request.body())?.optional("reason")?
    };
    transition(id, Status::Cancelled, reason)
}

/// `POST /api/orders/{id}/status` (admin) `{"status": "paid", "reason"?}`
fn set_status(request: &Request, id: &str) -> Result<Response, ApiError> {
    require_admin(request)?;
    let body = JsonBody::parse(request.body())?;
    let status = Status::parse(&body.required::<String>("status")?)?;
    transition(id, status, body.optional("reason")?)
}

fn transition(id: &str, to: Status, reason: Option<String>) -> Result<Response, ApiError> {
    let reason = normalize_reason(reason)?;
    let order = events::request_transition(id, to, reason)?;
    Ok(json_response(200, &order))
}

impl From<OrdersError> for ApiError {
    fn from(error: OrdersError) -> Self {
        let message = error.to_string();
        match error {
            OrdersError::OrderNotFound(id) => {
                ApiError::not_found("order_not_found", message).with("id", id)
            }
            OrdersError::InvalidOrder { field, .. } => {
                ApiError::unprocessable("invalid_order", message).with("field", field)
            }
            OrdersError::InvalidAddress(error) => error,
            OrdersError::InvalidStatus(_) => {
                ApiError::unprocessable("invalid_status", message).with("field", "status")
            }
            OrdersError::InvalidReason(_) => {
                ApiError::unprocessable("invalid_request", message).with("field", "reason")
            }
            OrdersError::InvalidQuery(_) => ApiError::bad_request("invalid_query", message),
            OrdersError::IllegalTransition { from, to } => {
                ApiError::conflict("illegal_transition", message)
                    .with("status", from.as_str())
                    .with("requested", to.as_str())
            }
            OrdersError::OrderConflict(id) => {
                ApiError::conflict("order_conflict", message).with("id", id)
            }
            OrdersError::Unavailable(_) => ApiError::unavailable("orders_unavailable", message),
        }
    }
}
