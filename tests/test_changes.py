"""The change feed follows every write of an item (whatever service made it) in the same
transaction; a shared board summary is reused only while no change has been committed."""
from __future__ import annotations

import pytest
from rxcrm.db import session_scope
from rxcrm.services import auth, changes, items, listing

from . import factories as f

world_url = ""


@pytest.fixture
def world(db):
    global world_url
    world_url = db
    with session_scope(db) as s:
        m = f.user(s, "chg1", full_name="Лаптева Ольга")
        d1 = f.deal(s, "Изменение 1", m, amount=1000)
        d2 = f.deal(s, "Изменение 2", m, amount=2000)
        actor = auth.actor_for(m)
        stages = {c: f.stage(s, "dpo", c).id for c in ("INTEREST", "REGISTRATION")}
        return actor, d1.id, d2.id, stages


def _feed(after=0):
    with session_scope(world_url, write=False) as s:
        return [(r.entity_type, r.entity_id, r.kind) for r in changes.since(s, after)]


def test_every_item_write_adds_a_feed_row_in_its_transaction(world):
    actor, d1, d2, stages = world
    with session_scope(world_url, write=False) as s:
        start = changes.version(s)
    with session_scope(world_url) as s:
        items.move_stage(s, actor, "deal", d1, stages["REGISTRATION"])
    with session_scope(world_url) as s:
        items.update_fields(s, actor, "deal", d2, {"amount": 2500})
    feed = _feed(start)
    assert ("deal", d1, "changed") in feed and ("deal", d2, "changed") in feed
    # a refused or failed unit of work leaves no row
    with pytest.raises(RuntimeError):
        with session_scope(world_url) as s:
            items.update_fields(s, actor, "deal", d2, {"amount": 3000})
            raise RuntimeError("rolled back")
    assert len(_feed(start)) == len(feed)
    with session_scope(world_url, write=False) as s:
        assert changes.version(s) > start


def test_a_shared_summary_is_reused_until_a_change_commits(world):
    actor, d1, d2, stages = world
    listing.SUMMARIES.clear()
    with session_scope(world_url, write=False) as s:
        first = listing.board_summary(s, actor, "deal", f.stage(s, "dpo", "INTEREST").pipeline_id, {})
        misses = listing.SUMMARIES.misses
        again = listing.board_summary(s, actor, "deal", f.stage(s, "dpo", "INTEREST").pipeline_id, {})
        assert again == first and listing.SUMMARIES.misses == misses  # answered from the shared map
    with session_scope(world_url) as s:
        items.move_stage(s, actor, "deal", d1, stages["REGISTRATION"])
    with session_scope(world_url, write=False) as s:
        after = listing.board_summary(s, actor, "deal", f.stage(s, "dpo", "INTEREST").pipeline_id, {})
    by_id = {c["id"]: c for c in after}
    before = {c["id"]: c for c in first}
    assert by_id[stages["REGISTRATION"]]["count"] == before[stages["REGISTRATION"]]["count"] + 1
    assert by_id[stages["INTEREST"]]["amount_value"] == before[stages["INTEREST"]]["amount_value"] - 1000


def test_a_bulk_statement_over_items_moves_the_version_on(world):
    from sqlalchemy import update

    from rxcrm.models import Deal
    actor, d1, d2, stages = world
    with session_scope(world_url, write=False) as s:
        start = changes.version(s)
    with session_scope(world_url) as s:
        s.execute(update(Deal).where(Deal.id == d1).values(amount=1234))
    assert ("deal", 0, "bulk") in _feed(start)


def test_colleagues_of_one_department_share_the_board_unless_one_owns_items_elsewhere(world):
    from rxcrm.services import access
    actor, d1, d2, stages = world
    with session_scope(world_url) as s:
        other = f.user(s, "chg2", full_name="Коллега Отдела")
        elsewhere = f.user(s, "chg3", full_name="Со Стороны")
        f.deal(s, "Чужой отдел, свой ответственный", elsewhere)
        from rxcrm.models import Deal
        from sqlmodel import select
        d = s.exec(select(Deal).where(Deal.title == "Чужой отдел, свой ответственный")).one()
        d.department_id = None  # an item of theirs outside the department
        s.add(d)
        a2, a3 = auth.actor_for(other), auth.actor_for(elsewhere)
    now = listing.utcnow().replace(second=0, microsecond=0)
    with session_scope(world_url, write=False) as s:
        assert access.level(s, actor, "deal", "view") == "department"  # the shipped matrix
        pipe = f.stage(s, "dpo", "INTEREST").pipeline_id
        k1 = listing._question(s, actor, "deal", pipe, {}, now)
        k2 = listing._question(s, a2, "deal", pipe, {}, now)
        k3 = listing._question(s, a3, "deal", pipe, {}, now)
    assert k1 == k2 and k3 != k1


def test_a_unit_that_wrote_items_never_shares_what_it_sees(world):
    """Inside one unit of work, a summary read after the unit's own (uncommitted) change
    shows it, and is not what anyone else gets."""
    actor, d1, d2, stages = world
    listing.SUMMARIES.clear()
    with session_scope(world_url) as s:
        pipe = f.stage(s, "dpo", "INTEREST").pipeline_id
        before = {c["id"]: c["count"] for c in listing.board_summary(s, actor, "deal", pipe, {})}
        items.move_stage(s, actor, "deal", d1, stages["REGISTRATION"])
        mine = {c["id"]: c["count"] for c in listing.board_summary(s, actor, "deal", pipe, {})}
        assert mine[stages["REGISTRATION"]] == before[stages["REGISTRATION"]] + 1
        with session_scope(world_url, write=False) as other:  # another person, meanwhile
            theirs = {c["id"]: c["count"] for c in listing.board_summary(other, actor, "deal", pipe, {})}
        assert theirs == before
