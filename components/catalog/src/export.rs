//! The `shop:catalog/catalog` WIT export, over the same domain and store code
//! as the HTTP routes; generated types are converted here and go no further.

wit_bindgen::generate!({
    world: "shop:catalog/service",
    path: ["../../wit/types", "../../wit/catalog"],
    // The shared records (money) are generated here too; nothing else in this
    // crate provides bindings for `shop:types`.
    with: { "shop:types/types@0.1.0": generate },
});

use exports::shop::catalog::catalog::{self as wit, Guest};
use shop::types::types::Money as WitMoney;
use shop_shared::Money;

use crate::domain::{self, CatalogError, Product, ProductDraft, ProductQuery};
use crate::store::CatalogStore;

struct CatalogExport;

export!(CatalogExport);

impl Guest for CatalogExport {
    fn list_products(
        query: Option<String>,
        category: Option<String>,
        page: u32,
        per_page: u32,
    ) -> Result<wit::ProductPage, wit::Error> {
        let search = ProductQuery::new(query.as_deref(), category.as_deref(), page, per_page)?;
        let store = CatalogStore::open()?;
        let page = search.page_of(store.all_products()?);
        Ok(wit::ProductPage {
            products: page.products.into_iter().map(Into::into).collect(),
            total: page.total,
            page: page.page,
            per_page: page.per_page,
        })
    }

    fn get_product(sku: String) -> Result<wit::Product, wit::Error> {
        let store = CatalogStore::open()?;
        match store.product(&sku)? {
            Some(product) => Ok(product.into()),
            None => Err(wit::Error::UnknownSku(sku)),
        }
    }

    fn prices(skus: Vec<String>) -> Result<Vec<wit::Price>, wit::Error> {
        domain::check_price_request(&skus)?;
        let store = CatalogStore::open()?;
        let found = store.products(&skus)?;
        let prices = domain::prices_in_order(&skus, &found)?;
        Ok(prices
            .into_iter()
            .map(|price| wit::Price {
                sku: price.sku,
                price: price.price.into_wit(),
                weight_grams: price.weight_grams,
            })
            .collect())
    }

    fn upsert_product(product: wit::Product) -> Result<wit::Product, wit::Error> {
        let price = Money::new(product.price.amount, &product.price.currency)
            .map_err(|e| wit::Error::Invalid(format!("price: {e}")))?;
        let draft = ProductDraft {
            name: product.name,
            description: product.description,
            price,
            weight_grams: product.weight_grams.into(),
            categories: product.categories,
            image: product.image,
        };
        let product = draft.into_product(&product.sku)?;
        CatalogStore::open()?.upsert(&product)?;
        Ok(product.into())
    }
}

trait IntoWit {
    fn into_wit(self) -> WitMoney;
}

impl IntoWit for Money {
    fn into_wit(self) -> WitMoney {
        WitMoney {
            amount: self.amount,
            currency: self.currency.to_string(),
        }
    }
}

impl From<Product> for wit::Product {
    fn from(product: Product) -> Self {
        Self {
            sku: product.sku,
            name: product.name,
            description: product.description,
            price: product.price.into_wit(),
            weight_grams: product.weight_grams,
            categories: product.categories,
            image: product.image,
        }
    }
}

impl From<CatalogError> for wit::Error {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::ProductNotFound(sku) => Self::UnknownSku(sku),
            CatalogError::UnknownSkus(skus) => Self::UnknownSku(skus.join(",")),
            CatalogError::Unavailable(message) => Self::Unavailable(message),
            invalid @ (CatalogError::InvalidProduct { .. }
            | CatalogError::InvalidQuery(_)
            | CatalogError::InvalidSkuList(_)) => Self::Invalid(invalid.to_string()),
        }
    }
}
