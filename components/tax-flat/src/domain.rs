//! The flat tax rule: one rate, configured in spin.toml, for every
//! destination (the country is still checked). No I/O: the variable's text is
//! handed in. The arithmetic is shared with every other `shop:tax`
//! implementation: see `shop_shared::tax`.

use shop_shared::tax::{BASIS_POINTS_PER_WHOLE, Rate};

/// The component variable holding the rate, in basis points (2000 = 20 %).
pub const RATE_VARIABLE: &str = "flat_rate_basis_points";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconfigured(pub String);

impl std::fmt::Display for Unconfigured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The rate the variable's value names: a whole number of basis points from 0
/// to 10 000, surrounding spaces allowed; anything else is a configuration
/// mistake, reported rather than guessed around.
pub fn parse_rate(value: &str) -> Result<Rate, Unconfigured> {
    let text = value.trim();
    let basis_points = (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse::<u32>().ok())
        .flatten()
        .and_then(Rate::basis_points);
    basis_points.ok_or_else(|| {
        Unconfigured(format!(
            "the flat tax rate is misconfigured: the variable `{RATE_VARIABLE}` is {value:?}, \
             expected a whole number of basis points from 0 to {BASIS_POINTS_PER_WHOLE} (2000 = 20 %)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_shared::Money;
    use shop_shared::tax::{TaxRequest, TaxRule};

    #[test]
    fn a_rate_is_whole_basis_points_up_to_one_hundred_percent() {
        assert_eq!(parse_rate("2000").unwrap().as_basis_points(), 2000);
        assert_eq!(parse_rate(" 0 ").unwrap(), Rate::ZERO);
        assert_eq!(parse_rate("10000").unwrap().as_basis_points(), 10_000);
        for bad in ["", " ", "-1", "+5", "20%", "20.5", "10001", "99999999999", "abc"] {
            let error = parse_rate(bad).unwrap_err();
            assert!(error.0.contains(RATE_VARIABLE), "{bad:?}: {error}");
        }
    }

    #[test]
    fn the_same_rate_applies_everywhere() {
        let rate = parse_rate("2000").unwrap();
        for country in ["DE", "FI", "US", "CH"] {
            let goods = Money::new(1999, "EUR").unwrap();
            let shipping = Money::new(499, "EUR").unwrap();
            let quote = TaxRequest::new(country.into(), goods, shipping).unwrap().quote(rate, TaxRule::Flat).unwrap();
            // 20 % of 19.99 € = 3.998 € → 4.00 €; of 4.99 € = 0.998 € → 1.00 €.
            assert_eq!((quote.goods_tax.amount, quote.shipping_tax.amount, quote.total_tax.amount), (400, 100, 500), "{country}");
            assert_eq!(quote.rule, TaxRule::Flat);
        }
    }
}
