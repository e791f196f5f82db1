"""Work-surface benchmark (issue: kanban, list, search, move, export at 100k) and the
analytics dashboard (issue 7: the whole page's queries, this month and this year).

    python bench/bench_surfaces.py [--sizes 1000,100000] [--repeat 15] [--keep DIR]

For each size N it seeds a throwaway SQLite database with N deals + N leads (demo
seeder), then times the service calls the UI makes, server-side, and prints one JSON
object per line: {"name": ..., "size": <deals>, "median_ms": ..., ...}.
Figures, not assertions: compare them with the targets in the issue."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text  # noqa: E402

from rxcrm.db import get_engine, session_scope  # noqa: E402
from rxcrm.models import Communication, Deal, Lead, Stage, StageHistory, User  # noqa: E402
from rxcrm.seed import seed_demo  # noqa: E402
from rxcrm.services import analytics, catalogs, export, items, listing, views  # noqa: E402
from rxcrm.services.auth import actor_for  # noqa: E402


def timed(fn, repeat: int) -> list[float]:
    fn()  # warm-up (caches, first-query planning)
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def emit(name: str, size: int, samples: list[float], **extra) -> None:
    print(json.dumps({"name": name, "size": size, "median_ms": round(statistics.median(samples), 1),
                      "p90_ms": round(sorted(samples)[int(0.9 * (len(samples) - 1))], 1),
                      "runs": len(samples), **extra}, ensure_ascii=False), flush=True)


def run(size: int, repeat: int, workdir: Path) -> None:
    path = workdir / f"bench_{size}.db"
    url = f"sqlite:///{path}"
    t = time.perf_counter()
    seed_demo(url, leads=size, deals=size, seed=1)
    print(json.dumps({"name": "seed", "size": size, "leads": size, "seconds": round(time.perf_counter() - t, 1)}),
          flush=True)
    with session_scope(url) as s:
        s.execute(text("ANALYZE"))
        manager = actor_for(s.execute(select(User).where(User.login == "manager1")).scalar_one())
        admin = actor_for(s.execute(select(User).where(User.login == "admin")).scalar_one())
        pipe = catalogs.default_pipeline(s, "deal")
        stages = [st for st in catalogs.stages(s, pipe.id) if st.semantic == "process"]
        columns = views.columns_for(s, manager, "deals", pipe.id)
        # a phone of a contact whose deal the manager can see (their department's pipeline)
        contact_id = s.execute(select(Deal.contact_id).where(
            Deal.pipeline_id == pipe.id, Deal.department_id == manager.department_id,
            Deal.contact_id.is_not(None)).order_by(Deal.id).limit(1).offset(size // 4)).scalar_one()
        phone = s.execute(select(Communication.value).where(
            Communication.kind == "phone", Communication.entity_type == "contact",
            Communication.entity_id == contact_id).limit(1)).scalar_one()
        digits = "".join(ch for ch in phone if ch.isdigit())
        fragment = f"{digits[-7:-4]}-{digits[-4:-2]}-{digits[-2:]}"  # "654-32-10": the tail, typed
        last_name = s.execute(select(Deal.title).where(Deal.pipeline_id == pipe.id).limit(1)
                              .offset(size // 2)).scalar_one().split("—")[-1].strip().split()[0][:5].lower()
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

    def search(q):
        def go():
            with session_scope(url) as s:
                page = listing.list_page(s, manager, "deal", {**flt, "q": q}, columns, page_size=20)
                assert page.total > 0 or size < 1000, q
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
    emit("list_page_sorted_by_created", size, timed(list_page, repeat))
    emit("search_partial_phone", size, timed(search(fragment), repeat), query=fragment)
    emit("search_partial_phone_leads", size, timed(lead_search, repeat), query=fragment)
    emit("search_name_fragment", size, timed(search(last_name), repeat), query=last_name)
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


def main() -> None:
    from rxcrm import hooks
    hooks.wire()
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,100000")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--keep", default="")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rxcrm-bench-") as tmp:
        workdir = Path(a.keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for size in [int(x) for x in a.sizes.split(",")]:
            run(size, a.repeat, workdir)


if __name__ == "__main__":
    main()
