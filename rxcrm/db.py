"""Database engine and sessions for the service layer (plain SQLAlchemy/SQLModel).

The URL comes from REFLEX_DB_URL (the same variable Reflex reads), defaulting to an
embedded SQLite file `rxcrm.db` in the working directory."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

DEFAULT_DB_URL = "sqlite:///rxcrm.db"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

_engines: dict[str, Engine] = {}


def db_url() -> str:
    return os.environ.get("REFLEX_DB_URL") or DEFAULT_DB_URL


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # autocommit at the driver; SQLAlchemy emits BEGIN
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA cache_size=-65536")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()
    # SQLite's lower() folds ASCII only; make it Unicode-aware so Cyrillic filters work.
    dbapi_conn.create_function("lower", 1, lambda s: s.lower() if isinstance(s, str) else s,
                               deterministic=True)


def get_engine(url: str | None = None) -> Engine:
    url = url or db_url()
    engine = _engines.get(url)
    if engine is None:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
            event.listen(engine, "connect", _sqlite_pragmas)
            # pysqlite's own transaction handling breaks SAVEPOINTs (a savepoint opened before
            # any write commits on release). Let SQLAlchemy issue BEGIN itself instead.
            event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
        _engines[url] = engine
    return engine


def dispose_engines() -> None:
    """Drop pooled connections (after fork, in tests)."""
    for engine in _engines.values():
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=dispose_engines)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A unit of work: commits on success, rolls back on any error."""
    with Session(get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


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
