"""The change feed (models/changes.py): what changed, for the shared board summaries and
the live updates.

`follow_writes()` (called by rxcrm.hooks.wire) makes every session add a row per item it
inserts, changes or deletes, in the same transaction — a change and its feed row commit or
roll back together, whatever service made it.
- `version(session)` — the newest row's id: the data version a shared result is keyed by
  (listing.board_summary reuses a summary only while no change has been committed since).
- `since(session, after_id)` — the rows after an id: each app worker follows the feed
  and refreshes the boards, lists and cards its people have open (state/live.py).
- `prune(session, keep)` — the feed is a window, not a history (the audit is the history).
- `at_least(floor)` / `floor()` — a reader that only needs the changes up to the feed row
  `floor` (a live refresh) may share an answer given at any version from there on
  (shared.Recent); `written(session)` — the feed rows of a
  session's own writes: a tab does not refresh for them (its screen shows them already)
  and a floor includes them (a person's own move never jumps back)."""
from __future__ import annotations

import contextlib
import contextvars
import uuid
from datetime import timedelta

from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session

from rxcrm.models import ChangeRecord, utcnow

from .shared import CONFIG

KEEP = timedelta(hours=1)
MAX_ROWS = 500  # read at most this many at a time


# ---- following every write (installed by rxcrm.hooks.wire) --------------------------------
# Not per domain event: any flush that inserts, changes or deletes an item — a move, an edit,
# a bulk action, a conversion, an activity done (the item's next activity), an intake, an
# import — adds its feed rows, so no write path can forget to.
ITEM_TABLES = {"lead", "deal", "contact", "company"}
# the configuration the services cache (shared.CONFIG): a write to these moves it on
CONFIG_TABLES = {"role", "role_permission", "pipeline", "stage", "custom_field", "automation_rule", "department",
                 "rest_event_binding"}
_PENDING = "rxcrm_changes"
_installed = False


_LOCAL = "rxcrm_local_changes"  # this session's own uncommitted item writes: (a token, a count)


def _collect(session: Session, _ctx) -> None:
    """after_flush: the items this flush wrote (new ones have their ids now)."""
    found = session.info.setdefault(_PENDING, {})
    if any(getattr(o, "__tablename__", "") in CONFIG_TABLES
           for objs in (session.new, session.dirty, session.deleted) for o in objs):
        CONFIG.bump()
    for kind, objs in (("created", session.new), ("changed", session.dirty), ("deleted", session.deleted)):
        for obj in objs:
            table = getattr(obj, "__tablename__", "")
            if table in ITEM_TABLES and obj.id is not None and (kind != "changed" or session.is_modified(obj)):
                found.setdefault((table, obj.id), {
                    "kind": kind, "pipeline_id": getattr(obj, "pipeline_id", None),
                    "actor_id": getattr(obj, "updated_by_id", None),
                    "responsible_id": getattr(obj, "responsible_id", None),
                    "department_id": getattr(obj, "department_id", None)})


_MINE = "rxcrm_feed_rows"  # the feed rows this session added (their ids once flushed)


_COALESCE = "rxcrm_feed_coalesce"  # session.info: the tables a coalescing unit has written a bulk row for


@contextlib.contextmanager
def coalesced(session: Session):
    """Item writes in this block add one "bulk" feed row per table (at its end) instead of
    a row per item: an import's chunk of hundreds makes every open page of it read again
    once, and the live rounds do not wade through hundreds of rows. Yields the set of the
    tables written; a caller that rolls its writes back clears it."""
    tables: set[str] = set()
    session.info[_COALESCE] = tables
    try:
        yield tables
        session.flush()  # what the block changed and has not flushed yet is the block's too
    finally:
        session.info.pop(_COALESCE, None)
    for table in sorted(tables):
        record = ChangeRecord(entity_type=table, entity_id=0, kind="bulk")
        session.add(record)
        session.info.setdefault(_MINE, []).append(record)
    if tables:
        token, count = session.info.get(_LOCAL, (uuid.uuid4().hex, 0))
        session.info[_LOCAL] = (token, count + 1)


def _write(session: Session, _ctx) -> None:
    """after_flush_postexec: the feed rows (flushed by the commit's next round)."""
    found = session.info.pop(_PENDING, None)
    coalescing = session.info.get(_COALESCE)
    for (table, item_id), row in (found or {}).items():
        if coalescing is not None:
            coalescing.add(table)
            continue
        record = ChangeRecord(entity_type=table, entity_id=item_id, **row)
        session.add(record)
        session.info.setdefault(_MINE, []).append(record)
    if found:
        token, count = session.info.get(_LOCAL, (uuid.uuid4().hex, 0))
        session.info[_LOCAL] = (token, count + 1)


def _bulk(orm_execute_state) -> None:
    """do_orm_execute: an INSERT/UPDATE/DELETE statement over an item table (a batch of new
    leads, reassigning a leaver's deals…) writes rows the flush never sees — one feed row
    says "many changed" (in a `coalesced` block: the block's own row for the table)."""
    if not (orm_execute_state.is_update or orm_execute_state.is_delete or orm_execute_state.is_insert):
        return
    table = getattr(orm_execute_state.statement, "table", None)
    name = getattr(table, "name", "")
    if name in ITEM_TABLES:
        session = orm_execute_state.session
        coalescing = session.info.get(_COALESCE)
        if coalescing is not None:
            coalescing.add(name)
            return
        record = ChangeRecord(entity_type=name, entity_id=0, kind="bulk")
        session.add(record)
        session.info.setdefault(_MINE, []).append(record)
        token, count = session.info.get(_LOCAL, (uuid.uuid4().hex, 0))
        session.info[_LOCAL] = (token, count + 1)
    elif name in CONFIG_TABLES:
        CONFIG.bump()


def follow_writes() -> None:
    """Add a feed row for every item a session writes (idempotent)."""
    global _installed
    if not _installed:
        event.listen(Session, "after_flush", _collect)
        event.listen(Session, "after_flush_postexec", _write)
        event.listen(Session, "do_orm_execute", _bulk)
        _installed = True


# ---- readers -----------------------------------------------------------------------------
def version(session: Session):
    """The data version this session sees: the newest committed feed row — and, once the
    session has written items itself (not yet committed, visible to it alone), a mark of
    those writes, so no answer computed from them is shared with anyone else."""
    newest = session.execute(select(func.max(ChangeRecord.id))).scalar() or 0
    local = session.info.get(_LOCAL)
    return newest if local is None else (newest, *local)


def written(session: Session) -> list[int]:
    """The feed rows this session's writes added (their ids; flushes them)."""
    mine = session.info.get(_MINE)
    if not mine:
        return []
    session.flush()
    return [r.id for r in mine if r.id]


_FLOOR: contextvars.ContextVar[int | None] = contextvars.ContextVar("rxcrm_feed_floor", default=None)


@contextlib.contextmanager
def at_least(floor: int):
    """Reads in this block need the changes up to feed row `floor`, no newer (see Recent)."""
    mark = _FLOOR.set(floor)
    try:
        yield
    finally:
        _FLOOR.reset(mark)


def floor() -> int | None:
    return _FLOOR.get()


def since(session: Session, after_id: int, limit: int = MAX_ROWS) -> list[ChangeRecord]:
    return list(session.execute(select(ChangeRecord).where(ChangeRecord.id > after_id)
                                .order_by(ChangeRecord.id).limit(limit)).scalars())


def prune(session: Session, keep: timedelta = KEEP) -> int:
    return session.execute(delete(ChangeRecord).where(ChangeRecord.created_at < utcnow() - keep)).rowcount or 0


__all__ = ["at_least", "coalesced", "floor", "follow_writes", "prune", "since", "version", "written"]
