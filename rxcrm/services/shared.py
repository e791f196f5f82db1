"""Shared answers to shared questions: a bounded, thread-safe map from a question (the
exact SQL and its parameters, plus the data version it was answered at) to its answer.
Twenty managers opening the same department board at 9:00 cost one GROUP BY, not twenty;
a committed change moves the data version on (services/changes.py), so an answer is never
reused past a change."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class SharedAnswers:
    def __init__(self, size: int = 1024):
        self.size = size
        self._data: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]  # type: ignore[return-value]
            self.misses += 1
        value = compute()  # outside the lock: two first askers may both compute (same answer)
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def question(stmt, session) -> tuple:
    """A statement as a hashable question: its SQL, its parameters and the database."""
    compiled = stmt.compile(dialect=session.get_bind().dialect)
    return (str(session.get_bind().url), str(compiled),
            tuple(sorted((k, repr(v)) for k, v in compiled.params.items())))


__all__ = ["SharedAnswers", "question"]
