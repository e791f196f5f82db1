"""How a file's columns map to fields on import (services/import_map.py applies it).

Plain data a supervisor can read: the headers Bitrix24 writes in its CSV/Excel exports
(and the usual spreadsheet words) → our field keys, per entity, and the source names of
Bitrix24 → our sources. Headers are compared lower-cased, «ё» as «е», without spaces at
the ends and without a trailing «(…)» or «:». Our own export's headers (the field
catalog's labels, services/fields.py) map too, so an exported list re-imports as it is.

Target keys: a field of the catalog ("title", "amount", "custom.<code>"…) or one of the
import's own: "id" (an item of rxcrm by its number — update only), "external_id" (the
item's id in the system it came from), "name" (ФИО, split into last / first / middle
name), "phone.<type>" / "email.<type>" (work, mobile, home, other), "created_at",
"pipeline_id", "stage_id", "contact", "contact.phone", "contact.email" (a deal's client),
"company" (a contact's or deal's company, by name), "website"."""
from __future__ import annotations

# Bitrix24's standard SOURCE_IDs and our sources (rules/defaults.SOURCES) — the REST API
# speaks these codes, the import reads them and the names Bitrix24 shows.
SOURCE_CODES = {"Маркетплейс": "MARKETPLACE", "Лендинг": "WEB", "Опросная форма": "WEBFORM", "Звонок": "CALL",
                "Email": "EMAIL", "Вручную": "SELF", "Импорт": "IMPORT", "Рекомендация": "RECOMMENDATION",
                "Выставка": "TRADE_SHOW"}
SOURCE_NAMES = {  # how Bitrix24 (and people) name a source → ours
    "веб-сайт": "Лендинг", "сайт": "Лендинг", "crm-форма": "Опросная форма", "веб-форма": "Опросная форма",
    "обратный звонок": "Звонок", "входящий звонок": "Звонок", "электронная почта": "Email", "e-mail": "Email",
    "по рекомендации": "Рекомендация", "собственный контакт": "Вручную", "личный контакт": "Вручную",
}

_COMMON = {
    "id": "external_id", "ид": "external_id", "внешний id": "external_id", "внешний идентификатор": "external_id",
    "ответственный": "responsible_id", "ответственный менеджер": "responsible_id", "менеджер": "responsible_id",
    "дата создания": "created_at", "создан": "created_at", "комментарий": "comment", "комментарии": "comment",
    "источник": "source",
    "рабочий телефон": "phone.work", "мобильный телефон": "phone.mobile", "домашний телефон": "phone.home",
    "другой телефон": "phone.other", "телефон": "phone.work", "телефоны": "phone.work",
    "контактный телефон": "phone.work",
    "рабочий e-mail": "email.work", "частный e-mail": "email.home", "другой e-mail": "email.other",
    "e-mail": "email.work", "email": "email.work", "электронная почта": "email.work", "почта": "email.work",
    "рекламная система": "utm_source", "тип трафика": "utm_medium", "обозначение рекламной кампании": "utm_campaign",
    "содержание кампании": "utm_content", "условие поиска кампании": "utm_term",
    "utm source": "utm_source", "utm medium": "utm_medium", "utm campaign": "utm_campaign",
    "utm content": "utm_content", "utm term": "utm_term",
}
_PERSON = {
    "имя": "first_name", "фамилия": "last_name", "отчество": "middle_name", "фио": "name", "ф.и.о.": "name",
    "полное имя": "name", "должность": "position", "дата рождения": "birthday",
}
_WORK = {
    "сумма": "amount", "стоимость": "amount", "образовательная программа": "program_id", "программа": "program_id",
    "программа обучения": "program_id", "курс": "program_id",
}

HEADERS: dict[str, dict[str, str]] = {
    "lead": {**_COMMON, **_PERSON, **_WORK,
             "название лида": "title", "название": "title", "лид": "title", "стадия": "stage_id",
             "статус": "stage_id", "стадия лида": "stage_id", "возможная сумма сделки": "amount",
             "название компании": "company_title", "компания": "company_title", "контакт": "name",
             "имя клиента": "name", "дата закрытия": "closed_at"},
    "deal": {**_COMMON, **_WORK,
             "название сделки": "title", "название": "title", "сделка": "title", "воронка": "pipeline_id",
             "направление": "pipeline_id", "стадия сделки": "stage_id", "стадия": "stage_id",
             "контакт": "contact", "клиент": "contact", "фио": "contact", "компания": "company",
             "телефон": "contact.phone", "рабочий телефон": "contact.phone", "мобильный телефон": "contact.phone",
             "телефон контакта": "contact.phone", "e-mail": "contact.email", "email": "contact.email",
             "рабочий e-mail": "contact.email", "e-mail контакта": "contact.email", "тип": "deal_type",
             "тип сделки": "deal_type", "вероятность": "probability", "дата закрытия": "closed_at",
             "предполагаемая дата закрытия": "close_date"},
    "contact": {**_COMMON, **_PERSON, "компания": "company", "название компании": "company", "контакт": "name"},
    "company": {**_COMMON, "название компании": "title", "название": "title", "компания": "title",
                "инн": "inn", "сфера деятельности": "industry", "отрасль": "industry", "адрес": "address",
                "фактический адрес": "address", "юридический адрес": "address", "сайт": "website",
                "корпоративный сайт": "website"},
}
