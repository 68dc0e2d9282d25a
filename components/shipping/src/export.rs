//! The `shop:shipping/shipping` WIT export, over the same domain code as the
//! HTTP route; generated types are converted here and go no further.

wit_bindgen::generate!({
    world: "shop:shipping/service",
    path: ["../../wit/types", "../../wit/shipping"],
    // The shared records (money) are generated here too; nothing else in this
    // crate provides bindings for `shop:types`.
    with: { "shop:types/types@0.1.0": generate },
});

use exports::shop::shipping::shipping::{self as wit, Guest};
use shop::types::types::Money as WitMoney;

use crate::domain::{Item, Quote, RateTable, ShippingError, Speed, Zone};

struct ShippingExport;

export!(ShippingExport);

impl Guest for ShippingExport {
    fn quote(
        items: Vec<wit::ParcelItem>,
        country: String,
        speed: wit::Speed,
    ) -> Result<wit::ShippingQuote, wit::Error> {
        let country = shop_shared::normalize_country(&country).map_err(|error| {
            if error.code == "unknown_country" {
                wit::Error::UnknownCountry(error.message)
            } else {
                wit::Error::Invalid(error.message)
            }
        })?;
        let items: Vec<Item> = items
            .into_iter()
            .map(|item| Item {
                weight_grams: item.weight_grams,
                quantity: item.quantity,
            })
            .collect();
        let speed = match speed {
            wit::Speed::Standard => Speed::Standard,
            wit::Speed::Express => Speed::Express,
        };
        Ok(RateTable::load()?.quote(&items, &country, speed)?.into())
    }
}

impl From<Quote> for wit::ShippingQuote {
    fn from(quote: Quote) -> Self {
        Self {
            cost: WitMoney {
                amount: quote.cost.amount,
                currency: quote.cost.currency.to_string(),
            },
            zone: match quote.zone {
                Zone::Domestic => wit::Zone::Domestic,
                Zone::Eu => wit::Zone::Eu,
                Zone::World => wit::Zone::World,
            },
            speed: match quote.speed {
                Speed::Standard => wit::Speed::Standard,
                Speed::Express => wit::Speed::Express,
            },
            weight_grams: quote.weight_grams,
            estimated_days: wit::DeliveryEstimate {
                min_days: quote.estimated_days.min,
                max_days: quote.estimated_days.max,
            },
        }
    }
}

impl From<ShippingError> for wit::Error {
    fn from(error: ShippingError) -> Self {
        match error {
            ShippingError::TooHeavy { weight_grams, .. } => Self::TooHeavy(weight_grams),
            // The table is compiled in; a broken one fails every quote alike.
            other => Self::Invalid(other.to_string()),
        }
    }
}
