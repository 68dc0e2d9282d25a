//! The `shop:tax/tax` WIT export — the same interface the `tax` component
//! exports — over the same domain code as the HTTP route; generated types are
//! converted here and go no further.

wit_bindgen::generate!({
    world: "shop:tax/service",
    path: ["../../wit/types", "../../wit/tax"],
    // The shared records (money) are generated here too; nothing else in this
    // crate provides bindings for `shop:types`.
    with: { "shop:types/types@0.1.0": generate },
});

use exports::shop::tax::tax::{self as wit, Guest};
use shop::types::types::Money as WitMoney;
use shop_shared::tax::{TaxQuote, TaxRequest, TaxRule};
use shop_shared::{ApiError, Money};

use crate::config;

struct FlatTaxExport;

export!(FlatTaxExport);

impl Guest for FlatTaxExport {
    fn quote(country: String, goods: WitMoney, shipping: WitMoney) -> Result<wit::TaxQuote, wit::Error> {
        let request = request(&country, goods, shipping).map_err(into_wit_error)?;
        let rate = config::rate().map_err(|e| wit::Error::Unavailable(e.0))?;
        request.quote(rate, TaxRule::Flat).map(into_wit_quote).map_err(into_wit_error)
    }
}

fn request(country: &str, goods: WitMoney, shipping: WitMoney) -> Result<TaxRequest, ApiError> {
    let country = shop_shared::normalize_country(country)?;
    let money = |field: &'static str, money: WitMoney| {
        Money::new(money.amount, &money.currency)
            .map_err(|e| ApiError::unprocessable("invalid_amount", format!("{field}: {e}")))
    };
    TaxRequest::new(country, money("goods", goods)?, money("shipping", shipping)?)
}

fn into_wit_error(error: ApiError) -> wit::Error {
    match error.code {
        "unknown_country" => wit::Error::UnknownCountry(error.message),
        "currency_mismatch" => wit::Error::CurrencyMismatch(error.message),
        _ if error.status >= 500 => wit::Error::Unavailable(error.message),
        _ => wit::Error::Invalid(error.message),
    }
}

fn into_wit_quote(quote: TaxQuote) -> wit::TaxQuote {
    let money = |money: Money| WitMoney {
        amount: money.amount,
        currency: money.currency.to_string(),
    };
    wit::TaxQuote {
        country: quote.country,
        rate_basis_points: quote.rate_basis_points.as_basis_points(),
        rule: match quote.rule {
            TaxRule::EuStandard => wit::Rule::EuStandard,
            TaxRule::Export => wit::Rule::Export,
            TaxRule::Flat => wit::Rule::Flat,
        },
        goods_tax: money(quote.goods_tax),
        shipping_tax: money(quote.shipping_tax),
        total_tax: money(quote.total_tax),
        currency: quote.currency.to_string(),
    }
}
