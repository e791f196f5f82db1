"""Browser tests: the real app (reflex prod build) on a free loopback port, seeded with a
small deterministic demo set, driven by Playwright through Debian's /usr/bin/chromium."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

expect.set_options(timeout=15000)  # a build shared with other work on 2 cores: give the page time

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
START_TIMEOUT = 600  # the first production build installs npm packages


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


@pytest.fixture(scope="session")
def app_env(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("e2e")
    env = dict(os.environ)
    env.update(REFLEX_DB_URL=f"sqlite:///{d / 'e2e.db'}", REFLEX_USE_NPM="1",
               REFLEX_TELEMETRY_ENABLED="false",
               PATH=f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}")
    subprocess.run([sys.executable, "-m", "rxcrm.seed", "--leads", "300", "--deals", "200", "--seed", "7"],
                   env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    env["E2E_DIR"] = str(d)
    return env


@pytest.fixture(scope="session")
def app_url(app_env) -> str:
    port = _free_port()
    log = open(Path(app_env["E2E_DIR"]) / "app.log", "w")
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "reflex"), "run", "--env", "prod",
         "--frontend-port", str(port), "--backend-port", str(port), "--loglevel", "warning"],
        env=app_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://localhost:{port}"
    deadline = time.time() + START_TIMEOUT
    try:
        while not (_up(f"http://127.0.0.1:{port}/ping") and _up(f"http://127.0.0.1:{port}/login")):
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited ({proc.returncode}); see {log.name}:\n"
                                   + Path(log.name).read_text()[-3000:])
            if time.time() > deadline:
                raise RuntimeError(f"the app did not start in {START_TIMEOUT}s; see {log.name}")
            time.sleep(1)
        yield base
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url) -> Page:
    ctx = browser.new_context(base_url=app_url, viewport={"width": 1440, "height": 900}, locale="ru-RU")
    ctx.set_default_timeout(15000)
    pg = ctx.new_page()
    yield pg
    ctx.close()


def login(page: Page, user: str, password: str = "demo") -> None:
    page.goto("/login")
    page.get_by_test_id("login-input").fill(user)
    page.get_by_test_id("password-input").fill(password)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url("**/leads**", timeout=30000)
    expect(page.get_by_test_id("sidebar")).to_be_visible()
