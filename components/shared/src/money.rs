//! Money: integer minor units of an ISO 4217 currency, never floating point.
//! JSON: `{"amount": 1999, "currency": "EUR"}`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Minor units (cents for EUR).
    pub amount: i64,
    pub currency: Currency,
}

/// An ISO 4217 code: three uppercase ASCII letters. Only the shape is checked;
/// the shop decides which currencies it trades in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoneyError {
    InvalidCurrency(String),
    Negative(i64),
}

impl std::fmt::Display for MoneyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidCurrency(code) => write!(
                f,
                "invalid currency {code:?}: expected an ISO 4217 code of 3 uppercase letters, like \"EUR\""
            ),
            Self::Negative(amount) => write!(f, "the amount must not be negative, got {amount}"),
        }
    }
}

impl std::error::Error for MoneyError {}

impl Currency {
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(code.to_owned()))
        } else {
            Err(MoneyError::InvalidCurrency(code.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;

    fn try_from(code: String) -> Result<Self, Self::Error> {
        Self::parse(&code)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> Self {
        currency.0
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Money {
    pub fn new(amount: i64, currency: &str) -> Result<Self, MoneyError> {
        Ok(Self {
            amount,
            currency: Currency::parse(currency)?,
        })
    }

    /// A price or a payment: an amount that cannot be below zero.
    pub fn non_negative(amount: i64, currency: &str) -> Result<Self, MoneyError> {
        if amount < 0 {
            return Err(MoneyError::Negative(amount));
        }
        Self::new(amount, currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn currency_is_three_uppercase_letters() {
        assert_eq!(Currency::parse("EUR").unwrap().as_str(), "EUR");
        for bad in ["eur", "EU", "EURO", "E1R", "", "ÉUR"] {
            assert_eq!(
                Currency::parse(bad),
                Err(MoneyError::InvalidCurrency(bad.to_owned()))
            );
        }
    }

    #[test]
    fn non_negative_refuses_negative_amounts() {
        assert_eq!(Money::non_negative(0, "EUR").unwrap().amount, 0);
        assert_eq!(
            Money::non_negative(-1, "EUR"),
            Err(MoneyError::Negative(-1))
        );
        assert_eq!(Money::new(-1, "EUR").unwrap().amount, -1);
        assert!(Money::non_negative(5, "eur").is_err());
    }

    #[test]
    fn json_shape_round_trips() {
        let money = Money::new(1999, "EUR").unwrap();
        let value = serde_json::to_value(&money).unwrap();
        assert_eq!(value, json!({"amount": 1999, "currency": "EUR"}));
        assert_eq!(serde_json::from_value::<Money>(value).unwrap(), money);
    }

    #[test]
    fn json_with_a_bad_currency_or_a_fractional_amount_fails() {
        let error =
            serde_json::from_value::<Money>(json!({"amount": 1, "currency": "eur"})).unwrap_err();
        assert!(error.to_string().contains("invalid currency"), "{error}");
        assert!(
            serde_json::from_value::<Money>(json!({"amount": 1.5, "currency": "EUR"})).is_err()
        );
    }
}
