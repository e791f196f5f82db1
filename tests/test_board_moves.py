"""A move settles the board without re-reading it: the moved card carries its new version
(so the same person can drag it again), and both columns' counts, sums and activity
counters are exactly what a fresh read of the board says."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from rxcrm.db import migrate, session_scope
from rxcrm.models import Activity, Deal, User
from rxcrm.services import auth
from rxcrm.services.bootstrap import ensure_defaults
from rxcrm.models.base import utcnow

from . import factories as f


@pytest.fixture(scope="module")
def world():
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
        if not s.exec(select(User).where(User.login == "bm1")).first():
            m = f.user(s, "bm1", full_name="Зуева Нина Петровна")
            for i in range(6):
                d = f.deal(s, f"Ход {i}", m, amount=1500 * (i + 1))
                if i % 2 == 0:  # every other deal has an activity: overdue for one, later for others
                    when = utcnow() - timedelta(hours=2) if i == 0 else utcnow() + timedelta(days=3)
                    s.add(Activity(entity_type="deal", entity_id=d.id, kind="call", subject="Звонок",
                                   start_at=when, responsible_id=m.id))
                    d.next_activity_at = when
                    s.add(d)
    import rxcrm.rxcrm  # noqa: F401
    with session_scope() as s:
        token, _ = auth.login(s, "bm1", "demo")
        ids = {d.title: d.id for d in s.exec(select(Deal).where(Deal.title.like("Ход %"))).all()}
        stages = {c: f.stage(s, "dpo", c).id for c in ("INTEREST", "REGISTRATION")}
    return token, ids, stages


def _state(token):
    from rxcrm.state.work import WorkState
    st = f.logged_in(WorkState, token)
    st.check_login()
    st.on_load()
    return st


def _columns(st):
    return {c.id: (c.count, c.amount, c.total, c.overdue, c.today, c.none) for c in st.board}


def _drag(st, card_id, src, dst):
    out = list(st.on_drag_end({"draggableId": str(card_id), "from": str(src), "to": str(dst)}))
    assert "Карточку изменил" not in str(out), out
    return out


def test_the_same_card_dragged_back_and_forth_from_one_board(world):
    token, ids, stages = world
    st = _state(token)
    a, b = stages["INTEREST"], stages["REGISTRATION"]
    for card in (ids["Ход 0"], ids["Ход 1"]):
        for src, dst in ((a, b), (b, a), (a, b)):
            _drag(st, card, src, dst)
            with session_scope() as s:
                assert s.get(Deal, card).stage_id == dst
            assert any(c.id == card for col in st.board if col.id == dst for c in col.cards)
            with session_scope() as s:
                assert st._versions[card] == s.get(Deal, card).version
    # the locally settled columns are what a fresh read shows, to the rouble and the counter
    settled = _columns(st)
    fresh = _state(token)
    assert settled == _columns(fresh)
    reg = next(c for c in fresh.board if c.id == b)
    assert reg.count >= 2 and reg.overdue >= 1  # «Ход 0» brought its overdue call along


def test_a_move_the_service_takes_as_it_is_sends_the_board_once(world):
    """The drop's optimistic board is the one sent; when the service's answer changes nothing
    shown (only the new version, kept on the server), the board is not sent a second time.
    When a rule changed the card (a planned activity), the answer brings it."""
    token, ids, stages = world
    st = _state(token)
    a, b = stages["INTEREST"], stages["REGISTRATION"]
    card = ids["Ход 5"]
    _drag(st, card, next(col.id for col in st.board for c in col.cards if c.id == card), a)

    def drag(src, dst):
        gen = st.on_drag_end({"draggableId": str(card), "from": str(src), "to": str(dst)})
        next(gen)  # the optimistic move, as the browser receives it first
        assert "board" in st.dirty_vars and st.saving_id == card
        st._clean()
        for _ in gen:
            pass
        assert "saving_id" in st.dirty_vars and st.saving_id == 0
        with session_scope() as s:
            assert st._versions[card] == s.get(Deal, card).version
        assert _columns(st) == _columns(_state(token))  # what it shows is what a fresh read shows
        return next(c for col in st.board if col.id == dst for c in col.cards if c.id == card)

    moved = drag(a, b)  # «Регистрация» plans a confirmation call: the answer brings it
    assert moved.activity and "board" in st.dirty_vars
    moved = drag(b, a)  # back: nothing changes but the version
    assert moved.activity and "board" not in st.dirty_vars
