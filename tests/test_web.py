"""The HTTP edge (rxcrm/web.py): the HttpOnly session cookie set and cleared by the session
routes, the cookie replaced by its hash before the app sees a request, cross-site requests
refused, security headers on every response, the client address behind proxies, and the
password check off the event loop."""
from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from rxcrm import web
from rxcrm.db import db_url, migrate, session_scope
from rxcrm.models import User, UserSession
from rxcrm.services import auth
from rxcrm.services.bootstrap import ensure_defaults

HOST = "http://localhost:3000"


@pytest.fixture(scope="module")
def app_db():
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
        if not s.exec(select(User).where(User.login == "webuser")).first():
            auth.create_user(s, "webuser", "Веб Пользователь", "demo", "manager", None)
    assert db_url().startswith("sqlite:///")
    return db_url()


def _echo(request):
    """An inner endpoint that shows what the app would see of the request."""
    return PlainTextResponse(f"cookie={request.headers.get('cookie', '')}|key={request.headers.get('x-rxcrm-session', '')}")


def _app():
    inner = Starlette(routes=[*web.routes, Route("/echo", _echo, methods=["GET", "POST"])])
    return web.SecurityMiddleware(inner)


def _client(ip: str = "10.1.2.3", **kw) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(), client=(ip, 5555)),
                             base_url=HOST, follow_redirects=False, **kw)


async def _login(client, login="webuser", password="demo", **form):
    return await client.post("/api/session", data={"login": login, "password": password, **form},
                             headers={"Origin": HOST})


async def test_login_sets_an_httponly_cookie_and_goes_on(app_db):
    async with _client() as c:
        r = await _login(c, next="/deals?view=list")
    assert r.status_code == 303 and r.headers["location"] == "/deals?view=list"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("rxcrm_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    with session_scope() as s:
        assert auth.resolve(s, token).login == "webuser"
        row = s.exec(select(UserSession).where(UserSession.token_hash == auth.session_key(token))).one()
        assert row.client == "10.1.2.3"


async def test_wrong_password_goes_back_with_the_reason_and_no_cookie(app_db):
    async with _client() as c:
        r = await _login(c, password="nope", next="/analytics")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?error=bad_password&login=webuser&next=%2Fanalytics"
    assert not any(h.startswith("rxcrm_session=") for h in r.headers.get_list("set-cookie"))


async def test_next_never_leaves_the_site(app_db):
    for nxt in ("//evil.example/", "https://evil.example/", "/\\evil.example", "/api/export/x"):
        async with _client() as c:
            r = await _login(c, next=nxt)
        assert r.headers["location"] == "/leads", nxt


async def test_cross_site_login_post_is_refused(app_db):
    async with _client() as c:
        r = await c.post("/api/session", data={"login": "webuser", "password": "demo"},
                         headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "чужого сайта" in r.json()["message"]
    assert not r.headers.get_list("set-cookie")


async def test_an_oversized_login_form_is_refused_without_reading_it(app_db):
    async with _client() as c:
        r = await c.post("/api/session", content=b"login=webuser&password=" + b"x" * 100_000,
                         headers={"Origin": HOST, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 303 and "error=empty" in r.headers["location"]


async def test_every_response_carries_the_security_headers(app_db):
    async with _client() as c:
        for r in (await c.get("/echo"), await c.get("/api/session"), await _login(c, password="nope")):
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "same-origin"
            csp = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
            assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]


async def test_the_app_sees_only_the_hash_of_the_session_cookie(app_db):
    async with _client() as c:
        r = await c.get("/echo", headers={"x-rxcrm-session": "forged",
                                          "Cookie": "rxcrm_session=secret-token-value; rxcrm_lang=en"})
    cookie, key = r.text.split("|")
    assert "secret-token-value" not in r.text and "rxcrm_session" not in cookie
    assert "rxcrm_lang=en" in cookie
    assert key == "key=" + auth.session_key("secret-token-value")
    async with _client() as c:  # a client-sent hash header is dropped
        r = await c.get("/echo", headers={"x-rxcrm-session": auth.session_key("x")})
    assert r.text.endswith("key=")


async def _websocket(origin: str | None, host: str = "localhost:3000") -> list[dict]:
    sent, reached = [], []

    async def inner(scope, receive, send):
        reached.append(scope)

    headers = [(b"host", host.encode())] + ([(b"origin", origin.encode())] if origin else [])

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    await web.SecurityMiddleware(inner)({"type": "websocket", "path": "/_event/", "headers": headers},
                                        receive, send)
    return sent if not reached else [{"type": "passed"}]


async def test_websocket_from_another_site_is_refused():
    assert await _websocket("http://evil.example") == [{"type": "websocket.close", "code": 1008}]
    assert await _websocket("http://localhost:3001") == [{"type": "websocket.close", "code": 1008}]
    assert await _websocket("null") == [{"type": "websocket.close", "code": 1008}]
    assert await _websocket(HOST) == [{"type": "passed"}]
    assert await _websocket(None) == [{"type": "passed"}]  # non-browser clients send no Origin


async def test_logout_revokes_and_clears_the_cookie(app_db):
    async with _client() as c:
        r = await _login(c)
        token = r.cookies.get("rxcrm_session") or next(
            h for h in r.headers.get_list("set-cookie") if h.startswith("rxcrm_session=")).split(";")[0].split("=", 1)[1]
        out = await c.post("/api/session/logout", headers={"Origin": HOST, "Cookie": f"rxcrm_session={token}"})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    cleared = next(h for h in out.headers.get_list("set-cookie") if h.startswith("rxcrm_session="))
    assert "Max-Age=0" in cleared or "expires=Thu, 01 Jan 1970" in cleared.lower() or 'rxcrm_session=""' in cleared
    with session_scope() as s:
        assert auth.resolve(s, token) is None


def test_client_address_behind_proxies(monkeypatch):
    scope = {"client": ("10.0.0.9", 1), "headers": [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.7")]}
    monkeypatch.setattr(web, "trusted_proxy_hops", lambda: 0)
    assert web.client_ip(scope) == "10.0.0.9"  # not behind a proxy: the header is the client's own words
    monkeypatch.setattr(web, "trusted_proxy_hops", lambda: 1)
    assert web.client_ip(scope) == "203.0.113.7"  # the address our proxy saw, not the forged first entry
    monkeypatch.setattr(web, "trusted_proxy_hops", lambda: 2)
    assert web.client_ip(scope) == "6.6.6.6"


async def test_password_checks_run_off_the_event_loop(app_db):
    """Six logins at once must not stall the loop: it keeps ticking while argon2 works."""
    started = time.perf_counter()
    for _ in range(6):
        auth.verify_password(auth.hash_password("x"), "x")
    serial = time.perf_counter() - started
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker():
        while not done.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - t0 - 0.005)

    async with _client("10.9.9.9") as c:
        tick = asyncio.create_task(ticker())
        answers = await asyncio.gather(*[_login(c, password=("demo" if i % 2 else "bad")) for i in range(6)])
        done.set()
        await tick
    assert all(r.status_code == 303 for r in answers)
    assert max(lags) < serial / 2, (max(lags), serial)
