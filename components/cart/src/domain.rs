//! Carts and their rules: cart ids, quantities 1..=99 per line, at most 100
//! lines, adding a sku already in the cart grows its line. No I/O.

use serde::{Deserialize, Serialize};

pub const MAX_QUANTITY: u32 = 99;
pub const MAX_LINES: usize = 100;
const MAX_CART_ID_LEN: usize = shop_shared::MAX_ID_LEN;

/// A cart id the client chose: 1–64 of `A-Z a-z 0-9 _ -`, so it is safe in a
/// URL path and in a store key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartId(String);

/// How many of one sku a line holds: 1 to [`MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(u32);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub sku: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cart {
    #[serde(serialize_with = "serialize_cart_id")]
    pub id: CartId,
    /// In the order the skus were first added.
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartError {
    InvalidCartId(String),
    InvalidQuantity(String),
    /// The catalog does not know this sku.
    UnknownSku(String),
    NotInCart(String),
    TooManyLines,
    CatalogUnavailable(String),
    /// The cart's store failed.
    StoreUnavailable(String),
}

impl std::fmt::Display for CartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownSku(sku) => write!(f, "the catalog has no product with sku {sku:?}"),
            Self::NotInCart(sku) => write!(f, "the cart has no line for sku {sku:?}"),
            Self::TooManyLines => write!(f, "a cart holds at most {MAX_LINES} lines"),
            Self::InvalidCartId(message)
            | Self::InvalidQuantity(message)
            | Self::CatalogUnavailable(message)
            | Self::StoreUnavailable(message) => f.write_str(message),
        }
    }
}

impl CartId {
    pub fn parse(id: &str) -> Result<Self, CartError> {
        if shop_shared::is_valid_id(id) {
            Ok(Self(id.to_owned()))
        } else {
            Err(CartError::InvalidCartId(format!(
                "a cart id is 1 to {MAX_CART_ID_LEN} letters, digits, '_' or '-'"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn serialize_cart_id<S: serde::Serializer>(id: &CartId, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(id.as_str())
}

impl Quantity {
    pub fn new(quantity: i64) -> Result<Self, CartError> {
        u32::try_from(quantity)
            .ok()
            .filter(|n| (1..=MAX_QUANTITY).contains(n))
            .map(Self)
            .ok_or_else(|| {
                CartError::InvalidQuantity(format!(
                    "quantity must be a whole number from 1 to {MAX_QUANTITY}, got {quantity}"
                ))
            })
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Cart {
    #[cfg(test)]
    pub fn empty(id: CartId) -> Self {
        Self { id, lines: Vec::new() }
    }

    /// Adds `quantity` of `sku`: a new line at the end, or more on its line.
    pub fn add(&mut self, sku: &str, quantity: Quantity) -> Result<(), CartError> {
        if let Some(line) = self.line_mut(sku) {
            let total = line.quantity + quantity.get();
            if total > MAX_QUANTITY {
                return Err(CartError::InvalidQuantity(format!(
                    "the cart already has {} of {sku}; adding {} would make {total}, and a line holds at most {MAX_QUANTITY}",
                    line.quantity,
                    quantity.get()
                )));
            }
            line.quantity = total;
            return Ok(());
        }
        if self.lines.len() >= MAX_LINES {
            return Err(CartError::TooManyLines);
        }
        self.lines.push(Line {
            sku: sku.to_owned(),
            quantity: quantity.get(),
        });
        Ok(())
    }

    pub fn set_quantity(&mut self, sku: &str, quantity: Quantity) -> Result<(), CartError> {
        let line = self
            .line_mut(sku)
            .ok_or_else(|| CartError::NotInCart(sku.to_owned()))?;
        line.quantity = quantity.get();
        Ok(())
    }

    pub fn remove(&mut self, sku: &str) -> Result<(), CartError> {
        let before = self.lines.len();
        self.lines.retain(|line| line.sku != sku);
        if self.lines.len() == before {
            return Err(CartError::NotInCart(sku.to_owned()));
        }
        Ok(())
    }

    fn line_mut(&mut self, sku: &str) -> Option<&mut Line> {
        self.lines.iter_mut().find(|line| line.sku == sku)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cart() -> Cart {
        Cart::empty(CartId::parse("c-1").unwrap())
    }

    fn qty(n: i64) -> Quantity {
        Quantity::new(n).unwrap()
    }

    fn lines(cart: &Cart) -> Vec<(&str, u32)> {
        cart.lines
            .iter()
            .map(|l| (l.sku.as_str(), l.quantity))
            .collect()
    }

    #[test]
    fn cart_ids_are_short_url_safe_words() {
        for id in ["a", "Cart_42-x", &"x".repeat(64)] {
            assert_eq!(CartId::parse(id).unwrap().as_str(), id);
        }
        for id in ["", "a b", "a/b", "ü", "a.b", &"x".repeat(65)] {
            assert!(
                matches!(CartId::parse(id), Err(CartError::InvalidCartId(_))),
                "{id}"
            );
        }
    }

    #[test]
    fn quantities_are_one_to_ninety_nine() {
        assert_eq!(qty(1).get(), 1);
        assert_eq!(qty(99).get(), 99);
        for n in [0, 100, 1000, 10_000, -1, i64::MAX, i64::from(u32::MAX) + 1] {
            assert!(
                matches!(Quantity::new(n), Err(CartError::InvalidQuantity(_))),
                "{n}"
            );
        }
    }

    #[test]
    fn adding_keeps_first_added_order_and_merges_lines() {
        let mut cart = cart();
        cart.add("B-2", qty(1)).unwrap();
        cart.add("A-1", qty(2)).unwrap();
        cart.add("B-2", qty(3)).unwrap();
        assert_eq!(lines(&cart), [("B-2", 4), ("A-1", 2)]);
    }

    #[test]
    fn a_merged_line_stops_at_ninety_nine() {
        let mut cart = cart();
        cart.add("A-1", qty(90)).unwrap();
        cart.add("A-1", qty(9)).unwrap();
        assert_eq!(lines(&cart), [("A-1", 99)]);
        assert!(matches!(
            cart.add("A-1", qty(1)),
            Err(CartError::InvalidQuantity(_))
        ));
        assert_eq!(lines(&cart), [("A-1", 99)], "a refused add changes nothing");
    }

    #[test]
    fn the_hundred_and_first_line_is_refused_but_existing_lines_still_grow() {
        let mut cart = cart();
        for i in 0..MAX_LINES {
            cart.add(&format!("SKU-{i}"), qty(1)).unwrap();
        }
        assert_eq!(cart.add("ONE-MORE", qty(1)), Err(CartError::TooManyLines));
        assert_eq!(cart.lines.len(), MAX_LINES);
        cart.add("SKU-0", qty(1)).unwrap();
        assert_eq!(cart.lines[0].quantity, 2);
    }

    #[test]
    fn setting_a_quantity_replaces_it() {
        let mut cart = cart();
        cart.add("A-1", qty(5)).unwrap();
        cart.set_quantity("A-1", qty(2)).unwrap();
        assert_eq!(lines(&cart), [("A-1", 2)]);
        assert_eq!(
            cart.set_quantity("B-2", qty(1)),
            Err(CartError::NotInCart("B-2".into()))
        );
    }

    #[test]
    fn removing_drops_only_that_line() {
        let mut cart = cart();
        cart.add("A-1", qty(1)).unwrap();
        cart.add("B-2", qty(1)).unwrap();
        cart.remove("A-1").unwrap();
        assert_eq!(lines(&cart), [("B-2", 1)]);
        assert_eq!(cart.remove("A-1"), Err(CartError::NotInCart("A-1".into())));
    }

    #[test]
    fn json_shape() {
        let mut cart = cart();
        cart.add("A-1", qty(2)).unwrap();
        assert_eq!(
            serde_json::to_value(&cart).unwrap(),
            serde_json::json!({"id": "c-1", "lines": [{"sku": "A-1", "quantity": 2}]})
        );
    }
}
