"""The top search's states: the dropdown (SearchState) fills grouped matches as one types,
and Enter (AppState.global_search) opens the best target — not always /leads."""
from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from rxcrm.db import migrate, session_scope
from rxcrm.models import Deal, User
from rxcrm.services import auth
from rxcrm.services.bootstrap import ensure_defaults

from . import factories as f


@pytest.fixture(scope="module")
def world():
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
        if not s.exec(select(User).where(User.login == "ssm1")).first():
            m = f.user(s, "ssm1", full_name="Поисков Семён")
            c = f.contact(s, "Уникальнова", "Дарья", phones=["+7 921 345-67-89"], responsible=m)
            f.deal(s, "Английский язык — Уникальнова", m, contact_=c)
    import rxcrm.rxcrm  # noqa: F401
    with session_scope() as s:
        token, _ = auth.login(s, "ssm1", "demo")
        deal_id = s.exec(select(Deal).where(Deal.title == "Английский язык — Уникальнова")).one().id
    return token, deal_id


def test_typing_fills_grouped_matches_and_an_empty_box_closes(world):
    from rxcrm.state.search import SearchState
    token, deal_id = world
    st = f.logged_in(SearchState, token, "/deals")
    st.check_login()
    asyncio.run(st.search_type("921 345-67-89"))
    assert st.search_open and not st.search_empty
    assert [g.entity for g in st.search_groups] == ["deal", "contact"]
    assert st.search_groups[0].hits[0].href == f"/deals/{deal_id}"
    assert st.search_groups[0].hits[0].title == "Английский язык — Уникальнова"
    asyncio.run(st.search_type("Жжжжжжж"))
    assert st.search_open and st.search_empty
    asyncio.run(st.search_type(""))
    assert not st.search_open and st.search_groups == []
    asyncio.run(st.search_type("уникальнова"))
    st.search_close()
    assert not st.search_open
    st.search_focus()
    assert st.search_open  # back in the box: the last matches again
    st.search_reset()
    assert st.search_q == "" and not st.search_open and st.search_groups == []


def test_enter_opens_the_one_matching_card_or_the_list_of_the_first_kind(world):
    from rxcrm.state.app import AppState
    token, deal_id = world
    st = f.logged_in(AppState, token, "/deals")
    st.check_login()
    assert f"/deals/{deal_id}" in str(asyncio.run(st.global_search({"q": "Английский язык — Уникальнова"})))
    out = str(asyncio.run(st.global_search({"q": "уникальнова"})))  # a deal and a contact match: the deals list
    assert "/deals?view=list&q=" in out and "/leads" not in out


def test_search_handlers_answer_malformed_arguments_with_a_message(world, monkeypatch):
    """tests/test_state_malformed.py's check, for the search state (not in its list)."""
    import inspect

    from rxcrm.state import base
    from rxcrm.state.search import SearchState

    from .test_state_malformed import BAD_VALUES, _handlers, _run

    token, _ = world
    unexpected: list[str] = []
    monkeypatch.setattr(base, "report_unexpected",
                        lambda state, fn, exc: unexpected.append(f"{fn.__qualname__}: {exc!r}") or "TEST")
    checked = 0
    for name, handler in _handlers(SearchState):
        if not handler.fn.__qualname__.startswith("SearchState."):
            continue  # AppState's own are checked by test_state_malformed
        params = list(inspect.signature(handler.fn).parameters.values())[1:]
        calls = [((), {}), ((), {"surprise": 1})] + ([(tuple(bad for _ in params), {}) for bad in BAD_VALUES]
                                                     if params else [])
        for args, kwargs in calls:
            st = f.logged_in(SearchState, token, "/deals")
            st.check_login()
            out = _run(getattr(st, name)(*args, **kwargs))
            assert "An error occurred" not in str(out)
            checked += 1
    assert not unexpected, unexpected
    assert checked > 20
