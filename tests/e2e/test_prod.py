"""The production topology (`make prod`): a client whose connection lands on another worker
keeps its state. A real `reflex run --env prod` with 2 workers, PostgreSQL (the suite's
RXCRM_TEST_PG_URL server, a fresh database created and dropped here) and Redis (a throwaway
redis-server on a free loopback port) — no browser: bench/load_client.py's socket.io client.

The app runs as `reflex run --env prod --backend-only`: the very production backend (granian,
its workers, the Redis state manager) without a frontend build — a build writes .web/ with
its port baked into env.json, which would break the app the other e2e tests of the same
session are using. The socket client needs no frontend.

Log in as admin, open /deals, switch to the list view and go to page 2, then disconnect and
reconnect with the same tab token several times, each time on a new socket (granian hands
each connection to one of its workers). Every time the page comes back as this tab left it
— list view, page 2 (page 2 lives only in the tab's state, not in the database), the user
logged in and not sent to /login — and the test sees that the connections were served by
both workers (it looks up which worker process holds the server end of the socket).

Run it like the other e2e tests, with `flock /tmp/rxcrm-e2e.lock`; the test takes that lock
itself while it starts the app (unless it already holds it: an inherited descriptor, or a
`flock` ancestor)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from load_client import HYDRATE, RxClient  # noqa: E402

LOCK = "/tmp/rxcrm-e2e.lock"
WORKERS = 2
RECONNECTS = 8
MAX_RECONNECTS = 40
START_TIMEOUT = 300


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


def _holds_lock_already() -> bool:
    """Runs under `flock /tmp/rxcrm-e2e.lock …`: this process (inherited descriptor) or an
    ancestor (`flock -o`) has the lock file open — taking it again would wait for ourselves."""
    pid = os.getpid()
    while pid > 1:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == LOCK:
                        return True
                except OSError:
                    continue
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            return False
    return False


def _e2e_lock() -> int | None:
    """Take the e2e lock (None: already ours, see `_holds_lock_already`)."""
    if _holds_lock_already():
        return None
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _die_with_parent() -> None:
    """In the child before exec: a killed test run (timeout, Ctrl-C) takes its server along."""
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# ---- servers -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server")
                                              else None)
    if binary is None:
        pytest.fail("redis-server is missing: `make system-deps` installs Debian's redis-server")
    d = tmp_path_factory.mktemp("redis")
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(d), "--logfile", str(d / "redis.log")], preexec_fn=_die_with_parent)
    try:
        deadline = time.time() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"redis-server did not start; see {d / 'redis.log'}")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def pg_url():
    admin_url = os.environ.get("RXCRM_TEST_PG_URL", "")
    if not admin_url:
        pytest.fail("RXCRM_TEST_PG_URL is not set: this test needs the PostgreSQL that `make test` starts")
    name = f"rxcrm_e2e_prod_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            c.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"PostgreSQL at {admin_url} is not reachable: {exc}")
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(scope="module")
def prod_app(tmp_path_factory, pg_url, redis_url):
    """`reflex run --env prod --backend-only` with 2 workers, PostgreSQL and Redis; yields
    (base URL, process)."""
    d = tmp_path_factory.mktemp("prod")
    env = dict(os.environ, REFLEX_DB_URL=pg_url, REFLEX_REDIS_URL=redis_url, GRANIAN_WORKERS=str(WORKERS),
               REFLEX_USE_NPM="1", REFLEX_TELEMETRY_ENABLED="false",
               PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}")
    subprocess.run([sys.executable, "-m", "rxcrm.seed", "--leads", "100", "--deals", "200", "--seed", "7"],
                   env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    port = _free_port()
    log = open(d / "app.log", "w")
    lock = _e2e_lock()  # serialised with the other e2e apps while it starts
    proc = None
    try:
        proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "reflex"), "run", "--env", "prod", "--backend-only",
             "--backend-port", str(port), "--loglevel", "warning"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + START_TIMEOUT
        while not (_up(f"http://127.0.0.1:{port}/ping") and _up(f"http://127.0.0.1:{port}/_health")):
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited ({proc.returncode}):\n" + Path(log.name).read_text()[-3000:])
            if time.time() > deadline:
                raise RuntimeError(f"the app did not start in {START_TIMEOUT}s; see {log.name}")
            time.sleep(1)
    except BaseException:
        if proc is not None:
            _stop(proc)
        raise
    finally:
        if lock is not None:
            os.close(lock)  # built and serving: others may build again
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ---- which worker serves a connection ----------------------------------------------------------
def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                pids.append(int(entry))
    return pids


def _serving_pids(pgid: int, port: int) -> set[int]:
    """The app's processes holding an established server-side socket on `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == "01":  # local port, ESTABLISHED
                inodes.add(f"socket:[{f[9]}]")
    pids = set()
    for pid in _group_pids(pgid):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    pids.add(pid)
            except OSError:
                continue
    return pids


# ---- the client ----------------------------------------------------------------------------------
class Tab(RxClient):
    """One browser tab: one token for all its connections (a reload or a reconnect sends the
    same token, as the page does from sessionStorage); each connect is a new socket."""

    def __init__(self, base: str, **kw):
        super().__init__(base, **kw)
        self.token = str(uuid.uuid4())

    async def connect(self, path: str, until) -> None:
        import socketio
        if self._sio is not None:
            await self._sio.disconnect()
        self.path, self.updates, self.state = path, [], {}  # everything below comes from the server
        sio = socketio.AsyncClient(reconnection=False)
        sio.on("event", self._on_update, namespace="/_event")
        self._sio = sio
        await sio.connect(f"{self.base}?token={self.token}", socketio_path="/_event", transports=["websocket"],
                          namespaces=["/_event"], headers={"Cookie": self.cookie, "Origin": self.base},
                          auth={"event": self._event(HYDRATE, {})}, wait_timeout=self.timeout)
        await self._wait(until, f"open {path}")

    def events(self, name: str) -> list[dict]:
        return [ev for u in self.updates for ev in (u.get("events") or []) if ev.get("name") == name]

    def url_written(self) -> str:
        """The URL the page wrote last with history.replaceState (the view as the server sees it)."""
        scripts = [json.dumps(ev.get("payload")) for ev in self.events("_call_script")]
        urls = [s.split("replaceState(null, '', '", 1)[1].split("'", 1)[0] for s in scripts if "replaceState" in s]
        return urls[-1] if urls else ""


def test_a_tab_keeps_its_state_whichever_worker_it_reconnects_to(prod_app):
    from rxcrm.state.app import AppState
    from rxcrm.state.work import WorkState
    base, proc = prod_app
    port = int(base.rsplit(":", 1)[1])
    with urllib.request.urlopen(f"{base}/_health", timeout=10) as r:  # what a load balancer asks
        assert json.loads(r.read()) == {"status": True, "db": True, "redis": True}
    work, app = WorkState.get_full_name(), AppState.get_full_name()

    def page_loaded(c: Tab) -> bool:  # the page's on_load has finished: it wrote the URL
        return bool(c.url_written()) or bool(c.events("_redirect"))

    async def run() -> tuple[list[dict], list[int], tuple]:
        tab = Tab(base, timeout=90)
        await tab.login("admin", "demo")
        await tab._http.close()  # no keep-alive HTTP connection: the socket is the only one
        tab._http = None
        await tab.connect("/deals", page_loaded)
        assert tab.var(work, "view") == "kanban" and tab.var(app, "user_login") == "admin"
        await tab.call(work, "set_view", {"view": "list"}, until=lambda c: c.var(work, "view") == "list")
        await tab.call(work, "set_page_no", {"n": 2}, until=lambda c: c.url_written().endswith("page=2")
                       or "page=2&" in c.url_written())
        assert tab.var(work, "page_no") == 2 and tab.var(work, "total") > 20
        seen, workers = [], []
        # at least RECONNECTS times, and on until each worker has served two (bounded)
        while len(workers) < RECONNECTS or (len(workers) < MAX_RECONNECTS and (
                len(set(workers)) < WORKERS or min(workers.count(w) for w in set(workers)) < 2)):
            await tab.connect("/deals", page_loaded)  # the sidebar's bare /deals, on a new socket
            serving = _serving_pids(proc.pid, port)
            assert len(serving) == 1, serving
            workers += serving
            seen.append({"view": tab.var(work, "view"), "page_no": tab.var(work, "page_no"),
                         "login": tab.var(app, "user_login"), "url": tab.url_written(),
                         "redirects": [e.get("payload") for e in tab.events("_redirect")]})
        await tab.close()
        # control: another tab of the same person starts on page 1 — page 2 was this tab's state
        other = Tab(base, timeout=90)
        other.cookie = tab.cookie
        await other.connect("/deals", page_loaded)
        fresh = (other.var(work, "view"), other.var(work, "page_no"))
        await other.close()
        return seen, workers, fresh

    # on a thread of its own: in a whole e2e session Playwright's sync API keeps an event loop
    # running on this one (asyncio.run refuses to start there)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        seen, workers, fresh = pool.submit(asyncio.run, run()).result()
    print(f"\n{len(workers)} reconnects served by workers {workers}")
    for s in seen:
        assert s["view"] == "list" and s["page_no"] == 2, s
        assert s["login"] == "admin" and not s["redirects"], s  # still logged in, not sent to /login
        assert "view=list" in s["url"] and "page=2" in s["url"], s
    assert len(set(workers)) == WORKERS, f"all {len(workers)} connections landed on one worker: {workers}"
    assert fresh == ("list", 1), fresh  # the list view is remembered per person (DB), the page per tab
