"""Version check on moves (issue 11): a move made from a stale view is refused with the same
«Карточку изменил X — обновите» notice as an inline edit, and two writers of the same item
at once never both win — on a SQLite file (BEGIN IMMEDIATE serialises them) and on
PostgreSQL (READ COMMITTED: the mapper's version check turns the later write into a
StaleDataError, `db.transact` runs it again, the retry sees the new version)."""
from __future__ import annotations

import threading

import pytest
from sqlmodel import select

from rxcrm.db import session_scope, transact
from rxcrm.models import Deal, StageHistory, TimelineEvent
from rxcrm.services import cards, items, listing
from rxcrm.services.auth import actor_for
from rxcrm.services.errors import ServiceError

from . import factories as f


@pytest.fixture
def w(db):
    with session_scope(db) as s:
        m1 = f.user(s, "manager1", full_name="Петров Иван")
        head = f.user(s, "head", role="head", full_name="Волков Олег")
        d = f.deal(s, "Сделка 1", m1)
        st = {c: f.stage(s, "dpo", c).id for c in ("INTEREST", "REGISTRATION", "CONTRACT")}
        actors = {u.login: actor_for(u) for u in (m1, head)}
    return db, actors, {"deal": d.id, **st}


def test_a_move_from_a_stale_view_is_refused_naming_who_changed_the_card(w):
    db, a, ids = w
    with session_scope(db) as s:
        seen = cards.open_card(s, a["manager1"], "deal", ids["deal"])["version"]
        board = listing.column_cards(s, a["manager1"], "deal", f.pipeline(s, "dpo").id, ids["INTEREST"], {})
    assert [c["version"] for c in board if c["id"] == ids["deal"]] == [seen]
    with session_scope(db) as s:  # meanwhile the head edits the deal
        items.update_fields(s, a["head"], "deal", ids["deal"], {"amount": "20000"})
    with session_scope(db) as s, pytest.raises(ServiceError) as moved:
        items.move_stage(s, a["manager1"], "deal", ids["deal"], ids["REGISTRATION"], expected_version=seen)
    with session_scope(db) as s, pytest.raises(ServiceError) as edited:
        items.update_fields(s, a["manager1"], "deal", ids["deal"], {"title": "X"}, expected_version=seen)
    assert moved.value.code == edited.value.code == "conflict"
    assert moved.value.message == edited.value.message
    assert moved.value.message.startswith("Карточку изменил Волков Олег (") and "обновите" in moved.value.message
    with session_scope(db) as s:
        d = s.get(Deal, ids["deal"])
        assert d.stage_id == ids["INTEREST"] and d.version == seen + 1
        assert s.exec(select(StageHistory)).all() == []
        # the fresh view moves; callers without a view (None) are not checked
        items.move_stage(s, a["manager1"], "deal", ids["deal"], ids["REGISTRATION"], expected_version=d.version)
    with session_scope(db) as s:
        items.move_stage(s, a["manager1"], "deal", ids["deal"], ids["INTEREST"])
        assert s.get(Deal, ids["deal"]).version == seen + 3


def _race(db: str, jobs: list) -> tuple[list, list[int]]:
    """Run each job(session) in its own thread through db.transact, both at once. On
    PostgreSQL both first read the item and only then go on (so both read the same
    version); on SQLite BEGIN IMMEDIATE lets only one in at a time anyway."""
    rendezvous = threading.Barrier(len(jobs))
    start = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)
    attempts = [0] * len(jobs)
    pg = db.startswith("postgresql")

    def work(n, job):
        def unit(s):
            attempts[n] += 1
            s.get(Deal, job.item_id)  # read the item (and its version) first
            if pg and attempts[n] == 1:
                rendezvous.wait(timeout=20)
            return job(s)
        start.wait(timeout=20)
        try:
            results[n] = transact(unit, db)
        except ServiceError as exc:
            results[n] = exc

    threads = [threading.Thread(target=work, args=(n, job)) for n, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return results, attempts


class _Job:
    def __init__(self, item_id, fn):
        self.item_id, self.fn = item_id, fn

    def __call__(self, s):
        return self.fn(s)


def test_two_moves_of_the_same_card_at_once_one_wins_the_other_gets_the_conflict(w):
    db, a, ids = w
    deal_id = ids["deal"]
    with session_scope(db) as s:
        v = s.get(Deal, deal_id).version
    results, attempts = _race(db, [
        _Job(deal_id, lambda s: items.move_stage(s, a["manager1"], "deal", deal_id, ids["REGISTRATION"],
                                                 expected_version=v)),
        _Job(deal_id, lambda s: items.move_stage(s, a["head"], "deal", deal_id, ids["CONTRACT"],
                                                 values={"custom.dpo_contract_number": "Д-1"}, expected_version=v)),
    ])
    won = [r for r in results if isinstance(r, items.MoveResult)]
    lost = [r for r in results if isinstance(r, ServiceError)]
    assert len(won) == 1 and len(lost) == 1, results
    winner = ("Петров Иван", ids["REGISTRATION"]) if won[0].to_stage == "Регистрация" else ("Волков Олег",
                                                                                            ids["CONTRACT"])
    assert lost[0].code == "conflict" and lost[0].message.startswith(f"Карточку изменил {winner[0]} (")
    if db.startswith("postgresql"):
        assert sorted(attempts) == [1, 2]  # the loser's write was caught by the version check and retried
    with session_scope(db) as s:
        d = s.get(Deal, deal_id)
        assert d.stage_id == winner[1] and d.version > v
        assert len(s.exec(select(StageHistory).where(StageHistory.entity_id == deal_id)).all()) == 1
        moves = s.exec(select(TimelineEvent).where(TimelineEvent.entity_id == deal_id,
                                                   TimelineEvent.kind == "stage_changed")).all()
        assert len(moves) == 1


def test_concurrent_moves_without_a_version_are_applied_one_after_the_other(w):
    """Callers with no view to compare (None) both succeed, but never on stale data: the
    second move starts from the stage the first one left (the history chain holds)."""
    db, a, ids = w
    deal_id = ids["deal"]
    results, attempts = _race(db, [
        _Job(deal_id, lambda s: items.move_stage(s, a["manager1"], "deal", deal_id, ids["REGISTRATION"])),
        _Job(deal_id, lambda s: items.move_stage(s, a["head"], "deal", deal_id, ids["CONTRACT"],
                                                 values={"custom.dpo_contract_number": "Д-1"})),
    ])
    assert all(isinstance(r, items.MoveResult) and r.changed for r in results), results
    with session_scope(db) as s:
        hist = s.exec(select(StageHistory).where(StageHistory.entity_id == deal_id)
                      .order_by(StageHistory.id)).all()
        assert len(hist) == 2
        assert hist[0].from_stage_id == ids["INTEREST"] and hist[1].from_stage_id == hist[0].stage_id
        assert s.get(Deal, deal_id).stage_id == hist[1].stage_id
        assert s.get(Deal, deal_id).version >= 3


def test_two_card_edits_at_once_with_the_same_version_one_wins(w):
    db, a, ids = w
    deal_id = ids["deal"]
    results, _ = _race(db, [
        _Job(deal_id, lambda s: items.update_fields(s, a["manager1"], "deal", deal_id, {"amount": "111"},
                                                    expected_version=1)),
        _Job(deal_id, lambda s: items.update_fields(s, a["head"], "deal", deal_id, {"comment": "Перезвонить"},
                                                    expected_version=1)),
    ])
    assert sorted(getattr(r, "code", "saved") for r in results) == ["conflict", "saved"], results
    with session_scope(db) as s:
        d = s.get(Deal, deal_id)
        assert d.version == 2 and (str(d.amount) == "111.00") != (d.comment == "Перезвонить")
