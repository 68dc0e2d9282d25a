//! The customers' HTTP API: sign-up, sign-in and sign-out, and a shopper's
//! own record and addresses.
//!
//! - `POST /api/customers` `{"name", "email", "password"}` → 201 the customer
//! - `POST /api/customers/sessions` `{"email", "password"}` → 201
//!   `{"token", "token_type": "Bearer", "customer_id", "expires_at"}`; 401
//!   `invalid_credentials` alike for an unknown email and a wrong password;
//!   429 `too_many_attempts` with `retry-after` (crate::credentials)
//! - `DELETE /api/customers/sessions/current` (session) → 204, the session ends
//! - `GET /api/customers/me` (session) → the shopper's own record
//! - `GET /api/customers/{id}`, `POST|GET /api/customers/{id}/addresses`:
//!   the customer's own session or the admin token; 401 without a valid
//!   token, 404 for someone else's id ([`shop_shared::Caller`])

use serde::Serialize;
use serde_json::json;
use shop_shared::auth::bearer_token;
use shop_shared::{
    Address, ApiError, Caller, JsonBody, Owner, Router, json_response, now_millis, read_request, rfc3339, session,
};
use spin_sdk::http::{IncomingRequest, IntoResponse, Method, Request, Response};

use crate::credentials::{
    ATTEMPTS_PER_ACCOUNT, ATTEMPTS_PER_CLIENT, WINDOW_MILLIS, attempt_keys, check_password, client_ip,
    hash_password, password_matches, retry_after_seconds,
};
use crate::domain::{CustomerError, NewCustomer, SavedAddress, address_to_save, check_email, email_key, is_customer_id};
use crate::store::CustomerStore;

/// How long a session lasts when the variable does not say.
const DEFAULT_SESSION_TTL_SECONDS: i64 = 12 * 3600;
const MAX_SESSION_TTL_SECONDS: i64 = 30 * 24 * 3600;

#[derive(Clone, Copy)]
enum Route {
    SignUp,
    SignIn,
    SignOut,
    Me,
    GetCustomer,
    AddAddress,
    ListAddresses,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Post, "/api/customers", Route::SignUp)
        .route(Method::Post, "/api/customers/sessions", Route::SignIn)
        .route(Method::Delete, "/api/customers/sessions/current", Route::SignOut)
        .route(Method::Get, "/api/customers/me", Route::Me)
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
        Route::SignUp => sign_up(&request),
        Route::SignIn => sign_in(&request),
        Route::SignOut => sign_out(&request),
        Route::Me => {
            let caller = Caller::of(&request)?;
            let id = caller.shopper()?.customer_id.clone();
            get_customer(&caller, &id)
        }
        Route::GetCustomer => get_customer(&Caller::of(&request)?, params.get("id")),
        Route::AddAddress => add_address(&request, params.get("id")),
        Route::ListAddresses => list_addresses(&Caller::of(&request)?, params.get("id")),
    }
}

/// `POST /api/customers` `{"name", "email", "password"}` → 201 with the
/// customer. The password is checked and hashed, never stored or logged.
fn sign_up(request: &Request) -> Result<Response, ApiError> {
    let body = JsonBody::parse(request.body())?;
    let new = NewCustomer::new(
        &body.required::<String>("name")?,
        &body.required::<String>("email")?,
    )?;
    let password: String = body.required("password")?;
    check_password(&password)?;
    let hash = hash_password(&password, &shop_shared::id::random())?;
    let customer = CustomerStore::open()?.create(&new, Some(&hash))?;
    Ok(json_response(201, &customer))
}

/// `POST /api/customers/sessions` `{"email", "password"}`.
fn sign_in(request: &Request) -> Result<Response, ApiError> {
    let body = JsonBody::parse(request.body())?;
    let email: String = body.required("email")?;
    let password: String = body.required("password")?;
    // A malformed email or an impossible password is no account either:
    // the same 401, after the same work, counted the same.
    let key = check_email(&email).map(|e| email_key(&e)).unwrap_or_else(|_| email_key(&email));
    let client = request.header("spin-client-addr").and_then(|v| v.as_str()).and_then(client_ip);
    let (account_key, client_key) = attempt_keys(&key, client);

    let store = CustomerStore::open()?;
    let now = now_millis();
    store.forget_old_attempts(now, WINDOW_MILLIS)?;
    let (attempts, started) = store.count_attempt(&account_key, now, WINDOW_MILLIS)?;
    let mut wait = retry_after_seconds(attempts, ATTEMPTS_PER_ACCOUNT, started, now);
    if let Some(client_key) = &client_key {
        let (attempts, started) = store.count_attempt(client_key, now, WINDOW_MILLIS)?;
        wait = wait.max(retry_after_seconds(attempts, ATTEMPTS_PER_CLIENT, started, now));
    }
    if let Some(seconds) = wait {
        return Err(CustomerError::TooManyAttempts(seconds).into());
    }

    let account = store.credential(&key)?;
    let plausible = check_password(&password).is_ok();
    let matched = password_matches(&password, account.as_ref().map(|(_, hash)| hash.as_str())) && plausible;
    let Some((customer_id, _)) = account.filter(|_| matched) else {
        return Err(CustomerError::InvalidCredentials.into());
    };
    store.uncount_attempt(&account_key, true)?;
    if let Some(client_key) = &client_key {
        store.uncount_attempt(client_key, false)?;
    }
    let (token, session) = session::start(&customer_id, session_ttl_seconds() * 1000)?;
    Ok(json_response(
        201,
        &json!({
            "token": token,
            "token_type": "Bearer",
            "customer_id": customer_id,
            "expires_at": rfc3339(session.expires_at),
        }),
    ))
}

/// The variable `session_ttl_seconds` (1 s to 30 days), else 12 hours.
fn session_ttl_seconds() -> i64 {
    spin_sdk::variables::get("session_ttl_seconds")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|s| (1..=MAX_SESSION_TTL_SECONDS).contains(s))
        .unwrap_or(DEFAULT_SESSION_TTL_SECONDS)
}

/// `DELETE /api/customers/sessions/current`: the presented session ends, on
/// every service at once.
fn sign_out(request: &Request) -> Result<Response, ApiError> {
    Caller::of(request)?.shopper()?;
    let token = request
        .header("authorization")
        .and_then(|v| v.as_str())
        .and_then(bearer_token)
        .unwrap_or_default();
    session::revoke(token)?;
    Ok(Response::builder().status(204).build())
}

/// The customer's own session or the admin may see the record; anyone else
/// with a credential gets the same 404 as for an id nobody has.
fn check_access(caller: &Caller, id: &str) -> Result<(), ApiError> {
    caller.require_credential()?;
    if !is_customer_id(id) || !caller.may_access(Owner { customer_id: Some(id), order_token_digest: None }) {
        return Err(CustomerError::CustomerNotFound(id.to_owned()).into());
    }
    Ok(())
}

/// `GET /api/customers/{id}` → the customer with its addresses.
fn get_customer(caller: &Caller, id: &str) -> Result<Response, ApiError> {
    check_access(caller, id)?;
    let customer = CustomerStore::open()?
        .customer(id)?
        .ok_or_else(|| CustomerError::CustomerNotFound(id.to_owned()))?;
    Ok(json_response(200, &customer))
}

/// `POST /api/customers/{id}/addresses` with an address → 201 with its id.
fn add_address(request: &Request, id: &str) -> Result<Response, ApiError> {
    check_access(&Caller::of(request)?, id)?;
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
fn list_addresses(caller: &Caller, id: &str) -> Result<Response, ApiError> {
    check_access(caller, id)?;
    let not_found = || CustomerError::CustomerNotFound(id.to_owned());
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
            CustomerError::InvalidPassword(_) => {
                ApiError::unprocessable("invalid_password", message).with("field", "password")
            }
            CustomerError::InvalidCredentials => {
                ApiError::new(401, "invalid_credentials", message).with_header("www-authenticate", "Bearer")
            }
            CustomerError::TooManyAttempts(seconds) => ApiError::new(429, "too_many_attempts", message)
                .with("retry_after_seconds", seconds)
                .with_header("retry-after", seconds.to_string()),
            CustomerError::Unavailable(_) => {
                ApiError::unavailable("customers_unavailable", message)
            }
        }
    }
}
