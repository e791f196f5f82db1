"""Working days of the Russian production calendar (the activity discipline counts in them).

A working day is one the `holidays` package's calendar says is worked: not a weekend
(unless a transferred working Saturday) and not a public holiday or a transferred day
off (e.g. the New Year holidays 1–8 January). Working hours are 09:00–18:00 Moscow."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache

import holidays

from rxcrm.rules.automation import ACTIVITY_DISCIPLINE
from rxcrm.settings import TZ

WORK_START, WORK_END = time(9, 0), time(18, 0)
MONTHS_GEN = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября",
              "октября", "ноября", "декабря")


@lru_cache(maxsize=64)
def _calendar(year: int, country: str):
    return holidays.country_holidays(country, years=year)


def is_working_day(d: date, country: str | None = None) -> bool:
    country = country or ACTIVITY_DISCIPLINE.get("calendar", "RU")
    return _calendar(d.year, country).is_working_day(d)


def add_working_days(d: date, n: int, country: str | None = None) -> date:
    """The n-th working day after `d` (n ≥ 1); n == 0 gives `d` itself when it is a
    working day, else the next working day."""
    if isinstance(d, datetime):
        d = d.date()
    if n <= 0:
        while not is_working_day(d, country):
            d += timedelta(days=1)
        return d
    while n > 0:
        d += timedelta(days=1)
        if is_working_day(d, country):
            n -= 1
    return d


def next_working_hour(dt: datetime) -> datetime:
    """`dt` rounded up to a whole hour within working hours of a working day (Moscow)."""
    local = dt.astimezone(TZ)
    if local.minute or local.second or local.microsecond:
        local = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if is_working_day(local.date()) and WORK_START <= local.time() < WORK_END:
        return local
    d = local.date()
    if local.time() >= WORK_END or not is_working_day(d):
        d = add_working_days(d, 1) if local.time() >= WORK_END else add_working_days(d, 0)
    return datetime.combine(d, WORK_START, tzinfo=TZ)


def date_long(d: date) -> str:
    """12 января 2027."""
    return f"{d.day} {MONTHS_GEN[d.month - 1]} {d.year}"
