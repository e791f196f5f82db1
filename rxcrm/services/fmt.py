"""Russian formats for money and dates (Babel): `15 000 ₽`, `24 ноября 19:00`."""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

from rxcrm.settings import TZ

from .phones import normalize_phone

NBSP_THIN = "\u00a0"


def money(value: Decimal | float | int | None, currency: str = "RUB") -> str:
    if value is None:
        return ""
    sign = "₽" if currency in ("RUB", "", None) else currency
    text = format_decimal(round(Decimal(value)), format="#,##0", locale="ru_RU")
    return f"{text}{NBSP_THIN}{sign}"


THIN = "\u202f"  # narrow no-break space: thousands on the analytics page


def amount(value: Decimal | float | int | None) -> str:
    """`1 234 567 ₽` with thin spaces between thousands (charts and analytics tables)."""
    return "" if value is None else f"{count(round(Decimal(value)))}{NBSP_THIN}₽"


def count(value: int | float | Decimal | None) -> str:
    """`12 345` with thin spaces between thousands."""
    return "" if value is None else format_decimal(value, format="#,##0", locale="ru_RU").replace("\u00a0", THIN)


def percent(value: float | None) -> str:
    """`12,5 %` (Russian decimal comma); empty for no value."""
    return "" if value is None else format_decimal(value, format="0.#", locale="ru_RU") + "\u00a0%"


def number(value) -> str:
    return "" if value is None else format_decimal(value, locale="ru_RU")


def local(dt: datetime | None) -> datetime | None:
    return dt.astimezone(TZ) if dt else None


def dt_short(dt: datetime | None, now: datetime | None = None) -> str:
    """`24 ноября 19:00`; adds the year when it is not the current one."""
    if dt is None:
        return ""
    dt = local(dt)
    now = local(now) if now else datetime.now(TZ)
    pattern = "d MMMM HH:mm" if dt.year == now.year else "d MMMM y HH:mm"
    return format_datetime(dt, pattern, locale="ru_RU")


def date_short(d: date | datetime | None) -> str:
    if d is None:
        return ""
    if isinstance(d, datetime):
        d = local(d).date()
    return format_date(d, "d MMMM y", locale="ru_RU")


def short_name(full_name: str | None) -> str:
    """`Иванова Мария Олеговна` → `Иванова М. О.` (cards, tight columns)."""
    parts = (full_name or "").split()
    if len(parts) < 2:
        return full_name or ""
    return parts[0] + " " + " ".join(p[0] + "." for p in parts[1:3])


def phone(value: str | None) -> str:
    """A phone as shown: Russian numbers as `+7 987 654-32-10`, others as typed."""

    d = normalize_phone(value or "")
    if len(d) == 11 and d[0] == "7":
        return f"+7 {d[1:4]} {d[4:7]}-{d[7:9]}-{d[9:11]}"
    return (value or "").strip()


# ---- what people type: ДД.ММ.ГГГГ and ЧЧ:ММ (forms show these whatever the browser's language) ----

def parse_date(text) -> date | None:
    """`24.11.2026` (also `24.11.26`, `24/11/2026`) or ISO `2026-11-24` → a date; None when it
    is not a real date."""
    import re

    s = str(text or "").strip()
    try:
        if re.match(r"\d{4}-\d{2}-\d{2}(?:$|[T ])", s):
            return date.fromisoformat(s[:10])
        m = re.fullmatch(r"(\d{1,2})[./](\d{1,2})[./](\d{2}|\d{4})", s)
        if m:
            year = int(m[3]) + (2000 if len(m[3]) == 2 else 0)
            return date(year, int(m[2]), int(m[1]))
    except ValueError:
        return None
    return None


def parse_time(text):
    """`14:30`, `9:05`, `14.30`, `1430` → a time; None when it is not a time of day."""
    import re
    from datetime import time as _time

    s = str(text or "").strip()
    m = re.fullmatch(r"(\d{1,2})[:.](\d{2})", s) or re.fullmatch(r"(\d{2})(\d{2})", s)
    if not m:
        return None
    h, mi = int(m[1]), int(m[2])
    return _time(h, mi) if 0 <= h < 24 and 0 <= mi < 60 else None


def date_input(d: date | datetime | None) -> str:
    """A date as a form shows it: `24.11.2026` (a datetime in Moscow time)."""
    if d is None:
        return ""
    if isinstance(d, datetime):
        d = local(d).date()
    return d.strftime("%d.%m.%Y")


def time_input(dt: datetime | None) -> str:
    """A time of day as a form shows it: `14:30` (Moscow time)."""
    return local(dt).strftime("%H:%M") if dt else ""


# ---- reading dates as people and other systems write them ----------------------------------
_MOMENT_FORMATS = ("%d.%m.%Y", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%y", "%d.%m.%y %H:%M",
                   "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%d/%m/%Y", "%d/%m/%Y %H:%M")


_RU_MOMENT = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


def parse_moment(value, tz=TZ) -> datetime | None:
    """A date or moment as people, spreadsheets and integrations write it: a datetime or
    date object, ISO 8601 with an offset (a GET's raw `+` arrives as a space), `YYYY-MM-DD`,
    `DD.MM.YYYY[ HH:MM[:SS]]`, `DD.MM.YY`, `DD/MM/YYYY`. A moment without an offset is in
    `tz` (the office's). None for nothing; ValueError for anything else."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz)
    text = str(value or "").strip()
    if not text:
        return None
    m = _RU_MOMENT.match(text)  # the common case first: ДД.ММ.ГГГГ[ ЧЧ:ММ[:СС]]
    if m:
        d, mo, y, h, mi, sec = (int(g) if g else 0 for g in m.groups())
        try:
            return datetime(y, mo, d, h, mi, sec, tzinfo=tz)
        except ValueError:
            raise ValueError(f"Неверная дата: «{value}»") from None
    if re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})? \d{2}:\d{2}$", text):
        text = text[:-6] + "+" + text[-5:]  # "2024-05-21T12:00:00 03:00": a GET's raw "+" came as a space
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        dt = None
        for fmt_ in _MOMENT_FORMATS:
            try:
                dt = datetime.strptime(text, fmt_)
                break
            except ValueError:
                continue
        if dt is None:
            raise ValueError(f"Неверная дата: «{value}»") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)
