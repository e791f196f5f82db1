"""Outbound events (services/outbound.py): an outbox row in the change's own transaction,
delivered to a receiver on loopback as Bitrix24 posts it — every event once, also when the
delivering process stops in the middle of the queue — retried with backoff; bound by admins
on /settings or through event.bind."""
from __future__ import annotations

import threading
import urllib.parse
import warnings
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import select
from starlette.applications import Starlette

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from starlette.testclient import TestClient

from rxcrm.db import session_scope
from rxcrm.models import RestOutbox, User, utcnow
from rxcrm.rest import routes as rest
from rxcrm.services import create, items, outbound, webhooks
from rxcrm.services.auth import actor_for
from rxcrm.services.errors import AccessDenied, ValidationFailed

from . import factories as f


class Receiver:
    """A loopback HTTP server recording every POST's form; `fail` answers 500 that many times."""

    def __init__(self):
        self.got: list[dict] = []
        self.fail = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if outer.fail > 0:
                    outer.fail -= 1
                    self.send_response(500)
                else:
                    outer.got.append(dict(urllib.parse.parse_qsl(body)))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def world(db, monkeypatch):
    monkeypatch.setenv("REFLEX_DB_URL", db)
    receiver = Receiver()
    with session_scope(db) as s:
        admin = f.user(s, "admin", role="admin", dept_code=None, full_name="Админ")
        m1 = f.user(s, "manager1", full_name="Иванова Мария")
        a = actor_for(admin)
        adds = outbound.bind(s, a, "ONCRMDEALADD", receiver.url, name="Маркетинг")
        upds = outbound.bind(s, a, "onCrmDealUpdate", receiver.url)
        ids = {"admin": admin.id, "m1": m1.id, "pipe": f.pipeline(s, "dpo").id,
               "reg": f.stage(s, "dpo", "REGISTRATION").id, "add_token": adds.application_token,
               "add_binding": adds.id, "upd_binding": upds.id}
    yield db, ids, receiver
    receiver.close()


def _deliver(db, **kw):
    return outbound.deliver_due(lambda write=True: session_scope(db, write=write), **kw)


def _outbox(db):
    with session_scope(db) as s:
        return [(r.event, r.entity_id, r.status) for r in s.exec(select(RestOutbox).order_by(RestOutbox.id)).all()]


def test_a_change_writes_its_outbox_row_in_its_own_transaction(world):
    db, ids, _ = world
    with session_scope(db) as s:
        m1 = actor_for(s.get(User, ids["m1"]))
        deal = create.create_deal(s, m1, pipeline_id=ids["pipe"], title="Новая сделка")
        deal_id = deal.id
        items.update_fields(s, m1, "deal", deal_id, {"title": "Переименована"})  # same unit: announced once, as added
    assert _outbox(db) == [("ONCRMDEALADD", deal_id, "pending")]
    with pytest.raises(RuntimeError), session_scope(db) as s:
        m1 = actor_for(s.get(User, ids["m1"]))
        create.create_deal(s, m1, pipeline_id=ids["pipe"], title="Откатится")
        raise RuntimeError("the unit of work fails after the change")
    assert len(_outbox(db)) == 1  # a rolled back change announces nothing
    with session_scope(db) as s:  # a move and a field change in one unit: one UPDATE
        m1 = actor_for(s.get(User, ids["m1"]))
        items.update_fields(s, m1, "deal", deal_id, {"amount": "15000"})
        items.move_stage(s, m1, "deal", deal_id, ids["reg"])
    assert _outbox(db)[1:] == [("ONCRMDEALUPDATE", deal_id, "pending")]


def test_every_event_reaches_the_receiver_once_as_bitrix24_posts_it_even_across_a_restart(world):
    db, ids, receiver = world
    made = []
    with session_scope(db) as s:
        m1 = actor_for(s.get(User, ids["m1"]))
        for i in range(5):
            made.append(create.create_deal(s, m1, pipeline_id=ids["pipe"], title=f"Сделка {i}").id)
    # the delivering process stops after two deliveries (a restart in the middle of the queue)
    assert _deliver(db, limit=2) == {"delivered": 2, "retry": 0, "failed": 0}
    # a new process picks up what is left
    assert _deliver(db) == {"delivered": 3, "retry": 0, "failed": 0}
    assert _deliver(db) == {"delivered": 0, "retry": 0, "failed": 0}
    assert sorted(int(g["data[FIELDS][ID]"]) for g in receiver.got) == sorted(made)  # each once
    first = receiver.got[0]
    assert first["event"] == "ONCRMDEALADD" and first["event_handler_id"] == str(ids["add_binding"])
    assert first["auth[application_token]"] == ids["add_token"] and first["ts"].isdigit()
    assert {"auth[domain]", "auth[client_endpoint]", "auth[member_id]"} <= set(first)
    assert {status for *_, status in _outbox(db)} == {"delivered"}


def test_a_failing_receiver_is_retried_with_backoff(world):
    db, ids, receiver = world
    with session_scope(db) as s:
        m1 = actor_for(s.get(User, ids["m1"]))
        create.create_deal(s, m1, pipeline_id=ids["pipe"], title="Повтор")
    receiver.fail = 2
    assert _deliver(db) == {"delivered": 0, "retry": 1, "failed": 0}
    assert _deliver(db) == {"delivered": 0, "retry": 0, "failed": 0}  # not due yet: waits RETRY_DELAYS_S[0]
    later = utcnow() + timedelta(seconds=outbound.RETRY_DELAYS_S[0] + 1)
    assert _deliver(db, now=later) == {"delivered": 0, "retry": 1, "failed": 0}
    with session_scope(db) as s:
        row = s.exec(select(RestOutbox)).one()
        assert row.attempts == 2 and row.last_error == "HTTP 500"
        wait = (row.next_at - utcnow()).total_seconds()
        assert outbound.RETRY_DELAYS_S[1] - 5 < wait <= outbound.RETRY_DELAYS_S[1]
    assert _deliver(db, now=utcnow() + timedelta(hours=1)) == {"delivered": 1, "retry": 0, "failed": 0}
    assert len(receiver.got) == 1


def test_a_delivery_fails_after_its_attempts_and_can_be_sent_again(world, monkeypatch):
    db, ids, receiver = world
    with session_scope(db) as s:
        m1 = actor_for(s.get(User, ids["m1"]))
        create.create_deal(s, m1, pipeline_id=ids["pipe"], title="Недоставка")
    receiver.fail = 1000
    far = utcnow()
    for _ in range(outbound.MAX_ATTEMPTS):
        far += timedelta(hours=2)
        _deliver(db, now=far)
    assert _outbox(db)[-1][2] == "failed"
    with session_scope(db) as s:
        row_id = s.exec(select(RestOutbox.id)).one()
        outbound.retry(s, actor_for(s.get(User, ids["admin"])), row_id)
    receiver.fail = 0
    assert _deliver(db)["delivered"] == 1


def test_bindings_are_for_admins_and_refuse_bad_input(world):
    db, ids, receiver = world
    with session_scope(db) as s:
        m1 = actor_for(s.get(User, ids["m1"]))
        admin = actor_for(s.get(User, ids["admin"]))
        with pytest.raises(AccessDenied):
            outbound.bind(s, m1, "ONCRMDEALADD", receiver.url)
        with pytest.raises(ValidationFailed):
            outbound.bind(s, admin, "ONCRMDEALSOMETHING", receiver.url)
        with pytest.raises(ValidationFailed):
            outbound.bind(s, admin, "ONCRMLEADADD", "ftp://example.ru/x")
        again = outbound.bind(s, admin, "ONCRMDEALADD", receiver.url)
        assert again.id == ids["add_binding"]  # the same pair is bound once


def test_event_bind_get_unbind_through_rest(world):
    db, ids, receiver = world
    with session_scope(db) as s:
        a = actor_for(s.get(User, ids["admin"]))
        _, admin_code = webhooks.create(s, a, user_id=ids["admin"], name="Интеграция")
        _, m1_code = webhooks.create(s, a, user_id=ids["m1"], name="Менеджер")
    client = TestClient(Starlette(routes=rest.routes))
    base = f"/rest/{ids['admin']}/{admin_code}/"
    r = client.post(base + "event.bind", json={"event": "ONCRMLEADADD", "handler": receiver.url})
    assert r.status_code == 200 and r.json()["result"] is True
    got = client.post(base + "event.get").json()["result"]
    assert {"event": "ONCRMLEADADD", "handler": receiver.url, "auth_type": "0", "offline": 0} in got
    r = client.post(f"/rest/{ids['m1']}/{m1_code}/event.bind", json={"event": "ONCRMLEADADD", "handler": receiver.url})
    assert r.status_code == 403 and r.json()["error"] == "ACCESS_DENIED"
    with session_scope(db) as s:
        m1 = actor_for(s.get(User, ids["m1"]))
        lead = create.create_lead(s, m1, title="С сайта", first_name="Олег")
        lead_id = lead.id
    _deliver(db)
    assert [g["event"] for g in receiver.got if g.get("data[FIELDS][ID]") == str(lead_id)] == ["ONCRMLEADADD"]
    r = client.post(base + "event.unbind", json={"event": "ONCRMLEADADD", "handler": receiver.url})
    assert r.json()["result"] == {"count": 1}
    assert not any(b["event"] == "ONCRMLEADADD" for b in client.post(base + "event.get").json()["result"])
    with session_scope(db) as s:  # an unbound event is no longer queued
        m1 = actor_for(s.get(User, ids["m1"]))
        create.create_lead(s, m1, title="После отписки", first_name="Анна")
    assert not any(e == "ONCRMLEADADD" and st == "pending" for e, _, st in _outbox(db))
