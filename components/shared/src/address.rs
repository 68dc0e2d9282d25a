//! A postal address as every service takes it, and the country rules behind it:
//! the ISO 3166-1 alpha-2 codes in use and the EU member states.
//!
//! JSON: `{"name", "line1", "line2"?, "city", "postal_code", "country"}`, the
//! same record as `shop:types/types.address` in WIT.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ApiError;
use crate::request::invalid_field;

/// The longest a name, address line or city may be, in characters.
pub const MAX_FIELD_CHARS: usize = 200;
/// The longest a postal code may be, in characters.
pub const MAX_POSTAL_CODE_CHARS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub name: String,
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, uppercase once validated.
    pub country: String,
}

impl Address {
    /// The address as the shop stores it: every field trimmed, an empty `line2`
    /// dropped, the country uppercased; or 422 `invalid_address` naming the
    /// `field`, or 422 `unknown_country` for a well-formed code not in use.
    pub fn validate(self) -> Result<Address, ApiError> {
        let name = required("name", &self.name, MAX_FIELD_CHARS)?;
        let line1 = required("line1", &self.line1, MAX_FIELD_CHARS)?;
        let line2 = match self.line2.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(line2) => Some(required("line2", line2, MAX_FIELD_CHARS)?),
        };
        let city = required("city", &self.city, MAX_FIELD_CHARS)?;
        let postal_code = required("postal_code", &self.postal_code, MAX_POSTAL_CODE_CHARS)?;
        let country = normalize_country(&self.country)?;
        Ok(Address {
            name,
            line1,
            line2,
            city,
            postal_code,
            country,
        })
    }
}

/// The destination country of a quote request's `destination`: either a whole
/// address, validated as [`Address::validate`] does, or just `{"country": "DE"}`.
/// The country comes back trimmed and uppercased.
pub fn destination_country(destination: &Value) -> Result<String, ApiError> {
    let Value::Object(fields) = destination else {
        return Err(invalid_field(
            "destination",
            "`destination` must be an address object, or at least {\"country\": \"DE\"}",
        ));
    };
    let only_country = fields.iter().all(|(name, value)| name == "country" || value.is_null());
    if !only_country {
        let address: Address = serde_json::from_value(destination.clone()).map_err(|e| {
            invalid("destination", format!("`destination` is not a valid address: {e}"))
        })?;
        return Ok(address.validate()?.country);
    }
    match fields.get("country") {
        Some(Value::String(country)) => normalize_country(country),
        None | Some(Value::Null) => Err(invalid(
            "country",
            "`destination.country` is required (ISO 3166-1 alpha-2, like \"DE\")".into(),
        )),
        Some(_) => Err(invalid("country", "`destination.country` must be a string".into())),
    }
}

fn invalid(field: &'static str, message: String) -> ApiError {
    ApiError::unprocessable("invalid_address", message).with("field", field)
}

fn required(field: &'static str, value: &str, max_chars: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(field, format!("the address's `{field}` must not be empty")));
    }
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(invalid(
            field,
            format!("the address's `{field}` is {chars} characters long; at most {max_chars} are allowed"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("the address's `{field}` must not contain control characters"),
        ));
    }
    Ok(value.to_owned())
}

/// The country code trimmed and uppercased if it is an assigned ISO 3166-1
/// alpha-2 code. Not two ASCII letters: 422 `invalid_address` (`field`:
/// `country`); two letters but not assigned: 422 `unknown_country`.
pub fn normalize_country(country: &str) -> Result<String, ApiError> {
    let code = country.trim().to_ascii_uppercase();
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid(
            "country",
            format!("the country {country:?} is not an ISO 3166-1 alpha-2 code (two letters, like \"DE\")"),
        ));
    }
    if !is_assigned_country(&code) {
        return Err(ApiError::unprocessable(
            "unknown_country",
            format!("{code:?} is not an assigned ISO 3166-1 alpha-2 country code"),
        )
        .with("country", code));
    }
    Ok(code)
}

/// Whether `code` (uppercase) is an officially assigned ISO 3166-1 alpha-2 code.
pub fn is_assigned_country(code: &str) -> bool {
    ISO_3166_ALPHA2.binary_search(&code).is_ok()
}

/// Whether `code` (uppercase ISO 3166-1 alpha-2) is an EU member state (the 27
/// of 2026; Greece is `GR` here, though EU VAT texts write `EL`).
pub fn is_eu_member(code: &str) -> bool {
    EU_MEMBERS.binary_search(&code).is_ok()
}

/// The 27 EU member states, sorted.
pub const EU_MEMBERS: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
    "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// Every officially assigned ISO 3166-1 alpha-2 code (249), sorted for binary
/// search. Source: the ISO 3166 Maintenance Agency's online browsing platform.
pub const ISO_3166_ALPHA2: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn address() -> Address {
        Address {
            name: "  Erika Mustermann ".into(),
            line1: "Heidestraße 17".into(),
            line2: Some("   ".into()),
            city: " Köln".into(),
            postal_code: "51147 ".into(),
            country: " de ".into(),
        }
    }

    fn field_of(error: &ApiError) -> &str {
        error.extra["field"].as_str().unwrap()
    }

    #[test]
    fn country_tables_are_sorted_complete_and_unique() {
        assert!(ISO_3166_ALPHA2.windows(2).all(|w| w[0] < w[1]));
        assert!(EU_MEMBERS.windows(2).all(|w| w[0] < w[1]));
        assert!(ISO_3166_ALPHA2.iter().all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())));
        assert!(EU_MEMBERS.iter().all(|c| is_assigned_country(c)));
    }

    #[test]
    fn validation_trims_drops_an_empty_line2_and_uppercases_the_country() {
        let valid = address().validate().unwrap();
        assert_eq!(
            valid,
            Address {
                name: "Erika Mustermann".into(),
                line1: "Heidestraße 17".into(),
                line2: None,
                city: "Köln".into(),
                postal_code: "51147".into(),
                country: "DE".into(),
            }
        );
        let with_line2 = Address { line2: Some(" c/o Musterfirma ".into()), ..address() };
        assert_eq!(with_line2.validate().unwrap().line2.as_deref(), Some("c/o Musterfirma"));
    }

    #[test]
    fn empty_required_fields_name_the_field() {
        for (field, change) in [
            ("name", Box::new(|a: &mut Address| a.name = " ".into()) as Box<dyn Fn(&mut Address)>),
            ("line1", Box::new(|a: &mut Address| a.line1.clear())),
            ("city", Box::new(|a: &mut Address| a.city = "\t".into())),
            ("postal_code", Box::new(|a: &mut Address| a.postal_code.clear())),
            ("country", Box::new(|a: &mut Address| a.country.clear())),
        ] {
            let mut a = address();
            change(&mut a);
            let error = a.validate().unwrap_err();
            assert_eq!((error.status, error.code), (422, "invalid_address"), "{field}");
            assert_eq!(field_of(&error), field, "{error}");
        }
    }

    #[test]
    fn length_limits_count_characters_not_bytes() {
        let at_limit = Address { city: "ö".repeat(200), postal_code: "1".repeat(20), ..address() };
        assert!(at_limit.validate().is_ok());
        let long_city = Address { city: "ö".repeat(201), ..address() };
        assert_eq!(field_of(&long_city.validate().unwrap_err()), "city");
        let long_postal = Address { postal_code: "1".repeat(21), ..address() };
        assert_eq!(field_of(&long_postal.validate().unwrap_err()), "postal_code");
        let long_line2 = Address { line2: Some("x".repeat(201)), ..address() };
        assert_eq!(field_of(&long_line2.validate().unwrap_err()), "line2");
        let control = Address { name: "a\u{0}b".into(), ..address() };
        assert_eq!(field_of(&control.validate().unwrap_err()), "name");
    }

    #[test]
    fn malformed_country_is_an_invalid_address_and_unassigned_is_unknown() {
        for bad in ["D", "DEU", "D1", "Ü1", "12"] {
            let error = normalize_country(bad).unwrap_err();
            assert_eq!((error.code, field_of(&error)), ("invalid_address", "country"), "{bad}");
        }
        for unassigned in ["XX", "zz", "EU", "UK", "EL"] {
            let error = normalize_country(unassigned).unwrap_err();
            assert_eq!((error.status, error.code), (422, "unknown_country"), "{unassigned}");
        }
        assert_eq!(normalize_country(" gb").unwrap(), "GB");
        assert_eq!(normalize_country("AX").unwrap(), "AX");
    }

    #[test]
    fn eu_membership_is_the_27_states() {
        for member in ["DE", "FR", "FI", "GR", "HR", "CY", "IE"] {
            assert!(is_eu_member(member), "{member}");
        }
        for outside in ["GB", "CH", "NO", "US", "EL", "IS", "TR", "de"] {
            assert!(!is_eu_member(outside), "{outside}");
        }
    }

    #[test]
    fn a_destination_is_a_whole_address_or_just_a_country() {
        assert_eq!(destination_country(&json!({"country": " fi "})).unwrap(), "FI");
        let whole = serde_json::to_value(address()).unwrap();
        assert_eq!(destination_country(&whole).unwrap(), "DE");
        let error = destination_country(&json!({"country": "XX"})).unwrap_err();
        assert_eq!(error.code, "unknown_country");
        let error = destination_country(&json!({"country": "DE", "city": " "})).unwrap_err();
        assert_eq!((error.code, field_of(&error)), ("invalid_address", "destination"));
        let mut blank_city = whole.clone();
        blank_city["city"] = json!(" ");
        let error = destination_country(&blank_city).unwrap_err();
        assert_eq!((error.code, field_of(&error)), ("invalid_address", "city"));
        for (bad, field) in [(json!({}), "country"), (json!({"country": 49}), "country"), (json!("DE"), "destination")] {
            let error = destination_country(&bad).unwrap_err();
            assert_eq!((error.status, field_of(&error)), (422, field), "{bad}");
        }
    }

    #[test]
    fn json_uses_the_shared_field_names() {
        let parsed: Address = serde_json::from_value(json!({
            "name": "A", "line1": "B", "city": "C", "postal_code": "D", "country": "DE"
        }))
        .unwrap();
        assert_eq!(parsed.line2, None);
        let value = serde_json::to_value(Address { line2: Some("L".into()), ..parsed }).unwrap();
        assert_eq!(
            value,
            json!({"name": "A", "line1": "B", "line2": "L", "city": "C", "postal_code": "D", "country": "DE"})
        );
    }
}
