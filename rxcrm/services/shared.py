"""Shared answers to shared questions: a bounded, thread-safe map from a question (the
exact SQL and its parameters, plus the data version it was answered at) to its answer.
Twenty managers opening the same department board at 9:00 cost one GROUP BY, not twenty;
a committed change moves the data version on (services/changes.py), so an answer is never
reused past a change."""
from __future__ import annotations

import threading
import weakref
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class SharedAnswers:
    """`ttl` (seconds) bounds how long an answer lives whatever its key says — for answers
    whose key cannot see every change (the configuration, changed by another worker)."""

    def __init__(self, size: int = 1024, ttl: float | None = None):
        self.size = size
        self.ttl = ttl
        self._data: OrderedDict[Hashable, tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            if key in self._data and (self.ttl is None or now - self._data[key][0] < self.ttl):
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key][1]  # type: ignore[return-value]
            self.misses += 1
        value = compute()  # outside the lock: two first askers may both compute (same answer)
        with self._lock:
            self._data[key] = (now, value)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class Recent:
    """The newest data version each question (its key without the version) was answered at.

    A live refresh (state/live.py) needs an answer that shows the changes it was told about —
    the feed rows up to `floor` — not one at the very newest version: while a room moves
    cards the version moves on between two tabs' refreshes, and fifty tabs would each miss
    and read the board again. `settle` gives such a reader the newest version already
    answered when it is at least `floor` (and not newer than what the reader's session sees),
    so the tabs of a round share one read. Ordinary readers (no floor) keep their own version."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._latest: OrderedDict[Hashable, int] = OrderedDict()
        self._lock = threading.Lock()

    def settle(self, prefix: Hashable, version, floor: int | None):
        if not isinstance(version, int):  # a session's own uncommitted writes: never shared
            return version
        with self._lock:
            known = self._latest.get(prefix)
            if floor is not None and known is not None and floor <= known <= version:
                return known
            if known is None or version > known:
                self._latest[prefix] = version
                self._latest.move_to_end(prefix)
                while len(self._latest) > self.size:
                    self._latest.popitem(last=False)
        return version

    def clear(self) -> None:
        with self._lock:
            self._latest.clear()


class Generation:
    """A counter this process moves on when the configuration changes (roles' rights, custom
    fields, pipelines, stages, rules — see changes.follow_writes): caches of configuration
    put it in their keys, so a change made here is seen at once; one made by another worker
    within their `ttl`."""

    def __init__(self):
        self.value = 0
        self._lock = threading.Lock()

    def bump(self) -> None:
        with self._lock:
            self.value += 1


CONFIG = Generation()
CONFIG_TTL_S = 5.0


_URL_TEXT: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # engine → its URL as text


def db_key(session) -> str:
    """The database a session works on, as a cache key (rendering a URL quotes every part:
    kept per engine instead of per call)."""
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    text = _URL_TEXT.get(engine)
    if text is None:
        text = _URL_TEXT[engine] = str(engine.url)
    return text


def question(stmt, session) -> tuple:
    """A statement as a hashable question: its SQL, its parameters and the database."""
    compiled = stmt.compile(dialect=session.get_bind().dialect)
    return (db_key(session), str(compiled),
            tuple(sorted((k, repr(v)) for k, v in compiled.params.items())))


__all__ = ["CONFIG", "CONFIG_TTL_S", "Generation", "Recent", "SharedAnswers", "db_key", "question"]
