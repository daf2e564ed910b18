#!/usr/bin/env python3
"""faultproxy: an HTTP/1.1 reverse proxy that injects faults, for chaos runs.

pedidos reaches its peers over HTTP; put this in front of one peer and point
pedidos at it, and pedidos meets a peer that is slow, never answers, resets or
cuts its answers short on chosen routes, while every other request passes.

    faultproxy.py --listen 127.0.0.1:PORT --upstream http://127.0.0.1:5002 \\
        --rule 'POST ^/(reservas/)?liberar$ hang' --rule '.* .* slow 100'

A rule is METHOD PATH ACTION [MS]: METHOD a regex the whole method must match,
PATH a regex searched in the request target (path and query). The first rule that matches
a request decides; a request no rule matches passes. Each request on a
keep-alive connection is matched on its own. Actions:

    pass      forward the request and relay the answer
    slow MS   forward the request, hold its answer MS milliseconds, then relay it
    delay MS  hold the request MS milliseconds, then forward it and relay the
              answer: the peer acts late
    hang      a black hole: never forward the request, never answer, and keep
              the connection open until the client gives up
    lose      forward the request and never relay its answer, keeping the
              connection open until the client gives up: the peer acted, the
              answer never comes
    reset     forward nothing and reset the connection (TCP RST)
    cut       forward the request, relay the answer's status line and headers,
              then close before the body: the peer acted, the answer is lost

--rules-file FILE: rules from FILE (one a line, blank lines and # comments
ignored) are tried before the --rule ones. FILE is read at start and again on
SIGHUP, so a chaos run switches faults on and off without a restart: write the
file, then `kill -HUP` the proxy.

Bodies framed by Content-Length or chunked are relayed both ways; any other
Transfer-Encoding is refused (the connection is closed). Requests are read
whole before they are forwarded (the proxy answers `Expect: 100-continue`
itself), so one sent on a kept-alive upstream connection that the upstream had
just closed is sent again on a new one.
Prints `faultproxy listening on HOST:PORT` once ready (port 0 picks one), and
to stderr the rules after each reload and each hang, lose, reset and cut; with
--verbose, every request and the action it met.
"""

import argparse
import asyncio
import re
import signal
import socket
import struct
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
CHUNK = 64 * 1024
ACTIONS = {"pass": 0, "slow": 1, "delay": 1, "hang": 0, "lose": 0, "reset": 0, "cut": 0}  # action: its arguments


@dataclass
class Rule:
    text: str
    method: re.Pattern
    path: re.Pattern
    action: str
    delay: float = 0.0

    @classmethod
    def parse(cls, text):
        words = text.split()
        if len(words) < 3 or words[2] not in ACTIONS or len(words) != 3 + ACTIONS[words[2]]:
            raise ValueError(f"rule {text!r}: want METHOD PATH pass|slow MS|delay MS|hang|lose|reset|cut")
        delay = int(words[3]) / 1000 if ACTIONS[words[2]] else 0.0
        return cls(" ".join(words), re.compile(words[0]), re.compile(words[1]), words[2], delay)

    def matches(self, method, path):
        return self.method.fullmatch(method) and self.path.search(path)


PASS = Rule.parse(".* .* pass")


def read_rules_file(path):
    with open(path, encoding="utf-8") as f:
        lines = (line.strip() for line in f)
        return [Rule.parse(line) for line in lines if line and not line.startswith("#")]


class Message:
    """A request or response head: its start line and headers, in order."""

    def __init__(self, start, headers):
        self.start = start
        self.headers = headers

    def header(self, name):
        values = [v for n, v in self.headers if n.lower() == name]
        return values[-1] if values else None

    def status(self):
        return int(self.start.split(" ")[1])

    def wants_close(self):
        return "close" in (self.header("connection") or "").lower()

    def encode(self, host=None):
        headers = [(n, host if host and n.lower() == "host" else v) for n, v in self.headers]
        lines = [self.start] + [f"{n}: {v}" for n, v in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_head(reader):
    """The next message head, or None if the stream ends cleanly before it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise ConnectionError("stream ended inside a message head") from e
        return None
    start, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise ConnectionError(f"malformed header line {line!r}")
        headers.append((name.strip(), value.strip()))
    return Message(start, headers)


async def relay_body(reader, message, write, until_eof):
    """Copies the body that follows `message` from reader to write(), as framed."""
    encoding = message.header("transfer-encoding")
    length = message.header("content-length")
    if encoding is not None:
        if encoding.lower().replace(" ", "").split(",")[-1] != "chunked":
            raise ConnectionError(f"unsupported Transfer-Encoding {encoding!r}")
        while True:
            line = await reader.readuntil(b"\r\n")
            write(line)
            size = int(line.split(b";")[0], 16)
            if size == 0:
                break
            write(await reader.readexactly(size + 2))
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
            write(line)
        write(line)
    elif length is not None:
        write(await reader.readexactly(int(length)))
    elif until_eof:
        while chunk := await reader.read(CHUNK):
            write(chunk)


def reset(writer):
    """Aborts the connection with a TCP RST instead of an orderly close."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Proxy:
    def __init__(self, upstream, rules, rules_file, verbose=False):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream {upstream!r}: want http://HOST[:PORT]")
        self.host, self.port = parts.hostname, parts.port or 80
        self.netloc = parts.netloc
        self.fixed_rules = rules
        self.rules_file = rules_file
        self.rules = (read_rules_file(rules_file) if rules_file else []) + rules
        self.listen = ""
        self.verbose = verbose

    def log(self, text):
        print(f"faultproxy {self.listen}: {text}", file=sys.stderr, flush=True)

    def reload(self):
        if not self.rules_file:
            return
        try:
            self.rules = read_rules_file(self.rules_file) + self.fixed_rules
        except (OSError, ValueError, re.error) as e:
            self.log(f"rules not reloaded, the old ones stay: {e}")
            return
        self.log(f"{len(self.rules)} rules: " + "; ".join(r.text for r in self.rules))

    def rule(self, method, path):
        return next((r for r in self.rules if r.matches(method, path)), PASS)

    async def serve(self, client_reader, client_writer):
        upstream = None
        try:
            while request := await read_head(client_reader):
                method, target, _ = request.start.split(" ", 2)
                path = target
                if (request.header("expect") or "").lower() == "100-continue":
                    # The body is read whole before forwarding, so the proxy says go on.
                    client_writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    request.headers = [(n, v) for n, v in request.headers if n.lower() != "expect"]
                body = bytearray()
                await relay_body(client_reader, request, body.extend, until_eof=False)
                rule = self.rule(method, path)
                if self.verbose or rule.action in ("hang", "lose", "reset", "cut"):
                    self.log(f"{method} {path}: {rule.action}")
                if rule.action == "delay":
                    await asyncio.sleep(rule.delay)
                if rule.action == "hang":
                    while await client_reader.read(CHUNK):
                        pass
                    return
                if rule.action == "reset":
                    reset(client_writer)
                    return
                upstream, response = await self.exchange(upstream, request.encode(self.netloc) + body, client_writer)
                if rule.action == "slow":
                    await asyncio.sleep(rule.delay)
                if rule.action == "lose":
                    while await client_reader.read(CHUNK):
                        pass
                    return
                client_writer.write(response.encode())
                if rule.action == "cut":
                    await client_writer.drain()
                    return
                framed = response.header("transfer-encoding") or response.header("content-length")
                if method != "HEAD" and response.status() not in (204, 304):
                    await relay_body(upstream[0], response, client_writer.write, until_eof=True)
                    if not framed:
                        return
                await client_writer.drain()
                if request.wants_close() or response.wants_close():
                    return
        except (OSError, EOFError, asyncio.LimitOverrunError, ValueError) as e:
            self.log(f"connection dropped: {e!r}")
        finally:
            for writer in (client_writer, upstream and upstream[1]):
                if writer:
                    writer.close()

    async def exchange(self, upstream, request, client_writer):
        """Sends a request upstream and reads its final answer's head; relays any
        1xx answer before it. Opens the upstream connection if there is none, and
        sends again on a new one if a kept-alive one turns out closed."""
        fresh = upstream is None
        while True:
            if upstream is None:
                upstream = await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD)
            reader, writer = upstream
            try:
                writer.write(request)
                await writer.drain()
                response = await read_head(reader)
            except OSError:
                response = None
            if response is None and not fresh:
                writer.close()
                upstream, fresh = None, True
                continue
            if response is None:
                raise ConnectionError("upstream closed without answering")
            while 100 <= response.status() < 200:
                client_writer.write(response.encode())
                response = await read_head(reader)
                if response is None:
                    raise ConnectionError("upstream closed without answering")
            return upstream, response


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT to listen on")
    parser.add_argument("--upstream", required=True, help="http://HOST:PORT of the service behind")
    parser.add_argument("--rule", action="append", default=[], help="METHOD PATH ACTION [MS]")
    parser.add_argument("--rules-file", help="more rules, read again on SIGHUP")
    parser.add_argument("--verbose", action="store_true", help="log every request and its action")
    args = parser.parse_args()
    try:
        rules = [Rule.parse(text) for text in args.rule]
        proxy = Proxy(args.upstream, rules, args.rules_file, args.verbose)
    except (OSError, ValueError, re.error) as e:
        parser.error(str(e))
    host, _, port = args.listen.rpartition(":")
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, proxy.reload)
    server = await asyncio.start_server(proxy.serve, host, int(port), limit=MAX_HEAD, backlog=1024)
    bound = server.sockets[0].getsockname()
    proxy.listen = f"{bound[0]}:{bound[1]}"
    print(f"faultproxy listening on {proxy.listen}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
