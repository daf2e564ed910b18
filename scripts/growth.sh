#!/usr/bin/env bash
# Growth benchmark: how penguin's cost changes as the shop's data grows. Builds
# release, starts `penguin serve all` on free ports with fresh databases, and then, for
# each number of stored orders in GROWTH_ORDERS, places one-item orders at full speed
# (`penguin-loadgen`, 64 connections, with Idempotency-Keys, as clients send them)
# until that many are stored, stops the load and times, each as the median of 25:
#   - a deep page by offset, `GET /pedidos?limit=100&offset=N-100` (the contract's
#     paging; it reads every row it skips), and the same page by cursor,
#     `GET /pedidos?limit=100&after=<id>`;
#   - a point read, `GET /pedidos/1`;
#   - the status page's data, `GET /panel/estado`;
#   - a Prometheus scrape of inventario and of pedidos, `GET /metrics`;
# and reads the orders/s of the round, the process' resident memory and the bytes
# its databases (and their write-ahead logs) grew by per order placed since the row
# before. Last, it stops serve all (SIGTERM) and times a
# restart on the grown files until all four services are ready.
#
#   scripts/growth.sh                               # 10 k, 100 k, 1 M and 2 M orders
#   GROWTH_ORDERS="10000 50000" scripts/growth.sh   # a quick look
#   GROWTH_KEEP=1 scripts/growth.sh                 # keep the databases (the folder is printed)
#
# Every figure comes from this one run on this machine; compare the rows with each
# other, not with another machine's.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
targets=${GROWTH_ORDERS:-10000 100000 1000000 2000000}
cargo build --release --quiet --bin penguin --bin penguin-loadgen
work=$(mktemp -d)
trap 'pkill -f -- "--data-dir $work" 2>/dev/null || true; [[ -n ${GROWTH_KEEP:-} ]] || rm -rf "$work"' EXIT
PENGUIN="$root/target/release/penguin" LOADGEN="$root/target/release/penguin-loadgen" \
    WORK="$work" TARGETS="$targets" PYTHONPATH="$root/scripts" python3 - <<'PY'
import http.client, json, os, signal, statistics, subprocess, sys, time

import serve_all

penguin, loadgen, work = os.environ["PENGUIN"], os.environ["LOADGEN"], os.environ["WORK"]
targets = [int(t) for t in os.environ["TARGETS"].split()]
token = "growth-%d" % os.getpid()
env = dict(os.environ, SERVICE_TOKEN=token, RUST_LOG="warn")

base = serve_all.free_base()
names = ["productos", "inventario", "pagos", "pedidos"]
port = {name: base + i for i, name in enumerate(names)}

def start():
    return serve_all.start(penguin, work, base, route="/ready", limit=60, env=env)

def timed(name, path, token_needed=True):
    """The median of 25 timed GETs on one kept-alive connection, in ms, and the last answer."""
    c = http.client.HTTPConnection("127.0.0.1", port[name], timeout=60)
    headers = {"Authorization": f"Bearer {token}"} if token_needed else {}
    times, body = [], b""
    for _ in range(25):
        t = time.perf_counter()
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        body = r.read()
        times.append((time.perf_counter() - t) * 1000)
        if r.status != 200:
            sys.exit(f"GET {path}: {r.status} {body[:200]!r}")
    c.close()
    return statistics.median(times), body

def stored():
    _, body = timed("pedidos", "/metrics", token_needed=False)
    return int(sum(float(line.split()[-1]) for line in body.decode().splitlines()
                   if line.startswith("penguin_orders_total{")))

def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

def disk_bytes():
    return sum(os.path.getsize(os.path.join(work, f)) for f in os.listdir(work)
               if f.endswith((".db", ".db-wal")))

urls = ["--products-url", f"http://127.0.0.1:{port['productos']}",
        "--inventory-url", f"http://127.0.0.1:{port['inventario']}",
        "--orders-url", f"http://127.0.0.1:{port['pedidos']}", "--token", token]
child, _ = start()
subprocess.run([loadgen, *urls, "--create-products", "100",
                "--duration", "1", "--connections", "8", "--mix", "read=1", "--quiet"],
               check=True, stdout=subprocess.DEVNULL)
rows, orders, rate = [], stored(), 3000.0
for target in targets:
    placed, seconds = 0, 0.0
    while orders < target:
        duration = max(2, min(60, int((target - orders) / rate) + 1))
        report = f"{work}/round.json"
        subprocess.run([loadgen, *urls, "--products", "100", "--mix", "order1=1", "--fail-share", "0",
                        "--connections", "64", "--duration", str(duration), "--quiet",
                        "--max-error-share", "1", "--json", report], check=True, stdout=subprocess.DEVNULL)
        with open(report) as f:
            op = next(iter(json.load(f)["operations"].values()))
        rate = max(op["throughput"], 100.0)
        before, orders = orders, stored()
        placed, seconds = placed + orders - before, seconds + duration
    time.sleep(3)  # the last answers' writes land, and the write-ahead logs are checkpointed
    last = json.loads(timed("pedidos", "/pedidos?limit=1&offset=%d" % (orders - 101))[1])[0]["id"]
    row = {
        "orders": orders,
        "orders_s": placed / seconds if seconds else float("nan"),
        "offset_ms": timed("pedidos", "/pedidos?limit=100&offset=%d" % (orders - 100))[0],
        "after_ms": timed("pedidos", "/pedidos?limit=100&after=%d" % last)[0],
        "point_ms": timed("pedidos", "/pedidos/1")[0],
        "panel_ms": timed("pedidos", "/panel/estado")[0],
        "inventario_metrics_ms": timed("inventario", "/metrics", token_needed=False)[0],
        "pedidos_metrics_ms": timed("pedidos", "/metrics", token_needed=False)[0],
        "rss_mb": rss_mb(child.pid),
        "disk": disk_bytes(),
    }
    rows.append(row)
    print(f"growth: {orders:,} orders stored; {row}", file=sys.stderr, flush=True)
os.killpg(child.pid, signal.SIGTERM)
child.wait(timeout=60)
size = disk_bytes()
per_database = {name: os.path.getsize(f"{work}/{name}.db") / orders for name in names[1:]}
child, ready = start()
os.killpg(child.pid, signal.SIGTERM)
child.wait(timeout=60)

def count(n):
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.0f} k"

print()
print("| orders stored | orders/s | page by offset | page by `after` | `GET /pedidos/1` | `/panel/estado` "
      "| inventario `/metrics` | pedidos `/metrics` | RSS | disk / order |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for before, r in zip([{"orders": 0, "disk": 0}] + rows, rows):
    r["bytes_per_order"] = (r["disk"] - before["disk"]) / max(r["orders"] - before["orders"], 1)
    print(f"| {count(r['orders'])} | {r['orders_s']:,.0f} | {r['offset_ms']:.1f} ms | {r['after_ms']:.2f} ms "
          f"| {r['point_ms']:.2f} ms | {r['panel_ms']:.1f} ms | {r['inventario_metrics_ms']:.2f} ms "
          f"| {r['pedidos_metrics_ms']:.2f} ms | {r['rss_mb']:.0f} MB | {r['bytes_per_order']:,.0f} B |")
print()
print(f"restart on {size / 2**20:,.0f} MiB of databases: all four ready in {ready:.2f} s")
print("bytes per order stored, by database after a clean stop:",
      ", ".join(f"{name} {b:,.0f} B" for name, b in per_database.items()))
if os.environ.get("GROWTH_KEEP"):
    print(f"the databases are kept in {work}")
first, last = rows[0], rows[-1]
print("last / first:", ", ".join(f"{k} {last[k] / first[k]:.2f}x" for k in
      ("after_ms", "panel_ms", "inventario_metrics_ms", "pedidos_metrics_ms")))
PY
