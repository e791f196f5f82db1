"""A browser-like client of a running rxcrm (Reflex) app, for load benches.

It does what the page's JavaScript does, over the same wire: logs in through the login
form (POST /api/session → the HttpOnly session cookie), opens the event websocket
(socket.io at /_event) with the page's hydrate event in the CONNECT packet, sends back the
events the server queues (the page's on_load), and sends any state event by name — so it
can drive any page's handler, not only the board.

    client = RxClient("http://127.0.0.1:3311")
    await client.login("manager1", "demo")
    took = await client.open("/deals", until=lambda c: c.var(WORK, "board"))
    took = await client.call(WORK, "on_drag_end", {"result": {...}}, until=...)

`until` is a predicate over the client (its merged state, `updates` received so far for
this call): a call is answered when it holds; `LoadError` when it does not in `timeout`
seconds. Only for loopback targets (the bench refuses anything else)."""
from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import socketio

ROOT_STATE = "reflex___state____state"
HYDRATE = f"{ROOT_STATE}.hydrate_and_load"
SUFFIX = "_rx_state_"


class LoadError(Exception):
    """An event not answered in time, a refused login or a dropped connection."""


def _initial_hashes(web_dir: Path) -> list[str] | None:
    """The per-state hashes of the compiled initial state the page sends on its first
    hydrate (so the server answers only what differs, as it does for a browser)."""
    ctx = web_dir / "utils" / "context.jsx"
    if not ctx.exists():
        return None
    m = re.search(r"initialStateHashes\s*=\s*(\[[^\]]*\])", ctx.read_text(encoding="utf-8"))
    return json.loads(m.group(1)) if m else None


class RxClient:
    def __init__(self, base: str, *, timeout: float = 60.0, web_dir: Path | None = None):
        host = urlsplit(base).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"load only against loopback, not {host}")
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.cookie = ""
        self.state: dict[str, dict] = {}
        self.updates: list[dict] = []  # the updates received since the current call started
        self.notices: list[str] = []  # client-side events the server sent (toasts…), as text
        self.path = "/"
        self._hashes = _initial_hashes(web_dir) if web_dir else None
        self._sio: socketio.AsyncClient | None = None
        self._changed = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None

    # ---- HTTP ---------------------------------------------------------------------------
    async def login(self, login: str, password: str) -> float:
        started = time.perf_counter()
        self._http = self._http or aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        async with self._http.post(f"{self.base}/api/session", data={"login": login, "password": password,
                                                                     "next": "/deals"},
                                   headers={"Origin": self.base}, allow_redirects=False) as r:
            cookies = r.cookies
            if r.status != 303 or "rxcrm_session" not in cookies:
                raise LoadError(f"login {login}: {r.status} {r.headers.get('location', '')}")
            self.cookie = f"rxcrm_session={cookies['rxcrm_session'].value}"
        return time.perf_counter() - started

    # ---- the event websocket -----------------------------------------------------------
    def _router(self) -> dict:
        path, _, query = self.path.partition("?")
        data = {"pathname": path, "asPath": self.path}
        if query:
            data["query"] = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        return data

    def _event(self, name: str, payload: dict) -> dict:
        return {"name": name, "payload": payload, "router_data": self._router()}

    async def _on_update(self, update) -> None:
        if isinstance(update, str):
            update = json.loads(update)
        for state, delta in (update.get("delta") or {}).items():
            self.state.setdefault(state, {}).update(delta)
        self.updates.append(update)
        for ev in update.get("events") or []:  # queued by the server (e.g. the page's on_load)
            name = ev.get("name", "")
            if name.startswith("_"):  # client-side events (call_script, redirect, toast…)
                text = json.dumps(ev.get("payload") or {}, ensure_ascii=False)
                if "toast" in text:
                    self.notices.append(text[:300])
                continue
            await self._sio.emit("event", {"name": name, "payload": ev.get("payload") or {},
                                           "router_data": self._router()}, namespace="/_event")
        self._changed.set()

    async def _wait(self, until: Callable[[RxClient], bool], what: str) -> None:
        deadline = time.perf_counter() + self.timeout
        while not until(self):
            left = deadline - time.perf_counter()
            if left <= 0:
                raise LoadError(f"{what}: no answer in {self.timeout:.0f}s")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=left)
            except asyncio.TimeoutError:
                raise LoadError(f"{what}: no answer in {self.timeout:.0f}s") from None

    async def open(self, path: str, until: Callable[[RxClient], bool]) -> float:
        """Navigate to `path` as a fresh tab would: connect with the hydrate event and wait
        until `until` holds (e.g. the board has arrived). Returns the seconds it took."""
        self.path = path
        self.updates = []
        started = time.perf_counter()
        sio = socketio.AsyncClient(reconnection=False)
        sio.on("event", self._on_update, namespace="/_event")
        self._sio = sio
        payload = {"hashes": self._hashes} if self._hashes else {}
        await sio.connect(f"{self.base}?token={uuid.uuid4()}", socketio_path="/_event", transports=["websocket"],
                          namespaces=["/_event"], headers={"Cookie": self.cookie, "Origin": self.base},
                          auth={"event": self._event(HYDRATE, payload)}, wait_timeout=self.timeout)
        await self._wait(until, f"open {path}")
        return time.perf_counter() - started

    async def call(self, state: str, handler: str, payload: dict, until: Callable[[RxClient], bool]) -> float:
        """Send `state.handler(**payload)` and wait until `until` holds."""
        self.updates = []
        started = time.perf_counter()
        await self._sio.emit("event", self._event(f"{state}.{handler}", payload), namespace="/_event")
        await self._wait(until, f"{handler}")
        return time.perf_counter() - started

    def var(self, state: str, name: str, default=None):
        return self.state.get(state, {}).get(name + SUFFIX, default)

    def updated(self, state: str, name: str) -> int:
        """How many updates of this call carried `state.name`."""
        return sum(1 for u in self.updates if name + SUFFIX in (u.get("delta") or {}).get(state, {}))

    async def close(self) -> None:
        if self._sio is not None:
            await self._sio.disconnect()
        if self._http is not None:
            await self._http.close()
