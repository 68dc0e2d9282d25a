//! The tax HTTP API: routes to the domain, JSON in and out.

use shop_shared::tax::TaxRequest;
use shop_shared::{ApiError, JsonBody, Router, json_response, read_request};
use spin_sdk::http::{IncomingRequest, IntoResponse, Method, Request, Response};

use crate::domain::vat_for;

#[derive(Clone, Copy)]
enum Route {
    Quote,
}

fn router() -> Router<Route> {
    Router::new().route(Method::Post, "/api/tax/quote", Route::Quote)
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

/// `POST /api/tax/quote` `{"destination": address | {"country"}, "goods":
/// money, "shipping": money}` → the tax with the rate and rule used.
fn quote(request: &Request) -> Result<Response, ApiError> {
    let request = TaxRequest::from_body(&JsonBody::parse(request.body())?)?;
    let (rate, rule) = vat_for(&request.country);
    Ok(json_response(200, &request.quote(rate, rule)?))
}
