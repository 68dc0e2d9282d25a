//! The admin API (every route needs `Authorization: Bearer <admin_token>`,
//! which is forwarded to the members):
//!
//! - `GET  /api/admin/dead-letters[?status=pending|replayed]` → every
//!   member's dead letters, merged (see [`crate::domain::merge_dead_letters`])
//! - `POST /api/admin/dead-letters/{service}:{id}/replay` → the member's answer
//! - `POST /api/admin/outbox/flush` → every member publishes what is pending
//! - `GET  /api/admin/outbox` → every member's pending count and recent events
//! - `GET  /api/admin/events` → what is not done: per member, events due,
//!   the oldest one's age, re-publishes, undeliverable events and dead
//!   letters, with totals ([`crate::domain::merge_events`])
//! - `GET  /api/admin/metrics` → the same, and checkouts by outcome, in
//!   Prometheus's text format ([`crate::domain::metrics`]): what the shop
//!   itself knows, on every runtime (the host's own metrics are shop-host's
//!   `--metrics-listen`).

use serde_json::{Value, json};
use shop_shared::{ApiError, Router, json_response, read_request, require_admin};
use spin_sdk::http::{IncomingRequest, IntoResponse, Method, Request, Response};

use crate::domain::{self, Answer, MEMBERS, Member};

#[derive(Clone, Copy)]
enum Route {
    DeadLetters,
    Replay,
    Flush,
    Outbox,
    Events,
    Metrics,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Get, "/api/admin/dead-letters", Route::DeadLetters)
        .route(Method::Post, "/api/admin/dead-letters/:id/replay", Route::Replay)
        .route(Method::Post, "/api/admin/outbox/flush", Route::Flush)
        .route(Method::Get, "/api/admin/outbox", Route::Outbox)
        .route(Method::Get, "/api/admin/events", Route::Events)
        .route(Method::Get, "/api/admin/metrics", Route::Metrics)
}

pub async fn handle(incoming: IncomingRequest) -> Response {
    respond(incoming).await.unwrap_or_else(IntoResponse::into_response)
}

async fn respond(incoming: IncomingRequest) -> Result<Response, ApiError> {
    let request = read_request(incoming)?;
    let (route, params) = router().resolve(request.method(), request.path())?;
    require_admin(&request)?;
    let auth = request.header("authorization").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    match route {
        Route::DeadLetters => {
            let query = match request.query() {
                "" => String::new(),
                q => format!("?{q}"),
            };
            let answers = fan_out(Method::Get, &format!("/dead-letters{query}"), &auth).await;
            // A bad `status` is the same mistake at every member: say so once.
            if let Some((_, Ok(body))) = answers.iter().find(|(_, a)| a.as_ref().is_ok_and(|b| b.get("error").is_some())) {
                return Ok(json_response(400, body));
            }
            Ok(json_response(200, &domain::merge_dead_letters(answers)))
        }
        Route::Replay => replay(params.get("id"), &auth).await,
        Route::Flush => Ok(json_response(200, &domain::merge_flush(fan_out(Method::Post, "/outbox/flush", &auth).await))),
        Route::Events => Ok(json_response(200, &domain::merge_events(fan_out(Method::Get, "/events", &auth).await))),
        Route::Metrics => {
            let events = fan_out(Method::Get, "/events", &auth).await;
            let checkout = domain::member("checkout").expect("checkout is a member");
            let outcomes = call(checkout, Method::Get, "/outcomes", &auth).await.map(|(_, body)| body);
            Ok(Response::builder()
                .status(200)
                .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                .body(domain::metrics(&events, &outcomes))
                .build())
        }
        Route::Outbox => {
            let answers = fan_out(Method::Get, "/outbox", &auth).await;
            let services: Vec<Value> = answers
                .into_iter()
                .map(|(name, answer)| match answer {
                    Ok(body) => json!({ "name": name, "ok": true, "pending": body["pending"], "recent": body["recent"] }),
                    Err(e) => json!({ "name": name, "ok": false, "error": e }),
                })
                .collect();
            Ok(json_response(200, &json!({ "services": services })))
        }
    }
}

/// The same call to every member, one after the other; a member that
/// fails or answers other than 2xx/400 is reported with why.
async fn fan_out(method: Method, path: &str, auth: &str) -> Vec<(&'static str, Answer)> {
    let mut answers = Vec::new();
    for member in MEMBERS {
        let answer = match call(member, method.clone(), path, auth).await {
            Ok((status, body)) if (200..300).contains(&status) || status == 400 => Ok(body),
            Ok((status, body)) => Err(format!(
                "answered {status}{}",
                body["error"]["code"].as_str().map(|c| format!(" {c}")).unwrap_or_default()
            )),
            Err(e) => Err(e),
        };
        answers.push((member.name, answer));
    }
    answers
}

async fn call(member: &Member, method: Method, path: &str, auth: &str) -> Result<(u16, Value), String> {
    let url = format!("{}{path}", member.admin_base);
    let mut builder = Request::builder();
    builder.method(method).uri(url.as_str()).header("authorization", auth);
    let response: Response = spin_sdk::http::send(builder.build())
        .await
        .map_err(|e| {
            eprintln!("admin: {url}: {e}");
            format!("cannot reach {}", member.name)
        })?;
    let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    Ok((*response.status(), body))
}

/// Sends the replay to the service named in the id, and relays its answer
/// with the dead letter's admin id.
async fn replay(id: &str, auth: &str) -> Result<Response, ApiError> {
    let (member, inner) = domain::split_id(id).ok_or_else(|| {
        ApiError::not_found(
            "dead_letter_not_found",
            format!("there is no dead letter {id}; ids look like `fulfillment:dl_…`"),
        )
        .with("id", id)
    })?;
    let path = format!("/dead-letters/{}/replay", encode(inner));
    let (status, mut body) = call(member, Method::Post, &path, auth)
        .await
        .map_err(|e| ApiError::unavailable("service_unavailable", e).with("service", member.name))?;
    if let Some(letter) = body.get_mut("dead_letter") {
        *letter = domain::qualify(member.name, letter.take());
    }
    if let Some(error) = body.get_mut("error").and_then(Value::as_object_mut) {
        if let Some(letter) = error.get_mut("dead_letter") {
            *letter = domain::qualify(member.name, letter.take());
        }
        if error.contains_key("id") {
            error.insert("id".into(), json!(id));
        }
    }
    Ok(json_response(status, &body))
}

fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
