//! Spin's HTTP routing: which component answers a path.
//!
//! Patterns are exact (`/api/products`), with `:name` segments that match
//! one path segment, and optionally a trailing `/...` that matches any rest
//! (including nothing). When several patterns match, the most specific wins:
//! compared segment by segment, a literal beats a parameter, a longer match
//! beats a shorter one, and a pattern without a wildcard beats one with it.
//! A duplicated pattern is replaced by the later one, as Spin does.

use anyhow::{Result, bail};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug, Clone)]
pub struct RoutePattern {
    /// As written in the manifest (`spin-raw-component-route`).
    raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

impl RoutePattern {
    pub fn parse(raw: &str) -> Result<Self> {
        let mut path = raw.trim();
        if path.is_empty() {
            bail!("a route cannot be empty; use `/` or `/...`");
        }
        if path.contains('?') || path.contains('#') {
            bail!("a route is a path; it cannot contain `?` or `#`");
        }
        let mut wildcard = false;
        if let Some(prefix) = path.strip_suffix("/...").or_else(|| path.strip_suffix("/*")) {
            wildcard = true;
            path = prefix;
        } else if path == "..." {
            wildcard = true;
            path = "";
        }
        let mut segments = Vec::new();
        for part in path.split('/').filter(|s| !s.is_empty()) {
            if part == "..." || part == "*" {
                bail!("`{part}` may only end a route");
            }
            if let Some(name) = part.strip_prefix(':') {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    bail!("parameter `{part}` needs a name of letters, digits or `_`");
                }
                segments.push(Segment::Param(name.to_string()));
            } else {
                segments.push(Segment::Literal(part.to_string()));
            }
        }
        Ok(RoutePattern { raw: raw.to_string(), segments, wildcard })
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The route without its trailing wildcard (`spin-component-route`).
    pub fn prefix(&self) -> &str {
        self.raw
            .strip_suffix("/...")
            .or_else(|| self.raw.strip_suffix("/*"))
            .unwrap_or(&self.raw)
    }

    /// Specificity, greater is more specific; see the module docs.
    fn rank(&self) -> (Vec<u8>, bool) {
        let weights = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 2,
                Segment::Param(_) => 1,
            })
            .collect();
        (weights, !self.wildcard)
    }

    fn matches(&self, path: &str) -> Option<(Vec<(String, String)>, String)> {
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let (trimmed, trailing_slash) = match trimmed.strip_suffix('/') {
            Some(t) => (t, true),
            None => (trimmed, false),
        };
        let parts: Vec<&str> = if trimmed.is_empty() { Vec::new() } else { trimmed.split('/').collect() };
        if parts.len() < self.segments.len() || (!self.wildcard && parts.len() != self.segments.len()) {
            return None;
        }
        let mut params = Vec::new();
        for (segment, part) in self.segments.iter().zip(&parts) {
            match segment {
                Segment::Literal(lit) if lit == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(_) if part.is_empty() => return None,
                Segment::Param(name) => params.push((name.clone(), (*part).to_string())),
            }
        }
        let path_info = if self.wildcard {
            let rest = &parts[self.segments.len()..];
            match (rest.is_empty(), trailing_slash) {
                (true, false) => String::new(),
                (true, true) => "/".to_string(),
                (false, false) => format!("/{}", rest.join("/")),
                (false, true) => format!("/{}/", rest.join("/")),
            }
        } else {
            String::new()
        };
        Some((params, path_info))
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    pub pattern: RoutePattern,
    pub component: String,
}

/// The outcome of routing one request path.
#[derive(Debug, Clone)]
pub struct RouteMatch<'a> {
    pub route: &'a Route,
    /// `:name` captures, in pattern order.
    pub params: Vec<(String, String)>,
    /// What the trailing wildcard matched (`spin-path-info`).
    pub path_info: String,
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// `routes` in manifest order; a later duplicate pattern replaces an
    /// earlier one (and is reported by the returned list of replaced ones).
    pub fn build(routes: impl IntoIterator<Item = (String, String)>) -> Result<(Self, Vec<Route>)> {
        let mut kept: Vec<Route> = Vec::new();
        let mut replaced = Vec::new();
        for (raw, component) in routes {
            let pattern = RoutePattern::parse(&raw)?;
            let route = Route { pattern, component };
            if let Some(existing) = kept
                .iter_mut()
                .find(|r| r.pattern.segments == route.pattern.segments && r.pattern.wildcard == route.pattern.wildcard)
            {
                replaced.push(std::mem::replace(existing, route));
            } else {
                kept.push(route);
            }
        }
        Ok((Router { routes: kept }, replaced))
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn route(&self, path: &str) -> Option<RouteMatch<'_>> {
        self.routes
            .iter()
            .filter_map(|route| {
                route
                    .pattern
                    .matches(path)
                    .map(|(params, path_info)| RouteMatch { route, params, path_info })
            })
            .max_by(|a, b| a.route.pattern.rank().cmp(&b.route.pattern.rank()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        Router::build(routes.iter().map(|(r, c)| (r.to_string(), c.to_string())))
            .unwrap()
            .0
    }

    fn component<'a>(r: &'a Router, path: &str) -> Option<&'a str> {
        r.route(path).map(|m| m.route.component.as_str())
    }

    #[test]
    fn exact_route_matches_only_its_path() {
        let r = router(&[("/api/products", "catalog")]);
        assert_eq!(component(&r, "/api/products"), Some("catalog"));
        assert_eq!(component(&r, "/api/products/"), Some("catalog"));
        assert_eq!(component(&r, "/api/products/x"), None);
        assert_eq!(component(&r, "/api"), None);
    }

    #[test]
    fn wildcard_matches_prefix_and_rest() {
        let r = router(&[("/static/...", "files")]);
        let m = r.route("/static/css/site.css").unwrap();
        assert_eq!(m.path_info, "/css/site.css");
        assert_eq!(r.route("/static").unwrap().path_info, "");
        assert_eq!(r.route("/static/").unwrap().path_info, "/");
        assert_eq!(r.route("/static/a/").unwrap().path_info, "/a/");
        assert!(r.route("/staticx").is_none());
    }

    #[test]
    fn most_specific_wins_regardless_of_order() {
        let r = router(&[
            ("/...", "root"),
            ("/one/...", "one"),
            ("/one/two/...", "two"),
            ("/one/two", "exact"),
            ("/one/:id", "param"),
        ]);
        assert_eq!(component(&r, "/one/two/three"), Some("two"));
        assert_eq!(component(&r, "/one/two"), Some("exact"));
        assert_eq!(component(&r, "/one/five"), Some("param"));
        assert_eq!(component(&r, "/one"), Some("one"));
        assert_eq!(component(&r, "/other"), Some("root"));
        assert_eq!(component(&r, "/"), Some("root"));
    }

    #[test]
    fn params_are_captured() {
        let r = router(&[("/api/carts/:cart_id/items/:sku", "cart")]);
        let m = r.route("/api/carts/c1/items/MUG-1").unwrap();
        assert_eq!(
            m.params,
            vec![("cart_id".into(), "c1".into()), ("sku".into(), "MUG-1".into())]
        );
        assert!(r.route("/api/carts//items/x").is_none());
    }

    #[test]
    fn later_duplicate_replaces_earlier() {
        let (r, replaced) = Router::build([
            ("/a".to_string(), "first".to_string()),
            ("/a/".to_string(), "second".to_string()),
        ])
        .unwrap();
        assert_eq!(component(&r, "/a"), Some("second"));
        assert_eq!(replaced[0].component, "first");
    }

    #[test]
    fn malformed_routes_are_refused() {
        assert!(RoutePattern::parse("").is_err());
        assert!(RoutePattern::parse("/a/.../b").is_err());
        assert!(RoutePattern::parse("/a/:").is_err());
        assert!(RoutePattern::parse("/a?b").is_err());
    }

    #[test]
    fn prefix_drops_the_wildcard() {
        assert_eq!(RoutePattern::parse("/foo/...").unwrap().prefix(), "/foo");
        assert_eq!(RoutePattern::parse("/foo/:id/...").unwrap().prefix(), "/foo/:id");
        assert_eq!(RoutePattern::parse("/foo").unwrap().prefix(), "/foo");
    }
}
