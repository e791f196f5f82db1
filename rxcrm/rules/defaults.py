"""Default configuration shipped with rxcrm: departments, roles, the access
matrix, pipelines with their stages and the custom fields of each deal pipeline.

This is data: `services.bootstrap.ensure_defaults` writes it to the database on first
start; afterwards the database is the truth and admins edit it there."""
from __future__ import annotations

DEPARTMENTS = [
    {"code": "dpo", "name": "ДПО"},
    {"code": "admissions", "name": "Приёмная комиссия"},
]

ROLES = [
    {"code": "manager", "name": "Менеджер"},
    {"code": "head", "name": "Руководитель отдела"},
    {"code": "director", "name": "Директор"},
    {"code": "admin", "name": "Администратор"},
]

ENTITIES = ("lead", "deal", "contact", "company")
ACTIONS = ("view", "add", "edit", "delete", "export", "import")

# role -> action -> level (none | own | department | all); the same for every entity.
PERMISSIONS = {
    "manager": {"view": "department", "add": "own", "edit": "own", "delete": "own",
                "export": "department", "import": "none"},
    "head": {a: "department" for a in ACTIONS},
    "director": {"view": "all", "add": "none", "edit": "none", "delete": "none",
                 "export": "all", "import": "none"},
    "admin": {a: "all" for a in ACTIONS},
}

# Bitrix24-like stage palette.
_C = ["#39a8ef", "#2fc6f6", "#55d0e0", "#47e4c2", "#ffa900", "#ff8f4f", "#e89b06", "#9dcf00"]
WON, LOST, JUNK = "#7bd500", "#ff5752", "#b9b9b9"

PIPELINES = [
    {
        "code": "leads", "entity": "lead", "name": "Лиды", "is_default": True, "sort": 10,
        "department": None,
        "stages": [
            ("NEW", "Не обработан", _C[0], "process"),
            ("ACQUAINTANCE", "Знакомство", _C[1], "process"),
            ("EDUCATION_LEVEL", "Уровень образования", _C[2], "process"),
            ("INTERESTS", "Сфера интересов", _C[3], "process"),
            ("PROGRAM", "Образовательная программа", _C[4], "process"),
            ("CONVERTED", "Качественный", WON, "success"),
            ("JUNK", "Некачественный", LOST, "failure"),
            ("DUPLICATE", "Нецелевые\\Дубли", JUNK, "failure"),
        ],
    },
    {
        "code": "dpo", "entity": "deal", "name": "Воронка ДПО 2 часть", "is_default": True,
        "sort": 20, "department": "dpo",
        "stages": [
            ("INTEREST", "Интерес", _C[0], "process"),
            ("REGISTRATION", "Регистрация", _C[1], "process"),
            ("CONTRACT", "Договор", _C[2], "process"),
            ("PREPAYMENT", "Аванс\\Предоплата", _C[3], "process"),
            ("ENROLMENT", "Зачисление", _C[4], "process"),
            ("POSTPAYMENT", "Постоплата", _C[5], "process"),
            ("STUDY", "Обучение", _C[7], "process"),
            ("WON", "Сделка успешна", WON, "success"),
            ("LOST", "Сделка проиграна", LOST, "failure"),
        ],
    },
    {
        "code": "masters", "entity": "deal", "name": "Магистратура (платный приём)",
        "is_default": False, "sort": 30, "department": "admissions",
        "stages": [
            ("REGISTRATION", "Регистрация", _C[0], "process"),
            ("APPLICATION", "Заявка", _C[1], "process"),
            ("EXAMS_PASSED", "Все экзамены сданы", _C[2], "process"),
            ("RANKED", "Ранжированные списки", _C[3], "process"),
            ("DOCUMENTS", "Оформление документов", _C[4], "process"),
            ("PAYMENT", "Оплата", _C[5], "process"),
            ("ENROLMENT", "Зачисление", _C[7], "process"),
            ("WON", "Сделка успешна", WON, "success"),
            ("LOST", "Сделка проиграна", LOST, "failure"),
        ],
    },
]

# Custom fields per pipeline. (code, label, label_en, type, options, block)
YES_NO = ["Да", "Нет"]
CUSTOM_FIELDS = {
    "dpo": [
        ("docs_received", "Все документы получены", "All documents received", "enum", YES_NO, "Оплата"),
        ("contract_number", "Номер договора", "Contract number", "string", [], "Оплата"),
        ("contract_signed", "Договор подписан", "Contract signed", "enum", YES_NO, "Оплата"),
        ("contract_paid", "Договор оплачен", "Contract paid", "enum", YES_NO, "Оплата"),
        ("prepayment_received", "Предоплата получена", "Prepayment received", "enum", YES_NO, "Оплата"),
        ("payment_scheme", "Постоплата или Предоплата", "Postpayment or prepayment", "enum",
         ["Предоплата", "Постоплата"], "Оплата"),
    ],
    "masters": [
        ("exam_score", "Сумма баллов", "Total score", "number", [], "Интересы"),
        ("discount_pct", "Скидка (%)", "Discount (%)", "number", [], "Оплата"),
        ("exams_passed", "Сдал все экзамены", "Passed all exams", "enum", YES_NO, "Интересы"),
        ("place_kind", "Вид места", "Place type", "enum", ["Платное", "Бюджетное"], "Интересы"),
        ("previous_school", "Предыдущее место обучения", "Previous school", "string", [], "Интересы"),
        ("original_diploma", "Оригинал документа об образовании", "Original diploma", "enum", YES_NO, "Интересы"),
        ("consent", "Согласие на обучение", "Consent to study", "enum", YES_NO, "Интересы"),
        ("consent_date", "Дата подачи согласия", "Consent date", "date", [], "Интересы"),
        ("yearly_cost", "Стоимость в год (с учетом скидки)", "Yearly cost (after discount)", "money", [], "Оплата"),
        ("contract_sent", "Договор направлен?", "Contract sent?", "enum", YES_NO, "Оплата"),
        ("contract_paid", "Договор оплачен?", "Contract paid?", "enum", YES_NO, "Оплата"),
    ],
}

SOURCES = ["Маркетплейс", "Лендинг", "Опросная форма", "Звонок", "Email", "Вручную", "Импорт",
           "Рекомендация", "Выставка"]

# Built-in filter presets (Представления фильтра), written once by services/bootstrap.py
# (matched by code; an existing row stays as it is). Placeholders in list values are resolved
# per person by services/views.preset_filters: "@me" → the person, "@mydept" → the person's
# department, "@dept:<code>" → the active users of that department.
# (code, page, name, filters, order in the menu[, the rest of the view: {"view": "kanban" |
# "list", "sort": a field key or "queue", "desc": bool}])
BUILTIN_PRESETS = [
    ("my_leads", "leads", "Мои лиды в работе", {"responsible_id": ["@me"], "semantic": ["process"]}, 10),
    # «Очередь»: my leads in work as a list in the order they should be worked (services/queue.py).
   ("queue", "leads", "Очередь", {"responsible_id": ["@me"], "semantic": ["process"]}, 15,
     {"view": "list", "sort": "queue", "desc": False}),
    ("dept_leads", "leads", "Лиды отдела в работе", {"department_id": ["@mydept"], "semantic": ["process"]}, 20),
    ("all_leads", "leads", "Все лиды в работе", {"semantic": ["process"]}, 30),
    ("my_deals", "deals", "Мои сделки в работе", {"responsible_id": ["@me"], "semantic": ["process"]}, 10),
    ("dept_deals", "deals", "Сделки отдела в работе", {"department_id": ["@mydept"], "semantic": ["process"]},
     15),
    ("dpo_managers", "deals", "Менеджеры ДПО", {"responsible_id": ["@dept:dpo"], "semantic": ["process"]}, 20),
    ("all_deals", "deals", "Все сделки в работе", {"semantic": ["process"]}, 30),
]

# The preset a page opens on, per role, until a person pins their own (rows of
# `preset_role_default`, written once per page and role). Managers: their own items in work;
# heads: their department's; directors and admins: everything in work.
ROLE_DEFAULT_PRESETS = {
    "leads": {"manager": "my_leads", "head": "dept_leads", "director": "all_leads", "admin": "all_leads"},
    "deals": {"manager": "my_deals", "head": "dept_deals", "director": "all_deals", "admin": "all_deals"},
}
