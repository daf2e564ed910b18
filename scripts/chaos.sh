#!/usr/bin/env bash
# Chaos run: the four penguin services as four processes under steady order load,
# while a random one is killed (SIGKILL) and restarted every few seconds. At the
# end it waits for recovery, prints every invariant and the orders by final estado,
# and exits non-zero if any unit or payment leaked, doubled or was oversold, or if
# an order ended otherwise than the answer its client was given (201 confirmado,
# 402 rechazado).
#
#   scripts/chaos.sh [SECONDS]                   # default 60
#   CHAOS_FAULTS=1 scripts/chaos.sh [SECONDS]    # peers slow, silent, cut short
#
# CHAOS_FAULTS: pedidos reaches productos and inventario through
# scripts/faultproxy.py, and while orders stream the run cycles through 2 s of calm
# and fault phases (see `phase` below): `black-hole` makes recovery passes slow, productos
# answering 100 ms late while inventario's POST /liberar never answers; `cut` has
# productos reset reads of one product and inventario cut confirmations short.
# CHAOS_FAULTS=1 runs them all; CHAOS_FAULTS=black-hole (or cut, or black-hole,cut)
# only those. pedidos then runs with short settings: 400 ms per peer attempt, 2
# attempts, breaker 3 failures / 4 s, recovery every 1 s, reservations held 10 s.
# Faults are lifted when the load ends, before the wait for recovery. No kills
# unless CHAOS_EVERY is set. Give it 20 seconds or more.
#
# Environment: PENGUIN_BIN (default: builds and uses target/release/penguin),
# CHAOS_EVERY (seconds between kills, default 3, or 0 with CHAOS_FAULTS; 0 kills
# nothing), CHAOS_CLIENTS (concurrent order loops, default 6, or 12 with
# CHAOS_FAULTS), CHAOS_FAIL_EVERY (each client asks for a rejected payment once in
# this many orders, default 5, or 20 with CHAOS_FAULTS), CHAOS_UNITS (stock of each
# of the five products, default 20000), CHAOS_DIR (work folder, default a new
# temporary one).
set -euo pipefail

duration=${1:-60}
# The fault phases: seconds | what | productos rules | inventario rules. Rules match
# the request target (path and query); inventario's routes with and without /reservas/. A black
# hole shorter than about 6 s rarely makes a recovery pass slow enough to show.
declare -A phase=(
    [calm]='2|calm||'
    [black-hole]='7|productos 100 ms late; inventario POST /liberar a black hole that holds up recovery|.* .* slow 100|POST ^/(reservas/)?liberar$ hang'
    [cut]='3|productos resets reads of producto 5; inventario cuts confirmations short after confirming|GET ^/productos[?]ids=([0-9]+,)*5(,[0-9]+)*$ reset|POST ^/(reservas/)?confirmar$ cut'
)
faults=${CHAOS_FAULTS:-0}
if [[ $faults == 1 ]]; then faults=black-hole,cut; fi
cycle=(calm)
if [[ $faults != 0 ]]; then
    for name in ${faults//,/ }; do
        [[ $name != calm && -n "${phase[$name]:-}" ]] || { echo "chaos: CHAOS_FAULTS: no phase $name" >&2; exit 2; }
        cycle+=("$name")
    done
    every=${CHAOS_EVERY:-0}
    # Many orders in flight and few rejections: each rejected order leaves a release
    # that the black hole holds, and recovery retries them one by one. A handful
    # makes a recovery pass slow; one in five makes the first slow
    # pass outlast the phase.
    clients=${CHAOS_CLIENTS:-12}
    fail_every=${CHAOS_FAIL_EVERY:-20}
    settings=(PEER_TIMEOUT_MS=400 RETRY_ATTEMPTS=2 BREAKER_FAILURES=3 BREAKER_OPEN_SECS=4
              RECOVERY_INTERVAL=1 RESERVATION_TTL=10)
else
    every=${CHAOS_EVERY:-3}
    clients=${CHAOS_CLIENTS:-6}
    fail_every=${CHAOS_FAIL_EVERY:-5}
    settings=(RECOVERY_INTERVAL=0.5 BREAKER_OPEN_SECS=1 RETRY_BACKOFF_MS=50 PEER_TIMEOUT_MS=1500)
fi
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${PENGUIN_BIN:-}" ]]; then
    (cd "$root" && cargo build --release --quiet)
    PENGUIN_BIN="$root/target/release/penguin"
fi
work=${CHAOS_DIR:-$(mktemp -d)}
mkdir -p "$work"
token="chaos-$RANDOM$RANDOM"
services=(productos inventario pagos pedidos)
faulty=(productos inventario)
declare -A port pid proxy_port proxy_pid
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for s in "${services[@]}"; do port[$s]=$(free_port); done
if [[ $faults != 0 ]]; then
    for s in "${faulty[@]}"; do proxy_port[$s]=$(free_port); done
fi
url() { echo "http://127.0.0.1:${port[$1]}"; }
peer_url() { # how pedidos reaches SERVICE: through its faultproxy, if it has one
    if [[ -n "${proxy_port[$1]:-}" ]]; then echo "http://127.0.0.1:${proxy_port[$1]}"; else url "$1"; fi
}

# OpenTelemetry's settings pass through, so a run can export its spans while it kills.
mapfile -t otel < <(env | grep '^OTEL_' || true)
start() {
    local s=$1
    (cd "$work" && exec env -i PATH="$PATH" RUST_LOG=info "${otel[@]}" \
        PORT="${port[$s]}" DB_PATH="$s.db" SERVICE_TOKEN="$token" \
        PRODUCTS_URL="$(peer_url productos)" INVENTORY_URL="$(peer_url inventario)" PAYMENTS_URL="$(peer_url pagos)" \
        "${settings[@]}" "$PENGUIN_BIN" serve "$s" >>"$work/console.log" 2>&1) &
    pid[$s]=$!
    for _ in $(seq 100); do
        curl -fs -o /dev/null "$(url "$s")/health" && return 0
        sleep 0.05
    done
    echo "chaos: $s did not start; see $work/console.log and $work/logs.log" >&2
    exit 1
}

start_proxy() { # a faultproxy in front of SERVICE, its rules in faults-SERVICE.rules
    local s=$1
    : >"$work/faults-$s.rules"
    python3 "$root/scripts/faultproxy.py" --listen "127.0.0.1:${proxy_port[$s]}" --upstream "$(url "$s")" \
        --rules-file "$work/faults-$s.rules" >>"$work/faultproxy.log" 2>&1 &
    proxy_pid[$s]=$!
    for _ in $(seq 100); do
        curl -fs -o /dev/null "$(peer_url "$s")/health" && return 0
        sleep 0.05
    done
    echo "chaos: the faultproxy of $s did not start; see $work/faultproxy.log" >&2
    exit 1
}

set_faults() { # SERVICE RULES: from now on SERVICE's proxy applies RULES ('; ' between them; none: pass all)
    sed 's/; /\n/g' <<<"$2" >"$work/faults-$1.rules"
    kill -HUP "${proxy_pid[$1]}"
}

stop_all() {
    for s in "${services[@]}"; do
        [[ -n "${pid[$s]:-}" ]] && kill -9 "${pid[$s]}" 2>/dev/null || true
        [[ -n "${proxy_pid[$s]:-}" ]] && kill "${proxy_pid[$s]}" 2>/dev/null || true
    done
    [[ -n "${conductor:-}" ]] && kill "$conductor" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop_all EXIT

call() { # METHOD SERVICE PATH [BODY]
    curl -s -m 10 -X "$1" "$(url "$2")$3" -H "Authorization: Bearer $token" \
        -H "Content-Type: application/json" ${4:+-d "$4"}
}

for s in "${services[@]}"; do start "$s"; done
for s in "${!proxy_port[@]}"; do start_proxy "$s"; done

products=5
units=${CHAOS_UNITS:-20000}
for n in $(seq "$products"); do
    call POST productos /productos "{\"nombre\": \"hielo $n\", \"precio\": $n.25}" >/dev/null
    call POST inventario /stock "{\"producto_id\": $n, \"cantidad\": $units}" >/dev/null
done

started=$SECONDS
end=$((SECONDS + duration))
load() { # one client: orders of one to three lines, one in $fail_every with a rejected payment
    # Clients reject at different turns, so that rejections do not come in bursts.
    # Each answer is kept as "STATUS CURL_EXIT PEDIDO_ID KEY" to hold the order to it.
    local client=$1 n=0 id_field='[{,]"id":([0-9]+)'
    while ((SECONDS < end)); do
        n=$((n + 1))
        local a=$((RANDOM % products + 1)) b=$((RANDOM % products + 1)) fail=false answer rc=0 id=-
        (((n + client) % fail_every == 0)) && fail=true
        answer=$(curl -s -m 10 -w '\n%{http_code}' -X POST "$(url pedidos)/pedidos" \
            -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
            -H "Idempotency-Key: chaos-$client-$n" \
            -d "{\"items\": [{\"producto_id\": $a, \"cantidad\": $((RANDOM % 3 + 1))}, {\"producto_id\": $b, \"cantidad\": 1}], \"pago\": {\"medio\": \"tarjeta\", \"moneda\": \"PYG\", \"fail\": $fail}}") \
            || rc=$?
        [[ $answer =~ $id_field ]] && id=${BASH_REMATCH[1]}
        local status=${answer##*$'\n'}
        echo "${status:-000} $rc $id chaos-$client-$n" >>"$work/answers-$client.txt"
    done
}
loaders=()
for c in $(seq "$clients"); do load "$c" & loaders+=($!); done

conduct() { # the phases of the cycle in turn, until the load ends
    local name seconds what productos_rules inventario_rules left
    while true; do
        for name in "${cycle[@]}"; do
            left=$((end - SECONDS))
            ((left > 0)) || return 0
            IFS='|' read -r seconds what productos_rules inventario_rules <<<"${phase[$name]}"
            echo "chaos: at $((SECONDS - started))s, faults: $what"
            set_faults productos "$productos_rules"
            set_faults inventario "$inventario_rules"
            sleep $((seconds < left ? seconds : left))
        done
    done
}
if [[ $faults != 0 ]]; then conduct & conductor=$!; fi

kills=0
while ((SECONDS < end)); do
    if [[ $every == 0 ]]; then sleep 1; continue; fi
    sleep "$every"
    ((SECONDS < end)) || break
    victim=${services[$((RANDOM % 4))]}
    kill -9 "${pid[$victim]}" 2>/dev/null || true
    wait "${pid[$victim]}" 2>/dev/null || true
    kills=$((kills + 1))
    echo "chaos: killed $victim ($kills)"
    sleep 0.3
    start "$victim"
done
wait "${loaders[@]}" 2>/dev/null || true
if [[ $faults != 0 ]]; then
    wait "$conductor" 2>/dev/null || true
    for s in "${faulty[@]}"; do set_faults "$s" ""; done
    echo "chaos: at $((SECONDS - started))s, faults lifted"
fi
echo "chaos: load over: $(cut -d' ' -f1 "$work"/answers-*.txt | sort | uniq -c | tr -s ' ' | paste -sd, -) (HTTP status counts)"

echo "chaos: waiting for recovery"
loaded=$(seq -s, -f "%g=$units" 1 "$products")
if "$PENGUIN_BIN" check --orders-url "$(url pedidos)" --inventory-url "$(url inventario)" \
    --payments-url "$(url pagos)" --token "$token" --loaded "$loaded" --answers "$work"/answers-*.txt --wait 90; then
    echo "chaos: all invariants hold"
else
    echo "chaos: INVARIANTS BROKEN" >&2
    exit 1
fi
echo "chaos: $kills kills in ${duration}s; files in $work"
