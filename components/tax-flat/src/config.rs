//! The component's configuration: the only code that reads Spin variables.

use shop_shared::ApiError;
use shop_shared::tax::Rate;

use crate::domain::{RATE_VARIABLE, Unconfigured, parse_rate};

/// The configured flat rate, or 503 `tax_unavailable` saying what is wrong.
pub fn rate() -> Result<Rate, Unconfigured> {
    let value = spin_sdk::variables::get(RATE_VARIABLE).map_err(|e| {
        Unconfigured(format!(
            "the flat tax rate is not configured: the variable `{RATE_VARIABLE}` cannot be read ({e})"
        ))
    })?;
    parse_rate(&value)
}

impl From<Unconfigured> for ApiError {
    fn from(error: Unconfigured) -> Self {
        eprintln!("tax-flat: {error}");
        ApiError::unavailable("tax_unavailable", error.0)
    }
}
