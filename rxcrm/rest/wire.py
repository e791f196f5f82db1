"""The Bitrix24 REST wire protocol (shared/BITRIX24_REST.md §1–2), as plain functions: how
a call's parameters are read (query string ∪ body; JSON, form-encoded or multipart; PHP-style
nested keys), looked up (case-insensitively), and how answers and errors are enveloped.

Nothing here knows an entity or a database: rxcrm/rest/methods.py does the work through the
services, rxcrm/rest/routes.py is the HTTP side."""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote_plus
from zoneinfo import ZoneInfo

PAGE = 50  # Bitrix24's fixed page size for list methods
TZ = ZoneInfo("Europe/Moscow")  # the portal's time zone: dates out are ISO 8601 with its offset


class RestError(Exception):
    """An error answer: HTTP `status`, `{"error": code, "error_description": description}`
    (Bitrix24 gives most CRM errors an empty code and status 400)."""

    def __init__(self, description: str, code: str = "", status: int = 400, **extra):
        super().__init__(description)
        self.description, self.code, self.status, self.extra = description, code, status, extra

    def body(self) -> dict:
        return {"error": self.code, "error_description": self.description, **self.extra}


def method_not_found() -> RestError:
    return RestError("Method not found!", "ERROR_METHOD_NOT_FOUND", 404)


def invalid_credentials() -> RestError:
    return RestError("Invalid request credentials", "INVALID_CREDENTIALS", 401)


def insufficient_scope() -> RestError:
    return RestError("The request requires higher privileges than provided by the webhook token",
                     "insufficient_scope", 401)


def not_found() -> RestError:
    return RestError("Not found")


def access_denied() -> RestError:
    return RestError("Access denied.")


# ---- parameters ----------------------------------------------------------------------------
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def _listify(value: Any) -> Any:
    """A PHP array is both a list and a map: a map whose keys are exactly "0".."n-1" in order
    is a list (recursively), as PHP's json_encode would give it."""
    if isinstance(value, dict):
        value = {k: _listify(v) for k, v in value.items()}
        if value and list(value) == [str(i) for i in range(len(value))]:
            return list(value.values())
        return value
    if isinstance(value, list):
        return [_listify(v) for v in value]
    return value


def _put(target: dict, key: str, value: str) -> None:
    """Store `value` under a PHP-style key (`a`, `a[b][c]`, `a[]`) into `target`."""
    base, _, rest = key.partition("[")
    rest = "[" + rest if rest else ""
    segments = _SEGMENT.findall(rest) if rest else []
    consumed = "".join(f"[{s}]" for s in segments)
    if rest and not rest.startswith(consumed):  # a malformed tail: PHP keeps the base only
        segments = []
    # PHP turns spaces and dots of the top-level name into underscores
    base = base.replace(" ", "_").replace(".", "_")
    if not base:
        return
    path = [base, *segments]
    node = target
    for i, seg in enumerate(path):
        last = i == len(path) - 1
        if seg == "":  # a[] appends: the next integer key
            ints = [int(k) for k in node if k.lstrip("-").isdigit()]
            seg = str(max(ints) + 1 if ints else 0)
        if last:
            node[seg] = value
        else:
            child = node.get(seg)
            if not isinstance(child, dict):
                child = node[seg] = {}
            node = child


def parse_pairs(pairs) -> dict:
    """Decoded (key, value) pairs with PHP-style keys → nested values (a multipart form's
    fields, or a query string's pairs)."""
    out: dict = {}
    for key, value in pairs:
        _put(out, key, value)
    return _listify(out)


def parse_query(qs: str) -> dict:
    """PHP's parse_str: `fields[TITLE]=x&fields[PHONE][0][VALUE]=1&select[]=ID` → nested
    values (leaves stay strings; `+` is a space; maps keyed 0..n-1 are lists)."""
    pairs = []
    for pair in (qs or "").split("&"):
        if pair:
            key, _, value = pair.partition("=")
            pairs.append((unquote_plus(key), unquote_plus(value)))
    return parse_pairs(pairs)


def parse_body(body: bytes, content_type: str) -> dict:
    """A request body's parameters: JSON (invalid JSON gives {} — Bitrix24's own quirk, the
    method then says which parameter is missing), else form-encoded PHP-style keys."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if not body:
        return {}
    if kind == "application/json":
        try:
            data = json.loads(body.decode("utf-8", errors="replace"))
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return parse_query(body.decode("utf-8", errors="replace"))


def merge(query: dict, body: dict) -> dict:
    """Query string ∪ body; a top-level key of the body replaces the query's."""
    return {**query, **body}


def param(params: dict, name: str, default: Any = None) -> Any:
    """A parameter by name, as Bitrix24's CRM handlers look it up: the exact name, then lower,
    UPPER, Capitalized, then any spelling."""
    for key in (name, name.lower(), name.upper(), name.capitalize()):
        if key in params:
            return params[key]
    low = name.lower()
    for key, value in params.items():
        if isinstance(key, str) and key.lower() == low:
            return value
    return default


def as_list(value: Any) -> list:
    """A list parameter given as a list, a PHP map {"0": …}, one scalar or nothing."""
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return value
    return [value]


def as_map(value: Any, what: str) -> dict:
    """A map parameter (`fields`, `filter`, `order`): refused with Bitrix24's words when it is
    not one (an empty list — PHP's empty array — is an empty map)."""
    if value is None or value == [] or value == "":
        return {}
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if not isinstance(value, dict):
        raise RestError(f"Parameter '{what}' must be array.")
    return value


def as_id(value: Any) -> int:
    """`id`/`ID` → a positive int, else «ID is not defined or invalid.»"""
    try:
        item_id = int(str(value).strip())
    except (TypeError, ValueError):
        item_id = 0
    if not 0 < item_id <= 2**31 - 1:
        raise RestError("ID is not defined or invalid.")
    return item_id


def as_start(value: Any) -> int:
    """`start`: PHP's intval (garbage is 0); -1 asks for no count."""
    try:
        return int(float(str(value).strip())) if value not in (None, "") else 0
    except (TypeError, ValueError):
        return 0


# ---- answers ---------------------------------------------------------------------------------
def iso(dt: datetime | None) -> str:
    """A moment as Bitrix24 writes it: ISO 8601 in the portal's zone with its offset."""
    if dt is None:
        return ""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(TZ).replace(microsecond=0).isoformat()


def time_block(started: float, finished: float | None = None, operating: float = 0.0) -> dict:
    """The `time` block every successful answer carries (b24pysdk requires all six keys)."""
    finished = finished if finished is not None else time.time()
    duration = max(0.0, finished - started)
    return {"start": round(started, 6), "finish": round(finished, 6), "duration": round(duration, 6),
            "processing": round(duration, 6),
            "date_start": iso(datetime.fromtimestamp(started, timezone.utc)),
            "date_finish": iso(datetime.fromtimestamp(finished, timezone.utc)),
            "operating_reset_at": int(started) + 600, "operating": round(operating, 6)}


class Answer:
    """A method's result with its paging: `next` only while more rows exist, `total` for
    lists."""

    def __init__(self, result: Any, total: int | None = None, next: int | None = None):  # noqa: A002
        self.result, self.total, self.next = result, total, next


def envelope(answer: Answer | Any, started: float, operating: float = 0.0) -> dict:
    if not isinstance(answer, Answer):
        answer = Answer(answer)
    out: dict = {"result": answer.result}
    if answer.next is not None:
        out["next"] = int(answer.next)
    if answer.total is not None:
        out["total"] = int(answer.total)
    out["time"] = time_block(started, operating=operating)
    return out


def php_section(section: dict) -> dict | list:
    """A batch answer's section as PHP's json_encode writes it: empty → [], keys exactly
    0..n-1 in order → a list, else an object."""
    if not section:
        return []
    keys = list(section)
    if keys == [str(i) for i in range(len(keys))] or keys == list(range(len(keys))):
        return list(section.values())
    return {str(k): v for k, v in section.items()}


def legacy_page(start: int) -> int:
    """The offset of a legacy list's page (crm.lead/deal/contact/company/activity.list): pages
    of 50, page = floor(start / 50) + 1 — `start=37` reads the first page."""
    return (max(0, start) // PAGE) * PAGE


def next_start(offset: int, total: int) -> int | None:
    """`next` of a page read from `offset`: only while rows remain after it."""
    return offset + PAGE if offset + PAGE < total else None


# ---- batch ---------------------------------------------------------------------------------
BATCH_MAX = 50
_REF = re.compile(r"\$(result|next|total|time|error)((?:\[[^\[\]]*\])+)")
_MISSING = object()


def batch_commands(params: dict) -> tuple[bool, list[tuple[str, str, str]]]:
    """`halt` and the commands of a batch call: [(key, method, query)], in order. `cmd` is a
    map or a list of "method?php-query" strings (already decoded once by the outer parse)."""
    halt = param(params, "halt", False)
    halt = halt not in (False, None, "", "0", 0, "false", "N", "n")
    cmd = param(params, "cmd")
    if isinstance(cmd, list):
        items = [(str(i), c) for i, c in enumerate(cmd)]
    elif isinstance(cmd, dict):
        items = [(str(k), c) for k, c in cmd.items()]
    else:
        raise RestError("Parameter 'cmd' must be array.", "ERROR_ARGUMENT", argument="cmd")
    out = []
    for key, text in items:
        method, _, query = str(text).partition("?")
        out.append((key, method.strip(), query))
    return halt, out


def _follow(results: dict, kind: str, path: list[str]) -> Any:
    node: Any = results.get(kind, {})
    for seg in path:
        if isinstance(node, dict) and seg in node:
            node = node[seg]
        elif isinstance(node, dict) and seg.lower() in {str(k).lower() for k in node}:
            node = next(v for k, v in node.items() if str(k).lower() == seg.lower())
        elif isinstance(node, list) and seg.isdigit() and int(seg) < len(node):
            node = node[int(seg)]
        else:
            return _MISSING
    return node


def resolve_refs(value: Any, results: dict) -> Any:
    """A command's parameters with `$result[key][path…]` (and `$next`, `$total`, `$time`,
    `$error`) replaced by what earlier commands answered: a whole-value reference becomes the
    value (any type); a reference inside a string is substituted when it is a string or a
    number. A path that does not exist (a page after the last one) resolves to None, so a
    filter on it matches nothing."""
    if isinstance(value, dict):
        return {k: resolve_refs(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_refs(v, results) for v in value]
    if not isinstance(value, str) or "$" not in value:
        return value
    whole = _REF.fullmatch(value)
    if whole:
        got = _follow(results, whole.group(1), _SEGMENT.findall(whole.group(2)))
        return None if got is _MISSING else got

    def sub(m: re.Match) -> str:
        got = _follow(results, m.group(1), _SEGMENT.findall(m.group(2)))
        if isinstance(got, bool) or not isinstance(got, (str, int, float)):
            return "" if got is _MISSING or got is None else m.group(0)
        return str(got)
    return _REF.sub(sub, value)


__all__ = ["BATCH_MAX", "PAGE", "Answer", "RestError", "access_denied", "as_id", "batch_commands", "as_list", "as_map", "as_start", "envelope",
           "insufficient_scope", "invalid_credentials", "iso", "legacy_page", "merge", "method_not_found", "next_start", "not_found",
           "param", "parse_body", "parse_pairs", "parse_query", "php_section", "resolve_refs", "time_block"]
