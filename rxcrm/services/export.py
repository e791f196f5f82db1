"""Excel export of exactly the active filtered view, and a small private store of finished files.

`export_xlsx` writes the rows that `listing.query_items(..., action="export")` selects for the
same filters and sort (so the actor's export scope from the access matrix applies), with the
chosen columns in their order, Russian headers and typed cells (numbers, Moscow-time
datetimes, dates). Rows are read in chunks and streamed into a write-only workbook, so memory
stays flat whatever the size of the view.

Finished files live under `EXPORT_DIR` (never under Reflex's public upload dir): `new_export`
hands out a random token and a path, `export_file` / `export_path` give the file back only to
the user who made it and only for `EXPORT_TTL`; `cleanup_exports` removes old ones."""
from __future__ import annotations

import json
import os
import re
import secrets
import stat
import tempfile
from copy import copy
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from sqlalchemy import select
from sqlmodel import Session

from rxcrm import settings
from rxcrm.models import utcnow
from rxcrm.settings import TZ

from . import access, audit, listing
from .context import Actor
from .errors import AccessDenied, ValidationFailed
from .fields import DEFAULT_COLUMNS, MODELS, FieldDef, field_map
from .filters import normalized

CHUNK = 2000
EXPORT_TTL = timedelta(hours=1)
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

ENTITY_PLURAL = {"lead": "Лиды", "deal": "Сделки", "contact": "Контакты", "company": "Компании",
                 "analytics": "Аналитика"}
ENTITY_PLURAL_EN = {"lead": "Leads", "deal": "Deals", "contact": "Contacts", "company": "Companies"}

FMT_MONEY = '#,##0 "₽"'
FMT_INT_NUMBER = "#,##0"
FMT_NUMBER = "#,##0.##"
FMT_DATETIME = "DD.MM.YYYY HH:MM"
FMT_DATE = "DD.MM.YYYY"

_DATETIME_KINDS = {"datetime", "activity"}
_NUMERIC_KINDS = {"money", "number"}
_EXCEL_MAX_TEXT = 32767
# Control characters Excel refuses (openpyxl raises IllegalCharacterError on them).
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_WIDTH = {"datetime": 17, "activity": 17, "date": 12, "money": 15, "number": 12, "int": 9, "bool": 8}


# ---- the workbook ---------------------------------------------------------------------

def export_columns(session: Session, entity: str, columns: list[str] | None,
                   pipeline_id: int | None = None) -> list[FieldDef]:
    """The FieldDefs of `columns` in order (empty → the entity's default columns);
    an unknown key is refused with a message naming it."""
    if entity not in MODELS:
        raise ValidationFailed(f"Неизвестный раздел для выгрузки: «{entity}»", fields={"entity": "unknown"})
    fmap = field_map(session, entity, pipeline_id)
    keys = list(dict.fromkeys(columns or DEFAULT_COLUMNS[entity]))  # keep order, drop repeats
    unknown = [k for k in keys if k not in fmap]
    if unknown:
        names = ", ".join(f"«{k}»" for k in unknown)
        raise ValidationFailed(f"Нельзя выгрузить неизвестные колонки: {names}",
                               fields={"columns": ",".join(unknown)})
    return [fmap[k] for k in keys]


def export_xlsx(session: Session, actor: Actor, entity: str, filters: dict, columns: list[str], *,
                sort: str = "created_at", desc: bool = True, pipeline_id: int | None = None,
                lang: str = "ru", dest: Path, progress: Callable[[int, int], None] | None = None,
                now: datetime | None = None) -> int:
    """Write the filtered, sorted view of `entity` as an .xlsx file at `dest`; returns the
    number of rows. The file appears at `dest` only when complete (written aside, then
    renamed). Records an "export" audit entry in `session` (the caller commits)."""
    now = now or utcnow()
    cols = export_columns(session, entity, columns, pipeline_id)
    if access.level(session, actor, entity, "export") == "none":
        raise AccessDenied("Нет прав на выгрузку этого раздела")
    ids = listing.ordered_ids(session, actor, entity, filters or {}, sort, desc, now, pipeline_id,
                              action="export")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    try:
        written = _write_workbook(session, entity, cols, ids, lang, part, progress)
        os.chmod(part, 0o600)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    audit.record(session, actor, "export", entity, None, {
        "filters": json.loads(normalized(filters or {})),
        "columns": [c.key for c in cols],
        "rows": written,
    })
    return written


def _chunks(session: Session, entity: str, ids: list[int], keys: list[str]) -> Iterator[pd.DataFrame]:
    """The view's rows, CHUNK at a time, as frames of resolved (typed) values in view order."""
    model = MODELS[entity]
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        rows = session.execute(select(model).where(model.id.in_(part), model.deleted_at.is_(None))
                               ).scalars().all()
        by_id = {r.id: r for r in rows}
        items = [by_id[i] for i in part if i in by_id]  # an item deleted meanwhile is skipped
        values = listing.resolve(session, entity, items, keys)  # (the identity map holds items weakly)
        yield pd.DataFrame.from_records(values, columns=keys) if values else pd.DataFrame(columns=keys)


def _typed(frame: pd.DataFrame, cols: list[FieldDef], lang: str) -> pd.DataFrame:
    """Cell values per column kind: numbers as floats/ints, datetimes naive in Moscow time,
    dates as dates, bools as Да/Нет, the rest as clean text. None where empty."""
    out = {}
    yes, no = ("Yes", "No") if lang == "en" else ("Да", "Нет")
    for fd in cols:
        s = frame[fd.key]
        if fd.kind in _DATETIME_KINDS:
            conv = pd.to_datetime(s, utc=True, errors="coerce")
            conv = conv.dt.tz_convert(TZ).dt.tz_localize(None).dt.floor("s")
            out[fd.key] = _with_fallback(_excel_dates(conv), s)
        elif fd.kind == "date":
            conv = pd.to_datetime(s.map(_as_date), errors="coerce")
            out[fd.key] = _with_fallback(_excel_dates(conv), s)
        elif fd.kind in _NUMERIC_KINDS:
            num = pd.to_numeric(s.map(_as_number), errors="coerce")
            out[fd.key] = _with_fallback(num.mask(num.abs() == float("inf")), s)  # Excel has no inf
        elif fd.kind == "int":
            num = pd.to_numeric(s.map(_as_number), errors="coerce")
            if num.dropna().map(lambda v: float(v).is_integer()).all():
                num = num.astype("Int64")
            out[fd.key] = _with_fallback(num, s)
        elif fd.kind == "bool":
            out[fd.key] = s.map(lambda v: yes if v in (True, "Да", "да", "true", "1", 1)
                                else (no if v in (False, "Нет", "нет", "false", "0", 0) else _text(v)))
        else:
            out[fd.key] = s.map(_text)
    typed = pd.DataFrame(out, index=frame.index).astype(object)
    return typed.where(typed.notna(), None)


def _with_fallback(converted: pd.Series, original: pd.Series) -> pd.Series:
    """Converted values; where a non-empty original did not convert, its text (no data lost)."""
    conv = converted.astype(object)
    bad = conv.isna() & original.notna() & (original.astype(object).map(lambda v: v != ""))
    if bad.any():
        conv[bad] = original[bad].map(_text)
    return conv


def _excel_dates(conv: pd.Series) -> pd.Series:
    """Excel shows no dates before 1900: those stay text (see _with_fallback)."""
    return conv.mask(conv.dt.year < 1900)


def _as_number(value):
    if isinstance(value, str):
        value = value.replace("\u00a0", "").replace(" ", "").replace(",", ".")
        return value or None
    if isinstance(value, Decimal):
        return float(value)
    return value


def _as_date(value):
    if isinstance(value, datetime):
        return (value.astimezone(TZ) if value.tzinfo else value).date()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return value


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = _ILLEGAL.sub("", str(value))
    return text[:_EXCEL_MAX_TEXT] if text else None


def _width(fd: FieldDef, header: str, sample: pd.DataFrame) -> float:
    width = _WIDTH.get(fd.kind)
    if width is None:
        lengths = [len(str(v)) for v in sample[fd.key].head(500) if v is not None]
        lengths.sort()
        width = lengths[int(len(lengths) * 0.9)] if lengths else 10  # the 90th percentile
    return float(min(max(width, len(header) * 0.9, 8) + 2, 60))


class _Cells:
    """Turns a row of typed values into write-only cells: number formats are looked up once
    per column (a template cell) and copied, which is far cheaper than styling each cell."""

    def __init__(self, ws, cols: list[FieldDef]):
        self.ws = ws
        self.kinds = [fd.kind for fd in cols]
        self.styled = []
        for fd in cols:
            fmt = {"money": FMT_MONEY, "number": FMT_NUMBER, "date": FMT_DATE,
                   "datetime": FMT_DATETIME, "activity": FMT_DATETIME}.get(fd.kind)
            cell = None
            if fmt:
                cell = WriteOnlyCell(ws)
                cell.number_format = fmt
            self.styled.append(cell)
        self.int_number = WriteOnlyCell(ws)
        self.int_number.number_format = FMT_INT_NUMBER

    def row(self, values) -> list:
        out = []
        for value, kind, styled in zip(values, self.kinds, self.styled):
            if value is None:
                out.append(None)
            elif isinstance(value, str):
                if value.startswith("="):  # text, never a formula (the data comes from web forms)
                    cell = WriteOnlyCell(self.ws, value)
                    cell.data_type = "s"
                    out.append(cell)
                else:
                    out.append(value)
            elif styled is not None:
                if kind == "number" and float(value).is_integer():
                    styled = self.int_number
                cell = WriteOnlyCell(self.ws, value)
                cell._style = copy(styled._style)  # as openpyxl's own cell copy does
                out.append(cell)
            else:
                out.append(value)
        return out


def _write_workbook(session: Session, entity: str, cols: list[FieldDef], ids: list[int], lang: str,
                    path: Path, progress: Callable[[int, int], None] | None) -> int:
    keys = [c.key for c in cols]
    headers = [c.title(lang) for c in cols]
    wb = Workbook(write_only=True)
    wb.properties.creator = "rxcrm"
    ws = wb.create_sheet((ENTITY_PLURAL_EN if lang == "en" else ENTITY_PLURAL)[entity])
    ws.freeze_panes = "A2"
    total = len(ids)
    chunks = _chunks(session, entity, ids, keys)
    first = _typed(next(chunks), cols, lang) if total else pd.DataFrame(columns=keys)
    for i, (fd, header) in enumerate(zip(cols, headers), 1):
        ws.column_dimensions[get_column_letter(i)].width = _width(fd, header, first)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDE6F0")
    head = []
    for header in headers:
        cell = WriteOnlyCell(ws, header)
        cell.data_type = "s"
        cell.font, cell.fill = bold, fill
        cell.alignment = Alignment(vertical="center", wrap_text=True)
        head.append(cell)
    ws.append(head)
    cells = _Cells(ws, cols)
    done = 0
    frame = first
    while True:
        for values in frame.itertuples(index=False, name=None):
            ws.append(cells.row(values))
        done += len(frame)
        if progress is not None and (total == 0 or len(frame)):
            progress(done, total)
        if done >= total:
            break
        nxt = next(chunks, None)
        if nxt is None:
            break
        frame = _typed(nxt, cols, lang)
    ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{done + 1}"
    wb.save(path)
    return done


# ---- the private file store -----------------------------------------------------------

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def export_dir() -> Path:
    """EXPORT_DIR (default <tmp>/rxcrm-exports), created 0700 and checked to be ours alone."""
    d = Path(settings.EXPORT_DIR or Path(tempfile.gettempdir()) / "rxcrm-exports")
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = d.stat()
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise RuntimeError(f"Каталог выгрузок {d} принадлежит другому пользователю")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(d, 0o700)
    return d


def export_filename(entity: str, when: datetime | None = None) -> str:
    """The name the user sees, e.g. «Сделки_2026-11-23.xlsx» (Moscow date)."""
    day = (when or utcnow()).astimezone(TZ).date().isoformat()
    return f"{ENTITY_PLURAL.get(entity, entity)}_{day}.xlsx"


def new_export(user_id: int, entity: str, *, now: datetime | None = None, filename: str = "") -> tuple[str, Path]:
    """A fresh token and the path to write the export of `user_id` to (see `export_xlsx`);
    `filename` is the name the download gets (default: «Сделки_2026-11-23.xlsx»). Other
    private files for one person (an import's report, its template) use this store too."""
    now = now or utcnow()
    d = export_dir()
    try:
        cleanup_exports(now=now)
    except OSError:
        pass
    token = secrets.token_urlsafe(24)
    meta = {"user_id": user_id, "entity": entity, "filename": filename or export_filename(entity, now),
            "created": now.isoformat()}
    fd = os.open(d / f"{token}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(meta, fh, ensure_ascii=False)
    return token, d / f"{token}.xlsx"


def _meta(d: Path, token: str) -> dict | None:
    try:
        meta = json.loads((d / f"{token}.json").read_text(encoding="utf-8"))
        meta["created"] = datetime.fromisoformat(meta["created"])
        return meta
    except (OSError, ValueError, KeyError, TypeError):
        return None


def export_file(token: str, user_id: int | None, *, now: datetime | None = None) -> tuple[Path, str] | None:
    """(path, file name for the user) of a finished export, only for the user who made it and
    only within EXPORT_TTL; None otherwise (unknown, malformed, expired, someone else's)."""
    if not user_id or not isinstance(token, str) or not _TOKEN.match(token):
        return None
    d = export_dir()
    meta = _meta(d, token)
    if meta is None or meta.get("user_id") != user_id:
        return None
    age = (now or utcnow()) - meta["created"]
    if age >= EXPORT_TTL or age < -timedelta(minutes=5):  # expired (or a clock gone wrong)
        return None
    path = d / f"{token}.xlsx"
    if not path.is_file():  # not finished (or already cleaned up)
        return None
    return path, str(meta.get("filename") or path.name)


def export_path(token: str, user_id: int | None, *, now: datetime | None = None) -> Path | None:
    found = export_file(token, user_id, now=now)
    return found[0] if found else None


def cleanup_exports(max_age: timedelta = EXPORT_TTL, *, now: datetime | None = None) -> int:
    """Delete exports older than `max_age` (and stray unfinished files); returns how many."""
    now = now or utcnow()
    d = export_dir()
    removed = 0
    for side in d.glob("*.json"):
        token = side.stem
        meta = _meta(d, token)
        if meta is not None and now - meta["created"] < max_age:
            continue
        for p in (side, d / f"{token}.xlsx"):
            p.unlink(missing_ok=True)
        removed += 1
    cutoff = now.timestamp() - max_age.total_seconds()
    for p in [*d.glob("*.xlsx"), *d.glob(".*.part")]:
        try:
            if not (d / f"{p.stem}.json").exists() and p.stat().st_mtime < cutoff:
                p.unlink(missing_ok=True)
                removed += 1
        except OSError:
            pass
    return removed


__all__ = ["CHUNK", "ENTITY_PLURAL", "EXPORT_TTL", "XLSX_MIME", "cleanup_exports", "export_columns",
           "export_dir", "export_file", "export_filename", "export_path", "export_xlsx", "new_export"]
