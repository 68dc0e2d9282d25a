//! The payment service's HTTP API: routes to the domain and the store, JSON
//! in and out. Every POST needs an `Idempotency-Key` header; a retry with the
//! same key gets the first result back, marked `idempotent-replayed: true`.
//! `GET /api/payments?idempotency_key=…` finds the payment a key's operation
//! made or changed (for a caller that lost the answer), 404 when none.
//! `/api/payments/admin/...` (admin): dead letters, replay, outbox flush
//! ([`shop_shared::event_admin`]) for the events payment consumes and
//! publishes (`events.rs`).

use serde_json::Value;
use shop_shared::{
    ApiError, JsonBody, Money, Query, Router, event_admin, json_response, now_millis, read_request,
};
use spin_sdk::http::{IncomingRequest, IntoResponse, Method, Request, Response};

use crate::domain::{
    CardInput, IdempotencyKey, Outcome, PaymentError, check_amount, check_payment_id,
};
use crate::events;
use crate::store::{PaymentStore, Recorded};

#[derive(Clone, Copy)]
enum Route {
    Authorize,
    GetAuthorization,
    Capture,
    Void,
    GetPayment,
    FindByKey,
    Refund,
}

fn router() -> Router<Route> {
    Router::new()
        .route(
            Method::Post,
            "/api/payments/authorizations",
            Route::Authorize,
        )
        .route(
            Method::Get,
            "/api/payments/authorizations/:id",
            Route::GetAuthorization,
        )
        .route(
            Method::Post,
            "/api/payments/authorizations/:id/capture",
            Route::Capture,
        )
        .route(
            Method::Post,
            "/api/payments/authorizations/:id/void",
            Route::Void,
        )
        .route(Method::Get, "/api/payments", Route::FindByKey)
        .route(Method::Get, "/api/payments/:id", Route::GetPayment)
        .route(Method::Post, "/api/payments/:id/refunds", Route::Refund)
}

pub async fn handle(incoming: IncomingRequest) -> Response {
    respond(incoming)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn respond(incoming: IncomingRequest) -> Result<Response, ApiError> {
    let request = read_request(incoming)?;
    // Joined: a replay runs the handler inside the inbox's transaction.
    let admin = event_admin::serve(&request, "payments", PaymentStore::open_joined, async |store, envelope| {
        events::apply(store, envelope)
    });
    if let Some(answer) = admin.await {
        return answer;
    }
    let (route, params) = router().resolve(request.method(), request.path())?;
    let id = params.get("id");
    match route {
        Route::Authorize => authorize(&request),
        Route::GetAuthorization | Route::GetPayment => {
            check_payment_id(id)?;
            Ok(json_response(200, &PaymentStore::open()?.view(id)?))
        }
        Route::FindByKey => find_by_key(&request),
        Route::Capture => {
            let key = idempotency_key(&request)?;
            check_payment_id(id)?;
            let amount = optional_amount(&request)?;
            recorded(PaymentStore::open()?.capture(&key, id, amount.as_ref())?)
        }
        Route::Void => {
            let key = idempotency_key(&request)?;
            check_payment_id(id)?;
            recorded(PaymentStore::open()?.void(&key, id)?)
        }
        Route::Refund => {
            let key = idempotency_key(&request)?;
            check_payment_id(id)?;
            let amount = optional_amount(&request)?;
            recorded(PaymentStore::open()?.refund(&key, id, amount.as_ref())?)
        }
    }
}

/// `POST /api/payments/authorizations` (header `Idempotency-Key`)
/// `{"amount": {"amount", "currency"}, "card": {"number", "exp_month", "exp_year", "cvc"}}`
fn authorize(request: &Request) -> Result<Response, ApiError> {
    let key = idempotency_key(request)?;
    let body = JsonBody::parse(request.body())?;
    let amount: Money = body.required("amount")?;
    check_amount(&amount)?;
    let card = card(&body)?.check(now_millis())?;
    recorded(PaymentStore::open()?.authorize(&key, &amount, &card)?)
}

/// `GET /api/payments?idempotency_key=…` → the payment as it stands now.
fn find_by_key(request: &Request) -> Result<Response, ApiError> {
    let query = Query::parse(request.query());
    let key = IdempotencyKey::parse(query.get("idempotency_key")).map_err(|error| match error {
        PaymentError::IdempotencyKeyRequired => ApiError::bad_request(
            "idempotency_key_required",
            "GET /api/payments needs ?idempotency_key=<the key of the operation to look up>",
        ),
        other => other.into(),
    })?;
    match PaymentStore::open()?.find_by_key(&key)? {
        Some(payment) => Ok(json_response(200, &payment)),
        None => Err(ApiError::not_found(
            "payment_not_found",
            "no payment was made or changed under this Idempotency-Key (never used, or declined)",
        )
        .with("idempotency_key", key.as_str())),
    }
}

fn idempotency_key(request: &Request) -> Result<IdempotencyKey, PaymentError> {
    let header = request.header("idempotency-key").map(|value| {
        value.as_str().ok_or_else(|| {
            PaymentError::InvalidIdempotencyKey(
                "the Idempotency-Key header must be ASCII text".into(),
            )
        })
    });
    IdempotencyKey::parse(header.transpose()?)
}

/// The body's optional `amount`; an empty body means none.
fn optional_amount(request: &Request) -> Result<Option<Money>, ApiError> {
    if request.body().iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let amount: Option<Money> = JsonBody::parse(request.body())?.optional("amount")?;
    if let Some(amount) = &amount {
        check_amount(amount)?;
    }
    Ok(amount)
}

/// The body's `card`, read field by field so that no error message repeats
/// the number or the cvc (a type error from serde would).
fn card(body: &JsonBody) -> Result<CardInput, PaymentError> {
    let invalid = |message: &str| PaymentError::InvalidCard(message.to_owned());
    let Some(Value::Object(card)) = body.value("card") else {
        return Err(invalid(
            "card is required: {\"number\", \"exp_month\", \"exp_year\", \"cvc\"}",
        ));
    };
    let number = card
        .get("number")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("card.number is required: the card number as a string of digits"))?;
    let whole = |field: &str| {
        card.get(field)
            .and_then(Value::as_i64)
            .ok_or_else(|| invalid(&format!("card.{field} is required: a whole number")))
    };
    let exp_month = whole("exp_month")?;
    let exp_year = whole("exp_year")?;
    let cvc = card.get("cvc").and_then(Value::as_str).ok_or_else(|| {
        PaymentError::InvalidCvc(
            "card.cvc is required: the security code as a string of digits".into(),
        )
    })?;
    Ok(CardInput {
        number: number.to_owned(),
        exp_month,
        exp_year,
        cvc: cvc.to_owned(),
    })
}

/// The recorded result as HTTP: the success body, or the decline as a JSON
/// error; a retry's answer says it is one.
fn recorded(recorded: Recorded) -> Result<Response, ApiError> {
    let mut response = match &recorded.outcome {
        Outcome::Payment(payment) => json_response(recorded.status, payment),
        Outcome::Refund(receipt) => json_response(recorded.status, receipt),
        Outcome::Declined(decline) => ApiError::new(
            recorded.status,
            decline.reason.code(),
            decline.reason.message(),
        )
        .with(
            "card",
            serde_json::to_value(&decline.card).unwrap_or_default(),
        )
        .into_response(),
    };
    if recorded.replayed {
        response.set_header("idempotent-replayed", "true");
    }
    Ok(response)
}

impl From<PaymentError> for ApiError {
    fn from(error: PaymentError) -> Self {
        let message = error.to_string();
        match error {
            PaymentError::IdempotencyKeyRequired => {
                ApiError::bad_request("idempotency_key_required", message)
            }
            PaymentError::InvalidIdempotencyKey(_) => {
                ApiError::bad_request("invalid_idempotency_key", message)
            }
            PaymentError::IdempotencyKeyReused => {
                ApiError::conflict("idempotency_key_reused", message)
            }
            PaymentError::InvalidPaymentId(_) => {
                ApiError::bad_request("invalid_payment_id", message)
            }
            PaymentError::InvalidAmount(_) => ApiError::unprocessable("invalid_amount", message),
            PaymentError::CurrencyMismatch { .. } => {
                ApiError::unprocessable("currency_mismatch", message)
            }
            PaymentError::InvalidCard(_) => ApiError::unprocessable("invalid_card", message),
            PaymentError::CardExpired(_) => ApiError::unprocessable("card_expired", message),
            PaymentError::InvalidCvc(_) => ApiError::unprocessable("invalid_cvc", message),
            PaymentError::ProcessorError => ApiError::unavailable("processor_error", message),
            PaymentError::PaymentNotFound(id) => {
                ApiError::not_found("payment_not_found", message).with("id", id)
            }
            PaymentError::IllegalTransition { id, status, .. } => {
                ApiError::conflict("illegal_transition", message)
                    .with("id", id)
                    .with("status", status.as_str())
            }
            PaymentError::CaptureExceedsAuthorized {
                requested,
                authorized,
            } => ApiError::unprocessable("capture_exceeds_authorized", message)
                .with("requested", requested)
                .with("authorized", authorized),
            PaymentError::RefundExceedsCaptured {
                requested,
                refundable,
            } => ApiError::unprocessable("refund_exceeds_captured", message)
                .with("requested", requested)
                .with("refundable", refundable),
            PaymentError::Unavailable(_) => ApiError::unavailable("payment_unavailable", message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PaymentStatus;

    fn card_of(json: &str) -> Result<CardInput, PaymentError> {
        card(&JsonBody::parse(json.as_bytes()).unwrap())
    }

    #[test]
    fn card_fields_are_read_without_echoing_them() {
        let ok = card_of(
            r#"{"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}}"#,
        )
        .unwrap();
        assert_eq!((ok.exp_month, ok.exp_year), (12, 2030));
        for (body, expect_cvc) in [
            (r#"{}"#, false),
            (r#"{"card": "4242424242424242"}"#, false),
            (
                r#"{"card": {"number": 4242424242424242, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}"#,
                false,
            ),
            (
                r#"{"card": {"number": "4242424242424242", "exp_month": "12", "exp_year": 2030, "cvc": "123"}}"#,
                false,
            ),
            (
                r#"{"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": 123}}"#,
                true,
            ),
        ] {
            let error = card_of(body).unwrap_err();
            let api = ApiError::from(error.clone());
            assert!(!api.message.contains("4242424242424242"), "{}", api.message);
            assert_eq!(
                matches!(error, PaymentError::InvalidCvc(_)),
                expect_cvc,
                "{body}"
            );
        }
    }

    #[test]
    fn errors_have_their_status_and_code() {
        let cases = [
            (
                PaymentError::IdempotencyKeyRequired,
                400,
                "idempotency_key_required",
            ),
            (
                PaymentError::InvalidIdempotencyKey("x".into()),
                400,
                "invalid_idempotency_key",
            ),
            (
                PaymentError::IdempotencyKeyReused,
                409,
                "idempotency_key_reused",
            ),
            (
                PaymentError::InvalidPaymentId("x".into()),
                400,
                "invalid_payment_id",
            ),
            (
                PaymentError::InvalidAmount("x".into()),
                422,
                "invalid_amount",
            ),
            (
                PaymentError::CurrencyMismatch {
                    expected: "EUR".into(),
                    got: "USD".into(),
                },
                422,
                "currency_mismatch",
            ),
            (PaymentError::InvalidCard("x".into()), 422, "invalid_card"),
            (PaymentError::CardExpired("x".into()), 422, "card_expired"),
            (PaymentError::InvalidCvc("x".into()), 422, "invalid_cvc"),
            (PaymentError::ProcessorError, 503, "processor_error"),
            (
                PaymentError::PaymentNotFound("p".into()),
                404,
                "payment_not_found",
            ),
            (
                PaymentError::IllegalTransition {
                    id: "p".into(),
                    status: PaymentStatus::Voided,
                    action: "captured",
                },
                409,
                "illegal_transition",
            ),
            (
                PaymentError::CaptureExceedsAuthorized {
                    requested: 2,
                    authorized: 1,
                },
                422,
                "capture_exceeds_authorized",
            ),
            (
                PaymentError::RefundExceedsCaptured {
                    requested: 2,
                    refundable: 1,
                },
                422,
                "refund_exceeds_captured",
            ),
            (
                PaymentError::Unavailable("x".into()),
                503,
                "payment_unavailable",
            ),
        ];
        for (error, status, code) in cases {
            let error = ApiError::from(error);
            assert_eq!((error.status, error.code), (status, code));
            assert!(!error.message.is_empty());
        }
    }
}
