#!/bin/bash
# usage: xtask/profile/profile.sh OUT_PREFIX [CLIENTS] [SECONDS]
# shop-host (built: cargo xtask build) on spin.toml under a checkout load from
# load.py; perf records it (DWARF call graphs); OUT.load has the load figures,
# OUT.top the hottest symbols; then: perf script -i OUT.data | python3 classify.py
set -e
out=$1; clients=${2:-4}; secs=${3:-10}
root=$(cd "$(dirname "$0")/../.." && pwd); host=${SHOP_HOST_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/shop-host}
st=$(mktemp -d); sed "s#path = \".spin/#path = \"$st/#" $root/runtime-config.toml > $st/rc.toml
cd $root
SHOP_PROFILE=perfmap SHOP_LOG=warn $host up --from spin.toml --listen 127.0.0.1:0 --state-dir $st --runtime-config-file $st/rc.toml --variable admin_token=bench --experimental-wasi-otel > $st/out 2> $st/err &
pid=$!
for i in $(seq 100); do grep -q Serving $st/out 2>/dev/null && break; sleep 0.2; done
url=$(grep Serving $st/out | awk '{print $2}'); port=${url##*:}; port=${port%/}
for i in $(seq 50); do sku=$(curl -s "http://127.0.0.1:$port/api/products?per_page=1" | grep -o "\"sku\":\"[^\"]*" | head -1 | cut -d\" -f4); [ -n "$sku" ] && break; sleep 0.3; done; echo "port $port sku $sku"
curl -s -X PUT -H 'authorization: Bearer bench' -H 'content-type: application/json' -d '{"on_hand":10000000}' http://127.0.0.1:$port/api/inventory/$sku >/dev/null
python3 $root/xtask/profile/load.py 127.0.0.1 $port $clients 3 $sku   # warm-up
python3 $root/xtask/profile/load.py 127.0.0.1 $port $clients $((secs+2)) $sku > $out.load &
lp=$!
sleep 1
perf record -F 499 --call-graph dwarf,32768 -p $pid -o $out.data -- sleep $secs 2> /dev/null
wait $lp
cat $out.load
grep -c . $st/err || true
kill $pid; wait $pid 2>/dev/null || true
perf report -i $out.data --no-children --sort sym --stdio 2>/dev/null | grep -v "^#" | grep "%" | head -60 > $out.top
rm -rf $st
