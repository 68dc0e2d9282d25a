//! Notifications' HTTP API.
//!
//! - `GET /api/notifications?customer=<customer id or email>` →
//!   `{"customer", "messages": [{id, event_id, type, order_id, to, subject,
//!   body, sent_at}]}`, newest first: a signed-in shopper's own mails
//!   (`customer` absent or their id: the mails of the orders they placed
//!   signed in), or for the admin anyone's ([`shop_shared::Caller`]). A
//!   guest's mails are read in their own inbox; the order access token
//!   opens the order, not a mailbox keyed by an email anyone could type.
//! - `/api/notifications/admin/...` (admin): dead letters and replay
//!   ([`shop_shared::event_admin`]); notifications publishes nothing, so its
//!   outbox flush is always empty.

use serde_json::json;
use shop_shared::{ApiError, Caller, Listing, Query, Router, event_admin, json_response, read_request};
use spin_sdk::http::{IncomingRequest, IntoResponse, Method, Response};

use crate::domain::mailbox_key;
use crate::{events, store};

#[derive(Clone, Copy)]
enum Route {
    Mailbox,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Get, "/api/notifications", Route::Mailbox)
}

pub async fn handle(incoming: IncomingRequest) -> Response {
    respond(incoming).await.unwrap_or_else(IntoResponse::into_response)
}

async fn respond(incoming: IncomingRequest) -> Result<Response, ApiError> {
    let request = read_request(incoming)?;
    if let Some(answer) = event_admin::serve(&request, "notifications", store::open, events::apply).await {
        return answer;
    }
    let (route, _) = router().resolve(request.method(), request.path())?;
    let conn = store::open()?;
    match route {
        Route::Mailbox => {
            let query = Query::parse(request.query());
            let requested = query.get("customer").map(str::trim).filter(|c| !c.is_empty());
            let caller = Caller::of(&request)?;
            let customer = match caller.listing(requested)? {
                Listing::Own(id) => id,
                Listing::Anyone(requested) => requested.ok_or_else(|| {
                    ApiError::bad_request("invalid_query", "customer is required: a customer id or an email address")
                        .with("field", "customer")
                })?,
            };
            let key = mailbox_key(customer);
            let messages = store::mailbox(&conn, &key).map_err(store::unavailable)?;
            Ok(json_response(200, &json!({ "customer": key, "messages": messages })))
        }
    }
}
