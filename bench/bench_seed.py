"""Benchmark of the demo data seeder (rxcrm.seed).

    python bench/bench_seed.py [--leads 100000] [--deals 100000] [--seed 42]
                               [--pg-url postgresql+psycopg://postgres@127.0.0.1:55432/postgres]
                               [--no-sqlite] [--pg-executemany]

Seeds a throwaway SQLite file in a temporary directory and, with --pg-url, a fresh
PostgreSQL database created next to the given one (and dropped afterwards). Prints one
JSON object per line:
{"name": "seed", "backend": "sqlite", "leads": 100000, "deals": 100000, "seconds": 74.3,
 "rows_total": 3104044, "rows": {...}}"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402

from rxcrm.db import get_engine  # noqa: E402
from rxcrm.seed import seed_demo  # noqa: E402


def _run(backend: str, url: str, leads: int, deals: int, seed: int, **kw) -> dict:
    started = time.perf_counter()
    counts = seed_demo(url, leads, deals, seed, **kw)
    seconds = time.perf_counter() - started
    get_engine(url).dispose()
    return {"name": "seed", "backend": backend, "leads": leads, "deals": deals,
            "seconds": round(seconds, 1), "rows_total": sum(counts.values()), "rows": counts}


def bench_sqlite(leads: int, deals: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="rxcrm-bench-") as tmp:
        path = Path(tmp) / "bench.db"
        result = _run("sqlite", f"sqlite:///{path}", leads, deals, seed)
        result["db_mb"] = round(path.stat().st_size / 2**20, 1)
        return result


def bench_pg(admin_url: str, leads: int, deals: int, seed: int, copy: bool = True) -> dict:
    name = f"rxcrm_bench_seed_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.rsplit("/", 1)[0] + "/" + name
        try:
            result = _run("postgresql", url, leads, deals, seed, pg_copy=copy)
            result["method"] = "copy" if copy else "executemany"
            with get_engine(url).connect() as c:
                result["db_mb"] = round(c.execute(
                    text("SELECT pg_database_size(current_database())")).scalar() / 2**20, 1)
            get_engine(url).dispose()
            return result
        finally:
            get_engine(url).dispose()
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--leads", type=int, default=100_000)
    p.add_argument("--deals", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--pg-url", default="",
                   help="PostgreSQL server URL (a database on it is created and dropped)")
    p.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run")
    p.add_argument("--pg-executemany", action="store_true",
                   help="on PostgreSQL also time executemany instead of COPY")
    args = p.parse_args()
    if not args.no_sqlite:
        print(json.dumps(bench_sqlite(args.leads, args.deals, args.seed), ensure_ascii=False),
              flush=True)
    if args.pg_url:
        print(json.dumps(bench_pg(args.pg_url, args.leads, args.deals, args.seed),
                         ensure_ascii=False), flush=True)
        if args.pg_executemany:
            print(json.dumps(bench_pg(args.pg_url, args.leads, args.deals, args.seed, copy=False),
                             ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
