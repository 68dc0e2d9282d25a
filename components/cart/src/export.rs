//! The `shop:cart/cart` WIT export, over the same domain and store code as the
//! HTTP routes; generated types are converted here and go no further.

wit_bindgen::generate!({
    world: "shop:cart/service",
    path: ["../../wit/types", "../../wit/cart"],
    // The shared records (line) are generated here too; nothing else in this
    // crate provides bindings for `shop:types`.
    with: { "shop:types/types@0.1.0": generate },
});

use exports::shop::cart::cart::{self as wit, Guest};
use shop::types::types::Line as WitLine;

use crate::catalog;
use crate::domain::{Cart, CartError, CartId, Quantity};
use crate::store::CartStore;

struct CartExport;

export!(CartExport);

impl Guest for CartExport {
    fn get_cart(cart_id: String) -> Result<wit::Cart, wit::Error> {
        let id = CartId::parse(&cart_id)?;
        Ok(CartStore::open()?.load(&id)?.into())
    }

    fn add_item(cart_id: String, sku: String, quantity: u32) -> Result<wit::Cart, wit::Error> {
        let id = CartId::parse(&cart_id)?;
        let quantity = Quantity::new(quantity.into())?;
        // The WIT interface is synchronous; the catalog check is an HTTP call.
        spin_sdk::http::run(catalog::ensure_known(&sku))?;
        Ok(CartStore::open()?
            .update(&id, |cart| cart.add(&sku, quantity))?
            .into())
    }

    fn set_quantity(cart_id: String, sku: String, quantity: u32) -> Result<wit::Cart, wit::Error> {
        let id = CartId::parse(&cart_id)?;
        let quantity = Quantity::new(quantity.into())?;
        Ok(CartStore::open()?
            .update(&id, |cart| cart.set_quantity(&sku, quantity))?
            .into())
    }

    fn remove_item(cart_id: String, sku: String) -> Result<wit::Cart, wit::Error> {
        let id = CartId::parse(&cart_id)?;
        Ok(CartStore::open()?
            .update(&id, |cart| cart.remove(&sku))?
            .into())
    }

    fn empty_cart(cart_id: String) -> Result<(), wit::Error> {
        let id = CartId::parse(&cart_id)?;
        CartStore::open()?.delete(&id)?;
        Ok(())
    }
}

impl From<Cart> for wit::Cart {
    fn from(cart: Cart) -> Self {
        Self {
            id: cart.id.as_str().to_owned(),
            lines: cart
                .lines
                .into_iter()
                .map(|line| WitLine {
                    sku: line.sku,
                    quantity: line.quantity,
                })
                .collect(),
        }
    }
}

impl From<CartError> for wit::Error {
    fn from(error: CartError) -> Self {
        match error {
            CartError::UnknownSku(sku) => Self::UnknownSku(sku),
            CartError::NotInCart(sku) => Self::NotInCart(sku),
            CartError::TooManyLines => Self::TooManyLines,
            invalid @ (CartError::InvalidCartId(_) | CartError::InvalidQuantity(_)) => {
                Self::Invalid(invalid.to_string())
            }
            unavailable @ (CartError::CatalogUnavailable(_) | CartError::StoreUnavailable(_)) => {
                Self::Unavailable(unavailable.to_string())
            }
        }
    }
}
