"""Plain HTTP endpoints next to the Reflex app (Starlette routes, see shared/REFLEX_NOTES.md):
wired in with `rx.App(api_transformer=Starlette(routes=routes))`.

`GET /api/export/{token}` hands a finished Excel export to the user who made it. Files come
only from the private export store (services.export), never from Reflex's public upload dir."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from rxcrm.db import session_scope
from rxcrm.services import auth, export

SESSION_COOKIE = "rxcrm_session"  # the cookie AppState keeps the session token in

NOT_LOGGED_IN = "Войдите в систему, чтобы скачать файл"
NOT_FOUND = "Файл не найден или срок его хранения истёк"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status,
                        headers={"Cache-Control": "no-store"})


def _user_id(token: str) -> int | None:
    with session_scope() as s:
        user = auth.resolve(s, token)
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
    cookie = request.cookies.get(SESSION_COOKIE, "")
    user_id = await run_in_threadpool(_user_id, cookie) if cookie else None
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


routes = [
    Route("/api/export/{token}", download_export, methods=["GET"], name="download_export"),
]

__all__ = ["SESSION_COOKIE", "content_disposition", "download_export", "routes"]
