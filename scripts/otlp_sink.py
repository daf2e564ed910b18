#!/usr/bin/env python3
"""A small OTLP/HTTP receiver: takes the spans penguin sends to `POST /v1/traces`.

    python3 scripts/otlp_sink.py [--port 4318] [--tree] [--refuse]

It answers every export `200` (or `503` with `--refuse`, to see penguin count what a
collector did not take) and counts requests, bytes and, when the `opentelemetry-proto`
package is installed (`pip install opentelemetry-proto`), spans. With `--tree` it also
prints each trace as a tree, two seconds after its last span arrived: service, span,
start offset and duration, and what failed. It is for a look at one order's trace
without a collector, and is the receiver `scripts/bench.sh` exports to. A line
`counts requests=N bytes=N spans=N` is printed on SIGTERM or Ctrl-C.
"""

import argparse
import collections
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
except ImportError:  # counting bytes only
    trace_service_pb2 = None

LOCK = threading.Lock()
COUNTS = collections.Counter()
TRACES = {}  # trace id -> (last arrival, [span rows])


def decode(body):
    """The spans of one export as rows: (trace, span, parent, service, name, start, end, error)."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(body)
    rows = []
    for resource_spans in request.resource_spans:
        service = next(
            (a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"),
            "?",
        )
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                error = span.status.message if span.status.code == 2 else ""
                rows.append(
                    (
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                        service,
                        span.name,
                        span.start_time_unix_nano,
                        span.end_time_unix_nano,
                        error,
                    )
                )
    return rows


def print_tree(trace, rows):
    """One trace as an indented tree, children in the order they started."""
    start = min(r[5] for r in rows)
    children = collections.defaultdict(list)
    ids = {r[1] for r in rows}
    for row in sorted(rows, key=lambda r: r[5]):
        children[row[2] if row[2] in ids else ""].append(row)
    print(f"trace {trace} ({len(rows)} spans)")

    def walk(parent, depth):
        for row in children.get(parent, []):
            offset = (row[5] - start) / 1e6
            took = (row[6] - row[5]) / 1e6
            failed = f"  ✗ {row[7]}" if row[7] else ""
            label = f"{'  ' * depth}{row[3]}: {row[4]}"
            print(f"  {label:<52} +{offset:7.2f} ms {took:7.2f} ms{failed}")
            walk(row[1], depth + 1)

    walk("", 0)
    sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    refuse = False
    tree = False

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        spans = 0
        if trace_service_pb2 is not None:
            rows = decode(body)
            spans = len(rows)
            if self.tree:
                now = time.monotonic()
                with LOCK:
                    for row in rows:
                        TRACES.setdefault(row[0], [now, []])[1].append(row)
                        TRACES[row[0]][0] = now
        with LOCK:
            COUNTS["requests"] += 1
            COUNTS["bytes"] += length
            COUNTS["spans"] += spans
        status = 503 if self.refuse else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def print_settled():
    while True:
        time.sleep(0.5)
        now = time.monotonic()
        with LOCK:
            done = [t for t, (last, _) in TRACES.items() if now - last > 2]
            settled = [(t, TRACES.pop(t)[1]) for t in done]
        for trace, rows in settled:
            print_tree(trace, rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4318)
    parser.add_argument("--tree", action="store_true", help="print each trace as a tree")
    parser.add_argument("--refuse", action="store_true", help="answer every export 503")
    args = parser.parse_args()
    if args.tree and trace_service_pb2 is None:
        sys.exit("--tree needs the opentelemetry-proto package: pip install opentelemetry-proto")
    Handler.refuse = args.refuse
    Handler.tree = args.tree
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True

    def stop(*_):
        with LOCK:
            print(f"counts requests={COUNTS['requests']} bytes={COUNTS['bytes']} spans={COUNTS['spans']}", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.tree:
        threading.Thread(target=print_settled, daemon=True).start()
    print(f"receiving OTLP/HTTP on http://127.0.0.1:{server.server_port}/v1/traces", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
