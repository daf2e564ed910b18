#!/usr/bin/env bash
# Benchmark: builds release, starts `penguin serve all` on free ports with fresh
# databases (logging at info to console and file, as in normal use), and measures in
# one run, with `penguin-loadgen`:
#   - time from start until all four services answer /health;
#   - GET /productos/{id}, one-item orders and three-item orders at 16 and 64 connections;
#   - resident memory of the process after the run (and its peak);
#   - the same load tool against benches/hello.rs, a bare actix-web server, as the
#     baseline every figure is also shown against;
#   - and against benches/chain.rs, the same bare server making the four chained
#     peer calls of a one-item order (to a second hello), the ceiling orders are
#     held against;
#   - one-item orders at 64 connections on three fresh serve alls: traces off, spans
#     exported to a receiver that takes them (scripts/otlp_sink.py, on the same
#     cores), and exported to a collector that is down: the cost of tracing, measured
#     turn about in rounds;
#   - for every row, the CPU time the serving process(es) spent per request (utime +
#     stime from /proc/<pid>/stat, read before and after the measurement): serve all
#     for penguin's rows, hello for hello's, chain and its peer for chain's.
# Every ratio comes from this one run; the performance targets are checked at 64
# connections.
#
#   scripts/bench.sh            # BENCH_SECONDS per measurement, default 8
#   BENCH_KEEP=1 scripts/bench.sh   # keep the temporary folder (raw JSON, CPU ticks,
#                                   # serve all's console log: hundreds of MB)
#
# The load tool is `penguin-loadgen` rather than wrk: orders need a fresh body and
# Idempotency-Key per request, and one tool for every row keeps the ratios honest.
# It runs on the same two cores as the server, as wrk would.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${BENCH_SECONDS:-8}
cd "$root"
# Ten measurements, the tracing rounds and the warm-ups, besides the build and the starts.
echo "bench: about $((10 * seconds + ${BENCH_TRACE_ROUNDS:-3} * 3 * (seconds / 2) + 4 + 15)) s of load and starts (BENCH_SECONDS=$seconds), after a release build (minutes if none is built yet)"
cargo build --release --quiet --bin penguin --bin penguin-loadgen --example hello --example chain
penguin="$root/target/release/penguin"
loadgen="$root/target/release/penguin-loadgen"
hello="$root/target/release/examples/hello"
chain="$root/target/release/examples/chain"
work=$(mktemp -d)
token="bench-$RANDOM"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [[ -z ${BENCH_KEEP:-} ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT

# Start serve all and time it until the four services answer /health.
read -r base pid ready_ms < <(cd "$work" && SERVICE_TOKEN=$token RUST_LOG=info python3 "$root/scripts/serve_all.py" "$penguin")
pids+=("$pid")
echo "bench: serve all ready in ${ready_ms} ms (pid $pid, ports $base-$((base + 3)))"

urls=(--products-url "http://127.0.0.1:$base" --inventory-url "http://127.0.0.1:$((base + 1))"
      --orders-url "http://127.0.0.1:$((base + 3))" --token "$token")
"$loadgen" "${urls[@]}" --create-products 100 --duration 1 --connections 16 --mix read=1 --quiet >/dev/null

# The CPU time of the given processes (utime + stime, fields 14 and 15 of
# /proc/<pid>/stat, in clock ticks of all their threads), into $ticks. Read without
# forking, so the script's own work does not count against anyone.
server_ticks() { # PID...
    local p stat fields
    ticks=0
    for p in "$@"; do
        read -r stat <"/proc/$p/stat"
        read -r -a fields <<<"${stat##*) }" # from field 3 on: the name may hold spaces
        ticks=$((ticks + fields[11] + fields[12]))
    done
}
# The CPU time of this shell's finished children, in ms, into $children_ms: the load
# tool's, taken as a difference around each run. `times` must run in this shell,
# not in a subshell, to see them.
children_cpu() {
    local user system min sec t
    times >"$work/times"
    { read -r _; read -r user system; } <"$work/times"
    children_ms=0
    for t in "$user" "$system"; do # like 1m2.345s
        min=${t%%m*} sec=${t#*m}
        sec=${sec%s}
        children_ms=$((children_ms + min * 60000 + 10#${sec//[.,]/}))
    done
}
clk_tck=$(getconf CLK_TCK)
echo "row connections server_ticks loadgen_ms" >"$work/cpu.tsv"

run() { # NAME CONNECTIONS "SERVER PIDS" ARGS...
    local name=$1 connections=$2 servers ticks_before ms_before
    read -r -a servers <<<"$3"
    shift 3
    echo "bench: $name at $connections connections"
    server_ticks "${servers[@]}"
    ticks_before=$ticks
    children_cpu
    ms_before=$children_ms
    "$loadgen" --duration "$seconds" --connections "$connections" --quiet \
        --json "$work/$name-$connections.json" "$@" | sed 's/^/  /'
    children_cpu
    server_ticks "${servers[@]}"
    echo "$name $connections $((ticks - ticks_before)) $((children_ms - ms_before))" >>"$work/cpu.tsv"
}
for c in 16 64; do
    run read "$c" "$pid" "${urls[@]}" --products 100 --mix read=1
    run order1 "$c" "$pid" "${urls[@]}" --products 100 --mix order1=1
    run order3 "$c" "$pid" "${urls[@]}" --products 100 --mix order3=1
done
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # URL
    for _ in $(seq 200); do curl -fs -o /dev/null "$1" && return; sleep 0.02; done
    echo "bench: $1 did not answer" >&2
    exit 1
}
hello_port=$(free_port)
"$hello" "127.0.0.1:$hello_port" >/dev/null 2>&1 &
hello_pid=$!
pids+=("$hello_pid")
# chain's peer is a hello of its own, so the baseline's process serves nothing else.
peer_port=$(free_port)
"$hello" "127.0.0.1:$peer_port" >/dev/null 2>&1 &
peer_pid=$!
pids+=("$peer_pid")
chain_port=$(free_port)
"$chain" "127.0.0.1:$chain_port" "http://127.0.0.1:$peer_port/" >/dev/null 2>&1 &
chain_pid=$!
pids+=("$chain_pid")
wait_for "http://127.0.0.1:$hello_port/"
wait_for "http://127.0.0.1:$peer_port/"
wait_for "http://127.0.0.1:$chain_port/"
for c in 16 64; do
    run hello "$c" "$hello_pid" --url "http://127.0.0.1:$hello_port/"
    run chain "$c" "$chain_pid $peer_pid" --url "http://127.0.0.1:$chain_port/"
done

# Tracing's cost: one-item orders on three fresh shops, traces off, exported, and
# exported to nothing. The other serve all is stopped first. The three shops are
# measured in turn, round after round (BENCH_TRACE_ROUNDS, default 3, of
# BENCH_SECONDS/2 each), so a machine that speeds up or slows down meanwhile weighs
# on each alike: this compares rates within a few percent, which one measurement
# each cannot on a shared machine.
kill "$pid" 2>/dev/null || true
sink_port=$(free_port)
python3 "$root/scripts/otlp_sink.py" --port "$sink_port" >"$work/sink.log" 2>&1 &
sink_pid=$!
pids+=("$sink_pid")
wait_for_sink() { for _ in $(seq 200); do grep -q receiving "$work/sink.log" && return; sleep 0.02; done; }
wait_for_sink
declare -A tpids tbases
for mode in off on down; do
    mkdir -p "$work/traces-$mode"
    case $mode in
        off) endpoint= ;;
        on) endpoint="http://127.0.0.1:$sink_port" ;;
        down) endpoint="http://127.0.0.1:$(free_port)" ;;
    esac
    read -r tbase tpid _ < <(cd "$work/traces-$mode" && env SERVICE_TOKEN="$token" RUST_LOG=info \
        ${endpoint:+OTEL_EXPORTER_OTLP_ENDPOINT=$endpoint} python3 "$root/scripts/serve_all.py" "$penguin")
    pids+=("$tpid")
    tpids[$mode]=$tpid
    tbases[$mode]=$tbase
    "$loadgen" --products-url "http://127.0.0.1:$tbase" --inventory-url "http://127.0.0.1:$((tbase + 1))" \
        --orders-url "http://127.0.0.1:$((tbase + 3))" --token "$token" \
        --create-products 100 --duration 1 --connections 16 --mix order1=1 --quiet >/dev/null
done
rounds=${BENCH_TRACE_ROUNDS:-3}
whole=$seconds
seconds=$(( whole / 2 > 2 ? whole / 2 : 2 ))
for round in $(seq "$rounds"); do
    for mode in off on down; do
        tbase=${tbases[$mode]}
        run "traces_${mode}_$round" 64 "${tpids[$mode]}" --products-url "http://127.0.0.1:$tbase" \
            --inventory-url "http://127.0.0.1:$((tbase + 1))" --orders-url "http://127.0.0.1:$((tbase + 3))" \
            --token "$token" --products 100 --mix order1=1
    done
done
seconds=$whole
for mode in off on down; do
    curl -s "http://127.0.0.1:$((tbases[$mode] + 3))/metrics" | grep '^penguin_trace_spans_total' >"$work/spans-$mode.txt" || true
    kill "${tpids[$mode]}" 2>/dev/null || true
    wait "${tpids[$mode]}" 2>/dev/null || true
done
kill -TERM "$sink_pid" 2>/dev/null || true
wait "$sink_pid" 2>/dev/null || true

WORK=$work ROUNDS=$rounds CLK_TCK=$clk_tck READY_MS=$ready_ms RSS_KB=$rss_kb PEAK_KB=$peak_kb python3 - <<'PY'
import json, os

work = os.environ["WORK"]
clk_tck = int(os.environ["CLK_TCK"])
with open(f"{work}/cpu.tsv") as f:
    next(f)
    cpu = {(row, int(c)): (int(ticks), int(ms)) for row, c, ticks, ms in map(str.split, f)}

def ratio(a, b):
    return a / b if b else float("nan")

def load(name, c):
    with open(f"{work}/{name}-{c}.json") as f:
        op = next(iter(json.load(f)["operations"].values()))
    ticks, loadgen_ms = cpu[(name, c)]
    op["cpu_us"] = ratio(ticks * 1e6 / clk_tck, op["requests"])
    op["loadgen_cpu_us"] = ratio(loadgen_ms * 1e3, op["requests"])
    return op

rows = [("GET /productos/{id}", "read"), ("one-item order", "order1"), ("three-item order", "order3"),
        ("hello baseline", "hello"), ("chain ceiling: hello + 4 peer calls", "chain")]
m = {(name, c): load(name, c) for _, name in rows for c in (16, 64)}
print()
print("| measure | conn | req/s | p50 / p99 ms | server CPU µs/req | req/s vs hello | CPU/req vs hello "
      "| load tool CPU µs/req | errors |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for label, name in rows:
    for c in (16, 64):
        r, hello = m[(name, c)], m[("hello", c)]
        print(f"| {label} | {c} | {r['throughput']:,.0f} | {r['p50_ms']:.2f} / {r['p99_ms']:.2f} "
              f"| {r['cpu_us']:.1f} | {ratio(r['throughput'], hello['throughput']):.3f} "
              f"| {ratio(r['cpu_us'], hello['cpu_us']):.2f} | {r['loadgen_cpu_us']:.1f} | {r['errors']} |")
rounds = int(os.environ["ROUNDS"])

def rounds_of(name):
    """A tracing row over its rounds: requests over their whole time, CPU over every
    request, the median round's latencies; and each round's rate, to show the spread."""
    each = [load(f"{name}_{i}", 64) for i in range(1, rounds + 1)]
    requests = sum(r["requests"] for r in each)
    seconds = sum(r["requests"] / r["throughput"] for r in each if r["throughput"])
    middle = sorted(each, key=lambda r: r["p50_ms"])[len(each) // 2]
    return {
        "throughput": ratio(requests, seconds),
        "requests": requests,
        "p50_ms": middle["p50_ms"],
        "p99_ms": middle["p99_ms"],
        "cpu_us": ratio(sum(r["cpu_us"] * r["requests"] for r in each), requests),
        "loadgen_cpu_us": ratio(sum(r["loadgen_cpu_us"] * r["requests"] for r in each), requests),
        "errors": sum(r["errors"] for r in each),
        "rounds": [r["throughput"] for r in each],
    }

for label, name in [("one-item order, traces off (fresh shop)", "traces_off"),
                    ("one-item order, spans exported", "traces_on"),
                    ("one-item order, collector down", "traces_down")]:
    r, hello = rounds_of(name), m[("hello", 64)]
    m[(name, 64)] = r
    print(f"| {label} | 64 | {r['throughput']:,.0f} | {r['p50_ms']:.2f} / {r['p99_ms']:.2f} "
          f"| {r['cpu_us']:.1f} | {ratio(r['throughput'], hello['throughput']):.3f} "
          f"| {ratio(r['cpu_us'], hello['cpu_us']):.2f} | {r['loadgen_cpu_us']:.1f} | {r['errors']} |")
print(f"| ready (all four /health) | | {os.environ['READY_MS']} ms | | | | | | |")
print(f"| resident memory after the run | | {int(os.environ['RSS_KB']) / 1024:.1f} MB "
      f"(peak {int(os.environ['PEAK_KB']) / 1024:.1f} MB) | | | | | | |")

read, order1, order3, chain, hello = (m[(name, 64)] for name in ("read", "order1", "order3", "chain", "hello"))
targets = [
    ("one-item order req/s / chain ceiling req/s", ratio(order1["throughput"], chain["throughput"]), ">=", 0.45),
    ("three-item order req/s / chain ceiling req/s", ratio(order3["throughput"], chain["throughput"]), ">=", 0.4),
    ("one-item order CPU/req / hello CPU/req", ratio(order1["cpu_us"], hello["cpu_us"]), "<=", 30),
    ("GET /productos/{id} req/s / hello req/s", ratio(read["throughput"], hello["throughput"]), ">=", 0.85),
    ("one-item order req/s, spans exported / traces off",
     ratio(m[("traces_on", 64)]["throughput"], m[("traces_off", 64)]["throughput"]), ">=", 0.9),
    ("one-item order req/s, collector down / traces off",
     ratio(m[("traces_down", 64)]["throughput"], m[("traces_off", 64)]["throughput"]), ">=", 0.9),
]
print()
print("| target at 64 connections | measured | target | |")
print("| --- | ---: | ---: | --- |")
for label, value, op, bound in targets:
    met = value >= bound if op == ">=" else value <= bound
    print(f"| {label} | {value:.3f} | {'≥' if op == '>=' else '≤'} {bound} | {'met' if met else 'MISSED'} |")
print()
off_rounds = m[("traces_off", 64)]["rounds"]
for mode in ("on", "down"):
    each = ", ".join(f"{ratio(r, o):.2f}" for r, o in zip(m[(f"traces_{mode}", 64)]["rounds"], off_rounds))
    print(f"traces {mode} / off, round by round ({rounds} rounds, turn about): {each}")
for mode in ("on", "down"):
    with open(f"{work}/spans-{mode}.txt") as f:
        spans = " ".join(line.split("{")[1].split(",")[0] + "=" + line.split()[-1] for line in f)
    print(f"pedidos' spans with the collector {'up' if mode == 'on' else 'down'}: {spans}")
with open(f"{work}/sink.log") as f:
    print("the receiver:", f.read().strip().splitlines()[-1])
PY
echo
if [[ -n ${BENCH_KEEP:-} ]]; then
    echo "bench: raw JSON of each row in $work/{read,order1,order3,hello,chain}-{16,64}.json;"
    echo "bench: CPU ticks per row in $work/cpu.tsv (CLK_TCK $clk_tck), serve all's log in $work/console.log"
else
    echo "bench: its temporary folder is removed; BENCH_KEEP=1 keeps the raw JSON, CPU ticks and serve all's log"
fi
