"""Activities, comments, e-mail, «Мои дела» and navigation counters on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import Activity, AuditRecord, Comment, Deal, Lead, TimelineEvent, User
from rxcrm.services import activities as acts
from rxcrm.services import cards, events, items, listing
from rxcrm.services.auth import actor_for
from rxcrm.services.errors import AccessDenied, NotFound, ServiceError, ValidationFailed
from rxcrm.settings import TZ

from . import factories as f

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=TZ)  # a fixed "now" (Moscow noon, a Friday)


@pytest.fixture
def w(db):
    with session_scope(db) as s:
        m1 = f.user(s, "manager1", full_name="Петров Иван")
        m2 = f.user(s, "manager2", full_name="Сидорова Анна")
        adm = f.user(s, "admissions1", dept_code="admissions")
        head = f.user(s, "head", role="head")
        director = f.user(s, "director", role="director", dept_code=None)
        gone = f.user(s, "gone")
        gone.is_active = False
        d1 = f.deal(s, "Python — Иванов", m1)
        d2 = f.deal(s, "Проекты — Кузнецова", m2)
        l1 = f.lead(s, "Вопрос с лендинга", m1)
        c1 = f.contact(s, "Иванов", "Пётр", responsible=m1)
        ids = dict(m1=m1.id, m2=m2.id, adm=adm.id, gone=gone.id, d1=d1.id, d2=d2.id, l1=l1.id, c1=c1.id,
                   dpo=d1.pipeline_id, interest=d1.stage_id)
        a = {u.login: actor_for(u) for u in (m1, m2, adm, head, director)}
    return db, a, ids


def plan(s, actor, entity, item_id, **kw):
    args = dict(kind="call", subject="Позвонить", start_at=NOW + timedelta(hours=1), duration_min=10, now=NOW)
    args.update(kw)
    return acts.plan_activity(s, actor, entity, item_id, **args)


# ---- planning -------------------------------------------------------------------------

def test_plan_writes_activity_timeline_audit_and_next_activity(w):
    db, a, ids = w
    start = NOW + timedelta(hours=2)
    with session_scope(db) as s:
        act = plan(s, a["manager1"], "deal", ids["d1"], kind="meeting", subject="  Встреча в офисе ",
                   start_at=start, duration_min=60, description="Обсудить договор", remind_before_min=30)
        act_id = act.id
    with session_scope(db) as s:
        act = s.get(Activity, act_id)
        assert (act.entity_type, act.entity_id, act.kind, act.subject) == ("deal", ids["d1"], "meeting",
                                                                         "Встреча в офисе")
        assert act.responsible_id == ids["m1"] and act.created_by_id == ids["m1"]  # default: the item's
        assert act.start_at == start and act.remind_at == start - timedelta(minutes=30)
        assert act.done is False and act.duration_min == 60
        assert s.get(Deal, ids["d1"]).next_activity_at == start
        ev = s.exec(select(TimelineEvent).where(TimelineEvent.entity_id == ids["d1"])).one()
        assert ev.kind == "activity_planned"
        assert ev.data == {"activity_id": act_id, "kind": "meeting", "subject": "Встреча в офисе",
                           "start": start.astimezone(UTC).isoformat(), "responsible_id": ids["m1"]}
        rec = s.exec(select(AuditRecord)).one()
        assert (rec.action, rec.entity_type, rec.entity_id) == ("activity_planned", "deal", ids["d1"])
        assert s.get(Deal, ids["d1"]).version == 1  # an activity is no card edit: no version conflict


def test_naive_start_is_moscow_time(w):
    db, a, ids = w
    with session_scope(db) as s:
        act = plan(s, a["manager1"], "deal", ids["d1"], start_at=datetime(2026, 11, 20, 15, 30))
    assert act.start_at == datetime(2026, 11, 20, 15, 30, tzinfo=TZ)


@pytest.mark.parametrize("kw, message, field", [
    ({"kind": "call", "duration_min": 16}, "Звонок — не дольше 15 минут", "duration_min"),
    ({"kind": "meeting", "duration_min": 61}, "Встреча — не дольше 1 часа (60 минут)", "duration_min"),
    ({"kind": "call", "duration_min": 0}, "Длительность должна быть больше нуля", "duration_min"),
    ({"kind": "task", "duration_min": "час"}, "Длительность — целое число минут", "duration_min"),
    ({"subject": "   "}, "Укажите тему", "subject"),
    ({"subject": "т" * 201}, "Тема — не больше 200 символов", "subject"),
    ({"start_at": NOW - timedelta(minutes=6)}, "Нельзя запланировать дело на прошедшее время", "start_at"),
    ({"remind_before_min": 1441}, "Напоминание — от 0 до 1440 минут", "remind_before_min"),
    ({"remind_before_min": -1}, "Напоминание — от 0 до 1440 минут", "remind_before_min"),
    ({"kind": "visit"}, "Неизвестный вид дела", "kind"),
])
def test_plan_validation_refuses_with_a_clear_message(w, kw, message, field):
    db, a, ids = w
    with session_scope(db) as s, pytest.raises(ValidationFailed) as err:
        plan(s, a["manager1"], "deal", ids["d1"], **kw)
    assert message in err.value.message
    assert field in err.value.fields
    with session_scope(db) as s:
        assert s.exec(select(Activity)).all() == []
        assert s.exec(select(TimelineEvent)).all() == []
        assert s.get(Deal, ids["d1"]).next_activity_at is None


def test_limits_themselves_are_accepted(w):
    db, a, ids = w
    with session_scope(db) as s:
        plan(s, a["manager1"], "deal", ids["d1"], kind="call", duration_min=15)
        plan(s, a["manager1"], "deal", ids["d1"], kind="meeting", duration_min=60, remind_before_min=1440)
        plan(s, a["manager1"], "deal", ids["d1"], kind="task", duration_min=240, remind_before_min=0,
             start_at=NOW - timedelta(minutes=4))  # a few minutes late is fine
        plan(s, a["manager1"], "deal", ids["d1"], kind="email", subject="т" * 200)
    with session_scope(db) as s:
        assert len(s.exec(select(Activity)).all()) == 4
        assert s.get(Deal, ids["d1"]).next_activity_at == NOW - timedelta(minutes=4)


def test_responsible_must_be_an_active_user(w):
    db, a, ids = w
    for resp in (ids["gone"], 999_999):
        with session_scope(db) as s, pytest.raises(ValidationFailed) as err:
            plan(s, a["manager1"], "deal", ids["d1"], responsible_id=resp)
        assert "Ответственный не найден или отключён" in err.value.message
    with session_scope(db) as s:
        act = plan(s, a["manager1"], "deal", ids["d1"], responsible_id=ids["m2"])
    assert act.responsible_id == ids["m2"]


def test_validators_are_called_before_saving(w):
    db, a, ids = w
    seen = []

    def five_days(session, *, item, start_at):
        seen.append((item.id, start_at))
        if start_at > NOW + timedelta(days=7):
            raise ValidationFailed("Дело нельзя планировать позже 5 рабочих дней после последнего контакта")

    events.subscribe(events.ACTIVITY_SCHEDULING, five_days)
    try:
        with session_scope(db) as s, pytest.raises(ValidationFailed, match="5 рабочих дней"):
            plan(s, a["manager1"], "deal", ids["d1"], start_at=NOW + timedelta(days=8))
        with session_scope(db) as s:
            act = plan(s, a["manager1"], "deal", ids["d1"], start_at=NOW + timedelta(days=1))
        with session_scope(db) as s, pytest.raises(ValidationFailed, match="5 рабочих дней"):
            acts.reschedule_activity(s, a["manager1"], act.id, NOW + timedelta(days=9), now=NOW)
    finally:
        events.unsubscribe(events.ACTIVITY_SCHEDULING, five_days)
    assert [x[0] for x in seen] == [ids["d1"]] * 3
    with session_scope(db) as s:
        assert len(s.exec(select(Activity)).all()) == 1
        assert s.get(Activity, act.id).start_at == NOW + timedelta(days=1)


# ---- access ---------------------------------------------------------------------------

def test_a_manager_cannot_plan_on_another_managers_deal(w):
    db, a, ids = w
    with session_scope(db) as s, pytest.raises(AccessDenied):
        plan(s, a["manager1"], "deal", ids["d2"])
    with session_scope(db) as s, pytest.raises(AccessDenied):
        plan(s, a["director"], "deal", ids["d1"])  # the director reads, does not edit
    with session_scope(db) as s, pytest.raises(AccessDenied):
        acts.add_comment(s, a["manager1"], "deal", ids["d2"], "Чужая сделка")
    with session_scope(db) as s, pytest.raises(AccessDenied):
        acts.send_email(s, a["manager1"], "deal", ids["d2"], "a@b.ru", "Тема", "Текст")
    with session_scope(db) as s:
        plan(s, a["head"], "deal", ids["d2"])  # the head edits the department's items
    with session_scope(db) as s:
        assert [x.responsible_id for x in s.exec(select(Activity))] == [ids["m2"]]


def test_the_activitys_responsible_may_complete_it_on_a_visible_item(w):
    db, a, ids = w
    with session_scope(db) as s:
        mine = plan(s, a["manager2"], "deal", ids["d2"], responsible_id=ids["m1"])
        other = plan(s, a["manager2"], "deal", ids["d2"], responsible_id=ids["adm"])
        theirs = plan(s, a["manager2"], "deal", ids["d2"])
    with session_scope(db) as s:  # m1 sees the department's deal and the activity is theirs
        acts.complete_activity(s, a["manager1"], mine.id, "Дозвонился", now=NOW)
    with session_scope(db) as s, pytest.raises(AccessDenied):
        acts.complete_activity(s, a["manager1"], theirs.id, now=NOW)
    with session_scope(db) as s, pytest.raises(AccessDenied):
        acts.reschedule_activity(s, a["manager1"], theirs.id, NOW + timedelta(days=1), now=NOW)
    with session_scope(db) as s, pytest.raises(AccessDenied):  # another department cannot see it
        acts.complete_activity(s, a["admissions1"], other.id, now=NOW)
    with session_scope(db) as s, pytest.raises(NotFound):
        acts.complete_activity(s, a["manager1"], 999_999, now=NOW)
    with session_scope(db) as s, pytest.raises(NotFound):
        plan(s, a["manager1"], "deal", 999_999)


# ---- complete / reschedule and the denormalised columns -------------------------------

def _summary(s, actor, ids, now):
    col = next(c for c in listing.board_summary(s, actor, "deal", ids["dpo"], {}, now) if c["id"] == ids["interest"])
    return col["overdue"], col["today"], col["none"]


def test_next_activity_at_follows_plan_complete_and_reschedule(w):
    db, a, ids = w
    m1 = a["manager1"]
    with session_scope(db) as s:
        assert _summary(s, m1, ids, NOW) == (0, 0, 2)  # d1 and d2 have no activity
        tomorrow = plan(s, m1, "deal", ids["d1"], start_at=NOW + timedelta(days=1))
        assert s.get(Deal, ids["d1"]).next_activity_at == NOW + timedelta(days=1)
        assert _summary(s, m1, ids, NOW) == (0, 0, 1)
        soon = plan(s, m1, "deal", ids["d1"], start_at=NOW + timedelta(hours=2))
        assert s.get(Deal, ids["d1"]).next_activity_at == NOW + timedelta(hours=2)
        assert _summary(s, m1, ids, NOW) == (0, 1, 1)
        assert _summary(s, m1, ids, NOW + timedelta(hours=3)) == (1, 0, 1)
    with session_scope(db) as s:
        acts.complete_activity(s, m1, soon.id, "Договорились о встрече", now=NOW)
    with session_scope(db) as s:
        assert s.get(Deal, ids["d1"]).next_activity_at == NOW + timedelta(days=1)
        assert _summary(s, m1, ids, NOW) == (0, 0, 1)
        acts.reschedule_activity(s, m1, tomorrow.id, NOW + timedelta(minutes=30), now=NOW)
    with session_scope(db) as s:
        assert s.get(Deal, ids["d1"]).next_activity_at == NOW + timedelta(minutes=30)
        assert _summary(s, m1, ids, NOW) == (0, 1, 1)
        assert listing.count(s, m1, "deal", {"activity": "today"}, NOW) == 1
        acts.complete_activity(s, m1, tomorrow.id, now=NOW)
    with session_scope(db) as s:
        assert s.get(Deal, ids["d1"]).next_activity_at is None
        assert _summary(s, m1, ids, NOW) == (0, 0, 2)
        kinds = [e.kind for e in s.exec(select(TimelineEvent).where(TimelineEvent.entity_id == ids["d1"])
                                        .order_by(TimelineEvent.id))]
        assert kinds == ["activity_planned", "activity_planned", "activity_done", "activity_rescheduled",
                         "activity_done"]
        ev = s.exec(select(TimelineEvent).where(TimelineEvent.kind == "activity_done")
                    .order_by(TimelineEvent.id)).first()
        assert ev.data == {"activity_id": soon.id, "kind": "call", "subject": "Позвонить",
                           "result": "Договорились о встрече"}
        ev = s.exec(select(TimelineEvent).where(TimelineEvent.kind == "activity_rescheduled")).one()
        assert ev.data["from"] == "2026-11-21T09:00:00+00:00"
        assert ev.data["to"] == "2026-11-20T09:30:00+00:00"
        assert "→" in ev.data["text"]
        assert {r.action for r in s.exec(select(AuditRecord))} == {"activity_planned", "activity_done",
                                                                  "activity_rescheduled"}


def test_refresh_next_activity_repairs_the_column(w):
    db, a, ids = w
    with session_scope(db) as s:
        act = plan(s, a["manager1"], "lead", ids["l1"], start_at=NOW + timedelta(hours=5))
        s.get(Lead, ids["l1"]).next_activity_at = None
        assert acts.refresh_next_activity(s, "lead", ids["l1"]) == act.start_at
        assert s.get(Lead, ids["l1"]).next_activity_at == act.start_at
        assert acts.refresh_next_activity(s, "contact", ids["c1"]) is None


def test_completing_a_call_is_a_contact_a_task_is_not(w):
    db, a, ids = w
    with session_scope(db) as s:
        call = plan(s, a["manager1"], "lead", ids["l1"])
        task = plan(s, a["manager1"], "lead", ids["l1"], kind="task", duration_min=30)
    later = NOW + timedelta(hours=1, minutes=10)
    with session_scope(db) as s:
        acts.complete_activity(s, a["manager1"], task.id, "Подготовил КП", now=later)
        assert s.get(Lead, ids["l1"]).last_contact_at is None
    with session_scope(db) as s:
        done = acts.complete_activity(s, a["manager1"], call.id, "Перезвонить в понедельник", now=later)
    with session_scope(db) as s:
        assert s.get(Lead, ids["l1"]).last_contact_at == later
        act = s.get(Activity, done.id)
        assert (act.done, act.done_at, act.result) == (True, later, "Перезвонить в понедельник")


def test_done_activities_cannot_be_completed_or_moved_again(w):
    db, a, ids = w
    with session_scope(db) as s:
        act = plan(s, a["manager1"], "deal", ids["d1"])
        acts.complete_activity(s, a["manager1"], act.id, now=NOW)
    with session_scope(db) as s, pytest.raises(ValidationFailed, match="уже выполнено"):
        acts.complete_activity(s, a["manager1"], act.id, now=NOW)
    with session_scope(db) as s, pytest.raises(ValidationFailed, match="нельзя перенести"):
        acts.reschedule_activity(s, a["manager1"], act.id, NOW + timedelta(days=1), now=NOW)
    with session_scope(db) as s:
        act2 = plan(s, a["manager1"], "deal", ids["d1"])
    with session_scope(db) as s, pytest.raises(ValidationFailed, match="прошедшее время"):
        acts.reschedule_activity(s, a["manager1"], act2.id, NOW - timedelta(hours=1), now=NOW)


def test_activities_on_a_contact_need_no_board_columns(w):
    db, a, ids = w
    with session_scope(db) as s:
        act = plan(s, a["manager1"], "contact", ids["c1"], kind="email", subject="Отправить программу")
        acts.complete_activity(s, a["manager1"], act.id, "Отправил", now=NOW)
    with session_scope(db) as s:
        assert s.get(Activity, act.id).done


# ---- comments and e-mail --------------------------------------------------------------

def test_comments_appear_in_the_card_timeline(w):
    db, a, ids = w
    with session_scope(db) as s:
        c = acts.add_comment(s, a["manager1"], "deal", ids["d1"], "  Клиент просил перезвонить после 15:00 ")
    with session_scope(db) as s:
        assert s.get(Comment, c.id).text == "Клиент просил перезвонить после 15:00"
        rows, more = cards.timeline(s, a["manager1"], "deal", ids["d1"], now=NOW)
        assert not more
        assert [(r["kind"], r["label"], r["text"], r["who"]) for r in rows] == [
            ("comment", "Комментарий", "Клиент просил перезвонить после 15:00", "Петров Иван")]
        ev = s.exec(select(TimelineEvent)).one()
        assert ev.data == {"comment_id": c.id, "text": "Клиент просил перезвонить после 15:00"}
        assert s.exec(select(AuditRecord.action)).all() == ["comment"]
        rows, _ = cards.timeline(s, a["manager1"], "deal", ids["d1"], kind="comment", now=NOW)
        assert len(rows) == 1


def test_comment_text_is_required_and_limited(w):
    db, a, ids = w
    with session_scope(db) as s, pytest.raises(ValidationFailed, match="Укажите текст"):
        acts.add_comment(s, a["manager1"], "deal", ids["d1"], "   ")
    with session_scope(db) as s, pytest.raises(ValidationFailed, match="не больше 10000 символов"):
        acts.add_comment(s, a["manager1"], "deal", ids["d1"], "а" * 10_001)
    with session_scope(db) as s:
        acts.add_comment(s, a["manager1"], "deal", ids["d1"], "а" * 10_000)
    with session_scope(db) as s:
        assert len(s.exec(select(Comment)).all()) == 1


class FakeMail:
    def __init__(self, fail: bool = False):
        self.calls, self.fail = [], fail

    def send(self, to, subject, text):
        self.calls.append((to, subject, text))
        if self.fail:
            raise OSError("SMTP недоступен")


@pytest.mark.parametrize("good", ["ivanov@mail.ru", "Ivanov.Petr+crm@Mail.Ru", "a_b-c@sub.example.com",
                                  "user@пример.рф", "x@xn--e1afmkfd.xn--p1ai"])
def test_valid_addresses(good):
    assert acts.valid_email(good)


@pytest.mark.parametrize("bad", ["", "ivanov", "ivanov@", "@mail.ru", "iva nov@mail.ru", "ivanov@mail",
                                 "ivanov@@mail.ru", ".ivanov@mail.ru", "iva..nov@mail.ru", "ivanov.@mail.ru",
                                 "ivanov@-mail.ru", "ivanov@mail.r", "ivanov@mail.ru,petrov@mail.ru",
                                 "Иванов <ivanov@mail.ru>"])
def test_invalid_addresses(bad):
    assert not acts.valid_email(bad)


def test_send_email_validates_records_and_calls_the_adapter_once(w):
    db, a, ids = w
    mail = FakeMail()
    with session_scope(db) as s, pytest.raises(ValidationFailed, match="Неверный адрес") as err:
        acts.send_email(s, a["manager1"], "deal", ids["d1"], "ivanov@mail", "Программа", "Текст", adapter=mail)
    assert err.value.fields == {"to": "Неверный адрес"}
    with session_scope(db) as s, pytest.raises(ValidationFailed, match="Укажите тему"):
        acts.send_email(s, a["manager1"], "deal", ids["d1"], "ivanov@mail.ru", " ", "Текст", adapter=mail)
    assert mail.calls == []
    with session_scope(db) as s:
        acts.send_email(s, a["manager1"], "deal", ids["d1"], " ivanov@mail.ru ", "Программа курса",
                        "Добрый день! Высылаю программу.", adapter=mail)
    assert mail.calls == [("ivanov@mail.ru", "Программа курса", "Добрый день! Высылаю программу.")]
    with session_scope(db) as s:
        ev = s.exec(select(TimelineEvent)).one()
        assert (ev.kind, ev.data) == ("email", {"to": "ivanov@mail.ru", "subject": "Программа курса",
                                                "text": "Добрый день! Высылаю программу."})
        assert s.exec(select(AuditRecord.action)).all() == ["email"]
        assert s.get(Deal, ids["d1"]).last_contact_at is not None
        rows, _ = cards.timeline(s, a["manager1"], "deal", ids["d1"], now=NOW)
        assert rows[0]["label"] == "Письмо" and rows[0]["text"] == "Добрый день! Высылаю программу."


def test_a_failing_adapter_refuses_and_records_nothing(w):
    db, a, ids = w
    mail = FakeMail(fail=True)
    with session_scope(db) as s, pytest.raises(ServiceError, match="Не удалось отправить письмо"):
        acts.send_email(s, a["manager1"], "deal", ids["d1"], "ivanov@mail.ru", "Тема", "Текст", adapter=mail)
    assert len(mail.calls) == 1
    with session_scope(db) as s:
        assert s.exec(select(TimelineEvent)).all() == []
        assert s.exec(select(AuditRecord)).all() == []
        assert s.get(Deal, ids["d1"]).last_contact_at is None


def test_default_adapter_sends_nothing_but_records(w):
    db, a, ids = w
    with session_scope(db) as s:
        acts.send_email(s, a["manager1"], "lead", ids["l1"], "lead@example.com", "Тема", "")
    with session_scope(db) as s:
        assert s.exec(select(TimelineEvent.kind)).all() == ["email"]


# ---- «Мои дела» -----------------------------------------------------------------------

def _bucket(s, actor, bucket, now, **kw):
    rows, total = acts.my_activities(s, actor, bucket, now=now, **kw)
    assert total == len(rows)
    return [r["subject"] for r in rows]


def test_my_activities_buckets_across_moscow_midnight(w):
    db, a, ids = w
    m1 = a["manager1"]
    # 23:30 in Moscow is 20:30 UTC: "today" must end at Moscow midnight, not UTC midnight.
    late = datetime(2026, 11, 20, 23, 30, tzinfo=TZ)
    with session_scope(db) as s:
        plan(s, m1, "deal", ids["d1"], subject="23:00", start_at=datetime(2026, 11, 20, 23, 0, tzinfo=TZ))
        plan(s, m1, "deal", ids["d1"], subject="23:45", start_at=datetime(2026, 11, 20, 23, 45, tzinfo=TZ))
        plan(s, m1, "lead", ids["l1"], subject="00:15", start_at=datetime(2026, 11, 21, 0, 15, tzinfo=TZ),
             kind="task", duration_min=30)
        plan(s, m1, "deal", ids["d1"], subject="завтра днём", start_at=datetime(2026, 11, 21, 14, 0, tzinfo=TZ),
             kind="meeting", duration_min=45)
        done = plan(s, m1, "deal", ids["d1"], subject="сделано", start_at=late)
        acts.complete_activity(s, m1, done.id, "ок", now=late)
        plan(s, a["manager2"], "deal", ids["d2"], subject="чужое", start_at=late + timedelta(minutes=5))
    with session_scope(db) as s:
        assert _bucket(s, m1, "overdue", late) == ["23:00"]
        assert _bucket(s, m1, "today", late) == ["23:45"]
        assert _bucket(s, m1, "upcoming", late) == ["00:15", "завтра днём"]
        assert _bucket(s, m1, "done", late) == ["сделано"]
        after = datetime(2026, 11, 21, 0, 10, tzinfo=TZ)  # ten minutes past Moscow midnight
        assert _bucket(s, m1, "overdue", after) == ["23:00", "23:45"]
        assert _bucket(s, m1, "today", after) == ["00:15", "завтра днём"]
        assert _bucket(s, m1, "upcoming", after) == []
        rows, total = acts.my_activities(s, m1, "overdue", now=late)
        r = rows[0]
        assert total == 1
        assert {k: r[k] for k in ("kind", "kind_label", "subject", "at", "overdue", "entity", "item_id",
                                  "item_title", "href")} == {
            "kind": "call", "kind_label": "Звонок", "subject": "23:00", "at": "20 ноября 23:00", "overdue": True,
            "entity": "deal", "item_id": ids["d1"], "item_title": "Python — Иванов", "href": f"/deals/{ids['d1']}"}
        rows, _ = acts.my_activities(s, m1, "upcoming", now=late)
        assert [(x["kind_label"], x["item_title"], x["href"], x["overdue"]) for x in rows] == [
            ("Задача", "Вопрос с лендинга", f"/leads/{ids['l1']}", False),
            ("Встреча", "Python — Иванов", f"/deals/{ids['d1']}", False)]
        rows, _ = acts.my_activities(s, m1, "done", now=late)
        assert rows[0]["result"] == "ок" and rows[0]["overdue"] is False
        assert _bucket(s, a["manager2"], "today", late) == ["чужое"]


def test_my_activities_filters_paging_and_deleted_items(w):
    db, a, ids = w
    m1 = a["manager1"]
    with session_scope(db) as s:
        for i in range(3):
            plan(s, m1, "deal", ids["d1"], subject=f"звонок {i}", start_at=NOW + timedelta(days=1, hours=i))
        plan(s, m1, "lead", ids["l1"], subject="задача по лиду", kind="task", duration_min=30,
             start_at=NOW + timedelta(days=2))
        plan(s, m1, "contact", ids["c1"], subject="письмо контакту", kind="email",
             start_at=NOW + timedelta(days=3))
        extra = f.deal(s, "Удалённая", s.get(User, ids["m1"]))
        plan(s, m1, "deal", extra.id, subject="по удалённой", start_at=NOW + timedelta(hours=1))
        extra_id = extra.id
    with session_scope(db) as s:
        items.delete_item(s, m1, "deal", extra_id)
    with session_scope(db) as s:
        assert _bucket(s, m1, "today", NOW) == []  # the deleted deal's activity is gone
        assert len(_bucket(s, m1, "upcoming", NOW)) == 5
        assert _bucket(s, m1, "upcoming", NOW, kind="task") == ["задача по лиду"]
        assert _bucket(s, m1, "upcoming", NOW, entity="lead") == ["задача по лиду"]
        assert _bucket(s, m1, "upcoming", NOW, entity="deal", item_id=ids["d1"]) == ["звонок 0", "звонок 1",
                                                                                    "звонок 2"]
        rows, _ = acts.my_activities(s, m1, "upcoming", now=NOW, entity="contact")
        assert (rows[0]["item_title"], rows[0]["href"]) == ("Иванов Пётр", f"/contacts/{ids['c1']}")
        rows, total = acts.my_activities(s, m1, "upcoming", now=NOW, offset=1, limit=2)
        assert total == 5 and [r["subject"] for r in rows] == ["звонок 1", "звонок 2"]
        with pytest.raises(ValidationFailed):
            acts.my_activities(s, m1, "someday", now=NOW)
        with pytest.raises(ValidationFailed):
            acts.my_activities(s, m1, "today", kind="visit", now=NOW)


def test_my_activities_loads_titles_in_batches(w):
    db, a, ids = w
    m1 = a["manager1"]
    with session_scope(db) as s:
        u1 = s.get(User, ids["m1"])
        for i in range(6):
            d = f.deal(s, f"Сделка {i}", u1)
            plan(s, m1, "deal", d.id, subject=f"звонок {i}", start_at=NOW + timedelta(hours=1, minutes=i))
    from sqlalchemy import event

    with session_scope(db) as s:
        statements = []
        engine = s.get_bind()
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            rows, total = acts.my_activities(s, m1, "today", now=NOW)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
    assert total == 6 and [r["item_title"] for r in rows] == [f"Сделка {i}" for i in range(6)]
    statements = [x for x in statements if x.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE")]
    assert len(statements) == 3  # count, page, titles of one kind


# ---- navigation counters --------------------------------------------------------------

def test_nav_counters_known_answers(w):
    db, a, ids = w
    m1 = a["manager1"]
    with session_scope(db) as s:
        u1, u2 = s.get(User, ids["m1"]), s.get(User, ids["m2"])
        # leads of m1: l1 (no activity) ✓, overdue ✓, today ✓, tomorrow ✗, junk ✗, deleted ✗
        overdue = f.lead(s, "Просрочен", u1)
        plan(s, m1, "lead", overdue.id, start_at=NOW - timedelta(minutes=3))
        today = f.lead(s, "Сегодня", u1)
        plan(s, m1, "lead", today.id, start_at=NOW + timedelta(hours=8), kind="task", duration_min=30)
        tomorrow = f.lead(s, "Завтра", u1)
        plan(s, m1, "lead", tomorrow.id, start_at=NOW + timedelta(hours=13))  # 01:00 next Moscow day
        f.lead(s, "Некачественный", u1, stage_code="JUNK")
        gone = f.lead(s, "Удалён", u1)
        gone.deleted_at = NOW
        f.lead(s, "Чужой", u2)
        # deals of m1: d1 (no activity) ✓, won ✗, another with an activity next week ✗
        f.deal(s, "Выиграна", u1, stage_code="WON")
        later = f.deal(s, "Через неделю", u1)
        plan(s, m1, "deal", later.id, start_at=NOW + timedelta(days=7))
        # an activity of m1 on m2's deal (planned by m2) counts for m1's activities
        plan(s, a["manager2"], "deal", ids["d2"], responsible_id=ids["m1"], start_at=NOW + timedelta(hours=2))
        # done activities never count
        done = plan(s, m1, "lead", ids["l1"], start_at=NOW + timedelta(hours=1))
        acts.complete_activity(s, m1, done.id, now=NOW)
    with session_scope(db) as s:
        assert acts.nav_counters(s, m1, NOW) == {"leads": 3, "deals": 1, "activities": 3}
        assert acts.nav_counters(s, a["manager2"], NOW) == {"leads": 1, "deals": 1, "activities": 0}  # d2: today
        # the activities badge is exactly the overdue + today buckets of «Мои дела»
        total = sum(acts.my_activities(s, m1, b, now=NOW)[1] for b in ("overdue", "today"))
        assert total == 3
        # after Moscow midnight the "tomorrow" lead's 01:00 activity is due today
        assert acts.nav_counters(s, m1, NOW + timedelta(hours=12, minutes=30))["leads"] == 4
        assert acts.nav_counters(s, a["director"], NOW) == {"leads": 0, "deals": 0, "activities": 0}


def test_nav_counters_is_one_statement(w):
    db, a, _ = w
    from sqlalchemy import event

    with session_scope(db) as s:
        statements = []
        engine = s.get_bind()
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            acts.nav_counters(s, a["manager1"], NOW)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
    statements = [x for x in statements if x.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE")]
    assert len(statements) == 1
    assert "count" in statements[0].lower() and "case" in statements[0].lower()


def test_bucket_counts_match_the_bucket_totals(w):
    db, a, ids = w
    m1 = a["manager1"]
    with session_scope(db) as s:
        plan(s, m1, "deal", ids["d1"], subject="скоро", start_at=NOW + timedelta(hours=1))
        plan(s, m1, "deal", ids["d1"], subject="завтра", start_at=NOW + timedelta(days=1))
        plan(s, m1, "lead", ids["l1"], subject="задача", kind="task", duration_min=30,
             start_at=NOW + timedelta(days=2))
        done = plan(s, m1, "contact", ids["c1"], subject="письмо", kind="email", start_at=NOW + timedelta(hours=2))
        acts.complete_activity(s, m1, done.id, "", now=NOW)
        plan(s, a["manager2"], "deal", ids["d2"], subject="чужое", start_at=NOW + timedelta(hours=1))
    later = NOW + timedelta(hours=3)  # «скоро» is overdue by then
    with session_scope(db) as s:
        for kw in ({}, {"kind": "call"}, {"entity": "lead"}, {"kind": "email", "entity": "contact"}):
            counts = acts.bucket_counts(s, m1, now=later, **kw)
            assert counts == {b: acts.my_activities(s, m1, b, now=later, **kw)[1] for b in acts.BUCKETS}, kw
        assert acts.bucket_counts(s, m1, now=later) == {"overdue": 1, "today": 0, "upcoming": 2, "done": 1}
        with pytest.raises(ValidationFailed):
            acts.bucket_counts(s, m1, kind="visit", now=later)


# ---- the activity form's first date: the next working hour (issue 12) ----------------------

@pytest.mark.parametrize("now, expected", [
    ("2026-11-24 14:20", "2026-11-24 15:00"),   # a Tuesday afternoon: the next whole hour
    ("2026-11-24 14:00", "2026-11-24 15:00"),   # on the hour: the next one, not now
    ("2026-11-24 07:10", "2026-11-24 09:00"),   # before the office opens
    ("2026-11-24 17:30", "2026-11-25 09:00"),   # after the last start: the next morning
    ("2026-11-20 18:10", "2026-11-23 09:00"),   # a Friday evening: Monday
    ("2026-11-03 17:30", "2026-11-05 09:00"),   # 4 November, День народного единства
    ("2027-01-01 10:00", "2027-01-11 09:00"),   # the New Year holidays
    ("2026-05-08 17:45", "2026-05-12 09:00"),   # before 9 May and the 11th (a transferred day off)
])
def test_suggested_start_is_the_next_working_hour(now, expected):
    got = acts.suggested_start(datetime.fromisoformat(now).replace(tzinfo=TZ))
    assert got == datetime.fromisoformat(expected).replace(tzinfo=TZ)
