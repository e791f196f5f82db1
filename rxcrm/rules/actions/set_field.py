"""«Заполнить поле»: set a field of the item like an edit (validated, old → new on the
timeline); a field trigger of that field fires in turn."""
from __future__ import annotations

from rxcrm.services.errors import ValidationFailed

from .base import FormField, RuleAction


class SetField(RuleAction):
    code = "set"
    label, label_en, order = "Заполнить поле", "Set a field", 2
    form = (
        FormField("field", "Поле", "field", label_en="Field"),
        FormField("value", "Значение", "field_value", label_en="Value"),
    )

    def validate(self, ctx, raw: dict) -> dict:
        fd = ctx.field(raw.get("field") or "")
        value = raw.get("value")
        if value in (None, ""):
            raise ValidationFailed("Укажите значение поля", fields={"value": "Обязательное поле"})
        return {"type": self.code, "field": fd.key, "value": ctx.value(fd, value)}

    def describe(self, config: dict, names) -> str:
        return f"заполнить «{names.field(config.get('field', ''))}» значением «{config.get('value')}»"

    def describe_en(self, config: dict, names) -> str:
        return f"set “{names.field(config.get('field', ''))}” to “{config.get('value')}”"

    def run(self, ctx, config: dict) -> None:
        ctx.set_values({config["field"]: config["value"]})


ACTION = SetField()
