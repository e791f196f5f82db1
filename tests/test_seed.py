"""The demo data seeder (rxcrm.seed): counts, determinism, safety and data integrity,
on SQLite and PostgreSQL."""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func
from sqlmodel import select

from rxcrm import seed as seed_mod
from rxcrm.db import get_engine, session_scope
from rxcrm.models import (
    Activity, Comment, Communication, Contact, Deal, DealProduct, Department, Lead, Pipeline,
    Stage, StageHistory, TimelineEvent, User,
)
from rxcrm.seed import NOT_EMPTY, SeedRefused, seed_demo
from rxcrm.services import auth
from rxcrm.services.phones import normalize_phone

N_LEADS, N_DEALS = 60, 30


@pytest.fixture
def seeded(db_url) -> tuple[str, dict]:
    return db_url, seed_demo(db_url, N_LEADS, N_DEALS, 42)


def _count(url: str, model) -> int:
    with session_scope(url) as s:
        return s.exec(select(func.count()).select_from(model)).one()


def _snapshot(url: str) -> dict:
    """What must not depend on the backend or the day of the run."""
    with session_scope(url) as s:
        stage_name = {st.id: (st.name, st.semantic) for st in s.exec(select(Stage)).all()}
        leads = s.exec(select(Lead).order_by(Lead.id)).all()
        deals = s.exec(select(Deal).order_by(Deal.id)).all()
        return {
            "lead_titles": [x.title for x in leads],
            "lead_people": [(x.last_name, x.first_name, x.middle_name, x.source) for x in leads],
            "lead_stages": Counter(stage_name[x.stage_id] for x in leads),
            "deal_titles": [x.title for x in deals],
            "deal_amounts": [x.amount for x in deals],
            "deal_stages": Counter(stage_name[x.stage_id] for x in deals),
            "phones": sorted(c.value for c in s.exec(select(Communication)).all()),
        }


def test_counts(seeded):
    url, counts = seeded
    assert counts["lead"] == N_LEADS and _count(url, Lead) == N_LEADS
    assert counts["deal"] == N_DEALS and _count(url, Deal) == N_DEALS
    assert counts["crm_user"] == 9 and _count(url, User) == 9
    assert counts["deal_product"] == N_DEALS
    for model in (Contact, Communication, StageHistory, TimelineEvent, Activity, Comment):
        assert counts[model.__tablename__] == _count(url, model) > 0
    assert counts["contact"] >= int(N_DEALS * 0.8)
    with session_scope(url) as s:
        logins = set(s.exec(select(User.login)).all())
    assert logins == {"admin", "head", "manager1", "manager2", "manager3", "manager4", "director",
                      "admissions1", "admissions2"}


def test_deterministic(db_url, tmp_path):
    """The same seed gives the same data in another database (SQLite, and a run 'on
    another day'), apart from timestamps."""
    seed_demo(db_url, N_LEADS, N_DEALS, 7)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    try:
        seed_demo(other, N_LEADS, N_DEALS, 7, now=datetime(2026, 3, 7, 22, 30, tzinfo=UTC))
        a, b = _snapshot(db_url), _snapshot(other)
    finally:
        get_engine(other).dispose()
    assert a == b
    assert len(set(a["lead_titles"])) > 10
    # A different seed gives different data.
    third = f"sqlite:///{tmp_path / 'third.db'}"
    try:
        seed_demo(third, N_LEADS, N_DEALS, 8)
        assert _snapshot(third)["lead_people"] != a["lead_people"]
    finally:
        get_engine(third).dispose()


def test_never_overwrites(seeded, capsys):
    url, counts = seeded
    before = {m.__tablename__: _count(url, m) for m in (User, Lead, Deal, Contact, Communication)}
    with pytest.raises(SeedRefused, match="База уже содержит данные"):
        seed_demo(url, N_LEADS, N_DEALS, 42)
    assert seed_demo(url, N_LEADS, N_DEALS, 42, if_empty=True) == {}
    assert seed_mod.main(["--db-url", url, "--leads", "5", "--deals", "5"]) == 1
    assert NOT_EMPTY in capsys.readouterr().err
    assert seed_mod.main(["--db-url", url, "--if-empty"]) == 0
    assert NOT_EMPTY in capsys.readouterr().out
    after = {m.__tablename__: _count(url, m) for m in (User, Lead, Deal, Contact, Communication)}
    assert after == before


def test_refuses_db_with_only_users(db_url):
    with session_scope(db_url) as s:
        from rxcrm.services.bootstrap import ensure_defaults
        ensure_defaults(s)
        auth.create_user(s, "someone", "Кто-то", "secret", "manager", None)
    with pytest.raises(SeedRefused):
        seed_demo(db_url, 10, 5, 1)
    assert seed_demo(db_url, 10, 5, 1, if_empty=True) == {}
    assert _count(db_url, User) == 1 and _count(db_url, Lead) == 0 and _count(db_url, Deal) == 0


def test_stages_belong_to_pipeline(seeded):
    url, _ = seeded
    with session_scope(url) as s:
        pipes = {p.id: p for p in s.exec(select(Pipeline)).all()}
        stages = {st.id: st for st in s.exec(select(Stage)).all()}
        items = [("lead", x) for x in s.exec(select(Lead)).all()] + \
                [("deal", x) for x in s.exec(select(Deal)).all()]
        depts = {d.code: d.id for d in s.exec(select(Department)).all()}
        users = {u.id: u for u in s.exec(select(User)).all()}
    semantics = Counter()
    for entity, item in items:
        stage = stages[item.stage_id]
        assert stage.pipeline_id == item.pipeline_id
        assert pipes[item.pipeline_id].entity == entity
        assert item.semantic == stage.semantic
        assert (item.closed_at is not None) == (stage.semantic != "process")
        assert item.created_at <= item.stage_changed_at <= item.updated_at
        assert item.responsible_id in users
        assert item.department_id == users[item.responsible_id].department_id
        semantics[(entity, stage.semantic)] += 1
        if entity == "deal":
            code = pipes[item.pipeline_id].code
            assert item.department_id == depts["dpo" if code == "dpo" else "admissions"]
            if stage.semantic == "failure":
                assert item.lost_reason
            assert all(k.startswith(code + "_") for k in item.custom)
            assert item.custom, "deal custom fields are filled"
    # Real shape: open, won and lost items of both kinds.
    for key in [("lead", "process"), ("lead", "success"), ("lead", "failure"),
                ("deal", "process"), ("deal", "success"), ("deal", "failure")]:
        assert semantics[key] > 0, key


def test_links_and_products(seeded):
    url, _ = seeded
    with session_scope(url) as s:
        leads = {x.id: x for x in s.exec(select(Lead)).all()}
        deals = {x.id: x for x in s.exec(select(Deal)).all()}
        rows = s.exec(select(DealProduct)).all()
        converted = {x.id for x in leads.values() if x.semantic == "success"}
    linked = [d for d in deals.values() if d.lead_id is not None]
    assert linked, "some deals come from converted leads"
    for d in linked:
        lead = leads[d.lead_id]
        assert lead.id in converted and lead.deal_id == d.id
        assert lead.contact_id == d.contact_id
        assert d.created_at >= lead.closed_at
    for lead in leads.values():
        if lead.deal_id is not None:
            assert deals[lead.deal_id].lead_id == lead.id
    assert all(d.contact_id is not None for d in deals.values())
    by_deal = {r.deal_id: r for r in rows}
    assert set(by_deal) == set(deals)
    for d in deals.values():
        r = by_deal[d.id]
        assert r.product_id == d.program_id and r.quantity == 1
        assert Decimal(0) <= r.discount_pct <= Decimal(15)
        assert d.amount == (r.price * (100 - r.discount_pct) / 100).quantize(Decimal("0.01"))


def test_next_activity_and_last_contact(seeded):
    url, _ = seeded
    with session_scope(url) as s:
        acts = s.exec(select(Activity)).all()
        items = [("lead", x) for x in s.exec(select(Lead)).all()] + \
                [("deal", x) for x in s.exec(select(Deal)).all()]
    open_starts, done_at = defaultdict(list), defaultdict(list)
    for a in acts:
        if a.kind == "call":
            assert a.duration_min <= 15
        if a.kind == "meeting":
            assert a.duration_min <= 60
        if a.remind_before_min:
            assert a.remind_at is not None
            assert (a.start_at - a.remind_at).total_seconds() == a.remind_before_min * 60
        if a.done:
            assert a.done_at is not None and a.result
            done_at[(a.entity_type, a.entity_id)].append(a.done_at)
        else:
            open_starts[(a.entity_type, a.entity_id)].append(a.start_at)
    with_planned = 0
    for entity, item in items:
        key = (entity, item.id)
        starts = open_starts.get(key)
        if starts:
            with_planned += 1
            assert item.semantic == "process", "only open items have planned activities"
            assert item.next_activity_at == min(starts)
        else:
            assert item.next_activity_at is None
        dones = done_at.get(key)
        assert item.last_contact_at == (max(dones) if dones else None)
    assert with_planned > 0


def test_phones_normalised(seeded):
    url, _ = seeded
    with session_scope(url) as s:
        comms = s.exec(select(Communication)).all()
        lead_ids = set(s.exec(select(Lead.id)).all())
    phones = [c for c in comms if c.kind == "phone"]
    emails = [c for c in comms if c.kind == "email"]
    assert phones and emails
    for c in phones:
        if c.entity_type in ("lead", "contact"):
            assert re.fullmatch(r"7\d{10}", c.norm), c.value
        assert c.norm == normalize_phone(c.value)
        assert c.norm_rev == c.norm[::-1]
    for c in emails:
        assert re.fullmatch(r"[a-z0-9._-]+@[a-z0-9.-]+\.[a-z]+", c.norm), c.value
    # Typed the way people type: several formats.
    shapes = {re.sub(r"\d", "9", c.value) for c in phones if c.entity_type != "company"}
    assert len(shapes) >= 4
    # Every lead has at least one phone.
    assert {c.entity_id for c in phones if c.entity_type == "lead"} == lead_ids


def test_stage_history_walk(seeded):
    url, _ = seeded
    with session_scope(url) as s:
        first_stage = {}
        for st in s.exec(select(Stage).order_by(Stage.pipeline_id, Stage.sort, Stage.id)).all():
            first_stage.setdefault(st.pipeline_id, st.id)
        hist = defaultdict(list)
        for h in s.exec(select(StageHistory).order_by(StageHistory.created_at, StageHistory.id)):
            hist[(h.entity_type, h.entity_id)].append(h)
        events = defaultdict(Counter)
        changes = defaultdict(list)
        for e in s.exec(select(TimelineEvent).order_by(TimelineEvent.created_at, TimelineEvent.id)):
            events[(e.entity_type, e.entity_id)][e.kind] += 1
            if e.kind == "stage_changed":
                changes[(e.entity_type, e.entity_id)].append(e.data)
            if e.kind == "comment":
                assert e.data["comment_id"] and e.data["text"]
        items = [("lead", x) for x in s.exec(select(Lead)).all()] + \
                [("deal", x) for x in s.exec(select(Deal)).all()]
    for entity, item in items:
        entries = hist[(entity, item.id)]
        assert entries[0].stage_id == first_stage[item.pipeline_id]
        assert entries[0].from_stage_id is None
        assert entries[-1].stage_id == item.stage_id
        assert entries[-1].created_at == item.stage_changed_at
        assert entries[0].created_at == item.created_at
        for prev, cur in zip(entries, entries[1:]):
            assert cur.from_stage_id == prev.stage_id
            assert cur.created_at > prev.created_at
        assert all(h.pipeline_id == item.pipeline_id for h in entries)
        assert events[(entity, item.id)]["created"] == 1
        moves = changes[(entity, item.id)]
        assert [(m["from_stage_id"], m["to_stage_id"]) for m in moves] == \
               [(h.from_stage_id, h.stage_id) for h in entries[1:]]
        assert all(m["from"] and m["to"] for m in moves)


def test_demo_users_can_log_in(seeded):
    url, _ = seeded
    with session_scope(url) as s:
        for login in ("admin", "head", "manager1", "manager2", "director", "admissions1"):
            token, user = auth.login(s, login, "demo")
            assert token and user.login == login
        dpo = s.exec(select(Department).where(Department.code == "dpo")).one()
        head = s.exec(select(User).where(User.login == "head")).one()
        assert dpo.head_id == head.id and head.role == "head" and head.department_id == dpo.id
        roles = {u.login: u.role for u in s.exec(select(User)).all()}
    assert roles["admin"] == "admin" and roles["director"] == "director"
    assert roles["manager1"] == roles["admissions1"] == "manager"


def test_new_rows_after_seed_get_fresh_ids(seeded):
    """Ids were assigned by the seeder: the database's own sequences continue after them
    (PostgreSQL setval)."""
    url, counts = seeded
    with session_scope(url) as s:
        user = auth.create_user(s, "newbie", "Новиков Н.", "pw", "manager", None)
        assert user.id == counts["crm_user"] + 1
        comment = Comment(entity_type="lead", entity_id=1, text="ещё один")
        s.add(comment)
        s.flush()
        assert comment.id == counts["comment"] + 1
