#!/usr/bin/env bash
# The footprint of each service as deploy/ runs them: the static release binary of the
# image, four processes (one per service, as four containers or pods), two HTTP
# workers each (WORKERS=2, as compose and the StatefulSets set), pedidos calling its
# peers over loopback. Under `penguin-loadgen` (the shop's mix: reads, one- and
# three-item orders, a tenth of payments failing) it prints per service:
#   - resident memory at rest, and its peak during the run (VmHWM);
#   - CPU used, in cores (utime + stime over the run's wall time);
#   - the size of its database afterwards (with its WAL), and of its logs.
# deploy/k8s's requests and limits come from these figures.
#
#   scripts/footprint.sh          # FOOTPRINT_SECONDS (20), FOOTPRINT_CONNECTIONS (64)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FOOTPRINT_SECONDS:-20}
connections=${FOOTPRINT_CONNECTIONS:-64}
cd "$root"
target="$(uname -m)-unknown-linux-gnu"
RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --quiet --target "$target" --bin penguin --no-default-features
cargo build --release --quiet --bin penguin-loadgen
penguin="$root/target/$target/release/penguin"
loadgen="$root/target/release/penguin-loadgen"
work=$(mktemp -d)
token="footprint-$RANDOM"
services=(productos inventario pagos pedidos)
declare -A port pid
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for s in "${services[@]}"; do port[$s]=$(free_port); done
for s in "${services[@]}"; do
    mkdir -p "$work/$s"
    SERVICE_TOKEN=$token WORKERS=2 PORT=${port[$s]} DATA_DIR="$work/$s" \
        PRODUCTS_URL="http://127.0.0.1:${port[productos]}" \
        INVENTORY_URL="http://127.0.0.1:${port[inventario]}" \
        PAYMENTS_URL="http://127.0.0.1:${port[pagos]}" \
        "$penguin" serve "$s" >"$work/$s.console" 2>&1 &
    pid[$s]=$!
    pids+=("$!")
done
for s in "${services[@]}"; do
    for _ in $(seq 100); do
        "$penguin" probe --timeout 1 "http://127.0.0.1:${port[$s]}/health" >/dev/null 2>&1 && break
        sleep 0.05
    done
done

kb() { awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status"; }
ticks() { local stat fields; read -r stat <"/proc/$1/stat"; read -r -a fields <<<"${stat##*) }"; echo $((fields[11] + fields[12])); }
declare -A rest before
for s in "${services[@]}"; do rest[$s]=$(kb "${pid[$s]}" VmRSS); before[$s]=$(ticks "${pid[$s]}"); done
started=$(date +%s.%N)
"$loadgen" --products-url "http://127.0.0.1:${port[productos]}" \
    --inventory-url "http://127.0.0.1:${port[inventario]}" \
    --orders-url "http://127.0.0.1:${port[pedidos]}" --token "$token" \
    --create-products 100 --duration "$seconds" --connections "$connections" --quiet | sed 's/^/  /'
elapsed=$(echo "$(date +%s.%N) - $started" | bc)
clk_tck=$(getconf CLK_TCK)
printf '%-11s %9s %9s %7s %9s %9s\n' service "rest MB" "peak MB" cores "db MB" "logs MB"
for s in "${services[@]}"; do
    used=$(( $(ticks "${pid[$s]}") - before[$s] ))
    printf '%-11s %9.1f %9.1f %7.2f %9.1f %9.1f\n' "$s" \
        "$(echo "${rest[$s]} / 1024" | bc -l)" \
        "$(echo "$(kb "${pid[$s]}" VmHWM) / 1024" | bc -l)" \
        "$(echo "$used / $clk_tck / $elapsed" | bc -l)" \
        "$(echo "$(cat "$work/$s/$s".db* | wc -c) / 1048576" | bc -l)" \
        "$(echo "$(cat "$work/$s"/logs.log* | wc -c) / 1048576" | bc -l)"
done
echo "footprint: $connections connections for ${seconds}s on $(nproc) cores, loadgen on the same cores"
