"""Per-user state: what each page's state holds for one person, and what it costs per event.

    python bench/bench_state.py [--db-url URL] [--deals 1000]

Seeds a fresh demo database (SQLite in .run/bench-state/) unless --db-url names one; opens each
page's state for a demo user as the browser does (the session, the page's on_load handlers,
in a real root state tree) and prints one JSON line per state class and page:
    {"name": "state_size", "state": "WorkState", "page": "/deals", "user": "manager1",
     "pickle_kb": …, "json_kb": …, "pickle_ms": …, "json_ms": …}
`pickle_*`: what the state manager stores after every event of that tab (on disk, or in Redis
with `make prod`), `json_*`: the state's whole value as the browser receives it when the page
hydrates. Figures, not assertions."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = [  # (login, path, the page's state, its on_load handlers after check_login)
    ("manager1", "/deals", "WorkState", ["on_load"]),
    ("manager1", "/leads?view=list", "WorkState", ["on_load"]),
    ("manager1", "/deals/{deal}", "CardState", ["load_card"]),
    ("manager1", "/activities", "ActivitiesState", ["on_load"]),
    ("head", "/analytics", "AnalyticsState", ["on_load"]),
    ("admin", "/settings", "SettingsState", ["on_load"]),
    ("admin", "/history", "HistoryState", ["on_load"]),
]


MODULES = {"WorkState": "work", "CardState": "card", "ActivitiesState": "activities",
           "AnalyticsState": "analytics", "SettingsState": "settings", "HistoryState": "history"}


def _drain(result) -> None:
    """Run a handler to its end: a generator's steps (the UI would receive each), a coroutine."""
    import asyncio
    import inspect
    if inspect.iscoroutine(result):
        asyncio.run(result)
    elif hasattr(result, "__next__"):
        for _ in result:
            pass


def _timed(fn, repeat: int = 20) -> tuple[object, float]:
    started = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    return out, (time.perf_counter() - started) / repeat * 1000


def measure(login: str, path: str, state_name: str, loads: list[str]) -> dict:
    import importlib

    from reflex_base.utils import format as rx_format

    from rxcrm.db import session_scope
    from rxcrm.services import auth
    from rxcrm.state.app import AppState
    from tests import factories as f
    cls = getattr(importlib.import_module(f"rxcrm.state.{MODULES[state_name]}"), state_name)
    with session_scope() as s:
        token, _ = auth.login(s, login, "demo")
    import reflex as rx
    root = rx.State(_reflex_internal_init=True)  # the tree Reflex builds per browser tab
    st = f.route(root.get_substate(cls.get_full_name().split(".")), token, path)
    st.check_login()
    for name in loads:
        _drain(getattr(st, name)())
    blob, pickle_ms = _timed(st._serialize)
    text, json_ms = _timed(lambda: rx_format.json_dumps(st.dict()))
    app_blob = root.get_substate(AppState.get_full_name().split("."))._serialize()
    return {"name": "state_size", "state": state_name, "page": path.split("?")[0], "user": login,
            "pickle_kb": round(len(blob) / 1024, 1), "json_kb": round(len(text.encode()) / 1024, 1),
            "pickle_ms": round(pickle_ms, 2), "json_ms": round(json_ms, 2),
            "app_state_pickle_kb": round(len(app_blob) / 1024, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db-url", default="")
    ap.add_argument("--deals", type=int, default=1000)
    args = ap.parse_args()
    db_url = args.db_url
    if not db_url:
        work = ROOT / ".run" / "bench-state"
        work.mkdir(parents=True, exist_ok=True)
        for p in work.glob("state.db*"):
            p.unlink()
        db_url = f"sqlite:///{work / 'state.db'}"
        subprocess.run([sys.executable, "-m", "rxcrm.seed", "--leads", "2000", "--deals", str(args.deals), "-q"],
                       env=dict(os.environ, REFLEX_DB_URL=db_url), cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    os.environ["REFLEX_DB_URL"] = db_url
    import rxcrm.rxcrm  # noqa: F401 - the app (its states, hooks), as the server has it
    from sqlmodel import select

    from rxcrm.db import session_scope
    from rxcrm.models import Deal, User
    with session_scope(write=False) as s:  # a deal of manager1's (the card's page, as they open it)
        deal = s.exec(select(Deal.id).join(User, User.id == Deal.responsible_id).where(
            User.login == "manager1", Deal.deleted_at.is_(None)).order_by(Deal.id)).first()
    for login, path, state_name, loads in PAGES:
        print(json.dumps(measure(login, path.format(deal=deal), state_name, loads), ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
