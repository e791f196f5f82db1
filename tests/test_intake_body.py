"""Issue 11 — the intake endpoint never reads a body bigger than its cap: a Content-Length
over the cap is a 413 before anything is read; a body streamed without (or with a lying)
Content-Length is a 413 as soon as the cap is passed, the rest left unread. Driven as raw
ASGI so the test sees exactly how much of the body the endpoint pulled."""
from __future__ import annotations

import asyncio
import json

import pytest
from starlette.applications import Starlette

from rxcrm import api
from rxcrm.db import session_scope
from rxcrm.services import intake

from . import factories as f

CHUNK = 64 * 1024
HUGE = 100 * 1024 * 1024  # 100 MB


@pytest.fixture
def app(db, monkeypatch):
    with session_scope(db) as s:
        f.user(s, "manager1")
        intake.ensure_demo_tokens(s)
    monkeypatch.setenv("REFLEX_DB_URL", db)
    return Starlette(routes=api.routes)


class Body:
    """An ASGI `receive` handing out `total` bytes in chunks, counting what was pulled."""

    def __init__(self, total: int = 0, data: bytes | None = None, chunk: int = CHUNK):
        self.data, self.total, self.chunk = data, len(data) if data is not None else total, chunk
        self.read = 0

    async def __call__(self):
        if self.read >= self.total:
            await asyncio.sleep(3600)  # after the body: a client that keeps the connection
        n = min(self.chunk, self.total - self.read)
        piece = self.data[self.read:self.read + n] if self.data is not None else b" " * n
        self.read += n
        return {"type": "http.request", "body": piece, "more_body": self.read < self.total}


def call(app, body: Body, content_length: str | None) -> tuple[int, dict]:
    headers = [(b"authorization", f"Bearer {intake.DEMO_TOKEN}".encode()), (b"content-type", b"application/json"),
               (b"host", b"intake.test")]
    if content_length is not None:
        headers.append((b"content-length", content_length.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/intake/landing", "raw_path": b"/api/intake/landing", "query_string": b"",
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000), "server": ("intake.test", 80)}
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    asyncio.run(asyncio.wait_for(app(scope, body, send), 60))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(payload)


def test_content_length_over_the_cap_is_refused_before_reading(app):
    body = Body(HUGE)
    status, answer = call(app, body, str(HUGE))
    assert status == 413 and "КБ" in answer["error"]
    assert body.read == 0


@pytest.mark.parametrize("content_length", [None, "100"], ids=["chunked", "lying"])
def test_a_streamed_body_is_cut_off_at_the_cap(app, content_length):
    body = Body(HUGE)
    status, answer = call(app, body, content_length)
    assert status == 413 and "КБ" in answer["error"]
    assert body.read <= api.INTAKE_MAX_BYTES + CHUNK  # stopped right after the cap, not 100 MB


def test_a_body_at_the_cap_in_small_chunks_is_read_whole(app):
    event = {"event_id": "chunks-1", "form": "question", "question": "Когда старт?",
             "client": {"last_name": "Кусков", "first_name": "Олег", "phone": "+79001112233"}}
    raw = json.dumps(event, ensure_ascii=False).encode()
    raw += b" " * (api.INTAKE_MAX_BYTES - len(raw))  # exactly the cap: still accepted
    body = Body(data=raw, chunk=1000)
    status, answer = call(app, body, None)
    assert status == 200, answer
    assert answer["status"] == "processed" and body.read == api.INTAKE_MAX_BYTES


def test_a_bad_content_length_is_a_400(app):
    body = Body(10)
    status, answer = call(app, body, "ten")
    assert status == 400 and answer["field"] == "Content-Length" and body.read == 0
