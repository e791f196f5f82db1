"""Reading (and writing) the files of a CSV/Excel import, streamed, with no database and no UI.

An import starts with `sniff`: it recognises the kind of an uploaded file, its text encoding
and CSV delimiter, and returns the header row, a short preview and the number of data rows,
so that the person can map columns and see what will happen. `rows` then yields every data
row with the number a person sees for it in Excel or a text editor, so that an error report
can say «Строка 1234» and an interrupted job can resume after the last row it finished.

Kinds of files (recognised by content first, then by the name's extension):

* ``csv`` — text with ``;``, ``,``, tab or ``|`` between values (stdlib `csv`). The encoding is
  taken from a BOM (UTF-8, UTF-16), else the whole file is checked to be valid UTF-8, else it
  is Windows-1251 (what Excel and 1C write on a Russian Windows). The delimiter is the
  candidate that splits the first records most consistently into the header's columns; it
  is counted with `csv.reader`, so delimiters inside quotes do not count. (`csv.Sniffer`
  is not used: on ties its fixed preference picks ``,`` even for ``ID;Название, лида;Имя``.)
  Row numbers count CSV *records*, not physical lines: a quoted value with a newline stays
  inside one row, as Excel shows it.
* ``xlsx`` — openpyxl in read-only mode, values as stored (``data_only``), active sheet.
  Row numbers are the sheet's row indexes.
* ``xls`` — a real BIFF workbook, read with xlrd (which loads the file whole; BIFF sheets
  hold at most 65 536 rows).
* ``html`` — an ``.xls`` that is an HTML table, as Bitrix24's «Экспорт в Excel» writes it:
  `html.parser` fed in chunks, ``<tr>`` is a row, ``<td>``/``<th>`` a cell, ``<br>`` a
  newline. Row numbers count ``<tr>``.

Memory stays flat whatever the size of the file (tested with 200 000 rows): text is decoded
through `io.TextIOWrapper`, xlsx sheets are parsed as a stream, and no function keeps more
than the preview. Undecodable bytes do not stop the decoder; they become a marker character,
so the error can name the row that holds them.

The writers make the rejected-rows report and the import template: every cell is text, so
that a corrected file re-imports exactly as typed (leading zeros, ``+7`` phones)."""
from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from html.parser import HTMLParser
from itertools import chain, islice
from pathlib import Path
from typing import TextIO

import openpyxl
import xlrd
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from .errors import ValidationFailed

PREVIEW_ROWS = 10
SUPPORTED = "Поддерживаются файлы .csv, .xlsx, .xls"

_HEAD_BYTES = 8192  # enough to see a signature, a BOM and an HTML <meta charset>
_BLOCK = 1 << 20  # UTF-8 validation reads 1 MB at a time
_HTML_CHUNK = 1 << 16  # characters fed to the HTML parser at a time
_MAX_LINE = 1_000_000  # characters; a longer physical line is not a CSV a person made
_SNIFF_RECORDS = 20  # records looked at to choose the delimiter
_EXCEL_CELL = 32_767  # the most characters an Excel cell holds

_BOMS = (  # (BOM, codec to read the file with, codec for the bytes after the BOM)
    (codecs.BOM_UTF8, "utf-8-sig", "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16", "utf-16-be"),
)
_EXTENSIONS = {".csv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx", ".xls": "xls"}
_DELIMITERS = (";", ",", "\t", "|")  # on a tie the first wins: ";" is what Russian Excel writes
_DELIMITER_ALIASES = {**{d: d for d in _DELIMITERS}, "tab": "\t", "\\t": "\t"}
_ENCODING_LABELS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16", "cp1251": "Windows-1251"}

_BAD = "\udfff"  # stands for undecodable bytes; no codec used here ever yields a lone surrogate
_MARK_ERRORS = "rxcrm.import_files.mark"
codecs.register_error(_MARK_ERRORS, lambda exc: (_BAD, exc.end))

_MARKUP = re.compile(r"<(?:!doctype|html|head|body|meta|table)\b", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-z0-9_.:-]+)""", re.IGNORECASE)
_HTML_SPACE = re.compile(r"[ \t\r\n\f]+")  # not \xa0: &nbsp; is a real space in HTML
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\[[^\]]*\]')  # quoted text and [$-419]-like sections


class FileError(ValidationFailed):
    """The uploaded file cannot be read; the message says why, in Russian."""


@dataclass
class FileInfo:
    """What `sniff` found out about a file; `rows` needs it to read the file again."""

    kind: str  # "csv" | "xlsx" | "xls" (real BIFF) | "html" (an .xls that is an HTML table)
    encoding: str  # csv/html: a Python codec name ("utf-8", "utf-8-sig", "utf-16", "cp1251"…)
    delimiter: str  # csv: ";", ",", "\t" or "|"
    headers: list[str] = field(default_factory=list)
    preview: list[list[str]] = field(default_factory=list)  # up to 10 data rows, as text
    rows_estimate: int = 0  # data rows: exact, except an xlsx with many rows (its dimension)
    creator: str = ""  # xlsx document property; our own export writes "rxcrm"


# --- the public API -------------------------------------------------------------------------

def sniff(path: Path, name: str, *, encoding: str | None = None,
          delimiter: str | None = None) -> FileInfo:
    """Recognise the file at `path` (uploaded as `name`): kind, encoding, delimiter, header
    (the first non-empty row), preview and number of data rows. `encoding` and `delimiter`,
    when given, replace the detected ones (csv and html only). A file without any non-empty
    row is refused («Файл пуст»); a header without data rows is not (rows_estimate 0)."""
    path = Path(path)
    kind = _kind(path, name)
    if kind == "xlsx":
        return _sniff_xlsx(path)
    info = FileInfo(kind, "", "")
    if kind in ("csv", "html"):
        info.encoding = _codec(encoding) if encoding else _detect_encoding(path, kind)
    if kind == "csv":
        info.delimiter = _delimiter(delimiter) if delimiter else _detect_delimiter(path, info.encoding)
    records = _records(path, info)
    _read_head(info, records)
    info.rows_estimate = len(info.preview) + sum(1 for _ in records)
    return info


def rows(path: Path, info: FileInfo, *, start: int = 0) -> Iterator[tuple[int, list]]:
    """Yield ``(row_number, values)`` for every non-empty data row after the header, values
    padded or cut to ``len(info.headers)``. csv/html values are stripped strings; xlsx/xls
    values are typed (str, int, float, datetime, date, bool; an empty cell is ""). Rows
    numbered ``<= start`` are skipped, which resumes a job that stopped after row `start`."""
    records = _records(Path(path), info)
    next(records, None)  # the header
    width = len(info.headers)
    for number, values in records:
        if number > start:
            yield number, _fit(values, width)


def write_xlsx(path: Path, headers: list[str], rows: Iterable[list], *, sheet: str = "Ошибки") -> None:
    """Write `headers` (bold, frozen) and `rows` to a new .xlsx, streaming. Every cell is text
    (type "s", format "@"), so that the file re-imports exactly as written; column widths
    follow the header and the first 100 rows."""
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet[:31])
    ws.freeze_panes = "A2"
    source = iter(rows)
    first = list(islice(source, 100))
    for column, width in enumerate(_widths(headers, first), 1):
        ws.column_dimensions[get_column_letter(column)].width = width
    bold = Font(bold=True)
    ws.append([_text_cell(ws, h, bold) for h in headers])
    for row in chain(first, source):
        ws.append([_text_cell(ws, v) for v in row])
    wb.save(path)


def write_template(path: Path, headers: list[str], sample: list[str] | None = None) -> None:
    """Write an import template: the headers and, if given, one sample row."""
    write_xlsx(path, headers, [sample] if sample else [], sheet="Импорт")


# --- kind, encoding, delimiter --------------------------------------------------------------

def _kind(path: Path, name: str) -> str:
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES)
    if not head:
        raise FileError("Файл пуст")
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    if _is_markup(head):
        return "html"
    kind = _EXTENSIONS.get(Path(name).suffix.lower())
    if kind is None:
        raise FileError(SUPPORTED)
    return kind


def _is_markup(head: bytes) -> bool:
    """Does the file start with "<" (after a BOM and blanks) and look like HTML?"""
    text = next((head[len(bom):].decode(codec, "ignore") for bom, _, codec in _BOMS
                 if head.startswith(bom)), None)
    if text is None:
        text = head.decode("latin-1")
    if not text.lstrip().startswith("<"):
        return False
    if "urn:schemas-microsoft-com:office:spreadsheet" in text:
        raise FileError("Формат «XML-таблица Excel 2003» не поддерживается — сохраните файл как .xlsx")
    return bool(_MARKUP.search(text))


def _codec(name: str) -> str:
    """The Python name of text codec `name` ("Windows-1251" → "cp1251"), or FileError."""
    try:
        io.TextIOWrapper(io.BytesIO(), encoding=name)  # also refuses base64, rot13 and the like
        return codecs.lookup(name).name
    except LookupError:
        raise FileError(f"Неизвестная кодировка: {name}") from None


def _delimiter(value: str) -> str:
    found = _DELIMITER_ALIASES.get(value.lower())
    if found is None:
        raise FileError("Разделитель может быть только «;», «,», «|» или табуляцией")
    return found


def _detect_encoding(path: Path, kind: str) -> str:
    """BOM first; for HTML its <meta charset>; else UTF-8 if the whole file is valid UTF-8,
    else Windows-1251."""
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES)
    for bom, codec, _ in _BOMS:
        if head.startswith(bom):
            return codec
    meta = _META_CHARSET.search(head) if kind == "html" else None
    if meta:
        try:
            return _codec(meta.group(1).decode("ascii"))
        except FileError:
            pass  # a charset Python does not know: decide by the bytes, as below
    return "utf-8" if _is_utf8(path) else "cp1251"


def _is_utf8(path: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as f:
        try:
            while block := f.read(_BLOCK):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _detect_delimiter(path: Path, encoding: str) -> str:
    """The candidate that gives the header more than one column and the most of the first
    records the header's number of columns (then the most columns; then `_DELIMITERS` order).
    A file where no candidate splits the header has one column: ";" then."""
    with _open_text(path, encoding) as f:
        sample = list(_head_lines(f))

    def score(delimiter: str) -> tuple[int, int]:
        try:
            records = [r for r in csv.reader(sample, delimiter=delimiter) if any(v.strip() for v in r)]
        except csv.Error:  # an unclosed quote; reading the rows will say where
            return (0, 0)
        width = _width(records[0]) if records else 0
        if width < 2:
            return (0, 0)
        return (sum(_width(r) == width for r in records), width)

    return max(_DELIMITERS, key=score)


def _width(record: list[str]) -> int:
    """Number of values without the empty ones at the end (a trailing ";" is common)."""
    while record and not record[-1].strip():
        record = record[:-1]
    return len(record)


def _head_lines(f: TextIO) -> Iterator[str]:
    """The physical lines of the first `_SNIFF_RECORDS` non-blank records."""
    records, quoted = 0, False
    for line in _lines(f):
        yield line
        quoted ^= line.count('"') % 2 == 1
        records += not quoted and bool(line.strip())
        if records >= _SNIFF_RECORDS:
            return


# --- reading rows ---------------------------------------------------------------------------

def _records(path: Path, info: FileInfo) -> Iterator[tuple[int, list]]:
    """Every non-empty row of the file, the header included, as (row_number, values)."""
    readers = {"csv": _csv_records, "html": _html_records, "xlsx": _xlsx_file_records,
               "xls": _xls_records}
    return _non_empty(readers[info.kind](path, info))


def _non_empty(records: Iterator[tuple[int, list]]) -> Iterator[tuple[int, list]]:
    return ((n, values) for n, values in records if any(v != "" for v in values))


def _read_head(info: FileInfo, records: Iterator[tuple[int, list]]) -> tuple[int, int]:
    """Take the header and the preview from `records` into `info`; return the header's row
    number and the last row number read. The caller may go on with `records`."""
    first = next(records, None)
    if first is None:
        raise FileError("Файл пуст")
    header_number, header = first
    names = [_display(v).replace("\ufeff", "").strip() for v in header]
    while names and not names[-1]:
        names.pop()  # blank columns after the last header are formatting, not data
    info.headers = [n or f"Колонка {i}" for i, n in enumerate(names, 1)]
    last = header_number
    for last, values in islice(records, PREVIEW_ROWS):
        info.preview.append([_display(v) for v in _fit(values, len(info.headers))])
    return header_number, last


def _fit(values: list, width: int) -> list:
    return values[:width] if len(values) >= width else values + [""] * (width - len(values))


def _open_text(path: Path, encoding: str) -> TextIO:
    return path.open(encoding=encoding, errors=_MARK_ERRORS, newline="")


def _lines(f: TextIO) -> Iterator[str]:
    """Physical lines of `f` without NUL characters, refusing a line too long to be a row."""
    while line := f.readline(_MAX_LINE):
        if len(line) == _MAX_LINE and not line.endswith(("\n", "\r")):
            raise FileError("В файле есть строка длиннее миллиона символов — это не похоже на CSV")
        yield line.replace("\0", "")


def _check_decoded(values: list[str], number: int, encoding: str) -> None:
    if any(_BAD in v for v in values):
        label = _ENCODING_LABELS.get(encoding, encoding)
        advice = "выберите Windows-1251" if label == "UTF-8" else "выберите другую кодировку"
        raise FileError(f"Строка {number}: файл не в кодировке {label} — {advice}")


def _csv_records(path: Path, info: FileInfo) -> Iterator[tuple[int, list]]:
    with _open_text(path, info.encoding) as f:
        reader = csv.reader(_lines(f), delimiter=info.delimiter)
        number = 0
        while (record := _next_record(reader, number + 1)) is not None:
            number += 1
            _check_decoded(record, number, info.encoding)
            yield number, [v.strip() for v in record]


def _next_record(reader, number: int) -> list[str] | None:
    try:
        return next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:  # e.g. an unclosed quote swallowing the rest of the file
        raise FileError(f"Строка {number}: не удалось разобрать строку — "
                        "проверьте, что все кавычки закрыты") from exc


def _html_records(path: Path, info: FileInfo) -> Iterator[tuple[int, list]]:
    with _open_text(path, info.encoding) as f:
        for number, values in enumerate(_html_rows(f), 1):
            _check_decoded(values, number, info.encoding)
            yield number, values


def _html_rows(f: TextIO) -> Iterator[list[str]]:
    parser = _TableParser()
    while chunk := f.read(_HTML_CHUNK):
        parser.feed(chunk)
        yield from parser.take()
    parser.close()
    yield from parser.take()


class _TableParser(HTMLParser):
    """Rows of the top-level <table>s. Omitted </td> and </tr> are closed as browsers do;
    a nested table's text goes into the cell that holds it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self._done: list[list[str]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._depth = 0  # of <table> nesting

    def take(self) -> list[list[str]]:
        done, self._done = self._done, []
        return done

    def handle_starttag(self, tag, attrs):
        if tag == "br" and self._cell is not None:
            self._cell.append("\n")
        elif tag == "table":
            self._depth += 1
        elif self._depth == 1 and tag == "tr":
            self._end_row()
            self._row = []
        elif self._depth == 1 and tag in ("td", "th"):
            self._end_cell()
            if self._row is None:
                self._row = []
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            if self._depth == 1:
                self._end_row()
            self._depth = max(self._depth - 1, 0)
        elif self._depth == 1 and tag == "tr":
            self._end_row()
        elif self._depth == 1 and tag in ("td", "th"):
            self._end_cell()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(_HTML_SPACE.sub(" ", data))

    def close(self):
        super().close()
        self._end_row()

    def _end_cell(self):
        if self._cell is not None and self._row is not None:
            lines = "".join(self._cell).replace("\0", "").split("\n")
            self._row.append("\n".join(line.strip(" ") for line in lines).strip())
        self._cell = None

    def _end_row(self):
        self._end_cell()
        if self._row is not None:
            self._done.append(self._row)
        self._row = None


def _read_guarded(iterable: Iterable) -> Iterator:
    """`iterable`'s items; a damaged workbook's error, of whatever type, becomes FileError."""
    iterator = iter(iterable)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - parsers of a foreign file fail in many ways
            raise FileError(f"Не удалось прочитать файл: {exc}") from exc
        yield item


def _open_xlsx(path: Path):
    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - not a zip, not a workbook, damaged XML…
        raise FileError(f"Не удалось прочитать файл: {exc}") from exc


def _sheet(wb):
    """The active sheet, or the first worksheet when the active one is a chart."""
    if wb.active in wb.worksheets:
        return wb.active
    if wb.worksheets:
        return wb.worksheets[0]
    raise FileError("В файле нет листа с данными")


def _sniff_xlsx(path: Path) -> FileInfo:
    wb = _open_xlsx(path)
    try:
        sheet = _sheet(wb)
        dimension = sheet.max_row  # from <dimension>; before _xlsx_records resets it
        info = FileInfo("xlsx", "", "", creator=wb.properties.creator or "")
        records = _non_empty(_xlsx_records(sheet))
        header_number, last = _read_head(info, records)
        if len(info.preview) < PREVIEW_ROWS:  # the sheet ended within the preview
            info.rows_estimate = len(info.preview)
        elif dimension and dimension >= last:
            info.rows_estimate = dimension - header_number
        else:  # no dimension, or a wrong one
            info.rows_estimate = len(info.preview) + sum(1 for _ in records)
        return info
    finally:
        wb.close()


def _xlsx_file_records(path: Path, info: FileInfo) -> Iterator[tuple[int, list]]:
    wb = _open_xlsx(path)
    try:
        yield from _xlsx_records(_sheet(wb))
    finally:
        wb.close()


def _xlsx_records(sheet) -> Iterator[tuple[int, list]]:
    sheet.reset_dimensions()  # read every row, whatever a stale <dimension> says
    for number, cells in enumerate(_read_guarded(sheet.iter_rows(min_row=1)), 1):
        yield number, [_xlsx_value(c) for c in cells]


def _xlsx_value(cell):
    """The cell's value; a date shown without a time comes as `date`, not midnight."""
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, datetime) and value.time() == time() and not _shows_time(cell.number_format):
        return value.date()
    return value


def _shows_time(number_format: str) -> bool:
    return bool(re.search(r"[hs]", _FORMAT_LITERALS.sub("", number_format or ""), re.IGNORECASE))


def _xls_records(path: Path, info: FileInfo) -> Iterator[tuple[int, list]]:
    try:
        book = xlrd.open_workbook(path, on_demand=True)
        sheet = book.sheet_by_index(0)
    except Exception as exc:  # noqa: BLE001 - xlrd raises XLRDError, CompDocError, struct.error…
        raise FileError(f"Не удалось прочитать файл: {exc}") from exc
    try:
        for index in range(sheet.nrows):
            yield index + 1, [_xls_value(c, book.datemode) for c in sheet.row(index)]
    finally:
        book.release_resources()


def _xls_value(cell, datemode: int):
    kind, value = cell.ctype, cell.value
    if kind == xlrd.XL_CELL_TEXT:
        return value.strip()
    if kind == xlrd.XL_CELL_NUMBER:
        return int(value) if value.is_integer() else value
    if kind == xlrd.XL_CELL_DATE:
        try:
            moment = xlrd.xldate.xldate_as_datetime(value, datemode)
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return value
        return moment.date() if value.is_integer() else moment
    if kind == xlrd.XL_CELL_BOOLEAN:
        return bool(value)
    if kind == xlrd.XL_CELL_ERROR:
        return xlrd.error_text_from_code.get(value, "")
    return ""


# --- values as text -------------------------------------------------------------------------

def _display(value) -> str:
    """A value as a person would type it: 05.03.2024, 05.03.2024 14:30, 1234.5, Да."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Да" if value else "Нет"
    if isinstance(value, datetime):
        return value.strftime("%d.%m.%Y %H:%M:%S" if value.second else "%d.%m.%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, float):
        return format(value, ".15g")  # Excel's precision: 0.1 + 0.2 shows as 0.3
    return str(value)


def _text_cell(ws, value, font: Font | None = None):
    text = ILLEGAL_CHARACTERS_RE.sub("", _display(value))[:_EXCEL_CELL]
    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"  # never a formula or a number, even for "=1+1" or "007"
    cell.number_format = "@"
    if font is not None:
        cell.font = font
    return cell


def _widths(headers: list[str], rows: list[list]) -> list[float]:
    """Column widths in characters: the longest line of the header or a sample value, 8…60."""
    widths = []
    for i, header in enumerate(headers):
        values = [header] + [_display(r[i]) for r in rows if i < len(r)]
        longest = max(len(line) for v in values for line in v.split("\n"))
        widths.append(min(max(longest + 2, 8), 60))
    return widths
