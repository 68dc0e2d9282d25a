//! Notifications' HTTP API.
//!
//! - `GET /api/notifications?customer=<customer id or email>` →
//!   `{"customer", "messages": [{id, event_id, type, order_id, to, subject,
//!   body, sent_at}]}`, newest first
//! - `/api/notifications/admin/...` (admin): dead letters and replay
//!   ([`shop_shared::event_admin`]); notifications publishes nothing, so its
//!   outbox flush is always empty.

use serde_json::json;
use shop_shared::{ApiError, Query, Router, event_admin, json_response, read_request, require_admin};
use spin_sdk::http::{IncomingRequest, IntoResponse, Method, Response};

use crate::domain::mailbox_key;
use crate::{events, store};

#[derive(Clone, Copy)]
enum Route {
    Mailbox,
    DeadLetters,
    Replay,
    Flush,
    Outbox,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Get, "/api/notifications", Route::Mailbox)
        .route(Method::Get, "/api/notifications/admin/dead-letters", Route::DeadLetters)
        .route(Method::Post, "/api/notifications/admin/dead-letters/:id/replay", Route::Replay)
        .route(Method::Post, "/api/notifications/admin/outbox/flush", Route::Flush)
        .route(Method::Get, "/api/notifications/admin/outbox", Route::Outbox)
}

pub async fn handle(incoming: IncomingRequest) -> Response {
    respond(incoming).await.unwrap_or_else(IntoResponse::into_response)
}

async fn respond(incoming: IncomingRequest) -> Result<Response, ApiError> {
    let request = read_request(incoming)?;
    let (route, params) = router().resolve(request.method(), request.path())?;
    if !matches!(route, Route::Mailbox) {
        require_admin(&request)?;
    }
    let conn = store::open()?;
    match route {
        Route::Mailbox => {
            let query = Query::parse(request.query());
            let customer = query.get("customer").map(str::trim).filter(|c| !c.is_empty()).ok_or_else(|| {
                ApiError::bad_request("invalid_query", "customer is required: a customer id or an email address")
                    .with("field", "customer")
            })?;
            let key = mailbox_key(customer);
            let messages = store::mailbox(&conn, &key).map_err(store::unavailable)?;
            Ok(json_response(200, &json!({ "customer": key, "messages": messages })))
        }
        Route::DeadLetters => event_admin::list_dead_letters(&conn, request.query()),
        Route::Replay => event_admin::replay_dead_letter(&conn, params.get("id"), events::apply).await,
        Route::Flush => event_admin::flush_outbox(&conn),
        Route::Outbox => event_admin::show_outbox(&conn),
    }
}
