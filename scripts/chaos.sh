#!/usr/bin/env bash
# Chaos run: the four penguin services as four processes under steady order load,
# while a random one is killed (SIGKILL) and restarted every few seconds. At the
# end it waits for recovery, prints every invariant and the orders by final estado,
# and exits non-zero if any unit or payment leaked, doubled or was oversold, or if
# an order ended otherwise than the answer its client was given (201 confirmado,
# 402 rechazado).
#
#   scripts/chaos.sh [SECONDS]      # default 60
#
# Environment: PENGUIN_BIN (default: builds and uses target/release/penguin),
# CHAOS_EVERY (seconds between kills, default 3), CHAOS_CLIENTS (concurrent
# order loops, default 6), CHAOS_UNITS (stock of each of the five products, default
# 20000), CHAOS_DIR (work folder, default a new temporary one).
set -euo pipefail

duration=${1:-60}
every=${CHAOS_EVERY:-3}
clients=${CHAOS_CLIENTS:-6}
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${PENGUIN_BIN:-}" ]]; then
    (cd "$root" && cargo build --release --quiet)
    PENGUIN_BIN="$root/target/release/penguin"
fi
work=${CHAOS_DIR:-$(mktemp -d)}
mkdir -p "$work"
token="chaos-$RANDOM$RANDOM"
services=(productos inventario pagos pedidos)
declare -A port pid
for s in "${services[@]}"; do
    port[$s]=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
done
url() { echo "http://127.0.0.1:${port[$1]}"; }

start() {
    local s=$1
    (cd "$work" && exec env -i PATH="$PATH" RUST_LOG=info \
        PORT="${port[$s]}" DB_PATH="$s.db" SERVICE_TOKEN="$token" \
        PRODUCTS_URL="$(url productos)" INVENTORY_URL="$(url inventario)" PAYMENTS_URL="$(url pagos)" \
        RECOVERY_INTERVAL=0.5 BREAKER_OPEN_SECS=1 RETRY_BACKOFF_MS=50 PEER_TIMEOUT_MS=1500 \
        "$PENGUIN_BIN" serve "$s" >>"$work/console.log" 2>&1) &
    pid[$s]=$!
    for _ in $(seq 100); do
        curl -fs -o /dev/null "$(url "$s")/health" && return 0
        sleep 0.05
    done
    echo "chaos: $s did not start; see $work/logs.log" >&2
    exit 1
}

stop_all() {
    for s in "${services[@]}"; do
        [[ -n "${pid[$s]:-}" ]] && kill -9 "${pid[$s]}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap stop_all EXIT

call() { # METHOD SERVICE PATH [BODY]
    curl -s -m 10 -X "$1" "$(url "$2")$3" -H "Authorization: Bearer $token" \
        -H "Content-Type: application/json" ${4:+-d "$4"}
}

for s in "${services[@]}"; do start "$s"; done

products=5
units=${CHAOS_UNITS:-20000}
for n in $(seq "$products"); do
    call POST productos /productos "{\"nombre\": \"hielo $n\", \"precio\": $n.25}" >/dev/null
    call POST inventario /stock "{\"producto_id\": $n, \"cantidad\": $units}" >/dev/null
done

end=$((SECONDS + duration))
load() { # one client: orders of one to three lines, every fifth with a rejected payment
    # Each answer is kept as "STATUS CURL_EXIT PEDIDO_ID KEY" to hold the order to it.
    local client=$1 n=0 id_field='[{,]"id":([0-9]+)'
    while ((SECONDS < end)); do
        n=$((n + 1))
        local a=$((RANDOM % products + 1)) b=$((RANDOM % products + 1)) fail=false answer rc=0 id=-
        ((n % 5 == 0)) && fail=true
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

kills=0
while ((SECONDS < end)); do
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
echo "chaos: load over: $(cut -d' ' -f1 "$work"/answers-*.txt | sort | uniq -c | tr -s ' ' | paste -sd, -) (HTTP status counts)"

echo "chaos: waiting for recovery"
PRODUCTS_URL=$(url productos) INVENTORY_URL=$(url inventario) PAYMENTS_URL=$(url pagos) \
ORDERS_URL=$(url pedidos) TOKEN=$token PRODUCTS=$products UNITS=$units WORK=$work python3 - <<'PY'
import glob, json, os, sys, time, urllib.request

def get(base, path):
    request = urllib.request.Request(os.environ[base] + path,
                                     headers={"Authorization": "Bearer " + os.environ["TOKEN"]})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)

def every(base, path):
    rows = []
    while True:
        page = get(base, f"{path}?limit=1000&offset={len(rows)}")
        rows += page
        if len(page) < 1000:
            return rows

PROMISED = {"201": "confirmado", "402": "rechazado"}

def answers_broken(pedidos):
    """The answers given that the orders' final estado contradicts, and how many were checked."""
    final = {p["id"]: p for p in pedidos}
    checked, broken = 0, []
    for path in sorted(glob.glob(os.path.join(os.environ["WORK"], "answers-*.txt"))):
        for line in open(path):
            status, curl_exit, pedido_id, key = line.split()
            if status not in PROMISED or curl_exit != "0":  # a lost answer promised nothing
                continue
            checked += 1
            p = final.get(int(pedido_id)) if pedido_id.isdigit() else None
            if p is None or p["estado"] != PROMISED[status]:
                now = f"now {p['estado']}: {p.get('motivo') or 'no motivo'}" if p else "not found"
                broken.append((int(pedido_id) if p else 0, f"pedido {pedido_id} ({key}) answered {status}, {now}"))
    return checked, [line for _, line in sorted(broken)]

def check():
    pedidos = every("ORDERS_URL", "/pedidos")
    pagos = every("PAYMENTS_URL", "/pagos")
    checks = []
    estados = {}
    confirmed_units = {}
    for p in pedidos:
        estados[p["estado"]] = estados.get(p["estado"], 0) + 1
        if p["estado"] == "confirmado":
            for item in p["items"]:
                confirmed_units[item["producto_id"]] = confirmed_units.get(item["producto_id"], 0) + item["cantidad"]
    checks.append(("every order is final", estados.get("pendiente", 0) == 0,
                   f"{estados.get('pendiente', 0)} pendiente"))
    loaded = int(os.environ["UNITS"])
    for n in range(1, int(os.environ["PRODUCTS"]) + 1):
        s = get("INVENTORY_URL", f"/stock/{n}")
        total = s["cantidad"] + s["reservado"] + s["confirmado"]
        checks.append((f"producto {n}: loaded = cantidad + reservado + confirmado", total == loaded,
                       f"{loaded} vs {s['cantidad']} + {s['reservado']} + {s['confirmado']}"))
        checks.append((f"producto {n}: no units held by unfinished orders", s["reservado"] == 0,
                       f"reservado {s['reservado']}"))
        checks.append((f"producto {n}: confirmed units = units of confirmed orders",
                       s["confirmado"] == confirmed_units.get(n, 0),
                       f"{s['confirmado']} vs {confirmed_units.get(n, 0)}"))
        checks.append((f"producto {n}: never oversold", s["cantidad"] >= 0, f"cantidad {s['cantidad']}"))
    by_pago = {}
    for p in pagos:
        by_pago[p["estado"]] = by_pago.get(p["estado"], 0) + 1
    refs = [p["referencia"] for p in pagos if p["referencia"]]
    checks.append(("no referencia charged twice", len(refs) == len(set(refs)), f"{len(refs) - len(set(refs))} doubled"))
    checks.append(("approved payments = confirmed orders", by_pago.get("aprobado", 0) == estados.get("confirmado", 0),
                   f"{by_pago.get('aprobado', 0)} vs {estados.get('confirmado', 0)}"))
    approved = {p["pago_id"] for p in pagos if p["estado"] == "aprobado"}
    unpaid = [p["id"] for p in pedidos if p["estado"] == "confirmado" and p["pago_id"] not in approved]
    checks.append(("every confirmed order has its approved payment", not unpaid, f"{len(unpaid)} without"))
    checked, broken = answers_broken(pedidos)
    checks.append(("every answer still holds: 201 ended confirmado, 402 rechazado", not broken,
                   f"{len(broken)} of {checked} broken"))
    return checks, estados, by_pago, broken

deadline = time.time() + 90
while True:
    try:
        checks, estados, by_pago, broken = check()
    except Exception as e:  # a service still restarting
        checks, estados, by_pago, broken = [("services answer", False, str(e))], {}, {}, []
    if all(ok for _, ok, _ in checks) or time.time() > deadline:
        break
    time.sleep(1)

for name, ok, detail in checks:
    print(f"{'ok  ' if ok else 'FAIL'} {name} ({detail})")
for line in broken[:10]:
    print("     ", line)
if len(broken) > 10:
    print(f"      and {len(broken) - 10} more")
print("orders by estado:", ", ".join(f"{k} {v}" for k, v in sorted(estados.items())))
print("payments by estado:", ", ".join(f"{k} {v}" for k, v in sorted(by_pago.items())))
if all(ok for _, ok, _ in checks):
    print("chaos: all invariants hold")
else:
    print("chaos: INVARIANTS BROKEN", file=sys.stderr)
    sys.exit(1)
PY
echo "chaos: $kills kills in ${duration}s; files in $work"
