"""Plain HTTP endpoints next to the Reflex app (Starlette routes, see shared/REFLEX_NOTES.md):
wired in with `rx.App(api_transformer=Starlette(routes=routes))`.

`GET /api/export/{token}` hands a finished Excel export to the user who made it. Files come
only from the private export store (services.export), never from Reflex's public upload dir.

`POST /api/intake/{integration}` (marketplace | landing | education) takes integration
events: `Authorization: Bearer <token>`, a JSON object body (services.intake): 401 without a
valid token, 404 for an unknown integration, 400/413/415/422 {"error", "field"} for a bad
body (413 from Content-Length before anything is read, or as soon as a streamed body passes
the cap), 200 with the answer (idempotent by event_id), 202/422 when processing failed
(stored), 202 {"status": "received"} when the event is stored but processing had to be
postponed (a background task finishes it), 503 only when the event could not be stored."""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from urllib.parse import quote

import anyio
import anyio.to_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from rxcrm.db import db_url, session_scope
from rxcrm.services import auth, export, intake

NOT_LOGGED_IN = "Войдите в систему, чтобы скачать файл"
NOT_FOUND = "Файл не найден или срок его хранения истёк"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status,
                        headers={"Cache-Control": "no-store"})


def _user_id(key: str) -> int | None:
    with session_scope(write=False) as s:
        user = auth.resolve_key(s, key)
        return user.id if user else None


def _upload_dir() -> Path | None:
    """Reflex's public upload dir (read without reflex.get_upload_dir's side effects)."""
    try:
        from reflex_base.environment import environment
        return Path(environment.REFLEX_UPLOADED_FILES_DIR.get()).resolve()
    except Exception:  # noqa: BLE001  (reflex not importable: nothing public to avoid)
        return None


def _is_public(path: Path) -> bool:
    up = _upload_dir()
    return up is not None and path.resolve().is_relative_to(up)


def content_disposition(filename: str) -> str:
    """attachment with an ASCII fallback name and the real UTF-8 one (RFC 6266 / 5987)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def download_export(request: Request) -> Response:
    key = request.headers.get(auth.SESSION_HEADER, "")  # the session cookie's hash (rxcrm/web.py)
    user_id = await run_in_threadpool(_user_id, key) if key else None
    if user_id is None:
        return _error(401, "unauthorized", NOT_LOGGED_IN)
    found = await run_in_threadpool(export.export_file, request.path_params["token"], user_id)
    if found is None or _is_public(found[0]):
        return _error(404, "not_found", NOT_FOUND)
    path, filename = found
    return FileResponse(path, media_type=export.XLSX_MIME, headers={
        "Content-Disposition": content_disposition(filename),
        "Cache-Control": "no-store, private",
        "X-Content-Type-Options": "nosniff",
    })


INTAKE_MAX_BYTES = 256 * 1024
# How many intake events one worker processes at once (the others wait in the event loop,
# first come first served): SQLite has one writer anyway — more threads would only fight
# over its lock (and starve the people editing cards meanwhile); PostgreSQL: a share of
# the connection pool.
INTAKE_CONCURRENCY = {"sqlite": 1, "postgresql": 6}
log = logging.getLogger(__name__)
_limiters: dict = {}  # event loop → backend → CapacityLimiter


def _intake_limiter() -> anyio.CapacityLimiter:
    """The worker's intake limiter (one per event loop and backend, FIFO)."""
    loop = asyncio.get_running_loop()
    backend = db_url().split(":", 1)[0].split("+", 1)[0]
    if loop not in _limiters:
        for gone in [lp for lp in _limiters if lp.is_closed()]:
            del _limiters[gone]
    per_loop = _limiters.setdefault(loop, {})
    total = max(1, INTAKE_CONCURRENCY.get(backend, 6))
    limiter = per_loop.get(backend)
    if limiter is None or limiter.total_tokens != total:
        limiter = per_loop[backend] = anyio.CapacityLimiter(total)
    return limiter


def _intake_error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status, headers={"Cache-Control": "no-store"})


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _check_token(integration: str, bearer: str) -> bool:
    with session_scope(write=False) as s:
        return intake.check_token(s, integration, bearer)


def _accept(integration: str, body) -> tuple[int, dict]:
    """Validate, store, process — each step its own unit of work, re-run on a transient
    conflict (services.intake.handle); a stored event whose processing had to be postponed
    is answered 202 "received". Raises only when the event could not be stored."""
    try:
        return intake.handle(integration, body)
    except intake.IntakeError as exc:
        return exc.status, exc.answer()


async def _read_body(request: Request, cap: int) -> bytes | None:
    """The request body, or None as soon as it is longer than `cap` (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def intake_endpoint(request: Request) -> Response:
    integration = request.path_params["integration"]
    if integration not in intake.INTEGRATIONS:
        return _intake_error(404, f"Неизвестная интеграция «{integration}»", "integration")
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not bearer.strip() or \
            not await run_in_threadpool(_check_token, integration, bearer.strip()):
        return JSONResponse({"error": "Нужен действующий токен интеграции (Authorization: Bearer …)",
                             "field": "Authorization"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"})
    too_big = f"Тело запроса больше {INTAKE_MAX_BYTES // 1024} КБ"
    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            return _intake_error(400, "Неверный заголовок Content-Length", "Content-Length")
        if int(length) > INTAKE_MAX_BYTES:
            return _intake_error(413, too_big)
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        return _intake_error(415, "Ожидается Content-Type: application/json")
    raw = await _read_body(request, INTAKE_MAX_BYTES)
    if raw is None:
        return _intake_error(413, too_big)
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return _intake_error(400, f"Неверный JSON: {str(exc)[:200]}")
    try:
        status, answer = await anyio.to_thread.run_sync(_accept, integration, body, limiter=_intake_limiter())
    except Exception:  # noqa: BLE001  (not stored: the sender must send it again)
        log.exception("intake %s: the event could not be stored", integration)
        return _intake_error(503, "Событие не сохранено: сервис временно недоступен, повторите запрос позже")
    return JSONResponse(answer, status_code=status, headers={"Cache-Control": "no-store"})


routes = [
    Route("/api/export/{token}", download_export, methods=["GET"], name="download_export"),
    Route("/api/intake/{integration}", intake_endpoint, methods=["POST"], name="intake"),
]

__all__ = ["content_disposition", "download_export", "intake_endpoint", "routes"]
