//! Routing on routefinder (the matcher spin-sdk's own router uses), with
//! misses that are JSON like every other error: an unknown path is 404
//! `not_found`, a known path with another method is 405
//! `method_not_allowed` with an `allow` header.
//!
//! Not spin-sdk's `Router` itself: its misses are plain text without
//! `allow`, and it picks the route per method, so `GET` on a literal path
//! that only `POST` serves (`/api/customers/sessions`) fell through to a
//! parameter route (`/api/customers/:id`). Here the path picks its route
//! first — the most specific pattern: a literal segment beats a parameter —
//! and the method is checked against that pattern's methods only. So a
//! literal path segment is a reserved word: no sku can be `prices`.

use spin_sdk::http::Method;

use crate::ApiError;
use crate::query::percent_decode;

/// Routes `(method, path)` to a value of the service's own route type.
/// Patterns are literal segments and `:name` parameters, e.g.
/// `/api/products/:sku`, in any order.
pub struct Router<R> {
    patterns: routefinder::Router<usize>,
    /// Per pattern (the index `patterns` gives), the pattern and its
    /// methods and routes.
    methods: Vec<(&'static str, Vec<(Method, R)>)>,
}

/// The path parameters of a matched route, percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The named parameter. A route only matches when all its parameters are
    /// present and non-empty, so an unknown name is a mistake in the route
    /// table, and gets the empty string that every validation refuses.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(param, _)| param == name)
            .map_or("", |(_, value)| value.as_str())
    }
}

impl<R: Copy> Router<R> {
    pub fn new() -> Self {
        Self { patterns: routefinder::Router::new(), methods: Vec::new() }
    }

    /// Adds `method pattern → route`. A malformed pattern is a bug in the
    /// service's route table, caught by its tests.
    pub fn route(mut self, method: Method, pattern: &'static str, route: R) -> Self {
        match self.methods.iter_mut().find(|(known, _)| *known == pattern) {
            Some((_, routes)) => routes.push((method, route)),
            None => {
                self.patterns
                    .add(pattern, self.methods.len())
                    .unwrap_or_else(|e| panic!("route pattern {pattern:?}: {e}"));
                self.methods.push((pattern, vec![(method, route)]));
            }
        }
        self
    }

    pub fn resolve(&self, method: &Method, path: &str) -> Result<(R, Params), ApiError> {
        let not_found = || ApiError::not_found("not_found", format!("no such resource: {path}"));
        // routefinder forgives a missing leading or a trailing slash and
        // empty segments; the shop's paths are exact.
        if !path.starts_with('/') || path[1..].split('/').any(str::is_empty) {
            return Err(not_found());
        }
        let found = self.patterns.best_match(path).ok_or_else(not_found)?;
        let mut params = Vec::new();
        for (name, raw) in found.captures().iter() {
            let value = percent_decode(raw).filter(|v| !v.is_empty()).ok_or_else(not_found)?;
            params.push((name.to_owned(), value));
        }
        let (_, routes) = &self.methods[*found.handler()];
        match routes.iter().find(|(route_method, _)| route_method == method) {
            Some((_, route)) => Ok((*route, Params(params))),
            None => {
                let mut allowed: Vec<String> = Vec::new();
                for (route_method, _) in routes {
                    let name = route_method.to_string();
                    if !allowed.contains(&name) {
                        allowed.push(name);
                    }
                }
                Err(ApiError::method_not_allowed(&method.to_string(), path, &allowed))
            }
        }
    }
}

impl<R: Copy> Default for Router<R> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Route {
        List,
        Prices,
        Get,
        Put,
    }

    fn router() -> Router<Route> {
        Router::new()
            .route(Method::Get, "/api/products", Route::List)
            .route(Method::Post, "/api/products/prices", Route::Prices)
            .route(Method::Get, "/api/products/:sku", Route::Get)
            .route(Method::Put, "/api/products/:sku", Route::Put)
    }

    #[test]
    fn matches_literals_and_params() {
        let router = router();
        assert_eq!(
            router.resolve(&Method::Get, "/api/products").unwrap().0,
            Route::List
        );
        let (route, params) = router
            .resolve(&Method::Get, "/api/products/MUG-001")
            .unwrap();
        assert_eq!(route, Route::Get);
        assert_eq!(params.get("sku"), "MUG-001");
        assert_eq!(params.get("other"), "");
        assert_eq!(
            router.resolve(&Method::Put, "/api/products/A").unwrap().0,
            Route::Put
        );
    }

    #[test]
    fn a_literal_path_is_its_own_route_whatever_the_method() {
        let router = router();
        assert_eq!(
            router
                .resolve(&Method::Post, "/api/products/prices")
                .unwrap()
                .0,
            Route::Prices
        );
        // Not the `:sku` route with sku "prices": 405, allowing what the
        // literal route allows.
        for method in [Method::Get, Method::Put] {
            let error = router.resolve(&method, "/api/products/prices").unwrap_err();
            assert_eq!((error.status, error.code), (405, "method_not_allowed"));
            assert_eq!(error.headers, vec![("allow", "POST".to_owned())]);
        }
    }

    #[test]
    fn the_order_routes_are_listed_in_does_not_matter() {
        let router = Router::new()
            .route(Method::Get, "/api/products/:sku", Route::Get)
            .route(Method::Post, "/api/products/prices", Route::Prices);
        assert_eq!(router.resolve(&Method::Post, "/api/products/prices").unwrap().0, Route::Prices);
        assert_eq!(router.resolve(&Method::Get, "/api/products/MUG.001").unwrap().1.get("sku"), "MUG.001");
    }

    #[test]
    fn params_are_percent_decoded() {
        let (_, params) = router()
            .resolve(&Method::Get, "/api/products/MUG%2D001")
            .unwrap();
        assert_eq!(params.get("sku"), "MUG-001");
    }

    #[test]
    fn unknown_paths_are_404() {
        let router = router();
        for path in [
            "/",
            "/api",
            "/api/products/A/B",
            "/api/products/",
            "/api/products//",
            "/api/products/%FF",
            "/api/productsX",
            "api/products",
        ] {
            let error = router.resolve(&Method::Get, path).unwrap_err();
            assert_eq!((error.status, error.code), (404, "not_found"), "{path}");
        }
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let error = router()
            .resolve(&Method::Delete, "/api/products/MUG-001")
            .unwrap_err();
        assert_eq!((error.status, error.code), (405, "method_not_allowed"));
        assert_eq!(error.headers, vec![("allow", "GET, PUT".to_owned())]);
    }
}
