"""Test fixtures: every service test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from RXCRM_TEST_PG_URL (set by `make test`, which starts a throwaway
server). When it is missing or unreachable the PostgreSQL half of the tests FAILS —
it never skips silently."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="rxcrm-tests-"))
# The app module reads REFLEX_DB_URL at import; point it at a scratch file first.
os.environ.setdefault("REFLEX_DB_URL", f"sqlite:///{_TMP / 'app.db'}")

from sqlalchemy import create_engine, text  # noqa: E402

from rxcrm import hooks  # noqa: E402
from rxcrm.db import forget_engine, get_engine, migrate, session_scope  # noqa: E402
from rxcrm.models import metadata  # noqa: E402
from rxcrm.services.bootstrap import ensure_defaults  # noqa: E402

hooks.wire()  # as the app does at its start: rules, notifications and the audit react to events

PG_URL = os.environ.get("RXCRM_TEST_PG_URL", "")
_sqlite_template: Path | None = None
_pg_ready: str | None = None
_PG_DB = f"rxcrm_test_{os.getpid()}"  # one database per test process


def _sqlite_db(tmp_path: Path) -> str:
    global _sqlite_template
    if _sqlite_template is None:
        _sqlite_template = _TMP / "template.db"
        migrate(f"sqlite:///{_sqlite_template}")
        get_engine(f"sqlite:///{_sqlite_template}").dispose()
    path = tmp_path / "test.db"
    shutil.copy(_sqlite_template, path)
    return f"sqlite:///{path}"


def _pg_db() -> str:
    global _pg_ready
    if not PG_URL:
        pytest.fail("RXCRM_TEST_PG_URL is not set: PostgreSQL tests need the server that "
                    "`make test` starts (scripts/pg.sh start)")
    if _pg_ready is None:
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as c:
                c.execute(text(f"DROP DATABASE IF EXISTS {_PG_DB} WITH (FORCE)"))
                c.execute(text(f"CREATE DATABASE {_PG_DB}"))
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"PostgreSQL at {PG_URL} is not reachable: {exc}")
        finally:
            admin.dispose()
        _pg_ready = PG_URL.rsplit("/", 1)[0] + f"/{_PG_DB}"
        migrate(_pg_ready)
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with get_engine(_pg_ready).begin() as c:
        c.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return _pg_ready


@pytest.fixture(params=["sqlite", "pg"])
def db_url(request, tmp_path):
    """A migrated, empty database (no default configuration) on each backend. A SQLite
    test's engine is closed after it (else ~1,400 tests leave their connections' file
    descriptors open, and select() refuses descriptors past 1024)."""
    url = _sqlite_db(tmp_path) if request.param == "sqlite" else _pg_db()
    yield url
    if request.param == "sqlite":
        forget_engine(url)


@pytest.fixture
def db(db_url) -> str:
    """A migrated database with the default configuration (pipelines, departments, roles)."""
    with session_scope(db_url) as s:
        ensure_defaults(s)
    return db_url


def pytest_sessionfinish(session, exitstatus):
    if _pg_ready is not None:
        get_engine(_pg_ready).dispose()
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {_PG_DB} WITH (FORCE)"))
        admin.dispose()
    shutil.rmtree(_TMP, ignore_errors=True)
