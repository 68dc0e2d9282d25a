//! Passwords and sign-in attempts, as plain rules (no I/O).
//!
//! A password is kept only as an argon2id PHC string. The parameters are
//! OWASP's first recommendation for argon2id — 19 MiB of memory, 2 passes,
//! 1 lane: memory-hard enough that a stolen database is expensive to guess
//! through, and cheap enough for a sign-in (docs/architecture.md gives the
//! measured cost). One lane because a component instance has one thread.
//! The parameters are in each stored string, so raising them later keeps
//! old hashes verifiable.
//!
//! Sign-in attempts are counted before the password is checked, per account
//! (the email, whether or not anyone has it) and per client address, in a
//! fixed window; past the limit an attempt is refused without being
//! checked, so parallel guesses cannot slip past the count.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::CustomerError;

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Bounds what a sign-up or sign-in body may make the service hash.
pub const MAX_PASSWORD_CHARS: usize = 1024;

const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// A hash of a random password nobody knows, made with the parameters
/// above: verified against when the email has no account, so that an
/// unknown email costs the same time as a wrong password.
const NOBODYS_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$LLfW/fiZdkivUhXkhqe9uw$ubRybltnc7GO5ZfrWXEP3+20cAYOCHpFOtiJYO58x8g";

/// The window sign-in attempts are counted in.
pub const WINDOW_MILLIS: i64 = 15 * 60 * 1000;
/// Attempts on one account per window: a person mistyping gets five tries.
pub const ATTEMPTS_PER_ACCOUNT: i64 = 5;
/// Attempts from one client address per window, across accounts: slows a
/// guesser that spreads over many emails.
pub const ATTEMPTS_PER_CLIENT: i64 = 20;

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The password's length rules; nothing about its content, as length is
/// what makes a password hard to guess (NIST SP 800-63B).
pub fn check_password(password: &str) -> Result<(), CustomerError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(CustomerError::InvalidPassword(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(CustomerError::InvalidPassword(format!(
            "password must be at most {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// The PHC string to store for `password`, salted with `salt` (16 random
/// bytes).
pub fn hash_password(password: &str, salt: &[u8; 16]) -> Result<String, CustomerError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| CustomerError::Unavailable(format!("salt: {e}")))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| CustomerError::Unavailable(format!("hashing a password: {e}")))
}

/// Whether `password` is the one `stored` was made from; `None` (no such
/// account) takes as long and is never a match.
pub fn password_matches(password: &str, stored: Option<&str>) -> bool {
    let (phc, real) = match stored {
        Some(phc) => (phc, true),
        None => (NOBODYS_HASH, false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        eprintln!("customers: a stored password hash does not parse");
        return false;
    };
    // The parameters come from the stored string; our own instance only
    // provides the algorithm implementation.
    let verified = argon2().verify_password(password.as_bytes(), &parsed).is_ok();
    verified && real
}

/// The keys a sign-in attempt is counted under.
pub fn attempt_keys(email_key: &str, client_address: Option<&str>) -> (String, Option<String>) {
    (format!("account:{email_key}"), client_address.map(|ip| format!("client:{ip}")))
}

/// The IP of Spin's `spin-client-addr` header (`ip:port`, `[v6]:port`),
/// without the port, which changes with every connection.
pub fn client_ip(client_addr: &str) -> Option<&str> {
    let addr = client_addr.trim();
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split_once(']').map(|(ip, _)| ip).filter(|ip| !ip.is_empty());
    }
    match addr.rsplit_once(':') {
        Some((ip, port)) if !ip.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => Some(ip),
        _ if !addr.is_empty() => Some(addr),
        _ => None,
    }
}

/// Seconds until an attempt counted `attempts`-th in a window that started
/// at `window_started_at` may be made, when that is over `limit`.
pub fn retry_after_seconds(attempts: i64, limit: i64, window_started_at: i64, now: i64) -> Option<i64> {
    (attempts > limit).then(|| ((window_started_at + WINDOW_MILLIS - now).max(0) + 999) / 1000).map(|s| s.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_its_hash_only() {
        let hash = hash_password("correct horse battery", &[7; 16]).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(password_matches("correct horse battery", Some(&hash)));
        assert!(!password_matches("correct horse batterz", Some(&hash)));
        assert!(!password_matches("", Some(&hash)));
        let other_salt = hash_password("correct horse battery", &[8; 16]).unwrap();
        assert_ne!(hash, other_salt, "the salt makes equal passwords differ");
    }

    #[test]
    fn an_unknown_account_never_matches() {
        assert!(!password_matches("anything at all", None));
        assert!(PasswordHash::new(NOBODYS_HASH).is_ok(), "the stand-in hash parses");
        let parsed = PasswordHash::new(NOBODYS_HASH).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(parsed.params.get_decimal("m"), Some(MEMORY_KIB));
        assert_eq!(parsed.params.get_decimal("t"), Some(PASSES));
    }

    #[test]
    fn a_broken_stored_hash_is_no_match() {
        assert!(!password_matches("whatever1234", Some("not a phc string")));
    }

    #[test]
    fn passwords_are_bounded_by_length() {
        assert!(check_password("short").is_err());
        assert!(check_password(&"é".repeat(9)).is_err());
        assert!(check_password(&"é".repeat(10)).is_ok());
        assert!(check_password(&"x".repeat(1024)).is_ok());
        assert!(check_password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn client_addresses_lose_their_port() {
        assert_eq!(client_ip("127.0.0.1:5123"), Some("127.0.0.1"));
        assert_eq!(client_ip("[::1]:5123"), Some("::1"));
        assert_eq!(client_ip("10.0.0.1"), Some("10.0.0.1"));
        assert_eq!(client_ip(""), None);
    }

    #[test]
    fn past_the_limit_the_wait_is_the_rest_of_the_window() {
        assert_eq!(retry_after_seconds(5, 5, 0, 1000), None);
        assert_eq!(retry_after_seconds(6, 5, 0, 1000), Some(899));
        assert_eq!(retry_after_seconds(6, 5, 0, WINDOW_MILLIS), Some(1));
    }
}
