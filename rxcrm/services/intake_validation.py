"""Intake validation: the JSON bodies of the marketplace, landing forms and education
system checked field by field; `validate` raises `IntakeError(status, field, message)`
naming the field path (``client.phone``). Nothing here touches the database."""
from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal

from rxcrm.models.integration import INTEGRATIONS

from . import create
from .errors import ValidationFailed

MARKETPLACE_EVENTS = ("favorite_added", "compare_added", "favorite_removed", "compare_removed", "cart_added")
LANDING_FORMS = ("question", "application")
# education event → stage code of the ДПО pipeline
EDUCATION_STAGES = {"application_submitted": "REGISTRATION", "contract_created": "CONTRACT",
                    "invoice_issued": "PREPAYMENT", "payment_received": "ENROLMENT",
                    "enrolment_order": "STUDY"}

MAX_DEPTH = 16
MAX_MONEY = Decimal("999999999999")
MAX_ID = 2**31 - 1
EMAIL_RE = create.EMAIL_RE


class IntakeError(Exception):
    """A refused intake request: HTTP status, the field path (or None) and a message."""

    def __init__(self, status: int, field: str | None, message: str):
        super().__init__(message)
        self.status, self.field, self.message = status, field, message

    def answer(self) -> dict:
        return {"error": self.message, "field": self.field}


# ---- validation -----------------------------------------------------------------------

def _bad(field: str | None, message: str, status: int = 422) -> IntakeError:
    return IntakeError(status, field, message)


def _check_tree(value, path: str = "", depth: int = 0) -> None:
    """Anything the database's JSON cannot store is refused up front, naming where it is."""
    if depth > MAX_DEPTH:
        raise _bad(path or None, "Слишком глубокая вложенность")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise _bad(path or None, "Ключи должны быть строками")
            _check_str(k, f"{path}.{k}" if path else k)
            _check_tree(v, f"{path}.{k}" if path else k, depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_tree(v, f"{path}[{i}]", depth + 1)
    elif isinstance(value, str):
        _check_str(value, path)
    elif isinstance(value, float) and not math.isfinite(value):
        raise _bad(path or None, "Число вне допустимого диапазона")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**18:
        raise _bad(path or None, "Число вне допустимого диапазона")


def _check_str(value: str, path: str) -> None:
    if "\x00" in value:
        raise _bad(path or None, "Недопустимый символ в строке")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(path or None, "Недопустимый символ в строке") from None


def _obj(body: dict, key: str, path: str, required: bool = True) -> dict | None:
    value = body.get(key)
    if value is None:
        if required:
            raise _bad(path, "Обязательное поле")
        return None
    if not isinstance(value, dict):
        raise _bad(path, "Ожидается объект")
    return value


def _str(body: dict, key: str, path: str, *, required: bool = False, max_len: int = 255) -> str:
    value = body.get(key)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _bad(path, "Ожидается строка")
    value = value.strip()
    if required and not value:
        raise _bad(path, "Обязательное поле")
    if len(value) > max_len:
        raise _bad(path, f"Не длиннее {max_len} символов")
    return value


def _choice(body: dict, key: str, path: str, options) -> str:
    value = _str(body, key, path, required=True, max_len=64)
    if value not in options:
        raise _bad(path, f"Неизвестное значение «{value}»: ожидается одно из {', '.join(options)}")
    return value


def _money(body: dict, key: str, path: str) -> float | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _bad(path, "Ожидается число")
    try:
        num = Decimal(str(value).strip().replace(" ", "").replace(",", "."))
    except ArithmeticError:
        raise _bad(path, "Ожидается число") from None
    if not num.is_finite() or num < 0 or num > MAX_MONEY:
        raise _bad(path, "Число от 0 до 999 999 999 999")
    return float(num.quantize(Decimal("0.01")))


def _date(body: dict, key: str, path: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(path, "Ожидается дата ГГГГ-ММ-ДД")
    try:
        return date.fromisoformat(value.strip()[:10]).isoformat()
    except ValueError:
        raise _bad(path, "Ожидается дата ГГГГ-ММ-ДД") from None


def _datetime(body: dict, key: str, path: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(path, "Ожидается дата и время ISO 8601")
    try:
        return datetime.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise _bad(path, "Ожидается дата и время ISO 8601") from None


def _event_id(body: dict) -> str:
    value = body.get("event_id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None or value == "":
        raise _bad("event_id", "Обязательное поле")
    if not isinstance(value, str):
        raise _bad("event_id", "Ожидается строка")
    value = value.strip()
    if not value or len(value) > 200:
        raise _bad("event_id", "От 1 до 200 символов")
    return value


def _phone(body: dict, key: str, path: str, required: bool = False) -> str:
    value = _str(body, key, path, required=required, max_len=40)
    if value:
        try:
            create.clean_phones([value])
        except ValidationFailed:
            raise _bad(path, "Неверный телефон: нужен номер полностью, не меньше 10 цифр") from None
    return value


def _email(body: dict, key: str, path: str, required: bool = False) -> str:
    value = _str(body, key, path, required=required, max_len=254)
    if value and not EMAIL_RE.match(value):
        raise _bad(path, "Неверный e-mail")
    return value


def _utm(body: dict) -> dict:
    raw = _obj(body, "utm", "utm", required=False) or {}
    out = {}
    for key in raw:
        short = key if key.startswith("utm_") else f"utm_{key}"
        if short in create.UTM_KEYS:
            out[short] = _str(raw, key, f"utm.{key}")
    return out


def _person(client: dict, *, required_names: bool) -> dict:
    return {"last_name": _str(client, "last_name", "client.last_name", required=required_names, max_len=100),
            "first_name": _str(client, "first_name", "client.first_name", required=required_names, max_len=100),
            "middle_name": _str(client, "middle_name", "client.middle_name", max_len=100)}


def _program(body: dict, required: bool) -> dict | None:
    prog = _obj(body, "program", "program", required=required)
    if prog is None:
        return None
    return {"title": _str(prog, "title", "program.title", required=True),
            "code": _str(prog, "code", "program.code", max_len=64),
            "price": _money(prog, "price", "program.price"),
            "start_date": _date(prog, "start_date", "program.start_date")}


def _validate_marketplace(body: dict) -> dict:
    data = {"event": _choice(body, "event", "event", MARKETPLACE_EVENTS),
            "occurred_at": _datetime(body, "occurred_at", "occurred_at")}
    client = _obj(body, "client", "client")
    data["client"] = {**_person(client, required_names=False),
                      "phone": _phone(client, "phone", "client.phone"),
                      "email": _email(client, "email", "client.email")}
    if not data["client"]["phone"] and not data["client"]["email"]:
        raise _bad("client.phone", "Укажите телефон или e-mail клиента")
    data["program"] = _program(body, required=True)
    data["utm"] = _utm(body)
    return data


def _split_name(full: str) -> tuple[str, str, str]:
    parts = full.split()
    return (parts[0] if parts else "", parts[1] if len(parts) > 1 else "", " ".join(parts[2:]))


def _validate_landing(body: dict) -> dict:
    form = _choice(body, "form", "form", LANDING_FORMS)
    client = _obj(body, "client", "client")
    data = {"event": form, "occurred_at": _datetime(body, "occurred_at", "occurred_at"), "utm": _utm(body)}
    if form == "question":
        data["client"] = {**_person(client, required_names=True),
                          "phone": _phone(client, "phone", "client.phone", required=True), "email": ""}
        data["question"] = _str(body, "question", "question", max_len=4000)
        data["program"] = _program(body, required=False)
    else:
        full = _str(client, "full_name", "client.full_name", required=True, max_len=300)
        last, first, middle = _split_name(full)
        data["client"] = {"last_name": last, "first_name": first, "middle_name": middle, "full_name": full,
                          "phone": _phone(client, "phone", "client.phone", required=True),
                          "email": _email(client, "email", "client.email", required=True),
                          "position": _str(client, "position", "client.position"),
                          "workplace": _str(client, "workplace", "client.workplace")}
        if body.get("consent") is not True:
            raise _bad("consent", "Нужно согласие на обработку персональных данных (consent: true)")
        data["program"] = _program(body, required=False)
    return data


def _validate_education(body: dict) -> dict:
    data = {"event": _choice(body, "event", "event", tuple(EDUCATION_STAGES)),
            "occurred_at": _datetime(body, "occurred_at", "occurred_at")}
    deal_id = body.get("deal_id")
    if deal_id is not None:
        if isinstance(deal_id, str) and deal_id.strip().isdigit():
            deal_id = int(deal_id.strip())
        if isinstance(deal_id, bool) or not isinstance(deal_id, int) or not 0 < deal_id <= MAX_ID:
            raise _bad("deal_id", "Ожидается номер сделки (целое число)")
    data["deal_id"] = deal_id
    client = _obj(body, "client", "client", required=deal_id is None)
    if client is not None:
        data["client"] = {**_person(client, required_names=False),
                          "phone": _phone(client, "phone", "client.phone"),
                          "email": _email(client, "email", "client.email")}
        if deal_id is None and not data["client"]["phone"] and not data["client"]["email"]:
            raise _bad("client.phone", "Укажите номер сделки (deal_id) или телефон/e-mail клиента")
    else:
        data["client"] = None
    data["program"] = _program(body, required=deal_id is None)
    data["contract_number"] = _str(body, "contract_number", "contract_number", max_len=100)
    data["first_payment_amount"] = _money(body, "first_payment_amount", "first_payment_amount")
    data["amount"] = _money(body, "amount", "amount")
    return data


VALIDATORS = {"marketplace": _validate_marketplace, "landing": _validate_landing,
              "education": _validate_education}


def validate(integration: str, body) -> dict:
    """The normalised event (with "event_id" and "event"), or IntakeError naming the field."""
    if integration not in INTEGRATIONS:
        raise IntakeError(404, "integration", f"Неизвестная интеграция «{integration}»")
    if not isinstance(body, dict):
        raise _bad(None, "Тело запроса должно быть JSON-объектом", 400)
    _check_tree(body)
    data = {"event_id": _event_id(body)}
    data.update(VALIDATORS[integration](body))
    return data
