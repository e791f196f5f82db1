"""Import of leads, deals, contacts and companies from CSV and Excel — nothing lost.

The flow (the wizard on /leads, /deals, /contacts, /companies; the CLI `python -m
rxcrm.manage import`; both call these functions):
1. `start`: the uploaded file goes into a private store (never a public folder), its kind,
   encoding and separator are detected (services/import_files.py) and its headers mapped
   (services/import_map.py, rules/imports.py) → an `import_job` row in «draft».
2. `configure`: the person's mapping and options (duplicates by phone / e-mail / name:
   skip, update — only empty fields or overwrite —, or create anyway as a repeat; the
   default responsible and pipeline); a mapping can be saved and reused (`import_mapping`).
3. `request(dry_run=True)`: the check. 4. `request(dry_run=False)`: the import.
   Both are worked in the background by `work` (rxcrm/tasks.py's import task; the CLI calls
   it in-process) in chunks of at most `CHUNK_ROWS` rows or `CHUNK_SECONDS`: each chunk is
   one unit of work (its items, its log rows and the job's progress commit together, so an
   interrupted job resumes exactly after its last chunk; between chunks other people's
   writes go first). Every row is written by the services every other write path uses
   (services/create.py, items.py, comms.py): the same validation, access, required fields
   per stage and automation rules; a row that fails is rolled back alone (a savepoint) and
   reported with its reasons — never stored half-valid. The check runs the very same code in
   a savepoint that is rolled back: its counts are what the import would do.
5. `undo`: removes what the import created (to the recycle bin) and restores what it
   overwrote — unless someone changed it since —, in the background too, audited.
`report` writes the rejected rows as an Excel file (the file's own columns + «Причина»),
fixable and re-importable as it is."""
from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
import time
from collections import ChainMap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import and_, func, select
from sqlmodel import Session

from rxcrm import db
from rxcrm.models import ImportItem, ImportJob, ImportMapping, ImportReject, User, utcnow
from rxcrm.models import imports as st

from . import audit, changes, entities, import_files, import_map, import_rows, notifications
from .auth import actor_for
from .context import IMPORT_SOURCE, Actor
from .errors import AccessDenied, NotFound, ServiceError, ValidationFailed

log = logging.getLogger(__name__)

MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 200_000
CHUNK_ROWS = 2000     # at most, per chunk (one unit of work)
# A chunk's target length. SQLite has one writer at a time: a person's write waits behind a
# chunk, so chunks stay short. PostgreSQL writers wait only for the same rows: longer chunks
# (fewer commits) cost nobody anything.
CHUNK_SECONDS = {"sqlite": 0.3, "postgresql": 1.5}
SOURCE = IMPORT_SOURCE  # the actor's source: no audit row and no bell notice per item (the job has them)
ALLOWED_ROLES = ("admin", "head")
DENIED = "Импорт доступен руководителям отделов и администратору"
REASON_COLUMN = "Ошибка импорта"  # the report's last column (no field is called so: it is never loaded)
STATUS_LABELS = {st.DRAFT: "Черновик", st.CHECKING: "Идёт проверка", st.CHECKED: "Проверка завершена",
                 st.QUEUED: "В очереди", st.RUNNING: "Идёт импорт", st.DONE: "Импорт завершён",
                 st.CANCELLED: "Импорт остановлен", st.FAILED: "Ошибка", st.UNDOING: "Идёт отмена импорта",
                 st.UNDONE: "Импорт отменён"}
STATUS_LABELS_EN = {st.DRAFT: "Draft", st.CHECKING: "Checking", st.CHECKED: "Check finished", st.QUEUED: "Queued",
                    st.RUNNING: "Importing", st.DONE: "Import finished", st.CANCELLED: "Import stopped",
                    st.FAILED: "Failed", st.UNDOING: "Undoing the import", st.UNDONE: "Import undone"}
DEFAULT_OPTIONS = import_map.DEFAULT_OPTIONS


# ---- the private upload store ---------------------------------------------------------------
def upload_dir() -> Path:
    """RXCRM_IMPORT_DIR (default <tmp>/rxcrm-imports), 0700 and ours alone."""
    d = Path(os.environ.get("RXCRM_IMPORT_DIR") or Path(tempfile.gettempdir()) / "rxcrm-imports")
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    if hasattr(os, "getuid") and d.stat().st_uid != os.getuid():
        raise RuntimeError(f"Каталог загрузок {d} принадлежит другому пользователю")
    if stat.S_IMODE(d.stat().st_mode) & 0o077:
        os.chmod(d, 0o700)
    return d


def _file(job: ImportJob) -> Path:
    return upload_dir() / job.file_token


def can_import(actor: Actor | None) -> bool:
    return actor is not None and actor.role in ALLOWED_ROLES


def _require(session: Session, actor: Actor) -> None:
    if not can_import(actor):
        audit.refused(session, actor, "import", DENIED)
        raise AccessDenied(DENIED)


def _job(session: Session, actor: Actor, job_id: int, *, lock: bool = False) -> ImportJob:
    """A job the actor may see: their own; an admin's: every job."""
    _require(session, actor)
    job = session.get(ImportJob, job_id, with_for_update=lock and session.bind.dialect.name == "postgresql")
    if job is None or (actor.role != "admin" and job.user_id != actor.user_id):
        raise NotFound(f"Импорт №{job_id} не найден")
    return job


# ---- 1. upload ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Received:
    """An uploaded file kept in the store and read (its shape), not yet a job."""
    token: str
    size: int
    info: import_files.FileInfo


def receive(actor: Actor, src: Path, file_name: str, *, encoding: str | None = None,
            delimiter: str | None = None) -> Received:
    """Keep the uploaded file `src` in the private store and read its shape — no database:
    reading a big file takes seconds, and no unit of work (on SQLite: nobody's write) waits
    for it. `start` makes the job."""
    if not can_import(actor):
        raise AccessDenied(DENIED)
    size = Path(src).stat().st_size
    if size > MAX_BYTES:
        raise ValidationFailed(f"Файл больше {MAX_BYTES // 1024 // 1024} МБ — разделите его на части")
    if size == 0:
        raise ValidationFailed("Файл пуст")
    suffix = Path(file_name).suffix.lower()
    suffix = suffix if suffix in (".csv", ".txt", ".xlsx", ".xls", ".xlsm") else ""
    token = f"{utcnow():%Y%m%d%H%M%S}-{os.urandom(9).hex()}{suffix}"  # (openpyxl goes by the suffix)
    dest = upload_dir() / token
    shutil.copyfile(src, dest)
    os.chmod(dest, 0o600)
    try:
        info = import_files.sniff(dest, file_name, encoding=encoding, delimiter=delimiter)
        if info.rows_estimate > MAX_ROWS:
            raise ValidationFailed(f"В файле больше {MAX_ROWS:,} строк — разделите его на части".replace(",", " "))
    except ServiceError:
        dest.unlink(missing_ok=True)
        raise
    return Received(token, size, info)


def start(session: Session, actor: Actor, entity: str, src: Path | Received, file_name: str, *,
          encoding: str | None = None, delimiter: str | None = None) -> tuple[ImportJob, import_files.FileInfo]:
    """A job in draft for an uploaded file (`src`: a path, or what `receive` kept), its headers
    mapped (a saved mapping that fits, else the automatic one)."""
    _require(session, actor)
    if entity not in entities.ENTITIES:
        raise ValidationFailed("Неизвестный раздел для импорта")
    got = src if isinstance(src, Received) else receive(actor, src, file_name, encoding=encoding,
                                                         delimiter=delimiter)
    info = got.info
    mapping, name = _known_mapping(session, entity, info)
    job = ImportJob(entity=entity, user_id=actor.user_id, file_name=Path(file_name).name[:200],
                    file_token=got.token, file_size=got.size, kind=info.kind, encoding=info.encoding,
                    delimiter=info.delimiter, headers=list(info.headers), mapping=mapping, mapping_name=name,
                    total_rows=info.rows_estimate, options=dict(DEFAULT_OPTIONS, responsible_id=actor.user_id))
    session.add(job)
    session.flush()
    return job, info


def _known_mapping(session: Session, entity: str, info) -> tuple[dict, str]:
    """A saved mapping whose headers are all in the file (the newest), else the automatic one."""
    saved = session.exec(select(ImportMapping).where(ImportMapping.entity == entity)
                         .order_by(ImportMapping.id.desc())).scalars().all()
    for m in saved:
        mapped = mapping_from_saved(info.headers, m.columns)
        if mapped and len(mapped) == len([k for k in m.columns.values() if k]):
            return mapped, m.name
    return import_map.auto_map(session, entity, info.headers, own_export=info.creator == "rxcrm"), ""


def mapping_from_saved(headers: list[str], columns: dict) -> dict[str, str]:
    by_header = {import_map.norm_header(h): k for h, k in columns.items() if k}
    return {str(i): by_header[import_map.norm_header(h)] for i, h in enumerate(headers)
            if import_map.norm_header(h) in by_header}


def reread(session: Session, actor: Actor, job_id: int, *, encoding: str | None = None,
           delimiter: str | None = None) -> import_files.FileInfo:
    """The file read again with another encoding or separator (the mapping follows)."""
    job = _job(session, actor, job_id)
    _editable(job)
    info = import_files.sniff(_file(job), job.file_name, encoding=encoding or None, delimiter=delimiter or None)
    if list(info.headers) != list(job.headers):
        job.mapping = import_map.auto_map(session, job.entity, info.headers, own_export=info.creator == "rxcrm")
    job.encoding, job.delimiter, job.headers, job.total_rows = (info.encoding, info.delimiter, list(info.headers),
                                                                info.rows_estimate)
    session.add(job)
    return info


def _editable(job: ImportJob) -> None:
    if job.status not in (st.DRAFT, st.CHECKED, st.CANCELLED, st.FAILED) or job.done_count and not job.dry_run:
        raise ValidationFailed("Этот импорт уже запущен — настройки не меняются")


# ---- 2. mapping and options -----------------------------------------------------------------
def configure(session: Session, actor: Actor, job_id: int, mapping: dict, options: dict | None = None, *,
              save_as: str = "") -> ImportJob:
    job = _job(session, actor, job_id)
    _editable(job)
    job.mapping = import_map.check_mapping(session, job.entity, job.headers, mapping)
    job.options = _options(session, job.entity, {**DEFAULT_OPTIONS, **(job.options or {}), **(options or {})})
    job.status = st.DRAFT
    save_as = (save_as or "").strip()[:100]
    if save_as:
        columns = {job.headers[int(i)]: k for i, k in job.mapping.items()}
        found = session.exec(select(ImportMapping).where(ImportMapping.entity == job.entity,
                                                         ImportMapping.name == save_as)).scalars().first()
        if found is None:
            session.add(ImportMapping(entity=job.entity, name=save_as, columns=columns, options=job.options,
                                      created_by_id=actor.user_id))
        else:
            found.columns, found.options = columns, job.options
            session.add(found)
        job.mapping_name = save_as
    session.add(job)
    return job


def _options(session: Session, entity: str, o: dict) -> dict:
    dup = o.get("duplicates") or "skip"
    if dup not in import_map.DUPLICATES:
        raise ValidationFailed("Дубликаты: пропустить, обновить или создать")
    mode = o.get("update_mode") or "empty"
    if mode not in import_map.UPDATE_MODES:
        raise ValidationFailed("Обновление: только пустые поля или перезаписать")
    match = [m for m in (o.get("match") or []) if m in import_map.MATCHES]
    if entity == "deal":
        match = [m for m in match if m == "name"]
    resp = o.get("responsible_id")
    if resp not in (None, ""):
        user = session.get(User, int(resp)) if str(resp).isdigit() else None
        if user is None or not user.is_active:
            raise ValidationFailed("Ответственный по умолчанию не найден или отключён")
        resp = user.id
    pipe = o.get("pipeline_id")
    pipe = int(pipe) if str(pipe or "").isdigit() else None
    return {"duplicates": dup, "update_mode": mode, "match": match, "responsible_id": resp or None,
            "pipeline_id": pipe}


def mappings(session: Session, actor: Actor, entity: str) -> list[ImportMapping]:
    _require(session, actor)
    return list(session.exec(select(ImportMapping).where(ImportMapping.entity == entity)
                             .order_by(ImportMapping.name)).scalars())


def use_mapping(session: Session, actor: Actor, job_id: int, mapping_id: int) -> ImportJob:
    job = _job(session, actor, job_id)
    _editable(job)
    m = session.get(ImportMapping, mapping_id)
    if m is None or m.entity != job.entity:
        raise NotFound("Сохранённое сопоставление не найдено")
    job.mapping = mapping_from_saved(job.headers, m.columns)
    job.options = _options(session, job.entity, {**DEFAULT_OPTIONS, **(m.options or {}),
                                                 "responsible_id": (job.options or {}).get("responsible_id")})
    job.mapping_name = m.name
    session.add(job)
    return job


# ---- 3–5. asking the runner ------------------------------------------------------------------
def request(session: Session, actor: Actor, job_id: int, *, dry_run: bool) -> ImportJob:
    """Queue the check (`dry_run`) or the import; the runner takes it from there."""
    job = _job(session, actor, job_id, lock=True)
    _editable(job)
    import_map.check_mapping(session, job.entity, job.headers, job.mapping)
    session.execute(ImportReject.__table__.delete().where(ImportReject.job_id == job.id,
                                                          ImportReject.dry_run == dry_run))
    if not dry_run and job.dry_run and job.status == st.CHECKED:
        job.check = _counts(job)
    job.dry_run = dry_run
    job.status = st.CHECKING if dry_run else st.QUEUED
    job.cancel_requested = False
    job.done_row = job.done_count = job.created = job.updated = job.skipped = job.rejected = 0
    job.rate, job.message = 0.0, ""
    job.started_at = job.finished_at = None
    session.add(job)
    return job


def cancel(session: Session, actor: Actor, job_id: int) -> ImportJob:
    """Stop a check or an import after its current chunk (what is written stays — undo removes it)."""
    job = _job(session, actor, job_id, lock=True)
    if job.status in (st.CHECKING, st.QUEUED, st.RUNNING):
        job.cancel_requested = True
    elif job.status in (st.DRAFT, st.CHECKED):
        job.status = st.CANCELLED
    session.add(job)
    return job


def undo(session: Session, actor: Actor, job_id: int) -> ImportJob:
    job = _job(session, actor, job_id, lock=True)
    if not can_undo(job):
        raise ValidationFailed("Отменить можно только выполненный импорт, который что-то записал")
    job.status, job.done_row, job.cancel_requested = st.UNDOING, 0, False
    job.undone_by_id = actor.user_id
    job.message = ""
    session.add(job)
    audit.record(session, actor, "import_undo", job.entity, None, {"job_id": job.id, "file": job.file_name})
    return job


def _counts(job: ImportJob) -> dict:
    return {"created": job.created, "updated": job.updated, "skipped": job.skipped, "rejected": job.rejected,
            "total": job.done_count}


# ---- the runner -------------------------------------------------------------------------------
@dataclass
class _Open:
    """A job's file being read by this process: the row iterator, where it stands."""
    rows: object
    last_row: int
    reader: import_map.Reader
    seen: dict
    size: int = 100  # rows in the next chunk (adapted to CHUNK_SECONDS)
    chunks: int = 0


_OPEN: dict[int, _Open] = {}


def next_job(url: str | None = None) -> int | None:
    def find(s: Session):
        return s.execute(select(ImportJob.id).where(ImportJob.status.in_(st.ACTIVE))
                         .order_by(ImportJob.id).limit(1)).scalar()
    return db.transact(find, url, write=False)


def work(job_id: int, url: str | None = None, *, deadline: float | None = None) -> str:
    """Work a job chunk by chunk until it ends (or `deadline`, a time.monotonic()); returns
    its status. Safe to call again after a crash: it resumes after the last committed chunk."""
    while True:
        status = work_chunk(job_id, url)
        if status not in st.ACTIVE or (deadline is not None and time.monotonic() > deadline):
            return status


def work_chunk(job_id: int, url: str | None = None) -> str:
    """One chunk of a job (one unit of work); returns the job's status afterwards."""
    job = db.transact(lambda s: s.get(ImportJob, job_id), url, write=False)
    if job is None or job.status not in st.ACTIVE:
        _OPEN.pop(job_id, None)
        return job.status if job else st.FAILED
    if job.status == st.UNDOING:
        return db.transact(lambda s: import_rows.undo_chunk(s, job_id), url)
    try:
        if job.cancel_requested:
            return db.transact(lambda s: _finish(s, job_id, st.CANCELLED), url)
        opened = _opened(job, url)
        batch = []
        size = min(opened.size, CHUNK_ROWS)
        for number, cells in opened.rows:
            batch.append((number, cells))
            if len(batch) >= size:
                break
        if not batch:
            return db.transact(lambda s: _finish(s, job_id, st.CHECKED if job.dry_run else st.DONE), url)
        started = time.monotonic()
        added: dict = {}  # this chunk's keys: kept only if its unit commits (transact may run it again)
        careful = False

        def unit(s: Session) -> str:
            added.clear()
            return _rows(s, job_id, opened.reader, batch, ChainMap(added, opened.seen), careful)
        def run() -> str:
            try:
                return db.transact(unit, url)
            except _Checked as checked:  # the check's unit was rolled back whole: its findings stay
                worker = checked.worker
                return db.transact(lambda s: _count(s, job_id, batch, worker), url)
        try:
            status = run()
        except import_rows.BatchRefused:
            careful = True  # nothing of the chunk stayed: again, each new item alone
            status = run()
        opened.seen.update(added)
        opened.last_row = batch[-1][0]
        opened.chunks += 1
        if opened.chunks % ANALYZE_EVERY == 0 and db.get_engine(url).dialect.name == "postgresql":
            _analyze(job.entity, url)
        # the next chunk lasts about CHUNK_SECONDS (on SQLite: people's writes wait at most that)
        spent = max(time.monotonic() - started, 0.001)
        target = CHUNK_SECONDS.get(db.get_engine(url).dialect.name, 0.3)
        opened.size = max(20, min(CHUNK_ROWS, int(len(batch) * target / spent)))
        return status
    except ServiceError as exc:  # the file cannot be read any more (a bad byte mid-file…)
        why = exc.message
    except Exception as exc:  # noqa: BLE001 — a bug: the job says so instead of spinning
        log.exception("import %s failed", job_id)
        why = f"Внутренняя ошибка: {type(exc).__name__}"
    _OPEN.pop(job_id, None)
    return db.transact(lambda s: _finish(s, job_id, st.FAILED, why), url)


ANALYZE_EVERY = 10  # chunks (PostgreSQL: ~15 s of import)


def _analyze(entity: str, url: str | None) -> None:
    """PostgreSQL: fresh statistics for the tables an import grows. Autovacuum's come late
    for a table that doubles in a minute, and the duplicate lookups' plans then go from
    ~60 ms to ~600 ms a chunk."""
    table = entities.MODELS[entity].__tablename__
    with db.get_engine(url).connect() as c:
        c.exec_driver_sql(f'ANALYZE "{table}", communication, external_ref')
        c.commit()


def _opened(job: ImportJob, url: str | None) -> _Open:
    opened = _OPEN.get(job.id)
    if opened is None or opened.last_row != job.done_row:
        info = import_files.FileInfo(kind=job.kind, encoding=job.encoding, delimiter=job.delimiter,
                                     headers=list(job.headers), preview=[], rows_estimate=job.total_rows)
        reader = db.transact(lambda s: import_map.Reader(s, job.entity, job.headers, job.mapping, job.options),
                             url, write=False)
        opened = _Open(iter(import_files.rows(_file(job), info, start=job.done_row)), job.done_row, reader, {})
        _OPEN[job.id] = opened
    return opened


class _Checked(Exception):
    """A check's chunk is done: its unit is rolled back whole (nothing it wrote stays — no
    savepoint, which on SQLite would cost more than the writes), its findings are counted."""

    def __init__(self, worker: import_rows.Worker):
        super().__init__("checked")
        self.worker = worker


def _rows(s: Session, job_id: int, reader: import_map.Reader, batch: list, seen: dict,
          careful: bool = False) -> str:
    job = s.get(ImportJob, job_id)
    if job.status not in st.ACTIVE:
        return job.status
    user = s.get(User, job.user_id)
    actor = actor_for(user, source=SOURCE, client=f"Импорт №{job.id}: {job.file_name}"[:200])
    worker = import_rows.Worker(s, job, actor, reader, seen, careful)
    if job.dry_run:
        worker.rows(batch)
        raise _Checked(worker)
    with changes.coalesced(s):
        worker.rows(batch)
    return _count(s, job_id, batch, worker)


def _count(s: Session, job_id: int, batch: list, worker: import_rows.Worker) -> str:
    """The chunk's findings: its rejected and skipped rows, the job's counts and progress."""
    job = s.get(ImportJob, job_id)
    if job.status not in st.ACTIVE:
        return job.status
    if job.status == st.QUEUED:
        job.status = st.RUNNING
    job.started_at = job.started_at or utcnow()
    for r in worker.rejects:
        s.add(r)
    counts = worker.counts
    job.created += counts["created"]
    job.updated += counts["updated"]
    job.skipped += counts["skipped"]
    job.rejected += counts["rejected"]
    job.done_count += len(batch)
    job.done_row = batch[-1][0]
    job.heartbeat_at = utcnow()
    spent = max((job.heartbeat_at - _aware(job.started_at)).total_seconds(), 0.001)
    job.rate = round(job.done_count / spent, 1)
    job.total_rows = max(job.total_rows, job.done_count)
    s.add(job)
    return job.status


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


def _finish(s: Session, job_id: int, status: str, message: str = "") -> str:
    _OPEN.pop(job_id, None)
    job = s.get(ImportJob, job_id)
    job.status, job.finished_at, job.cancel_requested = status, utcnow(), False
    job.message = message or job.message
    job.total_rows = job.done_count if status in (st.CHECKED, st.DONE) else job.total_rows
    s.add(job)
    if not job.dry_run and status in (st.DONE, st.CANCELLED, st.FAILED):
        user = s.get(User, job.user_id)
        actor = actor_for(user, source=SOURCE, client=f"Импорт №{job.id}: {job.file_name}"[:200])
        audit.record(s, actor, "import", job.entity, None,
                     {"job_id": job.id, "file": job.file_name, "status": status, **_counts(job)})
        _tell_responsibles(s, job, actor)
    return status


def _tell_responsibles(s: Session, job: ImportJob, actor: Actor) -> None:
    """One bell notice per responsible for what the import gave them (not one per item)."""
    model = entities.MODELS[job.entity]
    rows = s.execute(select(model.responsible_id, func.count()).join(
        ImportItem, and_(ImportItem.entity_id == model.id, ImportItem.entity_type == job.entity))
        .where(ImportItem.job_id == job.id, ImportItem.action == "created", model.responsible_id.is_not(None),
               model.responsible_id != actor.user_id)
        .group_by(model.responsible_id)).all()
    plural = entities.ENTITIES[job.entity].plural.lower()
    for uid, n in rows:
        notifications.notify(s, uid, notifications.ASSIGNED,
                             f"Вам назначено из импорта «{job.file_name}»: {plural} — {n}", job.entity, None)


# ---- reading jobs and reports ----------------------------------------------------------------
def jobs(session: Session, actor: Actor, *, entity: str | None = None, offset: int = 0,
         limit: int = 20) -> tuple[list[ImportJob], int]:
    """The imports a person sees on /settings → Импорт (an admin: all), newest first."""
    _require(session, actor)
    q = select(ImportJob)
    if actor.role != "admin":
        q = q.where(ImportJob.user_id == actor.user_id)
    if entity:
        q = q.where(ImportJob.entity == entity)
    total = session.execute(select(func.count()).select_from(q.subquery())).scalar_one()
    rows = session.execute(q.order_by(ImportJob.id.desc()).offset(offset).limit(limit)).scalars().all()
    return list(rows), total


def get(session: Session, actor: Actor, job_id: int) -> ImportJob:
    return _job(session, actor, job_id)


def rejects(session: Session, actor: Actor, job_id: int, *, limit: int = 100) -> list[ImportReject]:
    """The first rejected and skipped rows of the job's current run (the wizard's list)."""
    job = _job(session, actor, job_id)
    return list(session.execute(select(ImportReject).where(ImportReject.job_id == job.id,
                                                           ImportReject.dry_run == job.dry_run)
                                .order_by(ImportReject.skipped, ImportReject.row).limit(limit)).scalars())


def report(session: Session, actor: Actor, job_id: int, path: Path) -> int:
    """The rejected rows of the job's current run as an .xlsx at `path`: the file's own
    columns (as read) + «Причина» — fix and import the file again as it is. Returns rows."""
    job = _job(session, actor, job_id)
    q = (select(ImportReject.row, ImportReject.values, ImportReject.errors)
         .where(ImportReject.job_id == job.id, ImportReject.dry_run == job.dry_run, ImportReject.skipped.is_(False))
         .order_by(ImportReject.row).execution_options(yield_per=500))
    count = 0

    def rows():
        nonlocal count
        for _row, values, errors in session.execute(q):
            count += 1
            reason = "; ".join(
                (f"«{e['column']}»" + (f" = «{e['value']}»" if e.get("value") else "") + ": " if e.get("column") else "")
                + e["message"] for e in errors)
            yield [*values, f"Строка {_row}: {reason}"]
    import_files.write_xlsx(path, [*job.headers, REASON_COLUMN], rows(), sheet="Ошибки")
    return count


def template(entity: str, path: Path) -> None:
    """An empty .xlsx with the headers Bitrix24 (and the import) know for this entity."""
    headers = {"lead": ["Название лида", "Фамилия", "Имя", "Отчество", "Мобильный телефон", "Рабочий e-mail",
                        "Источник", "Стадия", "Ответственный", "Образовательная программа", "Сумма",
                        "Комментарий", "Дата создания", "ID"],
               "deal": ["Название сделки", "Воронка", "Стадия сделки", "Сумма", "Контакт", "Телефон контакта",
                        "E-mail контакта", "Компания", "Образовательная программа", "Источник", "Ответственный",
                        "Дата создания", "ID"],
               "contact": ["Фамилия", "Имя", "Отчество", "Мобильный телефон", "Рабочий e-mail", "Компания",
                           "Должность", "Дата рождения", "Источник", "Ответственный", "Дата создания", "ID"],
               "company": ["Название компании", "ИНН", "Сфера деятельности", "Адрес", "Рабочий телефон",
                           "Рабочий e-mail", "Сайт", "Ответственный", "Дата создания", "ID"]}[entity]
    import_files.write_template(path, headers)


def report_filename(job: ImportJob) -> str:
    return f"Ошибки импорта — {Path(job.file_name).stem}.xlsx"


def template_filename(entity: str) -> str:
    return f"Шаблон импорта — {entities.get(entity).plural}.xlsx"


def status_label(status: str, dry_run: bool = False, lang: str = "ru") -> str:
    """«Импорт завершён»… (in English for an English screen); a check that was stopped or
    failed says so."""
    en = lang == "en"
    if dry_run and status == st.CANCELLED:
        return "Check stopped" if en else "Проверка остановлена"
    if dry_run and status == st.FAILED:
        return "Check failed" if en else "Проверка не удалась"
    return (STATUS_LABELS_EN if en else STATUS_LABELS).get(status, status)


def can_undo(job: ImportJob) -> bool:
    return not job.dry_run and job.status in (st.DONE, st.CANCELLED, st.FAILED) and bool(job.created or job.updated)


def summary(job: ImportJob) -> dict:
    """What a screen or the CLI shows of a job (plain values). While an undo runs, its
    percent is the log rows taken back of those the import wrote (`done_row` counts them)."""
    if job.status == st.UNDOING:
        percent = min(99, int(job.done_row * 100 / max(job.created + job.updated, 1)))
    elif job.total_rows:
        percent = min(100, int(job.done_count * 100 / job.total_rows))
    else:
        percent = 100 if job.status in (st.DONE, st.CHECKED) else 0
    return {"id": job.id, "entity": job.entity, "file": job.file_name, "status": job.status,
            "status_label": status_label(job.status, job.dry_run), "dry_run": job.dry_run, "total": job.total_rows,
            "done": job.done_count, "created": job.created, "updated": job.updated, "skipped": job.skipped,
            "rejected": job.rejected, "rate": job.rate, "message": job.message, "percent": percent}


__all__ = ["CHUNK_ROWS", "MAX_BYTES", "REASON_COLUMN", "Received", "receive", "can_import", "can_undo", "cancel", "configure", "get", "jobs",
           "mapping_from_saved", "mappings", "next_job", "report", "report_filename", "reread", "rejects", "request",
           "start", "status_label", "summary", "template", "template_filename", "undo", "upload_dir", "use_mapping", "work",
           "work_chunk"]
