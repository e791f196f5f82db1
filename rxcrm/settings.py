"""Process-wide settings (plain Python)."""
from __future__ import annotations

import os
from zoneinfo import ZoneInfo

# The offices work in Moscow time: "today", dates on screen and in exports use it.
TZ = ZoneInfo(os.environ.get("RXCRM_TZ", "Europe/Moscow"))
LOCALE = "ru_RU"
EXPORT_DIR = os.environ.get("RXCRM_EXPORT_DIR", "")  # default: <tmp>/rxcrm-exports
