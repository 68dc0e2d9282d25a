//! What the catalog sells and its rules: product validation, search, category
//! filter, pagination and batch price lookup. No I/O.

use serde::{Deserialize, Serialize};
use shop_shared::{Money, is_valid_sku};

/// The products the catalog starts with, from the repository's data file.
pub const SEED_JSON: &str = include_str!("../products.json");

pub const DEFAULT_PER_PAGE: u32 = 20;
pub const MAX_PER_PAGE: u32 = 100;
/// Checkout prices a whole cart in one call; a cart holds at most 100 lines.
pub const MAX_PRICE_SKUS: usize = 100;

const MAX_NAME_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 5000;
const MAX_CATEGORIES: usize = 10;
const MAX_CATEGORY_CHARS: usize = 40;
const MAX_IMAGE_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: Money,
    /// Shipping weight of one unit.
    pub weight_grams: u32,
    pub categories: Vec<String>,
    /// Path of the product image, relative to the storefront root.
    pub image: String,
}

/// A product as an admin submits it, before the rules have been checked.
/// Numbers are wide so that a negative or oversized value gets this module's
/// message rather than a type error.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductDraft {
    pub name: String,
    pub description: String,
    pub price: Money,
    pub weight_grams: i64,
    pub categories: Vec<String>,
    pub image: String,
}

/// What checkout needs to price and ship one sku.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Price {
    pub sku: String,
    pub price: Money,
    pub weight_grams: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductPage {
    pub products: Vec<Product>,
    /// Products matching the query over all pages.
    pub total: u32,
    pub page: u32,
    pub per_page: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogError {
    ProductNotFound(String),
    /// Every asked sku that does not exist, in the order asked.
    UnknownSkus(Vec<String>),
    InvalidProduct {
        field: &'static str,
        message: String,
    },
    /// A page or page size out of range.
    InvalidQuery(String),
    /// An empty or oversized batch of skus.
    InvalidSkuList(String),
    /// The catalog's store failed.
    Unavailable(String),
}

impl std::fmt::Display for CatalogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ProductNotFound(sku) => write!(f, "no product with sku {sku:?}"),
            Self::UnknownSkus(skus) => write!(f, "no such products: {}", skus.join(", ")),
            Self::InvalidProduct { message, .. }
            | Self::InvalidQuery(message)
            | Self::InvalidSkuList(message)
            | Self::Unavailable(message) => f.write_str(message),
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> CatalogError {
    CatalogError::InvalidProduct {
        field,
        message: message.into(),
    }
}

impl ProductDraft {
    /// The product this draft describes under `sku`, if every rule holds.
    pub fn into_product(self, sku: &str) -> Result<Product, CatalogError> {
        if !is_valid_sku(sku) {
            return Err(invalid(
                "sku",
                format!(
                    "sku {sku:?} must be 1 to 64 uppercase letters, digits and dashes, like \"MUG-001\""
                ),
            ));
        }
        let name = self.name.trim();
        if name.is_empty() {
            return Err(invalid("name", "name must not be empty"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(invalid(
                "name",
                format!("name must be at most {MAX_NAME_CHARS} characters"),
            ));
        }
        if self.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(invalid(
                "description",
                format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        if self.price.amount < 0 {
            return Err(invalid(
                "price",
                format!(
                    "price amount must not be negative, got {}",
                    self.price.amount
                ),
            ));
        }
        let weight_grams = u32::try_from(self.weight_grams)
            .ok()
            .filter(|grams| *grams > 0)
            .ok_or_else(|| {
                invalid(
                    "weight_grams",
                    format!(
                        "weight_grams must be a whole number of grams from 1 to {}, got {}",
                        u32::MAX,
                        self.weight_grams
                    ),
                )
            })?;
        check_categories(&self.categories)?;
        check_image(&self.image)?;
        Ok(Product {
            sku: sku.to_owned(),
            name: name.to_owned(),
            description: self.description.trim().to_owned(),
            price: self.price,
            weight_grams,
            categories: self.categories,
            image: self.image,
        })
    }
}

fn check_categories(categories: &[String]) -> Result<(), CatalogError> {
    if categories.len() > MAX_CATEGORIES {
        return Err(invalid(
            "categories",
            format!("a product has at most {MAX_CATEGORIES} categories"),
        ));
    }
    for (i, category) in categories.iter().enumerate() {
        let is_slug = !category.is_empty()
            && category.len() <= MAX_CATEGORY_CHARS
            && category
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !is_slug {
            return Err(invalid(
                "categories",
                format!(
                    "category {category:?} must be 1 to {MAX_CATEGORY_CHARS} lowercase letters, digits and dashes, like \"camping\""
                ),
            ));
        }
        if categories[..i].contains(category) {
            return Err(invalid(
                "categories",
                format!("category {category:?} is listed twice"),
            ));
        }
    }
    Ok(())
}

fn check_image(image: &str) -> Result<(), CatalogError> {
    let is_path = image.starts_with('/') || image.starts_with("https://");
    if !is_path
        || image.chars().count() > MAX_IMAGE_CHARS
        || image.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid(
            "image",
            format!(
                "image must be a path like \"/images/MUG-001.svg\" or an https URL, without spaces, at most {MAX_IMAGE_CHARS} characters"
            ),
        ));
    }
    Ok(())
}

/// A search of the catalog: free text, a category, and which page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductQuery {
    /// Lowercased words that must all appear in the sku, name or description.
    words: Vec<String>,
    category: Option<String>,
    page: u32,
    per_page: u32,
}

impl ProductQuery {
    /// Blank text or category means "any"; `page` starts at 1 and `per_page`
    /// is 1 to [`MAX_PER_PAGE`].
    pub fn new(
        text: Option<&str>,
        category: Option<&str>,
        page: u32,
        per_page: u32,
    ) -> Result<Self, CatalogError> {
        if page == 0 {
            return Err(CatalogError::InvalidQuery(
                "page must be a whole number from 1".into(),
            ));
        }
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(CatalogError::InvalidQuery(format!(
                "per_page must be a whole number from 1 to {MAX_PER_PAGE}"
            )));
        }
        let words = text
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let category = category
            .map(str::trim)
            .filter(|category| !category.is_empty())
            .map(str::to_lowercase);
        Ok(Self {
            words,
            category,
            page,
            per_page,
        })
    }

    pub fn matches(&self, product: &Product) -> bool {
        let in_category = self
            .category
            .as_ref()
            .is_none_or(|category| product.categories.contains(category));
        in_category && {
            let haystack = format!("{}\n{}\n{}", product.sku, product.name, product.description)
                .to_lowercase();
            self.words
                .iter()
                .all(|word| haystack.contains(word.as_str()))
        }
    }

    /// The requested page of the matching products, ordered by sku. A page
    /// past the end is empty, with the total still telling how many match.
    pub fn page_of(&self, products: Vec<Product>) -> ProductPage {
        let mut matching: Vec<Product> = products.into_iter().filter(|p| self.matches(p)).collect();
        matching.sort_by(|a, b| a.sku.cmp(&b.sku));
        let total = u32::try_from(matching.len()).unwrap_or(u32::MAX);
        let skip = (self.page as usize - 1).saturating_mul(self.per_page as usize);
        let products = matching
            .into_iter()
            .skip(skip)
            .take(self.per_page as usize)
            .collect();
        ProductPage {
            products,
            total,
            page: self.page,
            per_page: self.per_page,
        }
    }
}

/// A batch of skus to price: 1 to [`MAX_PRICE_SKUS`] of them.
pub fn check_price_request(skus: &[String]) -> Result<(), CatalogError> {
    if skus.is_empty() {
        return Err(CatalogError::InvalidSkuList(
            "skus must list at least one sku".into(),
        ));
    }
    if skus.len() > MAX_PRICE_SKUS {
        return Err(CatalogError::InvalidSkuList(format!(
            "skus may list at most {MAX_PRICE_SKUS} skus, got {}",
            skus.len()
        )));
    }
    Ok(())
}

/// The prices of `asked`, in the order asked, from the products found; fails
/// naming every asked sku that was not found.
pub fn prices_in_order(asked: &[String], found: &[Product]) -> Result<Vec<Price>, CatalogError> {
    let mut unknown: Vec<String> = Vec::new();
    let mut prices = Vec::with_capacity(asked.len());
    for sku in asked {
        match found.iter().find(|product| &product.sku == sku) {
            Some(product) => prices.push(Price {
                sku: product.sku.clone(),
                price: product.price.clone(),
                weight_grams: product.weight_grams,
            }),
            None if !unknown.contains(sku) => unknown.push(sku.clone()),
            None => {}
        }
    }
    if unknown.is_empty() {
        Ok(prices)
    } else {
        Err(CatalogError::UnknownSkus(unknown))
    }
}

/// The seed products, each checked by the same rules as an admin's upsert.
pub fn seed_products() -> Result<Vec<Product>, String> {
    let products: Vec<Product> =
        serde_json::from_str(SEED_JSON).map_err(|e| format!("products.json: {e}"))?;
    for product in &products {
        let draft = ProductDraft {
            name: product.name.clone(),
            description: product.description.clone(),
            price: product.price.clone(),
            weight_grams: product.weight_grams.into(),
            categories: product.categories.clone(),
            image: product.image.clone(),
        };
        draft
            .into_product(&product.sku)
            .map_err(|e| format!("products.json: {}: {e}", product.sku))?;
    }
    Ok(products)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> ProductDraft {
        ProductDraft {
            name: "Enamel Camp Mug".into(),
            description: "A mug.".into(),
            price: Money::new(1490, "EUR").unwrap(),
            weight_grams: 240,
            categories: vec!["drinkware".into(), "camping".into()],
            image: "/images/MUG-001.svg".into(),
        }
    }

    fn product(sku: &str, name: &str, categories: &[&str]) -> Product {
        Product {
            sku: sku.into(),
            name: name.into(),
            description: format!("About {name}"),
            price: Money::new(100, "EUR").unwrap(),
            weight_grams: 100,
            categories: categories.iter().map(|c| c.to_string()).collect(),
            image: format!("/images/{sku}.svg"),
        }
    }

    fn field_of(result: Result<Product, CatalogError>) -> &'static str {
        match result {
            Err(CatalogError::InvalidProduct { field, .. }) => field,
            other => panic!("expected an invalid product, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_draft_becomes_a_product_with_trimmed_text() {
        let mut d = draft();
        d.name = "  Enamel Camp Mug ".into();
        let product = d.into_product("MUG-001").unwrap();
        assert_eq!(product.sku, "MUG-001");
        assert_eq!(product.name, "Enamel Camp Mug");
        assert_eq!(product.weight_grams, 240);
    }

    #[test]
    fn each_rule_names_its_field() {
        assert_eq!(field_of(draft().into_product("mug-1")), "sku");
        assert_eq!(
            field_of(
                ProductDraft {
                    name: " ".into(),
                    ..draft()
                }
                .into_product("A")
            ),
            "name"
        );
        assert_eq!(
            field_of(
                ProductDraft {
                    name: "x".repeat(201),
                    ..draft()
                }
                .into_product("A")
            ),
            "name"
        );
        assert!(
            ProductDraft {
                name: "é".repeat(200),
                ..draft()
            }
            .into_product("A")
            .is_ok()
        );
        assert_eq!(
            field_of(
                ProductDraft {
                    description: "x".repeat(5001),
                    ..draft()
                }
                .into_product("A")
            ),
            "description"
        );
        assert_eq!(
            field_of(
                ProductDraft {
                    price: Money::new(-1, "EUR").unwrap(),
                    ..draft()
                }
                .into_product("A")
            ),
            "price"
        );
        assert!(
            ProductDraft {
                price: Money::new(0, "EUR").unwrap(),
                ..draft()
            }
            .into_product("A")
            .is_ok()
        );
        for grams in [0, -5, i64::from(u32::MAX) + 1] {
            assert_eq!(
                field_of(
                    ProductDraft {
                        weight_grams: grams,
                        ..draft()
                    }
                    .into_product("A")
                ),
                "weight_grams"
            );
        }
        for categories in [
            vec!["Camping"],
            vec![""],
            vec!["camping", "camping"],
            vec!["a"; 11],
        ] {
            let categories = categories.into_iter().map(String::from).collect();
            assert_eq!(
                field_of(
                    ProductDraft {
                        categories,
                        ..draft()
                    }
                    .into_product("A")
                ),
                "categories"
            );
        }
        for image in ["", "images/a.svg", "/a b.svg", "http://x/a.svg"] {
            assert_eq!(
                field_of(
                    ProductDraft {
                        image: image.into(),
                        ..draft()
                    }
                    .into_product("A")
                ),
                "image"
            );
        }
    }

    #[test]
    fn query_bounds() {
        assert!(ProductQuery::new(None, None, 1, 1).is_ok());
        assert!(ProductQuery::new(None, None, 1, MAX_PER_PAGE).is_ok());
        for (page, per_page) in [(0, 20), (1, 0), (1, MAX_PER_PAGE + 1)] {
            assert!(matches!(
                ProductQuery::new(None, None, page, per_page),
                Err(CatalogError::InvalidQuery(_))
            ));
        }
    }

    #[test]
    fn search_matches_every_word_in_sku_name_or_description_ignoring_case() {
        let mug = product("MUG-001", "Enamel Camp Mug", &["drinkware"]);
        let query = |text| ProductQuery::new(Some(text), None, 1, 20).unwrap();
        assert!(query("mug").matches(&mug));
        assert!(query("ENAMEL mug").matches(&mug));
        assert!(query("mug-001").matches(&mug));
        assert!(query("about").matches(&mug), "description counts");
        assert!(query("  ").matches(&mug), "blank text matches everything");
        assert!(!query("enamel kettle").matches(&mug));
    }

    #[test]
    fn category_filter_is_exact_and_ignores_case() {
        let mug = product("MUG-001", "Mug", &["drinkware", "camping"]);
        let in_category = |c| {
            ProductQuery::new(None, Some(c), 1, 20)
                .unwrap()
                .matches(&mug)
        };
        assert!(in_category("camping"));
        assert!(in_category("Camping"));
        assert!(in_category(""));
        assert!(!in_category("camp"));
        assert!(!in_category("apparel"));
    }

    #[test]
    fn pages_are_ordered_by_sku_and_count_all_matches() {
        let products: Vec<Product> = ["C-3", "A-1", "E-5", "B-2", "D-4"]
            .iter()
            .map(|sku| product(sku, "Thing", &["misc"]))
            .collect();
        let page = |page, per_page| {
            ProductQuery::new(None, None, page, per_page)
                .unwrap()
                .page_of(products.clone())
        };
        let skus = |page: ProductPage| page.products.into_iter().map(|p| p.sku).collect::<Vec<_>>();
        let first = page(1, 2);
        assert_eq!((first.total, first.page, first.per_page), (5, 1, 2));
        assert_eq!(skus(first), ["A-1", "B-2"]);
        assert_eq!(skus(page(3, 2)), ["E-5"]);
        let past_end = page(4, 2);
        assert_eq!(past_end.total, 5);
        assert!(past_end.products.is_empty());
        assert!(page(u32::MAX, MAX_PER_PAGE).products.is_empty());
    }

    #[test]
    fn price_requests_hold_one_to_a_hundred_skus() {
        assert!(matches!(
            check_price_request(&[]),
            Err(CatalogError::InvalidSkuList(_))
        ));
        assert!(check_price_request(&vec!["A".to_string(); 100]).is_ok());
        assert!(matches!(
            check_price_request(&vec!["A".to_string(); 101]),
            Err(CatalogError::InvalidSkuList(_))
        ));
    }

    #[test]
    fn prices_come_in_the_order_asked() {
        let found = [product("A-1", "a", &[]), product("B-2", "b", &[])];
        let asked = ["B-2".to_string(), "A-1".to_string(), "B-2".to_string()];
        let prices = prices_in_order(&asked, &found).unwrap();
        let skus: Vec<&str> = prices.iter().map(|p| p.sku.as_str()).collect();
        assert_eq!(skus, ["B-2", "A-1", "B-2"]);
        assert_eq!(prices[0].weight_grams, 100);
    }

    #[test]
    fn unknown_skus_are_all_named_once() {
        let found = [product("A-1", "a", &[])];
        let asked = ["X-9", "A-1", "nope", "X-9"].map(String::from);
        assert_eq!(
            prices_in_order(&asked, &found),
            Err(CatalogError::UnknownSkus(vec!["X-9".into(), "nope".into()]))
        );
    }

    #[test]
    fn the_seed_is_valid_varied_and_unique() {
        let products = seed_products().unwrap();
        assert!(
            products.len() >= 24,
            "only {} seed products",
            products.len()
        );
        let mut skus: Vec<&str> = products.iter().map(|p| p.sku.as_str()).collect();
        skus.sort();
        skus.dedup();
        assert_eq!(skus.len(), products.len(), "duplicate skus in the seed");
        let mut categories: Vec<&str> = products
            .iter()
            .flat_map(|p| p.categories.iter().map(String::as_str))
            .collect();
        categories.sort();
        categories.dedup();
        assert_eq!(categories.len(), 5, "{categories:?}");
        assert!(
            products
                .iter()
                .all(|p| (1..=3).contains(&p.categories.len()))
        );
        assert!(products.iter().all(|p| p.price.currency.as_str() == "EUR"));
        assert!(
            products
                .iter()
                .all(|p| p.image == format!("/images/{}.svg", p.sku))
        );
    }
}
