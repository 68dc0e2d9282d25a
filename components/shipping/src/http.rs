//! The shipping HTTP API: routes to the domain, JSON in and out.

use serde_json::Value;
use shop_shared::request::invalid_field;
use shop_shared::{ApiError, JsonBody, Router, destination_country, json_response, read_request};
use spin_sdk::http::{IncomingRequest, IntoResponse, Method, Request, Response};

use crate::domain::{Item, MAX_ITEMS, RateTable, ShippingError, Speed};

#[derive(Clone, Copy)]
enum Route {
    Quote,
}

fn router() -> Router<Route> {
    Router::new().route(Method::Post, "/api/shipping/quote", Route::Quote)
}

pub fn handle(incoming: IncomingRequest) -> Response {
    respond(incoming).unwrap_or_else(IntoResponse::into_response)
}

fn respond(incoming: IncomingRequest) -> Result<Response, ApiError> {
    let request = read_request(incoming)?;
    let (route, _) = router().resolve(request.method(), request.path())?;
    match route {
        Route::Quote => quote(&request),
    }
}

/// `POST /api/shipping/quote` `{"items": [{"weight_grams", "quantity"}],
/// "destination": address | {"country"}, "speed": "standard" | "express"}`.
fn quote(request: &Request) -> Result<Response, ApiError> {
    let body = JsonBody::parse(request.body())?;
    let items = items(&body)?;
    let destination = body
        .value("destination")
        .ok_or_else(|| invalid_field("destination", "`destination` is required"))?;
    let country = destination_country(destination)?;
    let speed = Speed::parse(&body.required::<String>("speed")?)?;
    let quote = RateTable::load()?.quote(&items, &country, speed)?;
    Ok(json_response(200, &quote))
}

/// The `items` array, each a positive whole `weight_grams` and `quantity`
/// (zero is refused by the domain, with the item's index).
fn items(body: &JsonBody) -> Result<Vec<Item>, ApiError> {
    let Some(Value::Array(values)) = body.value("items") else {
        return Err(invalid_field(
            "items",
            "`items` is required: an array of {\"weight_grams\", \"quantity\"}",
        ));
    };
    if values.len() > MAX_ITEMS {
        return Err(ShippingError::TooManyItems(values.len()).into());
    }
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let number = |field: &'static str| {
                value
                    .get(field)
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| ShippingError::InvalidItem {
                        index,
                        field,
                        message: format!(
                            "{field} must be a whole number from 1 to {}, got {}",
                            u32::MAX,
                            value.get(field).map_or("nothing".into(), Value::to_string)
                        ),
                    })
            };
            Ok(Item {
                weight_grams: number("weight_grams")?,
                quantity: number("quantity")?,
            })
        })
        .collect()
}

impl From<ShippingError> for ApiError {
    fn from(error: ShippingError) -> Self {
        let message = error.to_string();
        match error {
            ShippingError::NoItems => ApiError::unprocessable("no_items", message),
            ShippingError::TooManyItems(_) => ApiError::unprocessable("too_many_items", message),
            ShippingError::InvalidItem { index, field, .. } => {
                ApiError::unprocessable("invalid_item", message)
                    .with("index", index)
                    .with("field", field)
            }
            ShippingError::InvalidSpeed(_) => ApiError::unprocessable("invalid_speed", message)
                .with("field", "speed"),
            ShippingError::TooHeavy {
                weight_grams,
                max_grams,
            } => ApiError::unprocessable("too_heavy", message)
                .with("weight_grams", weight_grams)
                .with("max_weight_grams", max_grams),
            ShippingError::Unavailable(_) => {
                eprintln!("shipping: {message}");
                ApiError::unavailable("shipping_unavailable", message)
            }
        }
    }
}
