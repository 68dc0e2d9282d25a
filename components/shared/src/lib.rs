//! What every shop service does the same way, so that no service writes its own:
//! the JSON error shape (SPEC §8), reading and parsing request bodies, routing,
//! query strings, the admin check, money and sku rules, ids and timestamps.

pub mod ack;
pub mod address;
pub mod auth;
pub mod db;
pub mod dead_letters;
pub mod digest;
pub mod error;
pub mod event;
pub mod event_admin;
pub mod id;
pub mod inbox;
pub mod money;
pub mod outbox;
pub mod query;
pub mod request;
pub mod router;
pub mod session;
pub mod sku;
pub mod tax;
pub mod time;
pub mod timer;
pub mod trace;

pub use address::{Address, destination_country, is_eu_member, normalize_country};
pub use auth::{Caller, Listing, Owner, require_admin};
pub use digest::sha256_hex;
pub use error::{ApiError, json_response};
pub use money::{Currency, Money, MoneyError};
pub use query::Query;
pub use request::{JsonBody, MAX_BODY_BYTES, read_request};
pub use router::{Params, Router};
pub use id::{MAX_ID_LEN, is_valid_id, new_id, new_secret};
pub use sku::is_valid_sku;
pub use time::{now_millis, rfc3339};
