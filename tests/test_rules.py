"""Automation rules (automation_rule rows, written from rules/automation.py; applied by
services/rules_engine.py): field-triggered moves, on-enter actions, the loop guard, the
activity discipline on the Russian production calendar, and the leads work queue — on
SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from types import SimpleNamespace

import holidays
import pytest
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import (Activity, AuditRecord, AutomationRule, Deal, Lead, Notification, Stage, StageHistory,
                          TimelineEvent, User, utcnow)
from rxcrm.services import activities as acts
from rxcrm.services import events as domain_events
from rxcrm.services import items, listing, queue, rules_engine, views, workdays
from rxcrm.services.auth import actor_for
from rxcrm.services.errors import ValidationFailed
from rxcrm.settings import TZ

from . import factories as f

DOCS_RULE = "Документы получены → Регистрация"
REG_RULE = "Регистрация ДПО: подтвердить"


@pytest.fixture
def w(db):
    with session_scope(db) as s:
        m1 = f.user(s, "manager1", full_name="Петров Иван")
        m2 = f.user(s, "manager2", full_name="Сидорова Анна")
        head = f.user(s, "head", role="head", full_name="Начальникова Ольга")
        d1 = f.deal(s, "Python — Иванов", m1)
        d2 = f.deal(s, "Проекты — Кузнецова", m1, stage_code="CONTRACT", custom={"dpo_contract_number": "Д-1"})
        ids = dict(m1=m1.id, m2=m2.id, head=head.id, d1=d1.id, d2=d2.id)
        a = {u.login: actor_for(u) for u in (m1, m2, head)}
    return db, a, ids


def stage_code(s, deal_id: int) -> str:
    return s.get(Stage, s.get(Deal, deal_id).stage_id).code


def events(s, entity_id: int, kind: str, entity: str = "deal") -> list[TimelineEvent]:
    return list(s.exec(select(TimelineEvent).where(TimelineEvent.entity_type == entity,
                                                   TimelineEvent.entity_id == entity_id,
                                                   TimelineEvent.kind == kind).order_by(TimelineEvent.id)).all())


# ---- field-triggered moves ------------------------------------------------------------

def test_docs_received_moves_interest_to_registration_and_names_the_rule(w):
    db, a, ids = w
    with session_scope(db) as s:
        items.update_fields(s, a["manager1"], "deal", ids["d1"], {"custom.dpo_docs_received": "Да"})
    with session_scope(db) as s:
        assert stage_code(s, ids["d1"]) == "REGISTRATION"
        moved = events(s, ids["d1"], "stage_changed")
        assert [(e.data["from"], e.data["to"], e.rule, e.user_id) for e in moved] == \
            [("Интерес", "Регистрация", DOCS_RULE, None)]
        # the person's own edit is theirs, not the rule's
        edit = events(s, ids["d1"], "field_changed")
        assert [(e.data["field"], e.rule, e.user_id) for e in edit] == \
            [("custom.dpo_docs_received", "", ids["m1"])]
        hist = s.exec(select(StageHistory).where(StageHistory.entity_id == ids["d1"],
                                                 StageHistory.entity_type == "deal")).all()
        assert len(hist) == 1 and hist[0].user_id is None
        assert s.exec(select(AuditRecord).where(AuditRecord.action == "move", AuditRecord.entity_id == ids["d1"],
                                                AuditRecord.source == "rule")).one()
        bell = s.exec(select(Notification).where(Notification.user_id == ids["m1"])).all()
        assert any(DOCS_RULE in n.text and "Интерес → Регистрация" in n.text for n in bell)
        # entering Регистрация planned the confirmation call for the responsible (on-enter rule)
        act = s.exec(select(Activity).where(Activity.entity_type == "deal", Activity.entity_id == ids["d1"])).one()
        assert (act.subject, act.kind, act.responsible_id, act.done) == ("Подтвердить регистрацию", "call",
                                                                        ids["m1"], False)
        start = act.start_at.astimezone(TZ)
        assert start > utcnow() + timedelta(hours=23)
        assert workdays.is_working_day(start.date()) and 9 <= start.hour < 18 and start.minute == 0
        assert [e.rule for e in events(s, ids["d1"], "activity_planned")] == [REG_RULE]
        assert s.get(Deal, ids["d1"]).next_activity_at is not None


def test_no_move_when_not_in_interest_or_value_is_not_yes(w):
    db, a, ids = w
    with session_scope(db) as s:
        items.update_fields(s, a["manager1"], "deal", ids["d2"], {"custom.dpo_docs_received": "Да"})
        items.update_fields(s, a["manager1"], "deal", ids["d1"], {"custom.dpo_docs_received": "Нет"})
    with session_scope(db) as s:
        assert stage_code(s, ids["d2"]) == "CONTRACT"
        assert stage_code(s, ids["d1"]) == "INTEREST"
        assert events(s, ids["d1"], "stage_changed") == [] and events(s, ids["d2"], "stage_changed") == []


def test_trigger_runs_on_move_stage_values_too(w):
    """The "required fields" dialog path (move_stage(values=…)) fires triggers as well."""
    db, a, ids = w
    with session_scope(db) as s:
        interest = s.get(Deal, ids["d1"]).stage_id
        items.move_stage(s, a["manager1"], "deal", ids["d1"], interest, values={"custom.dpo_docs_received": "Да"})
    with session_scope(db) as s:
        assert stage_code(s, ids["d1"]) == "REGISTRATION"
        assert [e.rule for e in events(s, ids["d1"], "stage_changed")] == [DOCS_RULE]


def test_trigger_refused_by_required_fields_leaves_a_timeline_note(w):
    db, a, ids = w
    with session_scope(db) as s:
        adm_user = f.user(s, "adm1", dept_code="admissions")
        deal_id = f.deal(s, "Магистратура — Орлов", adm_user, pipe_code="masters", stage_code="APPLICATION").id
        adm = actor_for(adm_user)
    with session_scope(db) as s:
        items.update_fields(s, adm, "deal", deal_id, {"custom.masters_exams_passed": "Да"})
    with session_scope(db) as s:
        assert stage_code(s, deal_id) == "APPLICATION"  # «Сумма баллов» is required for the target
        note = events(s, deal_id, "automation")
        assert len(note) == 1 and note[0].rule == "Экзамены сданы → Все экзамены сданы"
        assert "Сумма баллов" in note[0].data["text"]
        # with the score the same edit moves it
        items.update_fields(s, adm, "deal", deal_id, {"custom.masters_exams_passed": "Нет",
                                                       "custom.masters_exam_score": "250"})
        items.update_fields(s, adm, "deal", deal_id, {"custom.masters_exams_passed": "Да"})
        assert stage_code(s, deal_id) == "EXAMS_PASSED"


# ---- on-enter actions -----------------------------------------------------------------

def test_entering_contract_sets_probability_with_the_rule_named(w):
    db, a, ids = w
    with session_scope(db) as s:
        contract = f.stage(s, "dpo", "CONTRACT")
        items.move_stage(s, a["manager1"], "deal", ids["d1"], contract.id, values={"custom.dpo_contract_number": "Д-7"})
    with session_scope(db) as s:
        d = s.get(Deal, ids["d1"])
        assert d.probability == 60
        ev = [e for e in events(s, ids["d1"], "field_changed") if e.data["field"] == "probability"]
        assert len(ev) == 1 and ev[0].rule == "Договор ДПО: вероятность 60%" and ev[0].user_id is None
        assert (ev[0].data["old"], ev[0].data["new"]) == (0, 60)


def test_entering_prepayment_notifies_the_department_head(w):
    db, a, ids = w
    with session_scope(db) as s:
        prepay = f.stage(s, "dpo", "PREPAYMENT")
        items.move_stage(s, a["manager1"], "deal", ids["d2"], prepay.id, values={"first_payment_amount": "5000"})
    with session_scope(db) as s:
        note = s.exec(select(Notification).where(Notification.user_id == ids["head"])).all()
        assert [n.text for n in note] == ["Сделка «Проекты — Кузнецова» перешла на стадию «Аванс\\Предоплата»"]
        assert note[0].entity_type == "deal" and note[0].entity_id == ids["d2"]
        ev = events(s, ids["d2"], "automation")
        assert len(ev) == 1 and ev[0].rule == "Предоплата ДПО: сообщить руководителю"
        assert "Начальникова Ольга" in ev[0].data["text"]
        # a manager's own move is not an automation move: no "rule moved" notice for them
        assert not s.exec(select(Notification).where(Notification.user_id == ids["m1"])).all()


def test_loop_guard_stops_cyclic_rules(w):
    """Two triggers and two on-enter rules that would bounce a deal forever."""
    db, a, ids = w
    with session_scope(db) as s:  # replace the dpo automation rows with a cycle
        for r in s.exec(select(AutomationRule).where(AutomationRule.pipeline_code == "dpo",
                                                     AutomationRule.kind.in_(("trigger", "on_enter")))).all():
            r.is_active = False
            s.add(r)
        s.add(AutomationRule(kind="trigger", name="A", pipeline_code="dpo", stage_code="INTEREST",
                             config={"field": "custom.dpo_docs_received", "equals": "Да",
                                     "to_stage": "REGISTRATION"}))
        s.add(AutomationRule(kind="trigger", name="B", pipeline_code="dpo", stage_code="REGISTRATION",
                             config={"field": "custom.dpo_docs_received", "equals": "Нет", "to_stage": "INTEREST"}))
        s.add(AutomationRule(kind="on_enter", name="C", pipeline_code="dpo", stage_code="REGISTRATION",
                             config={"actions": [{"type": "set", "field": "custom.dpo_docs_received",
                                                  "value": "Нет"}]}))
        s.add(AutomationRule(kind="on_enter", name="D", pipeline_code="dpo", stage_code="INTEREST",
                             config={"actions": [{"type": "set", "field": "custom.dpo_docs_received",
                                                  "value": "Да"}]}))
    with session_scope(db) as s:
        items.update_fields(s, a["manager1"], "deal", ids["d1"], {"custom.dpo_docs_received": "Да"})
        assert s.info.get("rxcrm_rules_depth", 0) == 0
    with session_scope(db) as s:
        moves = events(s, ids["d1"], "stage_changed")
        assert 1 <= len(moves) <= rules_engine.MAX_DEPTH
        assert {e.rule for e in moves} <= {"A", "B"}


# ---- activity discipline: working days ------------------------------------------------

def independent_add(d: date, n: int) -> date:
    cal = holidays.RU(years=[d.year, d.year + 1])
    while n:
        d += timedelta(days=1)
        if d.weekday() < 5 and d not in cal:
            n -= 1
    return d


def test_working_days_across_the_new_year_holidays():
    got = workdays.add_working_days(date(2026, 12, 29), 5)
    assert got == independent_add(date(2026, 12, 29), 5)
    assert got > date(2027, 1, 8)  # 31 Dec and 1–8 January are not worked
    assert got == date(2027, 1, 14)  # 30 Dec, then 11, 12, 13, 14 January
    # hand-checked: Friday 20 Nov 2026 + 5 working days = Friday 27 Nov 2026
    assert workdays.add_working_days(date(2026, 11, 20), 5) == date(2026, 11, 27)
    assert workdays.add_working_days(date(2027, 1, 3), 0) == date(2027, 1, 11)
    assert workdays.date_long(got) == "14 января 2027"


def test_next_working_hour():
    fri_evening = datetime(2026, 12, 30, 18, 30, tzinfo=TZ)
    assert workdays.next_working_hour(fri_evening) == datetime(2027, 1, 11, 9, 0, tzinfo=TZ)
    assert workdays.next_working_hour(datetime(2026, 11, 23, 10, 15, tzinfo=TZ)) == \
        datetime(2026, 11, 23, 11, 0, tzinfo=TZ)
    assert workdays.next_working_hour(datetime(2026, 11, 21, 12, 0, tzinfo=TZ)) == \
        datetime(2026, 11, 23, 9, 0, tzinfo=TZ)


def test_latest_activity_date_counts_from_last_contact_or_creation():
    now = datetime(2026, 12, 29, 10, 0, tzinfo=TZ)
    contacted = SimpleNamespace(last_contact_at=datetime(2026, 12, 29, 9, 0, tzinfo=TZ), created_at=now)
    assert rules_engine.latest_activity_date(contacted, now) == date(2027, 1, 14)
    never = SimpleNamespace(last_contact_at=None, created_at=datetime(2026, 11, 20, 12, 0, tzinfo=TZ))
    assert rules_engine.latest_activity_date(never, datetime(2026, 11, 20, 13, 0, tzinfo=TZ)) == date(2026, 11, 27)
    # the limit is past: the first working day from today is still allowed
    assert rules_engine.latest_activity_date(never, datetime(2027, 1, 3, 12, 0, tzinfo=TZ)) == date(2027, 1, 11)


def test_planning_later_than_five_working_days_is_refused_with_the_date(w):
    db, a, ids = w
    assert rules_engine.on_activity_scheduling in domain_events.subscribers(domain_events.ACTIVITY_SCHEDULING)
    now = utcnow()
    with session_scope(db) as s:
        d = s.get(Deal, ids["d1"])
        d.last_contact_at = now
        s.add(d)
    limit = max(independent_add(now.astimezone(TZ).date(), 5), now.astimezone(TZ).date())
    with session_scope(db) as s:
        with pytest.raises(ValidationFailed) as exc:
            acts.plan_activity(s, a["manager1"], "deal", ids["d1"], kind="call", subject="Позвонить",
                               start_at=datetime.combine(limit + timedelta(days=1), datetime.min.time(),
                                                         tzinfo=TZ).replace(hour=10), duration_min=10)
        assert exc.value.message == (f"Дело можно запланировать не позже {workdays.date_long(limit)} "
                                     "(5 рабочих дней после последнего контакта)")
        assert exc.value.fields == {"start_at": f"Не позже {workdays.date_long(limit)}"}
    with session_scope(db) as s:
        ok = acts.plan_activity(s, a["manager1"], "deal", ids["d1"], kind="call", subject="Позвонить",
                                start_at=datetime.combine(limit, datetime.min.time(), tzinfo=TZ).replace(hour=17),
                                duration_min=10)
        with pytest.raises(ValidationFailed, match="не позже"):
            acts.reschedule_activity(s, a["manager1"], ok.id, datetime.combine(
                limit + timedelta(days=1), datetime.min.time(), tzinfo=TZ).replace(hour=10))


# ---- work queue -----------------------------------------------------------------------

def test_queue_orders_my_open_leads(w):
    db, a, ids = w
    base = utcnow() - timedelta(days=3)
    with session_scope(db) as s:
        m1, m2 = s.get(User, ids["m1"]), s.get(User, ids["m2"])

        def lead(title, stage, minutes):
            return f.lead(s, title, m1, stage_code=stage, created_at=base + timedelta(minutes=minutes))

        unreachable = lead("Не дозвонились", "PROGRAM", 1)
        s.add(Activity(entity_type="lead", entity_id=unreachable.id, kind="call", subject="Звонок", done=True,
                       done_at=base, start_at=base, result="Не удалось связаться, абонент недоступен",
                       responsible_id=m1.id))
        unreachable2 = lead("Недоступен", "ACQUAINTANCE", 2)
        s.add(Activity(entity_type="lead", entity_id=unreachable2.id, kind="call", subject="Звонок", done=True,
                       done_at=base, start_at=base, result="недоступен", responsible_id=m1.id))
        reached = lead("Дозвонились со второго раза", "INTERESTS", 3)
        for i, res in enumerate(["не удалось связаться", "Договорились о встрече"]):
            s.add(Activity(entity_type="lead", entity_id=reached.id, kind="call", subject="Звонок", done=True,
                           done_at=base + timedelta(hours=i), start_at=base, result=res, responsible_id=m1.id))
        schedule = lead("Назначить встречу", "EDUCATION_LEVEL", 4)
        meeting = lead("Встреча назначена", "INTERESTS", 5)
        s.add(Activity(entity_type="lead", entity_id=meeting.id, kind="meeting", subject="Встреча",
                       start_at=utcnow() + timedelta(days=1), duration_min=60, responsible_id=m1.id))
        program = lead("Программа выбрана", "PROGRAM", 6)
        new_old = lead("Новый давний", "NEW", 7)
        new_new = lead("Новый свежий", "NEW", 8)
        lead("Брак", "JUNK", 0)
        f.lead(s, "Чужой", m2, stage_code="NEW", created_at=base)
        expected = [new_old.id, new_new.id, program.id, meeting.id, reached.id, schedule.id,
                    unreachable.id, unreachable2.id]
    with session_scope(db) as s:
        views.ensure_builtin_presets(s)
        preset = next(p for p in views.list_presets(s, a["manager1"], "leads") if p.code == "queue")
        assert queue.is_queue_preset(preset) and preset.name == "Очередь"
        filters = views.preset_filters(preset, a["manager1"], s)
        got, _ = listing.query_items(s, a["manager1"], "lead", filters, sort="queue", limit=None)
        assert [x.id for x in got] == expected
        page = listing.list_page(s, a["manager1"], "lead", filters, ["title"], sort="queue", desc=True, page=1,
                                 page_size=10)
        assert [r["id"] for r in page.rows] == expected and page.total == len(expected)
        assert listing.ordered_ids(s, a["manager1"], "lead", filters, sort="queue") == expected
        with pytest.raises(ValidationFailed):
            listing.query_items(s, a["manager1"], "deal", {}, sort="queue")
        assert s.exec(select(Lead).where(Lead.title == "Брак")).one()
