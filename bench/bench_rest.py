"""REST API bench (issue 15): the Bitrix24-compatible API at 100k deals.

    python bench/bench_rest.py [--size 100000] [--repeat 15] [--keep DIR]

Seeds a throwaway SQLite database with `--size` deals and leads (bench_seed.seed_items;
`--keep DIR` keeps it for the next run), creates the demo webhooks, then prints one JSON
line per figure:
- `rest_deal_list`: crm.deal.list, one page of 50 with a filter (a stage and an amount), the
  server's own time (methods.run, as the HTTP handler calls it), as admin (every deal) and as
  manager1 (own deals only) — target ≤ 100 ms;
- `rest_get_all_10k`: fast-bitrix24's get_all of 10,000 deals (a filter on ID) through batch,
  over HTTP on loopback (uvicorn) with Bitrix24's rate limit — target ≤ 10 s;
- `rest_batch_50_adds`: one batch of 50 crm.lead.add over HTTP — target ≤ 2 s.
Figures, not assertions."""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlmodel import func, select  # noqa: E402

from bench_seed import seed_items  # noqa: E402
from rxcrm.db import get_engine, migrate, optimize, session_scope  # noqa: E402
from rxcrm.models import Deal, User  # noqa: E402


def pct(samples: list[float], p: float) -> float:
    return round(sorted(samples)[round(p * (len(samples) - 1))], 1)


def emit(name: str, samples: list[float] | None = None, **extra) -> None:
    row = {"name": name, **extra}
    if samples:
        row.update(median_ms=round(statistics.median(samples), 1), p95_ms=pct(samples, 0.95), runs=len(samples))
    print(json.dumps(row, ensure_ascii=False), flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--keep", default="")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rxcrm-bench-rest-"))
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{work / f'rest-{args.size}.db'}"
    os.environ["REFLEX_DB_URL"] = url
    from rxcrm import hooks
    hooks.wire()
    t = time.perf_counter()
    migrate(url)
    with get_engine(url).connect() as c:
        have = c.execute(select(func.count()).select_from(Deal)).scalar_one()
    if have < args.size:
        if have:
            raise SystemExit(f"{url} holds {have} deals, not {args.size}")
        seed_items(url, args.size, seed=1)
    optimize(url)
    from rxcrm.services import webhooks
    with session_scope(url) as s:
        webhooks.ensure_demo_webhooks(s)
        ids = {u.login: u.id for u in s.exec(select(User)).all()}
        deals = s.exec(select(func.count()).select_from(Deal).where(Deal.deleted_at.is_(None))).one()
    emit("rest_setup", deals=deals, seconds=round(time.perf_counter() - t, 1))

    from rxcrm.rest import methods, routes
    for login, code in (("admin", "demo-rest-admin"), ("manager1", "demo-rest-manager1")):
        caller = methods.authenticate(str(ids[login]), code)
        params = {"filter": {"STAGE_ID": "REGISTRATION", ">=OPPORTUNITY": 20000}, "order": {"ID": "DESC"}}
        methods.run(caller, "crm.deal.list", params)  # warm-up
        samples, total = [], 0
        for i in range(args.repeat):
            started = time.perf_counter()
            answer = methods.run(caller, "crm.deal.list", {**params, "start": 50 * (i % 5)})
            samples.append((time.perf_counter() - started) * 1000)
            total = answer.total
        emit("rest_deal_list", samples, user=login, deals=deals, matching=total, page=len(answer.result))

    import uvicorn
    from fast_bitrix24 import Bitrix
    from starlette.applications import Starlette
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=routes.routes), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        base = f"http://127.0.0.1:{port}/rest/{ids['admin']}/demo-rest-admin/"
        b = Bitrix(base, verbose=False)
        with session_scope(url) as s:
            ten_k = s.exec(select(Deal.id).where(Deal.deleted_at.is_(None)).order_by(Deal.id)
                           .offset(9999).limit(1)).one()
        started = time.perf_counter()
        got = b.get_all("crm.deal.list", {"select": ["ID", "TITLE", "STAGE_ID", "OPPORTUNITY"],
                                          "filter": {"<=ID": ten_k}})
        emit("rest_get_all_10k", [(time.perf_counter() - started) * 1000], deals=len(got))

        import httpx
        cmd = {f"a{i}": (f"crm.lead.add?fields[TITLE]=Бенч+{i}&fields[NAME]=Клиент+{i}"
                         f"&fields[PHONE][0][VALUE]=%2B7900{i:07d}") for i in range(50)}
        samples = []
        for _ in range(3):
            started = time.perf_counter()
            r = httpx.post(base + "batch", json={"halt": 0, "cmd": cmd}, timeout=60)
            samples.append((time.perf_counter() - started) * 1000)
            res = r.json()["result"]
            errors = res["result_error"]
        emit("rest_batch_50_adds", samples, added=len(res["result"]), errors=len(errors))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
