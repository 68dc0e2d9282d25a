//! Checkout's HTTP API.
//!
//! - `POST /api/checkout` (header `Idempotency-Key`) places an order: `201`
//!   `{"checkout_id", "order_id", "status": "completed", "totals": {"items",
//!   "shipping", "tax", "grand_total", "currency"}}`, the totals integer minor
//!   units of `currency`. With a shopper's session the order is theirs (a
//!   body `customer_id` must be their own, else 403); a guest's first 201
//!   also carries `order_access_token`, which opens that one order and is
//!   shown only this once: the checkout keeps its digest, so a replayed
//!   answer cannot show it again. A business failure is its JSON error with its
//!   status (409 `out_of_stock`, 402 `card_declined`, 422 `empty_cart`, …).
//!   The same key and body answer the same again; the same key with another
//!   body is 422 `idempotency_key_reused`.
//! - `GET /api/checkout/{id}` → `{"id", "status", "order_id"?, "totals"?,
//!   "reservation_id"?, "authorization_id"?, "error"?, "steps": [{"name", "outcome", "started_at", "duration_ms",
//!   "compensation"?}]}`.
//! - `POST /api/checkout/recover` (admin) finishes or undoes checkouts left
//!   unfinished (a crashed host) for longer than the grace period.
//! - `/api/checkout/admin/...` (admin): the outbox (`GET …/outbox`,
//!   `POST …/outbox/flush`) and, like every service with events, dead letters
//!   (always none: checkout consumes no events) — [`shop_shared::event_admin`].
//! - `GET /api/checkout/admin/outcomes` (admin) → `{"outcomes": {"completed":
//!   n, "payment_declined": n, …}}`, counted from the journal (what the
//!   admin's metrics report as `shop_checkouts`).
//!
//! A completed checkout's `order.placed` is published once its answer has
//! gone out ([`Answer::then_publish`]; after recovery finishes a checkout
//! forward, before its answer). Publishing is after COMMIT and never fails
//! the checkout: with Redis down the answer is still 201 and the event
//! waits in the outbox for the next checkout or the flush. The shopper does
//! not wait for the broker: the event is already durable in the outbox.

use serde_json::{Value, json};
use shop_shared::auth::{ORDER_TOKEN_PREFIX, order_token_digest};
use shop_shared::{
    Address, ApiError, Caller, JsonBody, Router, event_admin, json_response, new_id, new_secret, now_millis,
    read_request, require_admin, rfc3339,
};
use spin_sdk::http::{IncomingRequest, IntoResponse, Method, Request, Response};

use crate::domain::{Card, CheckoutRequest, DownstreamIds, Status, Step, StoredError, check_idempotency_key};
use crate::saga::{Conclusion, Pause, Saga, Services, Settings};
use crate::store::{CheckoutRow, CheckoutStore, Claim};

#[derive(Clone, Copy)]
enum Route {
    Place,
    Recover,
    Get,
    Outcomes,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Post, "/api/checkout", Route::Place)
        .route(Method::Post, "/api/checkout/recover", Route::Recover)
        .route(Method::Get, "/api/checkout/:id", Route::Get)
        .route(Method::Get, "/api/checkout/admin/outcomes", Route::Outcomes)
}

/// Variables (see spin.toml).
const TTL_VARIABLE: &str = "reservation_ttl_seconds";
const GRACE_VARIABLE: &str = "checkout_recovery_grace_seconds";
const PAUSE_VARIABLE: &str = "checkout_pause_after_step";
const DEFAULT_TTL_SECONDS: u32 = 900;
const DEFAULT_GRACE_SECONDS: i64 = 60;
const PAUSE_SECONDS: u64 = 60;
/// Stale checkouts a POST finishes on its way, at most.
const LAZY_RECOVERY_LIMIT: u32 = 3;
/// Stale checkouts one call of the recover route finishes, at most.
pub const RECOVERY_BATCH: u32 = 100;
/// How long a request with a key already in use waits for its result.
const WAIT_FOR_WINNER_MS: i64 = 15_000;
const POLL_MS: u64 = 100;

/// What a request is answered, and the work left for after the answer.
pub struct Answer {
    pub response: Response,
    /// The store whose outbox holds what the request decided (a placed
    /// order's `order.placed`): published once the response is out.
    pub then_publish: Option<CheckoutStore>,
}

impl From<Response> for Answer {
    fn from(response: Response) -> Answer {
        Answer { response, then_publish: None }
    }
}

pub async fn handle(incoming: IncomingRequest, services: &impl Services) -> Answer {
    respond(incoming, services).await.unwrap_or_else(|e| e.into_response().into())
}

async fn respond(incoming: IncomingRequest, services: &impl Services) -> Result<Answer, ApiError> {
    let request = read_request(incoming)?;
    let admin = event_admin::serve(&request, "checkout", CheckoutStore::open, async |_, envelope| {
        Err(format!("checkout consumes no events; {} ({}) is not for it", envelope.id, envelope.kind))
    });
    if let Some(answer) = admin.await {
        return answer.map(Answer::from);
    }
    let (route, params) = router().resolve(request.method(), request.path())?;
    match route {
        Route::Place => place(&request, services),
        Route::Recover => {
            require_admin(&request)?;
            let store = CheckoutStore::open()?;
            let recovered = recover_stale(&store, services, RECOVERY_BATCH)?;
            Ok(json_response(200, &json!({ "recovered": recovered })).into())
        }
        Route::Get => get(params.get("id")).map(Answer::from),
        Route::Outcomes => {
            require_admin(&request)?;
            let outcomes: serde_json::Map<String, Value> =
                CheckoutStore::open()?.outcomes()?.into_iter().map(|(outcome, n)| (outcome, json!(n))).collect();
            Ok(json_response(200, &json!({ "outcomes": outcomes })).into())
        }
    }
}

fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn settings() -> Settings {
    let reservation_ttl_seconds = variable(TTL_VARIABLE)
        .and_then(|v| v.parse().ok())
        .filter(|ttl| (1..=3600).contains(ttl))
        .unwrap_or(DEFAULT_TTL_SECONDS);
    let pause = variable(PAUSE_VARIABLE).and_then(|name| {
        let pause = Pause::parse(&name);
        if pause.is_none() {
            eprintln!("{PAUSE_VARIABLE}: {name:?} names no step (or \"<step>:before_journal\"); ignored");
        }
        pause
    });
    Settings { reservation_ttl_seconds, pause, pause_seconds: PAUSE_SECONDS }
}

fn grace_millis() -> i64 {
    variable(GRACE_VARIABLE)
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|s| *s >= 0)
        .unwrap_or(DEFAULT_GRACE_SECONDS)
        * 1000
}

/// `POST /api/checkout`
fn place(request: &Request, services: &impl Services) -> Result<Answer, ApiError> {
    let key = check_idempotency_key(request.header("idempotency-key").and_then(|v| v.as_str()))?;
    let caller = Caller::of(request)?;
    let mut checkout = parse_body(&JsonBody::parse(request.body())?)?;
    checkout.order.customer_id = customer_of(&caller, checkout.order.customer_id.take())?;
    let fingerprint = checkout.fingerprint();
    // A guest's order opens with a token of its own; the journal keeps only
    // its digest.
    let access_token = checkout.order.customer_id.is_none().then(|| new_secret(ORDER_TOKEN_PREFIX));
    checkout.order.access_token_digest = access_token.as_deref().map(order_token_digest);
    let store = CheckoutStore::open()?;

    // Checkouts a crash left behind are finished by whoever comes next.
    if let Err(error) = recover_stale(&store, services, LAZY_RECOVERY_LIMIT) {
        eprintln!("lazy recovery: {error}");
    }

    match store.claim(&key, &fingerprint, &checkout.order)? {
        Claim::New { id, owner } => {
            let settings = settings();
            let mut journal = store.journal(&id, &owner);
            let conclusion = Saga::start(services, &mut journal, &settings, &id, checkout.order, checkout.card).run();
            let response = match conclusion {
                Ok(Conclusion::Finished(_, response) | Conclusion::Pending(response)) => response,
                Err(e) => return Ok(Answer { response: e.into_response(), then_publish: Some(store) }),
            };
            let response = match access_token {
                Some(token) if response.status == 201 => with_access_token(&response, &token),
                _ => stored_response(&response),
            };
            Ok(Answer { response, then_publish: Some(store) })
        }
        Claim::Existing(existing) => {
            if existing.fingerprint != fingerprint {
                return Err(ApiError::unprocessable(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a checkout with another body; use a new key for a new checkout",
                )
                .with("checkout_id", existing.id));
            }
            replay(&store, *existing).map(Answer::from)
        }
    }
}

/// The first answer of a key, waiting a while if its checkout is running.
fn replay(store: &CheckoutStore, mut checkout: CheckoutRow) -> Result<Response, ApiError> {
    let deadline = now_millis() + WAIT_FOR_WINNER_MS;
    loop {
        if let Some(response) = &checkout.response
            && checkout.status.is_final()
        {
            return Ok(stored_response(response));
        }
        if now_millis() >= deadline {
            return Err(ApiError::conflict(
                "checkout_in_progress",
                "a checkout with this Idempotency-Key is still running; ask again in a moment",
            )
            .with("checkout_id", checkout.id));
        }
        std::thread::sleep(std::time::Duration::from_millis(POLL_MS));
        checkout = store.checkout(&checkout.id)?.ok_or_else(|| ApiError::internal("a claimed checkout vanished"))?;
    }
}

/// Whose order this is: the signed-in shopper's, or a guest's. A
/// `customer_id` in the body is the shopper's own, or the admin's choice
/// (operators placing an order for a customer); nobody else may name one.
fn customer_of(caller: &Caller, requested: Option<String>) -> Result<Option<String>, ApiError> {
    match (caller, requested) {
        (Caller::Shopper(session), None) => Ok(Some(session.customer_id.clone())),
        (Caller::Shopper(session), Some(id)) if id == session.customer_id => Ok(Some(id)),
        (Caller::Shopper(_), Some(_)) => Err(ApiError::new(
            403,
            "forbidden",
            "`customer_id` must be the signed-in shopper's own, or left out",
        )
        .with("field", "customer_id")),
        (Caller::Admin, requested) => Ok(requested),
        (_, None) => Ok(None),
        (_, Some(_)) => Err(ApiError::unauthorized(
            "sign in to check out as a customer (`customer_id`), or leave it out to check out as a guest",
        )),
    }
}

/// The first answer of a guest's checkout: the stored answer with the
/// order's access token beside it.
fn with_access_token(response: &StoredError, token: &str) -> Response {
    let mut body: Value = serde_json::from_str(&response.body).unwrap_or_else(|_| json!({}));
    if let Some(object) = body.as_object_mut() {
        object.insert("order_access_token".into(), json!(token));
    }
    json_response(response.status, &body)
}

fn stored_response(response: &StoredError) -> Response {
    Response::builder()
        .status(response.status)
        .header("content-type", "application/json")
        .body(response.body.clone())
        .build()
}

fn parse_body(body: &JsonBody) -> Result<CheckoutRequest, ApiError> {
    let address = body.value("address").ok_or_else(|| {
        ApiError::unprocessable("invalid_address", "`address` is required").with("field", "address")
    })?;
    let address: Address = serde_json::from_value(address.clone()).map_err(|e| {
        ApiError::unprocessable("invalid_address", format!("`address`: {e}")).with("field", "address")
    })?;
    let card = body
        .value("card")
        .ok_or_else(|| ApiError::unprocessable("invalid_card", "`card` is required").with("field", "card"))?;
    let card: Card = serde_json::from_value(card.clone())
        .map_err(|e| ApiError::unprocessable("invalid_card", format!("`card`: {e}")).with("field", "card"))?;
    let shipping: String = body.required("shipping")?;
    CheckoutRequest::new(
        body.required("cart_id")?,
        body.required("email")?,
        body.optional("customer_id")?,
        address,
        &shipping,
        card,
    )
}

/// Finishes (after the order) or undoes (before it) up to `limit` checkouts
/// that nobody moved on for longer than the grace period. Returns what
/// became of each.
pub fn recover_stale(store: &CheckoutStore, services: &impl Services, limit: u32) -> Result<Vec<Value>, ApiError> {
    let cutoff = now_millis() - grace_millis();
    let settings = settings();
    let mut recovered = Vec::new();
    for id in store.stale(cutoff, limit)? {
        let owner = new_id("rec");
        if !store.take_over(&id, &owner, cutoff)? {
            continue; // someone else moved it on meanwhile
        }
        let Some(row) = store.checkout(&id)? else { continue };
        let records = store.steps(&id)?.into_iter().map(|s| s.record).collect();
        let mut journal = store.journal(&id, &owner);
        let saga = Saga::resume(services, &mut journal, &settings, &id, row.request, row.state, records);
        let status = match saga.run() {
            Ok(Conclusion::Finished(status, _)) => status.as_str(),
            Ok(Conclusion::Pending(answer)) if answer.status == 201 => Status::Running.as_str(),
            Ok(Conclusion::Pending(_)) => Status::Compensating.as_str(),
            Err(error) => {
                eprintln!("recovering checkout {id}: {error}");
                "error"
            }
        };
        eprintln!("recovered checkout {id}: {status}");
        recovered.push(json!({ "id": id, "status": status }));
    }
    if !recovered.is_empty() {
        // A checkout finished forward has its order.placed in the outbox.
        store.publish_events();
    }
    Ok(recovered)
}

/// `GET /api/checkout/{id}`
fn get(id: &str) -> Result<Response, ApiError> {
    let store = CheckoutStore::open()?;
    let checkout = store.checkout(id)?.ok_or_else(|| {
        ApiError::not_found("checkout_not_found", format!("no checkout has the id {id:?}")).with("id", id)
    })?;
    let steps: Vec<Value> = store
        .steps(id)?
        .into_iter()
        .map(|row| {
            let mut step = json!({
                "name": row.record.step.name(),
                "outcome": row.record.shown_outcome(),
                "started_at": rfc3339(row.started_at),
                "duration_ms": row.duration_ms,
            });
            if let (Some(name), Some(at)) = (row.record.step.compensation(), row.compensated_at) {
                step["compensation"] =
                    json!({ "name": name, "at": rfc3339(at), "duration_ms": row.compensation_ms });
            }
            step
        })
        .collect();
    let mut body = json!({
        "id": checkout.id,
        "status": checkout.status.as_str(),
        "created_at": rfc3339(checkout.created_at),
        "updated_at": rfc3339(checkout.updated_at),
        "steps": steps,
    });
    if let Some(order_id) = &checkout.order_id {
        body["order_id"] = json!(order_id);
    }
    let steps_run: Vec<&str> = steps.iter().filter_map(|s| s["name"].as_str()).collect();
    if steps_run.contains(&Step::ReserveStock.name()) {
        body["reservation_id"] = json!(DownstreamIds::of(&checkout.id).reservation_id);
    }
    if let Some(authorization_id) = &checkout.state.authorization_id {
        body["authorization_id"] = json!(authorization_id);
    }
    if let Some(totals) = &checkout.state.totals {
        body["totals"] = json!(totals);
    }
    if checkout.status == Status::Failed
        && let Some(response) = &checkout.response
        && let Ok(error) = serde_json::from_str::<Value>(&response.body)
    {
        body["error"] = error["error"].clone();
    }
    Ok(json_response(200, &body))
}
