"""State handler tests for the session check, /login's messages, the language switch and
logout. The session token is an HttpOnly cookie the state never sees: a state knows the
browser only by the hash rxcrm/web.py puts in `x-rxcrm-session` (tests: factories.route)."""
from __future__ import annotations

import pickle

import pytest
from sqlmodel import select

from rxcrm.db import db_url, migrate, session_scope
from rxcrm.models import User
from rxcrm.services import auth
from rxcrm.services.bootstrap import ensure_defaults

from . import factories as f


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


def _token() -> str:
    with session_scope() as s:
        token, _ = auth.login(s, "manager1", "demo")
    return token


def test_login_page_explains_a_refusal_from_the_url(app_db):
    _, LoginState = _states()
    st = f.logged_in(LoginState, "", "/login?error=bad_password&login=manager1&next=/deals")
    assert st.on_load() is None
    assert st.error == "Неверный логин или пароль"
    assert st.login_value == "manager1" and st.next_path == "/deals"


def test_login_page_in_english_and_rate_limit_wait(app_db):
    _, LoginState = _states()
    st = f.logged_in(LoginState, "", "/login?error=bad_password")
    st.lang = "en"
    st.on_load()
    assert st.error == "Wrong login or password"
    st = f.logged_in(LoginState, "", "/login?error=rate_limited&wait=120")
    st.on_load()
    assert st.error.startswith("Слишком много неудачных попыток") and "2 минуты" in st.error


def test_login_page_never_redirects_off_site(app_db):
    _, LoginState = _states()
    for nxt in ("//evil.example/x", "https://evil.example", "/login?x=1"):
        st = f.logged_in(LoginState, "", f"/login?next={nxt}")
        st.on_load()
        assert st.next_path == "/leads"


def test_logged_in_person_on_login_page_goes_on(app_db):
    _, LoginState = _states()
    st = f.logged_in(LoginState, _token(), "/login?next=/deals")
    assert _redirect_path(st.on_load()) == "/deals"


def test_no_session_redirects_to_login(app_db):
    AppState, _ = _states()
    st = f.logged_in(AppState, "", "/deals")
    spec = st.check_login()
    assert _redirect_path(spec) == "/login?next=/deals"
    assert st.is_authenticated is False


def test_live_session_passes_and_forged_one_does_not(app_db):
    AppState, _ = _states()
    token = _token()
    st = f.logged_in(AppState, token, "/deals")
    assert st.check_login() is None
    assert st.user_login == "manager1" and st.is_authenticated
    st2 = f.logged_in(AppState, token + "x", "/deals")
    assert _redirect_path(st2.check_login()) == "/login?next=/deals&expired=1"
    # the hash itself, presented as if it were the cookie, matches nothing
    st3 = f.logged_in(AppState, auth.session_key(token), "/deals")
    assert _redirect_path(st3.check_login()).startswith("/login")


def test_state_keeps_no_usable_secret(app_db):
    """What Reflex stores of a state (pickled to .states/ or Redis) holds only the hash."""
    AppState, _ = _states()
    token = _token()
    st = f.logged_in(AppState, token, "/deals")
    st.check_login()
    blob = pickle.dumps(st.parent_state or st) + pickle.dumps(st)
    assert token.encode() not in blob
    assert not any("token" in name for name in type(st).base_vars)


def test_revoked_session_sends_every_handler_to_login(app_db):
    AppState, _ = _states()
    token = _token()
    st = f.logged_in(AppState, token, "/deals")
    st.check_login()
    with session_scope() as s:
        auth.logout(s, token)
    spec = st.mark_all_read()
    assert _redirect_path(spec).startswith("/login")


def test_language_switch_changes_labels_and_is_remembered(app_db):
    AppState, _ = _states()
    token = _token()
    st = f.logged_in(AppState, token)
    st.check_login()
    assert st.t["nav.deals"] == "Сделки"
    st.set_lang("en")
    assert st.t["nav.deals"] == "Deals" and st.lang == "en"
    st.set_lang("xx")  # unknown language: ignored
    assert st.lang == "en"
    with session_scope() as s:
        assert s.exec(select(User).where(User.login == "manager1")).one().locale == "en"
    st.set_lang("ru")
    assert st.t["nav.deals"] == "Сделки"


def test_logout_ends_the_session_at_once(app_db):
    AppState, _ = _states()
    token = _token()
    st = f.logged_in(AppState, token)
    st.check_login()
    spec = st.logout()
    assert "/api/session/logout" in str(spec)  # the browser posts the form that clears the cookie
    assert not st.is_authenticated
    with session_scope() as s:
        assert auth.resolve(s, token) is None
