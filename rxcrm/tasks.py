"""Background work of the app process (Reflex lifespan tasks, registered in rxcrm/rxcrm.py).

The database work runs in a thread so the event loop (and every client on this worker)
never waits for it; a failed round is logged and the loop goes on (cancelled at shutdown).

`reminders_task`: every REMINDER_PERIOD_S seconds turns due "remind N minutes before"
activities into bell notifications (`notifications.due_reminders`). With several workers
each runs the loop; `due_reminders` claims rows atomically, so a reminder is still sent once.

`intake_task`: at start-up and then every INTAKE_PERIOD_S seconds processes intake events
left "received" — their processing was interrupted by a crash, a restart or a transient
database error (`intake.reprocess_pending`: only events older than its grace period, a
bounded number of attempts each). With several workers each runs the loop; the event row
is locked and its status checked before processing, so an event is still processed once."""
from __future__ import annotations

import asyncio
import logging

from rxcrm.db import session_scope
from rxcrm.services import intake, notifications

log = logging.getLogger("rxcrm.tasks")
REMINDER_PERIOD_S = 30
INTAKE_PERIOD_S = 30


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


def intake_once() -> dict[str, int]:
    """One round of re-processing interrupted intake events (own units of work)."""
    return intake.reprocess_pending()


async def intake_task(period_s: float = INTAKE_PERIOD_S) -> None:
    """Loop forever, the first round at start-up; a failed round is logged, the loop goes on."""
    while True:
        try:
            done = await asyncio.to_thread(intake_once)
            if any(done.values()):
                log.info("intake re-processing: %s", done)
        except Exception:  # noqa: BLE001 - a failed round must not stop the loop
            log.exception("intake re-processing round failed")
        await asyncio.sleep(period_s)
