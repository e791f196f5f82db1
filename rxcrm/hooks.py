"""Who reacts to what — the one place side effects are wired (like Frappe's hooks.py).

The write services publish domain events (services/events.py) and import none of their
listeners; `wire()` subscribes the listeners, in the order they run. It is called once at
the app's start (rxcrm/rxcrm.py), by the test suite (tests/conftest.py) and by scripts
that use the services (bench/, rxcrm/manage.py); publishing before it raises NotWired.

Adding a reaction (live board updates, outbound webhooks…) = a function in its service
module + one line here."""
from __future__ import annotations

from rxcrm.services import audit, changes, events, notifications, outbound, rules_engine

# event → its listeners, in order: the audit first (it records the person's change before a
# rule's), then the bell, then the outbound events (an outbox row in the change's own
# transaction, once per item and unit of work), then the rules (whose own changes publish
# events in turn).
HOOKS: dict[str, list] = {
    events.ITEM_CREATED: [audit.on_item_created, notifications.on_item_created, outbound.on_item_created,
                          rules_engine.on_item_created],
    events.FIELDS_CHANGED: [audit.on_fields_changed, notifications.on_fields_changed, outbound.on_fields_changed,
                            rules_engine.on_fields_changed],
    events.STAGE_CHANGED: [audit.on_stage_changed, notifications.on_stage_changed, outbound.on_stage_changed,
                           rules_engine.on_stage_changed],
    events.ITEM_DELETED: [audit.on_item_deleted, outbound.on_item_deleted],
    events.ACTIVITY_SCHEDULING: [rules_engine.on_activity_scheduling],
    events.ACTIVITY_PLANNED: [],
}


def wire() -> None:
    """Subscribe every listener of HOOKS (idempotent), and let the change feed follow every
    write of an item (boards reuse shared summaries by it; live updates follow it)."""
    for name, listeners in HOOKS.items():
        for fn in listeners:
            events.subscribe(name, fn)
    changes.follow_writes()
    events.mark_wired()


__all__ = ["HOOKS", "wire"]
