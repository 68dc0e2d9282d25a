//! The `shop:inventory/inventory` WIT export, over the same domain and store
//! code as the HTTP routes; generated types are converted here and go no
//! further.

wit_bindgen::generate!({
    world: "shop:inventory/service",
    path: ["../../wit/types", "../../wit/inventory"],
    // The shared records (line) are generated here too; nothing else in this
    // crate provides bindings for `shop:types`.
    with: { "shop:types/types@0.1.0": generate },
});

use exports::shop::inventory::inventory::{self as wit, Guest};
use shop::types::types::Line as WitLine;

use crate::domain::{
    Availability, InventoryError, ReservationId, ReservationRequest, ReservationView, Status,
    levels_in_order,
};
use crate::store::InventoryStore;

struct InventoryExport;

export!(InventoryExport);

impl Guest for InventoryExport {
    fn reserve(
        id: Option<String>,
        lines: Vec<WitLine>,
        ttl_seconds: u32,
    ) -> Result<wit::Reservation, wit::Error> {
        let id = match id {
            Some(id) => ReservationId::parse(&id)?,
            None => ReservationId::generate(),
        };
        let lines = lines
            .into_iter()
            .map(|line| (line.sku, i64::from(line.quantity)))
            .collect();
        let request = ReservationRequest::new(lines, Some(ttl_seconds.into()))?;
        let (_, reservation, now) = InventoryStore::open()?.reserve(&id, &request)?;
        Ok(reservation.view(now).into())
    }

    fn commit(id: String) -> Result<wit::Reservation, wit::Error> {
        let id = ReservationId::parse(&id)?;
        let (reservation, now) = InventoryStore::open()?.commit(&id)?;
        Ok(reservation.view(now).into())
    }

    fn release(id: String) -> Result<wit::Reservation, wit::Error> {
        let id = ReservationId::parse(&id)?;
        let (reservation, now) = InventoryStore::open()?.release(&id)?;
        Ok(reservation.view(now).into())
    }

    fn get_reservation(id: String) -> Result<wit::Reservation, wit::Error> {
        let id = ReservationId::parse(&id)?;
        let reservation = InventoryStore::open()?
            .reservation(&id)?
            .ok_or_else(|| InventoryError::ReservationNotFound(id.as_str().to_owned()))?;
        Ok(reservation.view(shop_shared::now_millis()).into())
    }

    fn availability(skus: Vec<String>) -> Result<Vec<wit::StockLevel>, wit::Error> {
        let found = InventoryStore::open()?.availability(&skus)?;
        Ok(levels_in_order(&skus, found)?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

impl From<ReservationView> for wit::Reservation {
    fn from(view: ReservationView) -> Self {
        Self {
            id: view.id,
            status: match view.status {
                Status::Held => wit::ReservationStatus::Held,
                Status::Expired => wit::ReservationStatus::Expired,
                Status::Committed => wit::ReservationStatus::Committed,
                Status::Released => wit::ReservationStatus::Released,
            },
            lines: view
                .lines
                .into_iter()
                .map(|line| WitLine {
                    sku: line.sku,
                    quantity: line.quantity,
                })
                .collect(),
            created_at: view.created_at,
            expires_at: view.expires_at,
        }
    }
}

impl From<Availability> for wit::StockLevel {
    fn from(level: Availability) -> Self {
        Self {
            sku: level.sku,
            on_hand: level.on_hand,
            reserved: level.reserved,
            available: level.available,
        }
    }
}

impl From<InventoryError> for wit::Error {
    fn from(error: InventoryError) -> Self {
        let message = error.to_string();
        match error {
            InventoryError::UnknownSkus(skus) => Self::UnknownSku(skus),
            InventoryError::InsufficientStock(shortages) => Self::InsufficientStock(
                shortages
                    .into_iter()
                    .map(|s| wit::Shortage {
                        sku: s.sku,
                        requested: s.requested,
                        available: s.available,
                    })
                    .collect(),
            ),
            InventoryError::ReservationNotFound(_) => Self::NotFound(message),
            InventoryError::ReservationConflict(_) => Self::Conflict(message),
            InventoryError::ReservationExpired { .. } => Self::Expired(message),
            InventoryError::ReservationReleased(_) | InventoryError::ReservationCommitted(_) => {
                Self::InvalidState(message)
            }
            InventoryError::Unavailable(_) => Self::Unavailable(message),
            InventoryError::InvalidLines(_)
            | InventoryError::InvalidQuantity(_)
            | InventoryError::InvalidTtl(_)
            | InventoryError::InvalidStock(_)
            | InventoryError::InvalidSku(_)
            | InventoryError::InvalidReservationId(_) => Self::Invalid(message),
        }
    }
}
