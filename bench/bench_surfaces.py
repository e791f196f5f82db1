"""Work-surface benchmark (issue: kanban, list, search, move, export at 100k) and the
analytics dashboard (issue 7: the whole page's queries, this month and this year).

    python bench/bench_surfaces.py [--sizes 1000,100000,1000000] [--repeat 15] [--keep DIR]
                                   [--full-max 100000] [--pg-url URL] [--no-sqlite]

For each size N it seeds a throwaway SQLite database with N deals + N leads
(bench_seed.seed_items: the demo seeder, copies beyond 100k) — and with --pg-url a
PostgreSQL database next to the given one, dropped afterwards — then times the service
calls the UI makes, server-side, and prints one JSON object per line:
{"name": ..., "size": <deals>, "backend": ..., "median_ms": ..., "p95_ms": ..., ...}.
Sizes above --full-max time only the kanban and the searches (lists and the top search:
a name fragment, a rare full name, an e-mail fragment, a common fragment, a 2-letter query,
a phone tail).
--keep DIR keeps the SQLite files (and the PostgreSQL databases) and reuses them on the
next run (migrated to the newest revision first, so a before/after comparison runs on the
same rows). Figures, not assertions: compare them with the targets in the issues."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from bench_seed import BASE, seed_items  # noqa: E402
from rxcrm.db import get_engine, migrate, optimize, session_scope  # noqa: E402
from rxcrm.models import Communication, Contact, Deal, Lead, StageHistory, User  # noqa: E402
from rxcrm.services import analytics, catalogs, export, items, listing, search, views  # noqa: E402
from rxcrm.services.auth import actor_for  # noqa: E402


def timed(fn, repeat: int) -> list[float]:
    fn()  # warm-up (caches, first-query planning)
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


BACKEND = {"name": "sqlite"}


def pct(samples: list[float], p: float) -> float:
    return round(sorted(samples)[round(p * (len(samples) - 1))], 1)


def emit(name: str, size: int, samples: list[float], **extra) -> None:
    print(json.dumps({"name": name, "size": size, "backend": BACKEND["name"],
                      "median_ms": round(statistics.median(samples), 1), "p90_ms": pct(samples, 0.9),
                      "p95_ms": pct(samples, 0.95), "runs": len(samples), **extra}, ensure_ascii=False),
          flush=True)


def prepare(url: str, size: int) -> None:
    """Seed `url` with `size` leads and deals, unless a kept database already holds them
    (then only migrate it to the newest revision and refresh the planner statistics)."""
    t = time.perf_counter()
    migrate(url)
    with get_engine(url).connect() as c:
        have = c.execute(select(func.count()).select_from(Deal)).scalar_one()
    if have == size:
        optimize(url)
        print(json.dumps({"name": "reuse", "size": size, "backend": BACKEND["name"],
                          "seconds": round(time.perf_counter() - t, 1)}), flush=True)
        return
    if have:
        raise SystemExit(f"{url} holds {have} deals, not {size}: remove it or pick another --keep")
    counts = seed_items(url, size, seed=1)
    print(json.dumps({"name": "seed", "size": size, "backend": BACKEND["name"], "leads": size,
                      "rows_total": sum(counts.values()), "seconds": round(time.perf_counter() - t, 1)}),
          flush=True)


def run(size: int, repeat: int, url: str, full: bool = True) -> None:
    prepare(url, size)
    with session_scope(url) as s:
        manager = actor_for(s.execute(select(User).where(User.login == "manager1")).scalar_one())
        admin = actor_for(s.execute(select(User).where(User.login == "admin")).scalar_one())
        pipe = catalogs.default_pipeline(s, "deal")
        stages = [st for st in catalogs.stages(s, pipe.id) if st.semantic == "process"]
        columns = views.columns_for(s, manager, "deals", pipe.id)
        # a phone of a contact whose deal the manager can see (their department's pipeline);
        # among the demo-seeded rows (seed_items' copies have no phones of their own)
        contact_id = s.execute(select(Deal.contact_id).where(
            Deal.pipeline_id == pipe.id, Deal.department_id == manager.department_id,
            Deal.contact_id.is_not(None)).order_by(Deal.id).limit(1).offset(min(size, BASE) // 4)).scalar_one()
        phone = s.execute(select(Communication.value).where(
            Communication.kind == "phone", Communication.entity_type == "contact",
            Communication.entity_id == contact_id).limit(1)).scalar_one()
        digits = "".join(ch for ch in phone if ch.isdigit())
        fragment = f"{digits[-7:-4]}-{digits[-4:-2]}-{digits[-2:]}"  # "654-32-10": the tail, typed
        last_name = s.execute(select(Deal.title).where(Deal.pipeline_id == pipe.id).order_by(Deal.id).limit(1)
                              .offset(size // 2)).scalar_one().split("—")[-1].strip().split()[0][:5].lower()
        # a rare text: one contact's full name (a deal of the manager's pipeline), an e-mail's local part
        full_name = s.execute(select(Contact.full_name).join(Deal, Deal.contact_id == Contact.id).where(
            Deal.pipeline_id == pipe.id, Deal.department_id == manager.department_id,
            Contact.full_name != "").order_by(Deal.id).limit(1)
            .offset(size // 3)).scalar_one().lower()
        emails = select(Communication.norm).join(Contact, Contact.id == Communication.entity_id).where(
            Communication.entity_type == "contact", Communication.kind == "email",
            Contact.department_id == manager.department_id)
        n_emails = s.execute(select(func.count()).select_from(emails.subquery())).scalar_one()
        email = s.execute(emails.order_by(Communication.id).limit(1).offset(n_emails // 2)).scalar_one()
        email_part = email.split("@")[0][-8:]
        movable = s.execute(select(Deal.id).where(Deal.stage_id == stages[0].id, Deal.department_id ==
                                                  manager.department_id, Deal.responsible_id == manager.user_id)
                            .limit(1)).scalar_one()
    flt = {"pipeline_id": [pipe.id]}

    def kanban_open():
        with session_scope(url) as s:
            listing.board_summary(s, manager, "deal", pipe.id, flt)
            for st in stages:
                listing.column_cards(s, manager, "deal", pipe.id, st.id, flt)

    def next_page():
        with session_scope(url) as s:
            listing.column_cards(s, manager, "deal", pipe.id, stages[0].id, flt, offset=20)

    def list_page():
        with session_scope(url) as s:
            listing.list_page(s, manager, "deal", flt, columns, sort="created_at", desc=True, page=1, page_size=20)

    def list_search(q, entity="deal", must_find=True):
        def go():
            with session_scope(url, write=False) as s:
                cols = columns if entity == "deal" else views.columns_for(s, manager, entity + "s")
                page = listing.list_page(s, manager, entity, {**(flt if entity == "deal" else {}), "q": q},
                                         cols, page_size=20)
                assert page.total > 0 or size < 1000 or not must_find, q
                go.total = page.total
        return go

    def top_search(q):
        def go():
            with session_scope(url, write=False) as s:
                groups = search.search(s, manager, q, workers=2)
                go.hits = sum(len(g["hits"]) for g in groups)
        return go

    def lead_search():
        with session_scope(url) as s:
            listing.list_page(s, manager, "lead", {"q": fragment}, views.columns_for(s, manager, "leads"), page_size=20)

    state = {"i": 0}

    def move():
        target = stages[1] if state["i"] % 2 == 0 else stages[0]
        state["i"] += 1
        with session_scope(url) as s:
            items.move_stage(s, manager, "deal", movable, target.id)

    emit("kanban_open", size, timed(kanban_open, repeat), columns=len(stages))
    emit("kanban_next_page", size, timed(next_page, repeat))
    if full:
        emit("list_page_sorted_by_created", size, timed(list_page, repeat))
    emit("search_partial_phone", size, timed(list_search(fragment), repeat), query=fragment)
    emit("search_partial_phone_leads", size, timed(lead_search, repeat), query=fragment)
    for name, q, entity in (("search_name_fragment", last_name, "deal"),
                            ("search_full_name", full_name, "deal"),
                            ("search_full_name_contacts", full_name, "contact"),
                            ("search_email_fragment", email_part, "contact"),
                            ("search_common_fragment", "ова", "deal"),  # in a third of the names
                            ("search_two_letters", last_name[:2], "deal")):
        go = list_search(q, entity, must_find=entity == "deal")
        emit(name, size, timed(go, repeat), query=q, total=go.total)
    for name, q in (("top_search_name_fragment", last_name), ("top_search_full_name", full_name),
                    ("top_search_email_fragment", email_part), ("top_search_common_fragment", "ова")):
        go = top_search(q)
        emit(name, size, timed(go, repeat), query=q, hits=go.hits)
    if not full:
        get_engine(url).dispose()
        return
    emit("stage_move", size, timed(move, repeat))
    n_export = min(10_000, size)

    def do_export():
        with session_scope(url) as s:
            ids = s.execute(select(Deal.id).order_by(Deal.id).limit(n_export)).scalars().all()
            _, dest = export.new_export(admin.user_id, "deal")
            n = export.export_xlsx(s, admin, "deal", {"id": {"from": ids[0], "to": ids[-1]}}, columns, dest=dest)
            assert n == n_export, (n, n_export)
            dest.unlink()

    emit("export_xlsx", size, timed(do_export, max(2, repeat // 5)), rows=n_export)

    # /analytics (issue 7): every query of the dashboard, as the page loads it (2 worker threads)
    with session_scope(url) as s:
        n_history = s.execute(select(func.count()).select_from(StageHistory)).scalar_one()
        head = actor_for(s.execute(select(User).where(User.login == "head")).scalar_one())
    for who, actor in (("director", admin), ("head", head)):
        for period in ("month", "year"):
            def dash(actor=actor, period=period):
                with session_scope(url) as s:
                    analytics.dashboard(s, actor, {"period": period})
            emit(f"analytics_dashboard_{period}_{who}", size, timed(dash, max(3, repeat // 3)),
                 stage_history_rows=n_history)
    get_engine(url).dispose()


def run_pg(admin_url: str, size: int, repeat: int, full: bool, keep: bool) -> None:
    name = f"rxcrm_bench_surfaces_{size}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            exists = c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists and not keep:
                c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            if not exists or not keep:
                c.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.rsplit("/", 1)[0] + "/" + name
        try:
            run(size, repeat, url, full)
        finally:
            get_engine(url).dispose()
            if not keep:
                with admin.connect() as c:
                    c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def main() -> None:
    from rxcrm import hooks
    hooks.wire()
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,100000")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--keep", default="", help="keep (and reuse) the databases; SQLite files in this dir")
    ap.add_argument("--full-max", type=int, default=100_000,
                    help="bigger sizes time only the kanban and the searches")
    ap.add_argument("--pg-url", default="", help="also on PostgreSQL (a database is created on this server)")
    ap.add_argument("--no-sqlite", action="store_true")
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="rxcrm-bench-") as tmp:
        workdir = Path(a.keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for size in sizes:
            if not a.no_sqlite:
                BACKEND["name"] = "sqlite"
                run(size, a.repeat, f"sqlite:///{workdir / f'bench_{size}.db'}", size <= a.full_max)
            if a.pg_url:
                BACKEND["name"] = "postgresql"
                run_pg(a.pg_url, size, a.repeat, size <= a.full_max, bool(a.keep))


if __name__ == "__main__":
    main()
