"""Background work of the app process (Reflex lifespan tasks, registered in rxcrm/rxcrm.py).

`reminders_task`: every REMINDER_PERIOD_S seconds turns due "remind N minutes before"
activities into bell notifications (`notifications.due_reminders`). The database work
runs in a thread so the event loop (and every client on this worker) never waits for it.
With several workers each runs the loop; `due_reminders` claims rows atomically, so a
reminder is still sent once."""
from __future__ import annotations

import asyncio
import logging

from rxcrm.db import session_scope
from rxcrm.services import notifications

log = logging.getLogger("rxcrm.tasks")
REMINDER_PERIOD_S = 30


def reminders_once() -> int:
    """One round: create the due reminders (own unit of work); returns how many."""
    with session_scope() as s:
        return notifications.due_reminders(s)


async def reminders_task(period_s: float = REMINDER_PERIOD_S) -> None:
    """Loop forever; a failed round is logged and the loop goes on (cancelled at shutdown)."""
    while True:
        try:
            made = await asyncio.to_thread(reminders_once)
            if made:
                log.info("reminders: %d notification(s) created", made)
        except Exception:  # noqa: BLE001 - a failed round must not stop the loop
            log.exception("reminders round failed")
        await asyncio.sleep(period_s)
