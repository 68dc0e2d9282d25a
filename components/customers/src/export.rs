//! The `shop:customers/customers` WIT export, over the same domain and store
//! code as the HTTP routes; generated types are converted here and go no further.

wit_bindgen::generate!({
    world: "shop:customers/service",
    path: ["../../wit/types", "../../wit/customers"],
    // The shared records (address) are generated here too; nothing else in
    // this crate provides bindings for `shop:types`.
    with: { "shop:types/types@0.1.0": generate },
});

use exports::shop::customers::customers::{self as wit, Guest};
use shop::types::types::Address as WitAddress;
use shop_shared::Address;

use crate::domain::{Customer, CustomerError, NewCustomer, SavedAddress, address_to_save, is_customer_id};
use crate::store::CustomerStore;

struct CustomersExport;

export!(CustomersExport);

impl Guest for CustomersExport {
    fn create_customer(name: String, email: String) -> Result<wit::Customer, wit::Error> {
        let new = NewCustomer::new(&name, &email)?;
        // Inside the trust boundary: a customer without a password, who cannot sign in.
        Ok(CustomerStore::open()?.create(&new, None)?.into())
    }

    fn get_customer(id: String) -> Result<wit::Customer, wit::Error> {
        if !is_customer_id(&id) {
            return Err(wit::Error::CustomerNotFound(id));
        }
        match CustomerStore::open()?.customer(&id)? {
            Some(customer) => Ok(customer.into()),
            None => Err(wit::Error::CustomerNotFound(id)),
        }
    }

    fn add_address(customer_id: String, address: WitAddress) -> Result<wit::SavedAddress, wit::Error> {
        if !is_customer_id(&customer_id) {
            return Err(wit::Error::CustomerNotFound(customer_id));
        }
        let address = address_to_save(Address {
            name: address.name,
            line1: address.line1,
            line2: address.line2,
            city: address.city,
            postal_code: address.postal_code,
            country: address.country,
        })?;
        Ok(CustomerStore::open()?.add_address(&customer_id, address)?.into())
    }
}

impl From<SavedAddress> for wit::SavedAddress {
    fn from(saved: SavedAddress) -> Self {
        let address = saved.address;
        Self {
            id: saved.id,
            address: WitAddress {
                name: address.name,
                line1: address.line1,
                line2: address.line2,
                city: address.city,
                postal_code: address.postal_code,
                country: address.country,
            },
        }
    }
}

impl From<Customer> for wit::Customer {
    fn from(customer: Customer) -> Self {
        Self {
            id: customer.id,
            name: customer.name,
            email: customer.email,
            addresses: customer.addresses.into_iter().map(Into::into).collect(),
            created_at: customer.created_at,
        }
    }
}

impl From<CustomerError> for wit::Error {
    fn from(error: CustomerError) -> Self {
        let message = error.to_string();
        match error {
            CustomerError::InvalidName(_)
            | CustomerError::InvalidEmail(_)
            | CustomerError::InvalidPassword(_) => Self::Invalid(message),
            CustomerError::InvalidAddress(error) if error.code == "unknown_country" => {
                Self::UnknownCountry(message)
            }
            CustomerError::InvalidAddress(_) => Self::Invalid(message),
            CustomerError::EmailTaken(email) => Self::EmailTaken(email),
            CustomerError::CustomerNotFound(id) => Self::CustomerNotFound(id),
            CustomerError::TooManyAddresses => Self::TooManyAddresses,
            // Sign-in is HTTP only; the WIT interface never signs anyone in.
            CustomerError::Unavailable(_) | CustomerError::InvalidCredentials | CustomerError::TooManyAttempts(_) => {
                Self::Unavailable(message)
            }
        }
    }
}
