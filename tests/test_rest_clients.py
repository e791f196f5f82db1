"""Real Bitrix24 clients (fast-bitrix24 1.8.14 and b24pysdk 1.3.2, test dependencies) against our
REST routes served by uvicorn on a loopback port, on SQLite and PostgreSQL: its paging over
more than 1,000 items through batch, `call` with a list of adds (batch under the hood) and
`call_batch` with a `$result` reference. What it gets is compared with the database."""
from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn
from fast_bitrix24 import Bitrix
from sqlmodel import select
from starlette.applications import Starlette

from rxcrm.db import session_scope
from rxcrm.models import Lead
from rxcrm.rest import routes as rest
from rxcrm.services import webhooks
from rxcrm.services.auth import actor_for

from . import factories as f


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def portal(db, monkeypatch):
    monkeypatch.setenv("REFLEX_DB_URL", db)
    with session_scope(db) as s:
        admin = f.user(s, "admin", role="admin", dept_code=None, full_name="Соколов Дмитрий Андреевич")
        m1 = f.user(s, "manager1", full_name="Иванова Мария Олеговна")
        _, code = webhooks.create(s, actor_for(admin), user_id=admin.id, name="Скрипт на fast-bitrix24")
        for i in range(1030):  # more than 1,000: the client pages through batch
            f.lead(s, f"Лид {i:04d}", m1, last=f"Фамилия{i}")
        admin_id = admin.id
    monkeypatch.setattr(rest, "BUCKET", rest.Bucket(50, 2))  # Bitrix24's own limits
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=rest.routes), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            pytest.fail("the REST server did not start")
        time.sleep(0.05)
    try:
        yield Bitrix(f"http://127.0.0.1:{port}/rest/{admin_id}/{code}/", verbose=False), db
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _db_lead_ids(db) -> set[int]:
    with session_scope(db) as s:
        return set(s.exec(select(Lead.id).where(Lead.deleted_at.is_(None))).all())


def test_get_all_pages_through_more_than_a_thousand_leads(portal):
    b, db = portal
    got = b.get_all("crm.lead.list", {"select": ["ID", "TITLE"]})
    assert len(got) == len(_db_lead_ids(db)) > 1000
    assert {int(row["ID"]) for row in got} == _db_lead_ids(db)
    assert all(set(row) == {"ID", "TITLE"} and isinstance(row["ID"], str) for row in got)
    # a filter the server applies: only the leads titled «Лид 10..»
    some = b.get_all("crm.lead.list", {"select": ["ID", "TITLE"], "filter": {"%TITLE": "Лид 10"}})
    with session_scope(db) as s:
        want = set(s.exec(select(Lead.id).where(Lead.title.like("%Лид 10%"))).all())
    assert {int(r["ID"]) for r in some} == want and len(want) == 30  # «Лид 1000»…«Лид 1029»


def test_call_with_a_list_of_sixty_adds_goes_through_batch(portal):
    b, db = portal
    before = _db_lead_ids(db)
    ids = b.call("crm.lead.add", [{"fields": {"TITLE": f"С сайта {i}", "NAME": f"Клиент {i}",
                                              "PHONE": [{"VALUE": f"+7 900 000-{i:02d}-{i:02d}",
                                                         "VALUE_TYPE": "MOBILE"}]}} for i in range(60)])
    assert len(ids) == 60 and all(isinstance(i, int) for i in ids)
    assert _db_lead_ids(db) - before == set(ids)
    with session_scope(db) as s:  # (the client returns the ids in the order its batches finished)
        made = {s.get(Lead, i).title: s.get(Lead, i).first_name for i in ids}
    assert made == {f"С сайта {i}": f"Клиент {i}" for i in range(60)}


def test_call_batch_with_a_result_reference(portal):
    b, db = portal
    first = min(_db_lead_ids(db))
    out = b.call_batch({"halt": 0, "cmd": {
        "a": f"crm.lead.get?ID={first}",
        "b": "crm.lead.list?filter[>ID]=$result[a][ID]&select[0]=ID&order[ID]=ASC"}})
    assert out["a"]["ID"] == str(first)
    listed = [int(r["ID"]) for r in out["b"]]
    assert len(listed) == 50 and all(i > first for i in listed) and listed == sorted(listed)


def test_get_all_over_crm_item_list(portal):
    b, db = portal
    got = b.get_all("crm.item.list", {"entityTypeId": 1, "select": ["id", "title"]})
    assert {row["id"] for row in got} == _db_lead_ids(db)
    assert all(isinstance(row["id"], int) and row["entityTypeId"] == 1 for row in got)


@pytest.fixture
def sdk(portal, monkeypatch):
    """b24pysdk 1.3.2 against the same loopback server. It hard-codes https; as in
    BITRIX24_REST.md, its base URL is turned to http for the loopback test."""
    from b24pysdk import BitrixWebhook, Client
    from b24pysdk.api.callers.call_method import _MethodCaller
    b, db = portal
    base = b.srh.webhook.rstrip("/")  # http://127.0.0.1:P/rest/<uid>/<code>
    host = base.split("://", 1)[1].split("/rest/", 1)[0]
    token = base.split("/rest/", 1)[1]
    monkeypatch.setattr(_MethodCaller, "_base_url", property(lambda self: f"http://{self._domain}/rest"))
    return Client(BitrixWebhook(domain=host, webhook_token=token)), db


def test_b24pysdk_reads_lists_fast_lists_and_profile(sdk):
    client, db = sdk
    profile = client.profile().result
    assert profile["ADMIN"] is True and profile["ID"]
    some_id = min(_db_lead_ids(db))
    lead = client.crm.lead.get(bitrix_id=some_id).result
    assert lead["ID"] == str(some_id)
    everything = client.crm.lead.list(select=["ID", "TITLE"]).as_list().result
    assert {int(r["ID"]) for r in everything} == _db_lead_ids(db)
    fast = client.crm.lead.list(select=["ID"]).as_list_fast().result
    assert {int(r["ID"]) for r in fast} == _db_lead_ids(db)


def test_b24pysdk_error_classes(sdk):
    from b24pysdk.errors import BitrixAPIBadRequest
    client, db = sdk
    with pytest.raises(BitrixAPIBadRequest):
        client.crm.lead.get(bitrix_id=987654321).result
