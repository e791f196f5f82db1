"""Intake burst benchmark (issue 11): N distinct landing-form events sent C at a time to
``POST /api/intake/landing`` of a real HTTP server, while a user keeps editing one deal.

    python bench/bench_intake.py [--events 200] [--concurrency 20] [--pg-url URL] [--no-sqlite]
                                 [--workers 1] [--intake-concurrency N]

For each backend (a SQLite file in a temp dir; PostgreSQL when a URL is given with
--pg-url or RXCRM_TEST_PG_URL — a fresh database is created in that server and dropped
afterwards) it seeds a small demo database (users, defaults, the demo intake token),
serves ``Starlette(routes=rxcrm.api.routes)`` with granian (the server Reflex ships with)
on 127.0.0.1 in a subprocess, sends the events with C concurrent HTTP clients (no client
retries: the first answer counts) and meanwhile, in a thread of this process, adds a
comment and edits a field of one deal through the services every EDIT_PAUSE_S seconds.
Prints one JSON object per backend:

    {"name": "intake_burst", "db": "sqlite", "events": 200, "concurrency": 20, "workers": 1,
     "ok_2xx": …, "non_2xx": …, "codes": {…}, "stored": …, "statuses": {…}, "deals": …,
     "events_per_s": …, "p50_ms": …, "p95_ms": …, "edits_ok": …, "edits_failed": …,
     "comments": …, "comments_stored": …, "edit_p50_ms": …, "edit_max_ms": …, …}

("stored": intake_event rows of the burst; "deals": deals of the burst's new contacts;
"edits_*": the editor's units of work, a comment and a field change per round;
"comments_stored": its comments found on the deal afterwards; "code"/"server_code": where
the bench and the server imported rxcrm from.)

Figures, not assertions. The rxcrm package is imported from this script's repository
(``bench/..``), so a copy of the script in another worktree measures that worktree."""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EDIT_PAUSE_S = 0.1
MIN_EDIT_ROUNDS = 12
EMAIL_DOMAIN = "burst.example.ru"
TOKEN = "demo-intake-token"


def make_app():
    """The server side (granian --factory bench_intake:make_app): only the API routes."""
    from starlette.applications import Starlette

    import rxcrm
    from rxcrm import api, hooks
    hooks.wire()  # the rules, notifications and audit react to what intake writes
    print(f"bench_intake server: rxcrm from {Path(rxcrm.__file__).parent}", file=sys.stderr, flush=True)
    limit = os.environ.get("BENCH_INTAKE_CONCURRENCY")
    if limit and hasattr(api, "INTAKE_CONCURRENCY"):  # --intake-concurrency: override the worker's limit
        api.INTAKE_CONCURRENCY = {k: int(limit) for k in api.INTAKE_CONCURRENCY}
    return Starlette(routes=api.routes)


# ---- events ---------------------------------------------------------------------------

def _letters(i: int) -> str:
    abc = "абвгдежзиклмнопрстуфхцчшэюя"
    out = ""
    while True:
        out = abc[i % len(abc)] + out
        i //= len(abc)
        if not i:
            return out.capitalize()


def landing_event(i: int, prefix: str = "burst") -> dict:
    """A valid, distinct landing application (own phone, e-mail and name)."""
    return {"event_id": f"{prefix}-{i}", "form": "application", "consent": True,
            "occurred_at": "2026-11-20T10:00:00+03:00",
            "client": {"full_name": f"Нагрузкин{_letters(i).lower()} Иван Петрович",
                       "phone": f"+7958{i:07d}",
                       "email": f"{prefix}{i}@{EMAIL_DOMAIN}", "position": "Инженер", "workplace": "АО Завод"},
            "program": {"title": "Управление проектами"},
            "utm": {"source": "bench", "utm_campaign": "burst"}}


# ---- the server -----------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, port: int, log_path: Path, workers: int = 1) -> subprocess.Popen:
    env = {**os.environ, "REFLEX_DB_URL": url, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    log = open(log_path, "wb")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--no-ws", "--log-level", "warning",
         "--working-dir", str(Path(__file__).resolve().parent), "bench_intake:make_app"],
        cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
    import httpx
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}); see {log_path}")
        try:
            httpx.post(f"http://127.0.0.1:{port}/api/intake/nowhere", timeout=2)
            return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the server did not start in 60 s; see {log_path}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---- the burst ------------------------------------------------------------------------

async def burst(port: int, events: list[dict], concurrency: int) -> tuple[list[tuple[int, float, str]], float]:
    import httpx
    queue: asyncio.Queue = asyncio.Queue()
    for body in events:
        queue.put_nowait(body)
    results: list[tuple[int, float, str]] = []
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t = time.perf_counter()
                try:
                    r = await client.post("/api/intake/landing", json=body, headers=headers)
                    code, text = r.status_code, r.text[:300]
                except httpx.HTTPError as exc:
                    code, text = 0, f"{type(exc).__name__}: {exc}"
                results.append((code, (time.perf_counter() - t) * 1000, text))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, time.perf_counter() - t0


class Editor(threading.Thread):
    """A user editing one deal meanwhile: a comment, then a field, each its own unit of work."""

    def __init__(self, url: str, actor, deal_id: int) -> None:
        super().__init__(daemon=True)
        self.url, self.actor, self.deal_id = url, actor, deal_id
        self.stop = threading.Event()
        self.ok = self.failed = 0
        self.comments: list[str] = []
        self.ms: list[float] = []
        self.errors: collections.Counter = collections.Counter()

    def _unit(self, fn) -> None:
        from rxcrm.db import session_scope
        t = time.perf_counter()
        try:
            with session_scope(self.url) as s:
                fn(s)
            self.ok += 1
        except Exception as exc:  # noqa: BLE001 - counted, the user would see an error
            self.failed += 1
            self.errors[f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"] += 1
        self.ms.append((time.perf_counter() - t) * 1000)

    def run(self) -> None:
        from rxcrm.services import activities, items
        n = 0
        while not self.stop.is_set() or n < MIN_EDIT_ROUNDS:
            n += 1
            text = f"Правка во время нагрузки №{n}"

            self.comments.append(text)  # attempted; stored ones are counted in the database afterwards
            self._unit(lambda s, text=text: activities.add_comment(s, self.actor, "deal", self.deal_id, text))
            self._unit(lambda s, n=n: items.update_fields(s, self.actor, "deal", self.deal_id,
                                                          {"comment": f"Поле изменено {n} раз"}))
            time.sleep(EDIT_PAUSE_S)


def prepare(url: str) -> tuple[object, int]:
    """Demo data (users, defaults, token); (the admin's Actor, a ДПО deal to edit)."""
    from sqlalchemy import select

    from rxcrm.db import session_scope
    from rxcrm.models import Deal, Pipeline, User
    from rxcrm.seed import seed_demo
    from rxcrm.services.auth import actor_for
    seed_demo(url, leads=50, deals=50, seed=1)
    with session_scope(url) as s:
        admin = actor_for(s.execute(select(User).where(User.login == "admin")).scalar_one())
        deal_id = s.execute(select(Deal.id).join(Pipeline, Pipeline.id == Deal.pipeline_id).where(
            Pipeline.code == "dpo", Deal.semantic == "process", Deal.deleted_at.is_(None))
            .order_by(Deal.id).limit(1)).scalar_one()
    return admin, deal_id


def count(url: str, prefix: str, comments: list[str], deal_id: int) -> dict:
    from sqlalchemy import func, select

    from rxcrm.db import session_scope
    from rxcrm.models import Comment, Communication, Deal, IntakeEvent
    with session_scope(url) as s:
        statuses = dict(s.execute(select(IntakeEvent.status, func.count()).where(
            IntakeEvent.event_id.like(f"{prefix}-%")).group_by(IntakeEvent.status)).all())
        contacts = select(Communication.entity_id).where(
            Communication.entity_type == "contact", Communication.kind == "email",
            Communication.norm.like(f"{prefix}%@{EMAIL_DOMAIN}"))
        deals = s.execute(select(func.count()).select_from(Deal).where(Deal.contact_id.in_(contacts))).scalar_one()
        stored_comments = set(s.execute(select(Comment.text).where(
            Comment.entity_type == "deal", Comment.entity_id == deal_id)).scalars())
    return {"stored": sum(statuses.values()), "statuses": statuses, "deals": deals,
            "comments_stored": sum(1 for c in comments if c in stored_comments)}


def run(db_name: str, url: str, n_events: int, concurrency: int, workdir: Path, workers: int = 1) -> dict:
    import rxcrm
    from rxcrm.db import get_engine
    admin, deal_id = prepare(url)
    get_engine(url).dispose()
    port = _free_port()
    server = start_server(url, port, workdir / f"server-{db_name}.log", workers)
    try:
        warm, _ = asyncio.run(burst(port, [landing_event(0, "warm")], 1))  # imports, first connections
        editor = Editor(url, admin, deal_id)
        editor.start()
        time.sleep(3 * EDIT_PAUSE_S)
        results, wall = asyncio.run(burst(port, [landing_event(i) for i in range(1, n_events + 1)], concurrency))
        editor.stop.set()
        editor.join(timeout=120)
    finally:
        stop_server(server)
    server_code = next((line.split("rxcrm from ", 1)[1].strip() for line in
                        (workdir / f"server-{db_name}.log").read_text(errors="replace").splitlines()
                        if "rxcrm from " in line), "?")
    counted = count(url, "burst", editor.comments, deal_id)
    lat = sorted(ms for _, ms, _ in results)
    codes = collections.Counter(code for code, _, _ in results)
    sample = next((text for code, _, text in results if not 200 <= code < 300), "")
    return {"name": "intake_burst", "db": db_name, "events": n_events, "concurrency": concurrency,
            "workers": workers,
            "ok_2xx": sum(v for k, v in codes.items() if 200 <= k < 300),
            "non_2xx": sum(v for k, v in codes.items() if not 200 <= k < 300),
            "codes": {str(k): v for k, v in sorted(codes.items())},
            "stored": counted["stored"], "statuses": counted["statuses"], "deals": counted["deals"],
            "events_per_s": round(n_events / wall, 1), "seconds": round(wall, 2),
            "p50_ms": round(statistics.median(lat), 1), "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1),
            "edits_ok": editor.ok, "edits_failed": editor.failed,
            "comments": len(editor.comments), "comments_stored": counted["comments_stored"],
            "edit_errors": dict(editor.errors),
            "edit_p50_ms": round(statistics.median(editor.ms), 1), "edit_max_ms": round(max(editor.ms), 1),
            "warmup": warm[0][0], "first_non_2xx": sample,
            "code": str(Path(rxcrm.__file__).parent), "server_code": server_code}


def _pg_database(admin_url: str, name: str, drop_only: bool = False) -> str:
    from sqlalchemy import create_engine, text
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            if not drop_only:
                c.execute(text(f"CREATE DATABASE {name}"))
    finally:
        admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def main(argv: list[str] | None = None) -> int:
    from rxcrm import hooks
    hooks.wire()  # the editor thread writes through the services here
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--pg-url", default=os.environ.get("RXCRM_TEST_PG_URL", ""),
                        help="a PostgreSQL server URL (default RXCRM_TEST_PG_URL); a fresh database is made in it")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    parser.add_argument("--intake-concurrency", type=int, default=0,
                        help="override api.INTAKE_CONCURRENCY (events one worker processes at once)")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args(argv)
    if args.intake_concurrency:
        os.environ["BENCH_INTAKE_CONCURRENCY"] = str(args.intake_concurrency)
    from rxcrm.db import get_engine
    with tempfile.TemporaryDirectory(prefix="rxcrm-bench-intake-") as tmp:
        workdir = Path(tmp)
        if not args.no_sqlite:
            url = f"sqlite:///{workdir / 'intake.db'}"
            result = run("sqlite", url, args.events, args.concurrency, workdir, args.workers)
            print(json.dumps(result, ensure_ascii=False), flush=True)
        if args.pg_url:
            name = f"rxcrm_bench_intake_{os.getpid()}"
            url = _pg_database(args.pg_url, name)
            try:
                result = run("postgresql", url, args.events, args.concurrency, workdir, args.workers)
                print(json.dumps(result, ensure_ascii=False), flush=True)
            finally:
                get_engine(url).dispose()
                _pg_database(args.pg_url, name, drop_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
