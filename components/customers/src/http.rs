//! The customers' HTTP API: routes to the domain and the store, JSON in and out.

use serde::Serialize;
use shop_shared::{Address, ApiError, JsonBody, Router, json_response, read_request};
use spin_sdk::http::{IncomingRequest, IntoResponse, Method, Request, Response};

use crate::domain::{CustomerError, NewCustomer, SavedAddress, address_to_save, is_customer_id};
use crate::store::CustomerStore;

#[derive(Clone, Copy)]
enum Route {
    CreateCustomer,
    GetCustomer,
    AddAddress,
    ListAddresses,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Post, "/api/customers", Route::CreateCustomer)
        .route(Method::Get, "/api/customers/:id", Route::GetCustomer)
        .route(Method::Post, "/api/customers/:id/addresses", Route::AddAddress)
        .route(Method::Get, "/api/customers/:id/addresses", Route::ListAddresses)
}

pub fn handle(incoming: IncomingRequest) -> Response {
    respond(incoming).unwrap_or_else(IntoResponse::into_response)
}

fn respond(incoming: IncomingRequest) -> Result<Response, ApiError> {
    let request = read_request(incoming)?;
    let (route, params) = router().resolve(request.method(), request.path())?;
    match route {
        Route::CreateCustomer => create_customer(&request),
        Route::GetCustomer => get_customer(params.get("id")),
        Route::AddAddress => add_address(&request, params.get("id")),
        Route::ListAddresses => list_addresses(params.get("id")),
    }
}

/// `POST /api/customers` `{"name", "email"}` → 201 with the customer.
fn create_customer(request: &Request) -> Result<Response, ApiError> {
    let body = JsonBody::parse(request.body())?;
    let new = NewCustomer::new(
        &body.required::<String>("name")?,
        &body.required::<String>("email")?,
    )?;
    let customer = CustomerStore::open()?.create(&new)?;
    Ok(json_response(201, &customer))
}

/// `GET /api/customers/{id}` → the customer with its addresses.
fn get_customer(id: &str) -> Result<Response, ApiError> {
    let not_found = || CustomerError::CustomerNotFound(id.to_owned());
    if !is_customer_id(id) {
        return Err(not_found().into());
    }
    let customer = CustomerStore::open()?.customer(id)?.ok_or_else(not_found)?;
    Ok(json_response(200, &customer))
}

/// `POST /api/customers/{id}/addresses` with an address → 201 with its id.
fn add_address(request: &Request, id: &str) -> Result<Response, ApiError> {
    if !is_customer_id(id) {
        return Err(CustomerError::CustomerNotFound(id.to_owned()).into());
    }
    let body = JsonBody::parse(request.body())?;
    // A missing field reads as empty, so that the address rules name it.
    let field = |name: &str| -> Result<String, ApiError> {
        Ok(body.optional::<String>(name)?.unwrap_or_default())
    };
    let address = Address {
        name: field("name")?,
        line1: field("line1")?,
        line2: body.optional("line2")?,
        city: field("city")?,
        postal_code: field("postal_code")?,
        country: field("country")?,
    };
    let address = address_to_save(address)?;
    let saved = CustomerStore::open()?.add_address(id, address)?;
    Ok(json_response(201, &saved))
}

#[derive(Serialize)]
struct AddressList {
    addresses: Vec<SavedAddress>,
}

/// `GET /api/customers/{id}/addresses` → `{"addresses": [...]}`.
fn list_addresses(id: &str) -> Result<Response, ApiError> {
    let not_found = || CustomerError::CustomerNotFound(id.to_owned());
    if !is_customer_id(id) {
        return Err(not_found().into());
    }
    let store = CustomerStore::open()?;
    if !store.exists(id)? {
        return Err(not_found().into());
    }
    let addresses = store.addresses(id)?;
    Ok(json_response(200, &AddressList { addresses }))
}

impl From<CustomerError> for ApiError {
    fn from(error: CustomerError) -> Self {
        let message = error.to_string();
        match error {
            CustomerError::InvalidName(_) => {
                ApiError::unprocessable("invalid_customer", message).with("field", "name")
            }
            CustomerError::InvalidEmail(_) => {
                ApiError::unprocessable("invalid_email", message).with("field", "email")
            }
            CustomerError::EmailTaken(email) => {
                ApiError::conflict("email_taken", message).with("email", email)
            }
            CustomerError::CustomerNotFound(id) => {
                ApiError::not_found("customer_not_found", message).with("id", id)
            }
            CustomerError::TooManyAddresses => {
                ApiError::unprocessable("too_many_addresses", message)
            }
            CustomerError::InvalidAddress(error) => error,
            CustomerError::Unavailable(_) => {
                ApiError::unavailable("customers_unavailable", message)
            }
        }
    }
}
