"""The bell: reminders (idempotent), assignment and automation notices, unread/mark read per user."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import Activity, Notification, Stage, User
from rxcrm.services import activities as acts
from rxcrm.services import items, notifications as notes, rules_engine
from rxcrm.services.auth import actor_for
from rxcrm.services.context import Actor
from rxcrm.settings import TZ

from . import factories as f

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=TZ)


@pytest.fixture
def w(db):
    with session_scope(db) as s:
        m1 = f.user(s, "manager1", full_name="Петров Иван")
        m2 = f.user(s, "manager2", full_name="Сидорова Анна")
        head = f.user(s, "head", role="head", full_name="Начальник Отдела")
        d1 = f.deal(s, "Python — Иванов", m1)
        d2 = f.deal(s, "Проекты — Кузнецова", m2)
        l1 = f.lead(s, "Вопрос с лендинга", m1)
        ids = dict(m1=m1.id, m2=m2.id, head=head.id, d1=d1.id, d2=d2.id, l1=l1.id)
        a = {u.login: actor_for(u) for u in (m1, m2, head)}
    return db, a, ids


def plan(s, actor, entity, item_id, **kw):
    args = dict(kind="call", subject="Позвонить", start_at=NOW + timedelta(hours=1), duration_min=10, now=NOW)
    args.update(kw)
    return acts.plan_activity(s, actor, entity, item_id, **args)


def _texts(s, user_id):
    return [n.text for n in s.exec(select(Notification).where(Notification.user_id == user_id)
                                   .order_by(Notification.id))]


# ---- reminders ------------------------------------------------------------------------

def test_due_reminders_are_created_once(w):
    db, a, ids = w
    with session_scope(db) as s:
        call = plan(s, a["manager1"], "deal", ids["d1"], subject="Уточнить оплату", remind_before_min=15)
        later = plan(s, a["manager1"], "lead", ids["l1"], kind="meeting", duration_min=60, subject="Встреча",
                     start_at=NOW + timedelta(hours=3), remind_before_min=60)
        plan(s, a["manager1"], "deal", ids["d1"], subject="Без напоминания")
        plan(s, a["manager2"], "deal", ids["d2"], subject="Чужой звонок", remind_before_min=0,
             start_at=NOW + timedelta(minutes=90))
    at = NOW + timedelta(minutes=45)  # the call's reminder (12:45) is due, m2's (13:30) is not yet
    with session_scope(db) as s:
        assert notes.due_reminders(s, now=at) == 1
    with session_scope(db) as s:
        assert notes.due_reminders(s, now=at) == 0  # idempotent
        assert _texts(s, ids["m1"]) == [
            "Напоминание: Звонок «Уточнить оплату», 20 ноября 13:00 — Сделка «Python — Иванов»"]
        n = s.exec(select(Notification)).one()
        assert (n.kind, n.entity_type, n.entity_id) == ("reminder", "deal", ids["d1"])
        act = s.get(Activity, call.id)
        assert act.remind_at is None and act.remind_before_min == 15  # claimed; the choice is kept
        assert s.get(Activity, later.id).remind_at == NOW + timedelta(hours=2)
    with session_scope(db) as s:
        assert notes.due_reminders(s, now=NOW + timedelta(hours=2, minutes=1)) == 2
        assert notes.due_reminders(s, now=NOW + timedelta(hours=2, minutes=1)) == 0
    with session_scope(db) as s:
        assert len(_texts(s, ids["m1"])) == 2 and len(_texts(s, ids["m2"])) == 1
        assert "Встреча «Встреча»" in _texts(s, ids["m1"])[1] and "Лид «Вопрос с лендинга»" in _texts(s, ids["m1"])[1]
        assert _texts(s, ids["m2"]) == [
            "Напоминание: Звонок «Чужой звонок», 20 ноября 13:30 — Сделка «Проекты — Кузнецова»"]


def test_reschedule_rearms_and_completion_cancels_a_reminder(w):
    db, a, ids = w
    with session_scope(db) as s:
        one = plan(s, a["manager1"], "deal", ids["d1"], subject="Первый", remind_before_min=10)
        two = plan(s, a["manager1"], "deal", ids["d1"], subject="Второй", remind_before_min=10)
    with session_scope(db) as s:
        assert notes.due_reminders(s, now=NOW + timedelta(minutes=55)) == 2
    with session_scope(db) as s:  # moved to tomorrow: a new reminder is due then
        acts.reschedule_activity(s, a["manager1"], one.id, NOW + timedelta(days=1), now=NOW)
        acts.complete_activity(s, a["manager1"], two.id, now=NOW)
        assert s.get(Activity, one.id).remind_at == NOW + timedelta(days=1, minutes=-10)
        assert s.get(Activity, two.id).remind_at is None
    with session_scope(db) as s:
        assert notes.due_reminders(s, now=NOW + timedelta(hours=2)) == 0
        assert notes.due_reminders(s, now=NOW + timedelta(days=1, minutes=-5)) == 1
        assert notes.due_reminders(s, now=NOW + timedelta(days=1, minutes=-5)) == 0


def test_stale_reminders_and_deleted_items_are_dropped_silently(w):
    db, a, ids = w
    with session_scope(db) as s:
        plan(s, a["manager1"], "deal", ids["d1"], subject="Давно прошло", remind_before_min=5)
        gone = plan(s, a["manager1"], "lead", ids["l1"], subject="Лид удалён", remind_before_min=5,
                    start_at=NOW + timedelta(hours=2))  # not stale at 14:30: dropped for the deletion
    with session_scope(db) as s:
        items.delete_item(s, a["manager1"], "lead", ids["l1"])
    with session_scope(db) as s:  # the call started more than an hour ago
        assert notes.due_reminders(s, now=NOW + timedelta(hours=2, minutes=30)) == 0
        assert s.exec(select(Notification)).all() == []
        assert s.get(Activity, gone.id).remind_at is None


# ---- the bell -------------------------------------------------------------------------

def test_unread_and_mark_read_are_per_user(w):
    db, a, ids = w
    with session_scope(db) as s:
        n1 = notes.notify(s, ids["m1"], "assigned", "первое", "deal", ids["d1"], now=NOW)
        n2 = notes.notify(s, ids["m1"], "automation", "второе", "lead", ids["l1"], now=NOW + timedelta(minutes=1))
        n3 = notes.notify(s, ids["m1"], "reminder", "третье", now=NOW + timedelta(minutes=2))
        other = notes.notify(s, ids["m2"], "assigned", "чужое", "deal", ids["d2"], now=NOW)
        s.flush()
        n1_id, n2_id, n3_id, other_id = n1.id, n2.id, n3.id, other.id
    with session_scope(db) as s:
        rows = notes.unread(s, a["manager1"], now=NOW)
        assert [(r["text"], r["href"], r["at"], r["kind"]) for r in rows] == [
            ("третье", "", "20 ноября 12:02", "reminder"),
            ("второе", f"/leads/{ids['l1']}", "20 ноября 12:01", "automation"),
            ("первое", f"/deals/{ids['d1']}", "20 ноября 12:00", "assigned")]
        assert [r["text"] for r in notes.unread(s, a["manager1"], limit=2, now=NOW)] == ["третье", "второе"]
        assert notes.unread_count(s, a["manager1"]) == 3
        assert [r["text"] for r in notes.unread(s, a["manager2"], now=NOW)] == ["чужое"]
        assert notes.unread(s, a["head"], now=NOW) == [] and notes.unread_count(s, a["head"]) == 0
    with session_scope(db) as s:  # another user's id is ignored
        assert notes.mark_read(s, a["manager1"], [n1_id, other_id], now=NOW) == 1
    with session_scope(db) as s:
        assert notes.unread_count(s, a["manager1"]) == 2
        assert notes.unread_count(s, a["manager2"]) == 1
        assert s.get(Notification, n1_id).read_at is not None and s.get(Notification, other_id).read_at is None
        assert notes.mark_read(s, a["manager1"], [], now=NOW) == 0
        assert notes.mark_read(s, a["manager1"], now=NOW) == 2  # all of mine
        assert notes.mark_read(s, a["manager1"], now=NOW) == 0
    with session_scope(db) as s:
        assert notes.unread(s, a["manager1"], now=NOW) == []
        assert notes.unread_count(s, a["manager2"]) == 1
        assert {s.get(Notification, i).read_at is not None for i in (n2_id, n3_id)} == {True}
        assert notes.unread_count(s, Actor.system()) == 0 and notes.mark_read(s, Actor.system()) == 0


# ---- hooks ----------------------------------------------------------------------------

def test_on_assigned_notifies_the_new_responsible_unless_self(w):
    db, a, ids = w
    with session_scope(db) as s:
        # the hook is wired into update_fields (and so bulk assign): no manual call needed
        items.update_fields(s, a["head"], "deal", ids["d1"], {"responsible_id": ids["m2"]})
    with session_scope(db) as s:
        assert _texts(s, ids["m2"]) == ["Вам назначена сделка «Python — Иванов» — Начальник Отдела"]
        n = s.exec(select(Notification)).one()
        assert (n.kind, n.entity_type, n.entity_id) == ("assigned", "deal", ids["d1"])
        # assigning to oneself or not changing anything notifies nobody
        d2 = items.get_item(s, "deal", ids["d2"])
        notes.on_assigned(s, a["manager2"], "deal", d2, None)
        l1 = items.get_item(s, "lead", ids["l1"])
        notes.on_assigned(s, a["head"], "lead", l1, ids["m1"])
        # an inactive user is not notified
        s.get(User, ids["m1"]).is_active = False
        l1.responsible_id = ids["m1"]
        notes.on_assigned(s, a["head"], "lead", l1, None)
    with session_scope(db) as s:
        assert len(s.exec(select(Notification)).all()) == 1
        s.get(User, ids["m1"]).is_active = True
    with session_scope(db) as s:  # an integration (system actor) assigns a new lead
        notes.on_assigned(s, Actor.system("intake"), "lead", items.get_item(s, "lead", ids["l1"]), None)
    with session_scope(db) as s:
        assert _texts(s, ids["m1"]) == ["Вам назначен лид «Вопрос с лендинга»"]


def test_automation_moves_notify_the_responsible(w):
    db, a, ids = w
    with session_scope(db) as s:
        d1 = items.get_item(s, "deal", ids["d1"])
        notes.on_automation_move(s, "deal", d1, "Интерес", "Регистрация", "Все документы получены")
    with session_scope(db) as s:
        assert _texts(s, ids["m1"]) == [
            "Правило «Все документы получены» перевело сделку «Python — Иванов»: Интерес → Регистрация"]
        assert s.exec(select(Notification.kind)).all() == ["automation"]


def test_stage_change_hook_notifies_only_for_rule_moves(w):
    db, a, ids = w
    reg = None
    # notifications.on_stage_changed listens to STAGE_CHANGED (rxcrm/hooks.py)
    with session_scope(db) as s:
        reg = f.stage(s, "dpo", "REGISTRATION").id
        items.move_stage(s, a["manager1"], "deal", ids["d1"], reg)  # by hand: no notice
        prepayment = f.stage(s, "dpo", "PREPAYMENT").id
        rule = Actor(user_id=None, login="Счёт выставлен", full_name="Правило", role="admin",
                     department_id=None, source="rule")
        items.move_stage(s, rule, "deal", ids["d1"], prepayment, values={"first_payment_amount": "1000"})
    with session_scope(db) as s:
        assert _texts(s, ids["m1"]) == [
            "Правило «Счёт выставлен» перевело сделку «Python — Иванов»: Регистрация → Аванс\\Предоплата"]
        assert s.get(Stage, reg).name == "Регистрация"
