"""Starts `penguin serve all` on four free consecutive ports and times it until all
four services answer: what scripts/bench.sh and scripts/growth.sh both measure from.

    python3 scripts/serve_all.py PENGUIN   # in the data folder; prints `BASE PID MS`

The process outlives this script (a session of its own); its console goes to
`console.log` in the data folder.
"""
import os
import socket
import subprocess
import sys
import time
import urllib.request


def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_base():
    """The first of four consecutive free ports."""
    return next(b for b in range(20001, 60000, 7) if all(free(b + i) for i in range(4)))


def start(penguin, data_dir, base, route="/health", limit=10.0, env=None):
    """Starts serve all on `base` to `base + 3` with its databases in `data_dir`; returns
    the process and the seconds until every service answered `route` with 200."""
    console = open(os.path.join(data_dir, "console.log"), "ab")
    started = time.perf_counter()
    child = subprocess.Popen([penguin, "serve", "all", "--base-port", str(base), "--data-dir", data_dir],
                             stdout=console, stderr=console, env=env, start_new_session=True)
    waiting = set(range(4))
    while waiting:
        for i in list(waiting):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{base + i}{route}", timeout=1) as r:
                    if r.status == 200:
                        waiting.discard(i)
            except OSError:
                pass
        if time.perf_counter() - started > limit:
            sys.exit("penguin did not start")
        time.sleep(0.0005)
    return child, time.perf_counter() - started


if __name__ == "__main__":
    base = free_base()
    child, seconds = start(sys.argv[1], ".", base)
    print(base, child.pid, round(seconds * 1000, 1))
