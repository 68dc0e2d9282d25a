//! Reading a request's body under a size cap, and parsing it as a JSON object
//! whose fields are read one by one so that every error names its field.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use spin_sdk::http::{IncomingRequest, OutgoingResponse, Request, Response, ResponseOutparam};

use crate::ApiError;

/// No shop request comes near this; anything bigger is refused before it is
/// held in memory, so a huge upload costs one request, not the component.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

const READ_CHUNK_BYTES: u64 = 64 * 1024;

/// An oversized body is read and thrown away up to this much before the 413
/// is sent. A client that sends its whole body before reading the answer
/// (curl, most HTTP libraries) otherwise gets a connection reset, not the
/// 413: Spin closes a connection whose request body the component left
/// unread. Past this, the answer goes out anyway and the runtime may reset.
pub const MAX_DISCARDED_BODY_BYTES: u64 = 64 * 1024 * 1024;

const DISCARD_CHUNK_BYTES: u64 = 1024 * 1024;

/// Sends `response` through `out`, as `#[http_component]` does with a
/// response a handler returns: for a handler that has work left once its
/// answer is out (the runtime keeps the instance until the handler ends).
pub async fn send(out: ResponseOutparam, mut response: Response) {
    let body = std::mem::take(response.body_mut());
    match OutgoingResponse::try_from(response) {
        Ok(head) => {
            if let Err(e) = out.set_with_body(head, body).await {
                eprintln!("could not send the response: {e}");
            }
        }
        Err(e) => eprintln!("could not build the response: {e}"),
    }
}

/// Turns the incoming request into a buffered [`Request`], refusing bodies over
/// [`MAX_BODY_BYTES`] with 413: at once when `content-length` says so, else as
/// soon as the streamed body passes the cap.
pub fn read_request(incoming: IncomingRequest) -> Result<Request, ApiError> {
    let headers = incoming.headers().entries();
    let declared_length = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| std::str::from_utf8(value).ok()?.trim().parse::<u64>().ok());
    let body = incoming
        .consume()
        .map_err(|()| ApiError::internal("the request body was already consumed"))?;
    let bytes = {
        let stream = body
            .stream()
            .map_err(|()| ApiError::internal("the request body stream was already taken"))?;
        // A read error is how the stream reports its end (`closed`); a failed
        // read also ends it, and a truncated JSON body then fails to parse.
        let read = |max: u64| stream.blocking_read(max).ok();
        let too_large = || {
            discard(|| read(DISCARD_CHUNK_BYTES).map(|chunk| chunk.len() as u64));
            ApiError::payload_too_large(MAX_BODY_BYTES)
        };
        if declared_length.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
            return Err(too_large());
        }
        match collect_capped(|| read(READ_CHUNK_BYTES), MAX_BODY_BYTES) {
            Ok(bytes) => bytes,
            Err(_) => return Err(too_large()),
        }
    };
    drop(body);

    Ok(Request::builder()
        .method(incoming.method())
        .uri(incoming.uri())
        .headers(headers)
        .body(bytes)
        .build())
}

/// Appends chunks until `next_chunk` returns `None`, failing with 413 as soon
/// as the total passes `cap`.
fn collect_capped(
    mut next_chunk: impl FnMut() -> Option<Vec<u8>>,
    cap: usize,
) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = next_chunk() {
        if bytes.len() + chunk.len() > cap {
            return Err(ApiError::payload_too_large(cap));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Reads and drops chunks until the stream ends or
/// [`MAX_DISCARDED_BODY_BYTES`] have gone; returns how many went.
fn discard(mut next_chunk: impl FnMut() -> Option<u64>) -> u64 {
    let mut discarded = 0;
    while discarded < MAX_DISCARDED_BODY_BYTES {
        match next_chunk() {
            Some(n) => discarded += n,
            None => break,
        }
    }
    discarded
}

/// A request body that is a JSON object.
///
/// Syntax errors are 400 `malformed_json`; a body that is valid JSON but of the
/// wrong shape (not an object, a missing field, a field of the wrong type) is
/// 422 `invalid_request` with the offending `field` named.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonBody(Map<String, Value>);

impl JsonBody {
    pub fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "malformed_json",
                "the request body is empty; expected a JSON object",
            ));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(fields)) => Ok(Self(fields)),
            Ok(_) => Err(ApiError::unprocessable(
                "invalid_request",
                "the request body must be a JSON object",
            )),
            Err(e) => Err(ApiError::bad_request(
                "malformed_json",
                format!("the request body is not valid JSON: {e}"),
            )),
        }
    }

    /// The field's value; a missing field and `null` are both "missing".
    pub fn required<T: DeserializeOwned>(&self, field: &str) -> Result<T, ApiError> {
        self.optional(field)?
            .ok_or_else(|| invalid_field(field, format!("`{field}` is required")))
    }

    pub fn optional<T: DeserializeOwned>(&self, field: &str) -> Result<Option<T>, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::deserialize(value)
                .map(Some)
                .map_err(|e| invalid_field(field, format!("`{field}`: {e}"))),
        }
    }

    /// The raw value, for fields whose rules give a better message than a
    /// type error would (e.g. a quantity of `1.5` or `"2"`).
    pub fn value(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|value| !value.is_null())
    }
}

/// 422 `invalid_request` naming the field.
pub fn invalid_field(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_request", message).with("field", field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Money;

    #[test]
    fn chunks_under_the_cap_are_joined() {
        let mut chunks = vec![b"lo".to_vec(), b"hel".to_vec()];
        assert_eq!(collect_capped(|| chunks.pop(), 5).unwrap(), b"hello");
    }

    #[test]
    fn a_body_over_the_cap_stops_reading_with_413() {
        let mut reads = 0;
        let error = collect_capped(
            || {
                reads += 1;
                Some(vec![0; 400])
            },
            1000,
        )
        .unwrap_err();
        assert_eq!((error.status, error.code), (413, "payload_too_large"));
        assert_eq!(reads, 3, "reading stops at the chunk that passes the cap");
    }

    #[test]
    fn an_oversized_body_is_discarded_up_to_a_bound() {
        let mut left = 3 * DISCARD_CHUNK_BYTES;
        let gone = discard(|| (left > 0).then(|| { left -= DISCARD_CHUNK_BYTES; DISCARD_CHUNK_BYTES }));
        assert_eq!(gone, 3 * DISCARD_CHUNK_BYTES, "a body that ends is read to its end");
        let gone = discard(|| Some(DISCARD_CHUNK_BYTES));
        assert_eq!(gone, MAX_DISCARDED_BODY_BYTES, "an endless one stops at the bound");
    }

    #[test]
    fn malformed_json_is_400_with_serdes_message() {
        let error = JsonBody::parse(br#"{"sku": "#).unwrap_err();
        assert_eq!((error.status, error.code), (400, "malformed_json"));
        assert!(error.message.contains("EOF"), "{}", error.message);
        let error = JsonBody::parse(b"  ").unwrap_err();
        assert_eq!((error.status, error.code), (400, "malformed_json"));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_422() {
        let error = JsonBody::parse(b"[1, 2]").unwrap_err();
        assert_eq!((error.status, error.code), (422, "invalid_request"));
    }

    #[test]
    fn field_errors_name_the_field() {
        let body =
            JsonBody::parse(br#"{"sku": 5, "price": {"amount": 1, "currency": "eur"}, "n": null}"#)
                .unwrap();
        let error = body.required::<String>("sku").unwrap_err();
        assert_eq!((error.status, error.code), (422, "invalid_request"));
        assert_eq!(error.extra["field"], "sku");
        assert!(
            error.message.starts_with("`sku`: invalid type"),
            "{}",
            error.message
        );

        let error = body.required::<Money>("price").unwrap_err();
        assert_eq!(error.extra["field"], "price");
        assert!(error.message.contains("currency"), "{}", error.message);

        let error = body.required::<u32>("n").unwrap_err();
        assert_eq!(error.message, "`n` is required");
        assert_eq!(body.optional::<u32>("missing").unwrap(), None);
        assert_eq!(body.value("n"), None);
    }
}
