"""Phone and email normalisation for storage and search (a phone matches in any format: +7, 8, spaces, brackets, a tail)."""
from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

_NON_DIGIT = re.compile(r"\D+")


def digits(value: str) -> str:
    return _NON_DIGIT.sub("", value or "")


@lru_cache(maxsize=65536)  # pure, and an import asks for each number several times
def normalize_phone(value: str) -> str:
    """The comparable digits of a phone: Russian numbers as 7XXXXXXXXXX.

    `8(987) 654-32-10`, `(987) 654-32-10`, `+7 987 654 32 10` → `79876543210`.
    Fragments shorter than a full number are returned as their digits."""
    d = digits(value)
    if len(d) == 11 and d[0] == "8":
        return "7" + d[1:]
    if len(d) == 10 and d[0] in "3489":
        return "7" + d
    if len(d) > 11 or (value or "").strip().startswith("+"):
        try:
            num = phonenumbers.parse(value, "RU")
            return f"{num.country_code}{num.national_number}"
        except phonenumbers.NumberParseException:
            return d
    return d


def phone_search_key(query: str) -> str | None:
    """The reversed digits to match as a prefix of `norm_rev`, or None when the
    query does not look like a phone (fewer than 5 digits)."""
    d = digits(query)
    if len(d) < 5:
        return None
    return normalize_phone(query)[::-1] if len(d) >= 10 else d[::-1]


def normalize_email(value: str) -> str:
    return (value or "").strip().lower()


def prefix_range(prefix: str) -> tuple[str, str]:
    """[lo, hi) bounds matching every string that starts with `prefix` (index-friendly)."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def comm_row(entity_type: str, entity_id: int, kind: str, value: str, value_type: str = "work") -> dict:
    """A `communication` row (as a dict for bulk inserts) with its normalised forms."""
    norm = normalize_phone(value) if kind == "phone" else normalize_email(value)
    return {"entity_type": entity_type, "entity_id": entity_id, "kind": kind,
            "value_type": value_type, "value": value, "norm": norm, "norm_rev": norm[::-1]}


def fold(text: str | None) -> str:
    """The searched form of a text: lower-cased, «ё» as «е» (search_text and the query alike)."""
    return (text or "").lower().replace("ё", "е")


def search_text(*parts: str | None) -> str:
    """The text a free-text search scans (title, names, emails), folded (see `fold`)."""
    return " ".join(fold(p.strip()) for p in parts if p and p.strip())
