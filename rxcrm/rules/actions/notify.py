"""«Уведомить»: a notice in the bell of the responsible or the department's head;
"{title}" in the text becomes the item's title."""
from __future__ import annotations

from .base import FormField, RuleAction, choice, clean_text

RECIPIENTS = (("responsible", "Ответственному"), ("department_head", "Руководителю отдела"))
RECIPIENTS_EN = (("responsible", "Responsible person"), ("department_head", "Head of department"))
WHOM = {"responsible": "ответственного", "department_head": "руководителя отдела"}
WHOM_EN = {"responsible": "the responsible person", "department_head": "the head of department"}


class Notify(RuleAction):
    code = "notify"
    label, label_en, order = "Уведомить", "Notify", 3
    form = (
        FormField("to", "Кому", "choice", RECIPIENTS, default="responsible", label_en="Recipient",
                  options_en=RECIPIENTS_EN),
        FormField("text", "Текст уведомления", placeholder="Сделка «{title}» перешла на стадию …",
                  label_en="Notification text", placeholder_en="Deal “{title}” moved to the stage …"),
    )

    def validate(self, ctx, raw: dict) -> dict:
        return {"type": self.code, "to": choice(raw.get("to") or "responsible", RECIPIENTS, "to", "Кому"),
                "text": clean_text(raw.get("text"), "text", "Текст уведомления")}

    def describe(self, config: dict, names) -> str:
        return f"уведомить {WHOM.get(config.get('to'), 'руководителя отдела')}: «{config.get('text', '')}»"

    def describe_en(self, config: dict, names) -> str:
        return f"notify {WHOM_EN.get(config.get('to'), WHOM_EN['department_head'])}: “{config.get('text', '')}”"

    def run(self, ctx, config: dict) -> None:
        ctx.notify(config.get("to", "responsible"), config.get("text", "").replace("{title}", ctx.title()))


ACTION = Notify()
