//! The admin routes every service that produces or consumes events exposes
//! under its own path (`/api/<service>/admin/...`), the same way, over its
//! own database; the `admin` component fans out to them (SPEC §3).
//!
//! - `GET  …/admin/dead-letters[?status=pending|replayed]` → `{"dead_letters": [...]}`
//! - `POST …/admin/dead-letters/{id}/replay` → `{"dead_letter": {...}, "outcome":
//!   "applied" | "already_applied"}`; 404 `dead_letter_not_found`; 409
//!   `replay_failed` (the handler failed again; the dead letter counts the attempt)
//! - `POST …/admin/outbox/flush` → `{"published", "pending", "error"?}`
//! - `GET  …/admin/outbox` → `{"pending", "recent": [...]}`
//! - `GET  …/admin/events` → what is not done: `{"outbox": {"due",
//!   "oldest_due_age_seconds", "publishes", "republishes", "delivered",
//!   "undeliverable"}, "dead_letters": {"pending", "replayed"}}`
//!
//! Each needs the admin token ([`crate::require_admin`]). A service serves
//! them all with [`serve`] before its own router, and runs [`on_tick`] on
//! its cron trigger.

use serde_json::json;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::sqlite::Connection;

use crate::dead_letters::{self, ReplayError, Replayed};
use crate::event::{Envelope, redis_address};
use crate::{ApiError, Query, Router, json_response, outbox, require_admin};

/// A service's store, as far as the admin routes need it: its database.
pub trait EventStore {
    fn connection(&self) -> &Connection;
}

impl EventStore for Connection {
    fn connection(&self) -> &Connection {
        self
    }
}

#[derive(Clone, Copy)]
enum AdminRoute {
    DeadLetters,
    Replay,
    Flush,
    Outbox,
    Events,
}

fn admin_router() -> Router<AdminRoute> {
    Router::new()
        .route(Method::Get, "/api/:service/admin/dead-letters", AdminRoute::DeadLetters)
        .route(Method::Post, "/api/:service/admin/dead-letters/:id/replay", AdminRoute::Replay)
        .route(Method::Post, "/api/:service/admin/outbox/flush", AdminRoute::Flush)
        .route(Method::Get, "/api/:service/admin/outbox", AdminRoute::Outbox)
        .route(Method::Get, "/api/:service/admin/events", AdminRoute::Events)
}

/// The admin routes of the service at `/api/{service}`: `None` when
/// `request` is for none of their paths (the service's own router answers
/// it), else the answer — 405 for another method, 401 without the admin
/// token, otherwise the route run over the store `open` gives, a replay with
/// `replay` (the service's event dispatcher).
pub async fn serve<S: EventStore, E: Into<ApiError>>(
    request: &Request,
    service: &str,
    open: impl FnOnce() -> Result<S, E>,
    replay: impl AsyncFnOnce(&S, &Envelope) -> Result<(), String>,
) -> Option<Result<Response, ApiError>> {
    let path = request.path();
    let under_service = path.strip_prefix("/api/")?.strip_prefix(service)?;
    if !under_service.starts_with("/admin/") {
        return None;
    }
    let (route, params) = match admin_router().resolve(request.method(), path) {
        Ok(resolved) => resolved,
        Err(error) if error.status == 404 => return None,
        Err(error) => return Some(Err(error)),
    };
    Some(run(request, route, params.get("id"), open, replay).await)
}

async fn run<S: EventStore, E: Into<ApiError>>(
    request: &Request,
    route: AdminRoute,
    id: &str,
    open: impl FnOnce() -> Result<S, E>,
    replay: impl AsyncFnOnce(&S, &Envelope) -> Result<(), String>,
) -> Result<Response, ApiError> {
    require_admin(request)?;
    let store = open().map_err(Into::into)?;
    let conn = store.connection();
    match route {
        AdminRoute::DeadLetters => list_dead_letters(conn, request.query()),
        AdminRoute::Replay => {
            replay_dead_letter(conn, id, async |_, envelope| replay(&store, envelope).await).await
        }
        AdminRoute::Flush => flush_outbox(conn),
        AdminRoute::Outbox => show_outbox(conn),
        AdminRoute::Events => show_events(conn),
    }
}

fn unavailable(error: String) -> ApiError {
    eprintln!("event store: {error}");
    ApiError::unavailable("store_unavailable", "the service's database failed")
}

/// `GET …/admin/dead-letters`, `query` the request's query string.
fn list_dead_letters(conn: &Connection, query: &str) -> Result<Response, ApiError> {
    let query = Query::parse(query);
    let status = match query.get("status").map(str::trim) {
        None | Some("") => None,
        Some(status @ (dead_letters::PENDING | dead_letters::REPLAYED)) => Some(status),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("status must be `pending` or `replayed`, got {other:?}"),
            ));
        }
    };
    let letters = dead_letters::list(conn, status).map_err(unavailable)?;
    Ok(json_response(200, &json!({ "dead_letters": letters })))
}

/// `POST …/admin/dead-letters/{id}/replay`: runs `handler` (the service's
/// event dispatcher) on the stored envelope, then publishes what it enqueued.
async fn replay_dead_letter(
    conn: &Connection,
    id: &str,
    handler: impl AsyncFnOnce(&Connection, &Envelope) -> Result<(), String>,
) -> Result<Response, ApiError> {
    let outcome = dead_letters::replay(conn, id, handler).await;
    let letter = dead_letters::get(conn, id).map_err(unavailable)?;
    match outcome {
        Ok(replayed) => {
            publish_quietly(conn);
            let outcome = match replayed {
                Replayed::Applied => "applied",
                Replayed::AlreadyApplied => "already_applied",
                Replayed::Republished => "republished",
            };
            Ok(json_response(200, &json!({ "outcome": outcome, "dead_letter": letter })))
        }
        Err(ReplayError::NotFound(_)) => Err(ApiError::not_found(
            "dead_letter_not_found",
            format!("there is no dead letter {id}"),
        )
        .with("id", id)),
        Err(ReplayError::Failed(failed)) => Err(ApiError::conflict(
            "replay_failed",
            format!("replaying {id} failed again: {}", failed.error),
        )
        .with("dead_letter", serde_json::to_value(letter).unwrap_or_default())),
        Err(ReplayError::Store(e)) => Err(unavailable(e)),
    }
}

/// `POST …/admin/outbox/flush`: publishes every due event now, whatever
/// its wait.
fn flush_outbox(conn: &Connection) -> Result<Response, ApiError> {
    let address = redis_address().map_err(ApiError::internal)?;
    let report = outbox::flush(conn, &address, outbox::Policy::from_variables()).map_err(unavailable)?;
    Ok(json_response(200, &report))
}

/// `GET …/admin/events`: what is not done, for an operator.
fn show_events(conn: &Connection) -> Result<Response, ApiError> {
    let outbox = outbox::summary(conn).map_err(unavailable)?;
    let counts = dead_letters::counts(conn).map_err(unavailable)?;
    Ok(json_response(200, &json!({ "outbox": outbox, "dead_letters": counts })))
}

/// `GET …/admin/outbox`: how many wait, and the newest 50 events.
fn show_outbox(conn: &Connection) -> Result<Response, ApiError> {
    let pending = outbox::pending_count(conn).map_err(unavailable)?;
    let recent = outbox::recent(conn, 50).map_err(unavailable)?;
    Ok(json_response(200, &json!({ "pending": pending, "recent": recent })))
}

/// After a state change (a request, an event applied): publishes what it
/// enqueued (and any other event never published), logging a failure
/// instead of failing the caller; the events stay due for the cron tick.
pub fn publish_quietly(conn: &Connection) {
    deliver_quietly(conn, outbox::Scope::New);
}

/// The service's cron tick: the outbox's due work — looking up
/// acknowledgements, re-publishing what is not acknowledged yet — so no
/// event waits for traffic.
pub fn on_tick(conn: &Connection) {
    deliver_quietly(conn, outbox::Scope::Due);
}

fn deliver_quietly(conn: &Connection, scope: outbox::Scope) {
    let policy = outbox::Policy::from_variables();
    let report = redis_address().and_then(|address| match scope {
        outbox::Scope::New => outbox::publish_new(conn, &address, policy),
        outbox::Scope::Due => outbox::deliver_due(conn, &address, policy),
    });
    match report {
        Ok(report) if report.error.is_none() => {}
        Ok(report) => eprintln!(
            "outbox: {} published, {} due: {}",
            report.published + report.republished,
            report.pending,
            report.error.unwrap_or_default()
        ),
        Err(e) => eprintln!("outbox: not published: {e}"),
    }
}

