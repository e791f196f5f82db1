"""The HTTP side of the Bitrix24-compatible REST API (shared/BITRIX24_REST.md §1):

    GET|POST /rest/<user_id>/<code>/<method>[.json|.xml][/]

Parameters come from the query string and the body (JSON, form-encoded or multipart, with
PHP-style keys; the body's keys win). Every answer is JSON (`application/json;
charset=utf-8`, errors included) with Bitrix24's statuses: 200 with `result`/`next`/`total`/
`time`; 400 for a refused call, 401 for wrong credentials, 404 for an unknown method, 413
for a body over the cap, 503 `QUERY_LIMIT_EXCEEDED` past the webhook's rate (a leaky bucket
per webhook: RXCRM_REST_BURST requests at once, RXCRM_REST_RATE per second after that, per
worker). Never a redirect, never a 500 for bad input. The database work runs off the
event loop."""
from __future__ import annotations

import json
import logging
import os
import threading
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import crm, crm_more, events, methods, wire  # noqa: F401 - crm, crm_more, events: their methods join the registry

log = logging.getLogger("rxcrm.rest")
BODY_MAX = 10 * 1024 * 1024
HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "origin, content-type, accept",
           "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def _json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, default=str), status_code=status,
                    media_type="application/json; charset=utf-8", headers=HEADERS)


def _error(exc: wire.RestError) -> Response:
    return _json(exc.body(), exc.status)


class Bucket:
    """Bitrix24's leaky bucket, per webhook: `burst` requests at once, then `rate` per second."""

    def __init__(self, burst: float, rate: float):
        self.burst, self.rate = burst, rate
        self.levels: dict[int, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, key: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self.lock:
            level, at = self.levels.get(key, (0.0, now))
            level = max(0.0, level - (now - at) * self.rate)
            if level + 1 > self.burst:
                self.levels[key] = (level, now)
                return False
            self.levels[key] = (level + 1, now)
            return True


BUCKET = Bucket(float(os.environ.get("RXCRM_REST_BURST", "50")), float(os.environ.get("RXCRM_REST_RATE", "2")))


def _split(path: str) -> tuple[str, str, str]:
    """`1/abc/crm.deal.list.json/` → ("1", "abc", "crm.deal.list"); anything else (the OAuth
    form /rest/<method>, REST v3 /rest/api/…) is an unknown method."""
    parts = [p for p in path.strip("/").split("/") if p != ""]
    if len(parts) != 3 or not parts[0].isdigit():
        raise wire.method_not_found()
    name = parts[2]
    for suffix in (".json", ".xml"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return parts[0], parts[1], name


async def _params(request: Request) -> dict:
    query = wire.parse_query(request.url.query)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > BODY_MAX:
        raise wire.RestError("Request entity too large", "ERROR_ARGUMENT", 413)
    if request.method != "POST":
        return query
    if kind == "multipart/form-data":
        form = await request.form()
        body = wire.parse_pairs((k, v if isinstance(v, str) else "") for k, v in form.multi_items())
    else:
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > BODY_MAX:
                raise wire.RestError("Request entity too large", "ERROR_ARGUMENT", 413)
        body = wire.parse_body(raw, kind)
    return wire.merge(query, body)


async def rest_endpoint(request: Request) -> Response:
    started = time.time()
    try:
        user_id, code, name = _split(request.path_params.get("rest", ""))
        params = await _params(request)
        client = request.client.host if request.client else ""
        caller = await run_in_threadpool(methods.authenticate, user_id, code, client)
        if not BUCKET.take(caller.hook_id):
            raise wire.RestError("Too many requests", "QUERY_LIMIT_EXCEEDED", 503)
        if name.lower() == "batch":
            result = await run_in_threadpool(methods.batch, caller, params)
            return _json(wire.envelope(result, started, time.time() - started))
        answer = await run_in_threadpool(methods.run, caller, name, params)
        return _json(wire.envelope(answer, started, time.time() - started))
    except wire.RestError as exc:
        return _error(exc)
    except Exception:  # noqa: BLE001 - a bug: logged, answered as Bitrix24 does, never a bare 500 page
        log.exception("REST call failed: %s", request.url.path)
        return _json({"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}, 500)


routes = [Route("/rest/{rest:path}", rest_endpoint, methods=["GET", "POST"])]

__all__ = ["BUCKET", "Bucket", "rest_endpoint", "routes"]
