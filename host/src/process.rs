//! The host process's own set-up, before anything runs: how its heap grows
//! and gives memory back, and what an error value costs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Instances started since the process began; the idle watch compares it
/// between looks.
static STARTED: AtomicU64 = AtomicU64::new(0);
/// How long nothing must start before free heap memory is given back.
const QUIET: Duration = Duration::from_secs(1);

/// Called first in `main`, while no other thread exists.
pub fn prepare() {
    bound_heap_arenas();
    skip_error_backtraces();
}

/// glibc gives each thread that finds the heap busy an arena of its own (up
/// to eight per core), and memory freed stays in the arena it came from: after
/// a burst of concurrent instances the host kept it all. With two arenas the
/// bench measured 283 MiB resident after 64 concurrent checkouts instead of
/// 497 MiB, at the same checkouts per second.
fn bound_heap_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// wasmtime unwinds the idle worker fiber of every instance it drops with
/// an error value, and with `RUST_BACKTRACE` set each such error captured a
/// backtrace of the host: 8 % of the CPU of a bare request in the profile.
/// Errors here are reported by their messages (and a trap by its wasm
/// backtrace), so unless `RUST_LIB_BACKTRACE` asks for them, errors capture
/// none; panics still print theirs as `RUST_BACKTRACE` says.
fn skip_error_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: called first in main, before any other thread exists.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}

/// An instance is starting: the host is not idle.
pub fn instance_started() {
    STARTED.fetch_add(1, Ordering::Relaxed);
}

/// Gives the heap's free memory back to the system once the host has been
/// idle for [`QUIET`] after being busy. glibc returns only the free top of
/// an arena by itself; what a burst of requests freed in the middle (SQLite
/// pages, request buffers, instance state) stays resident until
/// `malloc_trim` releases it. Trimming while busy would only be undone by
/// the next request, so it waits for a quiet moment, once per busy spell.
pub fn return_idle_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let spawned = std::thread::Builder::new().name("heap-trim".into()).spawn(|| {
        let mut seen = STARTED.load(Ordering::Relaxed);
        // Loading the app (compiling, reading the manifest) was busy too.
        let mut busy = true;
        loop {
            std::thread::sleep(QUIET);
            let now = STARTED.load(Ordering::Relaxed);
            if now != seen {
                seen = now;
                busy = true;
            } else if busy {
                busy = false;
                // SAFETY: malloc_trim only returns free pages of the heap to
                // the system; it is safe to call from any thread.
                unsafe { libc::malloc_trim(0) };
            }
        }
    });
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if let Err(e) = spawned {
        tracing::warn!("free memory will not be returned when idle: {e}");
    }
}
