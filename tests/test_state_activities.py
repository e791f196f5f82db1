"""State handler tests for «Мои дела» (/activities), the navigation counters and the bell:
tabs/buckets, kind and item filters, paging, «Выполнить» from the list, refresh_badges,
mark read; the page component builds; the reminders lifespan task."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from rxcrm.db import migrate, session_scope
from rxcrm.models import Activity, Company, Notification, User, utcnow
from rxcrm.services import activities as acts
from rxcrm.services import auth, notifications
from rxcrm.services.bootstrap import ensure_defaults

from . import factories as f


@pytest.fixture(scope="module")
def app_db():
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
    import rxcrm.rxcrm  # noqa: F401  (registers the pages and states)


def _world(login: str, *, overdue: bool = True, extra_upcoming: int = 0) -> dict:
    """A manager `login` with a deal, a lead, a contact and a company and activities in every
    bucket (times relative to the real clock: the handlers use it), plus one activity of
    another manager. Returns ids and the session token."""
    now = utcnow()
    end = acts.end_of_today(now)
    today_at = now + (end - now) / 2  # later today, whatever the time of day
    with session_scope() as s:
        m = f.user(s, login, full_name="Делова Анна")
        other = f.user(s, login + "x")
        d = f.deal(s, f"Сделка {login}", m)
        ld = f.lead(s, f"Лид {login}", m)
        c = f.contact(s, "Контактов", "Иван", responsible=m)
        co = Company(title=f"ООО {login}", responsible_id=m.id, department_id=m.department_id)
        s.add(co)
        s.flush()

        def add(entity, iid, kind, subject, start, done=False, resp=m):
            a = Activity(entity_type=entity, entity_id=iid, kind=kind, subject=subject, responsible_id=resp.id,
                         start_at=start, duration_min=10, done=done, result="ок" if done else "",
                         done_at=now - timedelta(hours=1) if done else None, created_by_id=m.id)
            s.add(a)
            s.flush()
            return a.id

        ids = {"m": m.id, "other": other.id, "deal": d.id, "lead": ld.id, "contact": c.id, "company": co.id}
        if overdue:
            ids["o_call"] = add("deal", d.id, "call", "Перезвонить", now - timedelta(hours=3))
            ids["o_task"] = add("lead", ld.id, "task", "Проверить анкету", now - timedelta(days=1))
        ids["t_meet"] = add("deal", d.id, "meeting", "Встреча в офисе", today_at)
        ids["u_call"] = add("lead", ld.id, "call", "Созвон по программе", now + timedelta(days=2))
        ids["u_mail"] = add("contact", c.id, "email", "Отправить договор", now + timedelta(days=3))
        ids["u_co"] = add("company", co.id, "task", "Счёт компании", now + timedelta(days=4))
        for i in range(extra_upcoming):
            add("deal", d.id, "task", f"Задача {i:03d}", now + timedelta(days=5, minutes=i))
        ids["d_call"] = add("deal", d.id, "call", "Первый звонок", now - timedelta(days=2), done=True)
        ids["foreign"] = add("deal", d.id, "call", "Чужое дело", now - timedelta(hours=1), resp=other)
        for ent in ("deal", "lead"):
            acts.refresh_next_activity(s, ent, ids[ent])
    with session_scope() as s:
        ids["token"], _ = auth.login(s, login, "demo")
    return ids


def _state(token):
    from rxcrm.state.activities import ActivitiesState
    st = f.logged_in(ActivitiesState, token)
    st.check_login()
    assert st.user_id
    return st


def _subjects(st) -> list[str]:
    return [r.subject for r in st.rows]


def test_default_tab_is_overdue_with_counts_and_rows(app_db):
    w = _world("am1")
    st = _state(w["token"])
    st.on_load()
    assert st.tab == "overdue"
    assert st.tab_counts == {"overdue": 2, "today": 1, "upcoming": 3, "done": 1}
    assert _subjects(st) == ["Проверить анкету", "Перезвонить"]  # oldest first; «Чужое дело» is not mine
    r = st.rows[1]
    assert (r.kind, r.overdue, r.done, r.entity, r.item_title, r.href) == (
        "call", True, False, "deal", "Сделка am1", f"/deals/{w['deal']}")
    assert st.total == 2 and not st.has_more
    assert st._url() == "/activities?tab=overdue"


def test_default_tab_is_today_without_overdue_and_tabs_switch(app_db):
    w = _world("am2", overdue=False)
    st = _state(w["token"])
    st.on_load()
    assert st.tab == "today" and _subjects(st) == ["Встреча в офисе"]
    assert st.rows[0].overdue is False and st.rows[0].href == f"/deals/{w['deal']}"
    st.set_tab("upcoming")
    assert _subjects(st) == ["Созвон по программе", "Отправить договор", "Счёт компании"]
    assert [r.href for r in st.rows] == [f"/leads/{w['lead']}", f"/contacts/{w['contact']}",
                                         f"/companies/{w['company']}"]
    assert st.rows[1].item_title == "Контактов Иван"
    st.set_tab("done")
    assert _subjects(st) == ["Первый звонок"] and st.rows[0].result == "ок" and st.rows[0].done_at
    st.set_tab("overdue")
    assert st.rows == [] and st.total == 0
    st.set_tab("someday")  # ignored
    assert st.tab == "overdue"
    assert st._url() == "/activities?tab=overdue"


def test_tab_and_filters_from_the_url(app_db, monkeypatch):
    w = _world("am3")
    from rxcrm.state import activities as mod

    st = _state(w["token"])
    f.route(st, w["token"], "/activities?tab=upcoming&kind=email&item=bogus")
    st.on_load()
    assert (st.tab, st.kind, st.item) == ("upcoming", "email", "all")  # an explicit tab wins over overdue
    assert _subjects(st) == ["Отправить договор"]
    assert st._url() == "/activities?tab=upcoming&kind=email"


def test_kind_and_item_filters(app_db):
    w = _world("am4")
    st = _state(w["token"])
    st.on_load()
    st.set_tab("upcoming")
    st.set_kind("email")
    assert _subjects(st) == ["Отправить договор"] and st.filtered
    assert st.tab_counts == {"overdue": 0, "today": 0, "upcoming": 1, "done": 0}
    st.set_kind("all")
    st.set_item("lead")
    assert _subjects(st) == ["Созвон по программе"]
    assert st.tab_counts == {"overdue": 1, "today": 0, "upcoming": 1, "done": 0}
    st.set_item("company")
    assert _subjects(st) == ["Счёт компании"]
    st.set_kind("call")
    assert st.rows == [] and st._url() == "/activities?tab=upcoming&kind=call&item=company"
    st.reset_filters()
    assert (st.kind, st.item, st.filtered) == ("all", "all", False)
    assert len(st.rows) == 3 and w["foreign"] not in [r.id for r in st.rows]


def test_paging_shows_more(app_db):
    w = _world("am5", extra_upcoming=57)
    st = _state(w["token"])
    st.on_load()
    st.set_tab("upcoming")
    assert st.total == 60 and len(st.rows) == 50 and st.has_more
    st.load_more()
    assert len(st.rows) == 60 and not st.has_more
    assert len({r.id for r in st.rows}) == 60


def test_complete_from_the_list_moves_it_to_done_and_lowers_counters(app_db):
    w = _world("am6")
    st = _state(w["token"])
    st.on_load()
    assert st.counters["activities"] == 3  # overdue 2 + today 1
    assert st.counters["deals"] == 1 and st.counters["leads"] == 1  # next activity overdue
    st.open_complete(w["o_call"])
    assert st.complete_open and st.complete_subject == "Перезвонить"
    st.submit_complete({"result": "  Договорились о встрече  "})
    assert not st.complete_open and st.complete_error == ""
    assert _subjects(st) == ["Проверить анкету"]
    assert st.tab_counts == {"overdue": 1, "today": 1, "upcoming": 3, "done": 2}
    assert st.counters["activities"] == 2
    assert st.counters["deals"] == 1  # its next activity is now today's meeting: still due today
    with session_scope() as s:
        act = s.get(Activity, w["o_call"])
        assert act.done and act.result == "Договорились о встрече"
    st.set_tab("done")
    assert _subjects(st) == ["Перезвонить", "Первый звонок"]
    assert st.rows[0].result == "Договорились о встрече"


def test_complete_refusals_keep_or_close_the_dialog(app_db):
    w = _world("am7")
    st = _state(w["token"])
    st.on_load()
    st.open_complete(999_999)  # not in the list: nothing opens
    assert not st.complete_open
    st.open_complete(w["o_task"])
    st.submit_complete({"result": "x" * (acts.TEXT_MAX + 1)})
    assert st.complete_open and "не больше" in st.complete_error  # typed text refused, dialog stays
    st.set_complete_open(False)
    assert st.complete_error == ""
    # done elsewhere meanwhile: the dialog closes and the list is fresh
    st.open_complete(w["o_task"])
    with session_scope() as s:
        acts.complete_activity(s, auth.actor_for(s.get(User, w["m"])), w["o_task"], "")
    st.submit_complete({"result": "второй раз"})
    assert not st.complete_open and "Проверить анкету" not in _subjects(st)


def test_refresh_badges_fills_counters_and_the_bell(app_db):
    w = _world("am8")
    with session_scope() as s:
        notifications.notify(s, w["m"], notifications.ASSIGNED, "Вам назначена сделка", "deal", w["deal"],
                             now=utcnow() - timedelta(minutes=5))
        notifications.notify(s, w["m"], notifications.REMINDER, "Напоминание: Звонок")
        notifications.notify(s, w["other"], notifications.REMINDER, "Чужое напоминание")
    st = _state(w["token"])  # check_login fills everything
    assert st.unread_count == 2
    assert [(n.text, n.href, n.kind) for n in st.notifications] == [
        ("Напоминание: Звонок", "", "reminder"),
        ("Вам назначена сделка", f"/deals/{w['deal']}", "assigned")]
    assert st.notifications[0].at
    assert st.counters == {"leads": 1, "deals": 1, "activities": 3}
    with session_scope() as s:
        notifications.notify(s, w["m"], notifications.AUTOMATION, "Правило перевело сделку", "deal", w["deal"])
    st.refresh_badges()
    assert st.unread_count == 3 and st.notifications[0].kind == "automation"


def test_open_notification_marks_it_read_and_navigates(app_db):
    w = _world("am9")
    with session_scope() as s:
        n1 = notifications.notify(s, w["m"], notifications.ASSIGNED, "Вам назначен лид", "lead", w["lead"])
        notifications.notify(s, w["m"], notifications.REMINDER, "Напоминание")
        s.flush()
        n1_id = n1.id
    st = _state(w["token"])
    st.set_bell_open(True)
    assert st.bell_open and st.unread_count == 2
    spec = st.open_notification(n1_id, f"/leads/{w['lead']}")
    assert spec is not None and f"/leads/{w['lead']}" in str(spec.args)
    assert not st.bell_open and st.unread_count == 1
    assert [n.text for n in st.notifications] == ["Напоминание"]
    with session_scope() as s:
        assert s.get(Notification, n1_id).read_at is not None
    assert st.open_notification(n1_id, "//evil.example") is None  # never an outside redirect
    st.mark_all_read()
    assert st.unread_count == 0 and st.notifications == []
    with session_scope() as s:
        assert s.exec(select(Notification).where(Notification.user_id == w["m"],
                                                 Notification.read_at.is_(None))).all() == []


def test_poll_is_throttled_and_logout_clears(app_db):
    w = _world("am10")
    st = _state(w["token"])
    assert st.unread_count == 0
    with session_scope() as s:
        notifications.notify(s, w["m"], notifications.REMINDER, "Напоминание")
    st.poll_badges("tick")  # check_login refreshed a moment ago: skipped
    assert st.unread_count == 0
    st._badges_at = 0.0
    st.poll_badges("tick")
    assert st.unread_count == 1
    st.logout()
    assert st.unread_count == 0 and st.notifications == [] and st.counters["activities"] == 0


def test_activities_page_builds(app_db):
    from reflex.compiler.compiler import _compile_page

    from rxcrm.pages.activities import activities_page
    from rxcrm.rxcrm import app
    code = _compile_page(activities_page(), "/activities")
    assert "submit_complete" in code and "poll_badges" in code and "open_notification" in code
    page = app._unevaluated_pages["activities"]
    assert page.component is activities_page
    assert [h.fn.__name__ for h in page.on_load] == ["check_login", "on_load"]


def test_reminders_task_runs_rounds_and_survives_errors(app_db, monkeypatch, caplog):
    from rxcrm import tasks
    calls = []

    def once():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database is down")
        return tasks.__dict__["_real_once"]()

    monkeypatch.setitem(tasks.__dict__, "_real_once", tasks.reminders_once)
    monkeypatch.setattr(tasks, "reminders_once", once)
    w = _world("am11", overdue=False)
    with session_scope() as s:
        act = s.get(Activity, w["t_meet"])
        act.remind_before_min, act.remind_at = 5, utcnow() - timedelta(seconds=1)
        s.add(act)

    async def run():
        task = asyncio.create_task(tasks.reminders_task(period_s=0.01))
        for _ in range(300):
            await asyncio.sleep(0.01)
            if len(calls) >= 3:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level("ERROR", logger="rxcrm.tasks"):
        asyncio.run(run())
    assert len(calls) >= 3 and "reminders round failed" in caplog.text
    with session_scope() as s:
        texts = [n.text for n in s.exec(select(Notification).where(Notification.user_id == w["m"]))]
    assert len(texts) == 1 and "Встреча в офисе" in texts[0]
