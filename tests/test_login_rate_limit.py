"""Login rate limit: failed attempts per account and per client within 15 minutes — on
SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import AuditRecord, UserSession
from rxcrm.services import auth
from rxcrm.services.errors import AuthError

from . import factories as f


@pytest.fixture
def users(db):
    with session_scope(db) as s:
        for login in ("manager1", "manager2", "manager3"):
            f.user(s, login)
    return db


def fail(db, login, client, password="wrong") -> str:
    with pytest.raises(AuthError) as err, session_scope(db) as s:
        auth.login(s, login, password, client=client)
    return err.value.code


def ok(db, login, client) -> None:
    with session_scope(db) as s:
        auth.login(s, login, "demo", client=client)


def age_failures(db, minutes: int, reason: str | None = None) -> None:
    """Move recorded failures back in time (as if they had happened `minutes` ago)."""
    with session_scope(db) as s:
        recs = s.exec(select(AuditRecord).where(AuditRecord.action == "login_failed")).all()
        for r in recs:
            if reason is None or (r.details or {}).get("reason") == reason:
                s.execute(update(AuditRecord).where(AuditRecord.id == r.id)
                          .values(created_at=r.created_at - timedelta(minutes=minutes)))


def test_five_failures_lock_the_account_even_for_the_right_password(users):
    db = users
    for i in range(auth.MAX_FAILED_PER_LOGIN):
        assert fail(db, "manager1", f"10.0.0.{i}") == "bad_password"  # from different clients
    with pytest.raises(AuthError) as err, session_scope(db) as s:
        auth.login(s, "MANAGER1", "demo", client="10.0.1.1")
    assert err.value.code == "rate_limited"
    assert err.value.message == "Слишком много неудачных попыток. Попробуйте через 15 минут"
    with session_scope(db) as s:
        assert s.exec(select(UserSession)).all() == []
        last = s.exec(select(AuditRecord).order_by(AuditRecord.id.desc())).first()
        assert last.action == "login_failed" and last.details["reason"] == "rate_limited"
        assert last.client == "10.0.1.1" and last.details["login"] == "manager1"
    ok(db, "manager2", "10.0.1.1")  # other accounts are not affected


def test_unknown_logins_are_limited_too(users):
    db = users
    for _ in range(auth.MAX_FAILED_PER_LOGIN):
        assert fail(db, "ghost", "10.0.0.1") == "unknown_login"
    assert fail(db, "ghost", "10.0.0.2") == "rate_limited"


def test_twenty_failures_from_one_client_lock_that_client(users):
    db = users
    for i in range(auth.MAX_FAILED_PER_CLIENT):
        fail(db, f"guess{i % 4}", "203.0.113.7")  # 5 per guessed login: those lock too, but…
    # …a real account that never failed is still refused from this client,
    assert fail(db, "manager3", "203.0.113.7", password="demo") == "rate_limited"
    # and accepted from another one.
    ok(db, "manager3", "198.51.100.1")
    with session_scope(db) as s:
        assert auth.failed_attempts(s, "manager3", "203.0.113.7") == (0, auth.MAX_FAILED_PER_CLIENT)


def test_success_after_the_window(users):
    db = users
    for _ in range(auth.MAX_FAILED_PER_LOGIN):
        fail(db, "manager1", "10.0.0.1")
    assert fail(db, "manager1", "10.0.0.1", password="demo") == "rate_limited"
    assert fail(db, "manager1", "10.0.0.1", password="demo") == "rate_limited"
    # 14 minutes later: still locked.
    age_failures(db, 14)
    assert fail(db, "manager1", "10.0.0.1", password="demo") == "rate_limited"
    # The real failures are now 16 minutes old; the refusals by the limit itself are recent
    # but do not count, so the account opens again.
    age_failures(db, 2, reason="bad_password")
    ok(db, "manager1", "10.0.0.1")
    with session_scope(db) as s:
        assert auth.failed_attempts(s, "manager1", "10.0.0.1") == (0, 0)


def test_four_failures_do_not_lock(users):
    db = users
    for _ in range(auth.MAX_FAILED_PER_LOGIN - 1):
        fail(db, "manager1", "10.0.0.1")
    ok(db, "manager1", "10.0.0.1")
