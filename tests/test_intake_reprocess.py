"""Issue 11 — intake events left "received" (processing interrupted by a crash, a restart, a
transient error) are processed again automatically: `intake.reprocess_pending` and the
lifespan task `tasks.intake_task`, on SQLite and PostgreSQL. Once per event even with two
workers at once; not before the grace period; a bounded number of attempts."""
from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from rxcrm import tasks
from rxcrm.db import session_scope
from rxcrm.models import Deal, IntakeEvent, TimelineEvent, utcnow
from rxcrm.services import intake
from rxcrm.services.auth import actor_for

from . import factories as f


@pytest.fixture
def world(db):
    with session_scope(db) as s:
        f.user(s, "manager1", full_name="Петров Иван")
        f.user(s, "manager2", full_name="Сидорова Анна")
        admin = actor_for(f.user(s, "admin", role="admin", dept_code=None, full_name="Админ"))
    return db, admin


def body(i: int) -> dict:
    return {"event_id": f"crash-{i}", "form": "application", "consent": True,
            "client": {"full_name": f"Прерванов Клиент {i}", "phone": f"+7959{i:07d}",
                       "email": f"crash{i}@example.ru"},
            "program": {"title": "Управление проектами", "price": 60000}}


def stored_not_processed(db: str, i: int, age: timedelta = timedelta(minutes=5)) -> int:
    """What a worker that crashed right after storing the raw event leaves behind."""
    with session_scope(db) as s:
        ev = IntakeEvent(integration="landing", event_id=f"crash-{i}", event_type="application", payload=body(i),
                         status="received", received_at=utcnow() - age)
        s.add(ev)
        s.flush()
        return ev.id


def deals(db: str) -> int:
    with session_scope(db) as s:
        return s.execute(select(func.count()).select_from(Deal)).scalar_one()


def test_an_interrupted_event_is_processed_once(world):
    db, _ = world
    old = stored_not_processed(db, 1)
    young = stored_not_processed(db, 2, age=timedelta(seconds=5))  # may be in work right now
    done = intake.reprocess_pending(db, older_than=timedelta(seconds=60))
    assert done["processed"] == 1 and done["failed"] == 0
    with session_scope(db) as s:
        ev = s.get(IntakeEvent, old)
        assert ev.status == "processed" and ev.attempts == 1 and ev.result["deal_id"]
        deal = s.get(Deal, ev.result["deal_id"])
        assert deal.source == "Лендинг" and deal.responsible_id
        assert s.execute(select(TimelineEvent.rule).where(
            TimelineEvent.entity_type == "deal", TimelineEvent.entity_id == deal.id,
            TimelineEvent.kind == "created")).scalar_one() == "Лендинг: application"
        yev = s.get(IntakeEvent, young)
        assert (yev.status, yev.attempts) == ("received", 0)  # not touched
        assert intake.pending_count(s) == 1
    assert deals(db) == 1
    again = intake.reprocess_pending(db, older_than=timedelta(seconds=60))
    assert again["processed"] == 0 and deals(db) == 1  # a second run does nothing
    # once it is old enough, the young one is processed too
    later = intake.reprocess_pending(db, older_than=timedelta(seconds=60), now=utcnow() + timedelta(minutes=2))
    assert later["processed"] == 1 and deals(db) == 2
    with session_scope(db) as s:
        assert intake.pending_count(s) == 0


def test_two_workers_never_process_one_event_twice(world, monkeypatch):
    db, _ = world
    ids = [stored_not_processed(db, i) for i in range(4)]
    real, calls, lock = intake.HANDLERS["landing"], [], threading.Lock()

    def slow(session, actor, data):
        with lock:
            calls.append(data["event_id"])
        time.sleep(0.2)  # the other worker arrives meanwhile
        return real(session, actor, data)

    monkeypatch.setitem(intake.HANDLERS, "landing", slow)
    results, start = [], threading.Barrier(2)

    def worker():
        start.wait()
        results.append(intake.reprocess_pending(db, older_than=timedelta(seconds=60)))

    workers = [threading.Thread(target=worker) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert sorted(calls) == sorted(f"crash-{i}" for i in range(4)), calls  # each handled once
    assert sum(r["processed"] for r in results) == 4
    assert deals(db) == 4
    with session_scope(db) as s:
        assert set(s.execute(select(IntakeEvent.status).where(IntakeEvent.id.in_(ids))).scalars()) == {"processed"}


def test_the_same_event_processed_by_two_at_once_runs_once(world, monkeypatch):
    """The row lock + status check in `process`: the second one answers the stored answer."""
    db, _ = world
    ev_id = stored_not_processed(db, 7)
    real, calls = intake.HANDLERS["landing"], []

    def slow(session, actor, data):
        calls.append(data["event_id"])
        time.sleep(0.3)
        return real(session, actor, data)

    monkeypatch.setitem(intake.HANDLERS, "landing", slow)
    answers, start = [], threading.Barrier(2)

    def worker():
        start.wait()
        from rxcrm.db import transact
        answers.append(transact(lambda s: intake.process(s, ev_id), db))

    workers = [threading.Thread(target=worker) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert calls == ["crash-7"]
    assert len(answers) == 2 and answers[0] == answers[1] and answers[0][0] == 200
    assert deals(db) == 1


def _busy() -> OperationalError:
    import sqlite3
    return OperationalError("UPDATE deal …", {}, sqlite3.OperationalError("database is locked"))


def test_attempts_are_bounded_then_failed_for_a_person_to_replay(world, monkeypatch):
    db, admin = world
    ev_id = stored_not_processed(db, 3)
    real = intake.HANDLERS["landing"]

    def busy(session, actor, data):
        raise _busy()

    monkeypatch.setitem(intake.HANDLERS, "landing", busy)
    for n in (1, 2):
        done = intake.reprocess_pending(db, older_than=timedelta(seconds=60), max_attempts=2)
        assert done["postponed"] == 1
        with session_scope(db) as s:
            ev = s.get(IntakeEvent, ev_id)
            assert (ev.status, ev.attempts) == ("received", n) and "database is locked" in ev.error
    done = intake.reprocess_pending(db, older_than=timedelta(seconds=60), max_attempts=2)
    assert done["exhausted"] == 1
    with session_scope(db) as s:
        ev = s.get(IntakeEvent, ev_id)
        assert ev.status == "failed" and ev.attempts == 2
        assert "Не удалось обработать автоматически за 2 попыток" in ev.error and "Повторить" in ev.error
        assert "database is locked" in ev.error  # the last reason is kept
    assert intake.reprocess_pending(db, older_than=timedelta(seconds=60))["processed"] == 0  # left for a person
    monkeypatch.setitem(intake.HANDLERS, "landing", real)
    with session_scope(db) as s:
        status, answer = intake.replay(s, admin, ev_id)
    assert status == 200 and answer["deal_id"] and deals(db) == 1
    assert intake.MAX_ATTEMPTS >= 3


def test_the_lifespan_task_processes_them_at_start_up(world, monkeypatch):
    db, _ = world
    monkeypatch.setenv("REFLEX_DB_URL", db)
    ev_id = stored_not_processed(db, 9)
    loop_threads = set()
    real_once = tasks.intake_once

    def once():
        loop_threads.add(threading.current_thread().name)
        return real_once()

    monkeypatch.setattr(tasks, "intake_once", once)

    async def run():
        task = asyncio.create_task(tasks.intake_task(period_s=3600))  # only the start-up round
        for _ in range(600):
            await asyncio.sleep(0.02)
            with session_scope(db) as s:
                if s.get(IntakeEvent, ev_id).status != "received":
                    break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    with session_scope(db) as s:
        assert s.get(IntakeEvent, ev_id).status == "processed"
    assert loop_threads and threading.main_thread().name not in loop_threads  # not on the event loop
    src = (Path(__file__).resolve().parent.parent / "rxcrm" / "rxcrm.py").read_text(encoding="utf-8")
    assert "app.register_lifespan_task(intake_task)" in src
