#!/usr/bin/env bash
# How far behind its Litestream replica a database is when its host dies under load:
# the recovery point of the runbook "A service lost its disk" (README).
#
# Runs `penguin serve all` (release build, WAL_AUTOCHECKPOINT=0) and `litestream
# replicate` of its four databases to a local file:// replica, drives it at full speed
# with penguin-loadgen (orders only), then after SECONDS kills penguin and litestream
# with SIGKILL at the same instant, as a host that dies. It then restores pedidos and
# pagos from the replica beside the files left on "disk" and compares them: orders and
# payments committed (every one answered is among them) against those in the restored
# copy, and the creado_en of the newest of each, the time the replica was behind.
#
#   scripts/recovery-point.sh [SECONDS] [CONNECTIONS]     # default 15 s, 64 connections
#
# Needs litestream on PATH (.ci/run puts it in target/ci-tools/litestream) and sqlite3.
# Everything listens on 127.0.0.1 and lives in a temporary folder, removed at the end.
set -euo pipefail
seconds=${1:-15}
connections=${2:-64}
root="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$root/target/ci-tools/litestream:$PATH"
for tool in litestream sqlite3; do
    command -v "$tool" >/dev/null || { echo "$tool is not on PATH" >&2; exit 1; }
done
cargo build --release --quiet --bin penguin --bin penguin-loadgen
penguin="$root/target/release/penguin"
loadgen="$root/target/release/penguin-loadgen"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/data"
{
    echo "dbs:"
    for service in productos inventario pagos pedidos; do
        printf '  - path: %s\n    replica:\n      url: file://%s\n' \
            "$work/data/$service.db" "$work/replica/$service"
    done
} >"$work/litestream.yml"

export SERVICE_TOKEN=recovery-point
WAL_AUTOCHECKPOINT=0 WORKERS=2 "$penguin" serve all --base-port 0 --data-dir "$work/data" \
    2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 100); do
    [ "$(grep -c 'listening on' "$work/serve.log" || true)" -ge 4 ] && break
    sleep 0.1
done
url() { grep "$1\] listening on" "$work/serve.log" | sed 's/.*listening on //'; }
litestream replicate -config "$work/litestream.yml" 2>"$work/litestream.log" &
pids+=($!)

"$loadgen" --products-url "$(url productos)" --inventory-url "$(url inventario)" \
    --orders-url "$(url pedidos)" --create-products 20 --mix order1=70,order3=30 \
    --connections "$connections" --duration $((seconds + 30)) --quiet >"$work/load.log" 2>&1 &
pids+=($!)
sleep "$seconds"
# The host dies: penguin and its replicator in the same instant.
disown -a
kill -9 "${pids[0]}" "${pids[1]}"
kill "${pids[2]}" 2>/dev/null || true

echo "after ${seconds} s of orders at full speed ($connections connections):"
for service in pedidos pagos; do
    litestream restore -config "$work/litestream.yml" -o "$work/restored-$service.db" \
        "$work/data/$service.db" 2>/dev/null
    query="SELECT count(*) || ' ' || max(creado_en) FROM $service"
    read -r committed newest < <(sqlite3 "$work/data/$service.db" "$query")
    read -r restored newest_restored < <(sqlite3 "$work/restored-$service.db" "$query")
    lag=$(python3 -c "
from datetime import datetime as d
f = lambda t: d.fromisoformat(t.replace('Z', '+00:00'))
print(f'{(f(\"$newest\") - f(\"$newest_restored\")).total_seconds():.3f}')")
    echo "  $service: $committed committed, $restored in the replica," \
        "$((committed - restored)) missing; the replica was $lag s behind"
done
