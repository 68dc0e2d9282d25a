//! The one error shape every HTTP error has:
//! `{"error": {"code": "snake_case_code", "message": "human text", ...extra}}`.

use serde::Serialize;
use serde_json::{Map, Value};
use spin_sdk::http::{IntoResponse, Response};

/// An HTTP error answer: status, a stable machine-readable code, a message for
/// people, and optional extra fields inside the `error` object (e.g. `skus`).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub extra: Map<String, Value>,
    /// Headers the status calls for (`allow` on 405, `www-authenticate` on 401).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: Map::new(),
            headers: Vec::new(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message).with_header("www-authenticate", "Bearer")
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }

    /// `allow` lists the methods the path does accept, as the 405 status requires.
    pub fn method_not_allowed(method: &str, path: &str, allow: &[String]) -> Self {
        let allow = allow.join(", ");
        Self::new(
            405,
            "method_not_allowed",
            format!("{method} is not allowed on {path}; allowed: {allow}"),
        )
        .with_header("allow", allow)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    pub fn payload_too_large(limit_bytes: usize) -> Self {
        Self::new(
            413,
            "payload_too_large",
            format!("the request body is larger than {limit_bytes} bytes"),
        )
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(422, code, message)
    }

    /// A failure of ours, not of the request. The detail goes to the log, not
    /// to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        eprintln!("internal error: {detail}");
        Self::new(500, "internal", "the service failed to handle the request")
    }

    /// A store or a service this one depends on failed; retrying may help.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(503, code, message)
    }

    /// Adds a field next to `code` and `message`.
    pub fn with(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(field.to_owned(), value.into());
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), self.code.into());
        error.insert("message".into(), self.message.clone().into());
        // `code` and `message` always win over an extra field of the same name.
        for (name, value) in &self.extra {
            error.entry(name.clone()).or_insert_with(|| value.clone());
        }
        let mut body = Map::new();
        body.insert("error".into(), Value::Object(error));
        Value::Object(body)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut builder = Response::builder();
        builder
            .status(self.status)
            .header("content-type", "application/json");
        for (name, value) in &self.headers {
            builder.header(*name, value.as_str());
        }
        builder.body(self.body().to_string()).build()
    }
}

/// A JSON success answer with `content-type: application/json`.
pub fn json_response(status: u16, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(bytes)
            .build(),
        Err(e) => ApiError::internal(format!("serializing a response: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
        response.header(name).and_then(|v| v.as_str())
    }

    #[test]
    fn error_body_has_code_message_and_extras() {
        let error = ApiError::not_found("unknown_sku", "no such products: A-1, B-2")
            .with("skus", json!(["A-1", "B-2"]));
        assert_eq!(
            error.body(),
            json!({"error": {"code": "unknown_sku", "message": "no such products: A-1, B-2", "skus": ["A-1", "B-2"]}})
        );
    }

    #[test]
    fn extras_cannot_replace_code_or_message() {
        let error = ApiError::bad_request("invalid_request", "bad").with("code", "other");
        assert_eq!(error.body()["error"]["code"], "invalid_request");
    }

    #[test]
    fn response_is_json_with_status_and_headers() {
        let response = ApiError::method_not_allowed("POST", "/x", &["GET".into(), "PUT".into()])
            .into_response();
        assert_eq!(*response.status(), 405);
        assert_eq!(header(&response, "content-type"), Some("application/json"));
        assert_eq!(header(&response, "allow"), Some("GET, PUT"));
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed");
    }

    #[test]
    fn unauthorized_asks_for_a_bearer_token() {
        let response = ApiError::unauthorized("missing token").into_response();
        assert_eq!(*response.status(), 401);
        assert_eq!(header(&response, "www-authenticate"), Some("Bearer"));
    }

    #[test]
    fn json_response_sets_content_type() {
        let response = json_response(201, &json!({"ok": true}));
        assert_eq!(*response.status(), 201);
        assert_eq!(header(&response, "content-type"), Some("application/json"));
        assert_eq!(response.body(), br#"{"ok":true}"#);
    }
}
