//! A small router whose misses are JSON like every other error: an unknown path
//! is 404 `not_found`, a known path with another method is 405
//! `method_not_allowed` with an `allow` header.

use spin_sdk::http::Method;

use crate::ApiError;
use crate::query::percent_decode;

/// Routes `(method, path)` to a value of the service's own route type.
/// Patterns are literal segments and `:name` parameters, e.g.
/// `/api/products/:sku`; the first matching route wins, so list literal paths
/// before parameters that would also match them.
pub struct Router<R> {
    routes: Vec<(Method, Vec<Segment>, R)>,
}

enum Segment {
    Literal(&'static str),
    Param(&'static str),
}

/// The path parameters of a matched route, percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params(Vec<(&'static str, String)>);

impl Params {
    /// The named parameter. A route only matches when all its parameters are
    /// present and non-empty, so an unknown name is a mistake in the route
    /// table, and gets the empty string that every validation refuses.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(param, _)| *param == name)
            .map_or("", |(_, value)| value.as_str())
    }
}

impl<R: Copy> Router<R> {
    pub fn new() -> Self {
        Self { routes: Vec::new() }
    }

    pub fn route(mut self, method: Method, pattern: &'static str, route: R) -> Self {
        let segments = pattern
            .trim_start_matches('/')
            .split('/')
            .map(|segment| match segment.strip_prefix(':') {
                Some(name) => Segment::Param(name),
                None => Segment::Literal(segment),
            })
            .collect();
        self.routes.push((method, segments, route));
        self
    }

    pub fn resolve(&self, method: &Method, path: &str) -> Result<(R, Params), ApiError> {
        let mut allowed: Vec<String> = Vec::new();
        for (route_method, segments, route) in &self.routes {
            let Some(params) = match_path(segments, path) else {
                continue;
            };
            if route_method == method {
                return Ok((*route, params));
            }
            let name = route_method.to_string();
            if !allowed.contains(&name) {
                allowed.push(name);
            }
        }
        if allowed.is_empty() {
            Err(ApiError::not_found(
                "not_found",
                format!("no such resource: {path}"),
            ))
        } else {
            Err(ApiError::method_not_allowed(
                &method.to_string(),
                path,
                &allowed,
            ))
        }
    }
}

impl<R: Copy> Default for Router<R> {
    fn default() -> Self {
        Self::new()
    }
}

fn match_path(segments: &[Segment], path: &str) -> Option<Params> {
    let mut parts = path.strip_prefix('/')?.split('/');
    let mut params = Vec::new();
    for segment in segments {
        let part = parts.next()?;
        match segment {
            Segment::Literal(literal) if *literal == part => {}
            Segment::Literal(_) => return None,
            Segment::Param(name) => {
                let value = percent_decode(part)?;
                if value.is_empty() {
                    return None;
                }
                params.push((*name, value));
            }
        }
    }
    match parts.next() {
        None => Some(Params(params)),
        Some(_) => None,
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
    fn literal_routes_listed_first_win_for_their_method_only() {
        let router = router();
        assert_eq!(
            router
                .resolve(&Method::Post, "/api/products/prices")
                .unwrap()
                .0,
            Route::Prices
        );
        let (route, params) = router
            .resolve(&Method::Get, "/api/products/prices")
            .unwrap();
        assert_eq!((route, params.get("sku")), (Route::Get, "prices"));
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
