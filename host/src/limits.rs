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
//!
//! Client requests take turns to run ([`Admission`]); how the host's own
//! heap grows and shrinks is set up in `process`.
//!
//! A component may have its own memory, time and concurrency limits in
//! `[component.<id>.tool.shop-host]` ([`Limits::for_component`]); the flags
//! are the defaults. An instance over one fails its own request only, and
//! the host logs which limit it was.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder, UpdateDeadline,
};

use crate::manifest::ComponentLimits;

/// How often the epoch advances; the granularity of timeouts and yields.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Bytes of a freed instance slot's memory reset in place and kept resident.
const KEEP_RESIDENT: usize = 1 << 20;
/// Freed instance slots kept warm for reuse.
const WARM_SLOTS: u32 = 8;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_instance_memory: usize,
    pub request_timeout: Duration,
    /// Instances alive at once, across all components.
    pub max_instances: u32,
    /// Client requests whose guest code runs at once ([`Admission`]); 0: no bound.
    pub running_requests: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_instance_memory: 128 << 20,
            request_timeout: Duration::from_secs(30),
            max_instances: 1000,
            running_requests: default_running_requests(),
        }
    }
}

impl Limits {
    /// The engine every component of the app is compiled and run with.
    pub fn engine(&self) -> Result<Engine> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        // What `spin registry push` composes uses the component model's
        // async built-ins (`context.get`), which Spin 4 runs too.
        config.wasm_component_model_async(true);
        config.epoch_interruption(true);
        // `SHOP_PROFILE=perfmap` (or `jitdump`): `perf` names the guests'
        // functions instead of showing anonymous JIT addresses
        // (docs/performance.md, "Profiling").
        match std::env::var("SHOP_PROFILE").as_deref() {
            Ok("perfmap") => {
                config.profiler(wasmtime::ProfilingStrategy::PerfMap);
            }
            Ok("jitdump") => {
                config.profiler(wasmtime::ProfilingStrategy::JitDump);
            }
            Ok(other) if !other.is_empty() => anyhow::bail!("SHOP_PROFILE={other}: expected `perfmap` or `jitdump`"),
            _ => {}
        }
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(self.max_instances);
        // A component holds a few core instances (its module plus small
        // shims), each with at most a memory and a table.
        pool.total_core_instances(self.max_instances * 4);
        pool.total_memories(self.max_instances * 2);
        pool.total_tables(self.max_instances * 4);
        pool.total_stacks(self.max_instances);
        pool.max_memory_size(self.max_instance_memory);
        // Every request gets a fresh instance, so resetting a slot is on the
        // path of every request. By default that is an madvise of the whole
        // memory, a TLB shoot-down on every core and page faults on the next
        // use: a fifth of a checkout's CPU time. Instead the pages an
        // instance touched (found with PAGEMAP_SCAN where the kernel has it,
        // 6.7+) are zeroed in place, up to this much per slot, and stay
        // resident; fewer warm slots bound what that keeps.
        pool.linear_memory_keep_resident(KEEP_RESIDENT);
        pool.table_keep_resident(KEEP_RESIDENT / 16);
        pool.pagemap_scan(wasmtime::Enabled::Auto);
        pool.max_unused_warm_slots(WARM_SLOTS);
        pool.decommit_batch_size(8);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
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

    /// These limits with a component's own ones in place of the defaults.
    pub fn for_component(&self, own: &ComponentLimits) -> Limits {
        Limits {
            max_instance_memory: own.max_instance_memory_mib.map_or(self.max_instance_memory, |mib| mib << 20),
            request_timeout: own.request_timeout_secs.map_or(self.request_timeout, Duration::from_secs),
            max_instances: self.max_instances,
            running_requests: self.running_requests,
        }
    }

    pub fn store_limits(&self) -> MemoryLimit {
        MemoryLimit {
            inner: StoreLimitsBuilder::new().memory_size(self.max_instance_memory).trap_on_grow_failure(false).build(),
            max: self.max_instance_memory,
            refused: Arc::new(AtomicBool::new(false)),
        }
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

/// A store's memory cap that remembers refusing a growth, so that the
/// instance's failure can be reported as the limit it hit.
pub struct MemoryLimit {
    inner: StoreLimits,
    max: usize,
    refused: Arc<AtomicBool>,
}

impl MemoryLimit {
    /// Set once a growth past the cap was refused.
    pub fn refused(&self) -> Arc<AtomicBool> {
        self.refused.clone()
    }
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.refused.store(true, Ordering::Relaxed);
        }
        self.inner.memory_growing(current, desired, maximum)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }
}

/// Four per core: enough to keep the cores busy while some requests wait on
/// SQLite's write turn or on Redis, few enough that a burst does not run
/// every request at once.
pub fn default_running_requests() -> usize {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Client requests take turns to run guest code: at most
/// [`Limits::running_requests`] at once, the others waiting in the order they
/// came. On a machine of two cores, 64 concurrent checkouts all running at
/// once (each with its dependencies' instances) only added instances alive,
/// memory and thread switches: the bench measured throughput falling to
/// 0.6 of its peak and resident memory growing with them. A request that
/// waits longer than its time limit is answered 503. Service chaining,
/// dependency calls, Redis and cron runs take no turn, so a request that
/// holds one never waits for another.
pub struct Admission {
    turns: Option<Arc<tokio::sync::Semaphore>>,
    wait: Duration,
}

impl Admission {
    pub fn new(limits: &Limits) -> Admission {
        let turns = (limits.running_requests > 0).then(|| Arc::new(tokio::sync::Semaphore::new(limits.running_requests)));
        Admission { turns, wait: limits.request_timeout }
    }

    /// Waits for a turn; `Err` when none came within the wait. `Ok(None)`
    /// when there is no bound.
    pub async fn turn(&self) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, Duration> {
        let Some(turns) = &self.turns else { return Ok(None) };
        match tokio::time::timeout(self.wait, turns.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(self.wait),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(running: usize, wait_ms: u64) -> Admission {
        Admission::new(&Limits { running_requests: running, request_timeout: Duration::from_millis(wait_ms), ..Limits::default() })
    }

    #[tokio::test]
    async fn requests_over_the_bound_wait_for_a_turn_and_get_it_when_one_ends() {
        let admission = admission(2, 5_000);
        let first = admission.turn().await.unwrap();
        let _second = admission.turn().await.unwrap();
        let third = tokio::spawn(async move { admission.turn().await.map(|t| t.is_some()) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!third.is_finished(), "a third request waits while two run");
        drop(first);
        assert_eq!(third.await.unwrap(), Ok(true));
    }

    #[tokio::test]
    async fn a_request_that_waits_longer_than_its_time_limit_gets_no_turn() {
        let admission = admission(1, 50);
        let _running = admission.turn().await.unwrap();
        assert_eq!(admission.turn().await.err(), Some(Duration::from_millis(50)));
    }

    #[tokio::test]
    async fn no_bound_means_no_wait() {
        let admission = admission(0, 50);
        for _ in 0..100 {
            assert!(admission.turn().await.unwrap().is_none());
        }
    }
}
