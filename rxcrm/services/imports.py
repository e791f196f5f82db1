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
from collections import ChainMap, Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import and_, func, insert, select
from sqlmodel import Session

from rxcrm import db
from rxcrm.models import Communication, Company, Contact, ExternalRef, ImportItem, ImportJob, ImportMapping
from rxcrm.models import ImportReject, User, utcnow
from rxcrm.models import imports as st

from . import audit, changes, comms, create, entities, import_files, import_map, items, notifications
from .auth import actor_for
from .context import IMPORT_SOURCE, Actor
from .errors import AccessDenied, NotFound, ServiceError, ValidationFailed
from .fields import field_map
from .records import plain, value_of

log = logging.getLogger(__name__)

MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 200_000
CHUNK_ROWS = 1000     # at most, per chunk (one unit of work)
CHUNK_SECONDS = 0.3   # a chunk's target length: how long a person's write may wait behind it
SOURCE = IMPORT_SOURCE  # the actor's source: no audit row and no bell notice per item (the job has them)
ALLOWED_ROLES = ("admin", "head")
DENIED = "Импорт доступен руководителям отделов и администратору"
REASON_COLUMN = "Ошибка импорта"  # the report's last column (no field is called so: it is never loaded)
STATUS_LABELS = {st.DRAFT: "Черновик", st.CHECKING: "Проверка", st.CHECKED: "Проверен", st.QUEUED: "В очереди",
                 st.RUNNING: "Идёт импорт", st.DONE: "Завершён", st.CANCELLED: "Отменён", st.FAILED: "Ошибка",
                 st.UNDOING: "Отмена импорта", st.UNDONE: "Отменён (откат)"}
DEFAULT_OPTIONS = {"duplicates": "skip", "match": ["phone", "email"], "update_mode": "empty",
                   "responsible_id": None, "pipeline_id": None}


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
def start(session: Session, actor: Actor, entity: str, src: Path, file_name: str, *,
          encoding: str | None = None, delimiter: str | None = None) -> tuple[ImportJob, import_files.FileInfo]:
    """Keep the uploaded file `src` (moved into the store), read its shape, map its headers."""
    _require(session, actor)
    if entity not in entities.ENTITIES:
        raise ValidationFailed("Неизвестный раздел для импорта")
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
    except ServiceError:
        dest.unlink(missing_ok=True)
        raise
    if info.rows_estimate > MAX_ROWS:
        dest.unlink(missing_ok=True)
        raise ValidationFailed(f"В файле больше {MAX_ROWS:,} строк — разделите его на части".replace(",", " "))
    mapping, name = _known_mapping(session, entity, info)
    job = ImportJob(entity=entity, user_id=actor.user_id, file_name=Path(file_name).name[:200], file_token=token,
                    file_size=size, kind=info.kind, encoding=info.encoding, delimiter=info.delimiter,
                    headers=list(info.headers), mapping=mapping, mapping_name=name, total_rows=info.rows_estimate,
                    options=dict(DEFAULT_OPTIONS, responsible_id=actor.user_id))
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


def preview(session: Session, actor: Actor, job_id: int) -> import_files.FileInfo:
    job = _job(session, actor, job_id)
    return import_files.sniff(_file(job), job.file_name, encoding=job.encoding or None,
                              delimiter=job.delimiter or None)


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
        return db.transact(lambda s: _undo_chunk(s, job_id), url)
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

        def unit(s: Session) -> str:
            added.clear()
            return _rows(s, job_id, opened.reader, batch, ChainMap(added, opened.seen))
        status = db.transact(unit, url)
        opened.seen.update(added)
        opened.last_row = batch[-1][0]
        # the next chunk holds the write lock about CHUNK_SECONDS: people's writes wait at most that
        spent = max(time.monotonic() - started, 0.001)
        opened.size = max(20, min(CHUNK_ROWS, int(len(batch) * CHUNK_SECONDS / spent)))
        return status
    except ServiceError as exc:  # the file cannot be read any more (a bad byte mid-file…)
        _OPEN.pop(job_id, None)
        return db.transact(lambda s: _finish(s, job_id, st.FAILED, exc.message), url)
    except Exception as exc:  # noqa: BLE001 — a bug: the job says so instead of spinning
        log.exception("import %s failed", job_id)
        _OPEN.pop(job_id, None)
        return db.transact(lambda s: _finish(s, job_id, st.FAILED, f"Внутренняя ошибка: {type(exc).__name__}"), url)


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


def _rows(s: Session, job_id: int, reader: import_map.Reader, batch: list, seen: dict) -> str:
    job = s.get(ImportJob, job_id)
    if job.status not in st.ACTIVE:
        return job.status
    user = s.get(User, job.user_id)
    actor = actor_for(user, source=SOURCE, client=f"Импорт №{job.id}: {job.file_name}"[:200])
    if job.status == st.QUEUED:
        job.status = st.RUNNING
    job.started_at = job.started_at or utcnow()
    worker = _Worker(s, job, actor, reader, seen)
    outer = s.begin_nested() if job.dry_run else None
    with changes.coalesced(s) as written:
        worker.rows(batch)
        if outer is not None:  # the check: nothing it did stays
            outer.rollback()
            written.clear()
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


class _Worker:
    """Works the rows of one chunk in its unit of work. What identifies a row among the
    items (external ids, phones, e-mails) is looked up for the whole chunk at once; new
    leads are written together (create.create_leads: the checks of create_lead, one batched
    INSERT per table), other rows one by one, each in a savepoint."""

    BULK = ("lead",)  # entities whose new items are written in batches

    def __init__(self, s: Session, job: ImportJob, actor: Actor, reader: import_map.Reader, seen: dict):
        self.s, self.job, self.actor, self.reader, self.seen = s, job, actor, reader, seen
        self.entity = job.entity
        self.o = {**DEFAULT_OPTIONS, **(job.options or {})}
        self.counts: Counter = Counter()
        self.rejects: list[ImportReject] = []
        self.pending: list[tuple] = []  # (row, cells, repeat) of new leads not yet written
        self.pending_rows: set[int] = set()
        self.known: dict[tuple[str, str], int] = {}  # (kind, key) → the live item it names

    def rows(self, batch: list) -> None:
        read = [(self.reader.row(number, cells), cells) for number, cells in batch]
        self._prefetch([r for r, _c in read if not r.errors])
        for r, cells in read:
            self.row(r, cells)
        self._flush()

    # -- one row
    def row(self, r, cells: list) -> None:
        if r.errors:
            return self._reject(r, cells, [self._error(k, v, m) for k, v, m in r.errors])
        if self.pending and any(self.seen.get(k) in self.pending_rows for k in self._keys(r)):
            self._flush()  # it repeats a row not yet written: write that first
        try:
            found, why = self._match(r)
        except ServiceError as exc:
            return self._reject(r, cells, self._errors(exc, r))
        dup = self.o["duplicates"]
        if found is not None and (dup == "update" or why in ("id", "external_id") and dup == "create"):
            return self._do(r, cells, "updated", lambda: self._update(found, r))
        if found is not None and dup == "skip":
            return self._skip(r, cells, why)
        if r.item_id is not None:
            return self._reject(r, cells, [self._error("id", str(r.item_id),
                                                       entities.ENTITIES[self.entity].not_found(r.item_id))])
        if why == "row" and dup == "skip":
            return self._skip(r, cells, why)
        repeat = found is not None or why == "row"
        if self.entity in self.BULK:
            self.pending.append((r, cells, repeat))
            self.pending_rows.add(r.number)
            self._remember(r, None)
            return
        self._do(r, cells, "created", lambda: self._create(r, repeat=repeat))

    def _flush(self) -> None:
        """Write the pending new leads together; if the batch as a whole fails (a rule
        refused one of them…), each is written alone so that only its own row is refused."""
        batch, self.pending, self.pending_rows = self.pending, [], set()
        if not batch:
            return
        sp = self.s.begin_nested()
        try:
            made = create.create_leads(self.s, self.actor, [self._lead_spec(r) for r, _c, _rep in batch])
            sp.commit()
        except ServiceError:
            sp.rollback()
            for r, cells, repeat in batch:
                self._forget(r)
                self._do(r, cells, "created", lambda r=r, repeat=repeat: self._create(r, repeat=repeat))
            return
        logs, refs = [], []
        for (r, cells, repeat), item in zip(batch, made):
            if isinstance(item, ServiceError):
                self._forget(r)
                self._reject(r, cells, self._errors(item, r))
                continue
            if repeat:
                item.is_repeat = True
            self.counts["created"] += 1
            logs.append(dict(job_id=self.job.id, row=r.number, entity_type=self.entity, entity_id=item.id,
                             action="created", before={}, after={}))
            if r.external_id:
                refs.append((item.id, r.external_id))
        if logs:
            self.s.execute(insert(ImportItem.__table__), logs)
        self._externals(refs)

    def _forget(self, r) -> None:
        mine = self.seen.maps[0] if isinstance(self.seen, ChainMap) else self.seen
        for key in self._keys(r):
            if mine.get(key) == r.number:
                del mine[key]

    def _do(self, r, cells, action: str, fn) -> None:
        sp = self.s.begin_nested()
        try:
            changed = fn()
            sp.commit()
        except ServiceError as exc:
            sp.rollback()
            return self._reject(r, cells, self._errors(exc, r))
        if action == "updated" and not changed:
            return self._skip(r, cells, "same")
        self.counts[action] += 1
        self._remember(r, changed if action == "created" else None)

    _WHY = {"same": "Без изменений", "phone": "Дубликат по телефону", "email": "Дубликат по e-mail",
            "name": "Дубликат по названию", "id": "Запись уже есть",
            "external_id": "Уже загружен (тот же внешний ID)"}

    def _skip(self, r, cells, why: str) -> None:
        self.counts["skipped"] += 1
        text = f"Повтор строки {self._first_row(r)}" if why == "row" else self._WHY.get(why, "Дубликат")
        self.rejects.append(ImportReject(job_id=self.job.id, dry_run=self.job.dry_run, row=r.number, skipped=True,
                                         values=[import_map.cell_text(c) for c in cells],
                                         errors=[{"column": "", "value": "", "message": text}]))

    def _reject(self, r, cells, errors: list[dict]) -> None:
        self.counts["rejected"] += 1
        self.rejects.append(ImportReject(job_id=self.job.id, dry_run=self.job.dry_run, row=r.number,
                                         values=[import_map.cell_text(c) for c in cells], errors=errors))

    def _error(self, key: str, value: str, message: str) -> dict:
        return {"column": self.reader.column(key), "value": value, "message": message}

    def _errors(self, exc: ServiceError, r) -> list[dict]:
        keys = list((getattr(exc, "fields", None) or {}).keys())
        details = getattr(exc, "details", None) or {}
        if details.get("missing"):
            keys = [m["key"] for m in details["missing"]]
        key = next((k for k in keys if self.reader.column(k)), keys[0] if keys else "")
        value = r.raw.get(key, "") if key else ""
        if key in ("phones", "emails"):
            value = ", ".join(v for v, _t in (r.phones if key == "phones" else r.emails))
        return [{"column": self.reader.column(key) if key else "", "value": value, "message": exc.message}]

    # -- duplicates
    def _keys(self, r) -> list[tuple[str, str]]:
        keys = []
        if r.external_id:
            keys.append(("external_id", r.external_id))
        if r.item_id is not None:
            keys.append(("id", str(r.item_id)))
        match = self.o["match"]
        if "phone" in match:
            keys += [("phone", k) for k in import_map.phone_keys(r.phones)]
        if "email" in match:
            keys += [("email", k) for k in import_map.email_keys(r.emails)]
        if "name" in match:
            name = import_map.name_key(self.entity, r)
            if name:
                keys.append(("name", name))
        return keys

    def _first_row(self, r) -> int | str:
        for key in self._keys(r):
            if key in self.seen and self.seen[key] != r.number:
                return self.seen[key]
        return ""

    def _remember(self, r, item) -> None:
        for key in self._keys(r):
            self.seen.setdefault(key, r.number)

    def _prefetch(self, rows: list) -> None:
        """The live items the chunk's external ids, phones and e-mails name: three queries
        for the chunk instead of three per row."""
        model = entities.MODELS[self.entity]
        ext = list({r.external_id for r in rows if r.external_id})
        if ext:
            for eid, item_id in self.s.execute(
                    select(ExternalRef.external_id, ExternalRef.entity_id).join(model, model.id == ExternalRef.entity_id)
                    .where(ExternalRef.entity_type == self.entity, ExternalRef.external_id.in_(ext),
                           model.deleted_at.is_(None))):
                self.known[("external_id", eid)] = item_id
        for kind in ("phone", "email"):
            if kind not in self.o["match"]:
                continue
            keys = list({k for r in rows for k in (import_map.phone_keys(r.phones) if kind == "phone"
                                                    else import_map.email_keys(r.emails))})
            for i in range(0, len(keys), 500):
                for norm, item_id in self.s.execute(
                        select(Communication.norm, func.min(Communication.entity_id))
                        .join(model, model.id == Communication.entity_id)
                        .where(Communication.entity_type == self.entity, Communication.kind == kind,
                               Communication.norm.in_(keys[i:i + 500]), model.deleted_at.is_(None))
                        .group_by(Communication.norm)):
                    self.known[(kind, norm)] = item_id

    def _match(self, r) -> tuple[int | None, str]:
        """The existing item this row is (its id, and by what), or (None, "row") when an
        earlier row of the file was the same, or (None, "")."""
        model = entities.MODELS[self.entity]
        if r.item_id is not None:
            item = self.s.get(model, r.item_id)
            if item is not None and item.deleted_at is None:
                return item.id, "id"
            return None, ""
        if r.external_id and ("external_id", r.external_id) in self.known:
            return self.known[("external_id", r.external_id)], "external_id"
        in_file = any(key in self.seen for key in self._keys(r))  # an earlier row of the file was the same
        for kind, values in (("phone", import_map.phone_keys(r.phones)), ("email", import_map.email_keys(r.emails))):
            if kind in self.o["match"]:
                found = [self.known[(kind, v)] for v in values if (kind, v) in self.known]
                if found:
                    return min(found), "row" if in_file else kind
        if "name" in self.o["match"]:
            found = self._by_name(r)
            if found is not None:
                return found, "row" if in_file else "name"
        if in_file and self.o["duplicates"] == "update":  # the item an earlier row of this chunk made
            found = self._written_by_earlier_row(r)
            if found is not None:
                return found, "row"
        return None, "row" if in_file else ""

    def _written_by_earlier_row(self, r) -> int | None:
        model = entities.MODELS[self.entity]
        if r.external_id:
            found = self.s.execute(select(ExternalRef.entity_id).where(
                ExternalRef.entity_type == self.entity, ExternalRef.external_id == r.external_id)).scalar()
            if found is not None:
                return found
        for kind, values in (("phone", import_map.phone_keys(r.phones)), ("email", import_map.email_keys(r.emails))):
            if kind in self.o["match"] and values:
                found = self.s.execute(
                    select(func.min(Communication.entity_id)).join(model, model.id == Communication.entity_id)
                    .where(Communication.entity_type == self.entity, Communication.kind == kind,
                           Communication.norm.in_(values), model.deleted_at.is_(None))).scalar()
                if found is not None:
                    return found
        return None

    def _by_name(self, r) -> int | None:
        model = entities.MODELS[self.entity]
        if self.entity == "contact":
            full = create.contact_full_name(*r.names())
            cond = model.full_name == full if full else None
        elif self.entity == "lead":
            last, first, middle = r.names()
            cond = and_(model.last_name == last, model.first_name == first, model.middle_name == middle) \
                if (last or first) else (model.title == r.values.get("title", "") if r.values.get("title") else None)
        else:
            title = r.values.get("title", "")
            cond = model.title == title if title else None
        if cond is None:
            return None
        return self.s.execute(select(func.min(model.id)).where(cond, model.deleted_at.is_(None))).scalar()

    # -- create
    def _create(self, r, *, repeat: bool):
        s, a, v, e = self.s, self.actor, dict(r.values), self.entity
        resp = v.pop("responsible_id", None) or self.o.get("responsible_id")
        custom = {k.split(".", 1)[1]: v.pop(k) for k in [k for k in v if k.startswith("custom.")]}
        utm = {k: v.pop(k) for k in [k for k in v if k.startswith("utm_")]}
        common = dict(responsible_id=int(resp) if resp else None, custom=custom, created_at=r.created_at)
        if e == "lead":
            item = create.create_lead(s, a, **self._lead_spec(r))
        elif e == "deal":
            contact_id, company_id = self._client(r)
            item = create.create_deal(
                s, a, pipeline_id=r.pipeline_id, title=v.pop("title", ""), contact_id=contact_id,
                company_id=company_id, program_id=v.pop("program_id", None), amount=v.pop("amount", None),
                source=v.pop("source", "") or "Импорт", utm=utm, stage_id=r.stage.id if r.stage else None,
                comment=v.pop("comment", ""), values=v, allow_final=True, **common)
        elif e == "contact":
            last, first, middle = (v.pop(k, "") for k in ("last_name", "first_name", "middle_name"))
            item = create.create_contact(
                s, a, last_name=last, first_name=first, middle_name=middle, phones=r.phones, emails=r.emails,
                company_id=self._company(r.company), position=v.pop("position", ""),
                birthday=v.pop("birthday", None) or None, source=v.pop("source", "") or "Импорт",
                comment=v.pop("comment", ""), values=v, **common)
        else:
            item = create.create_company(
                s, a, title=v.pop("title", ""), phones=r.phones, emails=r.emails, inn=v.pop("inn", ""),
                industry=v.pop("industry", ""), address=v.pop("address", ""), website=r.website,
                comment=v.pop("comment", ""), values=v, **common)
        if repeat and hasattr(item, "is_repeat"):
            item.is_repeat = True
        if r.closed_at is not None and getattr(item, "semantic", "process") != "process":
            item.closed_at = r.closed_at
        self._log(r, e, item.id, "created")
        if r.external_id:
            self._external(item.id, r.external_id)
        return item

    def _lead_spec(self, r) -> dict:
        """create_lead's arguments for a row."""
        v = dict(r.values)
        resp = v.pop("responsible_id", None) or self.o.get("responsible_id")
        custom = {k.split(".", 1)[1]: v.pop(k) for k in [k for k in v if k.startswith("custom.")]}
        utm = {k: v.pop(k) for k in [k for k in v if k.startswith("utm_")]}
        last, first, middle = (v.pop(k, "") for k in ("last_name", "first_name", "middle_name"))
        return dict(title=v.pop("title", ""), last_name=last, first_name=first, middle_name=middle,
                    phones=r.phones, emails=r.emails, source=v.pop("source", "") or "Импорт",
                    program_id=v.pop("program_id", None), amount=v.pop("amount", None), comment=v.pop("comment", ""),
                    utm=utm, company_title=v.pop("company_title", ""), position=v.pop("position", ""),
                    stage_code=r.stage.code if r.stage else None, allow_final=True, values=v,
                    responsible_id=int(resp) if resp else None, custom=custom, created_at=r.created_at,
                    closed_at=r.closed_at)

    def _client(self, r) -> tuple[int | None, int | None]:
        """A deal's contact: the one with the row's phone / e-mail, else the only one with
        its name, else a new one (created by this import); its company likewise by name."""
        company_id = self._company(r.company)
        c = r.contact
        if not c:
            return None, company_id
        found = create.find_contact(self.s, c["phones"], c["emails"])
        if found is not None:
            return found[0].id, company_id
        if c["name"]:
            ids = self.s.execute(select(Contact.id).where(Contact.full_name == c["name"],
                                                          Contact.deleted_at.is_(None)).limit(2)).scalars().all()
            if len(ids) == 1:
                return ids[0], company_id
        if not (c["name"] or c["phones"] or c["emails"]):
            return None, company_id
        last, first, middle = import_map.split_name(c["name"]) if c["name"] else ("", c["phones"][0] if c["phones"]
                                                                                  else c["emails"][0], "")
        contact = create.create_contact(self.s, self.actor, last_name=last, first_name=first, middle_name=middle,
                                        phones=c["phones"], emails=c["emails"], company_id=company_id,
                                        source="Импорт")
        self._log(r, "contact", contact.id, "created")
        return contact.id, company_id

    def _company(self, title: str) -> int | None:
        if not title:
            return None
        found = self.s.execute(select(func.min(Company.id)).where(Company.title == title,
                                                                  Company.deleted_at.is_(None))).scalar()
        if found is not None:
            return found
        company = create.create_company(self.s, self.actor, title=title)
        self._log(None, "company", company.id, "created")
        return company.id

    def _log(self, r, entity: str, item_id: int, action: str, before: dict | None = None,
             after: dict | None = None) -> None:
        self.s.add(ImportItem(job_id=self.job.id, row=r.number if r else 0, entity_type=entity, entity_id=item_id,
                              action=action, before=before or {}, after=after or {}))

    def _externals(self, refs: list[tuple[int, str]]) -> None:
        """External ids of new items: a ref whose item is gone (deleted) names the new one."""
        first: dict[str, int] = {}
        for item_id, ext in refs:
            first.setdefault(ext, item_id)  # a file that repeats an id: its first row keeps it
        if not first:
            return
        refs = [(i, e) for e, i in first.items()]
        ids = list(first)
        self.s.execute(ExternalRef.__table__.delete().where(ExternalRef.entity_type == self.entity,
                                                            ExternalRef.external_id.in_(ids)))
        self.s.execute(insert(ExternalRef.__table__), [dict(entity_type=self.entity, external_id=e, entity_id=i,
                                                  job_id=self.job.id) for i, e in refs])

    def _external(self, item_id: int, external_id: str) -> None:
        ref = self.s.execute(select(ExternalRef).where(ExternalRef.entity_type == self.entity,
                                                       ExternalRef.external_id == external_id)).scalars().first()
        if ref is None:
            self.s.add(ExternalRef(entity_type=self.entity, external_id=external_id, entity_id=item_id,
                                   job_id=self.job.id))
        else:  # the item it named is gone (deleted): the id now names this one
            ref.entity_id, ref.job_id = item_id, self.job.id
            self.s.add(ref)

    # -- update
    def _update(self, item_id: int, r) -> bool:
        """Fill the found item from the row: only its empty fields, or overwrite (options);
        phones and e-mails it lacks are added; the stage moves only when overwriting."""
        s, e = self.s, self.entity
        item = s.get(entities.MODELS[e], item_id)
        overwrite = self.o["update_mode"] == "overwrite"
        values = {k: x for k, x in r.values.items() if x != ""}
        if e == "contact":
            values.pop("last_name", None), values.pop("first_name", None), values.pop("middle_name", None)
        fmap = field_map(s, e, getattr(item, "pipeline_id", None))
        wanted = {}
        for key, text in values.items():
            fd = fmap.get(key)
            if not items.editable(fd):
                continue
            new = items.parse_value(fd, text)
            old = value_of(item, key)
            if plain(old) == plain(new) or (not overwrite and old not in (None, "", 0)):
                continue
            wanted[key] = text
        before = {k: plain(value_of(item, k)) for k in wanted}
        if wanted:
            items.update_fields(s, self.actor, e, item.id, wanted)
        after = {k: plain(value_of(item, k)) for k in wanted}
        added = {}
        for kind, given in (("phone", r.phones), ("email", r.emails)):
            if not given or e == "deal":
                continue
            have = {c.norm for c in comms.of(s, e, [item.id], kind).get(item.id, [])}
            keys = import_map.phone_keys(given) if kind == "phone" else import_map.email_keys(given)
            new_ops = [comms.Op(value=v, value_type=t) for (v, t), k in zip(given, keys) if k not in have]
            if new_ops and (overwrite or not have):
                old_ids = {c.id for c in comms.of(s, e, [item.id], kind).get(item.id, [])}
                comms.change(s, self.actor, e, item.id, kind, new_ops, item=item)
                added[kind] = [c.id for c in comms.of(s, e, [item.id], kind).get(item.id, []) if c.id not in old_ids]
        if r.stage is not None and overwrite and getattr(item, "stage_id", None) not in (None, r.stage.id):
            if r.stage.pipeline_id != item.pipeline_id:
                raise ValidationFailed(f"Стадия «{r.stage.name}» из другой воронки", fields={"stage_id": "Не та воронка"})
            before["stage_id"] = item.stage_id
            items.move_stage(s, self.actor, e, item.id, r.stage.id, allow_final=True)
            after["stage_id"] = r.stage.id
        if r.external_id:
            ref = s.execute(select(ExternalRef.id).where(ExternalRef.entity_type == e,
                                                         ExternalRef.external_id == r.external_id)).scalar()
            if ref is None:
                self._external(item.id, r.external_id)
        if not (wanted or added or "stage_id" in after):
            return False
        self._log(r, e, item.id, "updated", {**before, **({"_added": added} if added else {})}, after)
        return True


# ---- undo ---------------------------------------------------------------------------------------
UNDO_CHUNK = 200


def _undo_chunk(s: Session, job_id: int) -> str:
    """Undo the next log rows, newest first (what a later row did goes before what an
    earlier one did). `done_row` counts the rows undone."""
    job = s.get(ImportJob, job_id)
    user = s.get(User, job.undone_by_id or job.user_id)
    actor = actor_for(user, source=SOURCE, client=f"Отмена импорта №{job.id}"[:200])
    q = select(ImportItem).where(ImportItem.job_id == job.id).order_by(ImportItem.id.desc())
    logs = s.execute(q.offset(job.done_row).limit(UNDO_CHUNK)).scalars().all()
    kept = 0
    with changes.coalesced(s):
        for entry in logs:
            kept += _undo_one(s, actor, entry)
    job.done_row += len(logs)
    job.heartbeat_at = utcnow()
    if kept:
        job.message = f"{job.message.split(';')[0] if job.message else ''}".strip()
        job.check = {**(job.check or {}), "kept": (job.check or {}).get("kept", 0) + kept}
    if len(logs) < UNDO_CHUNK:
        s.execute(ExternalRef.__table__.delete().where(ExternalRef.job_id == job.id))
        job.status, job.undone_at = st.UNDONE, utcnow()
        left = (job.check or {}).get("kept", 0)
        job.message = f"Изменены после импорта и оставлены как есть: {left}" if left else ""
        audit.record(s, actor, "import_undone", job.entity, None, {"job_id": job.id, "kept": left})
    s.add(job)
    return job.status


def _undo_one(s: Session, actor: Actor, entry: ImportItem) -> int:
    """1 when the item was changed after the import and is left as it is."""
    model = entities.MODELS[entry.entity_type]
    item = s.get(model, entry.entity_id)
    if item is None or item.deleted_at is not None:
        return 0
    if entry.action == "created":
        items.delete_item(s, actor, entry.entity_type, item.id)
        return 0
    kept = 0
    before, after = dict(entry.before or {}), dict(entry.after or {})
    added = before.pop("_added", {})
    stage_before = before.pop("stage_id", None)
    restore = {}
    for key, old in before.items():
        if plain(value_of(item, key)) == after.get(key):
            restore[key] = "" if old is None else str(old)
        else:
            kept = 1
    if restore:
        items.update_fields(s, actor, entry.entity_type, item.id, restore)
    for kind, ids in added.items():
        present = {c.id for c in comms.of(s, entry.entity_type, [item.id], kind).get(item.id, [])}
        ops = [comms.Op(id=i, delete=True) for i in ids if i in present]
        if ops:
            comms.change(s, actor, entry.entity_type, item.id, kind, ops, item=item)
    if stage_before is not None:
        if item.stage_id == after.get("stage_id"):
            items.move_stage(s, actor, entry.entity_type, item.id, stage_before, allow_final=True)
        else:
            kept = 1
    return kept


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


def status_label(status: str, dry_run: bool = False) -> str:
    """«Завершён»; a finished check says «Проверен», a cancelled one «Проверка остановлена»."""
    if dry_run and status == st.CANCELLED:
        return "Проверка остановлена"
    return STATUS_LABELS.get(status, status)


def can_undo(job: ImportJob) -> bool:
    return not job.dry_run and job.status in (st.DONE, st.CANCELLED, st.FAILED) and bool(job.created or job.updated)


def summary(job: ImportJob) -> dict:
    """What a screen or the CLI shows of a job (plain values)."""
    return {"id": job.id, "entity": job.entity, "file": job.file_name, "status": job.status,
            "status_label": status_label(job.status, job.dry_run), "dry_run": job.dry_run, "total": job.total_rows,
            "done": job.done_count, "created": job.created, "updated": job.updated, "skipped": job.skipped,
            "rejected": job.rejected, "rate": job.rate, "message": job.message,
            "percent": min(100, int(job.done_count * 100 / job.total_rows)) if job.total_rows else
            (100 if job.status in (st.DONE, st.CHECKED) else 0)}


__all__ = ["CHUNK_ROWS", "MAX_BYTES", "REASON_COLUMN", "can_import", "can_undo", "cancel", "configure", "get", "jobs",
           "mapping_from_saved", "mappings", "next_job", "preview", "report", "report_filename", "reread", "rejects", "request",
           "start", "status_label", "summary", "template", "template_filename", "undo", "upload_dir", "use_mapping", "work",
           "work_chunk"]
