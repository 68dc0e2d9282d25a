//! The cron trigger's export, for a service whose work must happen without
//! traffic (re-publishing what its consumers have not acknowledged,
//! recovering stale checkouts). spin.toml runs it with `[[trigger.cron]]`,
//! on Spin through the trigger-cron plugin and on shop-host natively; the
//! contract is `wit/spin-cron/cron.wit`.
//!
//! ```ignore
//! fn tick(timestamp: u64) -> Result<(), String> { … }
//! shop_shared::cron_component!(tick);
//! ```
//!
//! A macro rather than a function: the export's bindings must be generated
//! in the component's own crate, and only components that export it may
//! carry its world (a library that declared the export would make every
//! component that links it promise a function it does not have).

/// Exports `handle-cron-event`, calling `$tick` with the tick's time (Unix
/// seconds); an `Err` is reported to the trigger, which logs it.
#[macro_export]
macro_rules! cron_component {
    ($tick:path) => {
        #[cfg(target_arch = "wasm32")]
        mod cron_export {
            ::wit_bindgen::generate!({
                path: "../../wit/spin-cron",
                world: "fermyon:spin-cron/spin-cron",
            });

            // The world's `use` puts `Metadata` and `Error` at this module's root.
            struct Tick;

            export!(Tick);

            impl Guest for Tick {
                fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
                    $tick(metadata.timestamp).map_err(Error::Other)
                }
            }
        }
    };
}
