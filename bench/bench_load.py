"""Load bench: N concurrent people open /deals and drag cards, through the real app.

    python bench/bench_load.py [--users 1,10,50] [--moves 20] [--person-users 10,50] [--person-moves 10]
                               [--topology single|prod [--pg-url URL]]
                               [--url http://127.0.0.1:PORT --db-url URL]   # an app already running

Without --url it seeds a fresh demo database (SQLite in .run/bench-load/), builds and starts
the app in production mode on a free loopback port (under the e2e build lock, since builds
share .web/), runs each user count in turn, stops the app. Each virtual user is a
bench/load_client.RxClient: logs in with a demo account (managers, the head, admissions —
several users may share an account, as colleagues share a role); once all are logged in
(sessions last for days: 9:00 is not a login storm), they open /deals, each waits for
its board, then drags one card no other user took back and forth between two stages that require
no fields, `--moves` times, each move through the board's own event (WorkState.on_drag_end)
and each waited for. Two paces (`--modes`):
- `person` (`--person-users`, `--person-moves` each): people arrive within `--arrive`
  seconds (10: a department at 9:00) and look at the board between two drags (`--think`
  seconds, 10 ± 50 %: fifty people dragging a card every ten seconds is 300 moves a minute,
  more than any admissions office makes — a person drags a card a minute at most);
- `rush` (`--users`, `--moves` each): no pause at all — everyone opens at the same instant
  and drags as fast as the server answers: a stress figure; its latency is bounded by
  throughput (50 users each waiting for the server = a queue of 50: latency ≈ 50 / moves
  per second, whatever the server), so it is read as moves per second. Its 1-user figure is
  the unloaded server's latency, the base of the ratios. Afterwards every move is checked in the database (a stage_history row
per move, the card in the stage of its last move).

Prints one JSON line per (measure, user count):
    {"name": "board_open", "topology": "single", "users": 50, "p50_ms": …, "p95_ms": …,
     "max_ms": …, "errors": 0}
    {"name": "stage_move", …, "moves": 1000, "applied": 1000, "errors": 0, "mode": "person", …}
The rush's 1-user run comes first: one person dragging alone, the unloaded server's latency;
every later line's `p95_vs_1_user` is its p95 over that one's (the growth the targets judge). `errors` counts every event not answered in time and every move not applied in the database.
Loopback only, bounded: each event waits at most --timeout seconds, the whole run --budget.
Figures, not assertions."""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from load_client import LoadError, RxClient  # noqa: E402

ACCOUNTS = ["manager1", "manager2", "manager3", "manager4", "head", "admissions1", "admissions2"]
PASSWORD = "demo"
LOCK = os.environ.get("RXCRM_BUILD_LOCK", "/tmp/rxcrm-e2e.lock")  # serializes builds of one .web/


def _states():
    from rxcrm.state.work import WorkState
    return WorkState.get_full_name()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def figures(name: str, topology: str, users: int, seconds: list[float], errors: int, **extra) -> dict:
    ms = [s * 1000 for s in seconds]
    return {"name": name, "topology": topology, "users": users,
            "p50_ms": round(statistics.median(ms), 1) if ms else None, "p95_ms": round(pct(ms, 95), 1) if ms else None,
            "max_ms": round(max(ms), 1) if ms else None, "errors": errors, **extra}


# ---- what each user moves ---------------------------------------------------------------
def free_stages(db_url: str) -> set[int]:
    """Process stages of deal pipelines that require no field (a move there never asks)."""
    os.environ["REFLEX_DB_URL"] = db_url
    from sqlmodel import select

    from rxcrm.db import session_scope
    from rxcrm.models import Stage
    from rxcrm.models.pipeline import PROCESS
    from rxcrm.services import requirements
    with session_scope(db_url, write=False) as s:
        return {st.id for st in s.exec(select(Stage).where(Stage.semantic == PROCESS)).all()
                if not requirements.required_for(s, "deal", st)}


def pick(board: list[dict], free: set[int], claimed: set[int]) -> tuple[int, int, int] | None:
    """A card no other user has taken (colleagues see each other's deals: two people dragging
    one card is a conflict the app rightly refuses, not what this bench measures), standing
    in a free stage, and another free stage of its board: (card id, its stage, the other)."""
    cols = [c for c in board if c["id"] in free]
    if len(cols) < 2:
        return None
    for c in cols:
        for card in c["cards"]:
            if card["id"] not in claimed:
                claimed.add(card["id"])
                return card["id"], c["id"], next(o["id"] for o in cols if o["id"] != c["id"])
    return None


@dataclasses.dataclass
class Pace:
    mode: str = "person"
    arrive_s: float = 10.0  # people open the board within this many seconds
    think_s: float = 10.0  # a person's pause between two drags (± 50 %)

    def arrival(self, rng: random.Random) -> float:
        return rng.uniform(0, self.arrive_s) if self.mode == "person" else 0.0

    def pause(self, rng: random.Random) -> float:
        return rng.uniform(0.5, 1.5) * self.think_s if self.mode == "person" else 0.0


async def one_user(base: str, work: str, account: str, nth: int, free: set[int], moves: int, timeout: float,
                   web_dir: Path, out: dict, claimed: set[int], gate: asyncio.Barrier, pace: Pace,
                   rng: random.Random) -> None:
    client = RxClient(base, timeout=timeout, web_dir=web_dir)
    try:
        try:  # people come in already logged in: the logins (argon2, on purpose slow) go first
            await client.login(account, PASSWORD)
        finally:
            await gate.wait()
        await asyncio.sleep(pace.arrival(rng))

        def board_arrived(c: RxClient) -> bool:
            return any(col.get("cards") for col in c.var(work, "board", []) or [])

        out["open"].append(await client.open("/deals", until=board_arrived))
        target = pick(client.var(work, "board"), free, claimed)
        if target is None:
            out["errors"] += 1
            out["notes"].append(f"{account}#{nth}: no card to move")
            return
        card, here, there = target
        out["cards"][card] = []
        for _ in range(moves):
            await asyncio.sleep(pace.pause(rng))

            def answered(c: RxClient) -> bool:  # the card's «saving» mark came back off
                return any((u.get("delta") or {}).get(work, {}).get("saving_id_rx_state_") == 0
                           for u in c.updates) or bool(c.var(work, "missing_open"))
            try:
                took = await client.call(work, "on_drag_end",
                                         {"result": {"draggableId": str(card), "from": here, "to": there}},
                                         until=answered)
            except LoadError as exc:
                out["errors"] += 1
                out["notes"].append(str(exc))
                continue
            out["moves"].append(took)
            out["cards"][card].append(there)
            if client.notices:
                out["notes"].extend(f"card {card}: {n}" for n in client.notices)
                client.notices.clear()
            if client.var(work, "missing_open"):
                out["notes"].append(f"card {card}: the stage asked for fields")
            here, there = there, here
    except LoadError as exc:
        out["errors"] += 1
        out["notes"].append(f"{account}: {exc}")
    finally:
        await client.close()


def check_moves(db_url: str, cards: dict[int, list[int]], since) -> tuple[int, int]:
    """(moves applied, moves sent): a stage_history row per move since `since`, and the card
    in the stage of its last move."""
    from sqlmodel import func, select

    from rxcrm.db import session_scope
    from rxcrm.models import Deal, StageHistory
    applied = sent = 0
    with session_scope(db_url, write=False) as s:
        for card, stages in cards.items():
            sent += len(stages)
            rows = s.exec(select(func.count()).select_from(StageHistory).where(
                StageHistory.entity_type == "deal", StageHistory.entity_id == card,
                StageHistory.created_at >= since)).one()
            deal = s.get(Deal, card)
            ok_final = not stages or (deal is not None and deal.stage_id == stages[-1])
            applied += min(rows, len(stages)) if ok_final else max(0, min(rows, len(stages)) - 1)
    return applied, sent


async def run_level(base: str, db_url: str, users: int, moves: int, timeout: float, topology: str,
                    web_dir: Path, pace: Pace) -> list[dict]:
    from datetime import datetime, timezone
    work = _states()
    free = free_stages(db_url)
    since = datetime.now(timezone.utc).replace(microsecond=0)
    await asyncio.sleep(1.0)
    out = {"open": [], "moves": [], "errors": 0, "notes": [], "cards": {}}
    per_account: dict[str, int] = {}
    claimed: set[int] = set()
    gate = asyncio.Barrier(users)  # everyone logs in, then all open /deals at once
    tasks = []
    for i in range(users):
        account = ACCOUNTS[i % len(ACCOUNTS)]
        nth = per_account.get(account, 0)
        per_account[account] = nth + 1
        tasks.append(one_user(base, work, account, nth, free, moves, timeout, web_dir, out, claimed, gate, pace,
                              random.Random(i)))
    started = time.perf_counter()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - started
    applied, sent = check_moves(db_url, out["cards"], since)
    not_applied = sent - applied
    open_errors = users - len(out["open"])
    how = {"mode": pace.mode, **({"arrive_s": pace.arrive_s, "think_s": pace.think_s} if pace.mode == "person" else {})}
    rows = [figures("board_open", topology, users, out["open"], open_errors, **how),
            figures("stage_move", topology, users, out["moves"], out["errors"] - open_errors + not_applied,
                    moves=users * moves, answered=len(out["moves"]), applied=applied, wall_s=round(wall, 1),
                    moves_per_s=round(len(out["moves"]) / wall, 1) if wall else None, **how)]
    if out["notes"]:
        rows[-1]["notes"] = sorted(set(out["notes"]))[:5]
    return rows


# ---- the app under load -------------------------------------------------------------------
def seed(db_url: str, leads: int, deals: int) -> None:
    env = dict(os.environ, REFLEX_DB_URL=db_url)
    subprocess.run([sys.executable, "-m", "rxcrm.seed", "--leads", str(leads), "--deals", str(deals), "-q"],
                   env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


class App:
    """`reflex run --env prod` on a free loopback port (the build holds the e2e lock)."""

    def __init__(self, db_url: str, workdir: Path, extra_env: dict | None = None):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, REFLEX_DB_URL=db_url, REFLEX_USE_NPM="1", REFLEX_TELEMETRY_ENABLED="false",
                        PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}", **(extra_env or {}))
        self.log = open(workdir / "app.log", "w")
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "reflex"), "run", "--env", "prod", "--frontend-port", str(self.port),
             "--backend-port", str(self.port), "--loglevel", "warning"],
            env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 600
        while not (_up(f"{self.base}/ping") and _up(f"{self.base}/login")):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the app did not start; see {self.log.name}")
            time.sleep(1)
        return self

    def __exit__(self, *exc):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", default="1,10,50", help="rush: user counts")
    ap.add_argument("--moves", type=int, default=20, help="rush: moves per user")
    ap.add_argument("--person-users", default="10,50", help="person: user counts")
    ap.add_argument("--person-moves", type=int, default=10, help="person: moves per user")
    ap.add_argument("--modes", default="person,rush", help="person (arrivals and pauses like people), rush (none)")
    ap.add_argument("--arrive", type=float, default=10.0, help="person: seconds within which people open the board")
    ap.add_argument("--think", type=float, default=10.0, help="person: seconds between two drags (± 50 %%)")
    ap.add_argument("--topology", default="single", choices=["single", "prod"],
                    help="single: one process on SQLite; prod: PostgreSQL + Redis + several workers")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds an event may take before it counts as lost")
    ap.add_argument("--budget", type=float, default=1200.0, help="seconds for the whole run")
    ap.add_argument("--url", default="", help="an app already running (then --db-url is its database)")
    ap.add_argument("--db-url", default="")
    ap.add_argument("--deals", type=int, default=1000)
    ap.add_argument("--pg-url", default="", help="--topology prod: a PostgreSQL server (a database is created)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="--topology prod: app workers")
    args = ap.parse_args()
    levels = [int(x) for x in args.users.split(",") if x]
    person_levels = [int(x) for x in args.person_users.split(",") if x]
    work_dir = ROOT / ".run" / "bench-load"
    work_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + args.budget

    def run_all(base: str, db_url: str) -> None:
        # one person dragging alone, without pauses, first: the unloaded server's latency, the
        # base of every ratio (`p95_vs_1_user`); then each pace's levels
        modes = [m for m in args.modes.split(",") if m]
        runs = [("rush", 1)] if 1 in levels or "rush" not in modes else []
        runs += [(m, n) for m in modes for n in (person_levels if m == "person" else levels)
                 if (m, n) != ("rush", 1)]
        base_p95: dict[str, float] = {}  # measure → its 1-user p95
        for mode, users in runs:
            pace = Pace(mode, args.arrive, args.think)
            moves = args.person_moves if mode == "person" else args.moves
            if time.time() > deadline:
                print(json.dumps({"name": "stopped", "reason": "time budget", "users": users, "mode": mode}),
                      flush=True)
                return
            rows = asyncio.run(asyncio.wait_for(
                run_level(base, db_url, users, moves, args.timeout, args.topology, ROOT / ".web", pace),
                timeout=max(30.0, deadline - time.time())))
            for row in rows:
                if users == 1 and mode == "rush" and row.get("p95_ms"):
                    base_p95[row["name"]] = row["p95_ms"]
                elif row["name"] in base_p95 and row.get("p95_ms") is not None:
                    row["p95_vs_1_user"] = round(row["p95_ms"] / base_p95[row["name"]], 2)
                print(json.dumps(row, ensure_ascii=False), flush=True)

    if args.url:
        run_all(args.url, args.db_url)
        return 0
    extra_env: dict = {}
    cleanup = []
    if args.topology == "prod":
        # the production topology: PostgreSQL (a fresh database in the server given), Redis
        # (a throwaway server on a free loopback port), several workers sharing state in Redis
        pg_admin = args.pg_url or os.environ.get("RXCRM_TEST_PG_URL", "")
        if not pg_admin:
            raise SystemExit("--topology prod needs --pg-url (or RXCRM_TEST_PG_URL): a PostgreSQL server")
        db_url = _fresh_pg_database(pg_admin, cleanup)
        extra_env.update(REFLEX_REDIS_URL=_redis(work_dir, cleanup), GRANIAN_WORKERS=str(args.workers))
    else:
        db_path = work_dir / "load.db"
        for p in work_dir.glob("load.db*"):
            p.unlink()
        db_url = args.db_url or f"sqlite:///{db_path}"
    import fcntl
    try:
        seed(db_url, 2000, args.deals)
        lock = open(LOCK, "w")
        fcntl.flock(lock, fcntl.LOCK_EX)  # the build writes .web/, shared with the browser tests
        try:
            with App(db_url, work_dir, extra_env) as app:
                fcntl.flock(lock, fcntl.LOCK_UN)
                run_all(app.base, db_url)
        finally:
            lock.close()
    finally:
        for undo in reversed(cleanup):
            undo()
    return 0


def _fresh_pg_database(admin_url: str, cleanup: list) -> str:
    from sqlalchemy import create_engine, text
    name = f"rxcrm_load_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        c.execute(text(f"CREATE DATABASE {name}"))

    def drop():
        from rxcrm.db import dispose_engines
        dispose_engines()
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
    cleanup.append(drop)
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _redis(work_dir: Path, cleanup: list) -> str:
    import shutil
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        raise SystemExit("redis-server is missing: `make system-deps` installs it")
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(work_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop():
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    cleanup.append(stop)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.2)
    raise SystemExit("redis-server did not start")


if __name__ == "__main__":
    sys.exit(main())
