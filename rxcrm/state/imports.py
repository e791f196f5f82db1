"""The import wizard (components/import_wizard.py) on /leads, /deals, /contacts, /companies.

Thin: every step calls services/imports.py. Steps: «upload» (a file → a job in draft) →
«map» (columns → fields, encoding, separator, duplicates) → «check» (the dry run, worked
in the background; the person sees its progress and its rejected rows) → «run» (the
import, progress, cancel) → «done» (counts, the report of rejected rows, undo). The
state keeps only what the dialog shows: the file's headers and a few preview rows, never
its rows."""
from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from pathlib import Path

import reflex as rx

from rxcrm.db import session_scope
from rxcrm.models import imports as st
from rxcrm.services import catalogs, entities, export, fmt, import_map, imports
from rxcrm.services.errors import ServiceError

from .app import AppState
from .base import choice, event, opt_id, to_bool, to_id, to_text, to_uploads
from .work import Option

POLL_S = 0.7
PREVIEW_ROWS = 3
REJECTS_SHOWN = 50
ENCODINGS = (("utf-8", "UTF-8"), ("utf-8-sig", "UTF-8 (BOM)"), ("cp1251", "Windows-1251"), ("utf-16", "UTF-16"))
DELIMITERS = ((";", ";"), (",", ","), ("tab", "Tab"), ("|", "|"))
STEPS = ("upload", "map", "check", "run", "done")


@dataclasses.dataclass
class ColumnRow:
    """One column of the file in the mapping table."""
    index: str = ""
    header: str = ""
    sample: str = ""
    target: str = ""


@dataclasses.dataclass
class RejectRow:
    row: int = 0
    column: str = ""
    value: str = ""
    message: str = ""
    skipped: bool = False


class ImportState(AppState):
    open: bool = False
    step: str = "upload"
    entity: str = ""
    page: str = ""
    job_id: int = 0
    file_name: str = ""
    encoding: str = ""
    delimiter: str = ""
    kind: str = ""
    columns: list[ColumnRow] = []
    targets: list[Option] = []
    duplicates: str = "skip"
    update_mode: str = "empty"
    match_phone: bool = True
    match_email: bool = True
    match_name: bool = False
    responsible_id: str = ""
    pipeline_id: str = ""
    responsibles: list[Option] = []
    pipelines: list[Option] = []
    saved: list[Option] = []
    save_as: str = ""
    error: str = ""
    busy: bool = False
    # progress of the check / the import / the undo
    status: str = ""
    status_label: str = ""
    dry_run: bool = False
    total: int = 0
    done: int = 0
    percent: int = 0
    rate: float = 0.0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: int = 0
    message: str = ""
    rejects: list[RejectRow] = []
    watching: bool = False

    @rx.var
    def title(self) -> str:
        return self._tr(f"import.title.{self.entity or 'lead'}")

    @rx.var
    def encoding_options(self) -> list[Option]:
        return [Option(value=v, label=label) for v, label in ENCODINGS]

    @rx.var
    def delimiter_options(self) -> list[Option]:
        return [Option(value=v, label=label) for v, label in DELIMITERS]

    @rx.var
    def is_csv(self) -> bool:
        return self.kind == "csv"

    @rx.var
    def active(self) -> bool:
        return self.status in st.ACTIVE

    @rx.var
    def mapped_count(self) -> int:
        return len([c for c in self.columns if c.target])

    # ---- opening --------------------------------------------------------------------------
    @event
    def open_wizard(self, page: str):
        """«Импорт» on a work page (admins and heads)."""
        section = choice(page, tuple(entities.BY_SECTION), "work.what.page")
        actor = self._require_actor()
        if not imports.can_import(actor):
            return rx.toast.error(self._tr("import.denied"))
        self._reset(entities.BY_SECTION[section], section)
        self.open = True
        with session_scope(write=False) as s:
            self.saved = [Option(value=str(m.id), label=m.name) for m in imports.mappings(s, actor, self.entity)]
            people = catalogs.assignable_users(s)
            if actor.user_id not in {i for i, _n in people}:
                people = [(actor.user_id, actor.full_name), *people]
            self.responsibles = [Option(value=str(i), label=n) for i, n in people]
            self.pipelines = [Option(value=str(p.id), label=p.name) for p in catalogs.pipelines(s, "deal")] \
                if self.entity == "deal" else []
        self.responsible_id = str(actor.user_id or "")

    def _reset(self, entity: str, page: str) -> None:
        self.entity, self.page, self.step, self.job_id, self.error = entity, page, "upload", 0, ""
        self.file_name = self.encoding = self.delimiter = self.kind = self.save_as = ""
        self.columns, self.targets, self.rejects = [], [], []
        self.duplicates, self.update_mode = "skip", "empty"
        self.match_phone, self.match_email, self.match_name = True, True, entity == "deal"
        self.pipeline_id = ""
        self._progress({})

    @event
    def close(self):
        """Closing the dialog leaves a running import running (/settings → Импорт shows it)."""
        self.open, self.watching = False, False

    @event
    def set_open(self, value: bool):
        if not to_bool(value):
            self.open, self.watching = False, False

    # ---- 1. upload ---------------------------------------------------------------------------
    @event
    async def handle_upload(self, files: list[rx.UploadFile]):
        files = to_uploads(files, "import.what.file")
        if not files:
            return
        upload = files[0]
        name = Path(str(upload.filename or upload.name or "file")).name
        tmp = Path(tempfile.mkdtemp(prefix="rxcrm-up-")) / "upload"
        size = 0
        try:
            with open(tmp, "wb") as out:
                while chunk := await upload.read(1 << 20):
                    size += len(chunk)
                    if size > imports.MAX_BYTES:
                        self.error = self._tr("import.too_big")
                        return
                    out.write(chunk)
            self.busy = True
            yield
            try:  # the file is read outside any unit of work; the job is one short write
                got = await asyncio.to_thread(imports.receive, self._require_actor(), tmp, name)
                job, info = await asyncio.to_thread(self._call, imports.start, self.entity, got, name)
            except ServiceError as exc:
                self.error = exc.message
                return
            finally:
                self.busy = False
        finally:
            tmp.unlink(missing_ok=True)
            tmp.parent.rmdir()
        self.job_id, self.file_name, self.error = job.id, name, ""
        self._show_file(info, job.mapping)
        self.step = "map"

    def _show_file(self, info, mapping: dict) -> None:
        self.kind, self.encoding = info.kind, info.encoding
        self.delimiter = "tab" if info.delimiter == "\t" else info.delimiter
        self.total = info.rows_estimate
        rows = info.preview[:PREVIEW_ROWS]
        self.columns = [ColumnRow(index=str(i), header=h,
                                  sample=" · ".join(import_map.cell_text(r[i]) for r in rows
                                                    if i < len(r) and import_map.cell_text(r[i]))[:80],
                                  target=mapping.get(str(i), "")) for i, h in enumerate(info.headers)]
        lang = self.lang
        with session_scope(write=False) as s:
            self.targets = [Option(value="-", label=self._tr("import.skip_column"))] + \
                [Option(value=t.key, label=t.title(lang)) for t in import_map.targets(s, self.entity)]

    @event
    def set_encoding(self, value: str):
        enc = choice(value, tuple(v for v, _ in ENCODINGS), "import.what.encoding")
        self._reread(encoding=enc, delimiter=self.delimiter)

    @event
    def set_delimiter(self, value: str):
        sep = choice(value, tuple(v for v, _ in DELIMITERS), "import.what.delimiter")
        self._reread(encoding=self.encoding, delimiter=sep)

    def _reread(self, *, encoding: str, delimiter: str) -> None:
        try:
            info = self._call(imports.reread, self.job_id, encoding=encoding,
                              delimiter="\t" if delimiter == "tab" else delimiter)
            mapping = self._read(lambda s, a: imports.get(s, a, self.job_id).mapping)
        except ServiceError as exc:
            self.error = exc.message
            return
        self.error = ""
        self._show_file(info, mapping)

    # ---- 2. mapping and options ---------------------------------------------------------------
    @event
    def set_target(self, index: str, key: str):
        idx = to_text(index, "import.what.column")
        key = "" if to_text(key, "import.what.field") == "-" else key
        if key and key not in {t.value for t in self.targets}:
            return
        self.columns = [dataclasses.replace(c, target=key) if c.index == idx else c for c in self.columns]

    @event
    def set_duplicates(self, value: str):
        self.duplicates = choice(value, import_map.DUPLICATES, "import.what.duplicates")

    @event
    def set_update_mode(self, value: str):
        self.update_mode = choice(value, import_map.UPDATE_MODES, "import.what.update_mode")

    @event
    def set_match(self, what: str, value: bool):
        attr = "match_" + choice(what, import_map.MATCHES, "import.what.match")
        setattr(self, attr, to_bool(value))

    @event
    def set_responsible(self, value: str):
        self.responsible_id = str(opt_id(value, "import.what.responsible") or "")

    @event
    def set_pipeline(self, value: str):
        self.pipeline_id = str(opt_id(value, "import.what.pipeline") or "")

    @event
    def set_save_as(self, value: str):
        self.save_as = to_text(value, "import.what.save_as")[:100]

    @event
    def use_saved(self, value: str):
        mapping_id = to_id(value, "import.what.mapping")
        try:
            job = self._call(imports.use_mapping, self.job_id, mapping_id)
        except ServiceError as exc:
            self.error = exc.message
            return
        self.columns = [dataclasses.replace(c, target=job.mapping.get(c.index, "")) for c in self.columns]
        o = job.options or {}
        self.duplicates, self.update_mode = o.get("duplicates", "skip"), o.get("update_mode", "empty")
        match = o.get("match") or []
        self.match_phone, self.match_email, self.match_name = ("phone" in match, "email" in match, "name" in match)

    def _configure(self) -> bool:
        mapping = {c.index: c.target for c in self.columns if c.target}
        options = {"duplicates": self.duplicates, "update_mode": self.update_mode,
                   "match": [m for m in import_map.MATCHES if getattr(self, "match_" + m)],
                   "responsible_id": opt_id(self.responsible_id, "import.what.responsible"),
                   "pipeline_id": opt_id(self.pipeline_id, "import.what.pipeline")}
        try:
            self._call(imports.configure, self.job_id, mapping, options, save_as=self.save_as)
        except ServiceError as exc:
            self.error = exc.message
            return False
        self.error = ""
        return True

    # ---- 3–4. the check and the import --------------------------------------------------------
    @event
    def check(self):
        """«Проверить»: the dry run, in the background; the dialog follows its progress."""
        if self._configure() and self._request(dry_run=True):
            self.step = "check"
            return ImportState.watch

    @event
    def run(self):
        """«Импортировать»."""
        if self.step == "map" and not self._configure():
            return
        if self._request(dry_run=False):
            self.step = "run"
            return ImportState.watch

    @event
    def back_to_mapping(self):
        if self.status not in st.ACTIVE:
            self.step = "map"

    def _request(self, *, dry_run: bool) -> bool:
        try:
            job = self._call(imports.request, self.job_id, dry_run=dry_run)
        except ServiceError as exc:
            self.error = exc.message
            return False
        self._progress(imports.summary(job))
        self.rejects = []
        return True

    @event
    def cancel(self):
        try:
            job = self._call(imports.cancel, self.job_id)
        except ServiceError as exc:
            self.error = exc.message
            return
        self._progress(imports.summary(job))

    @event
    def undo(self):
        try:
            job = self._call(imports.undo, self.job_id)
        except ServiceError as exc:
            self.error = exc.message
            return
        self._progress(imports.summary(job))
        return ImportState.watch

    @event(background=True)
    async def watch(self):
        """Follow the job until it ends (one reader per dialog; stops when it closes)."""
        async with self:
            if self.watching or not self.job_id:
                return
            self.watching = True
            actor = self._require_actor()
            job_id = self.job_id
        try:
            while True:
                summary, rows = await asyncio.to_thread(_read_progress, actor, job_id)
                async with self:
                    if not self.open or self.job_id != job_id:
                        return
                    self._progress(summary)
                    self.rejects = rows
                    if summary["status"] not in st.ACTIVE:
                        if self.step in ("run", "check") and summary["status"] in (st.DONE, st.CANCELLED,
                                                                                    st.FAILED, st.UNDONE):
                            self.step = "done" if not summary["dry_run"] or summary["status"] == st.FAILED \
                                else self.step
                        return
                await asyncio.sleep(POLL_S)
        finally:
            async with self:
                self.watching = False

    def _progress(self, s: dict) -> None:
        self.status, self.dry_run = s.get("status", ""), bool(s.get("dry_run"))
        self.status_label = imports.status_label(self.status, self.dry_run, self.lang)
        self.total, self.done, self.percent = s.get("total", 0), s.get("done", 0), s.get("percent", 0)
        self.rate = s.get("rate", 0.0)
        self.created, self.updated = s.get("created", 0), s.get("updated", 0)
        self.skipped, self.rejected = s.get("skipped", 0), s.get("rejected", 0)
        self.message = s.get("message", "")

    # ---- 5. the report -----------------------------------------------------------------------
    @event
    def download_report(self):
        token = self._read(_write_report, self.job_id)
        return rx.redirect(f"/api/export/{token}", is_external=True)

    @event
    def download_template(self):
        actor = self._require_actor()
        if not imports.can_import(actor):
            return rx.toast.error(self._tr("import.denied"))
        token, path = export.new_export(actor.user_id, self.entity, filename=imports.template_filename(self.entity))
        imports.template(self.entity, path)
        return rx.redirect(f"/api/export/{token}", is_external=True)


def _write_report(s, actor, job_id: int) -> str:
    """The rejected rows of a job as an .xlsx in the person's private file store; its token."""
    job = imports.get(s, actor, job_id)
    token, path = export.new_export(actor.user_id, job.entity, filename=imports.report_filename(job))
    imports.report(s, actor, job.id, path)
    return token


def _read_progress(actor, job_id: int) -> tuple[dict, list[RejectRow]]:
    with session_scope(write=False) as s:
        job = imports.get(s, actor, job_id)
        rows = [RejectRow(row=r.row, column=e.get("column", ""), value=e.get("value", ""), message=e["message"],
                          skipped=r.skipped)
                for r in imports.rejects(s, actor, job_id, limit=REJECTS_SHOWN) for e in r.errors]
        return imports.summary(job), rows[:REJECTS_SHOWN]


@dataclasses.dataclass
class JobRow:
    """One import on /settings → Импорт."""
    id: int = 0
    when: str = ""
    who: str = ""
    what: str = ""
    file: str = ""
    status: str = ""
    status_label: str = ""
    counts: str = ""
    percent: int = 0
    active: bool = False
    can_undo: bool = False
    has_errors: bool = False
    mapping: str = ""  # the saved mapping it used, if any


class ImportsListState(AppState):
    """/settings → Импорт: every import as a row (an admin: all; a head: their own), with
    undo; the list follows running jobs while the tab is open."""
    jobs: list[JobRow] = []
    total: int = 0
    offset: int = 0
    following: bool = False
    PAGE = 20

    @event
    def on_load(self):
        self._load()
        if any(j.active for j in self.jobs):
            return ImportsListState.follow

    def _load(self) -> None:
        actor = self._require_actor()
        if not imports.can_import(actor):
            self.jobs, self.total = [], 0
            return
        lang = self.lang
        with session_scope(write=False) as s:
            rows, self.total = imports.jobs(s, actor, offset=self.offset, limit=self.PAGE)
            names = dict(catalogs.users(s, active_only=False))
            self.jobs = [_job_row(j, names, lang) for j in rows]

    @event
    def turn(self, where: str):
        step = -1 if choice(where, ("prev", "next"), "import.what.job") == "prev" else 1
        self.offset = max(0, min(self.offset + step * self.PAGE, max(self.total - 1, 0) // self.PAGE * self.PAGE))
        self._load()

    @event
    def undo(self, job_id: int):
        try:
            self._call(imports.undo, to_id(job_id, "import.what.job"))
        except ServiceError as exc:
            return rx.toast.error(exc.message)
        self._load()
        return ImportsListState.follow

    @event
    def report(self, job_id: int):
        token = self._read(_write_report, to_id(job_id, "import.what.job"))
        return rx.redirect(f"/api/export/{token}", is_external=True)

    @event
    def stop(self, job_id: int):
        try:
            self._call(imports.cancel, to_id(job_id, "import.what.job"))
        except ServiceError as exc:
            return rx.toast.error(exc.message)
        self._load()

    @event(background=True)
    async def follow(self):
        async with self:
            if self.following:
                return
            self.following = True
        try:
            for _ in range(3600):  # at most an hour of following
                await asyncio.sleep(1.0)
                async with self:
                    self._load()
                    if not any(j.active for j in self.jobs):
                        return
        finally:
            async with self:
                self.following = False


def _job_row(j, names: dict, lang: str) -> JobRow:
    e = entities.get(j.entity)
    return JobRow(id=j.id, when=fmt.dt_short(j.created_at), who=names.get(j.user_id, ""),
                  what=e.plural if lang != "en" else e.label_en + "s", file=j.file_name, status=j.status,
                  mapping=j.mapping_name,
                  status_label=imports.status_label(j.status, j.dry_run, lang),
                  counts=" · ".join(fmt.count(n) for n in (j.created, j.updated, j.skipped, j.rejected)),
                  percent=imports.summary(j)["percent"], active=j.status in st.ACTIVE,
                  can_undo=imports.can_undo(j), has_errors=j.rejected > 0 and j.status not in st.ACTIVE)
