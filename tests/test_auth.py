"""Login, sessions and passwords on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import AuditRecord, Department, User, UserSession, utcnow
from rxcrm.services import auth
from rxcrm.services.errors import AuthError


@pytest.fixture
def user_db(db):
    with session_scope(db) as s:
        dpo = s.exec(select(Department).where(Department.code == "dpo")).one()
        auth.create_user(s, "manager1", "Петров Иван", "demo", "manager", dpo.id)
    return db


def test_password_is_hashed_with_argon2(user_db):
    with session_scope(user_db) as s:
        user = s.exec(select(User).where(User.login == "manager1")).one()
    assert user.password_hash.startswith("$argon2")
    assert "demo" not in user.password_hash
    assert auth.verify_password(user.password_hash, "demo")
    assert not auth.verify_password(user.password_hash, "Demo")
    assert not auth.verify_password("not-a-hash", "demo")


def test_login_opens_a_session_that_resolves(user_db):
    with session_scope(user_db) as s:
        token, user = auth.login(s, " Manager1 ", "demo", client="127.0.0.1")
    assert len(token) >= 40
    with session_scope(user_db) as s:
        assert auth.resolve(s, token).login == "manager1"
        row = s.exec(select(UserSession)).one()
        assert row.token_hash != token  # only the hash is stored
        actions = [a.action for a in s.exec(select(AuditRecord)).all()]
    assert actions == ["login"]


@pytest.mark.parametrize("login,password", [("manager1", "wrong"), ("nobody", "demo")])
def test_wrong_credentials_are_refused_with_one_clear_message(user_db, login, password):
    with session_scope(user_db) as s, pytest.raises(AuthError) as err:
        auth.login(s, login, password)
    assert err.value.message == "Неверный логин или пароль"
    with session_scope(user_db) as s:
        assert s.exec(select(UserSession)).all() == []
        failed = s.exec(select(AuditRecord).where(AuditRecord.action == "login_failed")).all()
    # The failed attempt is audited and survives the refusal.
    assert len(failed) == 1 and failed[0].details["login"] == login


def test_empty_login_is_refused(user_db):
    with session_scope(user_db) as s, pytest.raises(AuthError) as err:
        auth.login(s, "", "")
    assert err.value.message == "Введите логин и пароль"


def test_inactive_user_cannot_log_in_and_loses_sessions(user_db):
    with session_scope(user_db) as s:
        token, user = auth.login(s, "manager1", "demo")
    with session_scope(user_db) as s:
        user = s.exec(select(User).where(User.login == "manager1")).one()
        user.is_active = False
        s.add(user)
        assert auth.revoke_user_sessions(s, user.id) == 1
    with session_scope(user_db) as s:
        assert auth.resolve(s, token) is None
        with pytest.raises(AuthError) as err:
            auth.login(s, "manager1", "demo")
    assert "отключена" in err.value.message
    assert err.value.code == "inactive"


def test_session_expires(user_db):
    with session_scope(user_db) as s:
        token, _ = auth.login(s, "manager1", "demo")
    with session_scope(user_db) as s:
        row = s.exec(select(UserSession)).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        s.add(row)
    with session_scope(user_db) as s:
        assert auth.resolve(s, token) is None


def test_logout_revokes_the_session(user_db):
    with session_scope(user_db) as s:
        token, _ = auth.login(s, "manager1", "demo")
    with session_scope(user_db) as s:
        auth.logout(s, token)
    with session_scope(user_db) as s:
        assert auth.resolve(s, token) is None
        assert auth.resolve(s, "") is None
        assert auth.resolve(s, "forged-token") is None
        assert "logout" in [a.action for a in s.exec(select(AuditRecord)).all()]
