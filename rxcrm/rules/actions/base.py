"""What an on-enter rule action is (one class per action, one module per class).

An action knows everything about itself and nothing about the services: its name in
words, the fields of its form on /settings → Правила (`form`), how a typed form becomes a
stored config (`validate`), how a config reads to a supervisor (`describe`), and what it
does when an item enters the stage (`run`). The engine (services/rules_engine.py) and the
rules admin (services/rules_admin.py) hand it a context with exactly the operations it
may use, so this package imports no service."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from rxcrm.services.errors import ValidationFailed


@dataclass(frozen=True)
class FormField:
    """One input of the action's form. kind: "text" | "int" | "choice" (options) |
    "field" (a field of the pipeline a rule may fill) | "field_value" (a value of the field
    chosen in the "field" input). `label` and `placeholder` are Russian, `label_en`,
    `placeholder_en` and `options_en` ((value, English label)) what an English screen shows
    (missing ones fall back to the Russian text)."""
    key: str
    label: str
    kind: str = "text"
    options: tuple[tuple[str, str], ...] = ()  # (value, label) for "choice"
    required: bool = True
    default: str = ""
    placeholder: str = ""
    label_en: str = ""
    placeholder_en: str = ""
    options_en: tuple[tuple[str, str], ...] = ()


class ValidationContext(Protocol):
    """What `validate` may ask (given by services/rules_admin.py)."""
    def field(self, key: str) -> Any: ...                 # the FieldDef a rule may fill, or ValidationFailed
    def value(self, fd: Any, raw: Any) -> Any: ...         # the stored value of `raw` for that field, or ValidationFailed


class Names(Protocol):
    """What `describe` may ask: a field's label by its key."""
    def field(self, key: str) -> str: ...


class RunContext(Protocol):
    """What `run` may do (given by services/rules_engine.py) — on the item that entered
    the stage, as the rule."""
    def plan_activity(self, kind: str, subject: str, in_hours: float, duration_min: int | None) -> None: ...
    def set_values(self, values: dict) -> None: ...
    def notify(self, to: str, text: str) -> None: ...    # to: a RECIPIENTS code
    def title(self) -> str: ...


class RuleAction:
    code: str = ""
    label: str = ""       # the action in the picker: «Запланировать дело»
    label_en: str = ""
    order: int = 0        # its place in the picker
    form: tuple[FormField, ...] = ()

    def validate(self, ctx: ValidationContext, raw: dict) -> dict:
        raise NotImplementedError

    def describe(self, config: dict, names: Names) -> str:
        raise NotImplementedError

    def describe_en(self, config: dict, names: Names) -> str:
        """The same in English (an action without one reads in Russian on an English screen)."""
        return self.describe(config, names)

    def run(self, ctx: RunContext, config: dict) -> None:
        raise NotImplementedError


# ---- small validation helpers the actions share ------------------------------------------------

MAX_TEXT = 300


def clean_text(value, key: str, label: str, max_len: int = MAX_TEXT) -> str:
    text = " ".join(str(value or "").split())
    if not text or len(text) > max_len:
        raise ValidationFailed(f"{label}: от 1 до {max_len} символов", fields={key: "Обязательное поле"})
    return text


def int_in(value, lo: int, hi: int, key: str, label: str) -> int:
    text = str(value if value is not None else "").strip()
    if not text.lstrip("-").isdigit():
        raise ValidationFailed(f"{label}: целое число от {lo} до {hi}", fields={key: "Число"})
    n = int(text)
    if not lo <= n <= hi:
        raise ValidationFailed(f"{label}: от {lo} до {hi}", fields={key: f"от {lo} до {hi}"})
    return n


def choice(value, options: tuple[tuple[str, str], ...], key: str, label: str) -> str:
    if value not in {v for v, _ in options}:
        raise ValidationFailed(f"{label}: выберите из списка", fields={key: "Выберите из списка"})
    return value


__all__ = ["FormField", "MAX_TEXT", "Names", "RuleAction", "RunContext", "ValidationContext", "choice",
           "clean_text", "int_in"]
