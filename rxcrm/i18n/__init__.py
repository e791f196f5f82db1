"""UI text catalog: Russian (default) and a complete English catalog.

Every label a screen shows comes from here: components read `AppState.t[<key>]`, state
handlers `self.tr("key", name=…)` (placeholders in `{}`); no Russian literal sits in
pages/, components/ or state/ (tests/test_i18n.py). The catalog is split by area — one
module per group of screens, each with `RU` and `EN` dicts of the same keys; a key lives
in one module only. Labels use the words of the Bitrix24 guides the office knows."""
from __future__ import annotations

from datetime import timedelta

from babel.dates import format_timedelta

from . import analytics, card, core, duplicates, imports, settings, work

DEFAULT_LANG = "ru"
LANGS = {"ru": "Русский", "en": "English"}
AREAS = (core, work, card, settings, analytics, duplicates, imports)


def _merge(lang: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for area in AREAS:
        part = getattr(area, lang.upper())
        clash = sorted(set(part) & set(merged))
        if clash:
            raise RuntimeError(f"i18n keys defined twice ({area.__name__}): {clash[:5]}")
        merged.update(part)
    return merged


RU = _merge("ru")
EN = _merge("en")
CATALOGS = {"ru": RU, "en": EN}

# Server-side messages (services raise Russian text; this maps known ones for English UI).
MESSAGES_EN = {
    "Неверный логин или пароль": "Wrong login or password",
    "Введите логин и пароль": "Enter your login and password",
    "Учётная запись отключена. Обратитесь к администратору": "The account is disabled. Contact your administrator",
    "Нет доступа": "Access denied",
    "Неверные данные запроса": "Invalid request data",
    "База данных сейчас занята — повторите действие через несколько секунд":
        "The database is busy — try again in a few seconds",
}


def catalog(lang: str) -> dict[str, str]:
    return CATALOGS.get(lang, CATALOGS[DEFAULT_LANG])


def text(lang: str, key: str, **values) -> str:
    """One label in `lang` with its `{placeholders}` filled; an unknown key is a bug the
    catalog test catches, so it shows as the key rather than failing a handler."""
    label = catalog(lang).get(key, key)
    return label.format(**values) if values else label


def message(text: str, lang: str) -> str:
    return MESSAGES_EN.get(text, text) if lang == "en" else text


def wait_words(seconds: int, lang: str) -> str:
    """A wait in words, rounded up to whole minutes from one minute on: "через 8 секунд",
    "через 2 минуты" / "in 2 minutes"."""
    seconds = max(1, seconds)
    wait = timedelta(seconds=seconds) if seconds < 60 else timedelta(minutes=-(-seconds // 60))
    return format_timedelta(wait, threshold=1, add_direction=True, locale="en" if lang == "en" else "ru")


def rate_limited(seconds: int, lang: str) -> str:
    """The login throttle's refusal naming the wait."""
    if lang == "en":
        return f"Too many failed attempts. Try again {wait_words(seconds, lang)}"
    return f"Слишком много неудачных попыток. Попробуйте {wait_words(seconds, lang)}"
