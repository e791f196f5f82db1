"""The HTTP edge of the app, wired in rxcrm/rxcrm.py (`api_transformer`): it wraps every
request and the event websocket.

`SecurityMiddleware`
- **The session cookie never reaches the app.** The browser holds the session token in an
  HttpOnly cookie (`rxcrm_session`, unreadable by page JavaScript). The middleware takes it
  out of the `Cookie` header and passes on only its SHA-256 in `x-rxcrm-session` — the form
  in which the database keeps it (`user_session.token_hash`). So Reflex's state (and its
  on-disk/Redis copies, which include the connection's headers) never holds a usable secret:
  a hash presented as a cookie is hashed again and matches nothing. A client-sent
  `x-rxcrm-session` header is dropped.
- **Same origin only.** A websocket upgrade, or a state-changing HTTP request (not GET/HEAD/
  OPTIONS) carrying an `Origin` that is not this app's own (`Origin` host ≠ `Host`, and not
  listed in RXCRM_ALLOWED_ORIGINS) is refused with 403 — no cross-site websocket hijacking,
  no login CSRF. Integration endpoints authenticated by a bearer token in the path or header
  (/api/intake/…, /rest/…) are exempt: they carry no cookie authority. Reflex's CORS layer
  gets only RXCRM_ALLOWED_ORIGINS (rxconfig.py), so it no longer echoes any Origin.
- **Security headers on every response**: a Content-Security-Policy (no inline script, no
  framing, no plugins; `'unsafe-eval'` stays because Reflex runs `rx.call_script` with eval),
  `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`.

Session routes (plain HTTP, so the cookie can be HttpOnly and the password check runs on a
worker thread, never on the event loop):
- `POST /api/session` — the login form: 303 to `next` with the cookie set, or 303 back to
  /login?error=<code>&login=…&next=… (the page shows the message).
- `POST /api/session/logout` — revokes the session, clears the cookie, 303 to /login."""
from __future__ import annotations

import base64
import hashlib
import os
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from rxcrm import i18n
from rxcrm.db import transact
from rxcrm.services import auth
from rxcrm.services.errors import AuthError

SESSION_COOKIE = auth.SESSION_COOKIE
SESSION_HEADER = auth.SESSION_HEADER
LANG_COOKIE = "rxcrm_lang"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_AUTH_PATHS = ("/api/intake/", "/rest/")  # authenticated by a token, not by the cookie
LOGIN_FORM_MAX_BYTES = 16 * 1024

CSP_DIRECTIVES = [
    "default-src 'self'",
    "script-src 'self' 'unsafe-eval' {hashes}",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "frame-ancestors 'none'",
    "form-action 'self'",
    "base-uri 'self'",
    "object-src 'none'",
]
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S)


def _frontend_dir() -> Path | None:
    try:
        from reflex.utils import prerequisites
        from reflex_base import constants
        return (prerequisites.get_web_dir() / constants.Dirs.STATIC).resolve()
    except Exception:  # noqa: BLE001 - no Reflex project here (tests of the edge alone)
        return None


@lru_cache(maxsize=4)
def _inline_script_hashes(build_dir: str, _stamp: float) -> str:
    """'sha256-…' of every inline <script> of the built pages (React Router's boot and
    streaming snippets): the CSP allows exactly these, so no injected inline script runs."""
    found = set()
    for page in Path(build_dir).rglob("*.html"):
        for body in INLINE_SCRIPT.findall(page.read_bytes()):
            found.add("'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'")
    return " ".join(sorted(found))


def csp() -> str:
    build = _frontend_dir()
    hashes = ""
    if build is not None and build.is_dir():
        hashes = _inline_script_hashes(str(build), build.stat().st_mtime)
    return "; ".join(CSP_DIRECTIVES).replace(" {hashes}", f" {hashes}" if hashes else "")


SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def allowed_origins() -> list[str]:
    """Extra origins allowed besides the app's own (comma-separated RXCRM_ALLOWED_ORIGINS)."""
    return [o.strip().rstrip("/") for o in os.environ.get("RXCRM_ALLOWED_ORIGINS", "").split(",") if o.strip()]


def session_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _split_cookie_header(value: str) -> tuple[str, str]:
    """(the session token or "", the Cookie header without it)."""
    token, keep = "", []
    for part in value.split(";"):
        name, _, val = part.strip().partition("=")
        if name == SESSION_COOKIE:
            token = val.strip().strip('"')
        elif part.strip():
            keep.append(part.strip())
    return token, "; ".join(keep)


def rewrite_headers(raw: list[tuple[bytes, bytes]]) -> tuple[list[tuple[bytes, bytes]], dict[str, str]]:
    """The request headers with the session cookie replaced by its hash; also returns the
    headers the checks need (origin, host)."""
    out, seen, token = [], {}, ""
    for name, value in raw:
        lname = name.lower()
        if lname == SESSION_HEADER.encode():
            continue  # only the middleware may say which session this is
        if lname == b"cookie":
            found, rest = _split_cookie_header(value.decode("latin-1"))
            token = token or found
            if rest:
                out.append((name, rest.encode("latin-1")))
            continue
        if lname in (b"origin", b"host"):
            seen[lname.decode()] = value.decode("latin-1")
        out.append((name, value))
    if token:
        out.append((SESSION_HEADER.encode(), session_key(token).encode()))
    return out, seen


def same_origin(origin: str, host: str) -> bool:
    if not origin or origin == "null":
        return False
    netloc = urlsplit(origin).netloc.lower()
    return bool(netloc) and netloc == (host or "").lower() or origin.rstrip("/") in allowed_origins()


class SecurityMiddleware:
    """See the module doc. Pure ASGI (no buffering of bodies, websockets pass through)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers, seen = rewrite_headers(scope.get("headers") or [])
        scope = dict(scope, headers=headers)
        origin = seen.get("origin", "")
        cross = bool(origin) and not same_origin(origin, seen.get("host", ""))
        if scope["type"] == "websocket":
            if cross:
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": 1008})  # → HTTP 403 before the upgrade
                return
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if cross and scope.get("method", "GET") not in SAFE_METHODS and not path.startswith(TOKEN_AUTH_PATHS):
            response = JSONResponse({"error": "forbidden", "message": "Запрос с чужого сайта отклонён"},
                                    status_code=403)
            return await response(scope, receive, self._with_headers(send))
        return await self.app(scope, receive, self._with_headers(send))

    @staticmethod
    def _with_headers(send):
        async def wrapped(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in [(b"content-security-policy", csp().encode()), *SECURITY_HEADERS]
                         if n not in present]
                message = dict(message, headers=[*message.get("headers", []), *extra])
            await send(message)
        return wrapped


# ---- the session routes ---------------------------------------------------------------------

def trusted_proxy_hops() -> int:
    try:
        from reflex_base.config import get_config
        return int(get_config().trusted_proxy_hops or 0)
    except Exception:  # noqa: BLE001 - no Reflex config (a bare Starlette in tests): trust no proxy
        return int(os.environ.get("REFLEX_TRUSTED_PROXY_HOPS", "0") or 0)


def client_ip(scope) -> str:
    """The peer address; behind N trusted reverse proxies the N-th address from the right of
    X-Forwarded-For (the same rule Reflex applies to the websocket). X-Forwarded-For is
    ignored when no proxy is trusted: a client cannot choose its own address."""
    ip = (scope.get("client") or ("",))[0] or ""
    hops = trusted_proxy_hops()
    if hops:
        forwarded = ",".join(v.decode("latin-1") for n, v in scope.get("headers") or [] if n.lower() == b"x-forwarded-for")
        ips = [p.strip() for p in forwarded.split(",") if p.strip()]
        if len(ips) >= hops:
            ip = ips[-hops]
    return ip[:200]


def safe_next(value: str) -> str:
    """Only a local path: never an open redirect."""
    value = (value or "").strip()
    if not value.startswith("/") or value.startswith("//") or value.startswith("/\\") or "\n" in value:
        return "/leads"
    if value.startswith("/login") or value.startswith("/api/"):
        return "/leads"
    return value


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form (the login form), read with a cap."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > LOGIN_FORM_MAX_BYTES:
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > LOGIN_FORM_MAX_BYTES:
            return {}
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return {}
    return {k: v[0] for k, v in parsed.items() if v}


def _cookie_secure(request: Request) -> bool:
    return request.url.scheme == "https" or (
        trusted_proxy_hops() > 0 and request.headers.get("x-forwarded-proto", "") == "https")


async def login(request: Request) -> Response:
    form = await _form(request)
    login_name = (form.get("login") or "")[:100]
    nxt = safe_next(form.get("next") or "")
    client = client_ip(request.scope)
    try:
        token, user = await run_in_threadpool(
            transact, lambda s: _login(s, login_name, form.get("password") or "", client))
    except AuthError as exc:
        params = {"error": exc.code, "login": login_name.strip()}
        if exc.details.get("wait_s"):
            params["wait"] = str(int(exc.details["wait_s"]))
        if nxt != "/leads":
            params["next"] = nxt
        return RedirectResponse("/login?" + urlencode(params), status_code=303,
                                headers={"Cache-Control": "no-store"})
    response = RedirectResponse(nxt, status_code=303, headers={"Cache-Control": "no-store"})
    secure = _cookie_secure(request)
    response.set_cookie(SESSION_COOKIE, token, max_age=int(auth.SESSION_TTL.total_seconds()), path="/",
                        httponly=True, samesite="lax", secure=secure)
    if user["locale"] in i18n.CATALOGS:
        response.set_cookie(LANG_COOKIE, user["locale"], max_age=365 * 24 * 3600, path="/", samesite="lax",
                            secure=secure)
    return response


def _login(s, login_name: str, password: str, client: str):
    token, user = auth.login(s, login_name, password, client=client)
    return token, {"id": user.id, "locale": user.locale}


async def logout(request: Request) -> Response:
    key = request.headers.get(SESSION_HEADER, "")
    if key:
        await run_in_threadpool(transact, lambda s: auth.logout_key(s, key))
    response = RedirectResponse("/login", status_code=303, headers={"Cache-Control": "no-store"})
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_cookie_secure(request))
    return response


routes = [
    Route("/api/session", login, methods=["POST"], name="login"),
    Route("/api/session/logout", logout, methods=["POST"], name="logout"),
]

__all__ = ["SESSION_COOKIE", "csp", "SESSION_HEADER", "SecurityMiddleware", "client_ip", "login", "logout",
           "rewrite_headers", "routes", "safe_next", "same_origin", "session_key"]
