"""Domain events: the write services announce what happened; other services react.

`items`, `create` and `activities` **publish** (`publish(session, STAGE_CHANGED, …)`) and
know nothing of who listens. The rules engine, notifications and the audit log
**subscribe** — in one place only, `rxcrm.hooks.wire()`, called at the app's start (and by
tests and scripts that use the services), never as a side effect of an import.
Subscribers run synchronously, in the publisher's transaction and in the order they were
wired, so a rule's change and its trigger commit or roll back together; a subscriber
that raises a ServiceError refuses the whole operation (that is how ACTIVITY_SCHEDULING
validators veto a date).

Events and their keyword arguments (all also get `session` first):
- ITEM_CREATED      actor, entity, item, stage (Stage | None), details (dict for the audit)
- FIELDS_CHANGED    actor, entity, item, changes ({key: (old, new)})
- STAGE_CHANGED     actor, entity, item, old (Stage), new (Stage)
- ITEM_DELETED      actor, entity, item
- ACTIVITY_SCHEDULING  item, start_at   (before an activity is planned or moved: may refuse)
- ACTIVITY_PLANNED  actor, entity, item, activity"""
from __future__ import annotations

from collections.abc import Callable

ITEM_CREATED = "item_created"
FIELDS_CHANGED = "fields_changed"
STAGE_CHANGED = "stage_changed"
ITEM_DELETED = "item_deleted"
ACTIVITY_SCHEDULING = "activity_scheduling"
ACTIVITY_PLANNED = "activity_planned"
EVENTS = (ITEM_CREATED, FIELDS_CHANGED, STAGE_CHANGED, ITEM_DELETED, ACTIVITY_SCHEDULING, ACTIVITY_PLANNED)

_subscribers: dict[str, list[Callable]] = {name: [] for name in EVENTS}
_wired = False


class NotWired(RuntimeError):
    """A service published an event before rxcrm.hooks.wire() ran: the rules, the
    notifications and the audit would silently not happen, so this fails loudly."""


def subscribe(name: str, fn: Callable) -> None:
    if name not in _subscribers:
        raise ValueError(f"unknown event {name!r}")
    if fn not in _subscribers[name]:
        _subscribers[name].append(fn)


def unsubscribe(name: str, fn: Callable) -> None:
    if fn in _subscribers.get(name, []):
        _subscribers[name].remove(fn)


def mark_wired() -> None:
    global _wired
    _wired = True


def reset() -> None:
    """Forget every subscriber (tests that wire their own)."""
    global _wired
    for subs in _subscribers.values():
        subs.clear()
    _wired = False


def subscribers(name: str) -> list[Callable]:
    return list(_subscribers[name])


def publish(session, name: str, **payload) -> None:
    if not _wired:
        raise NotWired(f"event {name!r} published before rxcrm.hooks.wire()")
    for fn in _subscribers[name]:
        fn(session, **payload)


__all__ = ["ACTIVITY_PLANNED", "ACTIVITY_SCHEDULING", "EVENTS", "FIELDS_CHANGED", "ITEM_CREATED", "ITEM_DELETED",
           "NotWired", "STAGE_CHANGED", "mark_wired", "publish", "reset", "subscribe", "subscribers", "unsubscribe"]
