"""«Запланировать дело»: a Дело for the item's responsible, starting N hours after the
entry, rounded up to the next working hour (09:00–18:00 Moscow, Russian working days),
never later than the activity discipline allows."""
from __future__ import annotations

from rxcrm.models.activity import ACTIVITY_KINDS, MAX_DURATION_MIN

from .base import FormField, RuleAction, choice, clean_text, int_in

KINDS = (("call", "Звонок"), ("meeting", "Встреча"), ("task", "Задача"), ("email", "Письмо"))
KINDS_EN = (("call", "Call"), ("meeting", "Meeting"), ("task", "Task"), ("email", "E-mail"))
MAX_IN_HOURS = 30 * 24
ACCUSATIVE = {"call": "звонок", "meeting": "встречу", "task": "задачу", "email": "письмо"}
NOUN_EN = {"call": "a call", "meeting": "a meeting", "task": "a task", "email": "an e-mail"}


class PlanActivity(RuleAction):
    code = "activity"
    label, label_en, order = "Запланировать дело", "Plan an activity", 1
    form = (
        FormField("kind", "Вид дела", "choice", KINDS, default="call", label_en="Activity type", options_en=KINDS_EN),
        FormField("subject", "Тема дела", placeholder="Например: Подтвердить регистрацию", label_en="Subject",
                  placeholder_en="E.g. Confirm the registration"),
        FormField("in_hours", "Через сколько часов", "int", default="24", label_en="In how many hours"),
        FormField("duration_min", "Длительность, мин", "int", required=False, label_en="Duration, min"),
    )

    def validate(self, ctx, raw: dict) -> dict:
        kind = choice(raw.get("kind") or "call", tuple((k, k) for k in ACTIVITY_KINDS), "kind", "Вид дела")
        config = {"type": self.code, "kind": kind,
                  "subject": clean_text(raw.get("subject"), "subject", "Тема дела"),
                  "in_hours": int_in(raw.get("in_hours", 24), 0, MAX_IN_HOURS, "in_hours", "Через сколько часов")}
        if raw.get("duration_min") not in (None, ""):
            limit = MAX_DURATION_MIN.get(kind, 7 * 24 * 60)
            config["duration_min"] = int_in(raw["duration_min"], 1, limit, "duration_min", "Длительность, мин")
        return config

    def describe(self, config: dict, names) -> str:
        when = f" через {config.get('in_hours', 24)} ч" if config.get("in_hours") else " сразу"
        return f"запланировать {ACCUSATIVE.get(config.get('kind'), 'дело')} «{config.get('subject', '')}»{when}"

    def describe_en(self, config: dict, names) -> str:
        when = f" in {config.get('in_hours', 24)} h" if config.get("in_hours") else " right away"
        return f"plan {NOUN_EN.get(config.get('kind'), 'an activity')} “{config.get('subject', '')}”{when}"

    def run(self, ctx, config: dict) -> None:
        ctx.plan_activity(config.get("kind", "call"), config["subject"], config.get("in_hours", 24),
                          config.get("duration_min"))


ACTION = PlanActivity()
