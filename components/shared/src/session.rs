//! Shoppers' sessions: the key-value store `sessions`, written by the
//! customers service when a shopper signs in or out, read by every service
//! that serves a shopper's data (customers, orders, notifications,
//! fulfillment, checkout) to learn who is asking.
//!
//! A session token is `sst_` and 256 random bits, handed to the shopper
//! once. The store keeps only its SHA-256 (`session.<digest>`), so a copy of
//! the store signs nobody in; the digest of a high-entropy secret needs no
//! slow hash. A session ends when it expires (`expires_at`, fixed at sign-in)
//! or when it is revoked (its entry deleted): the next request with it is
//! 401 on every service at once, as they all read the same entry.

use serde::{Deserialize, Serialize};
use spin_sdk::key_value::Store;

use crate::{ApiError, now_millis, sha256_hex};

/// The store label; every component that checks sessions lists it in its
/// manifest `key_value_stores`.
pub const STORE: &str = "sessions";
/// What every session token starts with.
pub const TOKEN_PREFIX: &str = "sst";

/// Who a session belongs to, and until when it is good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub customer_id: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
}

impl Session {
    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }
}

/// Whether `token` has the shape of a session token; anything else is not
/// looked up.
pub fn is_session_token(token: &str) -> bool {
    token
        .strip_prefix(TOKEN_PREFIX)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

fn key(token: &str) -> String {
    format!("session.{}", sha256_hex(token.as_bytes()))
}

fn open() -> Result<Store, ApiError> {
    Store::open(STORE).map_err(|e| unavailable(format!("opening the session store: {e}")))
}

fn unavailable(message: String) -> ApiError {
    eprintln!("sessions: {message}");
    ApiError::unavailable("sessions_unavailable", "sessions cannot be checked right now; try again")
}

/// Starts a session for `customer_id` lasting `ttl_millis`; returns its
/// token, which exists nowhere else afterwards.
pub fn start(customer_id: &str, ttl_millis: i64) -> Result<(String, Session), ApiError> {
    let token = crate::id::new_secret(TOKEN_PREFIX);
    let session = Session { customer_id: customer_id.to_owned(), expires_at: now_millis() + ttl_millis };
    let value = serde_json::to_vec(&session).map_err(|e| ApiError::internal(e.to_string()))?;
    open()?.set(&key(&token), &value).map_err(|e| unavailable(format!("saving a session: {e}")))?;
    Ok((token, session))
}

/// The live session `token` names, or `None` when it is unknown, revoked or
/// expired (an expired entry is removed on the way).
pub fn find(token: &str) -> Result<Option<Session>, ApiError> {
    if !is_session_token(token) {
        return Ok(None);
    }
    let store = open()?;
    let key = key(token);
    let Some(bytes) = store.get(&key).map_err(|e| unavailable(format!("reading a session: {e}")))? else {
        return Ok(None);
    };
    let Ok(session) = serde_json::from_slice::<Session>(&bytes) else {
        return Ok(None);
    };
    if session.is_expired(now_millis()) {
        if let Err(e) = store.delete(&key) {
            eprintln!("sessions: removing an expired session: {e}");
        }
        return Ok(None);
    }
    Ok(Some(session))
}

/// Ends the session `token` names; ending one that is gone is not an error.
pub fn revoke(token: &str) -> Result<(), ApiError> {
    if !is_session_token(token) {
        return Ok(());
    }
    open()?.delete(&key(token)).map_err(|e| unavailable(format!("revoking a session: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tokens_of_our_shape_are_looked_up() {
        assert!(is_session_token(&crate::id::new_secret(TOKEN_PREFIX)));
        for bad in ["", "sst_", "sst_abc", "oat_0000000000000000000000000000000000000000000000000000000000000000",
            "sst_000000000000000000000000000000000000000000000000000000000000000G"] {
            assert!(!is_session_token(bad), "{bad}");
        }
    }

    #[test]
    fn the_store_key_is_a_digest_not_the_token() {
        let token = crate::id::new_secret(TOKEN_PREFIX);
        let key = key(&token);
        assert!(!key.contains(&token[4..]));
        assert_eq!(key.len(), "session.".len() + 64);
    }

    #[test]
    fn a_session_expires_at_its_time() {
        let session = Session { customer_id: "cus_1".into(), expires_at: 1000 };
        assert!(!session.is_expired(999));
        assert!(session.is_expired(1000));
    }
}
