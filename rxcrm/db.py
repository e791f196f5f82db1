"""Database engine and units of work for the service layer (plain SQLAlchemy/SQLModel).

The URL comes from REFLEX_DB_URL (the same variable Reflex reads), defaulting to an
embedded SQLite file `rxcrm.db` in the working directory.

Units of work — the one place that opens them:
- `session_scope(write=True)` (the default) is a unit that may write. On SQLite it starts
  with `BEGIN IMMEDIATE`: the write lock is taken up front (waiting up to `busy_timeout`,
  then retried a bounded number of times), so a unit that reads first and writes later can
  never fail with "database is locked" halfway. On PostgreSQL it is a plain transaction.
- On SQLite, writing units of one process also queue in a first-come-first-served **writer
  lane** before BEGIN IMMEDIATE: SQLite's own busy handler polls (a waiter may sleep past
  many others), the lane hands the lock to the longest waiter at once. A unit opened inside
  another on the same thread passes (re-entrant); the lane waits at most the same bounded
  time as the lock and then reports `WriterLaneBusy`, a transient error.
- `session_scope(write=False)` is a read-only unit: a deferred `BEGIN` on SQLite (readers
  never wait for writers in WAL mode); a flush with pending changes raises
  `ReadOnlyUnitOfWork` — a read path cannot silently become a write path.
- `transact(fn)` runs `fn(session)` in a unit of work and runs it again (bounded, with
  backoff) when the database reports a transient conflict: SQLite busy, a PostgreSQL
  deadlock or serialization failure, or a concurrent change of the same row caught by the
  optimistic version check (`StaleDataError`). `fn` must not have effects outside the
  database before it returns."""
from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, create_engine

log = logging.getLogger(__name__)

DEFAULT_DB_URL = "sqlite:///rxcrm.db"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

BUSY_TIMEOUT_MS = 5000      # SQLite waits this long for the write lock …
BEGIN_ATTEMPTS = 4          # … and BEGIN IMMEDIATE is tried this many times
TRANSACT_ATTEMPTS = 5       # a whole unit of work is run at most this many times
READONLY = "rxcrm_readonly"  # execution option / session.info key of read-only units
DEFERRED = "rxcrm_deferred"  # execution option: a unit opened inside another on the same thread

_engines: dict[str, Engine] = {}
T = TypeVar("T")


class ReadOnlyUnitOfWork(RuntimeError):
    """A read-only unit of work tried to write (a programming error, never a user's)."""


class WriterLaneBusy(RuntimeError):
    """The writer lane stayed taken longer than a unit may wait (transient: run it again)."""


class WriterLane:
    """A re-entrant first-come-first-served lock for one process's writing units."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._waiting: deque[tuple[int, threading.Event]] = deque()

    def acquire(self, timeout: float) -> bool:
        """Take the lane; True when this thread already held it (a unit inside a unit)."""
        me = threading.get_ident()
        with self._lock:
            if self._owner == me:
                self._depth += 1
                return True
            if self._owner is None and not self._waiting:
                self._owner, self._depth = me, 1
                return False
            turn = (me, threading.Event())
            self._waiting.append(turn)
        if turn[1].wait(timeout):
            return False  # handed over by release(): we own it now
        with self._lock:
            if turn in self._waiting:
                self._waiting.remove(turn)
                raise WriterLaneBusy(f"the writer lane was busy for {timeout:.0f} s")
        return False  # handed over just as the wait timed out: we own it

    def release(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth:
                return
            if self._waiting:
                owner, event = self._waiting.popleft()
                self._owner, self._depth = owner, 1
                event.set()
            else:
                self._owner = None


_lanes: dict[str, WriterLane] = {}
_lanes_lock = threading.Lock()


def _lane(url: str) -> WriterLane | None:
    """The writer lane of a SQLite database (None for PostgreSQL: rows lock, not files)."""
    if not url.startswith("sqlite"):
        return None
    with _lanes_lock:
        return _lanes.setdefault(url, WriterLane())


def db_url() -> str:
    return os.environ.get("REFLEX_DB_URL") or DEFAULT_DB_URL


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # autocommit at the driver; SQLAlchemy emits BEGIN
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA cache_size=-65536")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()
    # SQLite's lower() folds ASCII only; make it Unicode-aware so Cyrillic filters work.
    dbapi_conn.create_function("lower", 1, lambda s: s.lower() if isinstance(s, str) else s,
                               deterministic=True)


def _is_busy(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


def _sqlite_begin(conn) -> None:
    """BEGIN for a read-only unit, BEGIN IMMEDIATE for one that may write (bounded retry)."""
    options = conn.get_execution_options()
    if options.get(READONLY) or options.get(DEFERRED):
        conn.exec_driver_sql("BEGIN")
        return
    for attempt in range(1, BEGIN_ATTEMPTS + 1):
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            if not _is_busy(exc) or attempt == BEGIN_ATTEMPTS:
                raise
            log.warning("SQLite write lock busy for %d ms, attempt %d of %d", BUSY_TIMEOUT_MS, attempt,
                        BEGIN_ATTEMPTS)
            time.sleep(0.05 * attempt)


def get_engine(url: str | None = None) -> Engine:
    url = url or db_url()
    engine = _engines.get(url)
    if engine is None:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False,
                                                      "timeout": BUSY_TIMEOUT_MS / 1000})
            event.listen(engine, "connect", _sqlite_pragmas)
            # pysqlite's own transaction handling breaks SAVEPOINTs (a savepoint opened before
            # any write commits on release), so SQLAlchemy issues BEGIN itself — IMMEDIATE
            # unless the unit of work is read-only.
            event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
        _engines[url] = engine
    return engine


def dispose_engines() -> None:
    """Drop pooled connections (after fork, in tests); a forked child starts with free lanes."""
    for engine in _engines.values():
        engine.dispose(close=False)
    _lanes.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=dispose_engines)


def _refuse_writes(session, _ctx, _instances) -> None:
    if session.new or session.dirty or session.deleted:
        what = [type(o).__name__ for o in (*session.new, *session.dirty, *session.deleted)][:5]
        raise ReadOnlyUnitOfWork(f"a read-only unit of work tried to write {what}")


def open_session(bind: Engine | None = None, *, write: bool = True, url: str | None = None) -> Session:
    """A new Session for one unit of work (the caller commits or rolls back and closes it).
    Read-only sessions begin a deferred transaction at once and refuse to flush changes."""
    session = Session(bind if bind is not None else get_engine(url), expire_on_commit=False)
    if not write:
        session.info[READONLY] = True
        event.listen(session, "before_flush", _refuse_writes)
        session.connection(execution_options={READONLY: True})
    return session


@contextmanager
def session_scope(url: str | None = None, *, write: bool = True) -> Iterator[Session]:
    """A unit of work: commits on success, rolls back on any error (see the module doc)."""
    url = url or db_url()
    lane = _lane(url) if write else None
    nested = lane.acquire(BUSY_TIMEOUT_MS / 1000 * BEGIN_ATTEMPTS) if lane is not None else False
    try:
        with open_session(url=url, write=write) as session:
            if nested:
                # The enclosing unit on this thread may hold SQLite's write lock: begin deferred,
                # so this unit can read; a write here would wait for its own caller (a bug).
                session.connection(execution_options={DEFERRED: True})
            try:
                yield session
                # A read-only unit ends with COMMIT too (it wrote nothing): a rollback would
                # expire the objects it loaded, which the caller may still read.
                session.commit()
            except BaseException:
                session.rollback()
                raise
    finally:
        if lane is not None:
            lane.release()


def is_transient(exc: BaseException) -> bool:
    """A failure that running the unit of work again may cure (nothing was committed)."""
    if isinstance(exc, (StaleDataError, WriterLaneBusy)):
        return True
    if isinstance(exc, DBAPIError):
        if _is_busy(exc):
            return True
        code = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
        return code in ("40001", "40P01")  # serialization failure, deadlock detected
    return False


def transact(fn: Callable[[Session], T], url: str | None = None, *, write: bool = True,
             attempts: int = TRANSACT_ATTEMPTS) -> T:
    """Run `fn(session)` in a unit of work; again (bounded, with backoff) on a transient
    database conflict. Other exceptions (a ServiceError, a bug) propagate at once."""
    for attempt in range(1, attempts + 1):
        try:
            with session_scope(url, write=write) as session:
                return fn(session)
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            log.info("unit of work retried after a transient conflict (%s), attempt %d",
                     type(exc).__name__, attempt)
            time.sleep(min(0.5, 0.02 * 2 ** attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def alembic_config(url: str | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", (url or db_url()).replace("%", "%%"))
    return cfg


def migrate(url: str | None = None) -> None:
    """Bring the schema to the newest revision (safe to call on every start)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def optimize(url: str | None = None) -> None:
    """Refresh planner statistics (cheap; SQLite analyzes only what changed a lot)."""
    engine = get_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA optimize=0x10002")
        else:
            conn.exec_driver_sql("ANALYZE")
