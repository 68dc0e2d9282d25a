//! The catalog's HTTP API: routes to the domain and the store, JSON in and out.

use serde::Serialize;
use shop_shared::{
    ApiError, JsonBody, Money, Query, Router, json_response, read_request, require_admin,
};
use spin_sdk::http::{IncomingRequest, IntoResponse, Method, Request, Response};

use crate::domain::{
    CatalogError, DEFAULT_PER_PAGE, Price, ProductDraft, ProductQuery, Upserted,
    check_price_request, prices_in_order,
};
use crate::store::CatalogStore;

#[derive(Clone, Copy)]
enum Route {
    ListProducts,
    Prices,
    GetProduct,
    UpsertProduct,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Get, "/api/products", Route::ListProducts)
        .route(Method::Post, "/api/products/prices", Route::Prices)
        .route(Method::Get, "/api/products/:sku", Route::GetProduct)
        .route(Method::Put, "/api/products/:sku", Route::UpsertProduct)
}

pub fn handle(incoming: IncomingRequest) -> Response {
    respond(incoming).unwrap_or_else(IntoResponse::into_response)
}

fn respond(incoming: IncomingRequest) -> Result<Response, ApiError> {
    let request = read_request(incoming)?;
    let (route, params) = router().resolve(request.method(), request.path())?;
    match route {
        Route::ListProducts => list_products(&request),
        Route::Prices => prices(&request),
        Route::GetProduct => get_product(params.get("sku")),
        Route::UpsertProduct => upsert_product(&request, params.get("sku")),
    }
}

/// `GET /api/products?q=&category=&page=&per_page=`
fn list_products(request: &Request) -> Result<Response, ApiError> {
    let query = Query::parse(request.query());
    let search = ProductQuery::new(
        query.get("q"),
        query.get("category"),
        page_number(&query, "page", 1)?,
        page_number(&query, "per_page", DEFAULT_PER_PAGE)?,
    )?;
    let store = CatalogStore::open()?;
    Ok(json_response(200, &search.page_of(store.all_products()?)))
}

/// A positive whole number, or `default` when absent or blank.
fn page_number(query: &Query, name: &str, default: u32) -> Result<u32, CatalogError> {
    match query.get(name).map(str::trim) {
        None | Some("") => Ok(default),
        Some(text) => text.parse().map_err(|_| {
            CatalogError::InvalidQuery(format!("{name} must be a whole number, got {text:?}"))
        }),
    }
}

/// `GET /api/products/{sku}`
fn get_product(sku: &str) -> Result<Response, ApiError> {
    let store = CatalogStore::open()?;
    let product = store
        .product(sku)?
        .ok_or_else(|| CatalogError::ProductNotFound(sku.to_owned()))?;
    Ok(json_response(200, &product))
}

#[derive(Serialize)]
struct PriceList {
    prices: Vec<Price>,
}

/// `POST /api/products/prices` `{"skus": [...]}`
fn prices(request: &Request) -> Result<Response, ApiError> {
    let body = JsonBody::parse(request.body())?;
    let skus: Vec<String> = body.required("skus")?;
    check_price_request(&skus)?;
    let store = CatalogStore::open()?;
    let found = store.products(&skus)?;
    let prices = prices_in_order(&skus, &found)?;
    Ok(json_response(200, &PriceList { prices }))
}

/// `PUT /api/products/{sku}` (admin): 201 when created, 200 when replaced.
fn upsert_product(request: &Request, sku: &str) -> Result<Response, ApiError> {
    require_admin(request)?;
    let body = JsonBody::parse(request.body())?;
    if let Some(body_sku) = body.optional::<String>("sku")?
        && body_sku != sku
    {
        return Err(CatalogError::InvalidProduct {
            field: "sku",
            message: format!("the body's sku {body_sku:?} differs from the path's {sku:?}"),
        }
        .into());
    }
    let draft = ProductDraft {
        name: body.required("name")?,
        description: body.optional("description")?.unwrap_or_default(),
        price: body.required::<Money>("price")?,
        weight_grams: body.required("weight_grams")?,
        categories: body.optional("categories")?.unwrap_or_default(),
        image: body.required("image")?,
    };
    let product = draft.into_product(sku)?;
    let store = CatalogStore::open()?;
    let status = match store.upsert(&product)? {
        Upserted::Created => 201,
        Upserted::Updated => 200,
    };
    Ok(json_response(status, &product))
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        let message = error.to_string();
        match error {
            CatalogError::ProductNotFound(sku) => {
                ApiError::not_found("product_not_found", message).with("sku", sku)
            }
            CatalogError::UnknownSkus(skus) => {
                ApiError::not_found("unknown_sku", message).with("skus", skus)
            }
            CatalogError::InvalidProduct { field, .. } => {
                ApiError::unprocessable("invalid_product", message).with("field", field)
            }
            CatalogError::InvalidQuery(_) => ApiError::bad_request("invalid_query", message),
            CatalogError::InvalidSkuList(_) => ApiError::bad_request("invalid_sku_list", message),
            CatalogError::Unavailable(_) => ApiError::unavailable("catalog_unavailable", message),
        }
    }
}
