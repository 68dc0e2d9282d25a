//! The shape of a sku, the same for every service that names products.

pub const MAX_SKU_LEN: usize = 64;

/// `MUG-001`: 1–64 uppercase ASCII letters, digits and dashes, starting and
/// ending with a letter or digit.
pub fn is_valid_sku(sku: &str) -> bool {
    let alphanumeric = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit();
    !sku.is_empty()
        && sku.len() <= MAX_SKU_LEN
        && sku.chars().all(|c| alphanumeric(c) || c == '-')
        && sku.starts_with(alphanumeric)
        && sku.ends_with(alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_shop_skus() {
        for sku in ["MUG-001", "A", "CMP-STOVE-2", "42"] {
            assert!(is_valid_sku(sku), "{sku}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        let too_long = "A".repeat(MAX_SKU_LEN + 1);
        for sku in [
            "",
            "mug-001",
            "-A",
            "A-",
            "A B",
            "A_1",
            "É",
            too_long.as_str(),
        ] {
            assert!(!is_valid_sku(sku), "{sku}");
        }
    }
}
