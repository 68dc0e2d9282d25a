//! What every implementation of `shop:tax/tax` does the same way: reading a
//! quote request, applying a rate to money, and the answer's shape. Which rate
//! applies to which destination is each implementation's own rule.
//!
//! Request: `{"destination": {address} | {"country"}, "goods": money,
//! "shipping": money}`. Answer: `{"country", "rate_basis_points", "rule",
//! "goods_tax", "shipping_tax", "total_tax", "currency"}`.
//!
//! Rounding: each amount's tax is rounded to whole minor units on its own,
//! half away from zero (12.5 cents → 13, −12.5 → −13), computed exactly in
//! i128 integer arithmetic; the total is the sum of the rounded parts, so it
//! always equals what the invoice lines add up to.

use serde::Serialize;

use crate::{ApiError, Currency, JsonBody, Money, destination_country};

/// A rate of 1 % is 100 basis points.
pub const BASIS_POINTS_PER_WHOLE: u32 = 10_000;

/// A tax rate between 0 and 100 %, in basis points (2550 = 25.5 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Rate(u32);

impl Rate {
    pub const ZERO: Rate = Rate(0);

    /// `None` above 100 %.
    pub const fn basis_points(basis_points: u32) -> Option<Rate> {
        if basis_points <= BASIS_POINTS_PER_WHOLE {
            Some(Rate(basis_points))
        } else {
            None
        }
    }

    pub const fn as_basis_points(self) -> u32 {
        self.0
    }

    /// The tax on `amount` minor units, rounded half away from zero. Exact:
    /// the product is formed in i128, and at a rate of at most 100 % the
    /// result is no larger in magnitude than `amount`, so it fits in i64.
    pub fn tax_on(self, amount: i64) -> i64 {
        let whole = i128::from(BASIS_POINTS_PER_WHOLE);
        let product = i128::from(amount) * i128::from(self.0);
        let (quotient, remainder) = (product / whole, product % whole);
        let rounded = if remainder.abs() * 2 >= whole {
            quotient + product.signum()
        } else {
            quotient
        };
        // |rounded| <= |amount| because the rate is at most 100 %.
        rounded as i64
    }
}

/// Why a rate applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxRule {
    /// The destination is an EU member state: its standard VAT rate.
    EuStandard,
    /// Outside the EU: a zero-rated export.
    Export,
    /// One rate for every destination.
    Flat,
}

/// A checked quote request: a known country, and goods and shipping in one
/// currency, neither negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxRequest {
    pub country: String,
    pub goods: Money,
    pub shipping: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaxQuote {
    pub country: String,
    pub rate_basis_points: Rate,
    pub rule: TaxRule,
    pub goods_tax: Money,
    pub shipping_tax: Money,
    pub total_tax: Money,
    pub currency: Currency,
}

impl TaxRequest {
    /// From a JSON request body; see the module documentation for its shape.
    pub fn from_body(body: &JsonBody) -> Result<TaxRequest, ApiError> {
        let destination = body.value("destination").ok_or_else(|| {
            crate::request::invalid_field("destination", "`destination` is required")
        })?;
        let country = destination_country(destination)?;
        TaxRequest::new(country, body.required("goods")?, body.required("shipping")?)
    }

    /// `country` must already be checked. Refuses negative amounts (422
    /// `invalid_amount`) and two currencies (422 `currency_mismatch`).
    pub fn new(country: String, goods: Money, shipping: Money) -> Result<TaxRequest, ApiError> {
        for (field, money) in [("goods", &goods), ("shipping", &shipping)] {
            if money.amount < 0 {
                return Err(ApiError::unprocessable(
                    "invalid_amount",
                    format!("`{field}.amount` must not be negative, got {}", money.amount),
                )
                .with("field", field));
            }
        }
        if goods.currency != shipping.currency {
            return Err(ApiError::unprocessable(
                "currency_mismatch",
                format!(
                    "goods are in {} but shipping is in {}; both must be in one currency",
                    goods.currency, shipping.currency
                ),
            ));
        }
        Ok(TaxRequest {
            country,
            goods,
            shipping,
        })
    }

    /// The tax at `rate` under `rule`, each amount rounded on its own.
    pub fn quote(self, rate: Rate, rule: TaxRule) -> Result<TaxQuote, ApiError> {
        let currency = self.goods.currency.clone();
        let money = |amount| Money {
            amount,
            currency: currency.clone(),
        };
        let goods_tax = rate.tax_on(self.goods.amount);
        let shipping_tax = rate.tax_on(self.shipping.amount);
        let total_tax = goods_tax.checked_add(shipping_tax).ok_or_else(|| {
            ApiError::unprocessable("amount_too_large", "the total tax is too large to represent")
        })?;
        Ok(TaxQuote {
            country: self.country,
            rate_basis_points: rate,
            rule,
            goods_tax: money(goods_tax),
            shipping_tax: money(shipping_tax),
            total_tax: money(total_tax),
            currency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rate(basis_points: u32) -> Rate {
        Rate::basis_points(basis_points).unwrap()
    }

    fn eur(amount: i64) -> Money {
        Money::new(amount, "EUR").unwrap()
    }

    #[test]
    fn half_a_minor_unit_rounds_away_from_zero() {
        // 19 % of 50 cents = 9.5 cents.
        assert_eq!(rate(1900).tax_on(50), 10);
        assert_eq!(rate(1900).tax_on(-50), -10);
        // Just below and above the half.
        assert_eq!(rate(1900).tax_on(49), 9); // 9.31
        assert_eq!(rate(1000).tax_on(45), 5); // 4.5
        assert_eq!(rate(1000).tax_on(44), 4); // 4.4
        assert_eq!(rate(1000).tax_on(-44), -4);
        assert_eq!(rate(2000).tax_on(1), 0); // 0.2
        assert_eq!(rate(5000).tax_on(1), 1); // 0.5
    }

    #[test]
    fn a_fractional_percent_like_finlands_is_exact() {
        // 25.5 % of 10.00 € = 2.55 €; of 0.10 € = 2.55 cents → 3.
        assert_eq!(rate(2550).tax_on(1000), 255);
        assert_eq!(rate(2550).tax_on(10), 3);
        assert_eq!(rate(2550).tax_on(2), 1); // 0.51
        assert_eq!(rate(2550).tax_on(1999), 510); // 509.745
    }

    #[test]
    fn zero_rates_and_zero_amounts_give_zero() {
        assert_eq!(Rate::ZERO.tax_on(123_456), 0);
        assert_eq!(rate(2550).tax_on(0), 0);
    }

    #[test]
    fn large_amounts_do_not_overflow() {
        assert_eq!(rate(10_000).tax_on(i64::MAX), i64::MAX);
        assert_eq!(rate(10_000).tax_on(i64::MIN), i64::MIN);
        assert_eq!(rate(5000).tax_on(i64::MAX), i64::MAX / 2 + 1); // x.5 rounds up
        assert_eq!(rate(2550).tax_on(1_000_000_000_000_000), 255_000_000_000_000);
        assert_eq!(Rate::basis_points(10_001), None);
    }

    #[test]
    fn each_amount_is_rounded_on_its_own_and_the_total_adds_up() {
        let request = TaxRequest::new("DE".into(), eur(50), eur(50)).unwrap();
        let quote = request.quote(rate(1900), TaxRule::EuStandard).unwrap();
        // 9.5 + 9.5: per amount 10 + 10 = 20, where rounding the sum would give 19.
        assert_eq!((quote.goods_tax.amount, quote.shipping_tax.amount, quote.total_tax.amount), (10, 10, 20));
        assert_eq!(
            serde_json::to_value(&quote).unwrap(),
            json!({
                "country": "DE", "rate_basis_points": 1900, "rule": "eu_standard",
                "goods_tax": {"amount": 10, "currency": "EUR"},
                "shipping_tax": {"amount": 10, "currency": "EUR"},
                "total_tax": {"amount": 20, "currency": "EUR"},
                "currency": "EUR"
            })
        );
    }

    #[test]
    fn a_total_too_large_to_represent_is_refused() {
        let request = TaxRequest::new("DE".into(), eur(i64::MAX), eur(i64::MAX)).unwrap();
        let error = request.quote(rate(10_000), TaxRule::Flat).unwrap_err();
        assert_eq!((error.status, error.code), (422, "amount_too_large"));
    }

    #[test]
    fn goods_and_shipping_in_two_currencies_are_refused() {
        let error = TaxRequest::new("DE".into(), eur(100), Money::new(100, "USD").unwrap()).unwrap_err();
        assert_eq!((error.status, error.code), (422, "currency_mismatch"));
    }

    #[test]
    fn negative_amounts_are_refused() {
        let error = TaxRequest::new("DE".into(), eur(100), eur(-1)).unwrap_err();
        assert_eq!((error.code, error.extra["field"].as_str()), ("invalid_amount", Some("shipping")));
    }

    #[test]
    fn the_request_body_names_what_is_wrong() {
        let parse = |body: serde_json::Value| {
            TaxRequest::from_body(&JsonBody::parse(body.to_string().as_bytes()).unwrap())
        };
        let ok = parse(json!({"destination": {"country": "fi"}, "goods": eur(1000), "shipping": eur(0)})).unwrap();
        assert_eq!(ok.country, "FI");
        let error = parse(json!({"goods": eur(1), "shipping": eur(1)})).unwrap_err();
        assert_eq!((error.code, error.extra["field"].as_str()), ("invalid_request", Some("destination")));
        let error = parse(json!({"destination": {"country": "DE"}, "shipping": eur(1)})).unwrap_err();
        assert_eq!(error.extra["field"].as_str(), Some("goods"));
        let error = parse(json!({"destination": {"country": "QQ"}, "goods": eur(1), "shipping": eur(1)})).unwrap_err();
        assert_eq!(error.code, "unknown_country");
    }
}
