"""Live updates: what someone else changes shows on everyone's open board, list and card
within a couple of seconds, without a reload — on every app worker.

- A page that shows items registers what it shows (`watch`: the tab's client token, the
  entity, the pipeline, and the person's view scope: all / department / own).
- `live_task` (a lifespan task of each worker, registered in rxcrm/rxcrm.py) follows the
  change feed (services/changes.py — rows written in the changes' own transactions, so it
  works across workers and processes without a broker), every FEED_PERIOD_S seconds.
- For each watcher whose pipeline and scope a new row falls in (and that did not make the
  change itself: `mine`, the tab's own feed rows — the same person's other tabs do refresh), it refreshes that tab's state out of band (`app.modify_state`): the
  state re-reads what it shows *as that person*, so nobody ever receives an item their role
  may not see. A tab is refreshed at most every REFRESH_EVERY_S, however many rows arrived
  (a room moving cards must not become a storm of refreshes: each holds the tab's state);
  while refreshing takes more than LIVE_SHARE of the worker's time, one tab's refreshes
  are spaced further apart (`PACE`, up to MAX_SPACING_S): people's own clicks come first,
  others' changes arrive a few seconds later. A hidden browser tab (`visible`: another
  tab in front, the window minimised) is not refreshed at all: its rows wait, and it
  catches up at the first round after it is shown. A tab whose websocket is gone (closed,
  or reconnecting) is not refreshed either: when it comes back its page reads everything
  again (on_load).
The database work of a round and of each refresh runs on the handler threads."""
from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import time

import reflex as rx

from rxcrm.db import session_scope
from rxcrm.services import changes

from .base import _POOL

log = logging.getLogger("rxcrm.live")
FEED_PERIOD_S = 1.0
REFRESH_EVERY_S = 2.0  # a tab is refreshed at most this often (changes in between wait, merged)
REFRESH_AT_ONCE = 1  # refreshes in flight at a time: people's own events pass between them
LIVE_SHARE = 0.25  # the share of a worker's time live refreshes may take before they are spaced out
MAX_SPACING_S = 6.0  # a tab is refreshed at least this often while it has something to show
PRUNE_EVERY_S = 600.0
WATCH_TTL_S = 3600.0  # a tab not heard of for an hour is forgotten


@dataclasses.dataclass
class Watch:
    state: type  # the state class that refreshes (its `_live_refresh(rows)`)
    entity: str
    pipeline_id: int | None = None
    item_id: int | None = None  # a card: only its own rows
    user_id: int | None = None
    department_id: int | None = None
    scope: str = "all"  # all | department | own | none
    seen: float = dataclasses.field(default_factory=time.monotonic)
    pending: list = dataclasses.field(default_factory=list)  # rows not yet shown
    refreshed: float = 0.0  # time.monotonic() of the last refresh


@dataclasses.dataclass
class Pace:
    """How far apart one tab's refreshes are: REFRESH_EVERY_S, or more while the rounds'
    refreshes take more than LIVE_SHARE of the worker's time (a room of fifty dragging at
    once), back to REFRESH_EVERY_S when it calms down. One per worker: its own load."""
    spacing: float = REFRESH_EVERY_S
    busy: float = 0.0  # the smoothed share of a round's period spent refreshing

    def note(self, took: float, period: float = FEED_PERIOD_S) -> None:
        """A round's refreshes took `took` seconds of its `period`."""
        self.busy = 0.7 * self.busy + 0.3 * min(1.0, took / period)
        self.spacing = min(MAX_SPACING_S, max(REFRESH_EVERY_S, self.spacing * self.busy / LIVE_SHARE))


PACE = Pace()
WATCHERS: dict[tuple[str, str], Watch] = {}  # (client token, page kind) → what that tab shows


def watch(token: str, kind: str, w: Watch) -> None:
    """What the tab `token` shows now (it has just read it: nothing is pending)."""
    if token:
        old = WATCHERS.get((token, kind))
        if old is not None:
            w.refreshed = old.refreshed
        WATCHERS[(token, kind)] = w


def unwatch(token: str, kind: str) -> None:
    WATCHERS.pop((token, kind), None)


HIDDEN: set[str] = set()  # client tokens of browser tabs hidden now (components/visibility.py)
PENDING_MAX = 500  # rows kept for a tab that waits; beyond, it reads everything once shown


@dataclasses.dataclass
class Overflow:
    """Stands for the rows a waiting tab no longer keeps: a change of many items (`bulk`),
    which every page reads again whole."""
    id: int
    entity_type: str
    entity_id: int | None = None
    kind: str = "bulk"


def visible(token: str, shown: bool) -> None:
    """The tab `token` was shown (True) or hidden (False)."""
    if not token:
        return
    if shown:
        HIDDEN.discard(token)
    else:
        HIDDEN.add(token)


OWN: dict[str, dict[int, None]] = {}  # client token → the feed rows the tab wrote itself (newest last)
OWN_KEEP = 500


def mine(token: str, row_ids: list[int]) -> None:
    """The tab `token` wrote these feed rows: its screen shows them already (AppState._call)."""
    if token and row_ids:
        own = OWN.setdefault(token, {})
        own.update(dict.fromkeys(row_ids))
        while len(own) > OWN_KEEP:
            own.pop(next(iter(own)))


def concerns(w: Watch, row, own=()) -> bool:
    """Does a feed row touch what this watcher shows (and may see)? `own`: the rows the tab
    wrote itself (already on its screen; the same person's other tabs are refreshed)."""
    if row.entity_type != w.entity or row.id in own:
        return False
    if w.item_id is not None:
        return row.entity_id == w.item_id
    if row.kind == "bulk":
        return True
    if w.pipeline_id and row.pipeline_id not in (None, w.pipeline_id):
        return False
    if w.scope == "all":
        return True
    if w.scope == "department":
        return row.department_id is not None and row.department_id == w.department_id
    if w.scope == "own":
        return row.responsible_id is not None and row.responsible_id == w.user_id
    return False


def _read_feed(after: int) -> tuple[int, list]:
    with session_scope(write=False) as s:
        if after < 0:
            return changes.version(s), []
        rows = changes.since(s, after)
        for r in rows:
            s.expunge(r)
        return (rows[-1].id if rows else after), rows


def _prune() -> int:
    with session_scope() as s:
        return changes.prune(s)


async def _in_thread(fn, *args):
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, contextvars.copy_context().run, fn, *args)


def _refresh_at_least(target, rows: list, floor: int) -> None:
    with changes.at_least(floor):
        target._live_refresh(rows)


async def _refresh(app, token: str, w: Watch, rows: list) -> None:
    try:
        async with app.modify_state(rx.BaseStateToken(ident=token, cls=w.state)) as state:
            target = state if isinstance(state, w.state) else await state.get_state(w.state)
            # the newest shared answer that shows these rows and this tab's own writes will do
            floor = max([r.id for r in rows] + [getattr(target, "_own_version", 0) or 0])
            await _in_thread(_refresh_at_least, target, rows, floor)
    except Exception:  # noqa: BLE001 - one tab's failed refresh must not stop the others
        log.warning("live refresh of %s failed", w.state.__name__, exc_info=True)


def _online(app):
    """Is a tab's websocket connected? (A predicate over client tokens; without an event
    namespace — tests' stand-in apps — every tab is.)"""
    tokens = getattr(getattr(app, "event_namespace", None), "token_to_sid", None)
    if tokens is None:
        return lambda token: True
    return tokens.__contains__


async def round_once(app, after: int, now: float | None = None) -> int:
    """One round: read the feed after `after`, note the rows each tab is concerned with, and
    refresh the tabs that have some and were not refreshed in the last `PACE.spacing` seconds
    (a room of people moving cards must not turn into a storm of refreshes). The new mark."""
    mark, rows = await _in_thread(_read_feed, after)
    now = time.monotonic() if now is None else now
    jobs = []
    online = _online(app)
    for key, w in list(WATCHERS.items()):
        if now - w.seen > WATCH_TTL_S:
            WATCHERS.pop(key, None)
            if not any(k[0] == key[0] for k in WATCHERS):
                OWN.pop(key[0], None)
                HIDDEN.discard(key[0])
            continue
        if not online(key[0]):  # closed or reconnecting: it reads its page again when it is back
            w.pending = []
            continue
        own = OWN.get(key[0], {})
        w.pending.extend(r for r in rows if concerns(w, r, own))
        if len(w.pending) > PENDING_MAX:  # a tab hidden for long: it will read everything
            w.pending = [Overflow(max(r.id for r in w.pending), w.entity)]
        if w.pending and key[0] not in HIDDEN and now - w.refreshed >= PACE.spacing:
            pending, w.pending, w.refreshed = w.pending, [], now
            jobs.append(_refresh(app, key[0], w, pending))
    started = time.monotonic()
    if jobs:  # a few at a time: fifty at once would queue everyone's next drag behind them
        gate = asyncio.Semaphore(REFRESH_AT_ONCE)

        async def in_turn(job):
            async with gate:
                await job
        await asyncio.gather(*(in_turn(j) for j in jobs))
    PACE.note(time.monotonic() - started)
    return mark


async def live_task(app=None, period_s: float = FEED_PERIOD_S) -> None:
    """Follow the change feed forever (cancelled at shutdown); a failed round is logged."""
    after, pruned_at = -1, time.monotonic()
    while True:
        started = time.monotonic()
        try:
            after = await round_once(app, after)
            if time.monotonic() - pruned_at > PRUNE_EVERY_S:
                pruned_at = time.monotonic()
                await _in_thread(_prune)
        except Exception:  # noqa: BLE001 - a failed round must not stop the loop
            log.exception("live updates round failed")
        await asyncio.sleep(max(0.05, period_s - (time.monotonic() - started)))  # a round a second


__all__ = ["HIDDEN", "OWN", "PACE", "WATCHERS", "Overflow", "Pace", "Watch", "concerns", "live_task", "mine",
           "round_once", "unwatch", "visible", "watch"]
