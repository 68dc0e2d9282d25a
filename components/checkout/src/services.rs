//! The services checkout calls, through the WIT interfaces it imports.
//! spin.toml decides which component satisfies each import (for example
//! `tax` or `tax-flat` for `shop:tax/tax`), so swapping one needs no rebuild
//! of checkout. Generated types and the services' error variants are turned
//! into checkout's own types and answers here, and go no further.

wit_bindgen::generate!({
    inline: "
        package shop:checkout-imports;
        world checkout {
            import shop:cart/cart@0.1.0;
            import shop:catalog/catalog@0.1.0;
            import shop:customers/customers@0.1.0;
            import shop:shipping/shipping@0.1.0;
            import shop:tax/tax@0.1.0;
            import shop:inventory/inventory@0.1.0;
            import shop:payment/payment@0.1.0;
            import shop:orders/orders@0.1.0;
        }
    ",
    path: [
        "../../wit/types",
        "../../wit/cart",
        "../../wit/catalog",
        "../../wit/customers",
        "../../wit/shipping",
        "../../wit/tax",
        "../../wit/inventory",
        "../../wit/payment",
        "../../wit/orders",
    ],
    with: {
        "shop:types/types@0.1.0": generate,
        "shop:cart/cart@0.1.0": generate,
        "shop:catalog/catalog@0.1.0": generate,
        "shop:customers/customers@0.1.0": generate,
        "shop:shipping/shipping@0.1.0": generate,
        "shop:tax/tax@0.1.0": generate,
        "shop:inventory/inventory@0.1.0": generate,
        "shop:payment/payment@0.1.0": generate,
        "shop:orders/orders@0.1.0": generate,
    },
});

use shop::types::types::{Address as WitAddress, Line as WitLine, Money as WitMoney};
use shop::{cart, catalog, customers, inventory, orders, payment, shipping, tax};
use shop_shared::{ApiError, Money};

use crate::domain::{Card, Speed, unknown_skus};
use crate::saga::{CatalogPrice, NewOrder, Services};

/// The services as spin.toml wired them.
pub struct Wired;

impl Services for Wired {
    fn check_customer(&self, customer_id: &str) -> Result<(), ApiError> {
        use customers::customers::Error as E;
        match customers::customers::get_customer(customer_id) {
            Ok(_) => Ok(()),
            Err(E::CustomerNotFound(_) | E::Invalid(_)) => Err(ApiError::unprocessable(
                "unknown_customer",
                format!("no customer has the id {customer_id:?}"),
            )
            .with("customer_id", customer_id)),
            Err(other) => Err(unavailable("customers", other)),
        }
    }

    fn load_cart(&self, cart_id: &str) -> Result<Vec<(String, u32)>, ApiError> {
        use cart::cart::Error as E;
        match cart::cart::get_cart(cart_id) {
            Ok(cart) => Ok(cart.lines.into_iter().map(|line| (line.sku, line.quantity)).collect()),
            Err(E::Invalid(message)) => Err(crate::domain::invalid_field("cart_id", message)),
            Err(other) => Err(unavailable("cart", other)),
        }
    }

    fn prices(&self, skus: &[String]) -> Result<Vec<CatalogPrice>, ApiError> {
        use catalog::catalog::Error as E;
        match catalog::catalog::prices(skus) {
            Ok(prices) => prices
                .into_iter()
                .map(|p| Ok((p.sku, money(p.price)?, p.weight_grams)))
                .collect(),
            Err(E::UnknownSku(skus)) => Err(unknown_skus(skus.split(',').map(str::to_owned).collect())),
            Err(other) => Err(unavailable("catalog", other)),
        }
    }

    fn quote_shipping(&self, items: &[(u32, u32)], country: &str, speed: Speed) -> Result<Money, ApiError> {
        use shipping::shipping::Error as E;
        let items: Vec<shipping::shipping::ParcelItem> = items
            .iter()
            .map(|(weight_grams, quantity)| shipping::shipping::ParcelItem {
                weight_grams: *weight_grams,
                quantity: *quantity,
            })
            .collect();
        let speed = match speed {
            Speed::Standard => shipping::shipping::Speed::Standard,
            Speed::Express => shipping::shipping::Speed::Express,
        };
        match shipping::shipping::quote(&items, country, speed) {
            Ok(quote) => money(quote.cost),
            Err(E::UnknownCountry(_)) => Err(unknown_country(country)),
            Err(E::TooHeavy(grams)) => Err(ApiError::unprocessable(
                "too_heavy",
                format!("the order weighs {grams} g, more than the shop can ship in one parcel"),
            )
            .with("weight_grams", grams)),
            Err(E::Invalid(message)) => Err(ApiError::unprocessable("cannot_ship", message)),
        }
    }

    fn quote_tax(&self, country: &str, goods: &Money, shipping: &Money) -> Result<Money, ApiError> {
        use tax::tax::Error as E;
        match tax::tax::quote(country, &wit_money(goods), &wit_money(shipping)) {
            Ok(quote) => money(quote.total_tax),
            Err(E::UnknownCountry(_)) => Err(unknown_country(country)),
            Err(E::Invalid(message)) => {
                Err(ApiError::unprocessable("invalid_address", message).with("field", "country"))
            }
            Err(other) => Err(unavailable("tax", other)),
        }
    }

    fn reserve(&self, reservation_id: &str, lines: &[(String, u32)], ttl_seconds: u32) -> Result<(), ApiError> {
        use inventory::inventory::Error as E;
        let lines: Vec<WitLine> =
            lines.iter().map(|(sku, quantity)| WitLine { sku: sku.clone(), quantity: *quantity }).collect();
        match inventory::inventory::reserve(Some(reservation_id), &lines, ttl_seconds) {
            Ok(_) => Ok(()),
            Err(E::InsufficientStock(shortages)) => {
                let skus: Vec<String> = shortages.iter().map(|s| s.sku.clone()).collect();
                let detail: Vec<serde_json::Value> = shortages
                    .iter()
                    .map(|s| serde_json::json!({"sku": s.sku, "requested": s.requested, "available": s.available}))
                    .collect();
                Err(out_of_stock(skus).with("shortages", detail))
            }
            Err(E::UnknownSku(skus)) => Err(out_of_stock(skus)),
            Err(E::Invalid(message)) => Err(ApiError::unprocessable("invalid_order", message)),
            Err(other) => Err(unavailable("inventory", other)),
        }
    }

    fn release(&self, reservation_id: &str) -> Result<(), ApiError> {
        use inventory::inventory::Error as E;
        match inventory::inventory::release(reservation_id) {
            // Never made (the reserve failed or never ran): nothing to undo.
            Ok(_) | Err(E::NotFound(_)) => Ok(()),
            Err(E::InvalidState(message)) => {
                eprintln!("releasing reservation {reservation_id}: {message}");
                Ok(())
            }
            Err(other) => Err(unavailable("inventory", other)),
        }
    }

    fn authorize(&self, idempotency_key: &str, amount: &Money, card: &Card) -> Result<String, ApiError> {
        use payment::payment::Error as E;
        let wit_card = payment::payment::Card {
            number: card.number.clone(),
            exp_month: u8::try_from(card.exp_month).unwrap_or(0),
            exp_year: u16::try_from(card.exp_year).unwrap_or(0),
            cvc: card.cvc.clone(),
        };
        match payment::payment::authorize(idempotency_key, &wit_money(amount), &wit_card) {
            Ok(authorization) => Ok(authorization.id),
            Err(E::CardDeclined(_)) => Err(ApiError::new(402, "card_declined", "the card was declined")),
            Err(E::InsufficientFunds(_)) => Err(ApiError::new(
                402,
                "insufficient_funds",
                "the card was declined for insufficient funds",
            )),
            Err(E::ProcessorError(_)) => Err(ApiError::unavailable(
                "payment_processor_error",
                "the payment processor failed; nothing was charged, try again",
            )),
            Err(E::InvalidCard(message)) => {
                // The payment service's message starts with the field it
                // refused when that is the expiry (`exp_month must be ...`,
                // `exp_year must be ...`); otherwise it is the number.
                let field = ["exp_month", "exp_year"]
                    .into_iter()
                    .find(|f| message.starts_with(f))
                    .map_or("card.number", |f| if f == "exp_month" { "card.exp_month" } else { "card.exp_year" });
                Err(ApiError::unprocessable("invalid_card", message).with("field", field))
            }
            Err(E::CardExpired(message)) => Err(ApiError::new(402, "card_expired", message)),
            Err(E::InvalidCvc(message)) => {
                Err(ApiError::unprocessable("invalid_card", message).with("field", "card.cvc"))
            }
            Err(other) => Err(unavailable("payment", other)),
        }
    }

    fn void(&self, idempotency_key: &str, authorization_id: &str) -> Result<(), ApiError> {
        use payment::payment::Error as E;
        match payment::payment::void(idempotency_key, authorization_id) {
            Ok(_) | Err(E::NotFound(_)) => Ok(()),
            Err(E::IllegalTransition(message)) => {
                eprintln!("voiding authorization {authorization_id}: {message}");
                Ok(())
            }
            Err(other) => Err(unavailable("payment", other)),
        }
    }

    fn find_authorization(&self, idempotency_key: &str) -> Result<Option<String>, ApiError> {
        match payment::payment::find_by_key(idempotency_key) {
            Ok(found) => Ok(found.map(|payment| payment.id)),
            Err(error) => Err(unavailable("payment", error)),
        }
    }

    fn create_order(&self, order: &NewOrder) -> Result<(), ApiError> {
        use orders::orders::Error as E;
        let currency = order.totals.currency.clone();
        let request = &order.request;
        let new_order = orders::orders::NewOrder {
            id: Some(order.id.clone()),
            customer_id: request.customer_id.clone(),
            email: request.email.clone(),
            lines: order
                .lines
                .iter()
                .map(|line| orders::orders::OrderLine {
                    sku: line.sku.clone(),
                    name: None,
                    quantity: line.quantity,
                    unit_price: wit_money(&line.unit_price),
                    line_total: wit_money(&line.line_total),
                })
                .collect(),
            totals: orders::orders::Totals {
                items: order.totals.items,
                shipping: order.totals.shipping,
                tax: order.totals.tax,
                grand_total: order.totals.grand_total,
                currency,
            },
            address: WitAddress {
                name: request.address.name.clone(),
                line1: request.address.line1.clone(),
                line2: request.address.line2.clone(),
                city: request.address.city.clone(),
                postal_code: request.address.postal_code.clone(),
                country: request.address.country.clone(),
            },
            shipping: match request.shipping {
                Speed::Standard => orders::orders::ShippingSpeed::Standard,
                Speed::Express => orders::orders::ShippingSpeed::Express,
            },
            payment_authorization_id: order.authorization_id.clone(),
            reservation_id: order.reservation_id.clone(),
            checkout_id: Some(order.checkout_id.clone()),
            access_token_digest: request.access_token_digest.clone(),
        };
        match orders::orders::create_order(&new_order) {
            Ok(_) => Ok(()),
            Err(E::Invalid(message)) => Err(ApiError::unprocessable("invalid_order", message)),
            Err(other) => Err(unavailable("orders", other)),
        }
    }

    fn order_exists(&self, order_id: &str) -> Result<bool, ApiError> {
        use orders::orders::Error as E;
        match orders::orders::get_order(order_id) {
            Ok(_) => Ok(true),
            Err(E::NotFound(_)) => Ok(false),
            Err(other) => Err(unavailable("orders", other)),
        }
    }

    fn fail_order(&self, order_id: &str, reason: &str) -> Result<(), ApiError> {
        use orders::orders::Error as E;
        match orders::orders::set_status(order_id, orders::orders::Status::Failed, Some(reason)) {
            Ok(_) | Err(E::NotFound(_)) => Ok(()),
            Err(E::IllegalTransition(message)) => {
                eprintln!("failing order {order_id}: {message}");
                Ok(())
            }
            Err(other) => Err(unavailable("orders", other)),
        }
    }

    fn empty_cart(&self, cart_id: &str) -> Result<(), ApiError> {
        cart::cart::empty_cart(cart_id).map_err(|e| unavailable("cart", e))
    }
}

fn out_of_stock(skus: Vec<String>) -> ApiError {
    ApiError::conflict("out_of_stock", format!("not enough stock of {}", skus.join(", "))).with("skus", skus)
}

fn unknown_country(country: &str) -> ApiError {
    ApiError::unprocessable("unknown_country", format!("the shop cannot deliver to {country:?}"))
        .with("country", country)
}

/// 503 naming the service; the detail goes to the log.
fn unavailable(service: &'static str, error: impl std::fmt::Debug) -> ApiError {
    eprintln!("checkout: {service} failed: {error:?}");
    let code = match service {
        "customers" => "customers_unavailable",
        "cart" => "cart_unavailable",
        "catalog" => "catalog_unavailable",
        "tax" => "tax_unavailable",
        "inventory" => "inventory_unavailable",
        "payment" => "payment_unavailable",
        "orders" => "orders_unavailable",
        _ => "service_unavailable",
    };
    ApiError::unavailable(code, format!("the {service} service failed; try again"))
}

fn money(money: WitMoney) -> Result<Money, ApiError> {
    Money::new(money.amount, &money.currency).map_err(|e| {
        eprintln!("checkout: a service answered with bad money: {e}");
        ApiError::unavailable("pricing_unavailable", "a service answered with an amount in an invalid currency")
    })
}

fn wit_money(money: &Money) -> WitMoney {
    WitMoney { amount: money.amount, currency: money.currency.to_string() }
}
