"""Every public event handler of every state class, sent malformed arguments the way a
crafted websocket message would (Reflex passes a value it cannot convert to the handler's
annotation through as it came): the handler answers with a message — never an exception,
and never through the catch-all for bugs (`base.report_unexpected`)."""
from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path

import pytest
from sqlmodel import select

from rxcrm.db import migrate, session_scope
from rxcrm.models import Deal, Lead, User
from rxcrm.services import auth
from rxcrm.services.bootstrap import ensure_defaults

from . import factories as f

BAD_VALUES = [None, "", "abc", -1, 0, 2 ** 70, "9" * 40, 3.5, True, [], ["x", 1], {}, {"a": {"b": [1]}},
              "' OR 1=1 --", "<img src=x onerror=alert(1)>", "\x00\ud800", "x" * 100_000]
STATE_DIR = Path(__file__).resolve().parents[1] / "rxcrm" / "state"


@pytest.fixture(scope="module")
def world():
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
        admin = s.exec(select(User).where(User.login == "maladmin")).first() or \
            f.user(s, "maladmin", role="admin", dept_code=None, full_name="Админов Админ")
        m = s.exec(select(User).where(User.login == "malmgr")).first() or f.user(s, "malmgr", full_name="Менеджеров")
        deal = s.exec(select(Deal).where(Deal.title == "Сделка для проверки ввода")).first() or \
            f.deal(s, "Сделка для проверки ввода", m)
        lead = s.exec(select(Lead).where(Lead.title == "Лид для проверки ввода")).first() or \
            f.lead(s, "Лид для проверки ввода", m)
        token, _ = auth.login(s, admin.login, "demo")
        ids = deal.id, lead.id
    import rxcrm.rxcrm  # noqa: F401  (registers the pages and states)
    return token, ids


def _states():
    from rxcrm.state.activities import ActivitiesState
    from rxcrm.state.analytics import AnalyticsState
    from rxcrm.state.app import AppState, LoginState
    from rxcrm.state.card import CardState
    from rxcrm.state.duplicates import DuplicatesState
    from rxcrm.state.history import HistoryState
    from rxcrm.state.imports import ImportsListState, ImportState
    from rxcrm.state.settings import SettingsState
    from rxcrm.state.work import WorkState
    return [AppState, LoginState, WorkState, CardState, ActivitiesState, SettingsState, HistoryState, AnalyticsState,
            DuplicatesState, ImportState, ImportsListState]


def _run(result):
    """Drive whatever a handler returned (plain value, generator, coroutine, async gen)."""
    if inspect.iscoroutine(result):
        return asyncio.run(result)
    if inspect.isasyncgen(result):
        async def drain():
            return [x async for x in result]
        return asyncio.run(drain())
    if inspect.isgenerator(result):
        return list(result)
    return result


def _fresh(cls, token, ids):
    deal_id, _ = ids
    path = {"CardState": f"/deals/{deal_id}", "WorkState": "/deals", "ActivitiesState": "/activities",
            "SettingsState": "/settings", "DuplicatesState": "/settings", "ImportsListState": "/settings", "ImportState": "/leads", "HistoryState": "/history", "AnalyticsState": "/analytics",
            "LoginState": "/login"}.get(cls.__name__, "/deals")
    st = f.logged_in(cls, token, path)
    st.check_login()
    opener = {"CardState": "load_card", "LoginState": None, "AppState": None,
              "ImportState": None}.get(cls.__name__, "on_load")
    if opener:
        _run(getattr(st, opener)())
    return st


def _handlers(cls):
    for name, handler in cls.event_handlers.items():
        if name.startswith("_") or getattr(handler, "is_background", False) or \
                not handler.fn.__module__.startswith("rxcrm"):
            continue  # background tasks (the Excel export) take no arguments and run behind a StateProxy
        yield name, handler


def test_every_handler_answers_malformed_arguments_with_a_message(world, monkeypatch):
    from rxcrm.state import base

    token, ids = world
    unexpected: list[str] = []
    monkeypatch.setattr(base, "report_unexpected",
                        lambda state, fn, exc: unexpected.append(f"{fn.__qualname__}: {exc!r}") or "TEST")
    checked, refused = 0, 0
    for cls in _states():
        for name, handler in _handlers(cls):
            params = [p for p in inspect.signature(handler.fn).parameters.values()][1:]
            calls = [((), {}), ((), {"surprise": 1})]
            calls += [(tuple(bad for _ in params), {}) for bad in BAD_VALUES] if params else []
            for args, kwargs in calls:
                st = _fresh(cls, token, ids)
                try:
                    out = _run(getattr(st, name)(*args, **kwargs))
                except Exception as exc:  # noqa: BLE001 - the assertion below names it
                    pytest.fail(f"{cls.__name__}.{name}{args!r:.80}: {exc!r} escaped the handler")
                checked += 1
                text = str(out)
                assert "An error occurred" not in text
                if "Неверные данные" in text:
                    refused += 1
                if args and args[0] == "abc" and any(p.annotation in (int, "int") for p in params):
                    assert "Неверные данные" in text, f"{cls.__name__}.{name}('abc') said nothing: {text:.200}"
    assert not unexpected, "handlers that reached the catch-all for bugs:\n" + "\n".join(sorted(set(unexpected)))
    assert checked > 500 and refused > 50, (checked, refused)


def test_state_code_parses_client_input_only_through_the_helpers():
    """No bare int() on what a browser sent: the parsing helpers of state/base.py do it."""
    offenders = []
    for path in STATE_DIR.glob("*.py"):
        if path.name == "base.py":
            continue
        for no, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"(?<![\w.])int\(", line):
                offenders.append(f"{path.name}:{no}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_every_handler_is_declared_through_the_guard():
    offenders = [f"{p.name}:{no}" for p in STATE_DIR.glob("*.py") if p.name != "base.py"
                 for no, line in enumerate(p.read_text().splitlines(), 1) if "@rx.event" in line]
    assert not offenders, offenders
    for cls in _states():
        for name, handler in cls.event_handlers.items():
            if name.startswith("_") or cls.__module__.startswith("reflex"):
                continue
            if handler.fn.__module__.startswith("rxcrm"):
                assert hasattr(handler.fn, "__wrapped__"), f"{cls.__name__}.{name} is not behind state.base.event"
