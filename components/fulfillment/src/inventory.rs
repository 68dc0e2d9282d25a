//! Asking the inventory service, by service chaining
//! (`http://inventory.spin.internal`), to commit a reservation or to make a
//! new one. Both calls are idempotent at the inventory (commit again is a
//! retry; reserve with the same id and lines returns the same
//! reservation), which the inbox relies on: a call may happen and its
//! transaction here still roll back.

use serde_json::{Value, json};
use shop_shared::event::{EventLine, Shortage};
use spin_sdk::http::{Request, Response};

const BASE: &str = "http://inventory.spin.internal/api/inventory/reservations";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    Committed,
    /// Its TTL passed before fulfillment got to it: it holds nothing now.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserve {
    Reserved,
    /// Not enough stock, or skus the warehouse no longer has.
    Short(Vec<Shortage>),
}

/// `POST …/reservations/{id}/commit`. A reservation that is unknown or
/// released, or an inventory that does not answer, is an error: the event
/// becomes a dead letter to replay once someone has looked.
pub async fn commit(reservation_id: &str) -> Result<Commit, String> {
    let url = format!("{BASE}/{}/commit", encode(reservation_id));
    let response = send(Request::post(&url, "{}").header("content-type", "application/json").build()).await?;
    match (*response.status(), error_code(&response).as_deref()) {
        (200, _) => Ok(Commit::Committed),
        (409, Some("reservation_expired")) => Ok(Commit::Expired),
        (status, code) => Err(format!(
            "the inventory refused to commit reservation {reservation_id}: {status} {}",
            code.unwrap_or("(no error code)")
        )),
    }
}

/// `POST …/reservations` with `id`, for `lines`.
pub async fn reserve(id: &str, lines: &[EventLine]) -> Result<Reserve, String> {
    let body = json!({ "id": id, "lines": lines });
    let response = send(Request::post(BASE, body.to_string()).header("content-type", "application/json").build()).await?;
    let body: Value = serde_json::from_slice(response.body()).unwrap_or_default();
    match (*response.status(), body["error"]["code"].as_str()) {
        (200 | 201, _) => Ok(Reserve::Reserved),
        (409, Some("insufficient_stock")) => {
            Ok(Reserve::Short(serde_json::from_value(body["error"]["shortages"].clone()).unwrap_or_default()))
        }
        (404, Some("unknown_sku")) => {
            let skus: Vec<String> = serde_json::from_value(body["error"]["skus"].clone()).unwrap_or_default();
            Ok(Reserve::Short(
                lines
                    .iter()
                    .filter(|line| skus.contains(&line.sku))
                    .map(|line| Shortage { sku: line.sku.clone(), requested: line.quantity.into(), available: 0 })
                    .collect(),
            ))
        }
        (status, code) => Err(format!(
            "the inventory refused to reserve {id}: {status} {}",
            code.unwrap_or("(no error code)")
        )),
    }
}

async fn send(request: Request) -> Result<Response, String> {
    spin_sdk::http::send(request).await.map_err(|e| format!("the inventory cannot be reached: {e}"))
}

fn error_code(response: &Response) -> Option<String> {
    let body: Value = serde_json::from_slice(response.body()).ok()?;
    body["error"]["code"].as_str().map(str::to_owned)
}

/// A path segment: reservation ids are letters, digits, `_` and `-`, but an
/// event may carry anything.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode("res_1-a"), "res_1-a");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
    }
}
