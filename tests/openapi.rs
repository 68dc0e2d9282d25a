//! The HTTP contract, `api/openapi.json`: served byte for byte at
//! `GET /api/openapi.json`, a well-formed OpenAPI 3.1 document, and in step
//! with the code — every route a component's router serves is documented,
//! and every documented operation is served (read from the source, and
//! asked of the running app).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use shop_tests::*;

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// A route as `("POST", "/api/orders/{id}/cancel")`.
type Route = (String, String);

fn document_text() -> String {
    let path = root().join("api/openapi.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn document() -> Value {
    serde_json::from_str(&document_text()).unwrap_or_else(|e| panic!("api/openapi.json is not JSON: {e}"))
}

/// Every `(METHOD, path)` the document has an operation for.
fn documented(doc: &Value) -> BTreeSet<Route> {
    let paths = doc["paths"].as_object().expect("`paths` is an object");
    let mut routes = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_some() {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

/// The value a local `$ref` (`#/components/...`) points at.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

/// `value`, or what it refers to when it is a `$ref`.
fn deref<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => resolve(doc, reference).unwrap_or(value),
        None => value,
    }
}

/// Every `$ref` under `value` that does not resolve, with where it is.
fn broken_refs(doc: &Value, value: &Value, at: &str, broken: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                if key == "$ref" {
                    let ok = field.as_str().is_some_and(|r| resolve(doc, r).is_some());
                    if !ok {
                        broken.push(format!("{at}: {field}"));
                    }
                } else if !(key == "example" || key == "examples" && field.is_array()) {
                    // Not into literal example values, which may hold anything.
                    broken_refs(doc, field, &format!("{at}/{key}"), broken);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                broken_refs(doc, item, &format!("{at}/{i}"), broken);
            }
        }
        _ => {}
    }
}

// ---- the routes in the source ---------------------------------------------------

/// The source of a file without its unit tests (a `#[cfg(test)]` module at
/// the end, whose routers are examples, not served routes).
fn source_without_tests(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The string literal starting at the first `"` of `text` (no escapes: route
/// patterns and service names have none).
fn string_literal(text: &str) -> Option<&str> {
    let rest = &text[text.find('"')? + 1..];
    Some(&rest[..rest.find('"')?])
}

/// The `(Method, "pattern")` of every `.route(Method::X, "pattern", …)` call in
/// `source`, however the call is spread over lines.
fn route_calls(source: &str) -> Vec<(String, String)> {
    let mut routes = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let call = rest.trim_start();
        let Some(call) = call.strip_prefix("Method::") else { continue };
        let method: String = call.chars().take_while(char::is_ascii_alphanumeric).collect();
        let after_method = call[method.len()..].trim_start();
        let Some(after_comma) = after_method.strip_prefix(',') else { continue };
        let Some(pattern) = string_literal(after_comma).filter(|_| after_comma.trim_start().starts_with('"')) else {
            continue;
        };
        routes.push((method.to_uppercase(), pattern.to_owned()));
    }
    routes
}

/// `/api/orders/:id/cancel` as OpenAPI writes it, `/api/orders/{id}/cancel`.
fn openapi_path(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|segment| match segment.strip_prefix(':') {
            Some(name) => format!("{{{name}}}"),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every route the components serve: their routers' tables, and the event
/// admin routes (`/api/<service>/admin/...`) of every service that hands its
/// requests to `event_admin::serve(&request, "<service>", …)` first.
fn served_routes() -> BTreeSet<Route> {
    let components = root().join("components");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&components).unwrap().flatten() {
        if entry.file_name() != "shared" {
            rust_files(&entry.path().join("src"), &mut files);
        }
    }
    let mut routes = BTreeSet::new();
    let mut event_services = BTreeSet::new();
    for file in &files {
        let source = source_without_tests(file);
        for (method, pattern) in route_calls(&source) {
            routes.insert((method, openapi_path(&pattern)));
        }
        let mut rest = source.as_str();
        while let Some(at) = rest.find("event_admin::serve(") {
            rest = &rest[at + "event_admin::serve(".len()..];
            let head = &rest[..rest.find(')').unwrap_or(rest.len())];
            let service = string_literal(head)
                .unwrap_or_else(|| panic!("{}: event_admin::serve without a service name", file.display()));
            event_services.insert(service.to_owned());
        }
    }
    let admin = route_calls(&source_without_tests(&components.join("shared/src/event_admin.rs")));
    assert!(admin.len() >= 5, "event_admin.rs: expected its admin routes, found {admin:?}");
    for service in &event_services {
        for (method, pattern) in &admin {
            assert!(pattern.starts_with("/api/:service/admin/"), "event_admin.rs: unexpected route {pattern}");
            routes.insert((method.clone(), openapi_path(&pattern.replace(":service", service))));
        }
    }
    routes
}

#[test]
fn the_route_parser_reads_calls_over_several_lines() {
    let source = r#"
        Router::new()
            .route(Method::Get, "/api/carts/:cart_id", Route::GetCart)
            .route(
                Method::Put,
                "/api/carts/:cart_id/items/:sku",
                Route::SetQuantity,
            )
            .route(method, "/not/a/literal/method", Route::X)
    "#;
    assert_eq!(
        route_calls(source),
        vec![("GET".into(), "/api/carts/:cart_id".into()), ("PUT".into(), "/api/carts/:cart_id/items/:sku".into())]
    );
    assert_eq!(openapi_path("/api/carts/:cart_id/items/:sku"), "/api/carts/{cart_id}/items/{sku}");
}

#[test]
fn every_served_route_is_documented_and_every_documented_one_is_served() {
    let served = served_routes();
    // The parser found the routers at all (a typo here would pass vacuously).
    for known in [
        ("GET", "/api/products/{sku}"),
        ("POST", "/api/checkout"),
        ("GET", "/api/orders/admin/dead-letters"),
        ("POST", "/api/payments/admin/dead-letters/{id}/replay"),
        ("POST", "/api/admin/outbox/flush"),
        ("GET", "/api/openapi.json"),
    ] {
        assert!(served.contains(&(known.0.to_owned(), known.1.to_owned())), "the source scan missed {known:?}: {served:#?}");
    }
    let documented = documented(&document());
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "api/openapi.json is out of step with the routers.\nserved but not documented: {undocumented:#?}\ndocumented but not served: {unserved:#?}"
    );
}

#[test]
fn the_document_is_well_formed() {
    let doc = document();
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1"), "openapi is {version:?}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string(), "info needs title and version");
    let schemes = doc["components"]["securitySchemes"].as_object().expect("securitySchemes");
    for name in ["adminToken", "session", "orderToken"] {
        let scheme = &schemes[name];
        assert_eq!((scheme["type"].as_str(), scheme["scheme"].as_str()), (Some("http"), Some("bearer")), "{name}");
    }

    let mut problems = Vec::new();
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let at = format!("{} {path}", method.to_uppercase());
            match op["operationId"].as_str() {
                Some(id) if !id.is_empty() => {
                    if !operation_ids.insert(id.to_owned()) {
                        problems.push(format!("{at}: operationId {id} is used twice"));
                    }
                }
                _ => problems.push(format!("{at}: no operationId")),
            }
            if !op["tags"].as_array().is_some_and(|t| !t.is_empty()) {
                problems.push(format!("{at}: no tags"));
            }
            match op["responses"].as_object() {
                Some(responses) if !responses.is_empty() => {
                    for (status, response) in responses {
                        if deref(&doc, response)["description"].as_str().is_none() {
                            problems.push(format!("{at}: response {status} has no description"));
                        }
                    }
                }
                _ => problems.push(format!("{at}: no responses")),
            }
            for requirement in op["security"].as_array().into_iter().flatten() {
                for name in requirement.as_object().into_iter().flat_map(|r| r.keys()) {
                    if !schemes.contains_key(name) {
                        problems.push(format!("{at}: unknown security scheme {name}"));
                    }
                }
            }
            // Every `{param}` of the path is declared as a path parameter.
            let declared: Vec<&Value> = item["parameters"]
                .as_array()
                .into_iter()
                .chain(op["parameters"].as_array())
                .flatten()
                .map(|p| deref(&doc, p))
                .collect();
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(|c| c == '{' || c == '}');
                let found = declared.iter().any(|p| p["in"] == "path" && p["name"] == name && p["required"] == true);
                if !found {
                    problems.push(format!("{at}: path parameter {name} is not declared (required, in: path)"));
                }
            }
        }
    }
    broken_refs(&doc, &doc, "#", &mut problems);
    assert!(problems.is_empty(), "api/openapi.json:\n{}", problems.join("\n"));
}

// ---- what the running app serves ----------------------------------------------------

fn the_document_is_served_byte_for_byte(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let r = h.get("/api/openapi.json");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.text == document_text(), "GET /api/openapi.json differs from api/openapi.json (rebuild openapi.wasm)");
    assert!(r.json()["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")));

    let r = h.post("/api/openapi.json", &json!({}));
    assert_eq!((r.status, r.error_code().as_str()), (405, "method_not_allowed"), "{}", r.text);
    assert_eq!(r.header("allow"), Some("GET"));
}

/// Whether an answer is a router's miss: 404 `not_found` (or a runtime's own
/// 404 for a path no component has) or 405 `method_not_allowed`.
fn is_router_miss(r: &Reply) -> bool {
    let code = serde_json::from_str::<Value>(&r.text).ok().and_then(|b| b["error"]["code"].as_str().map(str::to_owned));
    match (r.status, code.as_deref()) {
        (404, None | Some("not_found")) => true,
        (405, None | Some("method_not_allowed")) => true,
        _ => false,
    }
}

fn every_documented_operation_is_routed(rt: Runtime) {
    let h = HostConfig::shop_on(rt).start();
    let mut missed = Vec::new();
    for (method, path) in documented(&document()) {
        // Any value for a parameter: what matters is that a route takes it.
        let concrete = path
            .split('/')
            .map(|segment| if segment.starts_with('{') { "openapi-probe" } else { segment })
            .collect::<Vec<_>>()
            .join("/");
        let r = match method.as_str() {
            "POST" | "PUT" | "PATCH" => h.request(&method, &concrete, &[("content-type", "application/json")], Some(b"{}")),
            _ => h.request(&method, &concrete, &[], None),
        };
        if is_router_miss(&r) {
            missed.push(format!("{method} {path} ({concrete}): {} {}", r.status, r.text));
        }
    }
    assert!(missed.is_empty(), "documented but answered as a router's miss:\n{}", missed.join("\n"));
}

on_both_runtimes!(the_document_is_served_byte_for_byte, every_documented_operation_is_routed);
