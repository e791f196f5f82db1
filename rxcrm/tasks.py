"""Background work of the app process (Reflex lifespan tasks, registered in rxcrm/rxcrm.py).

The database work runs in a thread so the event loop (and every client on this worker)
never waits for it; a failed round is logged and the loop goes on (cancelled at shutdown).

**One runner across workers.** Reflex prod runs several worker processes and each starts
these loops, but only the one holding the job's leader lock (`rxcrm.db.singleton`: a
PostgreSQL advisory lock on its own connection, a file lock beside a SQLite file) does a
round; the others ask again every period, so when the leader dies another takes over
within one period. The rounds stay idempotent anyway (row claims, below).

`reminders_task`: every REMINDER_PERIOD_S seconds turns due "remind N minutes before"
activities into bell notifications (`notifications.due_reminders`, which claims rows
atomically, so a reminder is sent once even if two rounds overlapped).

`intake_task`: at start-up and then every INTAKE_PERIOD_S seconds processes intake events
left "received" — their processing was interrupted by a crash, a restart or a transient
database error (`intake.reprocess_pending`: only events older than its grace period, a
bounded number of attempts each; the event row is locked and its status checked before
processing, so an event is processed once).

`outbound_task`: every OUTBOUND_PERIOD_S seconds posts the due outbound events (Bitrix24's
outgoing webhooks: `outbound.deliver_due`, rows written with the changes, retried with
backoff, each settled right after its receiver answered).

`import_task`: every IMPORT_PERIOD_S seconds works the queued imports, checks and undos
(`imports.work_chunk`: one chunk per unit of work, resumable after a crash) for up to
IMPORT_SLICE_S per round, sleeping IMPORT_BREATHER_S between chunks so that people's
writes go first."""
from __future__ import annotations

import asyncio
import time
import logging
from collections.abc import Callable

from rxcrm.db import Singleton, session_scope, singleton
from rxcrm.services import imports, intake, notifications, outbound

log = logging.getLogger("rxcrm.tasks")
REMINDER_PERIOD_S = 30
INTAKE_PERIOD_S = 30
OUTBOUND_PERIOD_S = 2
IMPORT_PERIOD_S = 1
IMPORT_SLICE_S = 30
IMPORT_BREATHER_S = 0.005


def reminders_once() -> int:
    """One round: create the due reminders (own unit of work); returns how many."""
    with session_scope() as s:
        return notifications.due_reminders(s)


async def _leader_loop(job: str, once: str, period_s: float, report: Callable[[object], None],
                       failed: str) -> None:
    """Every `period_s`: if this process holds the job's leader lock, run the function named `once`
    (looked up on this module each round: tests replace it) on a thread."""
    leader: Singleton = singleton(job)
    try:
        while True:
            try:
                if await asyncio.to_thread(leader.held):
                    report(await asyncio.to_thread(globals()[once]))
            except Exception:  # noqa: BLE001 - a failed round must not stop the loop
                log.exception(failed)
            await asyncio.sleep(period_s)
    finally:
        leader.release()  # at shutdown: another worker (or the next start) takes over at once


def _report_reminders(made) -> None:
    if made:
        log.info("reminders: %d notification(s) created", made)


def _report_intake(done) -> None:
    if any(done.values()):
        log.info("intake re-processing: %s", done)


async def reminders_task(period_s: float = REMINDER_PERIOD_S) -> None:
    """Loop forever (one worker runs the rounds); a failed round is logged and the loop goes on."""
    await _leader_loop("reminders", "reminders_once", period_s, _report_reminders, "reminders round failed")


def intake_once() -> dict[str, int]:
    """One round of re-processing interrupted intake events (own units of work)."""
    return intake.reprocess_pending()


async def intake_task(period_s: float = INTAKE_PERIOD_S) -> None:
    """Loop forever, the first round at start-up (in the worker that gets the lock first); a
    failed round is logged, the loop goes on."""
    await _leader_loop("intake", "intake_once", period_s, _report_intake, "intake re-processing round failed")


def outbound_once() -> dict[str, int]:
    """One round of outbound deliveries (own units of work)."""
    return outbound.deliver_due(session_scope)


def _report_outbound(done) -> None:
    if done.get("retry") or done.get("failed"):
        log.info("outbound events: %s", done)


async def outbound_task(period_s: float = OUTBOUND_PERIOD_S) -> None:
    """Loop forever (one worker delivers); a failed round is logged and the loop goes on."""
    await _leader_loop("outbound", "outbound_once", period_s, _report_outbound, "outbound round failed")


def import_once() -> dict[str, object]:
    """One round: chunks of the oldest active import job for up to IMPORT_SLICE_S."""
    deadline = time.monotonic() + IMPORT_SLICE_S
    job_id, status, chunks = imports.next_job(), "", 0
    while job_id is not None and time.monotonic() < deadline:
        status = imports.work_chunk(job_id)
        chunks += 1
        if status not in imports.st.ACTIVE:
            job_id = imports.next_job()
        time.sleep(IMPORT_BREATHER_S)
    return {"chunks": chunks, "status": status}


def _report_import(done) -> None:
    if done.get("chunks"):
        log.debug("import: %s chunks, %s", done["chunks"], done["status"])


async def import_task(period_s: float = IMPORT_PERIOD_S) -> None:
    """Loop forever: the imports (and their checks and undos) run in one worker."""
    await _leader_loop("import", "import_once", period_s, _report_import, "import round failed")
