"""Several worker processes (Reflex prod, `make prod`): what must hold between them.

a. A forked worker never shares a database connection with its parent: the fork hook
   (`db.install_fork_hook`, installed by the app's startup) drops the inherited pools —
   ours and Reflex's — so the child opens its own; the parent's pool still works.
b. The background jobs run in one worker at a time: `db.singleton(name)` is held by exactly
   one of several contenders (threads or processes with their own connections); when the
   holder releases it or dies, another one gets it — on SQLite and on PostgreSQL.
(c. — a client reconnecting to another worker keeps its state — is tests/e2e/test_prod.py.)"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import select
import signal
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from rxcrm import db as rdb
from rxcrm import tasks


# PostgreSQL only (a SQLite file has no server connection to share); the conftest's server
# (RXCRM_TEST_PG_URL) — a missing one fails these tests, never skips them
pg_only = pytest.mark.parametrize("db_url", ["pg"], indirect=True)


def _backend_pid(engine) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT pg_backend_pid()")).scalar()


def _in_child(fn) -> object:
    """Fork; run `fn()` in the child and hand back its result (or its error) through a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running anything of the parent's
        try:
            os.close(r)
            try:
                out = repr(fn())
            except BaseException as exc:  # noqa: BLE001
                out = repr(f"ERROR {type(exc).__name__}: {exc}")
            os.write(w, out.encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks, deadline = [], time.time() + 60
    try:
        while True:
            ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.time()))
            if not ready:  # a child stuck (e.g. on a lock copied mid-use by the fork): fail, don't hang
                os.kill(pid, signal.SIGKILL)
                pytest.fail("the forked child did not answer in 60 s")
            chunk = os.read(r, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    return eval(b"".join(chunks).decode())  # noqa: S307 - our own repr of an int/str/tuple


# ---- a. no connection crosses a fork --------------------------------------------------------------
def test_the_fork_hook_is_installed_once_by_the_app_startup():
    code = (Path(rdb.__file__).parent / "rxcrm.py").read_text(encoding="utf-8")
    startup = code[code.index("def startup()"):code.index("startup()\n\napp")]
    assert "install_fork_hook()" in startup
    db_src = Path(rdb.__file__).read_text(encoding="utf-8")
    assert db_src.count("os.register_at_fork(") == 1  # inside install_fork_hook, not at import
    assert "\nos.register_at_fork" not in db_src and "\n    os.register_at_fork" in db_src
    rdb.install_fork_hook()
    rdb.install_fork_hook()  # a second call is a no-op
    assert rdb._fork_hook_installed


@pg_only
def test_a_forked_worker_opens_its_own_connection(db_url):
    rdb.install_fork_hook()
    engine = rdb.get_engine(db_url)
    engine.dispose()  # earlier tests left several connections in the pool: start with one
    parent_pid = _backend_pid(engine)  # checked out and returned: it waits in the pool
    assert engine.pool.checkedin() >= 1

    def child():
        child_engine = rdb.get_engine(db_url)
        return _backend_pid(child_engine), child_engine is engine

    child_pid, same_engine = _in_child(child)
    assert isinstance(child_pid, int), child_pid
    assert child_pid != parent_pid
    assert same_engine  # the same engine object, a fresh pool: the fork hook disposed it
    # the parent's pooled connection was never touched by the child: still usable, same session
    assert _backend_pid(engine) == parent_pid
    with rdb.session_scope(db_url) as s:
        assert s.exec(text("SELECT 1")).scalar() == 1


@pg_only
def test_reflex_engines_are_disposed_in_the_child_too(db_url):
    from reflex import model
    rdb.install_fork_hook()
    engine = model.get_engine(db_url)
    parent_pid = _backend_pid(engine)
    child_pid = _in_child(lambda: _backend_pid(model.get_engine(db_url)))
    assert isinstance(child_pid, int), child_pid
    assert child_pid != parent_pid
    assert _backend_pid(engine) == parent_pid


def test_a_leader_lock_held_by_the_parent_is_not_the_childs(db_url):
    rdb.install_fork_hook()
    parent = rdb.singleton("fork-test", db_url)
    try:
        assert parent.held()

        def child():
            # the inherited object no longer holds it; a new contender in the child does not get it
            return parent._conn is None and parent._fd is None, rdb.singleton("fork-test", db_url).held()

        forgot, child_got = _in_child(child)
        assert forgot is True and child_got is False
        assert parent.held()  # the child's exit (and its inherited copies) did not release it
        other = rdb.singleton("fork-test", db_url)
        assert not other.held()
    finally:
        parent.release()


# ---- b. one runner: the leader lock -------------------------------------------------------------
def test_exactly_one_of_several_threads_holds_the_lock(db_url):
    contenders = [rdb.singleton("jobs-a", db_url) for _ in range(4)]
    start = threading.Barrier(len(contenders))
    got: dict[int, bool] = {}

    def run(i: int) -> None:
        start.wait()
        got[i] = contenders[i].held()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(contenders))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(got.values()) == [False, False, False, True]
        leader = next(i for i, v in got.items() if v)
        assert contenders[leader].held()  # asking again keeps it (no re-entry, no loss)
        others = [c for i, c in enumerate(contenders) if i != leader]
        assert not any(c.held() for c in others)  # the others retry each period: still no
        contenders[leader].release()
        winners = [c for c in others if c.held()]
        assert len(winners) == 1  # released → exactly one other takes over
        assert not contenders[leader].held()
        # another job name is another lock
        assert rdb.singleton("jobs-b", db_url).held()
    finally:
        for c in contenders:
            c.release()


def _hold_until_killed(url: str, name: str, ready) -> None:
    leader = rdb.singleton(name, url)
    ready.put(leader.held())
    time.sleep(120)


def test_when_the_holder_process_dies_another_takes_over(db_url):
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: its own engine and connection
    ready = ctx.Queue()
    proc = ctx.Process(target=_hold_until_killed, args=(db_url, "jobs-die", ready), daemon=True)
    proc.start()
    try:
        assert ready.get(timeout=60) is True
        here = rdb.singleton("jobs-die", db_url)
        assert not here.held()
        os.kill(proc.pid, signal.SIGKILL)  # no release: the worker simply dies
        proc.join(10)
        deadline = time.time() + 15
        while not here.held():  # the next period's retry wins it (PG ends the session; the kernel the flock)
            assert time.time() < deadline, "nobody took over the dead worker's job"
            time.sleep(0.1)
        here.release()
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(5)


def test_sqlite_lock_file_sits_next_to_the_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    leader = rdb.singleton("reminders", url)
    assert leader.lock_path() == tmp_path / "crm.db.reminders.lock"
    with leader:
        assert leader.held() and leader.lock_path().exists()
    assert rdb.singleton("reminders", url).held()


@pg_only
def test_a_lost_postgresql_connection_is_noticed_and_the_lock_taken_again(db_url):
    leader = rdb.singleton("jobs-lost", db_url)
    try:
        assert leader.held()
        backend = leader._conn.execute(text("SELECT pg_backend_pid()")).scalar()
        admin = rdb.get_engine(db_url)
        with admin.connect() as c:  # e.g. a server restart or an idle-connection killer
            c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend})
            c.commit()
        time.sleep(0.2)
        assert leader.held()  # noticed on the next period's check: taken again on a new connection
        assert leader._conn.execute(text("SELECT pg_backend_pid()")).scalar() != backend
        assert not rdb.singleton("jobs-lost", db_url).held()
    finally:
        leader.release()


@pytest.mark.parametrize("job, once", [("reminders", "reminders_once"), ("intake", "intake_once"),
                                       ("outbound", "outbound_once")])
def test_each_job_runs_its_rounds_in_one_worker_only(db_url, monkeypatch, job, once):
    """Two 'workers' of a job (two loops, each with its own lock connection/file): only the
    one holding the lock runs rounds, the other asks every period; when the first stops
    (shutdown or death), the other's next period wins the lock and runs the rounds."""
    monkeypatch.setenv("REFLEX_DB_URL", db_url)
    leaders: list[rdb.Singleton] = []
    asked: list[tuple[int, bool]] = []  # (which worker, did it hold the lock) per period

    class Recorded(rdb.Singleton):
        def held(self) -> bool:
            got = super().held()
            asked.append((leaders.index(self), got))
            return got

    def make(name, url=None):
        assert name == job
        leaders.append(Recorded(name, url))
        return leaders[-1]

    rounds: list[int] = []
    monkeypatch.setattr(tasks, "singleton", make)
    monkeypatch.setattr(tasks, once, lambda: rounds.append(1) or (0 if once == "reminders_once" else {"processed": 0}))
    loop = {"reminders": tasks.reminders_task, "intake": tasks.intake_task, "outbound": tasks.outbound_task}[job]

    async def until(cond, what: str) -> None:
        for _ in range(400):
            if cond():
                return
            await asyncio.sleep(0.025)
        raise AssertionError(what)

    async def run() -> None:
        first = asyncio.create_task(loop(period_s=0.05))
        await until(lambda: rounds, "the first worker ran no round")
        second = asyncio.create_task(loop(period_s=0.05))
        await until(lambda: sum(1 for w, _ in asked if w == 1) >= 5, "the second worker did not retry")
        assert all(got for w, got in asked if w == 0)       # the leader keeps it, period after period
        assert not any(got for w, got in asked if w == 1)   # the other never got it meanwhile
        first.cancel()  # the leader's worker shuts down (a dead one: see the kill test above)
        with pytest.raises(asyncio.CancelledError):
            await first
        mark, ran = len(asked), len(rounds)
        await until(lambda: any(w == 1 and got for w, got in asked[mark:]), "nobody took over")
        await until(lambda: len(rounds) >= ran + 3, "the new leader runs no rounds")
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second

    asyncio.run(run())
    assert rdb.singleton(job, db_url).held()  # both loops released it at their end


def test_expired_states_are_purged_at_most_once_a_minute(tmp_path):
    """Reflex's disk state manager would stat every state file on each round of its write
    queue (several a second under load): rxcrm lets it purge once a minute."""
    import os
    import time
    from types import SimpleNamespace

    import rxcrm.rxcrm as app_module
    from reflex.istate.manager.disk import StateManagerDisk

    manager = SimpleNamespace(states_directory=tmp_path, token_expiration=60)

    def expired(name):
        p = tmp_path / name
        p.write_bytes(b"x")
        old = time.time() - 3600
        os.utime(p, (old, old))
        return p

    app_module.STATE_PURGE["at"] = float("-inf")
    first = expired("a.pkl")
    StateManagerDisk._purge_expired_states(manager)
    assert not first.exists()
    second = expired("b.pkl")
    StateManagerDisk._purge_expired_states(manager)  # within the minute: not looked at
    assert second.exists()
    app_module.STATE_PURGE["at"] -= 61
    StateManagerDisk._purge_expired_states(manager)
    assert not second.exists()
