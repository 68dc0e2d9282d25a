//! Generated bindings for the Spin platform interfaces shop-host provides.
//! Behaviour lives in the capability modules; nothing else here.

wasmtime::component::bindgen!({
    path: "wit/fermyon-spin",
    world: "fermyon:spin/host",
    imports: {
        default: tracing,
        // A write may wait for its turn (crate::sqlite) without holding a thread.
        "fermyon:spin/sqlite": async | tracing,
    },
    require_store_data_send: true,
    with: {
        "fermyon:spin/key-value.store": crate::key_value::OpenStore,
        "fermyon:spin/sqlite.connection": crate::sqlite::OpenConnection,
    },
});

pub mod sqlite3 {
    wasmtime::component::bindgen!({
        path: "wit/spin-sqlite",
        world: "spin:sqlite/host",
        imports: { default: async | tracing },
        require_store_data_send: true,
        with: {
            "spin:sqlite/sqlite.connection": crate::sqlite::OpenConnection,
        },
    });
}

/// Outbound Redis talks to a server, so its host functions are async.
pub mod redis {
    wasmtime::component::bindgen!({
        path: "wit/fermyon-spin",
        world: "fermyon:spin/redis-host",
        imports: { default: async | tracing },
        require_store_data_send: true,
        with: {
            "fermyon:spin/redis.connection": crate::redis::OpenConnection,
        },
    });
}

/// Outbound MQTT publishes to a broker: async.
pub mod mqtt {
    wasmtime::component::bindgen!({
        path: "wit/fermyon-spin",
        world: "fermyon:spin/mqtt-host",
        imports: { default: async | tracing },
        require_store_data_send: true,
        with: {
            "fermyon:spin/mqtt.connection": crate::mqtt::OpenConnection,
        },
    });
}

/// Outbound PostgreSQL (`spin:postgres@4.0.0`): async.
pub mod postgres {
    wasmtime::component::bindgen!({
        path: "wit/spin-postgres",
        world: "spin:postgres/host",
        imports: { default: async | tracing },
        require_store_data_send: true,
        with: {
            "spin:postgres/postgres.connection": crate::postgres::OpenConnection,
        },
    });
}

/// The Redis trigger's export.
pub mod redis_trigger {
    wasmtime::component::bindgen!({
        path: "wit/fermyon-spin-redis-trigger",
        world: "fermyon:spin/redis-trigger",
        exports: { default: async },
    });
}

/// The cron trigger's export (Spin's trigger-cron plugin world), from the
/// same WIT file the components are built against.
pub mod cron_trigger {
    wasmtime::component::bindgen!({
        path: "../wit/spin-cron",
        world: "fermyon:spin-cron/spin-cron",
        exports: { default: async },
    });
}

/// `wasi:otel/tracing`: components' own spans (`telemetry::guest`).
pub mod otel {
    wasmtime::component::bindgen!({
        inline: "
            package shop:host-otel;
            world otel {
                import wasi:otel/tracing@0.2.0-rc.2;
            }
        ",
        path: "../wit/wasi-otel",
        require_store_data_send: true,
    });
}
