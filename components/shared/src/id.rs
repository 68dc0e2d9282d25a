//! Identifiers for new records: a short type prefix and 128 random bits
//! (`ord_3f9c…`), so ids are unguessable, never collide across instances,
//! and say what they name in logs.

/// Longest id a service accepts from a client or a path.
pub const MAX_ID_LEN: usize = 64;

/// The one rule for ids that arrive in paths and bodies (cart ids,
/// reservation, order and payment ids): 1–64 of `A-Z a-z 0-9 _ -`, so they
/// are safe in a URL path and in logs.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A new id such as `ord_1b4e28ba2fa1411d9a7c3c5d1f0b6e2a`.
pub fn new_id(prefix: &str) -> String {
    prefixed_hex(prefix, &random_bytes::<16>())
}

/// A new bearer secret such as `sst_<64 hex digits>`: 256 random bits, so
/// it can be stored as a plain SHA-256 (no slow hash needed to resist
/// guessing), with a prefix that tells which kind of token it is.
pub fn new_secret(prefix: &str) -> String {
    prefixed_hex(prefix, &random_bytes::<32>())
}

/// Random bytes for salts and the like.
pub fn random<const N: usize>() -> [u8; N] {
    random_bytes::<N>()
}

fn prefixed_hex(prefix: &str, bytes: &[u8]) -> String {
    let mut id = String::with_capacity(prefix.len() + 1 + 2 * bytes.len());
    id.push_str(prefix);
    id.push('_');
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

#[cfg(target_arch = "wasm32")]
fn random_bytes<const N: usize>() -> [u8; N] {
    let v = wasi::random::random::get_random_bytes(N as u64);
    let mut out = [0u8; N];
    out.copy_from_slice(&v[..N]);
    out
}

/// Natively (unit tests only) the OS seeds std's hasher; good enough for
/// distinct ids in a test.
#[cfg(not(target_arch = "wasm32"))]
fn random_bytes<const N: usize>() -> [u8; N] {
    use std::hash::{BuildHasher, Hasher};
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
        chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::new_id;

    #[test]
    fn valid_ids_are_url_safe_and_bounded() {
        assert!(super::is_valid_id("res_1b4e-A"));
        assert!(super::is_valid_id(&"a".repeat(64)));
        assert!(!super::is_valid_id(&"a".repeat(65)));
        assert!(!super::is_valid_id(""));
        assert!(!super::is_valid_id("a b"));
        assert!(!super::is_valid_id("a/b"));
        assert!(new_id("ord").len() <= super::MAX_ID_LEN);
    }

    #[test]
    fn ids_have_prefix_and_differ() {
        let a = new_id("ord");
        let b = new_id("ord");
        assert!(a.starts_with("ord_") && a.len() == 36, "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn secrets_carry_256_bits() {
        let token = super::new_secret("sst");
        assert!(token.starts_with("sst_") && token.len() == 4 + 64, "{token}");
        assert_ne!(token, super::new_secret("sst"));
    }
}
