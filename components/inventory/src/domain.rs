//! Warehouse stock and reservations, and their rules: what a reservation may
//! hold, when it stops holding, which transitions are allowed, and how a
//! refusal names every short sku. No I/O.
//!
//! Availability is never stored. It is `on_hand` minus the quantities of the
//! reservations that are held and not yet expired *at the moment asked*, so an
//! expired reservation stops counting without any timer or sweeper.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use shop_shared::{is_valid_sku, rfc3339};

/// The stock the warehouse starts with, from the repository's data file:
/// sku → units on hand. Covers every sku of the catalog's products.json.
pub const SEED_JSON: &str = include_str!("../stock.json");

/// A reservation line holds 1 to this many units, the same bound as a cart line.
pub const MAX_LINE_QUANTITY: u32 = 99;
/// A reservation holds at most as many lines as a cart.
pub const MAX_LINES: usize = 100;
pub const DEFAULT_TTL_SECONDS: u32 = 900;
pub const MAX_TTL_SECONDS: u32 = 3600;
/// Upper bound of an admin's stock level; keeps every count inside a `u32`.
pub const MAX_ON_HAND: u32 = 1_000_000_000;
const MAX_RESERVATION_ID_LEN: usize = shop_shared::MAX_ID_LEN;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Line {
    pub sku: String,
    pub quantity: u32,
}

/// A reservation id: given by the client (so that a retry finds the same
/// reservation) or generated as `res_<32 hex digits>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationId(String);

impl ReservationId {
    /// 1–64 of `A-Z a-z 0-9 _ -`: safe in a URL path and in logs.
    pub fn parse(id: &str) -> Result<Self, InventoryError> {
        if shop_shared::is_valid_id(id) {
            Ok(Self(id.to_owned()))
        } else {
            Err(InventoryError::InvalidReservationId(format!(
                "a reservation id is 1 to {MAX_RESERVATION_ID_LEN} letters, digits, '_' or '-'"
            )))
        }
    }

    pub fn generate() -> Self {
        Self(shop_shared::new_id("res"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A valid request to reserve: lines sorted by sku (so two requests for the
/// same goods compare equal whatever their order) and a TTL in range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRequest {
    lines: Vec<Line>,
    ttl_seconds: u32,
}

impl ReservationRequest {
    /// `lines` as asked, quantities as whole numbers of any size so that an
    /// out-of-range one gets this module's message; `ttl_seconds` defaults to
    /// [`DEFAULT_TTL_SECONDS`].
    pub fn new(
        lines: Vec<(String, i64)>,
        ttl_seconds: Option<i64>,
    ) -> Result<Self, InventoryError> {
        if lines.is_empty() {
            return Err(InventoryError::InvalidLines(
                "a reservation needs at least one line".into(),
            ));
        }
        if lines.len() > MAX_LINES {
            return Err(InventoryError::InvalidLines(format!(
                "a reservation holds at most {MAX_LINES} lines, got {}",
                lines.len()
            )));
        }
        let mut checked = Vec::with_capacity(lines.len());
        for (sku, quantity) in lines {
            if !is_valid_sku(&sku) {
                return Err(InventoryError::InvalidLines(format!(
                    "sku {sku:?} must be 1 to 64 uppercase letters, digits and dashes, like \"MUG-001\""
                )));
            }
            let quantity = line_quantity(&sku, quantity)?;
            checked.push(Line { sku, quantity });
        }
        checked.sort();
        if let Some(pair) = checked.windows(2).find(|pair| pair[0].sku == pair[1].sku) {
            return Err(InventoryError::InvalidLines(format!(
                "sku {} appears on more than one line; give each sku once with its total quantity",
                pair[0].sku
            )));
        }
        let ttl_seconds = match ttl_seconds {
            None => DEFAULT_TTL_SECONDS,
            Some(ttl) => u32::try_from(ttl)
                .ok()
                .filter(|ttl| (1..=MAX_TTL_SECONDS).contains(ttl))
                .ok_or_else(|| {
                    InventoryError::InvalidTtl(format!(
                        "ttl_seconds must be a whole number from 1 to {MAX_TTL_SECONDS}, got {ttl}"
                    ))
                })?,
        };
        Ok(Self {
            lines: checked,
            ttl_seconds,
        })
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    pub fn skus(&self) -> Vec<String> {
        self.lines.iter().map(|line| line.sku.clone()).collect()
    }

    /// When a reservation made at `now_millis` stops holding its stock.
    pub fn expires_at(&self, now_millis: i64) -> i64 {
        now_millis + i64::from(self.ttl_seconds) * 1000
    }
}

fn line_quantity(sku: &str, quantity: i64) -> Result<u32, InventoryError> {
    u32::try_from(quantity)
        .ok()
        .filter(|n| (1..=MAX_LINE_QUANTITY).contains(n))
        .ok_or_else(|| {
            InventoryError::InvalidQuantity(format!(
                "the quantity of {sku} must be a whole number from 1 to {MAX_LINE_QUANTITY}, got {quantity}"
            ))
        })
}

/// A stock level an admin sets: 0 to [`MAX_ON_HAND`].
pub fn on_hand_level(on_hand: i64) -> Result<u32, InventoryError> {
    u32::try_from(on_hand)
        .ok()
        .filter(|n| *n <= MAX_ON_HAND)
        .ok_or_else(|| {
            InventoryError::InvalidStock(format!(
                "on_hand must be a whole number from 0 to {MAX_ON_HAND}, got {on_hand}"
            ))
        })
}

/// One sku's stock at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Availability {
    pub sku: String,
    /// Units in the warehouse (committed reservations have left it).
    pub on_hand: u32,
    /// Units held by reservations that are neither expired, committed nor released.
    pub reserved: u32,
    /// What a new reservation may take. Never negative: an admin may count
    /// fewer units than are held, and then nothing is available.
    pub available: u32,
}

impl Availability {
    pub fn new(sku: String, on_hand: i64, reserved: i64) -> Self {
        let clamp = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        Self {
            sku,
            on_hand: clamp(on_hand),
            reserved: clamp(reserved),
            available: clamp(on_hand - reserved),
        }
    }
}

/// A line that cannot be reserved: what was asked and what there is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shortage {
    pub sku: String,
    pub requested: u32,
    pub available: u32,
}

/// All or nothing: `Ok` when every line fits in what is available; otherwise
/// the error names every sku that does not exist, or, when all exist, every
/// sku that is short (in sku order).
pub fn check_stock(lines: &[Line], stock: &[Availability]) -> Result<(), InventoryError> {
    let by_sku: HashMap<&str, &Availability> = stock
        .iter()
        .map(|level| (level.sku.as_str(), level))
        .collect();
    let unknown: Vec<String> = lines
        .iter()
        .filter(|line| !by_sku.contains_key(line.sku.as_str()))
        .map(|line| line.sku.clone())
        .collect();
    if !unknown.is_empty() {
        return Err(InventoryError::UnknownSkus(unknown));
    }
    let shortages: Vec<Shortage> = lines
        .iter()
        .filter_map(|line| {
            let available = by_sku[line.sku.as_str()].available;
            (line.quantity > available).then(|| Shortage {
                sku: line.sku.clone(),
                requested: line.quantity,
                available,
            })
        })
        .collect();
    if shortages.is_empty() {
        Ok(())
    } else {
        Err(InventoryError::InsufficientStock(shortages))
    }
}

/// The stock of each of `skus`, in the order asked, from the levels found;
/// every sku not found is named.
pub fn levels_in_order(
    skus: &[String],
    found: Vec<Availability>,
) -> Result<Vec<Availability>, InventoryError> {
    if skus.len() > MAX_LINES {
        return Err(InventoryError::InvalidLines(format!(
            "ask for at most {MAX_LINES} skus at once, got {}",
            skus.len()
        )));
    }
    let by_sku: HashMap<String, Availability> = found
        .into_iter()
        .map(|level| (level.sku.clone(), level))
        .collect();
    let unknown: Vec<String> = skus
        .iter()
        .filter(|sku| !by_sku.contains_key(sku.as_str()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(InventoryError::UnknownSkus(unknown));
    }
    // Every sku is known by now.
    Ok(skus
        .iter()
        .filter_map(|sku| by_sku.get(sku).cloned())
        .collect())
}

/// What the store records. `Held` holds stock only until `expires_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredStatus {
    Held,
    Committed,
    Released,
}

impl StoredStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Committed => "committed",
            Self::Released => "released",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "held" => Some(Self::Held),
            "committed" => Some(Self::Committed),
            "released" => Some(Self::Released),
            _ => None,
        }
    }
}

/// What a client sees: a held reservation past its expiry is `Expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Held,
    Expired,
    Committed,
    Released,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: ReservationId,
    pub status: StoredStatus,
    /// Sorted by sku.
    pub lines: Vec<Line>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The answer to a transition: do it, or it was already done (a retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Apply,
    AlreadyDone,
}

/// A reservation is expired from its `expires_at` millisecond on.
pub fn is_expired(expires_at: i64, now_millis: i64) -> bool {
    expires_at <= now_millis
}

impl Reservation {
    pub fn status_at(&self, now_millis: i64) -> Status {
        match self.status {
            StoredStatus::Held if is_expired(self.expires_at, now_millis) => Status::Expired,
            StoredStatus::Held => Status::Held,
            StoredStatus::Committed => Status::Committed,
            StoredStatus::Released => Status::Released,
        }
    }

    /// A retried reserve with this id: the same goods get this reservation
    /// back, other goods are a conflict.
    pub fn check_same_lines(&self, request: &ReservationRequest) -> Result<(), InventoryError> {
        if self.lines == request.lines {
            Ok(())
        } else {
            Err(InventoryError::ReservationConflict(
                self.id.as_str().to_owned(),
            ))
        }
    }

    /// Committing takes the stock out of the warehouse: only while held and
    /// not expired; committing again is a retry.
    pub fn commit(&self, now_millis: i64) -> Result<Transition, InventoryError> {
        let id = || self.id.as_str().to_owned();
        match self.status_at(now_millis) {
            Status::Held => Ok(Transition::Apply),
            Status::Committed => Ok(Transition::AlreadyDone),
            Status::Expired => Err(InventoryError::ReservationExpired {
                id: id(),
                expired_at: self.expires_at,
            }),
            Status::Released => Err(InventoryError::ReservationReleased(id())),
        }
    }

    /// Releasing gives the stock back: held (expired or not) becomes released;
    /// releasing again is a retry; a committed reservation's stock is gone.
    pub fn release(&self) -> Result<Transition, InventoryError> {
        match self.status {
            StoredStatus::Held => Ok(Transition::Apply),
            StoredStatus::Released => Ok(Transition::AlreadyDone),
            StoredStatus::Committed => Err(InventoryError::ReservationCommitted(
                self.id.as_str().to_owned(),
            )),
        }
    }

    pub fn view(&self, now_millis: i64) -> ReservationView {
        ReservationView {
            id: self.id.as_str().to_owned(),
            status: self.status_at(now_millis),
            lines: self.lines.clone(),
            created_at: rfc3339(self.created_at),
            expires_at: rfc3339(self.expires_at),
        }
    }
}

/// A reservation as JSON shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReservationView {
    pub id: String,
    pub status: Status,
    pub lines: Vec<Line>,
    pub created_at: String,
    pub expires_at: String,
}

/// The seed stock levels, sorted by sku.
pub fn seed_stock() -> Result<Vec<(String, u32)>, String> {
    let levels: std::collections::BTreeMap<String, u32> =
        serde_json::from_str(SEED_JSON).map_err(|e| format!("stock.json: {e}"))?;
    for (sku, on_hand) in &levels {
        if !is_valid_sku(sku) || *on_hand > MAX_ON_HAND {
            return Err(format!("stock.json: invalid entry {sku:?}: {on_hand}"));
        }
    }
    Ok(levels.into_iter().collect())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryError {
    InvalidLines(String),
    InvalidQuantity(String),
    InvalidTtl(String),
    InvalidStock(String),
    InvalidSku(String),
    InvalidReservationId(String),
    /// Every asked sku the warehouse does not stock, in the order asked.
    UnknownSkus(Vec<String>),
    /// Every short line, in sku order.
    InsufficientStock(Vec<Shortage>),
    ReservationNotFound(String),
    /// The id is taken by a reservation of other goods.
    ReservationConflict(String),
    ReservationExpired {
        id: String,
        expired_at: i64,
    },
    /// Committing a released reservation.
    ReservationReleased(String),
    /// Releasing a committed reservation.
    ReservationCommitted(String),
    /// The inventory's store failed.
    Unavailable(String),
}

impl std::fmt::Display for InventoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownSkus(skus) => {
                write!(
                    f,
                    "the warehouse stocks no such products: {}",
                    skus.join(", ")
                )
            }
            Self::InsufficientStock(shortages) => {
                let list: Vec<String> = shortages
                    .iter()
                    .map(|s| {
                        format!(
                            "{} (requested {}, available {})",
                            s.sku, s.requested, s.available
                        )
                    })
                    .collect();
                write!(f, "not enough stock for {}", list.join(", "))
            }
            Self::ReservationNotFound(id) => write!(f, "no reservation with id {id:?}"),
            Self::ReservationConflict(id) => write!(
                f,
                "reservation {id:?} already exists with other lines; use a new id for other goods"
            ),
            Self::ReservationExpired { id, expired_at } => write!(
                f,
                "reservation {id:?} expired at {} and no longer holds stock; reserve again",
                rfc3339(*expired_at)
            ),
            Self::ReservationReleased(id) => {
                write!(f, "reservation {id:?} was released and cannot be committed")
            }
            Self::ReservationCommitted(id) => write!(
                f,
                "reservation {id:?} was committed (its stock has left the warehouse) and cannot be released"
            ),
            Self::InvalidLines(message)
            | Self::InvalidQuantity(message)
            | Self::InvalidTtl(message)
            | Self::InvalidStock(message)
            | Self::InvalidSku(message)
            | Self::InvalidReservationId(message)
            | Self::Unavailable(message) => f.write_str(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
        pairs
            .iter()
            .map(|(sku, n)| ((*sku).to_owned(), *n))
            .collect()
    }

    fn request(pairs: &[(&str, i64)]) -> ReservationRequest {
        ReservationRequest::new(lines(pairs), None).unwrap()
    }

    fn reservation(status: StoredStatus, expires_at: i64) -> Reservation {
        Reservation {
            id: ReservationId::parse("res_1").unwrap(),
            status,
            lines: request(&[("MUG-001", 2)]).lines,
            created_at: 0,
            expires_at,
        }
    }

    #[test]
    fn the_seed_covers_every_catalog_sku() {
        #[derive(Deserialize)]
        struct Product {
            sku: String,
        }
        let products: Vec<Product> =
            serde_json::from_str(include_str!("../../catalog/products.json")).unwrap();
        let stock = seed_stock().unwrap();
        assert!(products.len() >= 20);
        for product in &products {
            assert!(
                stock.iter().any(|(sku, _)| *sku == product.sku),
                "stock.json has no entry for {}",
                product.sku
            );
        }
        for (sku, _) in &stock {
            assert!(
                products.iter().any(|p| p.sku == *sku),
                "stock.json names {sku}, which the catalog does not sell"
            );
        }
        assert!(stock.iter().any(|(_, n)| *n > 0));
    }

    #[test]
    fn lines_are_sorted_and_compared_whatever_their_order() {
        let a = request(&[("MUG-001", 2), ("COF-001", 1)]);
        let b = request(&[("COF-001", 1), ("MUG-001", 2)]);
        assert_eq!(a, b);
        assert_eq!(a.skus(), vec!["COF-001", "MUG-001"]);
        let existing = Reservation {
            lines: a.lines.clone(),
            ..reservation(StoredStatus::Held, 10)
        };
        assert_eq!(existing.check_same_lines(&b), Ok(()));
        let other = request(&[("COF-001", 1), ("MUG-001", 3)]);
        assert_eq!(
            existing.check_same_lines(&other),
            Err(InventoryError::ReservationConflict("res_1".into()))
        );
    }

    #[test]
    fn quantities_are_1_to_99() {
        assert!(ReservationRequest::new(lines(&[("A-1", 1)]), None).is_ok());
        assert!(ReservationRequest::new(lines(&[("A-1", 99)]), None).is_ok());
        for n in [0, 100, 10_000, -1, i64::MAX] {
            assert!(
                matches!(
                    ReservationRequest::new(lines(&[("A-1", n)]), None),
                    Err(InventoryError::InvalidQuantity(_))
                ),
                "{n}"
            );
        }
    }

    #[test]
    fn lines_must_be_present_unique_bounded_and_well_formed() {
        let invalid = |pairs: Vec<(String, i64)>| {
            matches!(
                ReservationRequest::new(pairs, None),
                Err(InventoryError::InvalidLines(_))
            )
        };
        assert!(invalid(vec![]));
        assert!(invalid(lines(&[("A-1", 1), ("B-1", 1), ("A-1", 2)])));
        assert!(invalid(lines(&[("mug-001", 1)])));
        assert!(invalid(lines(&[("", 1)])));
        let many: Vec<(String, i64)> = (0..=MAX_LINES).map(|i| (format!("S-{i}"), 1)).collect();
        assert!(invalid(many.clone()));
        assert!(ReservationRequest::new(many[..MAX_LINES].to_vec(), None).is_ok());
    }

    #[test]
    fn ttl_defaults_and_is_bounded() {
        let pairs = lines(&[("A-1", 1)]);
        let default = ReservationRequest::new(pairs.clone(), None).unwrap();
        assert_eq!(default.expires_at(1_000), 1_000 + 900_000);
        let short = ReservationRequest::new(pairs.clone(), Some(1)).unwrap();
        assert_eq!(short.expires_at(5_000), 6_000);
        let long = ReservationRequest::new(pairs.clone(), Some(3600)).unwrap();
        assert_eq!(long.expires_at(0), 3_600_000);
        for ttl in [0, -5, 3601, i64::MAX] {
            assert!(
                matches!(
                    ReservationRequest::new(pairs.clone(), Some(ttl)),
                    Err(InventoryError::InvalidTtl(_))
                ),
                "{ttl}"
            );
        }
    }

    #[test]
    fn expiry_is_exclusive_of_its_instant() {
        assert!(!is_expired(1_000, 999));
        assert!(is_expired(1_000, 1_000));
        assert!(is_expired(1_000, 1_001));
        let held = reservation(StoredStatus::Held, 1_000);
        assert_eq!(held.status_at(999), Status::Held);
        assert_eq!(held.status_at(1_000), Status::Expired);
        // Only a held reservation expires.
        assert_eq!(
            reservation(StoredStatus::Committed, 1_000).status_at(5_000),
            Status::Committed
        );
        assert_eq!(
            reservation(StoredStatus::Released, 1_000).status_at(5_000),
            Status::Released
        );
    }

    #[test]
    fn availability_subtracts_holds_and_never_goes_negative() {
        let level = Availability::new("A-1".into(), 10, 3);
        assert_eq!((level.on_hand, level.reserved, level.available), (10, 3, 7));
        let over = Availability::new("A-1".into(), 2, 5);
        assert_eq!((over.on_hand, over.reserved, over.available), (2, 5, 0));
    }

    #[test]
    fn a_refusal_names_every_short_sku() {
        let stock = vec![
            Availability::new("A-1".into(), 10, 8),
            Availability::new("B-1".into(), 5, 0),
            Availability::new("C-1".into(), 0, 0),
        ];
        let ok = request(&[("A-1", 2), ("B-1", 5)]);
        assert_eq!(check_stock(ok.lines(), &stock), Ok(()));
        let short = request(&[("C-1", 1), ("A-1", 3), ("B-1", 5)]);
        assert_eq!(
            check_stock(short.lines(), &stock),
            Err(InventoryError::InsufficientStock(vec![
                Shortage {
                    sku: "A-1".into(),
                    requested: 3,
                    available: 2
                },
                Shortage {
                    sku: "C-1".into(),
                    requested: 1,
                    available: 0
                },
            ]))
        );
        let error = check_stock(short.lines(), &stock).unwrap_err().to_string();
        assert!(error.contains("A-1 (requested 3, available 2)"), "{error}");
        assert!(error.contains("C-1"), "{error}");
    }

    #[test]
    fn unknown_skus_are_named_before_shortages() {
        let stock = vec![Availability::new("A-1".into(), 0, 0)];
        let req = request(&[("A-1", 1), ("GHOST-2", 1), ("GHOST-1", 1)]);
        assert_eq!(
            check_stock(req.lines(), &stock),
            Err(InventoryError::UnknownSkus(vec![
                "GHOST-1".into(),
                "GHOST-2".into()
            ]))
        );
    }

    #[test]
    fn levels_come_in_the_order_asked() {
        let found = vec![
            Availability::new("A-1".into(), 1, 0),
            Availability::new("B-1".into(), 2, 0),
        ];
        let skus = vec!["B-1".to_owned(), "A-1".to_owned(), "B-1".to_owned()];
        let levels = levels_in_order(&skus, found.clone()).unwrap();
        let order: Vec<&str> = levels.iter().map(|l| l.sku.as_str()).collect();
        assert_eq!(order, ["B-1", "A-1", "B-1"]);
        let skus = vec!["X-1".to_owned(), "A-1".to_owned(), "Y-1".to_owned()];
        assert_eq!(
            levels_in_order(&skus, found),
            Err(InventoryError::UnknownSkus(vec![
                "X-1".into(),
                "Y-1".into()
            ]))
        );
    }

    #[test]
    fn commit_only_while_held_and_unexpired() {
        let now = 500;
        assert_eq!(
            reservation(StoredStatus::Held, 1_000).commit(now),
            Ok(Transition::Apply)
        );
        assert_eq!(
            reservation(StoredStatus::Committed, 1_000).commit(now),
            Ok(Transition::AlreadyDone)
        );
        assert_eq!(
            reservation(StoredStatus::Held, 400).commit(now),
            Err(InventoryError::ReservationExpired {
                id: "res_1".into(),
                expired_at: 400
            })
        );
        assert_eq!(
            reservation(StoredStatus::Released, 1_000).commit(now),
            Err(InventoryError::ReservationReleased("res_1".into()))
        );
    }

    #[test]
    fn release_of_held_or_released_but_not_committed() {
        assert_eq!(
            reservation(StoredStatus::Held, 1_000).release(),
            Ok(Transition::Apply)
        );
        // An expired reservation may still be released (it holds nothing).
        assert_eq!(
            reservation(StoredStatus::Held, 0).release(),
            Ok(Transition::Apply)
        );
        assert_eq!(
            reservation(StoredStatus::Released, 1_000).release(),
            Ok(Transition::AlreadyDone)
        );
        assert_eq!(
            reservation(StoredStatus::Committed, 1_000).release(),
            Err(InventoryError::ReservationCommitted("res_1".into()))
        );
    }

    #[test]
    fn reservation_ids_are_url_safe() {
        for id in ["res_1", "A", "checkout-42_x"] {
            assert!(ReservationId::parse(id).is_ok(), "{id}");
        }
        let long = "a".repeat(65);
        for id in ["", "a b", "a/b", "é", long.as_str()] {
            assert!(ReservationId::parse(id).is_err(), "{id}");
        }
        assert!(ReservationId::generate().as_str().starts_with("res_"));
    }

    #[test]
    fn stock_levels_are_0_to_a_billion() {
        assert_eq!(on_hand_level(0), Ok(0));
        assert_eq!(on_hand_level(10), Ok(10));
        assert!(on_hand_level(-1).is_err());
        assert!(on_hand_level(i64::from(MAX_ON_HAND) + 1).is_err());
    }

    #[test]
    fn status_names_and_views() {
        for status in [
            StoredStatus::Held,
            StoredStatus::Committed,
            StoredStatus::Released,
        ] {
            assert_eq!(StoredStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(StoredStatus::parse("expired"), None);
        let view = reservation(StoredStatus::Held, 1_000).view(2_000);
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["status"], "expired");
        assert_eq!(json["expires_at"], "1970-01-01T00:00:01.000Z");
        assert_eq!(
            json["lines"],
            serde_json::json!([{"sku": "MUG-001", "quantity": 2}])
        );
    }
}
