//! EU VAT and its rules: a destination inside the EU pays that member state's
//! standard rate on goods and on shipping alike (distance sales to consumers
//! are taxed where they arrive, and shipping follows the goods it carries);
//! a destination outside the EU is a zero-rated export. No I/O.
//!
//! The arithmetic (per-amount rounding, half away from zero, in i128) is
//! shared with every other `shop:tax` implementation: see `shop_shared::tax`.

use shop_shared::is_eu_member;
use shop_shared::tax::{Rate, TaxRule};

/// The standard VAT rate of each of the 27 EU member states, in basis points,
/// as in force in 2026; sorted by ISO 3166-1 alpha-2 code (Greece is `GR`).
///
/// Source: European Commission, "VAT rates applied in the Member States of the
/// European Union" (taxation_customs, situation at 1 January 2026) and the
/// Commission's TEDB database, checked in January 2026. Recent changes:
/// - Finland 24 % → 25.5 % on 1 September 2024;
/// - Slovakia 20 % → 23 % on 1 January 2025;
/// - Estonia 22 % → 24 % on 1 July 2025;
/// - Romania 19 % → 21 % on 1 August 2025.
///
/// The 2026 changes announced so far (Ireland, Lithuania, the Netherlands)
/// touch only reduced rates.
pub const EU_STANDARD_RATES: [(&str, Rate); 27] = [
    ("AT", bp(2000)),
    ("BE", bp(2100)),
    ("BG", bp(2000)),
    ("CY", bp(1900)),
    ("CZ", bp(2100)),
    ("DE", bp(1900)),
    ("DK", bp(2500)),
    ("EE", bp(2400)),
    ("ES", bp(2100)),
    ("FI", bp(2550)),
    ("FR", bp(2000)),
    ("GR", bp(2400)),
    ("HR", bp(2500)),
    ("HU", bp(2700)),
    ("IE", bp(2300)),
    ("IT", bp(2200)),
    ("LT", bp(2100)),
    ("LU", bp(1700)),
    ("LV", bp(2100)),
    ("MT", bp(1800)),
    ("NL", bp(2100)),
    ("PL", bp(2300)),
    ("PT", bp(2300)),
    ("RO", bp(2100)),
    ("SE", bp(2500)),
    ("SI", bp(2200)),
    ("SK", bp(2300)),
];

const fn bp(basis_points: u32) -> Rate {
    match Rate::basis_points(basis_points) {
        Some(rate) => rate,
        None => panic!("a VAT rate above 100 %"),
    }
}

/// The rate and rule for goods shipped to `country` (an assigned, uppercase
/// ISO 3166-1 alpha-2 code).
pub fn vat_for(country: &str) -> (Rate, TaxRule) {
    if !is_eu_member(country) {
        return (Rate::ZERO, TaxRule::Export);
    }
    match EU_STANDARD_RATES.binary_search_by(|(code, _)| (*code).cmp(country)) {
        Ok(i) => (EU_STANDARD_RATES[i].1, TaxRule::EuStandard),
        // Unreachable while the table lists every member (a unit test says
        // so); charging nothing would be the wrong failure, so charge the
        // shop's home rate and say so in the log.
        Err(_) => {
            eprintln!("tax: no VAT rate for EU member {country}; using Germany's");
            (bp(1900), TaxRule::EuStandard)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_shared::Money;
    use shop_shared::address::EU_MEMBERS;
    use shop_shared::tax::TaxRequest;

    fn eur(amount: i64) -> Money {
        Money::new(amount, "EUR").unwrap()
    }

    #[test]
    fn the_table_lists_every_member_state_once_and_nothing_else() {
        let codes: Vec<&str> = EU_STANDARD_RATES.iter().map(|(code, _)| *code).collect();
        assert_eq!(codes, EU_MEMBERS.to_vec());
        // The EU minimum standard rate is 15 %; none is above Hungary's 27 %.
        assert!(EU_STANDARD_RATES.iter().all(|(_, r)| (1500..=2700).contains(&r.as_basis_points())));
    }

    #[test]
    fn recent_rate_changes_are_in() {
        for (country, basis_points) in [("FI", 2550), ("SK", 2300), ("EE", 2400), ("RO", 2100), ("DE", 1900), ("HU", 2700), ("LU", 1700)] {
            assert_eq!(vat_for(country), (bp(basis_points), TaxRule::EuStandard), "{country}");
        }
    }

    #[test]
    fn export_outside_the_eu_is_zero_rated() {
        for country in ["CH", "GB", "NO", "US", "JP", "IS", "AX"] {
            assert_eq!(vat_for(country), (Rate::ZERO, TaxRule::Export), "{country}");
        }
    }

    #[test]
    fn finnish_vat_on_goods_and_shipping_rounds_each_half_cent_up() {
        let (rate, rule) = vat_for("FI");
        // 25.5 % of 19.99 € = 5.097 45 € → 5.10 €; of 4.90 € = 1.2495 € → 1.25 €.
        let quote = TaxRequest::new("FI".into(), eur(1999), eur(490)).unwrap().quote(rate, rule).unwrap();
        assert_eq!((quote.goods_tax.amount, quote.shipping_tax.amount, quote.total_tax.amount), (510, 125, 635));
        // 25.5 % of 0.02 € = 0.51 cent → 1 cent; of 0.01 € = 0.255 cent → 0.
        let tiny = TaxRequest::new("FI".into(), eur(2), eur(1)).unwrap().quote(rate, rule).unwrap();
        assert_eq!((tiny.goods_tax.amount, tiny.shipping_tax.amount), (1, 0));
    }

    #[test]
    fn german_vat_on_a_typical_order() {
        let (rate, rule) = vat_for("DE");
        let quote = TaxRequest::new("DE".into(), eur(10_000), eur(499)).unwrap().quote(rate, rule).unwrap();
        // 19 % of 4.99 € = 0.9481 € → 0.95 €.
        assert_eq!((quote.goods_tax.amount, quote.shipping_tax.amount, quote.total_tax.amount), (1900, 95, 1995));
    }
}
