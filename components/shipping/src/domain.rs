//! Shipping rates and their rules: the rate table from `rates.json` (zone ×
//! weight bracket × speed), the zone of a destination, the bracket of a
//! shipment's total weight, and the quote. No I/O.
//!
//! The shop ships from the table's `origin` (Germany): that country is the
//! `domestic` zone, the other EU member states are `eu`, and every other
//! assigned ISO 3166-1 country is `world`. A bracket is named by its upper
//! limit, inclusive: 1000 g ships in the "≤ 1 kg" bracket, 1001 g in the next.

use serde::{Deserialize, Serialize};
use shop_shared::{Currency, Money, is_eu_member};

/// The rate table, from the repository's data file.
pub const RATES_JSON: &str = include_str!("../rates.json");

/// A cart holds at most 100 lines; so may a shipment.
pub const MAX_ITEMS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    Domestic,
    Eu,
    World,
}

impl Zone {
    pub const ALL: [Zone; 3] = [Zone::Domestic, Zone::Eu, Zone::World];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speed {
    Standard,
    Express,
}

impl Speed {
    pub const ALL: [Speed; 2] = [Speed::Standard, Speed::Express];

    /// `"standard"` or `"express"`, exactly.
    pub fn parse(text: &str) -> Result<Speed, ShippingError> {
        match text {
            "standard" => Ok(Speed::Standard),
            "express" => Ok(Speed::Express),
            other => Err(ShippingError::InvalidSpeed(other.to_owned())),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct DeliveryDays {
    pub min_days: u32,
    pub max_days: u32,
}

/// One zone and speed: a cost per weight bracket, and how long it takes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ZoneRates {
    pub zone: Zone,
    pub speed: Speed,
    /// Minor units of the table's currency, one per bracket, in bracket order.
    pub costs: Vec<i64>,
    pub days: DeliveryDays,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RateTable {
    /// ISO 3166-1 alpha-2 of the country the shop ships from.
    pub origin: String,
    pub currency: Currency,
    /// Each bracket's upper limit in grams, inclusive, ascending; the last is
    /// the heaviest shipment accepted.
    pub brackets_max_grams: Vec<u32>,
    pub rates: Vec<ZoneRates>,
}

/// Units of one product in a shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    pub weight_grams: u32,
    pub quantity: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EstimatedDays {
    pub min: u32,
    pub max: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    pub cost: Money,
    pub zone: Zone,
    pub speed: Speed,
    /// The whole shipment's weight.
    pub weight_grams: u64,
    pub estimated_days: EstimatedDays,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShippingError {
    NoItems,
    TooManyItems(usize),
    /// Item `index` (from 0) has a bad `field`.
    InvalidItem {
        index: usize,
        field: &'static str,
        message: String,
    },
    InvalidSpeed(String),
    TooHeavy {
        weight_grams: u64,
        max_grams: u32,
    },
    /// The rate table is broken; nothing can be quoted.
    Unavailable(String),
}

impl std::fmt::Display for ShippingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoItems => f.write_str("a shipment needs at least one item"),
            Self::TooManyItems(count) => {
                write!(f, "a shipment has at most {MAX_ITEMS} items, got {count}")
            }
            Self::InvalidItem { index, message, .. } => write!(f, "item {index}: {message}"),
            Self::InvalidSpeed(speed) => write!(
                f,
                "speed {speed:?} is not offered; choose \"standard\" or \"express\""
            ),
            Self::TooHeavy {
                weight_grams,
                max_grams,
            } => write!(
                f,
                "the shipment weighs {weight_grams} g; at most {max_grams} g can be shipped"
            ),
            Self::Unavailable(message) => f.write_str(message),
        }
    }
}

impl RateTable {
    /// The table from `rates.json`, checked.
    pub fn load() -> Result<RateTable, ShippingError> {
        let table: RateTable = serde_json::from_str(RATES_JSON).map_err(|e| {
            ShippingError::Unavailable(format!("the shipping rate table cannot be read: {e}"))
        })?;
        table
            .check()
            .map_err(|e| ShippingError::Unavailable(format!("the shipping rate table is broken: {e}")))?;
        Ok(table)
    }

    /// Every zone × speed exactly once, a cost for every bracket, brackets
    /// ascending, costs never falling as weight rises, express never cheaper
    /// than standard, and sensible delivery days.
    pub fn check(&self) -> Result<(), String> {
        if !shop_shared::address::is_assigned_country(&self.origin) {
            return Err(format!("origin {:?} is not a country code", self.origin));
        }
        let brackets = &self.brackets_max_grams;
        if brackets.is_empty() || brackets[0] == 0 || !brackets.windows(2).all(|w| w[0] < w[1]) {
            return Err("brackets must be positive and strictly ascending".into());
        }
        if self.rates.len() != Zone::ALL.len() * Speed::ALL.len() {
            return Err(format!("expected {} zone × speed rows, found {}", Zone::ALL.len() * Speed::ALL.len(), self.rates.len()));
        }
        for zone in Zone::ALL {
            for speed in Speed::ALL {
                let rows = self.rates.iter().filter(|r| r.zone == zone && r.speed == speed).count();
                if rows != 1 {
                    return Err(format!("{zone:?} {speed:?} has {rows} rows, expected 1"));
                }
                let row = self.rates_for(zone, speed);
                if row.costs.len() != brackets.len() {
                    return Err(format!("{zone:?} {speed:?} has {} costs for {} brackets", row.costs.len(), brackets.len()));
                }
                if row.costs.iter().any(|&c| c <= 0) || !row.costs.windows(2).all(|w| w[0] <= w[1]) {
                    return Err(format!("{zone:?} {speed:?}: costs must be positive and never fall with weight"));
                }
                if row.days.min_days == 0 || row.days.min_days > row.days.max_days {
                    return Err(format!("{zone:?} {speed:?}: delivery days must satisfy 1 <= min <= max"));
                }
            }
            let (standard, express) = (self.rates_for(zone, Speed::Standard), self.rates_for(zone, Speed::Express));
            if standard.costs.iter().zip(&express.costs).any(|(s, e)| e < s)
                || express.days.max_days > standard.days.max_days
            {
                return Err(format!("{zone:?}: express must cost at least and take at most as long as standard"));
            }
        }
        Ok(())
    }

    /// The row for a zone and speed. A checked table has each exactly once; an
    /// unchecked one falls back to its first row rather than panicking.
    fn rates_for(&self, zone: Zone, speed: Speed) -> &ZoneRates {
        self.rates
            .iter()
            .find(|r| r.zone == zone && r.speed == speed)
            .unwrap_or(&self.rates[0])
    }

    /// The zone of an assigned, uppercase ISO 3166-1 alpha-2 country.
    pub fn zone_of(&self, country: &str) -> Zone {
        if country == self.origin {
            Zone::Domestic
        } else if is_eu_member(country) {
            Zone::Eu
        } else {
            Zone::World
        }
    }

    /// The heaviest shipment accepted.
    pub fn max_grams(&self) -> u32 {
        self.brackets_max_grams.last().copied().unwrap_or(0)
    }

    /// The index of the lightest bracket that holds `weight_grams`.
    pub fn bracket_of(&self, weight_grams: u64) -> Result<usize, ShippingError> {
        self.brackets_max_grams
            .iter()
            .position(|&max| weight_grams <= u64::from(max))
            .ok_or(ShippingError::TooHeavy {
                weight_grams,
                max_grams: self.max_grams(),
            })
    }

    /// The cost and delivery estimate of `items` to `country` (already
    /// checked: assigned and uppercase) at `speed`.
    pub fn quote(&self, items: &[Item], country: &str, speed: Speed) -> Result<Quote, ShippingError> {
        let weight_grams = total_weight(items)?;
        let bracket = self.bracket_of(weight_grams)?;
        let zone = self.zone_of(country);
        let rates = self.rates_for(zone, speed);
        Ok(Quote {
            cost: Money {
                amount: rates.costs[bracket],
                currency: self.currency.clone(),
            },
            zone,
            speed,
            weight_grams,
            estimated_days: EstimatedDays {
                min: rates.days.min_days,
                max: rates.days.max_days,
            },
        })
    }
}

/// The shipment's weight: Σ weight × quantity, every item weighing and
/// counting at least one. Computed in u64 (no overflow: at most 100 items of
/// u32 × u32 each would still fit after saturation, which only says "too heavy").
pub fn total_weight(items: &[Item]) -> Result<u64, ShippingError> {
    if items.is_empty() {
        return Err(ShippingError::NoItems);
    }
    if items.len() > MAX_ITEMS {
        return Err(ShippingError::TooManyItems(items.len()));
    }
    let mut total: u64 = 0;
    for (index, item) in items.iter().enumerate() {
        if item.weight_grams == 0 {
            return Err(ShippingError::InvalidItem {
                index,
                field: "weight_grams",
                message: "weight_grams must be at least 1".into(),
            });
        }
        if item.quantity == 0 {
            return Err(ShippingError::InvalidItem {
                index,
                field: "quantity",
                message: "quantity must be at least 1".into(),
            });
        }
        total = total.saturating_add(u64::from(item.weight_grams) * u64::from(item.quantity));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RateTable {
        RateTable::load().unwrap()
    }

    fn one(weight_grams: u32) -> Vec<Item> {
        vec![Item {
            weight_grams,
            quantity: 1,
        }]
    }

    #[test]
    fn the_table_is_complete_for_every_zone_bracket_and_speed() {
        let table = table();
        assert_eq!(table.check(), Ok(()));
        assert_eq!(table.origin, "DE");
        assert_eq!(table.currency.as_str(), "EUR");
        assert_eq!(table.max_grams(), 31_500);
        for zone in Zone::ALL {
            for speed in Speed::ALL {
                let rows: Vec<_> = table.rates.iter().filter(|r| r.zone == zone && r.speed == speed).collect();
                assert_eq!(rows.len(), 1, "{zone:?} {speed:?}");
                assert_eq!(rows[0].costs.len(), table.brackets_max_grams.len(), "{zone:?} {speed:?}");
            }
        }
    }

    #[test]
    fn an_incomplete_or_inconsistent_table_is_refused() {
        let mut missing_row = table();
        missing_row.rates.retain(|r| !(r.zone == Zone::Eu && r.speed == Speed::Express));
        assert!(missing_row.check().is_err());
        let mut duplicate_row = table();
        duplicate_row.rates[1] = duplicate_row.rates[0].clone();
        assert!(duplicate_row.check().is_err());
        let mut short_row = table();
        short_row.rates[2].costs.pop();
        assert!(short_row.check().is_err());
        let mut unsorted = table();
        unsorted.brackets_max_grams.swap(0, 1);
        assert!(unsorted.check().is_err());
        let mut cheaper_when_heavier = table();
        cheaper_when_heavier.rates[0].costs[3] = 1;
        assert!(cheaper_when_heavier.check().is_err());
    }

    #[test]
    fn zones_are_germany_the_other_eu_states_and_the_world() {
        let table = table();
        assert_eq!(table.zone_of("DE"), Zone::Domestic);
        for eu in ["AT", "FR", "FI", "GR", "CY", "IE", "SK"] {
            assert_eq!(table.zone_of(eu), Zone::Eu, "{eu}");
        }
        for world in ["CH", "GB", "NO", "US", "JP", "AX", "TR"] {
            assert_eq!(table.zone_of(world), Zone::World, "{world}");
        }
        let eu_zone = shop_shared::address::ISO_3166_ALPHA2
            .iter()
            .filter(|c| table.zone_of(c) == Zone::Eu)
            .count();
        assert_eq!(eu_zone, 26);
    }

    #[test]
    fn a_bracket_holds_weights_up_to_and_including_its_limit() {
        let table = table();
        assert_eq!(table.bracket_of(1), Ok(0));
        assert_eq!(table.bracket_of(1000), Ok(0));
        assert_eq!(table.bracket_of(1001), Ok(1));
        assert_eq!(table.bracket_of(2000), Ok(1));
        assert_eq!(table.bracket_of(2001), Ok(2));
        assert_eq!(table.bracket_of(31_500), Ok(5));
        assert_eq!(
            table.bracket_of(31_501),
            Err(ShippingError::TooHeavy { weight_grams: 31_501, max_grams: 31_500 })
        );
    }

    #[test]
    fn a_quote_prices_the_total_weight_in_the_zone_at_the_speed() {
        let table = table();
        let items = [
            Item { weight_grams: 400, quantity: 2 },
            Item { weight_grams: 300, quantity: 1 },
        ];
        let quote = table.quote(&items, "FR", Speed::Express).unwrap();
        assert_eq!(quote.weight_grams, 1100);
        assert_eq!(quote.zone, Zone::Eu);
        assert_eq!(quote.cost, Money::new(3299, "EUR").unwrap());
        assert_eq!(quote.estimated_days, EstimatedDays { min: 1, max: 3 });
        let domestic = table.quote(&one(1000), "DE", Speed::Standard).unwrap();
        assert_eq!((domestic.cost.amount, domestic.zone), (499, Zone::Domestic));
        let world = table.quote(&one(31_500), "US", Speed::Standard).unwrap();
        assert_eq!((world.cost.amount, world.estimated_days), (11_999, EstimatedDays { min: 7, max: 21 }));
    }

    #[test]
    fn bad_items_are_named() {
        assert_eq!(total_weight(&[]), Err(ShippingError::NoItems));
        let too_many = vec![Item { weight_grams: 1, quantity: 1 }; MAX_ITEMS + 1];
        assert_eq!(total_weight(&too_many), Err(ShippingError::TooManyItems(101)));
        assert!(total_weight(&too_many[..MAX_ITEMS]).is_ok());
        let zero_weight = [Item { weight_grams: 5, quantity: 1 }, Item { weight_grams: 0, quantity: 1 }];
        assert!(matches!(total_weight(&zero_weight), Err(ShippingError::InvalidItem { index: 1, field: "weight_grams", .. })));
        let zero_quantity = [Item { weight_grams: 5, quantity: 0 }];
        assert!(matches!(total_weight(&zero_quantity), Err(ShippingError::InvalidItem { index: 0, field: "quantity", .. })));
    }

    #[test]
    fn huge_weights_are_too_heavy_not_an_overflow() {
        let huge = vec![Item { weight_grams: u32::MAX, quantity: u32::MAX }; MAX_ITEMS];
        let weight = total_weight(&huge).unwrap();
        assert_eq!(weight, u64::MAX);
        assert!(matches!(table().quote(&huge, "DE", Speed::Standard), Err(ShippingError::TooHeavy { .. })));
    }

    #[test]
    fn speeds_are_standard_or_express() {
        assert_eq!(Speed::parse("standard"), Ok(Speed::Standard));
        assert_eq!(Speed::parse("express"), Ok(Speed::Express));
        for bad in ["", "Express", "overnight", " standard"] {
            assert_eq!(Speed::parse(bad), Err(ShippingError::InvalidSpeed(bad.into())));
        }
    }
}
