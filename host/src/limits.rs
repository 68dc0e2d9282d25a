//! Resource limits: what one component instance may take before it fails
//! alone, with the host and every other request unaffected.
//!
//! - memory: each linear memory is capped (`--max-instance-memory`); growth
//!   past it fails inside the guest, which traps;
//! - time: a request's guest code runs at most `--request-timeout`; an epoch
//!   ticker interrupts it then. Until then it yields to the scheduler every
//!   tick, so a guest stuck in a loop cannot starve other requests;
//! - concurrency: the pooling allocator holds a fixed number of instance
//!   slots; when they are all busy, a request is answered 503 at once.

use std::time::{Duration, Instant};

use anyhow::Result;
use wasmtime::{
    Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    StoreLimits, StoreLimitsBuilder, UpdateDeadline,
};

/// How often the epoch advances; the granularity of timeouts and yields.
const EPOCH_TICK: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_instance_memory: usize,
    pub request_timeout: Duration,
    /// Instances alive at once, across all components.
    pub max_instances: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_instance_memory: 128 << 20,
            request_timeout: Duration::from_secs(30),
            max_instances: 1000,
        }
    }
}

impl Limits {
    /// The engine every component of the app is compiled and run with.
    pub fn engine(&self) -> Result<Engine> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(self.max_instances);
        // A component holds a few core instances (its module plus small
        // shims), each with at most a memory and a table.
        pool.total_core_instances(self.max_instances * 4);
        pool.total_memories(self.max_instances * 2);
        pool.total_tables(self.max_instances * 4);
        pool.total_stacks(self.max_instances);
        pool.max_memory_size(self.max_instance_memory);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // Compiled code is cached on disk, so a restart does not recompile
        // unchanged components.
        match Cache::new(CacheConfig::new()) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(e) => tracing::warn!("compilation cache disabled: {e}"),
        }
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let ticker = engine.weak();
        std::thread::Builder::new().name("epoch".into()).spawn(move || {
            while let Some(engine) = ticker.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;
        Ok(engine)
    }

    pub fn store_limits(&self) -> StoreLimits {
        StoreLimitsBuilder::new()
            .memory_size(self.max_instance_memory)
            .trap_on_grow_failure(false)
            .build()
    }

    /// Arms the time limit on a fresh store.
    pub fn arm<T: 'static>(&self, store: &mut Store<T>) {
        let started = Instant::now();
        let timeout = self.request_timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if started.elapsed() >= timeout {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
    }
}
