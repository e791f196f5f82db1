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
  database before it returns.

Several worker processes (Reflex prod forks them from a supervisor that imported the app):
- `install_fork_hook()` (called once by the app's startup) makes every forked child forget
  the inherited pools — ours and Reflex's — so no connection is ever shared by two processes.
- `singleton(name).held()` elects one process to run a job (the lifespan tasks in
  rxcrm/tasks.py): a PostgreSQL session advisory lock, or a file lock next to a SQLite file."""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import random
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.pool import NullPool
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


def forget_engine(url: str) -> None:
    """Close the engine of a database that is gone (a test's throwaway SQLite file): its
    pooled connections — three file descriptors each — are not kept for the process's life."""
    engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()
    with _lanes_lock:
        _lanes.pop(url, None)


_fork_hook_installed = False


def _after_fork_in_child() -> None:
    """A forked worker (Reflex prod: granian forks the supervisor that imported the app)
    must never use a connection the parent opened: both would talk over the same socket.
    `dispose(close=False)` forgets the inherited pools without touching their sockets
    (psycopg closes a connection only in the process that opened it), so the child opens
    its own. Reflex's engines (reflex.model._ENGINE/_ASYNC_ENGINE) likewise, and any leader
    lock the parent held stays the parent's (`Singleton._forget_after_fork`)."""
    dispose_engines()
    model = sys.modules.get("reflex.model")  # imported only if the app did (never import here)
    if model is not None:
        for engine in list(getattr(model, "_ENGINE", {}).values()):
            engine.dispose(close=False)
        for engine in list(getattr(model, "_ASYNC_ENGINE", {}).values()):
            engine.sync_engine.dispose(close=False)
    for leader in list(_singletons):
        leader._forget_after_fork()


def install_fork_hook() -> None:
    """Register `_after_fork_in_child` once (the app's startup calls it; calling again is a no-op)."""
    global _fork_hook_installed
    if _fork_hook_installed or not hasattr(os, "register_at_fork"):
        return
    os.register_at_fork(after_in_child=_after_fork_in_child)
    _fork_hook_installed = True


# ---- one runner among the workers ------------------------------------------------------------
_singletons: "weakref.WeakSet[Singleton]" = weakref.WeakSet()
_inherited: list = []  # a parent's lock connections/files a forked child must never close


def _lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key per job name (the same in every worker)."""
    return int.from_bytes(hashlib.sha256(f"rxcrm:{name}".encode()).digest()[:8], "big", signed=True)


class Singleton:
    """Leadership of one named job among the app's processes: `held()` is True in exactly one.

    PostgreSQL: a session-level `pg_try_advisory_lock(key)` on a dedicated connection (outside
    the pool, autocommit: no transaction stays open). The lock lives as long as that
    connection: a worker that dies loses it and the next `held()` of another worker wins it.
    While held, `held()` checks the connection is still alive (a server restart drops the lock).
    SQLite (one process by design): `flock` on a file next to the database file,
    `<db file>.<name>.lock`; the kernel releases it when the process dies.

    Callers ask `held()` every period (others retry then) and `release()` at the end; it is
    also a context manager. Thread-safe; cheap (one round trip while held)."""

    def __init__(self, name: str, url: str | None = None):
        self.name = name
        self.url = url or db_url()
        self._mutex = threading.Lock()
        self._conn = None      # PostgreSQL: the connection holding the advisory lock
        self._fd: int | None = None  # SQLite: the locked file
        self._engine: Engine | None = None
        self._warned = False
        _singletons.add(self)

    # -- public ------------------------------------------------------------------------------
    def held(self) -> bool:
        """True when this process holds the lock now (taking it if it is free)."""
        with self._mutex:
            try:
                if self.url.startswith("sqlite"):
                    return self._held_file()
                return self._held_pg()
            except (DBAPIError, OSError) as exc:
                if not self._warned:
                    log.warning("leader lock %r unavailable: %s", self.name, exc)
                    self._warned = True
                self._drop_pg()
                return False

    def release(self) -> None:
        with self._mutex:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None
            self._drop_pg()

    def __enter__(self) -> "Singleton":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # -- PostgreSQL --------------------------------------------------------------------------
    def _held_pg(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.exec_driver_sql("SELECT 1")  # still alive, so the lock is still ours
                return True
            except DBAPIError:
                log.warning("leader lock %r lost with its connection; taking it again", self.name)
                self._drop_pg()
        if self._engine is None:
            self._engine = create_engine(self.url, poolclass=NullPool,
                                         isolation_level="AUTOCOMMIT")
        conn = self._engine.connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _lock_key(self.name)}).scalar()
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn, self._warned = conn, False
        log.info("leader lock %r taken by pid %d", self.name, os.getpid())
        return True

    def _drop_pg(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()  # NullPool: the session ends, the server releases the lock
            except Exception:  # noqa: BLE001 - a dead connection may fail to close
                pass

    # -- SQLite ------------------------------------------------------------------------------
    def lock_path(self) -> Path:
        database = make_url(self.url).database
        if not database or database == ":memory:":  # one process owns an in-memory database
            return Path(tempfile.gettempdir()) / f"rxcrm-memory-{os.getpid()}.{self.name}.lock"
        path = Path(database)
        return path.with_name(f"{path.name}.{self.name}.lock")

    def _held_file(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.lock_path(), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    # -- fork --------------------------------------------------------------------------------
    def _forget_after_fork(self) -> None:
        """In a forked child: the parent's lock is not ours. Keep its connection object alive
        (closing or collecting it here could end the parent's session) and close our copy of
        the lock file's descriptor (the parent's stays locked). No mutex: after fork only this
        thread exists, and a lock held by a vanished thread would never be released."""
        self._mutex = threading.Lock()
        if self._conn is not None:
            _inherited.append(self._conn)
            self._conn = None
        if self._engine is not None:
            _inherited.append(self._engine)
            self._engine = None
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None


def singleton(name: str, url: str | None = None) -> Singleton:
    """The leader lock of job `name` on the app's database (see `Singleton`)."""
    return Singleton(name, url)


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


def reserve_ids(session: Session, table: str, n: int) -> list[int]:
    """`n` fresh primary keys of `table` for rows this unit of work will insert: with the ids
    known, a batch of hundreds goes in one executemany instead of an INSERT … RETURNING per
    row. PostgreSQL: from the table's sequence (never given twice). SQLite: after the
    largest id — the unit holds the write lock from its BEGIN IMMEDIATE, so nobody else
    inserts meanwhile (call it right before inserting, in a unit that may write)."""
    if n <= 0:
        return []
    if session.bind.dialect.name == "postgresql":
        rows = session.execute(text(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
                                    "FROM generate_series(1, :n)"), {"n": n}).scalars().all()
        return sorted(int(r) for r in rows)
    top = session.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one()
    return list(range(int(top) + 1, int(top) + 1 + n))


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
