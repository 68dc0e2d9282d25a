# usage: perf script -i OUT.data | python3 classify.py: the share of samples in each phase of a checkout (docs/performance.md, "Profile of one checkout")
import sys, re, collections
# First match wins, scanning a sample's stack from the leaf up for each rule in order.
RULES = [
    ("events (broker, Redis trigger, event consumers)", re.compile(r"inbound-redis#handle-message|shop_host::redis|outbox|publish_events|deliver_due")),
    ("journaling (checkout's saga journal, its SQL included)", re.compile(r"SqlJournal|CheckoutStore|checkout::store")),
    ("SQLite (other queries)", re.compile(r"sqlite3|shop_host::sqlite|rusqlite")),
    ("JSON (serde_json, in guests and host)", re.compile(r"serde_json")),
    ("instantiation and memory reset", re.compile(r"instantiate|InstancePre|decommit|madvise|new_store|new_component_store|Store<.*>::new|allocate_module|PoolingInstanceAllocator|get_table_with_lazy_init")),
    ("component-dependency calls (composition)", re.compile(r"shop_host::composition|func_new|Func::call|lift|lower|typed_func")),
    ("guest code (saga logic, other)", re.compile(r"wasm\[|array_to_wasm|checkout::|wasi:http/incoming-handler|spin_executor")),
    ("HTTP (hyper, wasi-http, sockets)", re.compile(r"hyper|wasmtime_wasi_http|tcp_|sock_|inet_")),
    ("threads: wakeups, futex, scheduling", re.compile(r"futex|schedule|Condvar|park|block_in_place|try_to_wake_up")),
]
counts = collections.Counter(); total = 0; stack = []
def flush():
    global total
    if not stack: return
    total += 1
    for name, rx in RULES:
        if any(rx.search(f) for f in stack):
            counts[name] += 1; return
    counts["other (allocator, kernel, runtime)"] += 1
for line in sys.stdin:
    if not line.strip():
        flush(); stack = []; continue
    if line[0] in " \t":
        parts = line.strip().split(" ", 1)
        if len(parts) == 2: stack.append(parts[1])
    else:
        flush(); stack = []
flush()
for name, n in counts.most_common():
    print(f"| {name} | {100*n/total:.1f} % |")
print(f"| samples | {total} |")
