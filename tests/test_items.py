"""Stage moves (rules, refusals, history), field edits and bulk actions on both backends."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import AuditRecord, Deal, StageHistory, TimelineEvent
from rxcrm.services import events, items, listing
from rxcrm.services.auth import actor_for
from rxcrm.services.errors import AccessDenied, NotFound, ServiceError, ValidationFailed

from . import factories as f


@pytest.fixture
def w(db):
    with session_scope(db) as s:
        m1 = f.user(s, "manager1")
        m2 = f.user(s, "manager2")
        head = f.user(s, "head", role="head")
        director = f.user(s, "director", role="director", dept_code=None)
        d1 = f.deal(s, "Сделка 1", m1)
        d2 = f.deal(s, "Сделка 2", m2)
        st = {c: f.stage(s, "dpo", c).id for c in ("INTEREST", "REGISTRATION", "CONTRACT", "PREPAYMENT", "WON")}
        actors = {u.login: actor_for(u) for u in (m1, m2, head, director)}
    return db, actors, {"d1": d1.id, "d2": d2.id, **st}


def test_move_writes_timeline_history_and_audit(w):
    db, a, ids = w
    with session_scope(db) as s:
        res = items.move_stage(s, a["manager1"], "deal", ids["d1"], ids["REGISTRATION"])
    assert res.changed and (res.from_stage, res.to_stage) == ("Интерес", "Регистрация")
    with session_scope(db) as s:
        d = s.get(Deal, ids["d1"])
        assert d.stage_id == ids["REGISTRATION"] and d.semantic == "process" and d.version == 2
        ev = s.exec(select(TimelineEvent).where(TimelineEvent.entity_id == ids["d1"],
                                                TimelineEvent.kind == "stage_changed")).one()
        assert ev.kind == "stage_changed" and ev.data["from"] == "Интерес" and ev.data["to"] == "Регистрация"
        hist = s.exec(select(StageHistory)).one()
        assert (hist.from_stage_id, hist.stage_id) == (ids["INTEREST"], ids["REGISTRATION"])
        # (entering Регистрация also plans a call by rule: rules/automation.py, tests/test_rules.py)
        assert s.exec(select(AuditRecord.action).where(AuditRecord.source != "rule")).all() == ["move"]


def test_missing_required_fields_refuse_the_move_and_name_them(w):
    db, a, ids = w
    with session_scope(db) as s, pytest.raises(items.MissingFields) as err:
        items.move_stage(s, a["manager1"], "deal", ids["d1"], ids["CONTRACT"])
    assert "Номер договора" in err.value.message
    assert [m["key"] for m in err.value.details["missing"]] == ["custom.dpo_contract_number"]
    with session_scope(db) as s:
        assert s.get(Deal, ids["d1"]).stage_id == ids["INTEREST"]  # nothing changed
        assert s.exec(select(TimelineEvent)).all() == []


def test_filling_the_fields_in_the_dialog_then_moving_is_one_step(w):
    db, a, ids = w
    with session_scope(db) as s:
        items.move_stage(s, a["manager1"], "deal", ids["d1"], ids["CONTRACT"],
                         values={"custom.dpo_contract_number": "Д-2026/15"})
    with session_scope(db) as s:
        d = s.get(Deal, ids["d1"])
        assert d.stage_id == ids["CONTRACT"] and d.custom["dpo_contract_number"] == "Д-2026/15"
        kinds = [(e.kind, e.rule) for e in s.exec(select(TimelineEvent).order_by(TimelineEvent.id))]
    # the last one: the on-enter rule of «Договор» sets the probability (rules/automation.py)
    assert kinds == [("field_changed", ""), ("stage_changed", ""), ("field_changed", "Договор ДПО: вероятность 60%")]


def test_bad_value_in_the_dialog_keeps_everything(w):
    db, a, ids = w
    with session_scope(db) as s, pytest.raises(ValidationFailed) as err:
        items.move_stage(s, a["manager1"], "deal", ids["d1"], ids["PREPAYMENT"],
                         values={"first_payment_amount": "десять"})
    assert "Сумма первого платежа" in err.value.message
    assert err.value.fields == {"first_payment_amount": "Введите число"}
    with session_scope(db) as s:
        items.move_stage(s, a["manager1"], "deal", ids["d1"], ids["PREPAYMENT"],
                         values={"first_payment_amount": "15 000"})
    with session_scope(db) as s:
        assert s.get(Deal, ids["d1"]).first_payment_amount == Decimal("15000")


def test_final_stage_is_not_a_drop_target(w):
    db, a, ids = w
    with session_scope(db) as s, pytest.raises(ValidationFailed) as err:
        items.move_stage(s, a["manager1"], "deal", ids["d1"], ids["WON"])
    assert "Завершить" in err.value.message


def test_permissions_on_moves(w):
    db, a, ids = w
    with session_scope(db) as s, pytest.raises(AccessDenied):
        items.move_stage(s, a["manager1"], "deal", ids["d2"], ids["REGISTRATION"])  # not own
    with session_scope(db) as s, pytest.raises(AccessDenied):
        items.move_stage(s, a["director"], "deal", ids["d1"], ids["REGISTRATION"])  # read-only role
    with session_scope(db) as s:
        assert items.move_stage(s, a["head"], "deal", ids["d2"], ids["REGISTRATION"]).changed
    with session_scope(db) as s, pytest.raises(NotFound):
        items.move_stage(s, a["head"], "deal", 999999, ids["REGISTRATION"])
    with session_scope(db) as s, pytest.raises(ValidationFailed):
        lead_stage = f.stage(s, "leads", "NEW").id
        items.move_stage(s, a["head"], "deal", ids["d1"], lead_stage)


def test_stage_changed_is_published_once_per_move(w):
    db, a, ids = w
    calls = []

    def listener(s, *, actor, entity, item, old, new):
        calls.append((entity, item.id, old.name, new.name))

    events.subscribe(events.STAGE_CHANGED, listener)
    try:
        with session_scope(db) as s:
            items.move_stage(s, a["manager1"], "deal", ids["d1"], ids["REGISTRATION"])
            items.move_stage(s, a["manager1"], "deal", ids["d1"], ids["REGISTRATION"])  # no-op
    finally:
        events.unsubscribe(events.STAGE_CHANGED, listener)
    assert calls == [("deal", ids["d1"], "Интерес", "Регистрация")]


def test_bulk_move_reports_refusals_and_keeps_the_rest(w):
    db, a, ids = w
    with session_scope(db) as s:
        res = items.bulk_move(s, a["manager1"], "deal", [ids["d1"], ids["d2"]], ids["REGISTRATION"])
    assert res.done == 1 and res.refused[0]["id"] == ids["d2"]
    assert "Нет доступа" in res.summary()
    with session_scope(db) as s:
        assert s.get(Deal, ids["d1"]).stage_id == ids["REGISTRATION"]
        assert s.get(Deal, ids["d2"]).stage_id == ids["INTEREST"]


def test_bulk_assign_and_delete(w):
    db, a, ids = w
    with session_scope(db) as s:
        m2 = a["manager2"].user_id
        res = items.bulk_assign(s, a["head"], "deal", [ids["d1"]], m2)
        assert res.done == 1
    with session_scope(db) as s:
        assert s.get(Deal, ids["d1"]).responsible_id == m2
        res = items.bulk_delete(s, a["manager2"], "deal", [ids["d1"], ids["d2"]])
        assert res.done == 2
    with session_scope(db) as s:
        assert listing.count(s, a["head"], "deal", {}) == 0
        assert s.get(Deal, ids["d1"]).deleted_at is not None  # soft
        with pytest.raises(NotFound):
            items.move_stage(s, a["head"], "deal", ids["d1"], ids["REGISTRATION"])


def test_update_fields_validates_and_records_old_new(w):
    db, a, ids = w
    with session_scope(db) as s:
        changes = items.update_fields(s, a["manager1"], "deal", ids["d1"], {"amount": "25 500,50", "title": "Новая"})
    assert changes["amount"] == (10000.0, 25500.5)
    with session_scope(db) as s:
        with pytest.raises(ValidationFailed):
            items.update_fields(s, a["manager1"], "deal", ids["d1"], {"amount": "-5"})
        with pytest.raises(ValidationFailed):
            items.update_fields(s, a["manager1"], "deal", ids["d1"], {"custom.dpo_docs_received": "Может быть"})
        with pytest.raises(ValidationFailed, match="Ответственный"):
            items.update_fields(s, a["manager1"], "deal", ids["d1"], {"responsible_id": 999999})
        with pytest.raises(ServiceError) as err:
            items.update_fields(s, a["manager1"], "deal", ids["d1"], {"title": "X"}, expected_version=1)
        assert err.value.code == "conflict" and "обновите" in err.value.message
