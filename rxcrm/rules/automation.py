"""Automation rules per pipeline.

Plain data: FIELD_TRIGGERS and ON_ENTER are the shipped defaults, written once into the
`automation_rule` table (kinds "trigger" / "on_enter") by `services/bootstrap.py`;
afterwards the table is the truth (admins edit it on /settings → Правила) and
`rxcrm/services/rules_engine.py` applies its active rows. Every change a rule makes is
written to the item's timeline with the rule's `name` (the card shows «Правило «…»»),
so a name must be unique and readable by a supervisor. Codes are pipeline/stage codes
from `rules/defaults.py`; field keys are those of the field catalog
(`services/fields.py`): columns by name, custom fields as "custom.<code>".

FIELD_TRIGGERS — "when a field becomes a value, move the item":

    {"name": rule name,
     "pipeline": pipeline code,
     "field": field key,
     "equals": the new value that fires the rule (as stored: "Да", 60, True …),
     "from_stage": stage code the item must be in (or a list of codes; None = any),
     "to_stage": stage code to move to}

    It fires when the field *changes to* `equals` (an edit in the card or list, a
    bulk action, the values of a "required fields" dialog, another rule). The move is
    an ordinary `items.move_stage` made by the rule (stage history, timeline, audit,
    a notification to the responsible); when the target stage requires fields the
    item lacks, nothing moves and the timeline says why.

ON_ENTER — "when an item enters a stage, do these actions":

    {"name": rule name, "pipeline": pipeline code, "stage": stage code,
     "actions": [
        {"type": "activity", "kind": "call" | "meeting" | "task" | "email",
         "subject": text, "in_hours": N, "duration_min": optional},
            # a Дело for the item's responsible, starting N hours later, rounded up to
            # the next working hour (09:00–18:00 Moscow, Russian working days), but not
            # later than the activity-discipline limit below
        {"type": "set", "field": field key, "value": value},
            # like an edit: validated, old → new in the timeline
        {"type": "notify", "to": "responsible" | "department_head", "text": text},
            # the bell; "{title}" in the text is replaced by the item's title
     ]}

    Entering happens on every move between working stages (manual, bulk, a field
    trigger, an integration) — not when a closed item is reopened.
    An action that cannot be done (e.g. the responsible is deactivated) is skipped
    and the timeline says why; the move itself stands.

ACTIVITY_DISCIPLINE — «ДЕЛО не может быть назначено на срок, позднее 5 рабочих дней с
момента последнего контакта с Клиентом». Working days are those of
the production calendar of `calendar` (the `holidays` package: weekends and public
holidays off, transferred working Saturdays on). The last contact is the item's
`last_contact_at` (a done call/meeting or a sent e-mail) or, never contacted, its
creation. When that limit is already past, the activity may still be planned up to
the first working day from today (the contact is overdue: do it now).

Rules can nest (a rule's move enters a stage whose on-enter action sets a field that
fires another trigger…) at most MAX_DEPTH levels deep; deeper changes are not applied.
"""
from __future__ import annotations

FIELD_TRIGGERS: list[dict] = [
    {"name": "Документы получены → Регистрация", "pipeline": "dpo", "field": "custom.dpo_docs_received",
     "equals": "Да", "from_stage": "INTEREST", "to_stage": "REGISTRATION"},
    {"name": "Договор подписан → Договор", "pipeline": "dpo", "field": "custom.dpo_contract_signed",
     "equals": "Да", "from_stage": ["INTEREST", "REGISTRATION"], "to_stage": "CONTRACT"},
    {"name": "Экзамены сданы → Все экзамены сданы", "pipeline": "masters", "field": "custom.masters_exams_passed",
     "equals": "Да", "from_stage": "APPLICATION", "to_stage": "EXAMS_PASSED"},
]

ON_ENTER: list[dict] = [
    {"name": "Регистрация ДПО: подтвердить", "pipeline": "dpo", "stage": "REGISTRATION",
     "actions": [{"type": "activity", "kind": "call", "subject": "Подтвердить регистрацию", "in_hours": 24}]},
    {"name": "Договор ДПО: вероятность 60%", "pipeline": "dpo", "stage": "CONTRACT",
     "actions": [{"type": "set", "field": "probability", "value": 60}]},
    {"name": "Предоплата ДПО: сообщить руководителю", "pipeline": "dpo", "stage": "PREPAYMENT",
     "actions": [{"type": "notify", "to": "department_head",
                  "text": "Сделка «{title}» перешла на стадию «Аванс\\Предоплата»"}]},
    {"name": "Магистратура: проверить оригинал документа", "pipeline": "masters", "stage": "DOCUMENTS",
     "actions": [{"type": "activity", "kind": "task", "subject": "Проверить оригинал документа об образовании",
                  "in_hours": 24, "duration_min": 60}]},
]

ACTIVITY_DISCIPLINE: dict = {"max_working_days_after_last_contact": 5, "calendar": "RU"}

MAX_DEPTH = 3
