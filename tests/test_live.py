"""Live updates (state/live.py): a change made by one person reaches the open board of
another through the change feed — as that person sees it (their scope), never an item
their role may not see; one's own change does not bounce back."""
from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from sqlmodel import select

from rxcrm.db import migrate, session_scope
from rxcrm.models import Deal, User, utcnow
from rxcrm.services import auth, items
from rxcrm.services.bootstrap import ensure_defaults
from rxcrm.state import live

from . import factories as f


@pytest.fixture(scope="module")
def world():
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
        if not s.exec(select(User).where(User.login == "lv_head")).first():
            head = f.user(s, "lv_head", role="head", full_name="Глава Отдела")
            m1 = f.user(s, "lv_m1", full_name="Первая Менеджер")
            m2 = f.user(s, "lv_m2", full_name="Второй Менеджер")
            other = f.user(s, "lv_other", dept_code="admissions", full_name="Чужой Отдел")
            f.user(s, "lv_adm", dept_code="admissions", full_name="Приёмная Комиссия")
            for who in (m1, m2):
                f.deal(s, f"Живая {who.login}", who, amount=1000)
            f.deal(s, "Чужая сделка", other, amount=7000)
    import rxcrm.rxcrm  # noqa: F401
    tokens = {}
    with session_scope() as s:
        for login in ("lv_head", "lv_m1", "lv_m2", "lv_adm"):
            tokens[login], _ = auth.login(s, login, "demo")
        ids = {d.title: d.id for d in s.exec(select(Deal)).all()}
        stages = {c: f.stage(s, "dpo", c).id for c in ("INTEREST", "REGISTRATION")}
    return tokens, ids, stages


class FakeApp:
    """app.modify_state for the test: hands out the test's state objects by token."""
    def __init__(self, states):
        self.states = states

    @contextlib.asynccontextmanager
    async def modify_state(self, token):
        yield self.states[token.ident]


def _board_state(token, client):
    from rxcrm.state.work import WorkState
    from reflex.istate.data import RouterData
    st = f.logged_in(WorkState, token, "/deals")
    st.router = RouterData.from_router_data({  # the tab's id, as Reflex gives it
        "headers": dict(st.router.headers.raw_headers), "pathname": "/deals", "asPath": "/deals", "token": client})
    assert st.router.session.client_token == client
    st.check_login()
    st.on_load()
    st._filters = {}  # the whole board the person may see
    st._reload()
    return st


def _titles(st, stage_id):
    return [c.title for col in st.board if col.id == stage_id for c in col.cards]


def test_a_move_reaches_the_department_not_another_department(world):
    tokens, ids, stages = world
    live.WATCHERS.clear()
    head = _board_state(tokens["lv_head"], "tab-head")
    m2 = _board_state(tokens["lv_m2"], "tab-m2")
    adm = _board_state(tokens["lv_adm"], "tab-adm")
    assert "Чужая сделка" not in str(head.board)
    app = FakeApp({"tab-head": head, "tab-m2": m2, "tab-adm": adm})
    mark = asyncio.run(live.round_once(app, -1))  # the feed's current end
    with session_scope() as s:
        m1 = auth.actor_for(s.exec(select(User).where(User.login == "lv_m1")).one())
        items.move_stage(s, m1, "deal", ids["Живая lv_m1"], stages["REGISTRATION"])
        other = auth.actor_for(s.exec(select(User).where(User.login == "lv_other")).one())
        items.update_fields(s, other, "deal", ids["Чужая сделка"], {"amount": 7100})
    asyncio.run(live.round_once(app, mark))
    for st in (head, m2):  # the department's boards show the move (managers see their department here)
        assert "Живая lv_m1" in _titles(st, stages["REGISTRATION"])
        assert "Чужая сделка" not in str(st.board)   # never another department's deal
    assert "Живая lv_m1" not in str(adm.board)
    assert ("tab-adm", "work") in live.WATCHERS
    with session_scope() as s:  # the database is shared with other modules: the admissions deal
        d = s.get(Deal, ids["Чужая сделка"])  # in the ДПО pipeline would show them a pipeline
        d.deleted_at = utcnow()              # admissions people otherwise see nothing in
        s.add(d)


def test_watchers_match_by_pipeline_scope_and_author():
    row = type("Row", (), dict(id=77, entity_type="deal", entity_id=5, pipeline_id=1, kind="changed", actor_id=9,
                               responsible_id=3, department_id=2))
    w = live.Watch(object, "deal", 1, None, 3, 2, "own")
    assert live.concerns(w, row)
    assert not live.concerns(live.Watch(object, "deal", 2, None, 3, 2, "all"), row)       # another pipeline
    assert not live.concerns(live.Watch(object, "deal", 1, None, 4, 2, "own"), row)       # not theirs
    assert live.concerns(live.Watch(object, "deal", 1, None, 4, 2, "department"), row)
    assert not live.concerns(live.Watch(object, "deal", 1, None, 4, 7, "department"), row)
    assert not live.concerns(live.Watch(object, "deal", 1, None, 9, 2, "all"), row, {77: None})  # the tab's own
    assert live.concerns(live.Watch(object, "deal", 1, None, 9, 2, "all"), row, {76: None})  # their other tab's
    assert not live.concerns(live.Watch(object, "lead", 1, None, 4, 2, "all"), row)
    assert live.concerns(live.Watch(object, "deal", None, 5, 4, None, "all"), row)        # the open card
    assert not live.concerns(live.Watch(object, "deal", None, 5, 9, None, "all"), row, {77: None})


def _card_state(token, client, deal_id):
    from reflex.istate.data import RouterData

    from rxcrm.state.card import CardState
    st = f.logged_in(CardState, token, f"/deals/{deal_id}")
    st.router = RouterData.from_router_data({
        "headers": dict(st.router.headers.raw_headers), "pathname": f"/deals/{deal_id}",
        "asPath": f"/deals/{deal_id}", "token": client})
    st.check_login()
    st.load_card()
    return st


def test_an_open_card_follows_someone_elses_change_but_not_over_an_edit(world):
    tokens, ids, stages = world
    live.WATCHERS.clear()
    deal = ids["Живая lv_m2"]
    viewer = _card_state(tokens["lv_head"], "card-head", deal)
    editor = _card_state(tokens["lv_head"], "card-head-2", deal)
    editor.start_edit(editor.edit_blocks[0])
    assert editor.edit_block
    version = editor.card_version
    app = FakeApp({"card-head": viewer, "card-head-2": editor})
    mark = asyncio.run(live.round_once(app, -1))
    with session_scope() as s:
        m2 = auth.actor_for(s.exec(select(User).where(User.login == "lv_m2")).one())
        items.move_stage(s, m2, "deal", deal, stages["REGISTRATION"])
    asyncio.run(live.round_once(app, mark))
    current = next(c for c in viewer.stages if c.current)
    assert current.id == stages["REGISTRATION"]
    assert viewer.live_notice.startswith("Изменено: Второй М.")
    assert editor.card_version == version and "ваши правки не сохранятся" in editor.live_notice


class FakeRounds:
    """Live rounds without a database or states: `feed` answers the rounds' feed reads in
    turn, `refreshed` records each refresh as (token, [entity id]) — (token, [(kind, id)])
    with `kinds`; the worker's pace is calm unless given."""

    def __init__(self, monkeypatch, feed, pace=None, kinds: bool = False):
        self.refreshed: list = []
        self.feed = iter(feed)

        async def fake_refresh(app, token, w, rows):
            self.refreshed.append((token, [(r.kind, r.entity_id) if kinds else r.entity_id for r in rows]))

        async def fake_in_thread(fn, *args):
            return next(self.feed)
        monkeypatch.setattr(live, "_refresh", fake_refresh)
        monkeypatch.setattr(live, "_in_thread", fake_in_thread)
        monkeypatch.setattr(live, "PACE", pace or live.Pace())  # earlier tests' rounds do not count
        live.WATCHERS.clear()

    def watch(self, *tokens: str) -> None:
        for token in tokens:
            live.watch(token, "work", live.Watch(object, "deal", 1, None, 42, 2, "all"))

    def round(self, after: int, now: float, app=None) -> None:
        asyncio.run(live.round_once(app, after, now=now))


def test_a_busy_room_refreshes_each_tab_at_most_every_two_seconds(monkeypatch):
    """Rows keep arriving: a tab is refreshed once, then not again before REFRESH_EVERY_S;
    what arrived meanwhile is kept and shown with the next refresh."""
    fake = FakeRounds(monkeypatch, [(1, [_row(1)]), (2, [_row(2)]), (3, [_row(3)])])
    fake.watch("tab")
    fake.round(0, now=100.0)
    fake.round(1, now=101.0)   # too soon: kept for later
    fake.round(2, now=102.5)
    assert fake.refreshed == [("tab", [1]), ("tab", [2, 3])]


def _row(item_id):
    return type("Row", (), dict(id=item_id, entity_type="deal", entity_id=item_id, pipeline_id=1, kind="changed", actor_id=7,
                                responsible_id=3, department_id=2))


def _refresh(app, token, st, rows):
    w = live.Watch(type(st), "deal", st.pipeline_id or None, None, st.user_id, None, "department")
    asyncio.run(live._refresh(app, token, w, rows))


def _change_elsewhere():
    """A committed change no board here shows: the data version moves on."""
    with session_scope() as s:
        f.contact(s, "Посторонний", "Контакт")


def _m1_moves_their_deal(ids, stages) -> tuple[int, list]:
    """lv_m1 moves their deal to the other of two stages: (that stage, the feed rows it wrote)."""
    from rxcrm.services import changes
    with session_scope() as s:
        mark = changes.version(s)
        m1 = auth.actor_for(s.exec(select(User).where(User.login == "lv_m1")).one())
        deal = s.get(Deal, ids["Живая lv_m1"])
        there = stages["INTEREST"] if deal.stage_id == stages["REGISTRATION"] else stages["REGISTRATION"]
        items.move_stage(s, m1, "deal", deal.id, there)
    with session_scope() as s:
        rows = changes.since(s, mark)
        for r in rows:
            s.expunge(r)
    return there, rows


def test_a_rounds_tabs_share_one_board_read_though_the_version_moves_on(world):
    """Fifty tabs refreshed after one move must not each read the board again because other
    moves committed in between: a refresh takes the newest shared answer that already shows
    the rows it was told about (changes.at_least); a plain read still reads the newest data."""
    from rxcrm.services import listing
    tokens, ids, stages = world
    live.WATCHERS.clear()
    a, b = _board_state(tokens["lv_m2"], "tab-share-a"), _board_state(tokens["lv_m2"], "tab-share-b")
    app = FakeApp({"tab-share-a": a, "tab-share-b": b})
    there, rows = _m1_moves_their_deal(ids, stages)
    assert rows
    _refresh(app, "tab-share-a", a, rows)
    assert "Живая lv_m1" in _titles(a, there)
    _change_elsewhere()
    misses = listing.SUMMARIES.misses, listing.FIRST_CARDS.misses
    _refresh(app, "tab-share-b", b, rows)
    assert (listing.SUMMARIES.misses, listing.FIRST_CARDS.misses) == misses  # shared: no read
    assert "Живая lv_m1" in _titles(b, there)
    b._reload()  # an ordinary read asks the newest version: it reads again
    assert listing.SUMMARIES.misses == misses[0] + 1


def test_a_shared_refresh_never_undoes_the_tabs_own_move(world):
    """The tab's own writes raise its floor: a shared answer older than its own move is not
    taken, so the card it just dragged does not jump back."""
    tokens, ids, stages = world
    live.WATCHERS.clear()
    watcher, mover = _board_state(tokens["lv_m2"], "tab-own-a"), _board_state(tokens["lv_m2"], "tab-own-b")
    app = FakeApp({"tab-own-a": watcher, "tab-own-b": mover})
    _, rows = _m1_moves_their_deal(ids, stages)
    _refresh(app, "tab-own-a", watcher, rows)  # a shared answer at this version now exists
    own = ids["Живая lv_m2"]
    here = next(col.id for col in mover.board for c in col.cards if c.id == own)
    there = stages["INTEREST"] if here == stages["REGISTRATION"] else stages["REGISTRATION"]
    for _ in mover.on_drag_end({"draggableId": str(own), "from": str(here), "to": str(there)}):
        pass
    assert mover._own_version > max(r.id for r in rows)
    _refresh(app, "tab-own-b", mover, rows)  # told only of the older rows
    assert "Живая lv_m2" in _titles(mover, there)
    assert "Живая lv_m2" not in _titles(mover, here)


def test_recent_settles_on_the_newest_answer_at_least_the_floor():
    from rxcrm.services.shared import Recent
    r = Recent()
    assert r.settle("q", 10, None) == 10        # a plain reader: its own version
    assert r.settle("q", 14, 9) == 10           # a refresh told of row 9: the answer at 10 shows it
    assert r.settle("q", 14, 12) == 14          # told of row 12: 10 is too old, read at 14
    assert r.settle("q", 16, 13) == 14
    assert r.settle("q", 12, 11) == 12          # never newer than what the reader's session sees
    assert r.settle("q", (14, "tok", 1), 9) == (14, "tok", 1)  # own uncommitted writes: never shared
    assert r.settle("other", 16, 13) == 16


def _column_order(st, stage_id):
    from rxcrm.services import listing
    return [c["id"] for c in st._read(listing.column_cards, "deal", st.pipeline_id, stage_id,
                                      st._effective_filters(), limit=1000)]


def test_a_patched_board_is_what_a_fresh_read_shows(world, monkeypatch):
    """A live refresh puts only the changed cards where they now belong (listing.board_changes
    + _patch_board). After rounds of others' moves, edits, closes, new and deleted deals —
    with columns longer than what they show — every column's counters and sums are a fresh
    read's, and its cards are the first cards of the column in its order (newest first)."""
    import random
    from datetime import timedelta

    from rxcrm.models import Stage
    from rxcrm.models.pipeline import PROCESS
    from rxcrm.services import changes, listing, requirements
    monkeypatch.setattr(listing, "BOARD_PAGE", 2)
    tokens, ids, stages = world
    live.WATCHERS.clear()
    rng = random.Random(14)
    with session_scope() as s:
        users = {u.login: u for u in s.exec(select(User).where(User.login.in_(["lv_m1", "lv_head"]))).all()}
        pipe_id = s.get(Deal, ids["Живая lv_m1"]).pipeline_id
        every = s.exec(select(Stage).where(Stage.pipeline_id == pipe_id)).all()
        free = [st for st in every if st.semantic == PROCESS and not requirements.required_for(s, "deal", st)]
        closing = [st for st in every if st.semantic != PROCESS and not requirements.required_for(s, "deal", st)]
        made = [f.deal(s, f"Поток {i}", users["lv_m1"], stage_code=rng.choice(free).code, amount=1000 * (i + 1),
                       created_at=utcnow() - timedelta(minutes=i)).id for i in range(10)]
    assert len(free) >= 2
    tab = _board_state(tokens["lv_m2"], "tab-patch")
    app = FakeApp({"tab-patch": tab})
    try:
        for n in range(8):
            with session_scope() as s:
                mark = changes.version(s)
            with session_scope() as s:
                m1, head = (auth.actor_for(users[k]) for k in ("lv_m1", "lv_head"))
                for _ in range(3):
                    deal = s.get(Deal, rng.choice(made))
                    if deal.deleted_at is not None or deal.semantic != PROCESS:
                        continue
                    op = rng.choice(["move", "move", "move", "amount", "create", "close", "delete"])
                    if op == "move":
                        items.move_stage(s, m1, "deal", deal.id, rng.choice([st for st in free if st.id != deal.stage_id]).id)
                    elif op == "amount":
                        items.update_fields(s, m1, "deal", deal.id, {"amount": rng.randint(1, 90) * 1000})
                    elif op == "create":
                        made.append(f.deal(s, f"Новая {n}", users["lv_m1"], stage_code=rng.choice(free).code,
                                           created_at=utcnow() - timedelta(minutes=rng.randint(0, 12))).id)
                    elif op == "close" and closing:
                        items.move_stage(s, head, "deal", deal.id, rng.choice(closing).id, allow_final=True)
                    elif op == "delete":
                        items.delete_item(s, head, "deal", deal.id)
            with session_scope() as s:
                rows = changes.since(s, mark)
                for r in rows:
                    s.expunge(r)
            _refresh(app, "tab-patch", tab, rows)
            fresh = _board_state(tokens["lv_m2"], f"tab-fresh-{n}")
            for col, want in zip(tab.board, fresh.board, strict=True):
                assert (col.id, col.count, col.total, col.overdue, col.today, col.none) == \
                    (want.id, want.count, want.total, want.overdue, want.today, want.none)
                shown = [c.id for c in col.cards]
                assert shown == _column_order(fresh, col.id)[:len(shown)], f"round {n}, column {col.name}"
                assert col.has_more == (col.count > len(shown))
                # every shown card has the version a fresh read gives (a drag from it is not refused)
                both = set(shown) & {w.id for w in want.cards}
                assert all(i in tab._versions for i in shown)
                assert {i: tab._versions[i] for i in both} == {i: fresh._versions[i] for i in both}
    finally:
        with session_scope() as s:
            for deal_id in made:
                d = s.get(Deal, deal_id)
                d.deleted_at = d.deleted_at or utcnow()
                s.add(d)


def test_a_round_refreshes_tabs_in_turn(monkeypatch):
    """Fifty tabs to refresh are not started at once (each holds a thread and the loop, and
    everyone's next drag would wait behind all of them): at most REFRESH_AT_ONCE run."""
    running, most, done = [0], [0], []

    async def fake_refresh(app, token, w, rows):
        running[0] += 1
        most[0] = max(most[0], running[0])
        await asyncio.sleep(0.01)
        running[0] -= 1
        done.append(token)

    async def fake_in_thread(fn, *args):
        return 1, [_row(1)]

    monkeypatch.setattr(live, "_refresh", fake_refresh)
    monkeypatch.setattr(live, "_in_thread", fake_in_thread)
    live.WATCHERS.clear()
    for i in range(20):
        live.watch(f"tab{i}", "work", live.Watch(object, "deal", 1, None, 42, 2, "all"))
    asyncio.run(live.round_once(None, 0, now=100.0))
    assert len(done) == 20 and most[0] == live.REFRESH_AT_ONCE


def test_a_persons_move_in_one_tab_reaches_their_other_tab_not_itself(world, monkeypatch):
    """The head keeps the board open on two screens: a drag in one shows in the other; the
    tab that dragged is not refreshed for its own move (its screen shows it already)."""
    tokens, ids, stages = world
    live.WATCHERS.clear()
    one, two = _board_state(tokens["lv_m2"], "tab-two-1"), _board_state(tokens["lv_m2"], "tab-two-2")
    app = FakeApp({"tab-two-1": one, "tab-two-2": two})
    mark = asyncio.run(live.round_once(app, -1))
    deal = ids["Живая lv_m2"]
    here = next(col.id for col in one.board for c in col.cards if c.id == deal)
    there = stages["INTEREST"] if here == stages["REGISTRATION"] else stages["REGISTRATION"]
    for _ in one.on_drag_end({"draggableId": str(deal), "from": str(here), "to": str(there)}):
        pass
    assert live.OWN.get("tab-two-1")
    refreshed = []
    original = live._refresh

    async def spy(app_, token, w, rows):
        refreshed.append(token)
        await original(app_, token, w, rows)
    monkeypatch.setattr(live, "_refresh", spy)
    asyncio.run(live.round_once(app, mark, now=time.monotonic() + live.MAX_SPACING_S))
    assert refreshed == ["tab-two-2"]
    assert "Живая lv_m2" in _titles(two, there)


def test_a_busy_worker_spaces_out_one_tabs_refreshes_and_comes_back_when_calm(monkeypatch):
    """While refreshing takes more than LIVE_SHARE of the worker's time, a tab's refreshes
    are spaced further apart (never beyond MAX_SPACING_S); when the room calms down they are
    REFRESH_EVERY_S apart again. A round uses the spacing of the moment."""
    pace = live.Pace()
    for _ in range(3):
        pace.note(0.1)  # a tenth of each second: no reason to wait longer
    assert pace.spacing == live.REFRESH_EVERY_S
    for _ in range(10):
        pace.note(0.8)  # refreshes take most of the time: people's clicks wait behind them
    assert live.REFRESH_EVERY_S < pace.spacing <= live.MAX_SPACING_S
    busy = pace.spacing
    for _ in range(10):
        pace.note(0.02)
    assert pace.spacing == live.REFRESH_EVERY_S < busy

    busy = live.Pace(spacing=4.0)
    monkeypatch.setattr(busy, "note", lambda took, period=1.0: None)  # stays this busy
    fake = FakeRounds(monkeypatch, [(1, [_row(1)]), (2, [_row(2)]), (3, [_row(3)])], pace=busy)
    fake.watch("tab")
    fake.round(0, now=100.0)
    fake.round(1, now=102.5)   # two seconds are not enough now
    fake.round(2, now=104.0)
    assert fake.refreshed == [("tab", [1]), ("tab", [2, 3])]


def test_a_hidden_tab_waits_and_catches_up_when_shown(monkeypatch):
    """A hidden browser tab is not refreshed; what arrives meanwhile waits and is shown at
    the first round after the tab is shown again. A tab hidden for long keeps no more than
    PENDING_MAX rows: it then reads everything (a `bulk` stand-in)."""
    fake = FakeRounds(monkeypatch, [(1, [_row(1)]), (2, [_row(2)]), (3, [])], kinds=True)
    fake.watch("tab-h", "tab-v")
    live.visible("tab-h", False)
    try:
        fake.round(0, now=100.0)
        fake.round(1, now=110.0)
        assert fake.refreshed == [("tab-v", [("changed", 1)]), ("tab-v", [("changed", 2)])]
        live.visible("tab-h", True)
        fake.round(2, now=111.0)
        assert fake.refreshed[-1] == ("tab-h", [("changed", 1), ("changed", 2)])

        fake.refreshed.clear()
        live.visible("tab-h", False)
        many = [_row(i) for i in range(10, 10 + live.PENDING_MAX + 1)]
        fake.feed = iter([(many[-1].id, many), (many[-1].id, [])])
        fake.round(3, now=120.0)
        live.visible("tab-h", True)
        fake.round(many[-1].id, now=121.0)
        hidden_rows = next(rows for token, rows in fake.refreshed if token == "tab-h")
        assert hidden_rows == [("bulk", None)]
    finally:
        live.HIDDEN.clear()


def test_a_tab_whose_socket_is_gone_is_not_refreshed(monkeypatch):
    """A closed tab (its websocket gone) costs nothing: it is not refreshed and keeps no rows
    (a tab that comes back reads its page again on load)."""
    class Namespace:
        token_to_sid = {"tab-open": "sid-1"}

    class App:
        event_namespace = Namespace()

    fake = FakeRounds(monkeypatch, [(1, [_row(1)])])
    fake.watch("tab-open", "tab-closed")
    fake.round(0, now=100.0, app=App())
    assert [token for token, _ in fake.refreshed] == ["tab-open"]
    assert live.WATCHERS[("tab-closed", "work")].pending == []
