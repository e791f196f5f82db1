"""Fields a person fills in a dialog — a stage's required fields (board and card), the
finish dialog's extra fields, a card block in edit — each kind with its own control
(components/forms.field_control): a program or a user from a searchable list, a date as
ДД.ММ.ГГГГ with a calendar, a yes/no switch, an enum's options.

`field_rows` gives the rows their pick lists (services.cards.field_inputs); `form_values`
turns what the form sent into what the services take (a Russian date becomes ISO; a date
that is none is refused naming the field); `typed_values` is what to show again when a save
fails (exactly what was typed). The field objects are duck-typed: `key`, `label`, `kind`."""
from __future__ import annotations

from rxcrm import i18n
from rxcrm.services import fmt
from rxcrm.services.errors import ValidationFailed

from .base import to_form, to_text


def typed_values(fields, form) -> dict[str, str]:
    form = to_form(form)
    return {f.key: to_text(form.get(f.key), f.label) for f in fields}


def form_values(fields, form, lang: str = i18n.DEFAULT_LANG) -> dict[str, str]:
    """The submitted values for the services; ValidationFailed names every wrong date (in
    the person's language `lang`)."""
    values, errors, messages = typed_values(fields, form), {}, []
    for f in fields:
        raw = values[f.key].strip()
        if f.kind == "date" and raw:
            day = fmt.parse_date(raw)
            if day is None:
                errors[f.key] = i18n.text(lang, "card.error.date_short")
                messages.append(f"«{f.label}»: {i18n.text(lang, 'card.error.date_format')}")
            else:
                values[f.key] = day.isoformat()
    if errors:
        raise ValidationFailed(messages[0] if len(messages) == 1
                               else i18n.text(lang, "card.error.check_fields") + "; ".join(messages),
                               fields=errors)
    return values


def missing_rows(exc, values: dict | None = None) -> list[dict]:
    """The rows of a refused move's missing fields (items.MissingFields), with what was typed."""
    values = values or {}
    return [{"key": m["key"], "label": m["label"], "kind": m["kind"], "options": list(m.get("options") or []),
             "value": str(values.get(m["key"], ""))} for m in (exc.details or {}).get("missing", [])]


__all__ = ["form_values", "missing_rows", "typed_values"]
