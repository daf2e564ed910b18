"""Hooks for schemathesis in penguin's own test (tests/api/openapi.rs).

An OpenAPI document states the limits of each value, not the rules that tie values
together or to what a service already holds. Each hook below models one such rule that
the services' documents state in words, and only for the requests schemathesis means
as valid (positive mode), so that a refusal the document describes is not reported as
"valid data rejected". Invalid requests are sent as drawn.
"""

import hashlib
import json

import schemathesis

MAX_CANTIDAD = 1_000_000
MAX_KEY_CHARS = 200


def _valid(case):
    return case.meta is not None and case.meta.generation.mode.is_positive


def _is(case, method, path):
    return case.operation.method.upper() == method and case.operation.path == path


@schemathesis.hook
def filter_case(context, case):
    if not _valid(case):
        return True
    # `GET /productos?ids=` names the products wanted instead of a page: with `limit` or
    # `offset` beside it, it is refused (422), as the parameter's description says.
    if _is(case, "GET", "/productos"):
        query = case.query or {}
        if "ids" in query and ("limit" in query or "offset" in query):
            return False
    # `POST /pedidos` merges the lines of one product into one, whose quantity is bounded
    # like any line's (422 beyond 1,000,000), as the `items` description says.
    if _is(case, "POST", "/pedidos") and isinstance(case.body, dict):
        totals = {}
        for item in case.body.get("items") or []:
            if isinstance(item, dict):
                producto = item.get("producto_id")
                totals[producto] = totals.get(producto, 0) + (item.get("cantidad") or 0)
        if any(total > MAX_CANTIDAD for total in totals.values()):
            return False
    return True


def _fresh(key, request):
    """`key` made to name this request only: a client sends a new key for a new request."""
    digest = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()[:16]
    if key.endswith(f"-{digest}"):
        return key
    return f"{key[: MAX_KEY_CHARS - len(digest) - 1]}-{digest}"


@schemathesis.hook
def before_call(context, case, kwargs):
    # An idempotency key names one request: sent again with another request, it is
    # refused (422 `idempotency_key_reused`), as the documents say. Drawn keys repeat
    # (`"0"` again and again), so a valid request's key is made its own; the same key
    # with the same request still repeats, and is answered as the first time. This runs
    # just before the request is sent, once the stateful phase's links have filled in
    # its body.
    if not _valid(case):
        return
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key" and isinstance(headers[name], str):
            headers[name] = _fresh(headers[name], [case.operation.path, case.body])
    if _is(case, "POST", "/reservas") and isinstance(case.body, dict) and isinstance(case.body.get("clave"), str):
        case.body["clave"] = _fresh(case.body["clave"], case.body.get("lineas"))
