#!/usr/bin/env bash
# Benchmark: builds release, starts `penguin serve all` on free ports with fresh
# databases (logging at info to console and file, as in normal use), and measures in
# one run, with `penguin loadgen`:
#   - time from start until all four services answer /health;
#   - GET /productos/{id}, one-item orders and three-item orders at 16 and 64 connections;
#   - resident memory of the process after the run (and its peak);
#   - the same load tool against examples/hello.rs, a bare actix-web server, as the
#     baseline every figure is also shown against.
#
#   scripts/bench.sh            # BENCH_SECONDS per measurement, default 8
#
# The load tool is `penguin loadgen` rather than wrk: orders need a fresh body and
# Idempotency-Key per request, and one tool for every row keeps the ratios honest.
# It runs on the same two cores as the server, as wrk would.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${BENCH_SECONDS:-8}
cd "$root"
cargo build --release --quiet --bin penguin --example hello
penguin="$root/target/release/penguin"
hello="$root/target/release/examples/hello"
work=$(mktemp -d)
token="bench-$RANDOM"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Start serve all and time it until the four services answer /health.
read -r base pid ready_ms < <(cd "$work" && SERVICE_TOKEN=$token RUST_LOG=info python3 - "$penguin" <<'PY'
import os, socket, subprocess, sys, time, urllib.request

def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False

base = next(b for b in range(20001, 60000, 7) if all(free(b + i) for i in range(4)))
console = open("console.log", "ab")
started = time.perf_counter()
child = subprocess.Popen([sys.argv[1], "serve", "all", "--base-port", str(base), "--data-dir", "."],
                         stdout=console, stderr=console, start_new_session=True)
waiting = set(range(4))
while waiting:
    for i in list(waiting):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{base + i}/health", timeout=1) as r:
                if r.status == 200:
                    waiting.discard(i)
        except OSError:
            pass
    if time.perf_counter() - started > 10:
        sys.exit("penguin did not start")
    time.sleep(0.0005)
print(base, child.pid, round((time.perf_counter() - started) * 1000, 1))
PY
)
pids+=("$pid")
echo "bench: serve all ready in ${ready_ms} ms (pid $pid, ports $base-$((base + 3)))"

urls=(--products-url "http://127.0.0.1:$base" --inventory-url "http://127.0.0.1:$((base + 1))"
      --orders-url "http://127.0.0.1:$((base + 3))" --token "$token")
"$penguin" loadgen "${urls[@]}" --seed 100 --duration 1 --connections 16 --mix read=1 --quiet >/dev/null

run() { # NAME CONNECTIONS ARGS...
    local name=$1 connections=$2
    shift 2
    echo "bench: $name at $connections connections"
    "$penguin" loadgen --duration "$seconds" --connections "$connections" --quiet \
        --json "$work/$name-$connections.json" "$@" | sed 's/^/  /'
}
for c in 16 64; do
    run read "$c" "${urls[@]}" --products 100 --mix read=1
    run order1 "$c" "${urls[@]}" --products 100 --mix order1=1
    run order3 "$c" "${urls[@]}" --products 100 --mix order3=1
done
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")

hello_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$hello" "127.0.0.1:$hello_port" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -fs -o /dev/null "http://127.0.0.1:$hello_port/" && break; sleep 0.02; done
for c in 16 64; do
    run hello "$c" --url "http://127.0.0.1:$hello_port/"
done

WORK=$work READY_MS=$ready_ms RSS_KB=$rss_kb PEAK_KB=$peak_kb python3 - <<'PY'
import json, os

work = os.environ["WORK"]
def load(name, c):
    report = json.load(open(f"{work}/{name}-{c}.json"))
    return next(iter(report["operations"].values()))

rows = [("GET /productos/{id}", "read"), ("one-item order", "order1"), ("three-item order", "order3"),
        ("hello baseline", "hello")]
print()
print("| measure | 16 conn: req/s | 64 conn: req/s | 64 conn: p50 / p99 ms | 64 conn: vs hello | errors |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
hello = {c: load("hello", c)["throughput"] for c in (16, 64)}
for label, name in rows:
    a, b = load(name, 16), load(name, 64)
    print(f"| {label} | {a['throughput']:,.0f} | {b['throughput']:,.0f} | {b['p50_ms']:.2f} / {b['p99_ms']:.2f} "
          f"| {b['throughput'] / hello[64]:.3f} | {a['errors'] + b['errors']} |")
print(f"| ready (all four /health) | | | {os.environ['READY_MS']} ms | | |")
print(f"| resident memory after the run | | | {int(os.environ['RSS_KB']) / 1024:.1f} MB "
      f"(peak {int(os.environ['PEAK_KB']) / 1024:.1f} MB) | | |")
PY
echo
echo "bench: files in $work"
