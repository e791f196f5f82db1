"""The actions an on-enter rule can take — plug-ins: every module of this package defines
`ACTION`, an instance of a `base.RuleAction` subclass. Adding an action is adding a
module: the engine runs it, the rules admin validates and describes it, and the form on
/settings → Правила is drawn from its `form`."""
from __future__ import annotations

import importlib
import pkgutil

from .base import FormField, RuleAction


def _discover() -> dict[str, RuleAction]:
    found = []
    for module in pkgutil.iter_modules(__path__):
        if module.name == "base":
            continue
        action = getattr(importlib.import_module(f"{__name__}.{module.name}"), "ACTION", None)
        if isinstance(action, RuleAction):
            found.append(action)
    return {a.code: a for a in sorted(found, key=lambda a: (a.order, a.code))}


ACTIONS: dict[str, RuleAction] = _discover()

__all__ = ["ACTIONS", "FormField", "RuleAction"]
