//! The admin check: `Authorization: Bearer <token>` against the Spin variable
//! `admin_token`.

use spin_sdk::http::Request;

use crate::ApiError;

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
    let expected = match spin_sdk::variables::get(ADMIN_TOKEN_VARIABLE) {
        Ok(token) => token,
        Err(e) => {
            eprintln!("admin token unavailable: {e}");
            String::new()
        }
    };
    if expected.is_empty() || !constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        return Err(ApiError::unauthorized("the admin token is not valid"));
    }
    Ok(())
}

fn bearer_token(header: &str) -> Option<&str> {
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

    #[test]
    fn a_request_without_a_token_is_401() {
        let request = Request::get("/api/products/A").build();
        let error = require_admin(&request).unwrap_err();
        assert_eq!((error.status, error.code), (401, "unauthorized"));
    }
}
