"""Integration intake through the HTTP endpoint (POST /api/intake/{integration}) on SQLite
and PostgreSQL: the marketplace story, landing forms, education events, tokens, validation,
idempotency, repeat detection, assignment, failure + replay, and a fuzz test (no 500)."""
from __future__ import annotations

import copy
import warnings
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.applications import Starlette

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from rxcrm import api
from rxcrm.db import session_scope
from rxcrm.models import (
    AuditRecord, Contact, Deal, DealProduct, IntakeEvent, Lead, Notification, Product, Stage,
    TimelineEvent, User,
)
from rxcrm.services import assignment, intake
from rxcrm.services.auth import actor_for

from . import factories as f

TOKEN = intake.DEMO_TOKEN


@pytest.fixture
def world(db):
    with session_scope(db) as s:
        m1 = f.user(s, "manager1", full_name="Петров Иван")
        m2 = f.user(s, "manager2", full_name="Сидорова Анна")
        gone = f.user(s, "manager_old", full_name="Уволенный")
        gone.is_active = False
        head = f.user(s, "head1", role="head", full_name="Волков Олег")
        admin = f.user(s, "admin", role="admin", dept_code=None, full_name="Админ")
        f.user(s, "admissions1", dept_code="admissions", full_name="Орлова Мария")
        intake.ensure_demo_tokens(s)
        ids = {"m1": m1.id, "m2": m2.id, "head": head.id, "gone": gone.id}
        actors = {"admin": actor_for(admin), "m1": actor_for(m1)}
    return db, ids, actors


@pytest.fixture
def client(world, monkeypatch):
    monkeypatch.setenv("REFLEX_DB_URL", world[0])
    return TestClient(Starlette(routes=api.routes))


def post(client, integration, body, token=TOKEN, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post(f"/api/intake/{integration}", json=body, headers=headers, **kw)


def mp(event, event_id, phone="+7 (912) 345-67-89", email="ivanova@example.ru", program=None, **client):
    return {"event_id": event_id, "event": event, "occurred_at": "2026-11-20T10:00:00+03:00",
            "client": {"last_name": "Иванова", "first_name": "Мария", "middle_name": "Петровна",
                       "phone": phone, "email": email, **client},
            "program": program or {"title": "Программирование на Python", "code": "PY-1", "price": 45000,
                                   "start_date": "2027-02-01"}}


def question(event_id, phone="8 (987) 654-32-10", last="Кузнецов", first="Олег"):
    return {"event_id": event_id, "form": "question", "question": "Когда старт?",
            "client": {"last_name": last, "first_name": first, "middle_name": "", "phone": phone}}


def application(event_id, phone="+79001112233", email="smirnov@example.ru", program=None):
    return {"event_id": event_id, "form": "application", "consent": True,
            "client": {"full_name": "Смирнов Алексей Игоревич", "phone": phone, "email": email,
                       "position": "Инженер", "workplace": "АО Завод"},
            "program": program or {"title": "Управление проектами", "price": 60000, "start_date": "2027-03-01"},
            "utm": {"source": "yandex", "utm_campaign": "spring"}}


def stage_code(s, item) -> str:
    return s.get(Stage, item.stage_id).code


# ---- marketplace ----------------------------------------------------------------------

def test_marketplace_story(world, client):
    db, ids, _ = world
    r = post(client, "marketplace", mp("favorite_added", "mp-1"))
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["deal_id"] is None and a["duplicate"] is False and a["stage"] == "Образовательная программа"
    assert a["status"] == "processed" and a["event_id"] == "mp-1"
    lead_id = a["lead_id"]
    with session_scope(db) as s:
        lead = s.get(Lead, lead_id)
        assert stage_code(s, lead) == "PROGRAM" and lead.source == "Маркетплейс"
        assert lead.marketplace_action == "Добавлено в избранное"
        prog = s.get(Product, lead.program_id)  # an unknown program is created
        assert (prog.title, prog.code, prog.price, str(prog.start_date)) == \
            ("Программирование на Python", "PY-1", Decimal("45000.00"), "2027-02-01")
        assert lead.amount == Decimal("45000.00")
        assert lead.responsible_id in (ids["m1"], ids["m2"])
        note = s.execute(select(Notification).where(Notification.user_id == lead.responsible_id)).scalars().one()
        assert note.kind == "assigned" and note.entity_id == lead.id
        rules = set(s.execute(select(TimelineEvent.rule).where(TimelineEvent.entity_type == "lead",
                                                               TimelineEvent.entity_id == lead_id)).scalars())
        assert rules == {"Маркетплейс: favorite_added"}

    r = post(client, "marketplace", mp("favorite_removed", "mp-2", phone="89123456789"))
    assert r.status_code == 200 and r.json()["lead_id"] == lead_id
    assert r.json()["stage"] == "Нецелевые\\Дубли"
    with session_scope(db) as s:
        lead = s.get(Lead, lead_id)
        assert stage_code(s, lead) == "DUPLICATE" and lead.semantic == "failure" and lead.close_reason
        moved = s.execute(select(TimelineEvent).where(TimelineEvent.entity_id == lead_id,
                                                      TimelineEvent.kind == "stage_changed")).scalars().all()
        assert moved[-1].rule == "Маркетплейс: favorite_removed"

    r = post(client, "marketplace", mp("compare_added", "mp-3"))
    assert r.status_code == 200
    assert r.json()["lead_id"] == lead_id and r.json()["stage"] == "Образовательная программа"
    with session_scope(db) as s:
        lead = s.get(Lead, lead_id)
        assert stage_code(s, lead) == "PROGRAM" and lead.semantic == "process"
        assert lead.marketplace_action == "Добавлено в сравнение"
        assert s.execute(select(func.count()).select_from(Lead)).scalar_one() == 1

    r = post(client, "marketplace", mp("cart_added", "mp-4", price=None))
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["lead_id"] == lead_id and a["deal_id"] and a["stage"] == "Интерес"
    assert a["lead_stage"] == "Качественный"
    with session_scope(db) as s:
        deal = s.get(Deal, a["deal_id"])
        lead = s.get(Lead, lead_id)
        assert stage_code(s, deal) == "INTEREST" and deal.source == "Маркетплейс" and deal.lead_id == lead_id
        assert deal.responsible_id == lead.responsible_id and deal.amount == Decimal("45000.00")
        rows = s.execute(select(DealProduct).where(DealProduct.deal_id == deal.id)).scalars().all()
        assert [(r.title, r.price, r.product_id) for r in rows] == \
            [("Программирование на Python", Decimal("45000.00"), lead.program_id)]
        assert stage_code(s, lead) == "CONVERTED" and lead.semantic == "success" and lead.deal_id == deal.id
        contact = s.get(Contact, deal.contact_id)
        assert contact.full_name == "Иванова Мария Петровна" and lead.contact_id == contact.id

    # the cart again (new event id): the open deal is found, nothing new
    r = post(client, "marketplace", mp("cart_added", "mp-5"))
    assert r.status_code == 200 and r.json()["duplicate"] is True and r.json()["deal_id"] == a["deal_id"]
    with session_scope(db) as s:
        assert s.execute(select(func.count()).select_from(Deal)).scalar_one() == 1


def test_duplicate_event_id_answers_the_same_and_changes_nothing(world, client):
    db, _, _ = world
    first = post(client, "marketplace", mp("favorite_added", "mp-dup"))
    second = post(client, "marketplace", mp("favorite_added", "mp-dup"))
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    with session_scope(db) as s:
        assert s.execute(select(func.count()).select_from(Lead)).scalar_one() == 1
        ev = s.execute(select(IntakeEvent)).scalars().one()
        assert (ev.status, ev.attempts, ev.event_type) == ("processed", 1, "favorite_added")
        assert ev.payload["client"]["email"] == "ivanova@example.ru"


def test_known_program_is_reused(world, client):
    db, _, _ = world
    with session_scope(db) as s:
        prog = f.product(s, "Программирование на Python", price=50000)
        pid = prog.id
    r = post(client, "marketplace", mp("favorite_added", "mp-k", program={"title": "программирование на python"}))
    assert r.status_code == 200
    with session_scope(db) as s:
        assert s.get(Lead, r.json()["lead_id"]).program_id == pid
        assert s.execute(select(func.count()).select_from(Product)).scalar_one() == 1


# ---- tokens, routing, validation --------------------------------------------------------

def test_tokens(world, client):
    db, _, actors = world
    body = mp("favorite_added", "mp-t")
    assert post(client, "marketplace", body, token=None).status_code == 401
    assert post(client, "marketplace", body, token="wrong").status_code == 401
    r = client.post("/api/intake/marketplace", json=body, headers={"Authorization": f"Basic {TOKEN}"})
    assert r.status_code == 401 and r.json()["field"] == "Authorization"
    with session_scope(db) as s:
        landing_token = intake.create_token(s, actors["admin"], "landing", "Сайт")
        with pytest.raises(intake.AccessDenied):
            intake.create_token(s, actors["m1"], "landing", "x")
    assert post(client, "marketplace", body, token=landing_token).status_code == 401  # another integration's
    assert post(client, "landing", question("lp-t"), token=landing_token).status_code == 200
    with session_scope(db) as s:
        tok = [t for t in intake.list_tokens(s, actors["admin"]) if t["name"] == "Сайт"][0]
        intake.revoke_token(s, actors["admin"], tok["id"])
    assert post(client, "landing", question("lp-t2"), token=landing_token).status_code == 401
    assert post(client, "nowhere", body).status_code == 404
    with session_scope(db) as s:  # nothing was stored for refused requests
        assert s.execute(select(func.count()).select_from(IntakeEvent)).scalar_one() == 1
        assert intake.has_demo_token(s)


def test_refused_token_and_event_operations_are_audited(world):
    """A manager trying the integrations' admin operations: refused, and each attempt is a
    «denied» audit row naming who tried what."""
    from rxcrm.models import AuditRecord

    db, ids, actors = world
    calls = [("token_create", lambda s: intake.create_token(s, actors["m1"], "landing", "x")),
             ("token_revoke", lambda s: intake.revoke_token(s, actors["m1"], 1)),
             ("token_list", lambda s: intake.list_tokens(s, actors["m1"])),
             ("intake_replay", lambda s: intake.replay(s, actors["m1"], 1)),
             ("intake_events", lambda s: intake.events(s, actors["m1"]))]
    for _action, call in calls:
        with pytest.raises(intake.AccessDenied) as err, session_scope(db) as s:
            call(s)
        assert err.value.message == intake.TOKENS_ADMIN_ONLY
    with session_scope(db) as s:
        rows = s.execute(select(AuditRecord).where(AuditRecord.action == "denied")
                         .order_by(AuditRecord.id)).scalars().all()
        assert [(r.user_id, r.details["action"]) for r in rows] == [(ids["m1"], a) for a, _ in calls]


def _without(body, path):
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = body
    for p in parents:
        node = node[p]
    node.pop(last)
    return body


@pytest.mark.parametrize("integration,body,field", [
    ("marketplace", _without(_without(mp("favorite_added", "v1"), "client.phone"), "client.email"), "client.phone"),
    ("marketplace", _without(mp("favorite_added", "v2"), "program.title"), "program.title"),
    ("marketplace", _without(mp("favorite_added", "v3"), "program"), "program"),
    ("marketplace", _without(mp("favorite_added", "v4"), "event_id"), "event_id"),
    ("marketplace", {**mp("favorite_added", "v5"), "event": "liked"}, "event"),
    ("marketplace", mp("favorite_added", "v6", phone="654-32-10"), "client.phone"),
    ("marketplace", mp("favorite_added", "v7", email="not-an-email"), "client.email"),
    ("marketplace", {**mp("favorite_added", "v8"), "program": {"title": "X", "price": "много"}}, "program.price"),
    ("marketplace", {**mp("favorite_added", "v9"), "program": {"title": "X", "start_date": "1 февраля"}},
     "program.start_date"),
    ("marketplace", {**mp("favorite_added", "v10"), "client": "Иванова"}, "client"),
    ("landing", _without(question("v11"), "client.last_name"), "client.last_name"),
    ("landing", _without(question("v12"), "client.phone"), "client.phone"),
    ("landing", {**application("v13"), "consent": False}, "consent"),
    ("landing", _without(application("v14"), "client.email"), "client.email"),
    ("landing", _without(application("v15"), "client.full_name"), "client.full_name"),
    ("education", {"event_id": "v16", "event": "contract_created"}, "client"),
    ("education", {"event_id": "v17", "event": "contract_created", "deal_id": "abc"}, "deal_id"),
    ("education", {"event_id": "v18", "event": "graduated", "deal_id": 1}, "event"),
    ("education", {"event_id": "v19", "event": "contract_created", "deal_id": 1, "first_payment_amount": -5},
     "first_payment_amount"),
])
def test_validation_names_the_field(client, integration, body, field):
    r = post(client, integration, body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and r.json()["error"]


def test_bad_json(client):
    h = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    assert client.post("/api/intake/landing", content=b"{not json", headers=h).status_code == 400
    assert client.post("/api/intake/landing", content=b"[1, 2]", headers=h).status_code == 400
    assert client.post("/api/intake/landing", content=b'{"a": NaN}', headers=h).status_code == 400
    assert client.post("/api/intake/landing", content=b"\xff\xfe", headers=h).status_code == 400
    assert client.post("/api/intake/landing", content=b"[" * 5000 + b"]" * 5000, headers=h).status_code in (400, 422)
    r = client.post("/api/intake/landing", content=b'{"event_id": "x", "n": 1e999}', headers=h)
    assert r.status_code == 422 and r.json()["field"] == "n"
    r = client.post("/api/intake/landing", content=b'{"event_id": "x\\u0000"}', headers=h)
    assert r.status_code == 422 and r.json()["field"] == "event_id"
    r = client.post("/api/intake/landing", content=b"x" * (api.INTAKE_MAX_BYTES + 1), headers=h)
    assert r.status_code == 413


# ---- landing --------------------------------------------------------------------------

def test_landing_question_and_application(world, client):
    db, ids, _ = world
    r = post(client, "landing", question("lp-1"))
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["deal_id"] is None and a["stage"] == "Не обработан"
    r2 = post(client, "landing", application("lp-2"))
    assert r2.status_code == 200, r2.text
    b = r2.json()
    assert b["lead_id"] is None and b["stage"] == "Регистрация"
    with session_scope(db) as s:
        lead = s.get(Lead, a["lead_id"])
        assert (lead.source, lead.last_name, lead.first_name, stage_code(s, lead)) == \
            ("Лендинг", "Кузнецов", "Олег", "NEW")
        deal = s.get(Deal, b["deal_id"])
        assert stage_code(s, deal) == "REGISTRATION" and deal.source == "Лендинг"
        assert deal.utm_source == "yandex" and deal.utm_campaign == "spring"
        assert deal.responsible_id in (ids["m1"], ids["m2"]) and deal.amount == Decimal("60000.00")
        contact = s.get(Contact, deal.contact_id)
        assert (contact.last_name, contact.first_name, contact.middle_name, contact.position) == \
            ("Смирнов", "Алексей", "Игоревич", "Инженер")
        assert "АО Завод" in deal.comment
        assert s.execute(select(func.count()).select_from(DealProduct)
                         .where(DealProduct.deal_id == deal.id)).scalar_one() == 1


# ---- education ------------------------------------------------------------------------

def test_education_walks_a_deal_through_the_stages(world, client):
    db, _, _ = world
    deal_id = post(client, "landing", application("lp-e")).json()["deal_id"]
    prog = {"title": "Управление проектами"}
    cl = {"phone": "8 900 111-22-33"}

    def edu(event, eid, **kw):
        r = post(client, "education", {"event_id": eid, "event": event, **kw})
        assert r.status_code == 200, r.text
        return r.json()

    # by client + program: the deal is already at Регистрация
    a = edu("application_submitted", "e1", client=cl, program=prog)
    assert a["deal_id"] == deal_id and a["stage"] == "Регистрация" and a["created"] is False
    # Договор needs the contract number: without it the deal stays and the reason is written
    a = edu("contract_created", "e2", deal_id=deal_id)
    assert a["stage"] == "Регистрация" and a["missing"] == ["Номер договора"] and a["changed"] is False
    a = edu("contract_created", "e3", deal_id=deal_id, contract_number="Д-17")
    assert a["stage"] == "Договор"
    # Аванс needs the first payment: lands on the furthest stage it may enter (Договор)
    a = edu("invoice_issued", "e4", deal_id=str(deal_id))
    assert a["stage"] == "Договор" and a["missing"] == ["Сумма первого платежа"]
    a = edu("invoice_issued", "e5", deal_id=deal_id, first_payment_amount=15000)
    assert a["stage"] == "Аванс\\Предоплата"
    assert edu("payment_received", "e6", deal_id=deal_id)["stage"] == "Зачисление"
    assert edu("enrolment_order", "e7", deal_id=deal_id)["stage"] == "Обучение"
    # an out-of-order old event never moves the deal back
    assert edu("payment_received", "e8", deal_id=deal_id)["stage"] == "Обучение"
    with session_scope(db) as s:
        deal = s.get(Deal, deal_id)
        assert deal.custom["dpo_contract_number"] == "Д-17" and deal.first_payment_amount == Decimal("15000.00")
        notes = s.execute(select(TimelineEvent).where(TimelineEvent.entity_id == deal_id,
                                                      TimelineEvent.kind == "intake")
                          .order_by(TimelineEvent.id)).scalars().all()
        assert any("Номер договора" in n.data["text"] for n in notes)
        assert notes[0].rule == "УС ДПО: contract_created"
        moves = s.execute(select(TimelineEvent.rule).where(TimelineEvent.entity_id == deal_id,
                                                           TimelineEvent.entity_type == "deal",
                                                           TimelineEvent.kind == "stage_changed")
                          .order_by(TimelineEvent.id)).scalars().all()
        assert moves == ["УС ДПО: contract_created", "УС ДПО: invoice_issued", "УС ДПО: payment_received",
                         "УС ДПО: enrolment_order"]


def test_education_lands_on_the_furthest_allowed_stage(world, client):
    db, _, _ = world
    deal_id = post(client, "landing", application("lp-f")).json()["deal_id"]
    r = post(client, "education", {"event_id": "f1", "event": "invoice_issued", "deal_id": deal_id,
                                   "contract_number": "Д-5"})
    assert r.status_code == 200 and r.json()["stage"] == "Договор"
    assert r.json()["target_stage"] == "Аванс\\Предоплата"


def test_education_creates_the_deal_when_none_matches(world, client):
    db, _, _ = world
    r = post(client, "education", {"event_id": "n1", "event": "contract_created", "contract_number": "Д-9",
                                   "client": {"last_name": "Новиков", "first_name": "Пётр", "phone": "+79005556677"},
                                   "program": {"title": "Анализ данных", "price": 70000}})
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["created"] is True and a["stage"] == "Договор"


def test_education_unknown_deal_is_stored_as_failed(world, client):
    db, _, _ = world
    r = post(client, "education", {"event_id": "x1", "event": "contract_created", "deal_id": 999999})
    assert r.status_code == 422 and r.json()["field"] == "deal_id" and r.json()["status"] == "failed"
    with session_scope(db) as s:
        ev = s.execute(select(IntakeEvent)).scalars().one()
        assert ev.status == "failed" and "999999" in ev.error


def test_education_may_not_touch_a_deal_outside_its_scope(world, client):
    """УС ДПО may change deals of the ДПО pipeline only: an admissions (magistracy) deal is a
    422 naming why, and the deal stays as it was."""
    db, _, _ = world
    with session_scope(db) as s:
        officer = s.execute(select(User).where(User.login == "admissions1")).scalar_one()
        masters = f.deal(s, "Магистратура: Менеджмент — Орлов", officer, pipe_code="masters",
                         stage_code="REGISTRATION", amount=290000)
        masters_id = masters.id
        before = (masters.stage_id, masters.version, masters.amount, dict(masters.custom or {}),
                  masters.first_payment_amount)
    r = post(client, "education", {"event_id": "sc1", "event": "invoice_issued", "deal_id": masters_id,
                                   "contract_number": "Д-1", "first_payment_amount": 1000, "amount": 1})
    assert r.status_code == 422, r.text
    a = r.json()
    assert a["field"] == "deal_id" and a["status"] == "failed"
    assert f"№{masters_id}" in a["error"] and "Магистратура (платный приём)" in a["error"]
    assert "УС ДПО" in a["error"] and "Воронка ДПО 2 часть" in a["error"] and "вне области" in a["error"]
    with session_scope(db) as s:
        deal = s.get(Deal, masters_id)
        assert (deal.stage_id, deal.version, deal.amount, dict(deal.custom or {}), deal.first_payment_amount) == before
        assert s.execute(select(func.count()).select_from(TimelineEvent).where(
            TimelineEvent.entity_type == "deal", TimelineEvent.entity_id == masters_id)).scalar_one() == 0
        ev = s.execute(select(IntakeEvent).where(IntakeEvent.event_id == "sc1")).scalars().one()
        assert ev.status == "failed" and "вне области" in ev.error
    # a ДПО deal works as before
    dpo_id = post(client, "landing", application("sc-lp")).json()["deal_id"]
    r = post(client, "education", {"event_id": "sc2", "event": "contract_created", "deal_id": dpo_id,
                                   "contract_number": "Д-2"})
    assert r.status_code == 200 and r.json()["stage"] == "Договор"
    assert intake.SCOPE["education"] == {"deal": ("dpo",)}


# ---- repeat detection, assignment ---------------------------------------------------------

def test_repeat_detection(world, client):
    db, _, _ = world
    first = post(client, "landing", question("r1", phone="+7 987 654 32 10")).json()
    second = post(client, "landing", question("r2", phone="8(987)654-32-10", last="Кузнецова")).json()
    assert first["repeat"] is False and second["repeat"] is True
    post(client, "landing", application("r3", phone="+79001112233"))  # a contact now exists
    third = post(client, "marketplace", mp("favorite_added", "r4", phone="8 900 111 22 33", email="")).json()
    assert third["repeat"] is True
    with session_scope(db) as s:
        lead = s.get(Lead, third["lead_id"])
        contact = s.get(Contact, lead.contact_id)
        assert lead.is_repeat and contact.full_name == "Смирнов Алексей Игоревич"
        assert s.execute(select(func.count()).select_from(TimelineEvent).where(
            TimelineEvent.kind == "repeat_detected")).scalar_one() == 2


def test_round_robin_spreads_over_active_managers(world, client):
    db, ids, _ = world
    got = []
    for i in range(4):
        r = post(client, "landing", question(f"rr{i}", phone=f"+7912000000{i}", last=f"Клиент{i}"))
        assert r.status_code == 200
        got.append(r.json()["responsible_id"])
    assert got == [ids["m1"], ids["m2"], ids["m1"], ids["m2"]]  # the deactivated one gets nothing
    with session_scope(db) as s:
        for uid in (ids["m1"], ids["m2"]):
            assert s.execute(select(func.count()).select_from(Notification).where(
                Notification.user_id == uid, Notification.kind == "assigned")).scalar_one() == 2
        assert s.execute(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.action == "intake_assign")).scalar_one() == 4


def test_threshold_sends_big_deals_to_the_head(world, client, monkeypatch):
    db, ids, _ = world
    monkeypatch.setitem(assignment.ASSIGNMENT, "landing", dict(assignment.THRESHOLD_EXAMPLE))
    big = post(client, "landing", application("t1", program={"title": "MBA", "price": 400000})).json()
    small = post(client, "landing", application("t2", phone="+79003334455", email="b@example.ru",
                                                program={"title": "Excel", "price": 9000})).json()
    assert big["responsible_id"] == ids["head"]
    assert small["responsible_id"] in (ids["m1"], ids["m2"])


# ---- failure and replay ---------------------------------------------------------------------

def test_failed_processing_is_stored_and_replayed(world, client, monkeypatch):
    db, _, actors = world
    real = intake.HANDLERS["marketplace"]

    def boom(session, actor, data):
        real(session, actor, data)  # the lead is written … then it fails: all of it is undone
        raise RuntimeError("диск переполнен")

    monkeypatch.setitem(intake.HANDLERS, "marketplace", boom)
    r = post(client, "marketplace", mp("favorite_added", "mp-f"))
    assert r.status_code == 202 and r.json()["status"] == "failed"
    with session_scope(db) as s:
        assert s.execute(select(func.count()).select_from(Lead)).scalar_one() == 0
        ev = s.execute(select(IntakeEvent)).scalars().one()
        assert ev.status == "failed" and "диск переполнен" in ev.error and ev.attempts == 1
        ev_id = ev.id
    monkeypatch.setitem(intake.HANDLERS, "marketplace", real)
    with session_scope(db) as s:
        with pytest.raises(intake.AccessDenied):
            intake.replay(s, actors["m1"], ev_id)
    with session_scope(db) as s:
        status, answer = intake.replay(s, actors["admin"], ev_id)
    assert status == 200 and answer["lead_id"]
    with session_scope(db) as s:
        ev = s.get(IntakeEvent, ev_id)
        assert ev.status == "processed" and ev.attempts == 2 and ev.result["lead_id"] == answer["lead_id"]
        assert s.execute(select(func.count()).select_from(Lead)).scalar_one() == 1
        with pytest.raises(intake.ValidationFailed):
            intake.replay(s, actors["admin"], ev_id)
    again = post(client, "marketplace", mp("favorite_added", "mp-f"))
    assert again.status_code == 200 and again.json() == answer


def test_resending_a_failed_event_processes_it(world, client, monkeypatch):
    db, _, _ = world

    def boom(session, actor, data):
        raise RuntimeError("сбой")

    real = intake.HANDLERS["landing"]
    monkeypatch.setitem(intake.HANDLERS, "landing", boom)
    assert post(client, "landing", question("lp-r")).status_code == 202
    monkeypatch.setitem(intake.HANDLERS, "landing", real)
    r = post(client, "landing", question("lp-r"))
    assert r.status_code == 200 and r.json()["lead_id"]
    with session_scope(db) as s:
        assert s.execute(select(IntakeEvent.attempts)).scalar_one() == 2


# ---- fuzz: never a 500 ------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)

_VALID = {"marketplace": mp("favorite_added", "fz"), "landing": application("fz"),
          "education": {"event_id": "fz", "event": "contract_created", "deal_id": 1,
                        "client": {"phone": "+79001112233"}, "program": {"title": "P"}}}


def _paths(body, prefix=()):
    for k, v in body.items():
        yield prefix + (k,)
        if isinstance(v, dict):
            yield from _paths(v, prefix + (k,))


@st.composite
def _bodies(draw):
    integration = draw(st.sampled_from(sorted(_VALID)))
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return integration, draw(_json)
    body = copy.deepcopy(_VALID[integration])
    paths = list(_paths(body))
    for path in draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3)):
        node = body
        for p in path[:-1]:
            if not isinstance(node.get(p), dict):
                break
            node = node[p]
        else:
            if kind == 1:
                node[path[-1]] = draw(_json)
            else:
                node.pop(path[-1], None)
    if draw(st.integers(0, 3)) == 0:
        body["event_id"] = draw(_json)
    else:
        body["event_id"] = draw(st.text(alphabet="abcdef0123456789-", min_size=1, max_size=8))
    return integration, body


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_bodies())
def test_fuzz_never_500(client, case):
    integration, body = case
    r = post(client, integration, body)
    assert r.status_code < 500, (r.status_code, r.text)
    assert isinstance(r.json(), dict)
