//! Customers and their rules: a name, an email that is well formed and unique
//! regardless of letter case, and at most [`MAX_ADDRESSES`] saved addresses,
//! each validated by [`shop_shared::Address::validate`]. No I/O.

use serde::Serialize;
use shop_shared::{Address, ApiError};

pub const MAX_NAME_CHARS: usize = 200;
/// RFC 5321's limit on a forward path, less the angle brackets.
pub const MAX_EMAIL_CHARS: usize = 254;
const MAX_LOCAL_PART_CHARS: usize = 64;
const MAX_DOMAIN_LABEL_CHARS: usize = 63;
pub const MAX_ADDRESSES: usize = 20;

/// The prefixes of this service's ids.
pub const CUSTOMER_ID_PREFIX: &str = "cus";
pub const ADDRESS_ID_PREFIX: &str = "adr";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub email: String,
    pub addresses: Vec<SavedAddress>,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// JSON: the address's fields with its `id` beside them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedAddress {
    pub id: String,
    #[serde(flatten)]
    pub address: Address,
}

/// A customer about to be created: a checked name and email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    pub name: String,
    /// As given, trimmed.
    pub email: String,
    /// What uniqueness is decided on: the email in lowercase.
    pub email_key: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CustomerError {
    InvalidName(String),
    InvalidEmail(String),
    InvalidPassword(String),
    EmailTaken(String),
    /// A sign-in whose email and password do not match an account; the same
    /// for an unknown email as for a wrong password.
    InvalidCredentials,
    /// Too many sign-in attempts for the account or from the client: try
    /// again after this many seconds.
    TooManyAttempts(i64),
    CustomerNotFound(String),
    TooManyAddresses,
    /// An address field broke a rule: the shared address error, as is.
    InvalidAddress(ApiError),
    /// The customers' store failed.
    Unavailable(String),
}

impl std::fmt::Display for CustomerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidName(message)
            | Self::InvalidEmail(message)
            | Self::InvalidPassword(message)
            | Self::Unavailable(message) => f.write_str(message),
            Self::InvalidCredentials => f.write_str("the email and password do not match an account"),
            Self::TooManyAttempts(seconds) => {
                write!(f, "too many sign-in attempts; try again in {seconds} s")
            }
            Self::EmailTaken(email) => write!(f, "a customer with the email {email:?} already exists"),
            Self::CustomerNotFound(id) => write!(f, "no customer with id {id:?}"),
            Self::TooManyAddresses => {
                write!(f, "a customer can have at most {MAX_ADDRESSES} addresses")
            }
            Self::InvalidAddress(error) => f.write_str(&error.message),
        }
    }
}

impl NewCustomer {
    pub fn new(name: &str, email: &str) -> Result<NewCustomer, CustomerError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(CustomerError::InvalidName("name must not be empty".into()));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(CustomerError::InvalidName(format!(
                "name must be at most {MAX_NAME_CHARS} characters"
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(CustomerError::InvalidName(
                "name must not contain control characters".into(),
            ));
        }
        let email = check_email(email)?;
        Ok(NewCustomer {
            name: name.to_owned(),
            email_key: email_key(&email),
            email,
        })
    }
}

/// What two emails that differ only in letter case have in common.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The email trimmed, if it looks deliverable: `local@domain` where the local
/// part is 1–64 printable ASCII characters of the usual (unquoted) kind without
/// leading, trailing or doubled dots, and the domain is at least two dot-separated
/// labels of letters, digits and inner hyphens, the last not all digits.
/// Quoted local parts, IP-literal domains and non-ASCII addresses are refused:
/// no shop customer needs them, and each is a way to smuggle odd bytes into
/// mail headers.
pub fn check_email(email: &str) -> Result<String, CustomerError> {
    let email = email.trim();
    let invalid = |why: &str| CustomerError::InvalidEmail(format!("email {email:?} is not valid: {why}"));
    if email.is_empty() {
        return Err(CustomerError::InvalidEmail("email must not be empty".into()));
    }
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err(CustomerError::InvalidEmail(format!(
            "email must be at most {MAX_EMAIL_CHARS} characters"
        )));
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(invalid("it has no @"));
    };
    if local.is_empty() || local.len() > MAX_LOCAL_PART_CHARS {
        return Err(invalid("the part before @ must be 1 to 64 characters"));
    }
    let local_ok = local.bytes().all(|b| {
        b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b)
    });
    if !local_ok || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(invalid("the part before @ has a character or dot where none may be"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(invalid("the domain needs a dot, like example.com"));
    }
    for label in &labels {
        let label_ok = !label.is_empty()
            && label.len() <= MAX_DOMAIN_LABEL_CHARS
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !label_ok {
            return Err(invalid("the domain must be letters, digits, hyphens and dots"));
        }
    }
    if labels.last().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return Err(invalid("the domain's last part cannot be a number"));
    }
    Ok(email.to_owned())
}

/// Whether `id` could be a customer id this service issued; anything else is
/// not found without asking the store.
pub fn is_customer_id(id: &str) -> bool {
    is_id_with_prefix(id, CUSTOMER_ID_PREFIX)
}

fn is_id_with_prefix(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// The address as it will be saved. Whether the customer has room for another
/// ([`MAX_ADDRESSES`]) is decided by the store, in the same statement that saves it.
pub fn address_to_save(address: Address) -> Result<Address, CustomerError> {
    address.validate().map_err(CustomerError::InvalidAddress)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> Address {
        Address {
            name: "Ada".into(),
            line1: "Main St 1".into(),
            line2: None,
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "de".into(),
        }
    }

    #[test]
    fn sensible_emails_are_accepted_and_trimmed() {
        for ok in [
            "ada@example.com",
            "Ada.Lovelace+shop@Mail.Example.co.uk",
            "o'brien@example.ie",
            "x@a-b.io",
            "user_1{x}@sub.example.museum",
        ] {
            assert_eq!(check_email(&format!("  {ok} ")).unwrap(), ok);
        }
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada@exa mple.com",
            "a da@example.com",
            ".ada@example.com",
            "ada.@example.com",
            "a..da@example.com",
            "ada@-example.com",
            "ada@example-.com",
            "ada@example..com",
            "ada@example.com.",
            "ada@127.0.0.1",
            "ada@[127.0.0.1]",
            "\"ada\"@example.com",
            "adä@example.com",
            "ada@exämple.com",
            "ada\n@example.com",
        ] {
            assert!(matches!(check_email(bad), Err(CustomerError::InvalidEmail(_))), "{bad:?}");
        }
    }

    #[test]
    fn email_length_limits_hold_at_the_edges() {
        let local_64 = "a".repeat(64);
        assert!(check_email(&format!("{local_64}@example.com")).is_ok());
        assert!(check_email(&format!("a{local_64}@example.com")).is_err());
        let label = "b".repeat(63);
        // 64 + "@" + 63 + "." + 63 + "." + 61 = 254 characters.
        let domain = format!("{label}.{label}.{}", "c".repeat(61));
        let at_limit = format!("{local_64}@{domain}");
        assert_eq!(at_limit.len(), 254);
        assert!(check_email(&at_limit).is_ok());
        assert!(check_email(&format!("{local_64}@{domain}x")).is_err());
        assert!(check_email(&format!("a@{}.com", "b".repeat(64))).is_err());
    }

    #[test]
    fn emails_are_unique_regardless_of_case() {
        let a = NewCustomer::new("Ada", "Ada@Example.COM").unwrap();
        let b = NewCustomer::new("Ada", " ada@example.com").unwrap();
        assert_eq!(a.email, "Ada@Example.COM", "the email is kept as written");
        assert_eq!(a.email_key, b.email_key);
        assert_eq!(a.email_key, "ada@example.com");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(NewCustomer::new("  Ada Lovelace ", "a@b.co").unwrap().name, "Ada Lovelace");
        for bad in ["", "  ", "a\u{7}b"] {
            assert!(matches!(NewCustomer::new(bad, "a@b.co"), Err(CustomerError::InvalidName(_))), "{bad:?}");
        }
        assert!(NewCustomer::new(&"é".repeat(200), "a@b.co").is_ok());
        assert!(NewCustomer::new(&"é".repeat(201), "a@b.co").is_err());
    }

    #[test]
    fn only_ids_of_our_shape_are_looked_up() {
        let id = shop_shared::new_id(CUSTOMER_ID_PREFIX);
        assert!(is_customer_id(&id), "{id}");
        for bad in ["", "cus_", "cus_123", "adr_0123456789abcdef0123456789abcdef", "cus_0123456789ABCDEF0123456789ABCDEF", "cus_0123456789abcdef0123456789abcdef0"] {
            assert!(!is_customer_id(bad), "{bad}");
        }
    }

    #[test]
    fn an_address_is_validated_before_it_is_saved() {
        assert_eq!(address_to_save(address()).unwrap().country, "DE");
        let bad = Address { country: "XX".into(), ..address() };
        match address_to_save(bad) {
            Err(CustomerError::InvalidAddress(error)) => assert_eq!(error.code, "unknown_country"),
            other => panic!("{other:?}"),
        }
    }
}
