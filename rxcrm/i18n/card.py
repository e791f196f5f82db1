"""Texts of the card screens (see rxcrm/i18n/__init__.py for the rules of the catalog)."""
from __future__ import annotations

RU: dict[str, str] = {
}

EN: dict[str, str] = {
}
