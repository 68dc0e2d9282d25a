//! Who is asking, from `Authorization: Bearer <token>`: the operator (the
//! Spin variable `admin_token`), a signed-in shopper (a session token,
//! [`crate::session`]), a guest holding an order's access token, or nobody.
//!
//! The rules of who may see what live here once, and the service that owns
//! the data applies them to its own records (docs/architecture.md, "Trust
//! boundary"): without any credential a shopper's resource is 401 whether or
//! not it exists; with a credential that does not cover it, the owner's own
//! 404, as a 403 would say the thing exists.

use spin_sdk::http::Request;

use crate::session::{self, Session};
use crate::{ApiError, sha256_hex};

/// What every order access token starts with.
pub const ORDER_TOKEN_PREFIX: &str = "oat";

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Shopper(Session),
    /// Holds an order access token, known here only by its SHA-256: whether
    /// it opens an order is for the service keeping that order to say.
    OrderHolder { token_digest: String },
    Anonymous,
}

/// Whose a record is: the customer it belongs to, and for a guest's order
/// the digest of its access token.
#[derive(Debug, Clone, Copy, Default)]
pub struct Owner<'a> {
    pub customer_id: Option<&'a str>,
    pub order_token_digest: Option<&'a str>,
}

impl Caller {
    /// Reads the `Authorization` header. A token that is presented but not
    /// good (malformed, unknown, expired, revoked) is 401 at once, whatever
    /// the route: a client with a stale session learns it, rather than
    /// being served as a guest.
    pub fn of(request: &Request) -> Result<Caller, ApiError> {
        let Some(header) = request.header("authorization") else {
            return Ok(Caller::Anonymous);
        };
        let token = header.as_str().and_then(bearer_token).ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
        })?;
        if token.starts_with("sst_") {
            return match session::find(token)? {
                Some(session) => Ok(Caller::Shopper(session)),
                None => Err(ApiError::unauthorized(
                    "the session is not valid: it expired, was signed out, or never existed; sign in again",
                )),
            };
        }
        if let Some(hex) = token.strip_prefix("oat_") {
            if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(Caller::OrderHolder { token_digest: order_token_digest(token) });
            }
            return Err(ApiError::unauthorized("the order access token is malformed"));
        }
        if is_admin_token(token) {
            return Ok(Caller::Admin);
        }
        Err(ApiError::unauthorized("the token is not valid"))
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Admin)
    }

    /// The signed-in shopper's session; 401 for anyone else (an admin is
    /// not a shopper, and an order token is no account).
    pub fn shopper(&self) -> Result<&Session, ApiError> {
        match self {
            Caller::Shopper(session) => Ok(session),
            Caller::Admin => Err(ApiError::new(403, "forbidden", "this route is a signed-in shopper's own")),
            _ => Err(ApiError::unauthorized("sign in first: `POST /api/customers/sessions`")),
        }
    }

    /// 401 unless some credential came with the request: asked before a
    /// record is looked up, so that its absence tells an anonymous caller
    /// nothing.
    pub fn require_credential(&self) -> Result<(), ApiError> {
        match self {
            Caller::Anonymous => Err(ApiError::unauthorized(
                "this needs `Authorization: Bearer <token>`: a session token, or the order's access token",
            )),
            _ => Ok(()),
        }
    }

    /// Whether the caller may see and act on a record owned by `owner`.
    pub fn may_access(&self, owner: Owner<'_>) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Shopper(session) => owner.customer_id == Some(session.customer_id.as_str()),
            Caller::OrderHolder { token_digest } => owner
                .order_token_digest
                .is_some_and(|digest| constant_time_eq(digest.as_bytes(), token_digest.as_bytes())),
            Caller::Anonymous => false,
        }
    }

    /// Whose records a listing may show: an admin names anyone (`requested`,
    /// which the service checks), a shopper only themself (`requested`
    /// absent or their own id; anything else 403, which reveals nothing as
    /// it is the answer for any other value).
    pub fn listing<'a>(&'a self, requested: Option<&'a str>) -> Result<Listing<'a>, ApiError> {
        match self {
            Caller::Admin => Ok(Listing::Anyone(requested)),
            Caller::Shopper(session) => match requested {
                None => Ok(Listing::Own(&session.customer_id)),
                Some(id) if id == session.customer_id => Ok(Listing::Own(&session.customer_id)),
                Some(_) => Err(ApiError::new(
                    403,
                    "forbidden",
                    "a shopper lists only their own: leave out `customer`, or give your own customer id",
                )),
            },
            _ => Err(ApiError::unauthorized("sign in first: `POST /api/customers/sessions`")),
        }
    }
}

/// Whose records a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing<'a> {
    /// The operator's: as requested (a customer id or email), or none given.
    Anyone(Option<&'a str>),
    /// A shopper's own, by customer id.
    Own(&'a str),
}

/// What an order keeps of its access token. SHA-256 is enough: the token is
/// 256 random bits, so the digest cannot be reversed by guessing.
pub fn order_token_digest(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

const ADMIN_TOKEN_VARIABLE: &str = "admin_token";

/// Lets the request through only with the configured admin token. An unset or
/// empty variable refuses everyone rather than accepting an empty token.
pub fn require_admin(request: &Request) -> Result<(), ApiError> {
    let presented = request
        .header("authorization")
        .and_then(|value| value.as_str())
        .and_then(bearer_token)
        .ok_or_else(|| {
            ApiError::unauthorized("admin routes need an `Authorization: Bearer <token>` header")
        })?;
    if !is_admin_token(presented) {
        return Err(ApiError::unauthorized("the admin token is not valid"));
    }
    Ok(())
}

fn is_admin_token(presented: &str) -> bool {
    let expected = match spin_sdk::variables::get(ADMIN_TOKEN_VARIABLE) {
        Ok(token) => token,
        Err(e) => {
            eprintln!("admin token unavailable: {e}");
            String::new()
        }
    };
    !expected.is_empty() && constant_time_eq(presented.as_bytes(), expected.as_bytes())
}

/// The token of an `Authorization: Bearer <token>` header's value.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Compares without stopping at the first difference, so the time taken does
/// not tell an attacker how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let length_difference = (a.len() ^ b.len()) as u64;
    let byte_differences = (0..a.len().max(b.len())).fold(0u8, |acc, i| {
        acc | (a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0))
    });
    length_difference == 0 && byte_differences == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_tokens() {
        assert_eq!(bearer_token("Bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer_token("bearer  s3cret "), Some("s3cret"));
        assert_eq!(bearer_token("Basic czNjcmV0"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("s3cret"), None);
    }

    #[test]
    fn compares_whole_tokens() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3crex"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret0"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    fn session(customer_id: &str) -> Caller {
        Caller::Shopper(Session { customer_id: customer_id.into(), expires_at: i64::MAX })
    }

    #[test]
    fn shoppers_reach_their_own_records_only() {
        let mine = Owner { customer_id: Some("cus_a"), order_token_digest: None };
        assert!(session("cus_a").may_access(mine));
        assert!(!session("cus_b").may_access(mine));
        assert!(Caller::Admin.may_access(mine));
        assert!(!Caller::Anonymous.may_access(mine));
        let guest = Owner { customer_id: None, order_token_digest: None };
        assert!(!session("cus_a").may_access(guest), "a guest order belongs to no session");
    }

    #[test]
    fn an_order_token_opens_its_order_only() {
        let token = crate::id::new_secret(ORDER_TOKEN_PREFIX);
        let digest = order_token_digest(&token);
        let holder = Caller::OrderHolder { token_digest: digest.clone() };
        assert!(holder.may_access(Owner { customer_id: None, order_token_digest: Some(&digest) }));
        let other = order_token_digest(&crate::id::new_secret(ORDER_TOKEN_PREFIX));
        assert!(!holder.may_access(Owner { customer_id: None, order_token_digest: Some(&other) }));
        assert!(!holder.may_access(Owner { customer_id: Some("cus_a"), order_token_digest: None }));
    }

    #[test]
    fn listings_are_the_shoppers_own() {
        assert_eq!(session("cus_a").listing(None).unwrap(), Listing::Own("cus_a"));
        assert_eq!(session("cus_a").listing(Some("cus_a")).unwrap(), Listing::Own("cus_a"));
        assert_eq!(session("cus_a").listing(Some("cus_b")).unwrap_err().status, 403);
        assert_eq!(session("cus_a").listing(Some("a@b.co")).unwrap_err().status, 403);
        assert_eq!(Caller::Admin.listing(Some("a@b.co")).unwrap(), Listing::Anyone(Some("a@b.co")));
        assert_eq!(Caller::Anonymous.listing(None).unwrap_err().status, 401);
        let holder = Caller::OrderHolder { token_digest: String::new() };
        assert_eq!(holder.listing(None).unwrap_err().status, 401);
    }

    #[test]
    fn no_header_is_anonymous_and_a_bad_one_is_401() {
        let request = Request::get("/api/orders/A").build();
        assert_eq!(Caller::of(&request).unwrap(), Caller::Anonymous);
        let request = Request::get("/api/orders/A").header("authorization", "Basic eDp5").build();
        assert_eq!(Caller::of(&request).unwrap_err().status, 401);
        let request = Request::get("/api/orders/A").header("authorization", "Bearer oat_123").build();
        assert_eq!(Caller::of(&request).unwrap_err().status, 401);
        let token = crate::id::new_secret(ORDER_TOKEN_PREFIX);
        let request = Request::get("/api/orders/A").header("authorization", format!("Bearer {token}")).build();
        assert_eq!(Caller::of(&request).unwrap(), Caller::OrderHolder { token_digest: order_token_digest(&token) });
    }

    #[test]
    fn a_request_without_a_token_is_401() {
        let request = Request::get("/api/products/A").build();
        let error = require_admin(&request).unwrap_err();
        assert_eq!((error.status, error.code), (401, "unauthorized"));
    }
}
