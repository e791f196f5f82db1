"""State handler tests for login, the session check and the language switch."""
from __future__ import annotations

import pytest
from sqlmodel import select

from rxcrm.db import db_url, migrate, session_scope
from rxcrm.models import User
from rxcrm.services import auth
from rxcrm.services.bootstrap import ensure_defaults

from .factories import make_state


@pytest.fixture(scope="module")
def app_db():
    """The database the app module uses (REFLEX_DB_URL from conftest), with one user."""
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
        if not s.exec(select(User).where(User.login == "manager1")).first():
            auth.create_user(s, "manager1", "Петров Иван", "demo", "manager", None)
    assert db_url().startswith("sqlite:///")
    import rxcrm.rxcrm  # noqa: F401  (registers the pages and states)
    return db_url()


def _redirect_path(spec) -> str:
    """The path of an rx.redirect(...) EventSpec."""
    args = dict((str(k), v) for k, v in spec.args)
    return str(args['"path"'] if '"path"' in args else args.get("path")).strip('"')


def _states():
    from rxcrm.state.app import AppState, LoginState
    return AppState, LoginState


def test_wrong_password_shows_a_clear_message(app_db):
    _, LoginState = _states()
    st = make_state(LoginState)
    assert st.submit({"login": "manager1", "password": "nope"}) is None
    assert st.error == "Неверный логин или пароль"
    assert st.session_token == "" and st.user_id == 0


def test_english_error_when_ui_is_english(app_db):
    _, LoginState = _states()
    st = make_state(LoginState)
    st.lang = "en"
    st.submit({"login": "manager1", "password": "nope"})
    assert st.error == "Wrong login or password"


def test_login_sets_the_session_cookie_and_redirects(app_db):
    _, LoginState = _states()
    st = make_state(LoginState)
    spec = st.submit({"login": "manager1", "password": "demo"})
    assert st.error == "" and st.user_name == "Петров Иван"
    assert len(st.session_token) > 30
    assert "/leads" in _redirect_path(spec)


def test_no_session_redirects_to_login(app_db):
    AppState, _ = _states()
    st = make_state(AppState)
    spec = st.check_login()
    assert _redirect_path(spec).startswith("/login")
    assert st.is_authenticated is False


def test_live_session_passes_and_forged_one_does_not(app_db):
    AppState, _ = _states()
    with session_scope() as s:
        token, _ = auth.login(s, "manager1", "demo")
    st = make_state(AppState)
    st.session_token = token
    assert st.check_login() is None
    assert st.user_login == "manager1" and st.is_authenticated
    st2 = make_state(AppState)
    st2.session_token = token + "x"
    assert _redirect_path(st2.check_login()).startswith("/login")
    assert st2.session_token == ""


def test_language_switch_changes_labels_and_is_remembered(app_db):
    AppState, _ = _states()
    with session_scope() as s:
        token, user = auth.login(s, "manager1", "demo")
    st = make_state(AppState)
    st.session_token = token
    st.check_login()
    assert st.t["nav.deals"] == "Сделки"
    st.set_lang("en")
    assert st.t["nav.deals"] == "Deals" and st.lang == "en"
    st.set_lang("xx")  # unknown language: ignored
    assert st.lang == "en"
    with session_scope() as s:
        assert s.get(User, user.id).locale == "en"
    st.set_lang("ru")
    assert st.t["nav.deals"] == "Сделки"


def test_logout_ends_the_session(app_db):
    AppState, _ = _states()
    with session_scope() as s:
        token, _ = auth.login(s, "manager1", "demo")
    st = make_state(AppState)
    st.session_token = token
    st.check_login()
    assert _redirect_path(st.logout()) == "/login"
    assert st.session_token == "" and not st.is_authenticated
    with session_scope() as s:
        assert auth.resolve(s, token) is None
