"""Benchmark of the demo data seeder (rxcrm.seed).

    python bench/bench_seed.py [--leads 100000] [--deals 100000] [--seed 42]
                               [--pg-url postgresql+psycopg://postgres@127.0.0.1:55432/postgres]
                               [--no-sqlite] [--pg-executemany] [--items 1000000]

Seeds a throwaway SQLite file in a temporary directory and, with --pg-url, a fresh
PostgreSQL database created next to the given one (and dropped afterwards). Prints one
JSON object per line:
{"name": "seed", "backend": "sqlite", "leads": 100000, "deals": 100000, "seconds": 74.3,
 "rows_total": 3104044, "rows": {...}}

`seed_items(url, n)` (and --items N) fills a database with N leads and N deals for the
surface benches in a few minutes even at 1M: the demo seeder writes min(N, BASE) of each
(with their history, phones, activities), then the items — companies, contacts, leads,
deals — are copied inside the database (INSERT … SELECT, ids shifted per copy, links to
the copied contact/company/lead kept) until there are N leads and N deals. Copies share
the originals' names, texts and dates (the same distribution of search texts, each one
BASE-th as rare), but no history, phones or activities of their own."""
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

from rxcrm.db import get_engine, optimize  # noqa: E402
from rxcrm.models import Company, Contact, Deal, Lead  # noqa: E402
from rxcrm.seed import seed_demo  # noqa: E402

BASE = 100_000  # demo-seeded leads/deals; seed_items copies them beyond this
# item tables in foreign-key order, with the columns that point at copied rows
_COPIED = ((Company, ()), (Contact, ("company_id",)), (Lead, ("contact_id", "company_id", "deal_id")),
           (Deal, ("contact_id", "company_id", "lead_id")))


def _secondary_indexes(c, table: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the table's indexes other than its key and unique ones."""
    if c.dialect.name == "sqlite":
        return [tuple(r) for r in c.execute(text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL "
            "AND sql NOT LIKE 'CREATE UNIQUE%'"), {"t": table})]
    return [tuple(r) for r in c.execute(text(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = CAST(:t AS regclass) AND NOT x.indisprimary AND NOT x.indisunique"), {"t": f'"{table}"'})]


def seed_items(url: str, items: int, seed: int = 1, base: int = BASE) -> dict[str, int]:
    """N leads + N deals (see the module doc): demo data up to `base`, copies beyond.
    Returns the rows per table (the seeder's plus the copies)."""
    n0 = min(items, base)
    counts = dict(seed_demo(url, leads=n0, deals=n0, seed=seed))
    if items <= n0:
        return counts
    engine = get_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as c:
        tops = {m.__tablename__: c.execute(text(f'SELECT max(id) FROM "{m.__tablename__}"')).scalar() or 0
                for m, _ in _COPIED}
        # The copies go in without the tables' secondary indexes (each rebuilt once afterwards,
        # sorted, instead of 900k random inserts per index) and with a large page cache.
        # Search-index triggers (SQLite FTS) and foreign keys stay.
        if sqlite:
            cache = c.exec_driver_sql("PRAGMA cache_size").scalar()
            c.exec_driver_sql("PRAGMA cache_size=-1048576")
        else:
            c.exec_driver_sql("SET LOCAL maintenance_work_mem = '1GB'")
            c.exec_driver_sql("SET LOCAL synchronous_commit = off")
        indexes = [ix for m, _ in _COPIED for ix in _secondary_indexes(c, m.__tablename__)]
        for name, _ in indexes:
            c.exec_driver_sql(f'DROP INDEX "{name}"')
        copies = -(-items // n0) - 1  # copies k = 1..copies of every item; leads/deals cut at N
        if c.dialect.name == "sqlite":
            c.exec_driver_sql("CREATE TEMP TABLE copy_k (k INTEGER PRIMARY KEY)")
        else:
            c.exec_driver_sql("CREATE TEMP TABLE copy_k (k INTEGER PRIMARY KEY) ON COMMIT DROP")
        c.execute(text("INSERT INTO copy_k (k) VALUES (:k)"), [{"k": k} for k in range(1, copies + 1)])
        for model, links in _COPIED:
            table = model.__table__
            name = table.name
            cols, exprs = [], []
            for col in table.columns:
                cols.append(f'"{col.name}"')
                if col.name == "id":
                    exprs.append(f"t.id + copy_k.k * {tops[name]}")
                elif col.name in links:
                    target = {"company_id": "company", "contact_id": "contact", "lead_id": "lead",
                              "deal_id": "deal"}[col.name]
                    exprs.append(f'CASE WHEN t."{col.name}" IS NULL THEN NULL '
                                 f'ELSE t."{col.name}" + copy_k.k * {tops[target]} END')
                else:
                    exprs.append(f't."{col.name}"')
            cut = f" WHERE t.id + copy_k.k * {tops[name]} <= {items}" if name in ("lead", "deal") else ""
            added = c.execute(text(f'INSERT INTO "{name}" ({", ".join(cols)}) SELECT {", ".join(exprs)} '
                                   f'FROM "{name}" AS t CROSS JOIN copy_k{cut}')).rowcount
            counts[name] = counts.get(name, 0) + added
            if c.dialect.name == "postgresql":
                c.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), "
                                  f'(SELECT max(id) FROM "{name}"))')
        for _, create in indexes:
            c.exec_driver_sql(create)
        if sqlite:
            c.exec_driver_sql("DROP TABLE copy_k")
            c.exec_driver_sql(f"PRAGMA cache_size={cache}")
    if engine.dialect.name == "postgresql":
        # as autovacuum would after so many inserts: statistics, and the GIN pending list
        # (the search index) merged into the index
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
    optimize(url)
    return counts


def _run(backend: str, url: str, leads: int, deals: int, seed: int, items: int = 0, **kw) -> dict:
    started = time.perf_counter()
    if items:
        counts = seed_items(url, items, seed)
        leads = deals = items
    else:
        counts = seed_demo(url, leads, deals, seed, **kw)
    seconds = time.perf_counter() - started
    get_engine(url).dispose()
    return {"name": "seed_items" if items else "seed", "backend": backend, "leads": leads, "deals": deals,
            "seconds": round(seconds, 1), "rows_total": sum(counts.values()), "rows": counts}


def bench_sqlite(leads: int, deals: int, seed: int, items: int = 0) -> dict:
    with tempfile.TemporaryDirectory(prefix="rxcrm-bench-") as tmp:
        path = Path(tmp) / "bench.db"
        result = _run("sqlite", f"sqlite:///{path}", leads, deals, seed, items)
        result["db_mb"] = round(path.stat().st_size / 2**20, 1)
        return result


def bench_pg(admin_url: str, leads: int, deals: int, seed: int, copy: bool = True, items: int = 0) -> dict:
    name = f"rxcrm_bench_seed_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.rsplit("/", 1)[0] + "/" + name
        try:
            result = _run("postgresql", url, leads, deals, seed, items, **({} if items else {"pg_copy": copy}))
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
    p.add_argument("--items", type=int, default=0,
                   help="instead: N leads + N deals the quick way (seed_items: demo base + copies)")
    args = p.parse_args()
    if not args.no_sqlite:
        print(json.dumps(bench_sqlite(args.leads, args.deals, args.seed, args.items), ensure_ascii=False),
              flush=True)
    if args.pg_url:
        print(json.dumps(bench_pg(args.pg_url, args.leads, args.deals, args.seed, items=args.items),
                         ensure_ascii=False), flush=True)
        if args.pg_executemany:
            print(json.dumps(bench_pg(args.pg_url, args.leads, args.deals, args.seed, copy=False),
                             ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
