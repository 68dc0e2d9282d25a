//! The cart's key-value layout (store label `cart`), the only code that talks
//! to the store: key `cart:<id>` holds the JSON array of the cart's lines,
//! `[{"sku": "MUG-001", "quantity": 2}]`, in the order they were first added.
//! An empty cart has no key.

use spin_sdk::key_value::Store;

use crate::domain::{Cart, CartError, CartId, Line};

const STORE: &str = "cart";

pub struct CartStore {
    store: Store,
}

impl CartStore {
    pub fn open() -> Result<Self, CartError> {
        let store = Store::open(STORE).map_err(|e| unavailable("opening", e))?;
        Ok(Self { store })
    }

    /// The cart, empty if it was never written.
    pub fn load(&self, id: &CartId) -> Result<Cart, CartError> {
        let Some(bytes) = self
            .store
            .get(&key(id))
            .map_err(|e| unavailable("reading", e))?
        else {
            return Ok(Cart::empty(id.clone()));
        };
        let lines: Vec<Line> = serde_json::from_slice(&bytes)
            .map_err(|e| unavailable("decoding", format!("cart {}: {e}", id.as_str())))?;
        Ok(Cart {
            id: id.clone(),
            lines,
        })
    }

    /// Loads the cart, applies `change`, and saves the result if it succeeded.
    ///
    /// Read-modify-write without a lock: the key-value interface has no
    /// compare-and-swap, and a cart has one shopper, so two concurrent changes
    /// to the same cart are rare and the last one wins.
    pub fn update(
        &self,
        id: &CartId,
        change: impl FnOnce(&mut Cart) -> Result<(), CartError>,
    ) -> Result<Cart, CartError> {
        let mut cart = self.load(id)?;
        change(&mut cart)?;
        self.save(&cart)?;
        Ok(cart)
    }

    fn save(&self, cart: &Cart) -> Result<(), CartError> {
        if cart.lines.is_empty() {
            return self.delete(&cart.id);
        }
        let bytes = serde_json::to_vec(&cart.lines).map_err(|e| unavailable("encoding", e))?;
        self.store
            .set(&key(&cart.id), &bytes)
            .map_err(|e| unavailable("writing", e))
    }

    /// Deleting a cart that does not exist is not an error.
    pub fn delete(&self, id: &CartId) -> Result<(), CartError> {
        self.store
            .delete(&key(id))
            .map_err(|e| unavailable("deleting", e))
    }
}

fn key(id: &CartId) -> String {
    format!("cart:{}", id.as_str())
}

fn unavailable(doing: &str, error: impl std::fmt::Display) -> CartError {
    eprintln!("cart store: {doing}: {error}");
    CartError::StoreUnavailable(format!("the cart store failed while {doing}"))
}
