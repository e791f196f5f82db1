"""Units of work (rxcrm/db.py): a unit that reads and then writes never fails with
"database is locked" because another writer got in first; writers of one process queue
first come, first served; read-only units cannot write; transient conflicts re-run the unit."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.orm.exc import StaleDataError

from rxcrm import db
from rxcrm.services.errors import ValidationFailed


@pytest.fixture
def sqlite_file(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'units.db'}"
    with db.session_scope(url) as s:
        s.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        s.execute(text("INSERT INTO counter (id, n) VALUES (1, 0)"))
    return url


def test_read_then_write_units_do_not_refuse_each_other(sqlite_file):
    """The defect of issue 11: with a deferred BEGIN, two units that both read first and then
    write fail with 'database is locked' (the second cannot upgrade its read). With BEGIN
    IMMEDIATE (and the writer lane) they run one after the other and both count."""
    errors, barrier = [], threading.Barrier(8)

    def unit():
        try:
            barrier.wait()
            with db.session_scope(sqlite_file) as s:
                n = s.execute(text("SELECT n FROM counter WHERE id = 1")).scalar_one()
                time.sleep(0.05)  # work between the read and the write
                s.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=unit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.session_scope(sqlite_file, write=False) as s:
        assert s.execute(text("SELECT n FROM counter")).scalar_one() == 8  # no lost update either


def test_a_read_only_unit_cannot_write(db_url):
    from rxcrm.models import Department

    with pytest.raises(db.ReadOnlyUnitOfWork):
        with db.session_scope(db_url, write=False) as s:
            s.add(Department(code="x", name="Икс"))
            s.flush()


def test_writers_are_served_in_arrival_order():
    lane, order = db.WriterLane(), []
    lane.acquire(1)
    started = []

    def writer(name: str):
        started.append(name)
        lane.acquire(5)
        order.append(name)
        lane.release()

    threads = []
    for name in "abcd":
        t = threading.Thread(target=writer, args=(name,))
        t.start()
        threads.append(t)
        while len(started) < len(threads):
            time.sleep(0.001)
        time.sleep(0.02)  # it is queued now
    lane.release()
    for t in threads:
        t.join()
    assert order == list("abcd")


def test_the_lane_is_reentrant_and_bounded():
    lane = db.WriterLane()
    lane.acquire(1)
    lane.acquire(1)  # a unit opened inside another on the same thread
    lane.release()
    got = []

    def other():
        try:
            lane.acquire(0.1)
            got.append("acquired")
        except db.WriterLaneBusy as exc:
            got.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert isinstance(got[0], db.WriterLaneBusy) and db.is_transient(got[0])
    lane.release()
    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert got[1] == "acquired"


def test_transact_reruns_a_unit_after_a_transient_conflict(sqlite_file):
    calls = []

    def unit(s):
        calls.append(1)
        if len(calls) < 3:
            raise StaleDataError("someone changed the row meanwhile")
        return s.execute(text("SELECT n FROM counter")).scalar_one()

    assert db.transact(unit, sqlite_file) == 0 and len(calls) == 3


def test_transact_does_not_rerun_a_refusal(sqlite_file):
    calls = []

    def unit(_s):
        calls.append(1)
        raise ValidationFailed("Неверно")

    with pytest.raises(ValidationFailed):
        db.transact(unit, sqlite_file)
    assert len(calls) == 1


def test_a_unit_inside_a_unit_on_the_same_thread_can_read(sqlite_file):
    """A helper that opens its own unit while its caller's unit holds the write lock (the
    caller has written): it reads without waiting for its own caller."""
    started = time.perf_counter()
    with db.session_scope(sqlite_file) as outer:
        outer.execute(text("UPDATE counter SET n = 5 WHERE id = 1"))
        with db.session_scope(sqlite_file) as inner:
            assert inner.execute(text("SELECT count(*) FROM counter")).scalar_one() == 1
    assert time.perf_counter() - started < 2
